/* feeds: the network servers' MQTT connections (see feeds.h). */
#include "feeds.h"

#include <stdlib.h>

#include "log.h"
#include "mqtt.h"
#include "util.h"

typedef struct feed_conn {
    feeds *f;
    size_t input;               /* index in the configuration's inputs */
    mq_client *mq;
} feed_conn;

struct feeds {
    uv_loop_t *loop;
    pipeline *p;
    /* each on the heap: it is its client's callback context, so it must not move */
    feed_conn *conns[CFG_MAX_INPUTS];       /* running */
    size_t n;
    feed_conn *next[CFG_MAX_INPUTS];        /* prepared, started once the running ones closed */
    size_t n_next;
    bool has_next;
    bool paused;
    int closing;                /* running clients still closing */
    void (*close_done)(void *ctx);
    void *close_ctx;
};

feeds *feed_new(uv_loop_t *loop, pipeline *p)
{
    feeds *f = util_xcalloc(1, sizeof *f);
    f->loop = loop;
    f->p = p;
    return f;
}

/* ---- the clients' callbacks ---- */

static void feed_on_message(void *ctx, const char *topic, const void *payload, size_t len)
{
    feed_conn *c = ctx;
    pipe_on_input_message(c->f->p, c->input, topic, payload, len);
}

static void feed_on_connected(void *ctx)
{
    (void)ctx;      /* mqtt.c logs it; nothing is republished on a network server's broker */
}

static void feed_on_disconnected(void *ctx)
{
    (void)ctx;
}

static const mq_callbacks feed_callbacks = {
    .on_message = feed_on_message,
    .on_connected = feed_on_connected,
    .on_disconnected = feed_on_disconnected,
};

/* ---- prepare, switch ---- */

static void feed_free_set(feed_conn **set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mq_free(set[i]->mq);
        free(set[i]);
        set[i] = NULL;
    }
}

int feed_prepare(feeds *f, const cfg_config *cfg, char **err)
{
    if (f->has_next) {
        *err = util_xstrdup("the previous change of the inputs' connections is still in progress");
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_inputs; i++) {
        if (!cfg->inputs[i].has_mqtt)
            continue;
        mq_settings set;
        mq_settings_input(cfg, i, &set);
        feed_conn *c = util_xcalloc(1, sizeof *c);
        *c = (feed_conn){ f, i, NULL };
        c->mq = mq_new(f->loop, &set, &feed_callbacks, c, err);
        if (!c->mq) {
            free(c);
            feed_free_set(f->next, n);
            return -1;
        }
        f->next[n++] = c;
    }
    f->n_next = n;
    f->has_next = true;
    return 0;
}

bool feed_prepared(const feeds *f)
{
    return f->has_next;
}

/* The running set is gone: the prepared one takes its place and starts. */
static void feed_start_next(feeds *f)
{
    for (size_t i = 0; i < f->n_next; i++) {
        f->conns[i] = f->next[i];
        f->next[i] = NULL;
    }
    f->n = f->n_next;
    f->n_next = 0;
    f->has_next = false;
    for (size_t i = 0; i < f->n; i++) {
        feed_conn *c = f->conns[i];
        pipe_set_input_mqtt(f->p, c->input, c->mq);
        if (f->paused)
            mq_set_paused(c->mq, true);
        int rc = mq_start(c->mq);
        if (rc < 0)
            log_error("inputs[%zu]: cannot start its connection: %s", c->input, uv_strerror(rc));
    }
}

static void feed_on_old_closed(void *ctx)
{
    feeds *f = ctx;
    if (--f->closing > 0)
        return;
    feed_free_set(f->conns, f->n);
    f->n = 0;
    if (f->close_done) {
        void (*done)(void *) = f->close_done;
        f->close_done = NULL;
        feed_free_set(f->next, f->n_next);
        f->n_next = 0;
        f->has_next = false;
        done(f->close_ctx);
        return;
    }
    if (f->has_next)
        feed_start_next(f);
}

/* Starts closing every running client; feed_on_old_closed follows once all are closed. */
static void feed_close_running(feeds *f, uint64_t timeout_ms)
{
    if (f->closing)
        return;     /* already on its way: its end does what is due */
    f->closing = (int)f->n;
    for (size_t i = 0; i < f->n; i++) {
        pipe_set_input_mqtt(f->p, f->conns[i]->input, NULL);
        mq_close(f->conns[i]->mq, timeout_ms, feed_on_old_closed, f);
    }
    if (f->n == 0) {
        f->closing = 1;
        feed_on_old_closed(f);
    }
}

void feed_switch(feeds *f)
{
    if (!f->has_next)
        return;
    if (f->n)
        log_info("reload: the inputs' connections changed, reconnecting them");
    feed_close_running(f, 2000);
}

void feed_set_paused(feeds *f, bool paused)
{
    f->paused = paused;
    for (size_t i = 0; i < f->n; i++)
        mq_set_paused(f->conns[i]->mq, paused);
}

void feed_stop_input(feeds *f)
{
    for (size_t i = 0; i < f->n; i++)
        mq_stop_input(f->conns[i]->mq);
}

void feed_close(feeds *f, uint64_t timeout_ms, void (*done)(void *ctx), void *ctx)
{
    f->close_done = done;
    f->close_ctx = ctx;
    if (f->closing)
        return;     /* a switch is closing them: its end calls DONE instead of starting more */
    feed_close_running(f, timeout_ms);
}

void feed_free(feeds *f)
{
    if (!f)
        return;
    feed_free_set(f->conns, f->n);
    feed_free_set(f->next, f->n_next);
    free(f);
}

size_t feed_count(const feeds *f)
{
    return f->n;
}

size_t feed_connected(const feeds *f)
{
    size_t up = 0;
    for (size_t i = 0; i < f->n; i++)
        up += mq_is_connected(f->conns[i]->mq);
    return up;
}

bool feed_input_up(const feeds *f, size_t input)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->conns[i]->input == input)
            return mq_is_connected(f->conns[i]->mq);
    return false;
}
