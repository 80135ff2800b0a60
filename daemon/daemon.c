#include "daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feeds.h"
#include "forecast.h"
#include "ha.h"
#include "http.h"
#include "log.h"
#include "lot.h"
#include "metrics.h"
#include "mqtt.h"
#include "notify.h"
#include "opendata.h"
#include "pipeline.h"
#include "reload.h"
#include "store.h"
#include "util.h"

#define EXIT_CONFIG 78
#define TICK_MS 1000
#define DRAIN_POLL_MS 10
#define SHUTDOWN_TIMEOUT_MS 5000
#define RESTORE_RETRY_MS 1000
#define MQTT_SWITCH_TIMEOUT_MS 2000

struct parkd {
    uv_loop_t *loop;
    const char *config_path;
    cfg_config *cfg;
    enum daemon_state state;
    int exit_code;
    int64_t started_ms;

    store *st;
    fc_engine *fc;
    pipeline *pipe;
    mq_client *mq;
    mq_client *mq_next;         /* a reload's new client, started once the old one closed */
    feeds *feeds;               /* the inputs' own connections (SPEC §9) */
    ha *ha;                     /* the lease (SPEC §11); NULL without an ha section */
    inp_set *inputs;            /* the inputs, with their devices files (owned) */
    http_server *api;           /* http.listen: the API, and /metrics */
    http_server *metrics_srv;   /* metrics.listen when it is another address than http.listen */
    uint64_t last_snapshot;     /* uv_now of the last API snapshot */
    od_snapshot *snap;          /* that snapshot (a reference), reused by the next one */
    bool snap_reset;            /* the next snapshot computes every forecast (a reload) */
    uint64_t snap_ms;           /* how long building it took the loop */

    lot **restoring;            /* lots being restored: not running yet (owned until added) */
    size_t n_restoring;
    bool restore_in_flight;
    bool reload_again;          /* a SIGHUP came while a reload was restoring */
    bool mqtt_up;               /* subscribed at least once since start */
    bool ready_sent;

    uv_timer_t tick, watchdog, drain, retry;
    uv_signal_t sig_hup, sig_term, sig_int;
    uint64_t stop_deadline;
    int open_parts;             /* modules still closing at shutdown */
    uint64_t last_messages_in;  /* for the STATUS rate */
    uint64_t msg_rate;          /* messages per second over the last tick */
};

static void daemon_stop(parkd *d, int exit_code);
static void daemon_on_store_closed(void *ctx);
static uint64_t daemon_stop_time_left(const parkd *d);
static void daemon_reload(parkd *d);
static void daemon_restore_pending(parkd *d);

static const char *const daemon_state_names[] = {
    [DAEMON_CONNECTING] = "connecting", [DAEMON_RESTORING] = "restoring",
    [DAEMON_STARTING] = "starting", [DAEMON_READY] = "ready", [DAEMON_RELOADING] = "reloading",
    [DAEMON_DRAINING] = "draining", [DAEMON_STOPPED] = "stopped",
    [DAEMON_STANDBY] = "standby",
};

const char *daemon_state_name(enum daemon_state s)
{
    return daemon_state_names[s];
}

enum daemon_state daemon_state(const parkd *d)
{
    return d->state;
}

int daemon_exit_code(const parkd *d)
{
    return d->exit_code;
}

static void daemon_update_status(parkd *d);

static void daemon_set_state(parkd *d, enum daemon_state s)
{
    if (d->state == s)
        return;
    log_debug("daemon: %s -> %s", daemon_state_names[d->state], daemon_state_names[s]);
    d->state = s;
    daemon_update_status(d);
}

static bool daemon_running(const parkd *d)
{
    return d->state == DAEMON_STARTING || d->state == DAEMON_READY ||
           d->state == DAEMON_RELOADING || d->state == DAEMON_DRAINING;
}

/* ---- READY: restored, subscribed, and the identity stored ---- */

static void daemon_maybe_ready(parkd *d)
{
    if (d->state != DAEMON_STARTING || !d->mqtt_up || !pipe_daemon_stored(d->pipe))
        return;
    daemon_set_state(d, DAEMON_READY);
    if (!d->ready_sent) {
        d->ready_sent = true;
        size_t n;
        pipe_lots(d->pipe, &n);
        log_info("parkd %s ready: %zu lots", PARKD_VERSION, n);
        notify_ready();
    }
}

static void daemon_publish_snapshot(parkd *d);

/* After a confirmed batch the API shows what is now in Redis; at most every
 * SNAPSHOT_MIN_INTERVAL_MS, since a busy loop confirms a batch per turn, and never more than
 * 1/SNAPSHOT_LOOP_SHARE of the loop's time (a snapshot of 20,000 lots takes ~10-20 ms). */
#define SNAPSHOT_MIN_INTERVAL_MS 200
#define SNAPSHOT_LOOP_SHARE 20

static void daemon_on_stored(void *ctx)
{
    parkd *d = ctx;
    daemon_maybe_ready(d);
    uint64_t gap = d->snap_ms * SNAPSHOT_LOOP_SHARE;
    if (gap < SNAPSHOT_MIN_INTERVAL_MS)
        gap = SNAPSHOT_MIN_INTERVAL_MS;
    if (d->api && uv_now(d->loop) - d->last_snapshot >= gap)
        daemon_publish_snapshot(d);
}

/* ---- MQTT ---- */

static void daemon_on_message(void *ctx, const char *topic, const void *payload, size_t len)
{
    parkd *d = ctx;
    pipe_on_message(d->pipe, topic, payload, len);
}

static void daemon_on_mqtt_connected(void *ctx)
{
    parkd *d = ctx;
    d->mqtt_up = true;
    pipe_republish_all(d->pipe);
    pipe_flush(d->pipe, false);
    daemon_maybe_ready(d);
}

static void daemon_on_mqtt_disconnected(void *ctx)
{
    (void)ctx;
}

static const mq_callbacks daemon_mq_callbacks = {
    .on_message = daemon_on_message,
    .on_connected = daemon_on_mqtt_connected,
    .on_disconnected = daemon_on_mqtt_disconnected,
};

static void daemon_start_mqtt(parkd *d)
{
    char *err = NULL;
    mq_settings set;
    mq_settings_main(d->cfg, &set);
    d->mq = mq_new(d->loop, &set, &daemon_mq_callbacks, d, &err);
    if (!d->mq || feed_prepare(d->feeds, d->cfg, &err) < 0) {
        log_error("%s", err);
        free(err);
        daemon_stop(d, EXIT_CONFIG);
        return;
    }
    pipe_set_mqtt(d->pipe, d->mq);
    int rc = mq_start(d->mq);
    if (rc < 0) {
        log_error("mqtt: cannot start: %s", uv_strerror(rc));
        daemon_stop(d, 1);
        return;
    }
    feed_switch(d->feeds);
}

/* ---- restore: the lots in d->restoring, before they run ---- */

static void daemon_on_model(void *ctx, lot *l, size_t n, const char *const *fields,
                            const char *const *values)
{
    parkd *d = ctx;
    fc_restore_lot(d->fc, l, n, fields, values);
}

/* The restored lots start running, in configuration order. */
static void daemon_run_restored(parkd *d)
{
    size_t with_data = 0;
    for (size_t i = 0; i < d->n_restoring; i++) {
        with_data += d->restoring[i]->has_data;
        pipe_add_lot(d->pipe, d->restoring[i]);
    }
    log_info("restored state of %zu lots (%zu with data) from redis", d->n_restoring, with_data);
    free(d->restoring);
    d->restoring = NULL;
    d->n_restoring = 0;
    char **ids = util_xcalloc(d->cfg->n_lots + 1, sizeof *ids);
    for (size_t i = 0; i < d->cfg->n_lots; i++)
        ids[i] = d->cfg->lots[i].id;
    pipe_order_lots(d->pipe, ids, d->cfg->n_lots);
    free(ids);
}

static void daemon_on_retry(uv_timer_t *timer)
{
    daemon_restore_pending(timer->data);
}

static void daemon_on_restored(void *ctx, int status)
{
    parkd *d = ctx;
    d->restore_in_flight = false;
    if (d->state == DAEMON_DRAINING || d->state == DAEMON_STOPPED)
        return;     /* the lots in d->restoring are freed with the daemon */
    if (status < 0) {
        /* a lost connection retries on reconnect; a refused read (a key of the wrong type)
         * retries after a pause, and the lots never run on a guess */
        log_warning("redis: restore failed; retrying");
        if (store_is_connected(d->st) && uv_timer_start(&d->retry, daemon_on_retry,
                                                        RESTORE_RETRY_MS, 0) < 0)
            log_error("redis: cannot schedule the restore retry");
        return;
    }
    daemon_run_restored(d);
    if (d->state == DAEMON_RESTORING) {
        daemon_set_state(d, DAEMON_STARTING);
        pipe_write_daemon(d->pipe);     /* the identity, before READY */
        pipe_flush(d->pipe, false);
        daemon_start_mqtt(d);
        return;
    }
    /* a reload's added lots */
    if (d->mq)
        mq_set_paused(d->mq, false);
    feed_set_paused(d->feeds, false);
    pipe_flush(d->pipe, false);
    daemon_set_state(d, DAEMON_READY);
    size_t n;
    pipe_lots(d->pipe, &n);
    log_info("reload: %zu lots", n);
    notify_ready();
    if (d->reload_again) {
        d->reload_again = false;
        daemon_reload(d);
    }
}

/* Restores d->restoring if Redis is up and no restore runs; else waits for on_connected. */
static void daemon_restore_pending(parkd *d)
{
    if (d->restore_in_flight || !d->n_restoring || !store_is_connected(d->st))
        return;
    d->restore_in_flight = true;
    int rc = store_restore(d->st, d->restoring, d->n_restoring, daemon_on_model,
                           daemon_on_restored, d);
    if (rc < 0) {
        d->restore_in_flight = false;
        log_warning("redis: cannot restore yet: %s", strerror(-rc));
    }
}

static void daemon_create_lots(parkd *d, const cfg_lot *const *lots, size_t n)
{
    if (n == 0)
        return;     /* a reload that adds nothing restores nothing */
    d->restoring = util_xcalloc(n + 1, sizeof *d->restoring);
    for (size_t i = 0; i < n; i++)
        d->restoring[d->n_restoring++] = lot_new(lots[i], d->cfg->smoothing.tau_ms);
}

/* ---- Redis ---- */

static void daemon_on_redis_connected(void *ctx, bool intact)
{
    parkd *d = ctx;
    if (d->ha && !ha_is_active(d->ha)) {
        /* a standby restores nothing until it holds the lease: another instance writes */
        if (d->state == DAEMON_CONNECTING)
            daemon_set_state(d, DAEMON_STANDBY);
        return;
    }
    if (d->state == DAEMON_CONNECTING)
        daemon_set_state(d, DAEMON_RESTORING);
    if (daemon_running(d)) {
        /* Not intact: what failed in flight, and whatever Redis lost (a restart without
         * persistence), is written again. Intact: Redis has it all, and the store resends
         * what it had not executed. */
        if (!intact)
            pipe_resync_all(d->pipe);
        pipe_flush(d->pipe, d->state == DAEMON_DRAINING);
    }
    daemon_restore_pending(d);
}

/* Nothing to do until on_connected says whether Redis lost anything. */
static void daemon_on_redis_disconnected(void *ctx)
{
    (void)ctx;
}

static void daemon_step_down(parkd *d, const char *why);

static void daemon_on_fenced(void *ctx)
{
    daemon_step_down(ctx, "another instance's epoch fenced a write");
}

static const store_callbacks daemon_store_callbacks = {
    .on_connected = daemon_on_redis_connected,
    .on_disconnected = daemon_on_redis_disconnected,
    .on_fenced = daemon_on_fenced,
};

/* ---- high availability (SPEC §11) ---- */

#define EXIT_STEPPED_DOWN 75    /* EX_TEMPFAIL: systemd's Restart= brings it back as standby */

/* An active that lost the lease stops reading and writing at once: it exits without another
 * byte to Redis or the broker (its MQTT session is the new active's now, or will be; its
 * unacknowledged input is redelivered there). Restarted, it is a standby with fresh state. */
static void daemon_step_down(parkd *d, const char *why)
{
    (void)d;
    log_error("ha: lease lost (%s): stepping down now, exit %d", why, EXIT_STEPPED_DOWN);
    notify_status("stepping down: lease lost");
    fflush(stderr);
    _exit(EXIT_STEPPED_DOWN);
}

static void daemon_on_lease_won(void *ctx, uint64_t epoch)
{
    parkd *d = ctx;
    store_set_fence(d->st, epoch);
    store_set_leader(d->st, ha_instance(d->ha), d->cfg->ha.lease_ms * 10);
    if (d->state == DAEMON_STANDBY || d->state == DAEMON_CONNECTING)
        daemon_set_state(d, DAEMON_RESTORING);
    daemon_update_status(d);
    daemon_restore_pending(d);  /* everything first; MQTT only once it is restored */
}

static void daemon_on_lease_lost(void *ctx, const char *why)
{
    daemon_step_down(ctx, why);
}

static void daemon_on_standby(void *ctx)
{
    parkd *d = ctx;
    daemon_update_status(d);
    if (!d->ready_sent) {
        d->ready_sent = true;
        log_info("parkd %s ready as standby", PARKD_VERSION);
        notify_ready();
    }
}

static const ha_callbacks daemon_ha_callbacks = {
    .on_won = daemon_on_lease_won,
    .on_lost = daemon_on_lease_lost,
    .on_standby = daemon_on_standby,
};

/* ---- periodic work ---- */

static const char *daemon_redis_state(const parkd *d)
{
    if (!store_is_connected(d->st))
        return "down";
    return store_is_refusing(d->st) ? "refusing writes" : "up";
}

/* While Redis does not store, input is held and the broker connection lapses with it: say that
 * the broker is not the cause. */
static const char *daemon_mqtt_state(const parkd *d)
{
    if (d->mq && mq_is_connected(d->mq))
        return "up";
    return store_is_writable(d->st) ? "down" : "down (input waits for redis)";
}

static void daemon_update_status(parkd *d)
{
    /* the configured lots (restored or not yet); the state only while it is not plain ready */
    char status[200];
    int len = snprintf(status, sizeof status, "%zu lots, %" PRIu64 " msg/s, redis %s, mqtt %s",
                       d->cfg->n_lots, d->msg_rate, daemon_redis_state(d),
                       daemon_mqtt_state(d));
    if (d->ha && len > 0 && (size_t)len < sizeof status)
        len += snprintf(status + len, sizeof status - (size_t)len, ", %s %s (epoch %" PRIu64
                        ", leader %s)", ha_role(d->ha), ha_instance(d->ha), ha_epoch(d->ha),
                        ha_leader(d->ha)[0] ? ha_leader(d->ha) : "none");
    size_t n_feeds = feed_count(d->feeds);
    if (n_feeds && len > 0 && (size_t)len < sizeof status)
        len += snprintf(status + len, sizeof status - (size_t)len, ", inputs %zu/%zu up",
                        feed_connected(d->feeds), n_feeds);
    if (d->state != DAEMON_READY && len > 0 && (size_t)len < sizeof status)
        snprintf(status + len, sizeof status - (size_t)len, "; %s", daemon_state_names[d->state]);
    notify_status(status);
}

/* A copy of every running lot (and its forecast) for the API: built here, read there. None
 * before the lots are restored, so the API answers 503 rather than an empty list. */
static void daemon_publish_snapshot(parkd *d)
{
    if (!daemon_running(d))
        return;
    size_t n;
    uint64_t t0 = uv_hrtime();
    lot *const *lots = pipe_lots(d->pipe, &n);
    od_snapshot *snap = od_snapshot_build(lots, n, d->fc, d->snap_reset ? NULL : d->snap);
    http_publish(d->api, snap);
    od_snapshot_unref(d->snap);
    d->snap = snap;
    d->snap_reset = false;
    d->last_snapshot = uv_now(d->loop);
    d->snap_ms = (uv_hrtime() - t0) / 1000000;
}

static void daemon_update_metrics(parkd *d)
{
    if (!d->api && !d->metrics_srv)
        return;
    metrics_snapshot snap = { 0 };
    pipe_metrics(d->pipe, &snap);
    snap.mqtt_up = d->mq && mq_is_connected(d->mq);
    snap.redis_up = store_is_connected(d->st);
    snap.mqtt_reconnects = d->mq ? mq_reconnects(d->mq) : 0;
    snap.redis_reconnects = store_reconnects(d->st);
    const char *names[CFG_MAX_INPUTS];
    bool own[CFG_MAX_INPUTS], up[CFG_MAX_INPUTS];
    for (size_t i = 0; i < snap.n_inputs && i < CFG_MAX_INPUTS; i++) {
        names[i] = d->inputs->inputs[i].name;
        own[i] = d->inputs->inputs[i].own_connection;
        up[i] = feed_input_up(d->feeds, i);
    }
    if (d->ha) {
        snap.ha_instance = ha_instance(d->ha);
        snap.ha_active = ha_is_active(d->ha);
        snap.ha_epoch = ha_epoch(d->ha);
    }
    snap.input_names = names;
    snap.input_own = own;
    snap.input_up = up;
    size_t len;
    char *text = metrics_render(&snap, &len);
    http_set_metrics(d->api, text, len);
    http_set_metrics(d->metrics_srv, text, len);
    free(text);
}

static void daemon_on_tick(uv_timer_t *timer)
{
    parkd *d = timer->data;
    if (daemon_running(d) && d->state != DAEMON_DRAINING) {
        pipe_write_daemon(d->pipe);
        pipe_flush(d->pipe, false);
    }
    uint64_t in = pipe_messages_in(d->pipe);
    d->msg_rate = (in - d->last_messages_in) * 1000 / TICK_MS;
    d->last_messages_in = in;
    daemon_update_metrics(d);
    if (d->api)
        daemon_publish_snapshot(d);
    daemon_update_status(d);
}

static void daemon_on_watchdog(uv_timer_t *timer)
{
    (void)timer;
    notify_watchdog();
}

#ifndef PARKD_WEB_ROOT
#define PARKD_WEB_ROOT "/usr/local/share/parkd/web"
#endif

/* metrics.listen alone serves /metrics; http.listen the API and /metrics; the same address
 * for both is one server. A server that cannot start is logged, and parkd runs without it:
 * storing input matters more than either. */
static void daemon_start_http(parkd *d)
{
    const cfg_config *c = d->cfg;
    const char *web_root = getenv("PARKD_WEB_ROOT");
    char *config_json = od_config_json(c);
    http_options o = { .listen = c->http.listen, .name = "http", .api = true,
                       .max_connections = (unsigned)c->http.max_connections,
                       .cors_origins = c->http.cors_origins,
                       .n_cors_origins = c->http.n_cors_origins,
                       .web_root = web_root && *web_root ? web_root : PARKD_WEB_ROOT,
                       .config_json = config_json };
    char *err = NULL;
    if (c->http.listen) {
        if (http_start(&o, &d->api, &err) < 0) {
            log_error("%s", err);
            free(err);
        } else {
            log_info("http: serving http://%s/ (web root %s)", c->http.listen, o.web_root);
        }
    }
    free(config_json);
    const char *ml = c->metrics.listen;
    if (ml && c->http.listen && !strcmp(ml, c->http.listen)) {
        if (d->api)
            log_info("metrics: serving http://%s/metrics", ml);
    } else if (ml) {
        http_options m = { .listen = ml, .name = "metrics", .max_connections = 16 };
        if (http_start(&m, &d->metrics_srv, &err) < 0) {
            log_error("%s", err);
            free(err);
        } else {
            log_info("metrics: serving http://%s/metrics", ml);
        }
    }
    daemon_update_metrics(d);
    if (d->api)
        daemon_publish_snapshot(d);
}

/* ---- reload ---- */

static void daemon_apply_lots(parkd *d, const cfg_config *next, const reload_plan *plan)
{
    for (size_t i = 0; i < plan->n_removed; i++) {
        log_info("reload: lot %s removed (its keys stay)", plan->removed[i]);
        pipe_remove_lot(d->pipe, plan->removed[i]);
    }
    for (size_t i = 0; i < plan->n_kept; i++) {
        lot *l = pipe_find_lot(d->pipe, plan->kept[i]->id);
        if (!l)
            continue;
        lot_configure(l, plan->kept[i], next->smoothing.tau_ms);
        pipe_touch_lot(d->pipe, l);
    }
    for (size_t i = 0; i < plan->n_added; i++)
        log_info("reload: lot %s added", plan->added[i]->id);
}

/* The old client says offline and goes; the new one starts only then, since both use the same
 * client id and session. */
static void daemon_on_old_mqtt_closed(void *ctx)
{
    parkd *d = ctx;
    mq_free(d->mq);
    d->mq = d->mq_next;
    d->mq_next = NULL;
    if (d->state == DAEMON_DRAINING) {
        mq_free(d->mq);     /* never started */
        d->mq = NULL;
        store_close(d->st, daemon_stop_time_left(d), daemon_on_store_closed, d);
        return;
    }
    pipe_set_mqtt(d->pipe, d->mq);
    if (d->state == DAEMON_RELOADING)
        mq_set_paused(d->mq, true);
    int rc = mq_start(d->mq);
    if (rc < 0)
        log_error("mqtt: cannot start: %s", uv_strerror(rc));
}

/* Creates the client for NEXT before anything is applied, so a reload with bad MQTT settings
 * is rejected whole. */
static int daemon_prepare_mqtt(parkd *d, const cfg_config *next, unsigned effects)
{
    /* the main connection also carries the inputs without one of their own */
    bool inputs = cfg_inputs_connections_differ(d->cfg, next);
    if (!d->mq || (!(effects & CFG_RELOAD_MQTT) && !inputs))
        return 0;
    if (d->mq_next) {
        log_error("reload: configuration rejected: the previous mqtt change is still in progress");
        return -EBUSY;
    }
    char *err = NULL;
    mq_settings set;
    mq_settings_main(next, &set);
    d->mq_next = mq_new(d->loop, &set, &daemon_mq_callbacks, d, &err);
    if (d->mq_next && inputs && feed_prepare(d->feeds, next, &err) < 0) {
        mq_free(d->mq_next);
        d->mq_next = NULL;
    }
    if (!d->mq_next) {
        log_error("reload: configuration rejected, keeping the running one: %s", err);
        free(err);
        return -EINVAL;
    }
    return 0;
}

/* The devices files of NEXT's inputs, read and checked before anything applies (SPEC §9: the
 * same validate-then-swap as the configuration). NULL after logging why. */
static inp_set *daemon_load_inputs(const cfg_config *next)
{
    char *errors = NULL;
    inp_set *set = inp_load(next, &errors);
    if (!set) {
        log_error("reload: configuration rejected, keeping the running one:\n%s", errors);
        free(errors);
    }
    return set;
}

/* The new inputs take over the old ones' counters and duplicate memory, by name. */
static void daemon_swap_inputs(parkd *d, inp_set *inputs)
{
    inp_carry(inputs, d->inputs);
    pipe_set_inputs(d->pipe, inputs);
    inp_free(d->inputs);
    d->inputs = inputs;
}

static void daemon_switch_mqtt(parkd *d)
{
    log_info("reload: mqtt settings changed, reconnecting");
    pipe_set_mqtt(d->pipe, NULL);
    mq_close(d->mq, MQTT_SWITCH_TIMEOUT_MS, daemon_on_old_mqtt_closed, d);
    feed_switch(d->feeds);
}

/* Swaps NEXT in everywhere; the old configuration is freed once no module holds it. */
static void daemon_swap_config(parkd *d, cfg_config *next, const reload_plan *plan)
{
    log_set_level(next->log_level);
    pipe_set_config(d->pipe, next);
    fc_set_config(d->fc, next);
    store_set_config(d->st, next);
    if (d->mq_next)
        daemon_switch_mqtt(d);
    cfg_free(d->cfg);
    d->cfg = next;
    if (plan->effects & CFG_RELOAD_REDIS) {
        log_info("reload: redis settings changed, reconnecting");
        store_reconnect(d->st);     /* another server, db or prefix: written in full */
    }
}

static cfg_config *daemon_load_next(parkd *d)
{
    cfg_config *next = NULL;
    char *errors = NULL;
    if (cfg_load(d->config_path, &next, &errors) < 0) {
        log_error("reload: configuration rejected, keeping the running one:\n%s", errors);
        free(errors);
        return NULL;
    }
    return next;
}

static void daemon_reload(parkd *d)
{
    if (d->state == DAEMON_RELOADING) {
        log_info("reload: queued until the previous reload's lots are restored");
        d->reload_again = true;
        return;
    }
    if (d->state != DAEMON_READY) {
        log_warning("reload: ignored until parkd is ready");
        return;
    }
    notify_reloading();
    cfg_config *next = daemon_load_next(d);
    reload_plan plan;
    if (next) {
        reload_plan_make(d->cfg, next, &plan);
        cfg_keep_restart_keys(d->cfg, next);
    }
    inp_set *inputs = next ? daemon_load_inputs(next) : NULL;
    if (!next || !inputs || daemon_prepare_mqtt(d, next, plan.effects) < 0) {
        if (next) {
            reload_plan_free(&plan);
            cfg_free(next);
        }
        inp_free(inputs);
        notify_ready();
        return;
    }
    daemon_apply_lots(d, next, &plan);
    daemon_create_lots(d, plan.added, plan.n_added);
    daemon_swap_inputs(d, inputs);
    daemon_swap_config(d, next, &plan);
    d->snap_reset = true;           /* horizons may have changed */
    pipe_resync_config(d->pipe);    /* names, capacities, positions and the id set */
    reload_plan_free(&plan);
    if (d->n_restoring) {
        /* added lots may have been configured before: their stored state comes first, so
         * input waits, even while Redis is down */
        daemon_set_state(d, DAEMON_RELOADING);
        if (d->mq)
            mq_set_paused(d->mq, true);
        feed_set_paused(d->feeds, true);
        daemon_restore_pending(d);
        return;
    }
    pipe_flush(d->pipe, false);
    size_t n;
    pipe_lots(d->pipe, &n);
    log_info("reload: %zu lots", n);
    notify_ready();
}

/* ---- shutdown ---- */

/* What is left of the SHUTDOWN_TIMEOUT_MS that SIGTERM started: every part of the shutdown
 * (the flush, MQTT's offline, Redis's last replies) shares it, so a hung broker or Redis
 * cannot stretch the stop past it. Unacknowledged input is redelivered after a restart. */
static uint64_t daemon_stop_time_left(const parkd *d)
{
    uint64_t now = uv_now(d->loop);
    return d->stop_deadline > now ? d->stop_deadline - now : 0;
}

static void daemon_on_part_closed(void *ctx)
{
    parkd *d = ctx;
    if (--d->open_parts == 0)
        daemon_set_state(d, DAEMON_STOPPED);
}

static void daemon_on_store_closed(void *ctx)
{
    parkd *d = ctx;
    pipe_close(d->pipe, daemon_on_part_closed, d);
}

static void daemon_on_mqtt_closed(void *ctx)
{
    parkd *d = ctx;
    /* Everything is stored and "offline" published: a standby may take over at once (after
     * the offline, so that its "online" is the retained one). */
    if (d->ha && ha_is_active(d->ha) && !store_is_fenced(d->st) &&
        store_lease_release(d->st, ha_instance(d->ha), ha_epoch(d->ha)) == 0)
        log_info("ha: lease given up (a clean stop): a standby takes over at its next try");
    store_close(d->st, daemon_stop_time_left(d), daemon_on_store_closed, d);
}

static void daemon_close_handles(parkd *d)
{
    uv_handle_t *handles[] = { (uv_handle_t *)&d->tick,    (uv_handle_t *)&d->watchdog,
                               (uv_handle_t *)&d->drain,   (uv_handle_t *)&d->retry,
                               (uv_handle_t *)&d->sig_hup, (uv_handle_t *)&d->sig_term,
                               (uv_handle_t *)&d->sig_int };
    for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++)
        uv_close(handles[i], NULL);
    if (d->ha)
        ha_close(d->ha, NULL, NULL);
}

/* The inputs' connections are closed: the main one says offline and waits for the broker's
 * acknowledgements, then Redis closes, then the pipeline's timer. */
static void daemon_on_feeds_closed(void *ctx)
{
    parkd *d = ctx;
    if (d->mq && !d->mq_next)
        mq_close(d->mq, daemon_stop_time_left(d), daemon_on_mqtt_closed, d);
    else if (!d->mq)
        store_close(d->st, daemon_stop_time_left(d), daemon_on_store_closed, d);
    /* with a client switch in progress its close callback frees both, then nothing follows:
     * the old client's close continues into daemon_on_old_mqtt_closed */
    pipe_set_mqtt(d->pipe, NULL);
}

/* Everything is stored and published (or the deadline passed): the connections close, the
 * inputs' first (they publish nothing), then the main one and Redis. */
static void daemon_finish_stop(parkd *d)
{
    uv_timer_stop(&d->drain);
    http_stop(d->api);
    http_stop(d->metrics_srv);
    d->api = d->metrics_srv = NULL;
    od_snapshot_unref(d->snap);
    d->snap = NULL;
    d->open_parts = 1;
    daemon_close_handles(d);
    feed_close(d->feeds, daemon_stop_time_left(d), daemon_on_feeds_closed, d);
}

static void daemon_on_drain_tick(uv_timer_t *timer)
{
    parkd *d = timer->data;
    pipe_flush(d->pipe, true);
    bool drained = pipe_is_idle(d->pipe);
    if (!daemon_running(d))
        drained = true;     /* nothing ran yet: nothing to flush */
    if (!drained && uv_now(d->loop) < d->stop_deadline)
        return;
    if (!drained)
        log_error("shutdown: redis did not take every pending write in time");
    daemon_finish_stop(d);
}

static void daemon_stop(parkd *d, int exit_code)
{
    if (d->state == DAEMON_DRAINING || d->state == DAEMON_STOPPED)
        return;
    if (exit_code)
        d->exit_code = exit_code;
    bool was_running = daemon_running(d);
    daemon_set_state(d, DAEMON_DRAINING);
    notify_stopping();
    log_info("stopping: flushing pending writes and publishes");
    if (d->mq)
        mq_stop_input(d->mq);
    feed_stop_input(d->feeds);
    d->stop_deadline = uv_now(d->loop) + SHUTDOWN_TIMEOUT_MS;
    if (!was_running) {
        daemon_finish_stop(d);
        return;
    }
    pipe_write_daemon(d->pipe);     /* the final counters */
    pipe_flush(d->pipe, true);
    if (uv_timer_start(&d->drain, daemon_on_drain_tick, 0, DRAIN_POLL_MS) < 0)
        daemon_finish_stop(d);
}

static void daemon_on_signal(uv_signal_t *handle, int signum)
{
    parkd *d = handle->data;
    if (signum == SIGHUP) {
        if (d->state != DAEMON_DRAINING && d->state != DAEMON_STOPPED)
            daemon_reload(d);
        return;
    }
    daemon_stop(d, 0);
}

/* ---- setup and teardown ---- */

parkd *daemon_new(uv_loop_t *loop, const char *config_path, cfg_config *cfg, inp_set *inputs)
{
    parkd *d = util_xcalloc(1, sizeof *d);
    d->loop = loop;
    d->config_path = config_path;
    d->cfg = cfg;
    d->inputs = inputs;
    d->state = DAEMON_CONNECTING;
    d->started_ms = util_wall_ms();
    d->st = store_new(loop, cfg, &daemon_store_callbacks, d);
    d->fc = fc_new(cfg);
    d->pipe = pipe_new(loop, cfg, d->st, d->fc, d->started_ms);
    pipe_set_on_stored(d->pipe, daemon_on_stored, d);
    pipe_set_inputs(d->pipe, inputs);
    d->feeds = feed_new(loop, d->pipe);
    if (cfg->ha.enabled)
        d->ha = ha_new(loop, cfg, d->st, &daemon_ha_callbacks, d);
    const cfg_lot **lots = util_xcalloc(cfg->n_lots + 1, sizeof *lots);
    for (size_t i = 0; i < cfg->n_lots; i++)
        lots[i] = &cfg->lots[i];
    daemon_create_lots(d, lots, cfg->n_lots);
    free(lots);
    uv_timer_t *timers[] = { &d->tick, &d->watchdog, &d->drain, &d->retry };
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = d;
    }
    uv_signal_t *sigs[] = { &d->sig_hup, &d->sig_term, &d->sig_int };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        /* fails only without file descriptors for libuv's signal pipe; nothing has been
         * connected or written yet, and a daemon that cannot be stopped must not run */
        int rc = uv_signal_init(loop, sigs[i]);
        if (rc < 0) {
            log_error("cannot set up signal handling: %s", uv_strerror(rc));
            exit(1);
        }
        sigs[i]->data = d;
    }
    return d;
}

static int daemon_start_handles(parkd *d)
{
    static const int signums[] = { SIGHUP, SIGTERM, SIGINT };
    uv_signal_t *sigs[] = { &d->sig_hup, &d->sig_term, &d->sig_int };
    int rc = uv_timer_start(&d->tick, daemon_on_tick, TICK_MS, TICK_MS);
    for (size_t i = 0; rc == 0 && i < sizeof sigs / sizeof sigs[0]; i++)
        rc = uv_signal_start(sigs[i], daemon_on_signal, signums[i]);
    uint64_t wd = notify_watchdog_interval_ms();
    if (rc == 0 && wd)
        rc = uv_timer_start(&d->watchdog, daemon_on_watchdog, wd, wd);
    return rc;
}

int daemon_start(parkd *d)
{
    int rc = daemon_start_handles(d);
    if (rc == 0)
        rc = store_start(d->st);
    if (rc < 0) {
        log_error("cannot start: %s", uv_strerror(rc));
        daemon_stop(d, 1);
        return rc;
    }
    daemon_start_http(d);
    if (d->ha && ha_start(d->ha) < 0)
        log_error("ha: cannot start the lease timer");
    char redis_at[300];
    if (d->cfg->redis.socket)   /* a socket has no port: "path:6379" read as a TCP address */
        snprintf(redis_at, sizeof redis_at, "unix:%s", d->cfg->redis.socket);
    else
        snprintf(redis_at, sizeof redis_at, "%s:%d", d->cfg->redis.host, d->cfg->redis.port);
    log_info("parkd %s starting: %zu lots, redis %s, mqtt %s:%d", PARKD_VERSION, d->n_restoring,
             redis_at, d->cfg->mqtt.host, d->cfg->mqtt.port);
    return 0;
}

void daemon_free(parkd *d)
{
    if (!d)
        return;
    http_stop(d->api);
    http_stop(d->metrics_srv);
    od_snapshot_unref(d->snap);
    mq_free(d->mq_next);
    mq_free(d->mq);
    feed_free(d->feeds);
    pipe_free(d->pipe);
    inp_free(d->inputs);
    for (size_t i = 0; i < d->n_restoring; i++) {
        fc_forget_lot(d->fc, d->restoring[i]);
        lot_free(d->restoring[i]);
    }
    free(d->restoring);
    fc_free(d->fc);
    store_free(d->st);
    ha_free(d->ha);     /* after the store: its last callbacks may still reach the lease */
    cfg_free(d->cfg);
    free(d);
}
