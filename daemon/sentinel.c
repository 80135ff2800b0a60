/* sentinel: the master's address from Redis Sentinel (see sentinel.h). */
#include "sentinel.h"

#include <errno.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "redis_uv.h"
#include "util.h"

#define SEN_RETRY_MS 500        /* the next sentinel after one that did not answer */

struct sentinel {
    uv_loop_t *loop;
    const cfg_config *cfg;
    void (*on_master)(void *ctx, const char *host, int port);
    void *ctx;
    redisAsyncContext *ask;     /* a question in flight, or NULL */
    redisAsyncContext *sub;     /* the +switch-master subscription, or NULL */
    size_t next_ask, next_sub;  /* which sentinel to try next */
    bool ask_again;             /* asked while a question was in flight */
    bool closing;
    int open_parts;             /* closing: the timer and the contexts still open */
    uv_timer_t retry;
    void (*close_done)(void *ctx);
    void *close_ctx;
};

static void sen_subscribe(sentinel *s);
static void sen_part_closed(sentinel *s);

void sen_set_config(sentinel *s, const cfg_config *cfg)
{
    s->cfg = cfg;
}

sentinel *sen_new(uv_loop_t *loop, const cfg_config *cfg,
                  void (*on_master)(void *ctx, const char *host, int port), void *ctx)
{
    sentinel *s = util_xcalloc(1, sizeof *s);
    s->loop = loop;
    s->cfg = cfg;
    s->on_master = on_master;
    s->ctx = ctx;
    uv_timer_init(loop, &s->retry);
    s->retry.data = s;
    return s;
}

/* "HOST:PORT" (or "[v6]:PORT") of sentinel I into HOST and *PORT. */
static void sen_address(const sentinel *s, size_t i, char *host, size_t size, int *port)
{
    const char *a = s->cfg->redis.sentinels[i], *colon = strrchr(a, ':');
    size_t n = (size_t)(colon - a);
    if (a[0] == '[') {
        a++;
        n -= 2;
    }
    snprintf(host, size, "%.*s", (int)n, a);
    *port = atoi(colon + 1);
}

/* AUTH first, as for Redis itself, when a password file is set. */
static void sen_auth(redisAsyncContext *ac, const cfg_config *cfg)
{
    if (!cfg->redis.password_file)
        return;
    char *password = util_read_secret_file(cfg->redis.password_file);
    if (!password) {
        log_error("sentinel: cannot read password file %s: %s", cfg->redis.password_file,
                  strerror(errno));
        return;
    }
    if (cfg->redis.username)
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s %s", cfg->redis.username, password);
    else
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", password);
    explicit_bzero(password, strlen(password));
    free(password);
}

/* A context for sentinel *NEXT (which moves on), attached to the loop; NULL on failure. */
static redisAsyncContext *sen_connect(sentinel *s, size_t *next)
{
    char host[256];
    int port;
    size_t i = (*next)++ % s->cfg->redis.n_sentinels;
    sen_address(s, i, host, sizeof host, &port);
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (!ac || ac->err || redis_uv_attach(ac, s->loop) != REDIS_OK) {
        log_warning("sentinel: cannot connect to %s", s->cfg->redis.sentinels[i]);
        if (ac)
            redisAsyncFree(ac);
        return NULL;
    }
    ac->data = s;
    sen_auth(ac, s->cfg);
    return ac;
}

static void sen_on_retry(uv_timer_t *timer)
{
    sentinel *s = timer->data;
    if (!s->sub)
        sen_subscribe(s);
    if (!s->ask || s->ask_again)
        sen_ask(s);
}

static void sen_retry_later(sentinel *s)
{
    if (!s->closing && !uv_is_active((uv_handle_t *)&s->retry))
        uv_timer_start(&s->retry, sen_on_retry, SEN_RETRY_MS, 0);
}

/* ---- the question ---- */

static void sen_on_answer(redisAsyncContext *ac, void *r, void *privdata)
{
    sentinel *s = ac->data;
    redisReply *reply = r;
    bool ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
              reply->element[0]->type == REDIS_REPLY_STRING &&
              reply->element[1]->type == REDIS_REPLY_STRING;
    if (ok) {
        s->on_master(s->ctx, reply->element[0]->str, atoi(reply->element[1]->str));
    } else if (reply) {
        log_warning("sentinel: %s does not know master %s%s%s", ac->c.tcp.host,
                    s->cfg->redis.master_name, reply->type == REDIS_REPLY_ERROR ? ": " : "",
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    }
    if (!ok)
        s->ask_again = true;    /* another sentinel may */
    redisAsyncDisconnect(ac);
}

static void sen_on_ask_closed(const redisAsyncContext *ac, int status)
{
    sentinel *s = ac->data;
    s->ask = NULL;
    if (s->closing) {
        sen_part_closed(s);
        return;
    }
    if (s->ask_again)
        sen_retry_later(s);
}

void sen_ask(sentinel *s)
{
    if (s->closing)
        return;
    if (s->ask) {
        s->ask_again = true;
        return;
    }
    s->ask_again = false;
    s->ask = sen_connect(s, &s->next_ask);
    if (!s->ask) {
        s->ask_again = true;
        sen_retry_later(s);
        return;
    }
    redisAsyncSetDisconnectCallback(s->ask, sen_on_ask_closed);
    if (redisAsyncCommand(s->ask, sen_on_answer, NULL, "SENTINEL get-master-addr-by-name %s",
                          s->cfg->redis.master_name) != REDIS_OK)
        redisAsyncDisconnect(s->ask);
}

/* ---- +switch-master ---- */

/* "<name> <old ip> <old port> <new ip> <new port>" */
static void sen_on_switch(sentinel *s, const char *text)
{
    char name[256], old_ip[256], new_ip[256];
    int old_port, new_port;
    if (sscanf(text, "%255s %255s %d %255s %d", name, old_ip, &old_port, new_ip, &new_port) != 5 ||
        strcmp(name, s->cfg->redis.master_name) != 0)
        return;
    log_warning("sentinel: master %s moved from %s:%d to %s:%d", name, old_ip, old_port, new_ip,
                new_port);
    s->on_master(s->ctx, new_ip, new_port);
}

static void sen_on_message(redisAsyncContext *ac, void *r, void *privdata)
{
    sentinel *s = ac->data;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(reply->element[0]->str, "subscribe") == 0) {
        sen_ask(s);     /* subscribed now: ask, so that no switch before it is missed */
        return;
    }
    if (strcmp(reply->element[0]->str, "message") == 0 &&
        reply->element[2]->type == REDIS_REPLY_STRING)
        sen_on_switch(s, reply->element[2]->str);
}

static void sen_on_sub_closed(const redisAsyncContext *ac, int status)
{
    sentinel *s = ac->data;
    s->sub = NULL;
    if (s->closing) {
        sen_part_closed(s);
        return;
    }
    log_warning("sentinel: subscription to +switch-master lost; trying the next sentinel");
    sen_retry_later(s);
}

static void sen_subscribe(sentinel *s)
{
    s->sub = sen_connect(s, &s->next_sub);
    if (!s->sub) {
        sen_retry_later(s);
        return;
    }
    redisAsyncSetDisconnectCallback(s->sub, sen_on_sub_closed);
    if (redisAsyncCommand(s->sub, sen_on_message, NULL, "SUBSCRIBE +switch-master") != REDIS_OK)
        redisAsyncDisconnect(s->sub);
}

int sen_start(sentinel *s)
{
    if (!s->cfg->redis.n_sentinels)
        return -EINVAL;
    sen_subscribe(s);
    sen_ask(s);
    return 0;
}

/* The hiredis contexts call back when they are gone; S lives until the last part closed. */
static void sen_part_closed(sentinel *s)
{
    if (--s->open_parts == 0 && s->close_done)
        s->close_done(s->close_ctx);
}

static void sen_on_timer_closed(uv_handle_t *handle)
{
    sen_part_closed(handle->data);
}

void sen_close(sentinel *s, void (*done)(void *ctx), void *ctx)
{
    s->closing = true;
    s->close_done = done;
    s->close_ctx = ctx;
    s->open_parts = 1 + (s->ask != NULL) + (s->sub != NULL);
    uv_timer_stop(&s->retry);
    if (s->ask)
        redisAsyncDisconnect(s->ask);
    if (s->sub)
        redisAsyncDisconnect(s->sub);
    uv_close((uv_handle_t *)&s->retry, sen_on_timer_closed);
}

void sen_free(sentinel *s)
{
    free(s);
}
