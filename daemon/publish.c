#include "publish.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "payload.h"
#include "util.h"

#define PUB_TICK_MS 1000
#define PUB_JSON_MAX 2048
#define PUB_TOPIC_MAX 512
#define PUB_MAX_BACKLOG 200         /* unacknowledged QoS 1 publishes before lots wait */
#define PUB_BACKLOG_RETRY_MS 5

typedef struct pub_lot {
    pub *p;
    lot *l;
    char *name_json;            /* the name as a JSON string, quoted and escaped */
    char *name_source;          /* the name it was made from, to notice a reload's change */
    bool published;             /* anything published yet */
    int64_t last_free;          /* as last published; -1 for unknown */
    enum lot_status last_status;
    bool last_stale;
    uint64_t last_publish_ms;   /* loop time */
    bool pending;               /* a change waits for min_interval to end */
    uv_timer_t timer;           /* fires when min_interval ends */
} pub_lot;

struct pub {
    uv_loop_t *loop;
    const cfg_config *cfg;
    mq_client *mq;
    store *st;
    pub_lot **lots;             /* in order of registration, for the summary */
    size_t n_lots, cap_lots;
    pub_extra_fn extra;
    void *extra_ctx;
    uv_timer_t tick;            /* heartbeats */
    uv_timer_t summary_timer;
    bool summary_dirty;
    uint64_t published;
    int handles_open;
    void (*close_done)(void *ctx);
    void *close_ctx;
};

static void pub_update_name(pub_lot *pl)
{
    if (pl->name_source && strcmp(pl->name_source, pl->l->name) == 0)
        return;
    free(pl->name_json);
    free(pl->name_source);
    json_t *s = json_string(pl->l->name);
    char *dumped = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    pl->name_json = util_xstrdup(dumped ? dumped : "null");
    pl->name_source = util_xstrdup(pl->l->name);
    free(dumped);
    json_decref(s);
}

static int pub_fmt_double(char *buf, size_t size, const char *fmt, double v)
{
    if (!isfinite(v))
        return snprintf(buf, size, "null");
    return snprintf(buf, size, fmt, v);
}

size_t pub_format_availability(const pub *p, const lot *l, char *buf, size_t size)
{
    const pub_lot *pl = l->pub_data;
    const char *name_json = pl ? pl->name_json : "null";
    char ts[40] = "null", occupied[32] = "null", free_s[32] = "null", smoothed[40] = "null",
         occupancy[40] = "null", trend[40] = "null";
    if (l->has_data) {
        ts[0] = '"';
        size_t n = pl_format_time(l->ts_ms, ts + 1, sizeof ts - 2);
        ts[n + 1] = '"';
        ts[n + 2] = '\0';
        snprintf(occupied, sizeof occupied, "%" PRId64, l->occupied);
        snprintf(free_s, sizeof free_s, "%" PRId64, lot_free_spaces(l));
        pub_fmt_double(smoothed, sizeof smoothed, "%.1f", l->smooth.smoothed);
        pub_fmt_double(occupancy, sizeof occupancy, "%.3f", lot_occupancy(l));
        pub_fmt_double(trend, sizeof trend, "%.1f", sm_trend_per_hour(&l->smooth));
    }
    int n = snprintf(buf, size,
                     "{\"lot\":\"%s\",\"name\":%s,\"ts\":%s,\"capacity\":%" PRId64
                     ",\"occupied\":%s,\"free\":%s,\"free_smoothed\":%s,\"occupancy\":%s,"
                     "\"trend_per_hour\":%s,\"status\":\"%s\",\"stale\":%s}",
                     l->id, name_json, ts, l->capacity, occupied, free_s, smoothed, occupancy,
                     trend, lot_status_name(l->status), l->stale ? "true" : "false");
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

static void pub_send(pub_lot *pl)
{
    pub *p = pl->p;
    lot *l = pl->l;
    char json[PUB_JSON_MAX];
    char topic[PUB_TOPIC_MAX];
    pub_update_name(pl);
    size_t len = pub_format_availability(p, l, json, sizeof json);
    if (!len) {
        log_error("publish: availability of lot %s does not fit %d bytes", l->id, PUB_JSON_MAX);
        return;
    }
    snprintf(topic, sizeof topic, "%s/%s/availability", p->cfg->mqtt.output_prefix, l->id);
    /* A disconnected broker gets everything again on reconnect (pub_republish_all), so the
     * lot's change is recorded as done either way. */
    if (p->mq && mq_publish(p->mq, topic, json, len) == 0)
        p->published++;
    store_batch_update(p->st, json, len);
    if (p->extra)
        p->extra(p->extra_ctx, l);
    pl->published = true;
    pl->last_free = l->has_data ? lot_free_spaces(l) : -1;
    pl->last_status = l->status;
    pl->last_stale = l->stale;
    pl->last_publish_ms = uv_now(p->loop);
    pl->pending = false;
    p->summary_dirty = true;
}

static bool pub_change_matters(const pub *p, const pub_lot *pl)
{
    const lot *l = pl->l;
    if (!pl->published || l->status != pl->last_status || l->stale != pl->last_stale)
        return true;
    int64_t now_free = l->has_data ? lot_free_spaces(l) : -1;
    if (now_free == pl->last_free)
        return false;
    if (now_free < 0 || pl->last_free < 0)
        return true;
    double delta = fabs((double)(now_free - pl->last_free));
    return delta >= p->cfg->publish.deadband;
}

static void pub_try_send(pub_lot *pl);

static void pub_on_interval_end(uv_timer_t *timer)
{
    pub_lot *pl = timer->data;
    if (pl->pending)
        pub_try_send(pl);
}

/* When the broker is slow to acknowledge, a lot waits with its latest state pending instead of
 * queueing one more message: the backlog stays bounded and a later change replaces an earlier
 * one rather than queueing behind it. */
static void pub_try_send(pub_lot *pl)
{
    pub *p = pl->p;
    if (p->mq && mq_publishes_unacked(p->mq) >= PUB_MAX_BACKLOG) {
        pl->pending = true;
        uv_timer_start(&pl->timer, pub_on_interval_end, PUB_BACKLOG_RETRY_MS, 0);
        return;
    }
    uv_timer_stop(&pl->timer);
    pub_send(pl);
}

static void pub_consider(pub_lot *pl, bool force)
{
    pub *p = pl->p;
    if (!force && !pub_change_matters(p, pl))
        return;
    uint64_t now = uv_now(p->loop);
    uint64_t interval = (uint64_t)p->cfg->publish.min_interval_ms;
    if (!pl->published || interval == 0 || now - pl->last_publish_ms >= interval) {
        pub_try_send(pl);
        return;
    }
    if (!pl->pending) {
        pl->pending = true;
        uv_timer_start(&pl->timer, pub_on_interval_end, pl->last_publish_ms + interval - now, 0);
    }
}

void pub_lot_changed(pub *p, lot *l)
{
    if (l->pub_data)
        pub_consider(l->pub_data, false);
}

static void pub_summary_lot(const pub_lot *pl, json_t *arr, int64_t *free_total,
                            int64_t *cap_total, int64_t *newest)
{
    const lot *l = pl->l;
    json_t *o = json_object();
    json_object_set_new(o, "lot", json_string(l->id));
    json_object_set_new(o, "name", json_string(l->name));
    json_object_set_new(o, "free", l->has_data ? json_integer(lot_free_spaces(l)) : json_null());
    json_object_set_new(o, "capacity", json_integer(l->capacity));
    json_object_set_new(o, "status", json_string(lot_status_name(l->status)));
    json_object_set_new(o, "stale", json_boolean(l->stale));
    json_object_set_new(o, "lat", l->has_position ? json_real(l->lat) : json_null());
    json_object_set_new(o, "lon", l->has_position ? json_real(l->lon) : json_null());
    json_array_append_new(arr, o);
    if (l->has_data) {
        *free_total += lot_free_spaces(l);
        *cap_total += l->capacity;
        if (l->ts_ms > *newest)
            *newest = l->ts_ms;
    }
}

static void pub_send_summary(pub *p)
{
    json_t *root = json_object();
    json_t *arr = json_array();
    int64_t free_total = 0, cap_total = 0, newest = INT64_MIN;
    for (size_t i = 0; i < p->n_lots; i++)
        pub_summary_lot(p->lots[i], arr, &free_total, &cap_total, &newest);
    char ts[40];
    if (newest != INT64_MIN) {
        pl_format_time(newest, ts, sizeof ts);
        json_object_set_new(root, "ts", json_string(ts));
    } else {
        json_object_set_new(root, "ts", json_null());
    }
    json_object_set_new(root, "lots", arr);
    json_object_set_new(root, "free", json_integer(free_total));
    json_object_set_new(root, "capacity", json_integer(cap_total));
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!text)
        return;
    char topic[PUB_TOPIC_MAX];
    snprintf(topic, sizeof topic, "%s/summary", p->cfg->mqtt.output_prefix);
    if (p->mq && mq_publish(p->mq, topic, text, strlen(text)) == 0) {
        p->published++;
        p->summary_dirty = false;
    }
    free(text);
}

static void pub_on_summary_timer(uv_timer_t *timer)
{
    pub *p = timer->data;
    if (p->summary_dirty)
        pub_send_summary(p);
}

static void pub_on_tick(uv_timer_t *timer)
{
    pub *p = timer->data;
    uint64_t now = uv_now(p->loop);
    uint64_t heartbeat = (uint64_t)p->cfg->publish.heartbeat_ms;
    for (size_t i = 0; i < p->n_lots; i++) {
        pub_lot *pl = p->lots[i];
        if (pl->published && !pl->pending && now - pl->last_publish_ms >= heartbeat)
            pub_try_send(pl);
    }
}

pub *pub_new(uv_loop_t *loop, const cfg_config *cfg, mq_client *mq, store *st)
{
    pub *p = util_xcalloc(1, sizeof *p);
    p->loop = loop;
    p->cfg = cfg;
    p->mq = mq;
    p->st = st;
    uv_timer_init(loop, &p->tick);
    uv_timer_init(loop, &p->summary_timer);
    p->tick.data = p->summary_timer.data = p;
    p->handles_open = 2;
    return p;
}

void pub_set_mqtt(pub *p, mq_client *mq)
{
    p->mq = mq;
}

void pub_set_extra(pub *p, pub_extra_fn fn, void *ctx)
{
    p->extra = fn;
    p->extra_ctx = ctx;
}

int pub_start(pub *p)
{
    int rc = uv_timer_start(&p->tick, pub_on_tick, PUB_TICK_MS, PUB_TICK_MS);
    if (rc == 0)
        rc = uv_timer_start(&p->summary_timer, pub_on_summary_timer,
                            (uint64_t)p->cfg->publish.summary_interval_ms,
                            (uint64_t)p->cfg->publish.summary_interval_ms);
    return rc;
}

void pub_set_config(pub *p, const cfg_config *cfg)
{
    bool interval_changed = cfg->publish.summary_interval_ms != p->cfg->publish.summary_interval_ms;
    p->cfg = cfg;
    if (interval_changed && uv_is_active((uv_handle_t *)&p->summary_timer))
        uv_timer_start(&p->summary_timer, pub_on_summary_timer,
                       (uint64_t)cfg->publish.summary_interval_ms,
                       (uint64_t)cfg->publish.summary_interval_ms);
    p->summary_dirty = true;
}

void pub_add_lot(pub *p, lot *l)
{
    pub_lot *pl = util_xcalloc(1, sizeof *pl);
    pl->p = p;
    pl->l = l;
    pl->last_free = -1;
    uv_timer_init(p->loop, &pl->timer);
    pl->timer.data = pl;
    pub_update_name(pl);
    l->pub_data = pl;
    util_grow((void **)&p->lots, &p->cap_lots, p->n_lots + 1, sizeof *p->lots);
    p->lots[p->n_lots++] = pl;
    p->summary_dirty = true;
}

static void pub_on_lot_timer_closed(uv_handle_t *handle)
{
    pub_lot *pl = handle->data;
    pub *p = pl->p;
    free(pl->name_json);
    free(pl->name_source);
    free(pl);
    if (--p->handles_open == 0 && p->close_done)
        p->close_done(p->close_ctx);
}

void pub_remove_lot(pub *p, const lot *l)
{
    for (size_t i = 0; i < p->n_lots; i++) {
        pub_lot *pl = p->lots[i];
        if (pl->l != l)
            continue;
        memmove(&p->lots[i], &p->lots[i + 1], (p->n_lots - i - 1) * sizeof *p->lots);
        p->n_lots--;
        pl->l->pub_data = NULL;
        p->summary_dirty = true;
        p->handles_open++;
        uv_close((uv_handle_t *)&pl->timer, pub_on_lot_timer_closed);
        return;
    }
}

void pub_republish_all(pub *p)
{
    for (size_t i = 0; i < p->n_lots; i++)
        pub_consider(p->lots[i], true);
    pub_send_summary(p);
}

void pub_flush_pending(pub *p)
{
    for (size_t i = 0; i < p->n_lots; i++) {
        pub_lot *pl = p->lots[i];
        if (pl->pending)
            pub_send(pl);
    }
    if (p->summary_dirty)
        pub_send_summary(p);
}

uint64_t pub_published(const pub *p)
{
    return p->published;
}

static void pub_on_handle_closed(uv_handle_t *handle)
{
    pub *p = handle->data;
    if (--p->handles_open == 0 && p->close_done)
        p->close_done(p->close_ctx);
}

void pub_close(pub *p, void (*done)(void *ctx), void *ctx)
{
    p->close_done = done;
    p->close_ctx = ctx;
    while (p->n_lots)
        pub_remove_lot(p, p->lots[p->n_lots - 1]->l);
    uv_close((uv_handle_t *)&p->tick, pub_on_handle_closed);
    uv_close((uv_handle_t *)&p->summary_timer, pub_on_handle_closed);
}

void pub_free(pub *p)
{
    if (!p)
        return;
    free(p->lots);
    free(p);
}
