/* ha: the lease and the role (see ha.h). */
#include "ha.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define HA_INSTANCE_MAX 64

struct ha {
    uv_loop_t *loop;
    int64_t lease_ms;           /* ha.lease, copied: a reload frees the configuration (and the
                                 * ha keys apply at start only) */
    store *st;
    const ha_callbacks *cb;
    void *ctx;
    uv_timer_t timer;
    char instance[HA_INSTANCE_MAX + 1];
    char leader[HA_INSTANCE_MAX + 32];
    bool active;
    bool told_standby;
    bool in_flight;             /* a lease request's reply is outstanding */
    uint64_t epoch;
    uint64_t sent_ms;           /* loop time the outstanding request was sent */
    uint64_t held_since_ms;     /* loop time of the request behind the last renewal */
    void (*close_done)(void *ctx);
    void *close_ctx;
};

/* ha.instance, or hostname-pid: unique per process, so two instances never share a lease by
 * accident. A hostname that breaks the id rule is cut at the first character that does. */
static void ha_pick_instance(ha *h, const cfg_config *cfg)
{
    if (cfg->ha.instance) {
        snprintf(h->instance, sizeof h->instance, "%s", cfg->ha.instance);
        return;
    }
    char host[HA_INSTANCE_MAX + 1] = "parkd";
    if (gethostname(host, sizeof host) != 0 || !host[0])
        strcpy(host, "parkd");
    host[strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")] = '\0';
    snprintf(h->instance, sizeof h->instance, "%.50s-%d", host[0] ? host : "parkd", (int)getpid());
}

ha *ha_new(uv_loop_t *loop, const cfg_config *cfg, store *st, const ha_callbacks *cb, void *ctx)
{
    ha *h = util_xcalloc(1, sizeof *h);
    h->loop = loop;
    h->lease_ms = cfg->ha.lease_ms;
    h->st = st;
    h->cb = cb;
    h->ctx = ctx;
    ha_pick_instance(h, cfg);
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    return h;
}

static uint64_t ha_interval(const ha *h)
{
    return (uint64_t)h->lease_ms / 4;
}

/* Past this, a renewal that has not come back may have let the lease expire on Redis: the
 * lease is counted from when the request that renewed it was sent. */
static bool ha_expired(const ha *h, uint64_t now)
{
    return now - h->held_since_ms >= (uint64_t)h->lease_ms * 3 / 4;
}

static void ha_lose(ha *h, const char *why)
{
    h->active = false;
    h->epoch = 0;
    h->cb->on_lost(h->ctx, why);
}

static void ha_on_lease(void *ctx, uint64_t epoch, const char *holder)
{
    ha *h = ctx;
    h->in_flight = false;
    if (holder)
        snprintf(h->leader, sizeof h->leader, "%s", holder);
    if (epoch == UINT64_MAX)
        return;             /* no answer: the next try, or the deadline, decides */
    if (h->active) {
        if (epoch == h->epoch) {
            h->held_since_ms = h->sent_ms;
            return;
        }
        char why[160];
        snprintf(why, sizeof why, "the lease is held by %s", holder && holder[0] ? holder : "nobody");
        ha_lose(h, why);
        return;
    }
    if (epoch > 0) {
        h->active = true;
        h->epoch = epoch;
        h->held_since_ms = h->sent_ms;
        log_info("ha: %s is active, epoch %" PRIu64, h->instance, epoch);
        h->cb->on_won(h->ctx, epoch);
        return;
    }
    if (!h->told_standby) {
        h->told_standby = true;
        log_info("ha: %s is standby (leader %s)", h->instance, h->leader);
        h->cb->on_standby(h->ctx);
    }
}

static void ha_on_timer(uv_timer_t *timer)
{
    ha *h = timer->data;
    uint64_t now = uv_now(h->loop);
    if (h->active && ha_expired(h, now)) {
        ha_lose(h, "no renewal of the lease came back in time");
        return;
    }
    /* a standby's own key; an active's goes in its fenced batches (store_set_leader) */
    if (!h->active)
        store_instance(h->st, h->instance, "standby", 0, h->lease_ms * 10);
    if (h->in_flight && now - h->sent_ms < (uint64_t)h->lease_ms)
        return;             /* one request at a time; a lost one is given up after a lease */
    h->sent_ms = now;
    if (store_lease(h->st, h->instance, h->active ? h->epoch : 0, h->lease_ms,
                    ha_on_lease, h) == 0)
        h->in_flight = true;
}

int ha_start(ha *h)
{
    return uv_timer_start(&h->timer, ha_on_timer, 0, ha_interval(h));
}

static void ha_on_closed(uv_handle_t *handle)
{
    ha *h = handle->data;
    if (h->close_done)
        h->close_done(h->close_ctx);
}

void ha_close(ha *h, void (*done)(void *ctx), void *ctx)
{
    h->close_done = done;
    h->close_ctx = ctx;
    uv_close((uv_handle_t *)&h->timer, ha_on_closed);
}

void ha_free(ha *h)
{
    free(h);
}

bool ha_is_active(const ha *h)
{
    return h->active;
}

const char *ha_role(const ha *h)
{
    return h->active ? "active" : "standby";
}

const char *ha_instance(const ha *h)
{
    return h->instance;
}

uint64_t ha_epoch(const ha *h)
{
    return h->epoch;
}

const char *ha_leader(const ha *h)
{
    return h->leader;
}
