/* parkd: sensor topics in, occupancy counters in Redis, availability out. The main loop: wires
 * the modules together, owns the lots, and keeps the rule that input is acknowledged only once
 * Redis holds its effect. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "forecast.h"
#include "log.h"
#include "lot.h"
#include "map.h"
#include "metrics.h"
#include "mqtt.h"
#include "notify.h"
#include "payload.h"
#include "publish.h"
#include "store.h"
#include "util.h"

#define EXIT_CONFIG 78
#define TICK_MS 1000
#define SHUTDOWN_TIMEOUT_MS 5000
#define MAX_BATCHES_IN_FLIGHT 8     /* QoS 0 only: with QoS > 0 the barrier keeps it at one */

enum counter {
    C_MESSAGES_IN,
    C_APPLIED,
    C_UNCHANGED,
    C_IGNORED_OLD,
    C_IGNORED_DUPLICATE,
    C_REJECTED_FIRST,   /* + enum pl_reject, for PL_BAD_TOPIC .. PL_TOO_MANY_BAYS */
    C_ANOMALY_CLAMPED = C_REJECTED_FIRST + PL_REJECT_COUNT,
    C_ANOMALY_CAPACITY,
    C_RECALIBRATIONS,
    C_PUBLISHED,
    C_REDIS_BATCHES,
    C_INPUT_FIRST,      /* + enum pl_kind: messages with a valid topic, per kind */
    C_COUNT = C_INPUT_FIRST + PL_KIND_COUNT + 1
};
_Static_assert(PL_KIND_BAY == 0 && PL_KIND_GATE == 1 && PL_KIND_COUNT == 2, "pl_kind order");

static const char *const counter_names[C_COUNT] = {
    [C_MESSAGES_IN] = "messages_in",
    [C_APPLIED] = "applied",
    [C_UNCHANGED] = "unchanged",
    [C_IGNORED_OLD] = "ignored_old",
    [C_IGNORED_DUPLICATE] = "ignored_duplicate",
    [C_REJECTED_FIRST + PL_OK] = "rejected_none",
    [C_REJECTED_FIRST + PL_BAD_TOPIC] = "rejected_bad_topic",
    [C_REJECTED_FIRST + PL_BAD_ID] = "rejected_bad_id",
    [C_REJECTED_FIRST + PL_UNKNOWN_LOT] = "rejected_unknown_lot",
    [C_REJECTED_FIRST + PL_MALFORMED] = "rejected_malformed",
    [C_REJECTED_FIRST + PL_OVERSIZE] = "rejected_oversize",
    [C_REJECTED_FIRST + PL_WRONG_KIND] = "rejected_wrong_kind",
    [C_REJECTED_FIRST + PL_FUTURE] = "rejected_future",
    [C_REJECTED_FIRST + PL_TOO_MANY_BAYS] = "rejected_too_many_bays",
    [C_ANOMALY_CLAMPED] = "anomaly_clamped",
    [C_ANOMALY_CAPACITY] = "anomaly_capacity",
    [C_RECALIBRATIONS] = "recalibrations",
    [C_PUBLISHED] = "published",
    [C_REDIS_BATCHES] = "redis_batches",
    [C_INPUT_FIRST + PL_KIND_BAY] = "input_bay",
    [C_INPUT_FIRST + PL_KIND_GATE] = "input_gate",
    [C_INPUT_FIRST + PL_KIND_COUNT] = "input_count",
};

typedef struct parkd {
    uv_loop_t *loop;
    const char *config_path;
    cfg_config *cfg;
    lot **lots;
    size_t n_lots;
    map *lots_by_id;
    lot **queued;               /* lots changed this turn */
    size_t n_queued, cap_queued;
    bool lot_ids_changed;

    mq_client *mq;
    store *st;
    pub *pub;
    fc_engine *fc;
    metrics *metrics;
    uint64_t latency_counts[METRICS_LATENCY_BUCKETS];   /* cumulative */
    uint64_t latency_count;
    double latency_sum;
    int64_t turn_first_read_ms;     /* wall time of the first unstored message, or 0 */
    uint64_t batched_upto;          /* messages whose effects are in a sent batch */

    uv_check_t flush_check;
    uv_timer_t tick;
    uv_timer_t watchdog;
    uv_timer_t drain;           /* shutdown: waits for pending writes */
    uint64_t stop_deadline;
    uv_signal_t sig_hup, sig_term, sig_int;

    bool restored;              /* state loaded from Redis */
    bool restoring;
    bool ready_sent;
    bool resync_due;            /* write every lot's configuration too (start, reload) */
    bool resync_sensors;        /* and every bay and gate (after a Redis reconnect) */
    bool stopping;
    bool switching_mqtt;        /* a reload replaces the MQTT client */
    uint64_t mq_generation;     /* counts MQTT clients, so old batches never ack new input */
    int open_parts;             /* modules still closing at shutdown */
    int exit_code;

    int64_t started_ms;
    int64_t newest_event_ms;    /* the event clock: newest event time applied */
    int64_t newest_event_wall_ms;
    uint64_t counters[C_COUNT];
    uint64_t last_messages_in;  /* for the STATUS rate */
} parkd;

/* ---- lots ---- */

static lot *parkd_find_lot(const parkd *d, const char *id)
{
    return map_get(d->lots_by_id, id, strlen(id));
}

static void parkd_queue_lot(parkd *d, lot *l)
{
    l->observed = false;
    if (l->queued)
        return;
    l->queued = true;
    util_grow((void **)&d->queued, &d->cap_queued, d->n_queued + 1, sizeof *d->queued);
    d->queued[d->n_queued++] = l;
}

static void parkd_rebuild_index(parkd *d)
{
    map_free(d->lots_by_id);
    d->lots_by_id = map_new();
    for (size_t i = 0; i < d->n_lots; i++)
        map_put(d->lots_by_id, d->lots[i]->id, strlen(d->lots[i]->id), d->lots[i]);
}

static void parkd_create_lots(parkd *d)
{
    d->lots = util_xcalloc(d->cfg->n_lots, sizeof *d->lots);
    for (size_t i = 0; i < d->cfg->n_lots; i++)
        d->lots[d->n_lots++] = lot_new(&d->cfg->lots[i], d->cfg->smoothing.tau_ms);
    parkd_rebuild_index(d);
}

/* The event clock: the newest event time seen, advanced by the wall time since it was seen,
 * so a replay at full speed sees its own time and a live feed sees the wall clock. */
static int64_t parkd_event_clock(const parkd *d)
{
    int64_t wall = util_wall_ms();
    if (d->newest_event_ms == INT64_MIN)
        return wall;
    return d->newest_event_ms + (wall - d->newest_event_wall_ms);
}

static void parkd_update_stale(parkd *d)
{
    int64_t clock = parkd_event_clock(d);
    for (size_t i = 0; i < d->n_lots; i++) {
        if (lot_update_stale(d->lots[i], clock))
            parkd_queue_lot(d, d->lots[i]);
    }
}

/* ---- input ---- */

static void parkd_reject(parkd *d, enum pl_reject reason, const char *topic, const char *detail)
{
    d->counters[C_REJECTED_FIRST + reason]++;
    log_rejected((unsigned)reason, pl_reject_name(reason), topic, detail);
}

static bool parkd_is_own_output(const parkd *d, const char *topic)
{
    const char *out = d->cfg->mqtt.output_prefix;
    size_t n = strlen(out);
    return strncmp(topic, out, n) == 0 && topic[n] == '/';
}

static void parkd_count_outcome(parkd *d, const lot *l, const lot_outcome *o, const char *topic)
{
    switch (o->result) {
    case LOT_APPLIED: d->counters[C_APPLIED]++; break;
    case LOT_UNCHANGED: d->counters[C_UNCHANGED]++; break;
    case LOT_IGNORED_OLD: d->counters[C_IGNORED_OLD]++; break;
    case LOT_IGNORED_DUPLICATE: d->counters[C_IGNORED_DUPLICATE]++; break;
    case LOT_REJECTED:
        parkd_reject(d, o->reject, topic,
                     o->reject == PL_WRONG_KIND ? "input kind not taken by the lot's source"
                                                : "limit reached");
        break;
    }
    if (o->clamped)
        d->counters[C_ANOMALY_CLAMPED]++;
    if (o->capacity_mismatch) {
        d->counters[C_ANOMALY_CAPACITY]++;
        log_rejected(PL_REJECT_COUNT, "capacity_mismatch", topic,
                     "count message capacity differs from the configured one; configured kept");
    }
    if (o->recalibrated && o->correction != 0) {
        d->counters[C_RECALIBRATIONS]++;
        log_info("lot %s: gate count recalibrated by %+" PRId64 " to %" PRId64, l->id,
                 o->correction, l->occupied);
    }
}

static void parkd_on_message(void *ctx, const char *topic, const void *payload, size_t len)
{
    parkd *d = ctx;
    if (parkd_is_own_output(d, topic))
        return;     /* our retained outputs live under the input prefix by default */
    d->counters[C_MESSAGES_IN]++;
    int64_t wall = util_wall_ms();
    if (!d->turn_first_read_ms)
        d->turn_first_read_ms = wall;
    if ((int64_t)len > d->cfg->limits.max_payload) {
        parkd_reject(d, PL_OVERSIZE, topic, "payload larger than limits.max_payload");
        return;
    }
    pl_topic t;
    enum pl_reject r = pl_parse_topic(topic, d->cfg->mqtt.input_prefix, &t);
    if (r != PL_OK) {
        parkd_reject(d, r, topic, r == PL_BAD_ID ? "invalid id" : "unexpected topic");
        return;
    }
    d->counters[C_INPUT_FIRST + t.kind]++;
    lot *l = parkd_find_lot(d, t.lot);
    if (!l) {
        parkd_reject(d, PL_UNKNOWN_LOT, topic, "lot not configured");
        return;
    }
    pl_event ev;
    if (pl_parse_payload(t.kind, payload, len, &ev) != PL_OK) {
        parkd_reject(d, PL_MALFORMED, topic, "malformed payload");
        return;
    }
    int64_t ts = ev.has_ts ? ev.ts_ms : wall;
    if (ts > wall + d->cfg->limits.max_future_ms) {
        parkd_reject(d, PL_FUTURE, topic, "event time too far in the future");
        return;
    }
    lot_outcome o = lot_apply(l, &t, &ev, ts, d->cfg->limits.max_bays_per_lot);
    parkd_count_outcome(d, l, &o, topic);
    if (o.result == LOT_APPLIED || o.result == LOT_UNCHANGED) {
        if (d->newest_event_ms == INT64_MIN || ts > d->newest_event_ms) {
            d->newest_event_ms = ts;
            d->newest_event_wall_ms = wall;
        }
    }
    if (l->dirty || l->n_dirty_bays || l->n_dirty_gates)
        parkd_queue_lot(d, l);
    /* min_interval 0 asks for every change: observe each one, not just a turn's last state.
     * The history entries and publishes join this turn's batch in order. */
    if (o.result == LOT_APPLIED && d->cfg->publish.min_interval_ms == 0 && d->restored) {
        fc_lot_changed(d->fc, l, d->st);
        pub_lot_changed(d->pub, l);
        l->observed = true;
    }
}

/* ---- the storage barrier ---- */

typedef struct parkd_batch {
    parkd *d;
    uint64_t mq_generation;     /* whose messages: a reload may have replaced the client */
    uint64_t upto;              /* messages read when the batch was sent */
    uint64_t messages;          /* of which this batch stores the effect */
    int64_t first_read_ms;
} parkd_batch;

/* Input-to-Redis latency, from the first message of the batch's turn: an upper bound for
 * every message in it. */
static void parkd_observe_latency(parkd *d, const parkd_batch *b)
{
    if (!b->messages || !b->first_read_ms)
        return;
    double seconds = (double)(util_wall_ms() - b->first_read_ms) / 1000.0;
    const double *bounds = metrics_latency_bounds();
    for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
        if (seconds <= bounds[i])
            d->latency_counts[i] += b->messages;
    }
    d->latency_count += b->messages;
    d->latency_sum += seconds * (double)b->messages;
}

/* Without the acknowledgement barrier (QoS 0) input would outrun Redis; this bounds it. */
static void parkd_update_backpressure(parkd *d)
{
    if (d->mq)
        mq_set_backpressure(d->mq, store_batches_in_flight(d->st) >= MAX_BATCHES_IN_FLIGHT);
}

static void parkd_on_batch_done(void *ctx, uint64_t token, bool ok)
{
    parkd_batch *b = (parkd_batch *)(uintptr_t)token;
    parkd *d = b->d;
    if (ok) {
        parkd_observe_latency(d, b);
        if (d->mq && d->mq_generation == b->mq_generation)
            mq_mark_stored(d->mq, b->upto);
    } else if (store_is_connected(d->st) && !d->stopping) {
        /* Redis refused part of it (out of memory, a replica, a rename…): reconnect with
         * backoff, and the reconnect writes every lot in full; input stays unacknowledged. */
        log_error("redis: a batch failed; reconnecting to write the full state again");
        store_reconnect(d->st);
    }
    /* a lost connection needs nothing here: the reconnect writes everything again */
    free(b);
    parkd_update_backpressure(d);
}

static void parkd_batch_queued(parkd *d, int64_t wall)
{
    for (size_t i = 0; i < d->n_queued; i++) {
        lot *l = d->queued[i];
        unsigned what = 0;
        if (d->resync_due)
            what |= STORE_LOT_STATIC | (d->resync_sensors ? STORE_LOT_ALL_SENSORS : 0);
        store_batch_lot(d->st, l, what, wall);
        if (!l->observed) {
            fc_lot_changed(d->fc, l, d->st);
            pub_lot_changed(d->pub, l);
        }
        l->observed = false;
        lot_clear_dirty(l);
        l->queued = false;
    }
    d->n_queued = 0;
}

/* Writes this turn's changes as one MULTI/EXEC; once Redis has it, the input that caused it
 * may be acknowledged. Runs after each poll phase, so a burst of messages costs one batch. */
static void parkd_flush(parkd *d)
{
    if (!d->restored || !store_is_connected(d->st))
        return;     /* lots stay queued and input unacknowledged until Redis is back */
    int64_t wall = util_wall_ms();
    if (d->resync_due) {
        for (size_t i = 0; i < d->n_lots; i++)
            parkd_queue_lot(d, d->lots[i]);
        d->lot_ids_changed = true;
    }
    if (d->lot_ids_changed)
        store_batch_lot_ids(d->st, d->lots, d->n_lots);
    parkd_batch_queued(d, wall);
    d->resync_due = false;
    d->resync_sensors = false;
    d->lot_ids_changed = false;
    uint64_t upto = d->mq ? mq_messages_read(d->mq) : 0;
    parkd_batch *b = util_xmalloc(sizeof *b);
    *b = (parkd_batch){ d, d->mq_generation, upto, upto - d->batched_upto, d->turn_first_read_ms };
    int rc = store_batch_commit(d->st, (uint64_t)(uintptr_t)b, parkd_on_batch_done, d);
    if (rc != 0)
        free(b);
    if (rc == 0 || rc == -ENODATA) {
        d->batched_upto = upto;
        d->turn_first_read_ms = 0;
    }
    if (rc == 0) {
        d->counters[C_REDIS_BATCHES]++;
        parkd_update_backpressure(d);
    } else if (rc == -ENODATA && store_batches_in_flight(d->st) == 0 && d->mq) {
        mq_mark_stored(d->mq, upto);    /* nothing to store: rejected or repeated input */
    } else if (rc == -ENOTCONN) {
        d->resync_due = d->resync_sensors = true;
    }
}

static void parkd_on_check(uv_check_t *handle)
{
    parkd_flush(handle->data);
}

/* ---- startup: Redis, restore, then MQTT ---- */

static void parkd_on_mqtt_connected(void *ctx)
{
    parkd *d = ctx;
    pub_republish_all(d->pub);
    if (!d->ready_sent) {
        d->ready_sent = true;
        log_info("parkd %s ready: %zu lots", PARKD_VERSION, d->n_lots);
        notify_ready();
    }
}

static void parkd_on_mqtt_disconnected(void *ctx)
{
    (void)ctx;
}

static const mq_callbacks parkd_mq_callbacks = {
    .on_message = parkd_on_message,
    .on_connected = parkd_on_mqtt_connected,
    .on_disconnected = parkd_on_mqtt_disconnected,
};

static void parkd_fail(parkd *d, int code);

static void parkd_start_mqtt(parkd *d)
{
    char *err = NULL;
    d->mq = mq_new(d->loop, d->cfg, &parkd_mq_callbacks, d, &err);
    if (!d->mq) {
        log_error("%s", err);
        free(err);
        parkd_fail(d, EXIT_CONFIG);
        return;
    }
    pub_set_mqtt(d->pub, d->mq);
    int rc = mq_start(d->mq);
    if (rc < 0) {
        log_error("mqtt: cannot start: %s", uv_strerror(rc));
        parkd_fail(d, 1);
    }
}

static void parkd_on_restored(void *ctx, int status)
{
    parkd *d = ctx;
    d->restoring = false;
    if (status < 0) {
        log_warning("redis: restore interrupted; retrying once reconnected");
        return;
    }
    size_t with_data = 0;
    for (size_t i = 0; i < d->n_lots; i++) {
        lot *l = d->lots[i];
        with_data += l->has_data;
        if (l->has_data && (d->newest_event_ms == INT64_MIN || l->ts_ms > d->newest_event_ms)) {
            d->newest_event_ms = l->ts_ms;
            d->newest_event_wall_ms = util_wall_ms();
        }
        pub_add_lot(d->pub, l);
    }
    log_info("restored state of %zu lots (%zu with data) from redis", d->n_lots, with_data);
    d->restored = true;
    d->resync_due = true;
    parkd_update_stale(d);
    parkd_start_mqtt(d);
}

/* Lot state first, then what the forecaster learned. */
static void parkd_on_lots_restored(void *ctx, int status)
{
    parkd *d = ctx;
    if (status < 0) {
        parkd_on_restored(d, status);
        return;
    }
    int rc = fc_restore(d->fc, d->st, d->lots, d->n_lots, parkd_on_restored, d);
    if (rc < 0)
        parkd_on_restored(d, rc);
}

static void parkd_on_redis_connected(void *ctx)
{
    parkd *d = ctx;
    if (d->restored) {
        /* whatever failed in flight, and whatever Redis lost (a restart without persistence) */
        d->resync_due = d->resync_sensors = true;
        parkd_flush(d);
        return;
    }
    if (d->restoring)
        return;
    d->restoring = true;
    int rc = store_restore(d->st, d->lots, d->n_lots, parkd_on_lots_restored, d);
    if (rc < 0) {
        d->restoring = false;
        log_warning("redis: cannot restore yet: %s", strerror(-rc));
    }
}

static void parkd_on_redis_disconnected(void *ctx)
{
    parkd *d = ctx;
    d->resync_due = d->resync_sensors = true;
}

static const store_callbacks parkd_store_callbacks = {
    .on_connected = parkd_on_redis_connected,
    .on_disconnected = parkd_on_redis_disconnected,
};

/* ---- periodic work ---- */

static void parkd_write_counters(parkd *d)
{
    if (d->pub)
        d->counters[C_PUBLISHED] = pub_published(d->pub);
    store_counters c = { counter_names, d->counters, C_COUNT };
    store_write_daemon(d->st, d->started_ms, &c);
}

static void parkd_update_status(parkd *d)
{
    char status[200];
    uint64_t in = d->counters[C_MESSAGES_IN];
    uint64_t rate = (in - d->last_messages_in) * 1000 / TICK_MS;
    d->last_messages_in = in;
    snprintf(status, sizeof status, "%zu lots, %" PRIu64 " msg/s, redis %s, mqtt %s", d->n_lots,
             rate, store_is_connected(d->st) ? "up" : "down",
             d->mq && mq_is_connected(d->mq) ? "up" : "down");
    notify_status(status);
}

static void parkd_update_metrics(parkd *d)
{
    if (!d->metrics)
        return;
    metrics_snapshot snap = {
        .counter_names = counter_names,
        .counters = d->counters,
        .n_counters = C_COUNT,
        .mqtt_up = d->mq && mq_is_connected(d->mq),
        .redis_up = store_is_connected(d->st),
        .mqtt_reconnects = d->mq ? mq_reconnects(d->mq) : 0,
        .redis_reconnects = store_reconnects(d->st),
        .lots = d->lots,
        .n_lots = d->n_lots,
        .latency_bounds = metrics_latency_bounds(),
        .latency_counts = d->latency_counts,
        .latency_count = d->latency_count,
        .latency_sum_seconds = d->latency_sum,
        .started_ms = d->started_ms,
    };
    metrics_update(d->metrics, &snap);
}

static void parkd_start_metrics(parkd *d)
{
    if (!d->cfg->metrics.listen)
        return;
    char *err = NULL;
    if (metrics_start(d->cfg->metrics.listen, &d->metrics, &err) < 0) {
        log_error("%s", err);
        free(err);
        return;
    }
    log_info("metrics: serving http://%s/metrics", d->cfg->metrics.listen);
    parkd_update_metrics(d);
}

static void parkd_on_tick(uv_timer_t *timer)
{
    parkd *d = timer->data;
    if (d->restored && !d->stopping) {
        parkd_update_stale(d);
        parkd_flush(d);
    }
    parkd_write_counters(d);
    parkd_update_metrics(d);
    parkd_update_status(d);
}

static void parkd_on_watchdog(uv_timer_t *timer)
{
    (void)timer;
    notify_watchdog();
}

/* ---- reload ---- */

static void parkd_remove_lot(parkd *d, size_t index)
{
    lot *l = d->lots[index];
    log_info("reload: lot %s removed (its keys stay)", l->id);
    pub_remove_lot(d->pub, l);
    fc_forget_lot(d->fc, l);
    if (l->queued) {
        for (size_t i = 0; i < d->n_queued; i++) {
            if (d->queued[i] == l) {
                d->queued[i] = d->queued[--d->n_queued];
                break;
            }
        }
    }
    lot_free(l);
    memmove(&d->lots[index], &d->lots[index + 1], (d->n_lots - index - 1) * sizeof *d->lots);
    d->n_lots--;
}

typedef struct parkd_mq_switch {
    parkd *d;
    mq_client *old;
} parkd_mq_switch;

typedef struct parkd_reload_job {
    parkd *d;
    bool fc_done;
    lot **added;
    size_t n_added;
} parkd_reload_job;

static void parkd_on_added_restored(void *ctx, int status)
{
    parkd_reload_job *job = ctx;
    parkd *d = job->d;
    if (status == 0 && !job->fc_done) {
        job->fc_done = true;
        if (fc_restore(d->fc, d->st, job->added, job->n_added, parkd_on_added_restored, job) == 0)
            return;
        status = -EIO;
    }
    if (status < 0)
        log_warning("reload: restore of added lots failed; they start empty");
    for (size_t i = 0; i < job->n_added; i++) {
        pub_add_lot(d->pub, job->added[i]);
        parkd_queue_lot(d, job->added[i]);
    }
    free(job->added);
    free(job);
    if (d->mq)
        mq_set_paused(d->mq, false);
}

static void parkd_apply_lots(parkd *d, const cfg_config *cfg, parkd_reload_job *job)
{
    for (size_t i = d->n_lots; i-- > 0;) {
        if (!cfg_find_lot(cfg, d->lots[i]->id))
            parkd_remove_lot(d, i);
    }
    job->added = util_xcalloc(cfg->n_lots + 1, sizeof *job->added);
    lot **next = util_xcalloc(cfg->n_lots + 1, sizeof *next);
    for (size_t i = 0; i < cfg->n_lots; i++) {
        lot *l = parkd_find_lot(d, cfg->lots[i].id);
        if (l) {
            lot_configure(l, &cfg->lots[i], cfg->smoothing.tau_ms);
            parkd_queue_lot(d, l);
        } else {
            l = lot_new(&cfg->lots[i], cfg->smoothing.tau_ms);
            job->added[job->n_added++] = l;
            log_info("reload: lot %s added", l->id);
        }
        next[i] = l;
    }
    free(d->lots);
    d->lots = next;
    d->n_lots = cfg->n_lots;
    d->lot_ids_changed = true;
    parkd_rebuild_index(d);
}

static bool parkd_str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static bool parkd_mqtt_changed(const cfg_config *a, const cfg_config *b)
{
    return parkd_str_differs(a->mqtt.host, b->mqtt.host) || a->mqtt.port != b->mqtt.port ||
           parkd_str_differs(a->mqtt.client_id, b->mqtt.client_id) ||
           parkd_str_differs(a->mqtt.username, b->mqtt.username) ||
           parkd_str_differs(a->mqtt.password_file, b->mqtt.password_file) ||
           parkd_str_differs(a->mqtt.tls_ca_file, b->mqtt.tls_ca_file) ||
           parkd_str_differs(a->mqtt.tls_cert_file, b->mqtt.tls_cert_file) ||
           parkd_str_differs(a->mqtt.tls_key_file, b->mqtt.tls_key_file) ||
           a->mqtt.keepalive_ms != b->mqtt.keepalive_ms || a->mqtt.qos != b->mqtt.qos ||
           a->mqtt.clean_session != b->mqtt.clean_session ||
           parkd_str_differs(a->mqtt.input_prefix, b->mqtt.input_prefix) ||
           parkd_str_differs(a->mqtt.output_prefix, b->mqtt.output_prefix);
}

static bool parkd_redis_changed(const cfg_config *a, const cfg_config *b)
{
    return parkd_str_differs(a->redis.host, b->redis.host) || a->redis.port != b->redis.port ||
           parkd_str_differs(a->redis.socket, b->redis.socket) ||
           parkd_str_differs(a->redis.username, b->redis.username) ||
           parkd_str_differs(a->redis.password_file, b->redis.password_file) ||
           a->redis.db != b->redis.db || parkd_str_differs(a->redis.prefix, b->redis.prefix);
}

/* The old client says offline and goes; the new one starts only then, since both would use
 * the same client id and session. */
static void parkd_on_old_mqtt_closed(void *ctx)
{
    parkd_mq_switch *sw = ctx;
    parkd *d = sw->d;
    mq_free(sw->old);
    if (d->stopping) {
        mq_free(d->mq);     /* never started */
        d->mq = NULL;
    } else {
        pub_set_mqtt(d->pub, d->mq);
        int rc = mq_start(d->mq);
        if (rc < 0)
            log_error("mqtt: cannot start: %s", uv_strerror(rc));
    }
    d->switching_mqtt = false;
    free(sw);
}

/* Creates the client for NEXT's mqtt section before anything is applied, so a reload with
 * bad MQTT settings is rejected whole. */
static int parkd_prepare_mqtt(parkd *d, const cfg_config *next, mq_client **out)
{
    *out = NULL;
    if (!d->mq || !parkd_mqtt_changed(d->cfg, next))
        return 0;
    if (d->switching_mqtt) {
        log_error("reload: the previous mqtt change is still in progress");
        return -EBUSY;
    }
    char *err = NULL;
    *out = mq_new(d->loop, next, &parkd_mq_callbacks, d, &err);
    if (!*out) {
        log_error("reload: configuration rejected, keeping the running one: %s", err);
        free(err);
        return -EINVAL;
    }
    return 0;
}

static void parkd_switch_mqtt(parkd *d, mq_client *next_mq, const cfg_config *next)
{
    log_info("reload: mqtt settings changed, reconnecting");
    parkd_mq_switch *sw = util_xmalloc(sizeof *sw);
    sw->d = d;
    sw->old = d->mq;
    mq_set_config(sw->old, next);
    d->mq = next_mq;
    d->switching_mqtt = true;
    d->mq_generation++;
    d->batched_upto = 0;
    pub_set_mqtt(d->pub, NULL);
    mq_close(sw->old, 2000, parkd_on_old_mqtt_closed, sw);
}

static void parkd_reload(parkd *d)
{
    notify_reloading();
    cfg_config *next = NULL;
    char *errors = NULL;
    if (cfg_load(d->config_path, &next, &errors) < 0) {
        log_error("reload: configuration rejected, keeping the running one:\n%s", errors);
        free(errors);
        notify_ready();
        return;
    }
    if (!d->restored) {
        log_warning("reload: ignored until the state is restored");
        cfg_free(next);
        notify_ready();
        return;
    }
    mq_client *next_mq;
    if (parkd_prepare_mqtt(d, next, &next_mq) < 0) {
        cfg_free(next);
        notify_ready();
        return;
    }
    bool redis_changed = parkd_redis_changed(d->cfg, next);
    parkd_reload_job *job = util_xcalloc(1, sizeof *job);
    job->d = d;
    parkd_apply_lots(d, next, job);
    d->resync_due = true;       /* names, capacities and positions into every lot hash */
    log_set_level(next->log_level);
    pub_set_config(d->pub, next);
    fc_set_config(d->fc, next);
    if (next_mq)
        parkd_switch_mqtt(d, next_mq, next);
    else if (d->mq)
        mq_set_config(d->mq, next);
    store_set_config(d->st, next);
    cfg_free(d->cfg);   /* only once no module holds it */
    d->cfg = next;
    if (redis_changed) {
        log_info("reload: redis settings changed, reconnecting");
        store_reconnect(d->st);     /* the reconnect writes every lot in full */
    }
    if (job->n_added && store_is_connected(d->st)) {
        /* added lots may have been configured before: restore them before any input */
        if (d->mq)
            mq_set_paused(d->mq, true);
        if (store_restore(d->st, job->added, job->n_added, parkd_on_added_restored, job) == 0) {
            log_info("reload: %zu lots", d->n_lots);
            notify_ready();
            return;
        }
    }
    parkd_on_added_restored(job, job->n_added ? -EIO : 0);
    log_info("reload: %zu lots", d->n_lots);
    notify_ready();
}

/* ---- shutdown ---- */

static void parkd_on_part_closed(void *ctx)
{
    parkd *d = ctx;
    d->open_parts--;
}

static void parkd_on_mqtt_closed(void *ctx)
{
    parkd *d = ctx;
    store_close(d->st, parkd_on_part_closed, d);
}

static void parkd_close_handles(parkd *d)
{
    uv_close((uv_handle_t *)&d->flush_check, NULL);
    uv_close((uv_handle_t *)&d->tick, NULL);
    uv_close((uv_handle_t *)&d->watchdog, NULL);
    uv_close((uv_handle_t *)&d->drain, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_int, NULL);
}

static void parkd_finish_stop(parkd *d)
{
    uv_timer_stop(&d->drain);
    if (d->restored && d->mq)
        pub_flush_pending(d->pub);
    parkd_write_counters(d);
    d->open_parts = 2;
    pub_close(d->pub, parkd_on_part_closed, d);
    if (d->mq) {
        uint64_t now = uv_now(d->loop);
        mq_close(d->mq, d->stop_deadline > now ? d->stop_deadline - now : 0,
                 parkd_on_mqtt_closed, d);
    } else {
        store_close(d->st, parkd_on_part_closed, d);
    }
    parkd_close_handles(d);
}

/* Waits until every change is in Redis (or Redis is gone, or the deadline passed). */
static void parkd_on_drain_tick(uv_timer_t *timer)
{
    parkd *d = timer->data;
    parkd_flush(d);
    bool drained = !store_is_connected(d->st) || !d->restored ||
                   (store_batches_in_flight(d->st) == 0 && d->n_queued == 0);
    if (!drained && uv_now(d->loop) < d->stop_deadline)
        return;
    if (!drained)
        log_error("shutdown: redis did not take every pending write in time");
    parkd_finish_stop(d);
}

static void parkd_stop(parkd *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    notify_stopping();
    log_info("stopping: flushing pending writes and publishes");
    if (d->mq)
        mq_stop_input(d->mq);
    d->stop_deadline = uv_now(d->loop) + SHUTDOWN_TIMEOUT_MS;
    parkd_flush(d);
    uv_timer_start(&d->drain, parkd_on_drain_tick, 0, 10);
}

static void parkd_fail(parkd *d, int code)
{
    d->exit_code = code;
    parkd_stop(d);
}

static void parkd_on_signal(uv_signal_t *handle, int signum)
{
    parkd *d = handle->data;
    if (signum == SIGHUP) {
        if (!d->stopping)
            parkd_reload(d);
        return;
    }
    parkd_stop(d);
}

/* ---- main ---- */

static void parkd_usage(FILE *out)
{
    fprintf(out,
            "usage: parkd -c FILE [--check]\n"
            "       parkd --version | --help\n"
            "Real-time parking availability: MQTT sensor input, occupancy in Redis,\n"
            "availability and forecasts on retained MQTT topics.\n"
            "  -c, --config FILE  configuration (YAML)\n"
            "  --check            validate the configuration, print \"FILE: ok\" or the errors\n"
            "  --version          print the version\n"
            "  --help             this text\n"
            "Signals: HUP reloads the configuration; TERM/INT stop cleanly.\n"
            "Exit status: 0 ok, 78 configuration error, 1 other fatal error.\n");
}

typedef struct parkd_args {
    const char *config;
    bool check;
} parkd_args;

/* Returns -1 to go on, else an exit status. */
static int parkd_parse_args(int argc, char **argv, parkd_args *a)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'k' },
        { "version", no_argument, NULL, 'V' },      { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 'k': a->check = true; break;
        case 'V': printf("parkd %s\n", PARKD_VERSION); return 0;
        case 'h': parkd_usage(stdout); return 0;
        default: parkd_usage(stderr); return 64;
        }
    }
    if (!a->config || optind != argc) {
        parkd_usage(stderr);
        return 64;
    }
    return -1;
}

static void parkd_init_handles(parkd *d)
{
    uv_check_init(d->loop, &d->flush_check);
    d->flush_check.data = d;
    uv_check_start(&d->flush_check, parkd_on_check);
    uv_timer_init(d->loop, &d->tick);
    d->tick.data = d;
    uv_timer_start(&d->tick, parkd_on_tick, TICK_MS, TICK_MS);
    uv_timer_init(d->loop, &d->watchdog);
    d->watchdog.data = d;
    uint64_t wd = notify_watchdog_interval_ms();
    if (wd)
        uv_timer_start(&d->watchdog, parkd_on_watchdog, wd, wd);
    uv_timer_init(d->loop, &d->drain);
    d->drain.data = d;
    uv_signal_t *sigs[] = { &d->sig_hup, &d->sig_term, &d->sig_int };
    int signums[] = { SIGHUP, SIGTERM, SIGINT };
    for (int i = 0; i < 3; i++) {
        uv_signal_init(d->loop, sigs[i]);
        sigs[i]->data = d;
        uv_signal_start(sigs[i], parkd_on_signal, signums[i]);
    }
}

static void parkd_publish_forecast(void *ctx, lot *l)
{
    parkd *d = ctx;
    fc_publish(d->fc, l, d->mq, d->st);
}

static void parkd_free(parkd *d)
{
    for (size_t i = 0; i < d->n_lots; i++) {
        fc_forget_lot(d->fc, d->lots[i]);
        lot_free(d->lots[i]);
    }
    fc_free(d->fc);
    metrics_stop(d->metrics);
    free(d->lots);
    free(d->queued);
    map_free(d->lots_by_id);
    mq_free(d->mq);
    store_free(d->st);
    pub_free(d->pub);
    cfg_free(d->cfg);
}

static int parkd_load_config(const parkd_args *a, cfg_config **cfg)
{
    char *errors = NULL;
    if (cfg_load(a->config, cfg, &errors) < 0) {
        if (a->check) {
            fputs(errors, stderr);
        } else {
            /* log lines: under systemd each error becomes a journal entry of priority error */
            log_init(CFG_LOG_INFO);
            log_error("%s", errors);
            log_error("configuration rejected: not starting");
        }
        free(errors);
        return EXIT_CONFIG;
    }
    char *warnings = NULL;
    if (cfg_check_secret_files(*cfg, &warnings) > 0) {
        if (a->check) {
            fputs(warnings, stderr);
        } else {
            log_init((*cfg)->log_level);
            log_warning("%s", warnings);
        }
        free(warnings);
    }
    if (a->check) {
        printf("%s: ok\n", a->config);
        cfg_free(*cfg);
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    parkd_args args = { 0 };
    int rc = parkd_parse_args(argc, argv, &args);
    if (rc >= 0)
        return rc;
    parkd d = { .config_path = args.config, .newest_event_ms = INT64_MIN };
    rc = parkd_load_config(&args, &d.cfg);
    if (rc >= 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    log_init(d.cfg->log_level);
    notify_init();
    mq_library_init();
    d.loop = uv_default_loop();
    d.started_ms = util_wall_ms();
    parkd_create_lots(&d);
    d.st = store_new(d.loop, d.cfg, &parkd_store_callbacks, &d);
    d.pub = pub_new(d.loop, d.cfg, NULL, d.st);
    d.fc = fc_new(d.cfg);
    pub_set_extra(d.pub, parkd_publish_forecast, &d);
    parkd_init_handles(&d);
    parkd_start_metrics(&d);
    if (pub_start(d.pub) < 0 || store_start(d.st) < 0) {
        log_error("cannot start timers");
        d.exit_code = 1;
        parkd_stop(&d);
    }
    log_info("parkd %s starting: %zu lots, redis %s:%d, mqtt %s:%d", PARKD_VERSION, d.n_lots,
             d.cfg->redis.socket ? d.cfg->redis.socket : d.cfg->redis.host, d.cfg->redis.port,
             d.cfg->mqtt.host, d.cfg->mqtt.port);
    uv_run(d.loop, UV_RUN_DEFAULT);
    log_info("stopped");
    parkd_free(&d);
    rc = uv_loop_close(d.loop);
    if (rc < 0)
        log_warning("loop closed with handles open: %s", uv_strerror(rc));
    mq_library_cleanup();
    return d.exit_code;
}
