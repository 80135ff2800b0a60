#include "pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "output.h"
#include "pubrule.h"
#include "util.h"

/* A guard only: group commit (below) keeps one batch in flight, and only a drain's batches add
 * up; past this many, reading pauses. */
#define PIPE_MAX_BATCHES_IN_FLIGHT 8
/* Group commit: while this many batches are in flight, a turn's effects stay queued, and the
 * turn that Redis's confirmation starts writes them all at once. A lone message (nothing in
 * flight) goes out at once; under load a lot that changed many times during one round trip
 * is written once, so the work per event falls as the load grows instead of every event
 * costing a lot write (at 1,000 lots a turn of a read burst touches most lots once). */
#define PIPE_GROUP_IN_FLIGHT 1
/* A lot's forecast model (profile, regressions, error rings) changes with almost every event,
 * and writing its changed chunks cost a fifth of the CPU per event under load. What restore
 * needs of it is the learning, not its last second: its changes go out at most this often
 * per lot (at once the first time, after Redis lost it, and when stopping). A kill -9 loses at
 * most this much learning, never a count. */
#define PIPE_MODEL_WRITE_MS 60000
#define PIPE_MODEL_SCAN_MS 1000         /* how often lots with waiting model changes are sought */
#define PIPE_STALE_SCAN_MS 250          /* how often every lot's staleness is looked at */
#define PIPE_MAX_BACKLOG 200            /* unacknowledged QoS 1 publishes before lots wait */
#define PIPE_BACKLOG_RETRY_MS 5
/* A turn writes at most this many lots; the rest stay queued for the turn after Redis confirmed
 * this one. A full write (start, reload, a Redis that lost its data) built in one turn held the
 * loop for seconds at a few thousand lots, and its one transaction took Redis longer than
 * redis.timeout, after which the reconnect wrote it all again, for ever. */
#define PIPE_MAX_LOTS_PER_BATCH 500

const char *const pipe_counter_names[PIPE_C_COUNT] = {
    [PIPE_C_MESSAGES_IN] = "messages_in",
    [PIPE_C_APPLIED] = "applied",
    [PIPE_C_UNCHANGED] = "unchanged",
    [PIPE_C_IGNORED_OLD] = "ignored_old",
    [PIPE_C_IGNORED_DUPLICATE] = "ignored_duplicate",
    [PIPE_C_REJECTED_FIRST + PL_BAD_TOPIC - 1] = "rejected_bad_topic",
    [PIPE_C_REJECTED_FIRST + PL_BAD_ID - 1] = "rejected_bad_id",
    [PIPE_C_REJECTED_FIRST + PL_UNKNOWN_LOT - 1] = "rejected_unknown_lot",
    [PIPE_C_REJECTED_FIRST + PL_MALFORMED - 1] = "rejected_malformed",
    [PIPE_C_REJECTED_FIRST + PL_OVERSIZE - 1] = "rejected_oversize",
    [PIPE_C_REJECTED_FIRST + PL_WRONG_KIND - 1] = "rejected_wrong_kind",
    [PIPE_C_REJECTED_FIRST + PL_FUTURE - 1] = "rejected_future",
    [PIPE_C_REJECTED_FIRST + PL_TOO_MANY_BAYS - 1] = "rejected_too_many_bays",
    [PIPE_C_REJECTED_FIRST + PL_AMBIGUOUS_ZONE - 1] = "rejected_ambiguous_zone",
    [PIPE_C_ANOMALY_CLAMPED] = "anomaly_clamped",
    [PIPE_C_ANOMALY_CAPACITY] = "anomaly_capacity",
    [PIPE_C_RECALIBRATIONS] = "recalibrations",
    [PIPE_C_PUBLISHED] = "published",
    [PIPE_C_REDIS_BATCHES] = "redis_batches",
    [PIPE_C_REDIS_TIMEOUTS] = "redis_timeouts",
    [PIPE_C_REDIS_REFUSALS] = "redis_refusals",
    [PIPE_C_INPUT_FIRST + PL_KIND_BAY] = "input_bay",
    [PIPE_C_INPUT_FIRST + PL_KIND_GATE] = "input_gate",
    [PIPE_C_INPUT_FIRST + PL_KIND_COUNT] = "input_count",
};
_Static_assert(PL_KIND_BAY == 0 && PL_KIND_GATE == 1 && PL_KIND_COUNT == 2, "pl_kind order");

/* The restore state's fields that change seldom (STORE_LOT_STATE_RARE), as last written: a lot
 * write carries them only when they differ, which halves the :state command under load. */
typedef struct pipe_rare {
    bool has_data, count_is_free, sm_started, closed, has_closed_until;
    enum lot_status status;
    int64_t count_ts_ms, count_value, closed_until_ms;
} pipe_rare;

/* The pipeline's per-lot state, hung off lot->pub_data. */
typedef struct pipe_lot {
    lot *l;
    pubrule_lot rule;
    char *name_json;            /* the name as a JSON string */
    char *name_source;          /* the name it was made from, to notice a reload's change */
    log_limit old_log;          /* "ignored an older event" lines of this lot */
    unsigned write_what;        /* STORE_LOT_* beyond its changes, for its next write */
    pipe_rare rare;             /* the restore state's rare fields as last written */
    bool rare_written;
    uint64_t model_written_ms;  /* loop time the model's changes last went into a batch */
    bool model_written;         /* they did at least once */
    bool model_pending;         /* the model changed since (its changes wait, see below) */
} pipe_lot;

/* One snapshot taken this turn: what goes out for a lot, as it was at that moment. */
typedef struct pipe_out {
    char *lot_id;
    char *availability;         /* JSON */
    size_t availability_len;
    fc_forecast *forecast;      /* NULL: no data yet */
    char *forecast_json;
    size_t forecast_len;
} pipe_out;

typedef struct pipe_hist {
    char *lot_id;
    hist_entry e;
} pipe_hist;

/* One MQTT connection whose input the pipeline acknowledges: the main one (PIPE_SRC_MAIN) and
 * each input's own (1 + the input's index). Each holds its own barrier: its messages are
 * acknowledged once the batch holding their effect is confirmed, whatever the others do. */
#define PIPE_SRC_MAIN 0
#define PIPE_MAX_SOURCES (1 + CFG_MAX_INPUTS)
typedef struct pipe_source {
    mq_client *mq;              /* NULL: none (yet), or being replaced */
    uint64_t generation;        /* counts clients, so old batches never ack new input */
    uint64_t batched_upto;      /* messages whose effects are in a sent batch */
    uint64_t idle_upto;         /* read by a turn that had nothing to store */
} pipe_source;

/* A sent batch: what its EXEC acknowledges. */
typedef struct pipe_batch {
    pipeline *p;
    uint64_t generation[PIPE_MAX_SOURCES];  /* whose messages: a reload may replace clients */
    uint64_t upto[PIPE_MAX_SOURCES];        /* messages read when the batch was sent */
    uint64_t messages;          /* of which this batch stores the effect, all sources */
    int64_t first_read_ms;
    bool has_daemon;            /* it writes the daemon hash */
} pipe_batch;

/* The :model fields of one lot, collected from fc_model_changes. */
typedef struct pipe_fields {
    char **names, **values;
    size_t n, cap_names, cap_values;
} pipe_fields;

struct pipeline {
    uv_loop_t *loop;
    const cfg_config *cfg;
    store *st;
    fc_engine *fc;
    mq_client *mq;              /* the main connection: input, and where outputs go */
    pipe_source src[PIPE_MAX_SOURCES];
    inp_set *inputs;            /* SPEC §9 (not owned; NULL: none) */
    char **input_counter_names; /* "input:<name>:<counter>", n_inputs x INP_C_COUNT (owned) */
    uint64_t *input_counter_values;
    int64_t started_ms;

    lot **lots;                 /* running, in configuration order */
    size_t n_lots, cap_lots;
    map *by_id;
    lot **queued;               /* lots changed since the last batch */
    size_t n_queued, cap_queued;

    bool ids_due;               /* the lot id set */
    bool static_due;            /* every lot's configuration fields */
    bool sensors_due;           /* every bay and gate */
    bool daemon_due;
    bool republish_due;
    bool models_due;            /* a lot's model changes waited long enough (pipe_scan_models) */
    bool draining;              /* this flush drains: every waiting model change goes out */
    uint64_t model_scan_at;     /* loop time of the next pipe_scan_models */

    pipe_out *out;              /* this turn's snapshots, in order */
    size_t n_out, cap_out;
    pipe_hist *hist;            /* this turn's history entries, in order */
    size_t n_hist, cap_hist;
    pipe_fields fields;         /* scratch */

    int64_t turn_first_read_ms; /* wall time of the first unstored message, or 0 */

    uv_check_t turn_end;        /* runs the turn once the loop's I/O callbacks are done */
    uv_timer_t pub_timer;       /* the next pending publish or heartbeat */
    uint64_t pub_timer_at;
    uint64_t next_due;          /* no lot's publish or heartbeat is due before this: a lower
                                 * bound (pipe_note_due), made exact by each pipe_take_due scan,
                                 * so a turn with nothing due visits no lot */
    uint64_t stale_scan_at;     /* loop time of the next pass over every lot's staleness */
    size_t due_cursor;          /* where the next pass over due lots starts */
    bool summary_dirty;
    uint64_t summary_last_ms;
    size_t summary_pages;       /* summary pages that may be retained on the broker */

    int64_t newest_event_ms;    /* the event clock: newest event time applied */
    int64_t newest_event_wall_ms;
    uint64_t counters[PIPE_C_COUNT];
    uint64_t latency_counts[METRICS_LATENCY_BUCKETS];   /* cumulative */
    uint64_t latency_count;
    double latency_sum;

    bool daemon_stored;         /* a batch with the daemon hash was confirmed */
    void (*on_stored)(void *ctx);
    void *on_stored_ctx;

    void (*close_done)(void *ctx);
    void *close_ctx;
    int open_handles;
};

static void pipe_on_pub_timer(uv_timer_t *timer);
static void pipe_on_turn_end(uv_check_t *check);
static void pipe_note_due(pipeline *p, const pipe_lot *pl);
static bool pipe_has_work(const pipeline *p);

pipeline *pipe_new(uv_loop_t *loop, const cfg_config *cfg, store *st, fc_engine *fc,
                   int64_t started_ms)
{
    pipeline *p = util_xcalloc(1, sizeof *p);
    p->loop = loop;
    p->cfg = cfg;
    p->st = st;
    p->fc = fc;
    p->started_ms = started_ms;
    p->by_id = map_new();
    p->newest_event_ms = INT64_MIN;
    p->ids_due = p->static_due = p->daemon_due = true;
    uv_timer_init(loop, &p->pub_timer);
    p->pub_timer.data = p;
    uv_check_init(loop, &p->turn_end);
    p->turn_end.data = p;
    p->open_handles = 2;
    return p;
}

void pipe_set_config(pipeline *p, const cfg_config *cfg)
{
    p->cfg = cfg;
    p->next_due = 0;            /* min_interval and heartbeat may have changed */
    p->stale_scan_at = 0;
    p->summary_dirty = true;
}

static void pipe_set_source(pipeline *p, size_t i, mq_client *mq)
{
    pipe_source *src = &p->src[i];
    src->mq = mq;
    src->generation++;
    src->batched_upto = 0;
    src->idle_upto = 0;
}

void pipe_set_mqtt(pipeline *p, mq_client *mq)
{
    p->mq = mq;
    pipe_set_source(p, PIPE_SRC_MAIN, mq);
}

void pipe_set_input_mqtt(pipeline *p, size_t input, mq_client *mq)
{
    if (input < CFG_MAX_INPUTS)
        pipe_set_source(p, 1 + input, mq);
}

static void pipe_free_input_names(pipeline *p)
{
    size_t n = p->inputs ? p->inputs->n * INP_C_COUNT : 0;
    for (size_t i = 0; i < n && p->input_counter_names; i++)
        free(p->input_counter_names[i]);
    free(p->input_counter_names);
    free(p->input_counter_values);
    p->input_counter_names = NULL;
    p->input_counter_values = NULL;
}

void pipe_set_inputs(pipeline *p, inp_set *inputs)
{
    pipe_free_input_names(p);
    p->inputs = inputs;
    size_t n = inputs ? inputs->n * INP_C_COUNT : 0;
    p->input_counter_names = util_xcalloc(n + 1, sizeof *p->input_counter_names);
    p->input_counter_values = util_xcalloc(n + 1, sizeof *p->input_counter_values);
    for (size_t i = 0; i < n; i++) {
        char name[CFG_INPUT_NAME_MAX + 64];
        snprintf(name, sizeof name, "input:%s:%s", inputs->inputs[i / INP_C_COUNT].name,
                 inp_counter_names[i % INP_C_COUNT]);
        p->input_counter_names[i] = util_xstrdup(name);
    }
}

/* ---- the registry ---- */

static void pipe_rebuild_index(pipeline *p)
{
    map_free(p->by_id);
    p->by_id = map_new();
    for (size_t i = 0; i < p->n_lots; i++)
        map_put(p->by_id, p->lots[i]->id, strlen(p->lots[i]->id), p->lots[i]);
}

static void pipe_queue_lot(pipeline *p, lot *l)
{
    if (l->queued)
        return;
    l->queued = true;
    l->observed = false;
    util_grow((void **)&p->queued, &p->cap_queued, p->n_queued + 1, sizeof *p->queued);
    p->queued[p->n_queued++] = l;
}

static void pipe_see_event_time(pipeline *p, int64_t ts_ms, int64_t wall_ms)
{
    if (p->newest_event_ms == INT64_MIN || ts_ms > p->newest_event_ms) {
        p->newest_event_ms = ts_ms;
        p->newest_event_wall_ms = wall_ms;
    }
}

static void pipe_update_name(pipe_lot *pl)
{
    if (pl->name_source && strcmp(pl->name_source, pl->l->name) == 0)
        return;
    free(pl->name_json);
    free(pl->name_source);
    pl->name_json = out_name_json(pl->l->name);
    pl->name_source = util_xstrdup(pl->l->name);
}

void pipe_add_lot(pipeline *p, lot *l)
{
    pipe_lot *pl = util_xcalloc(1, sizeof *pl);
    pl->l = l;
    pubrule_init(&pl->rule);
    pubrule_defer(&pl->rule, 0);    /* its first availability is due at once */
    pipe_note_due(p, pl);
    pipe_update_name(pl);
    l->pub_data = pl;
    l->queued = false;
    util_grow((void **)&p->lots, &p->cap_lots, p->n_lots + 1, sizeof *p->lots);
    p->lots[p->n_lots++] = l;
    map_put(p->by_id, l->id, strlen(l->id), l);
    if (l->has_data)
        pipe_see_event_time(p, l->ts_ms, util_wall_ms());
    pipe_queue_lot(p, l);
    p->ids_due = p->static_due = true;
    p->summary_dirty = true;
}

static void pipe_free_lot(pipeline *p, lot *l)
{
    pipe_lot *pl = l->pub_data;
    fc_forget_lot(p->fc, l);
    if (pl) {
        free(pl->name_json);
        free(pl->name_source);
        free(pl);
    }
    lot_free(l);
}

void pipe_remove_lot(pipeline *p, const char *id)
{
    for (size_t i = 0; i < p->n_lots; i++) {
        lot *l = p->lots[i];
        if (strcmp(l->id, id) != 0)
            continue;
        for (size_t k = 0; k < p->n_queued; k++) {
            if (p->queued[k] == l) {
                p->queued[k] = p->queued[--p->n_queued];
                break;
            }
        }
        memmove(&p->lots[i], &p->lots[i + 1], (p->n_lots - i - 1) * sizeof *p->lots);
        p->n_lots--;
        pipe_rebuild_index(p);
        pipe_free_lot(p, l);
        p->ids_due = true;
        p->summary_dirty = true;
        return;
    }
}

lot *pipe_find_lot(const pipeline *p, const char *id)
{
    return map_get(p->by_id, id, strlen(id));
}

lot *const *pipe_lots(const pipeline *p, size_t *n)
{
    *n = p->n_lots;
    return p->lots;
}

void pipe_order_lots(pipeline *p, char *const *ids, size_t n)
{
    size_t k = 0;
    lot **ordered = util_xcalloc(p->n_lots + 1, sizeof *ordered);
    for (size_t i = 0; i < n && k < p->n_lots; i++) {
        lot *l = pipe_find_lot(p, ids[i]);
        if (l)
            ordered[k++] = l;
    }
    if (k == p->n_lots)
        memcpy(p->lots, ordered, k * sizeof *ordered);
    free(ordered);
}

/* ---- snapshots ---- */

static void pipe_push_hist(pipeline *p, const lot *l, const hist_entry *e)
{
    util_grow((void **)&p->hist, &p->cap_hist, p->n_hist + 1, sizeof *p->hist);
    p->hist[p->n_hist++] = (pipe_hist){ util_xstrdup(l->id), *e };
}

/* The forecaster learns from L's state now; a due history entry joins the turn. */
static void pipe_observe(pipeline *p, lot *l)
{
    hist_entry e;
    if (fc_observe(p->fc, l, &e))
        pipe_push_hist(p, l, &e);
    l->observed = true;
}

/* The snapshots of this turn count too (an availability and a forecast each): they are
 * published at its end, and one turn may take many lots. */
static bool pipe_backlog_full(const pipeline *p)
{
    return p->mq && mq_publishes_unacked(p->mq) + 2 * p->n_out >= PIPE_MAX_BACKLOG;
}

/* What L shows now, to be written into this turn's batch and then published. */
static void pipe_snapshot(pipeline *p, lot *l, uint64_t now)
{
    pipe_lot *pl = l->pub_data;
    char json[OUT_JSON_MAX];
    pipe_update_name(pl);
    size_t len = out_format_availability(l, pl->name_json, json, sizeof json);
    if (!len) {
        log_error("publish: availability of lot %s does not fit %d bytes", l->id, OUT_JSON_MAX);
        return;
    }
    pipe_out o = { .lot_id = util_xstrdup(l->id), .availability = util_xstrndup(json, len),
                   .availability_len = len };
    fc_forecast f;
    if (fc_forecast_lot(p->fc, l, &f)) {
        o.forecast = util_xmalloc(sizeof f);
        *o.forecast = f;
        o.forecast_len = fc_format_json(l->id, &f, json, sizeof json);
        o.forecast_json = o.forecast_len ? util_xstrndup(json, o.forecast_len) : NULL;
    }
    util_grow((void **)&p->out, &p->cap_out, p->n_out + 1, sizeof *p->out);
    p->out[p->n_out++] = o;
    pubrule_sent(&pl->rule, l, now);
    pipe_note_due(p, pl);
    p->summary_dirty = true;
}

/* Publishes L now if the rules say so, or defers it while the broker's backlog is full. */
static void pipe_consider(pipeline *p, lot *l, uint64_t now, bool force)
{
    pipe_lot *pl = l->pub_data;
    bool publish = pubrule_changed(&pl->rule, l, p->cfg, now, force);
    pipe_note_due(p, pl);       /* a change inside min_interval became pending */
    if (!publish)
        return;
    if (pipe_backlog_full(p)) {
        /* an earlier wait keeps its place: a lot changing faster than the retry must not
         * push its own publish back for ever */
        if (!pl->rule.pending)
            pubrule_defer(&pl->rule, now + PIPE_BACKLOG_RETRY_MS);
        pipe_note_due(p, pl);
        return;
    }
    pipe_snapshot(p, l, now);
}

/* ---- ingest ---- */

static void pipe_reject(pipeline *p, enum pl_reject reason, const char *topic, const char *detail)
{
    p->counters[PIPE_C_REJECTED_FIRST + reason - 1]++;
    log_rejected((unsigned)reason, pl_reject_name(reason), topic, detail);
}

static bool pipe_is_own_output(const pipeline *p, const char *topic)
{
    const char *out = p->cfg->mqtt.output_prefix;
    size_t n = strlen(out);
    return strncmp(topic, out, n) == 0 && topic[n] == '/';
}

/* An ignored older event is normal now and then (reordering), but a sensor whose clock jumped
 * back would otherwise vanish without a trace: one line per lot per minute, with the lag. */
static void pipe_log_old(const lot *l, const lot_outcome *o, const char *topic)
{
    pipe_lot *pl = l->pub_data;
    unsigned long suppressed;
    if (!log_limit_pass(&pl->old_log, 60000, 1, &suppressed))
        return;
    log_warning("lot %s: ignored an event %.1f s older than the last applied one, on %s (a "
                "sensor clock behind?; %lu more of this lot in the last minute)", l->id,
                (double)o->lag_ms / 1000.0, topic, suppressed);
}

/* A sensor that two zones' patterns claim is a configuration mistake the operator must fix: it
 * is said once per sensor, as a warning that names the fix, and then only counted. */
static void pipe_reject_ambiguous(pipeline *p, const lot *l, const lot_outcome *o,
                                  const char *topic)
{
    p->counters[PIPE_C_REJECTED_FIRST + PL_AMBIGUOUS_ZONE - 1]++;
    if (o->first_ambiguous)
        log_warning("lot %s: rejected %s (ambiguous_zone): the patterns of two zones match it; "
                    "list it exactly in one zone, or narrow the patterns, and reload; its "
                    "messages are counted as rejected_ambiguous_zone until then", l->id, topic);
}

static void pipe_count_outcome(pipeline *p, const lot *l, const lot_outcome *o, const char *topic)
{
    switch (o->result) {
    case LOT_APPLIED: p->counters[PIPE_C_APPLIED]++; break;
    case LOT_UNCHANGED: p->counters[PIPE_C_UNCHANGED]++; break;
    case LOT_IGNORED_OLD:
        p->counters[PIPE_C_IGNORED_OLD]++;
        pipe_log_old(l, o, topic);
        break;
    case LOT_IGNORED_DUPLICATE: p->counters[PIPE_C_IGNORED_DUPLICATE]++; break;
    case LOT_REJECTED:
        if (o->reject == PL_AMBIGUOUS_ZONE)
            pipe_reject_ambiguous(p, l, o, topic);
        else
            pipe_reject(p, o->reject, topic,
                        o->reject == PL_WRONG_KIND ? "input kind not taken by the lot's source"
                                                   : "limit reached");
        break;
    }
    if (o->clamped)
        p->counters[PIPE_C_ANOMALY_CLAMPED]++;
    if (o->capacity_mismatch) {
        p->counters[PIPE_C_ANOMALY_CAPACITY]++;
        log_anomaly("capacity_mismatch", topic,
                    "count message capacity differs from the configured one; configured kept");
    }
    if (o->recalibrated && o->correction != 0) {
        p->counters[PIPE_C_RECALIBRATIONS]++;
        log_info("lot %s: gate count recalibrated by %+" PRId64 " to %" PRId64, l->id,
                 o->correction, l->occupied);
    }
}

/* Parses and checks one message; the lot it applies to, or NULL (counted and logged). */
static lot *pipe_parse(pipeline *p, const char *topic, const void *payload, size_t len,
                       int64_t wall, pl_topic *t, pl_event *ev, int64_t *ts)
{
    if ((int64_t)len > p->cfg->limits.max_payload) {
        pipe_reject(p, PL_OVERSIZE, topic, "payload larger than limits.max_payload");
        return NULL;
    }
    enum pl_reject r = pl_parse_topic(topic, p->cfg->mqtt.input_prefix, t);
    if (r != PL_OK) {
        pipe_reject(p, r, topic, r == PL_BAD_ID ? "invalid id" : "unexpected topic");
        return NULL;
    }
    p->counters[PIPE_C_INPUT_FIRST + t->kind]++;
    lot *l = pipe_find_lot(p, t->lot);
    if (!l) {
        pipe_reject(p, PL_UNKNOWN_LOT, topic, "lot not configured");
        return NULL;
    }
    if (pl_parse_payload(t->kind, payload, len, ev) != PL_OK) {
        pipe_reject(p, PL_MALFORMED, topic, "malformed payload");
        return NULL;
    }
    *ts = ev->has_ts ? ev->ts_ms : wall;
    if (*ts > wall + p->cfg->limits.max_future_ms) {
        pipe_reject(p, PL_FUTURE, topic, "event time too far in the future");
        return NULL;
    }
    return l;
}

/* ---- admin input: closures (SPEC §10) ---- */

static bool pipe_is_admin(const pipeline *p, const char *topic)
{
    const char *admin = p->cfg->mqtt.admin_prefix;
    size_t n = strlen(admin);
    return strncmp(topic, admin, n) == 0 && topic[n] == '/';
}

/* Parses and checks one admin message; the lot it closes or opens, or NULL (counted, logged). */
static lot *pipe_parse_admin(pipeline *p, const char *topic, const void *payload, size_t len,
                             pl_admin *a)
{
    if ((int64_t)len > p->cfg->limits.max_payload) {
        pipe_reject(p, PL_OVERSIZE, topic, "payload larger than limits.max_payload");
        return NULL;
    }
    char id[PL_ID_MAX + 1];
    enum pl_reject r = pl_parse_admin_topic(topic, p->cfg->mqtt.admin_prefix, id);
    if (r != PL_OK) {
        pipe_reject(p, r, topic, r == PL_BAD_ID ? "invalid id" : "unexpected admin topic");
        return NULL;
    }
    lot *l = pipe_find_lot(p, id);
    if (!l) {
        pipe_reject(p, PL_UNKNOWN_LOT, topic, "lot not configured");
        return NULL;
    }
    if (pl_parse_admin(payload, len, a) != PL_OK) {
        pipe_reject(p, PL_MALFORMED, topic, "malformed admin payload");
        return NULL;
    }
    return l;
}

/* A closure is ordinary input: it joins this turn's batch and is acknowledged with it. An
 * until already behind the event clock means open (lot_set_closure). */
static void pipe_on_admin(pipeline *p, const char *topic, const void *payload, size_t len)
{
    pl_admin a;
    lot *l = pipe_parse_admin(p, topic, payload, len, &a);
    if (!l)
        return;
    if (!lot_set_closure(l, a.closed, a.reason, a.has_until, a.until_ms, pipe_event_clock(p)))
        return;     /* the same closure again: a redelivered retained message */
    /* not the reason: operator text with control characters has no place in a log line */
    log_info("lot %s: %s by %s", l->id, l->closed ? "closed" : "opened", topic);
    ((pipe_lot *)l->pub_data)->write_what |= STORE_LOT_STATE_RARE;     /* the reason too */
    pipe_queue_lot(p, l);
    if (p->cfg->publish.min_interval_ms == 0) {
        pipe_observe(p, l);
        pipe_consider(p, l, uv_now(p->loop), false);
    }
}

/* Every message read in one loop iteration (a read burst, or several connections' bursts)
 * goes into one batch: the turn runs in the check phase, right after the I/O callbacks. */
static void pipe_end_turn_soon(pipeline *p)
{
    if (uv_is_active((uv_handle_t *)&p->turn_end) || uv_is_closing((uv_handle_t *)&p->turn_end))
        return;
    int rc = uv_check_start(&p->turn_end, pipe_on_turn_end);
    if (rc < 0)     /* cannot happen for an initialized handle; the tick still runs the turn */
        log_error("pipeline: cannot schedule the turn: %s", uv_strerror(rc));
}

static void pipe_on_turn_end(uv_check_t *check)
{
    pipeline *p = check->data;
    (void)uv_check_stop(check);
    pipe_flush(p, false);
}

/* The lot's part of a message, parsed to T and EV at event time TS: the SPEC §3 rules, the
 * counters, and the turn's bookkeeping. */
static lot_outcome pipe_apply(pipeline *p, lot *l, const pl_topic *t, const pl_event *ev,
                              int64_t ts, int64_t wall, const char *topic)
{
    lot_outcome o = lot_apply(l, t, ev, ts, p->cfg->limits.max_bays_per_lot);
    pipe_count_outcome(p, l, &o, topic);
    if (o.result == LOT_APPLIED || o.result == LOT_UNCHANGED)
        pipe_see_event_time(p, ts, wall);
    if (l->dirty || l->n_dirty_bays || l->n_dirty_gates)
        pipe_queue_lot(p, l);
    /* min_interval 0 asks for every change: a snapshot of each one, not just of the turn's
     * last state. They join the turn's batch and publishes in order. */
    if (o.result == LOT_APPLIED && p->cfg->publish.min_interval_ms == 0) {
        pipe_observe(p, l);
        pipe_consider(p, l, uv_now(p->loop), false);
    }
    return o;
}

/* Every message read counts toward the turn, whichever connection brought it. */
static int64_t pipe_note_read(pipeline *p)
{
    p->counters[PIPE_C_MESSAGES_IN]++;
    pipe_end_turn_soon(p);
    int64_t wall = util_wall_ms();
    if (!p->turn_first_read_ms)
        p->turn_first_read_ms = wall;
    return wall;
}

/* The input (of those without a connection of their own) whose topic filter TOPIC matches, or
 * -1. Inputs come first: their filters may overlap the input prefix. */
static int pipe_shared_input(const pipeline *p, const char *topic)
{
    for (size_t i = 0; p->inputs && i < p->inputs->n; i++) {
        const inp_input *in = &p->inputs->inputs[i];
        if (!in->own_connection && mq_topic_matches(in->topic, topic))
            return (int)i;
    }
    return -1;
}

void pipe_on_message(pipeline *p, const char *topic, const void *payload, size_t len)
{
    if (pipe_is_own_output(p, topic)) {
        /* Not input: parkd subscribes to its input patterns only, but a lot named "bay" or
         * "gate" under nested prefixes can still bring an output back. It has nothing to
         * store, and the turn acknowledges it at once rather than letting it hold the input
         * behind it until something else ends a turn. */
        pipe_end_turn_soon(p);
        return;
    }
    int input = pipe_shared_input(p, topic);
    if (input >= 0) {
        pipe_on_input_message(p, (size_t)input, topic, payload, len);
        return;
    }
    int64_t wall = pipe_note_read(p);
    if (pipe_is_admin(p, topic)) {
        pipe_on_admin(p, topic, payload, len);
        return;
    }
    pl_topic t;
    pl_event ev;
    int64_t ts;
    lot *l = pipe_parse(p, topic, payload, len, wall, &t, &ev, &ts);
    if (l)
        pipe_apply(p, l, &t, &ev, ts, wall, topic);
}

/* ---- input from network servers (SPEC §9) ---- */

/* Log lines for input rejections share log_rejected's per-reason limits, after parkd's own
 * reasons (PL_REJECT_COUNT of them). */
_Static_assert(PL_REJECT_COUNT + INP_C_COUNT <= 32, "log_rejected has 32 reason slots");

static void pipe_log_input(const pipeline *p, size_t i, enum inp_counter why, const char *topic)
{
    if (why == INP_C_DUPLICATE || why == INP_C_NOT_UPLINK)
        return;     /* normal: two gateways, a join, a status message */
    char detail[CFG_INPUT_NAME_MAX + 32];
    snprintf(detail, sizeof detail, "input %s", p->inputs->inputs[i].name);
    log_rejected(PL_REJECT_COUNT + (unsigned)why, inp_counter_names[why], topic, detail);
}

static enum inp_counter pipe_input_outcome(const lot_outcome *o)
{
    switch (o->result) {
    case LOT_APPLIED:           return INP_C_APPLIED;
    case LOT_UNCHANGED:         return INP_C_UNCHANGED;
    case LOT_IGNORED_OLD:       return INP_C_IGNORED_OLD;
    case LOT_IGNORED_DUPLICATE: return INP_C_DUPLICATE;
    case LOT_REJECTED:          return inp_counter_for_reject(o->reject);
    }
    return INP_C_REJECTED_MALFORMED;
}

void pipe_on_input_message(pipeline *p, size_t i, const char *topic, const void *payload,
                           size_t len)
{
    if (!p->inputs || i >= p->inputs->n)
        return;
    int64_t wall = pipe_note_read(p);
    inp_event e;
    enum inp_counter why;
    if (!inp_take(p->inputs, i, topic, payload, len, wall, &e, &why)) {
        pipe_log_input(p, i, why, topic);
        return;
    }
    lot *l = pipe_find_lot(p, e.topic.lot);
    int64_t ts = e.ev.has_ts ? e.ev.ts_ms : wall;
    why = !l ? INP_C_REJECTED_UNKNOWN_LOT
             : ts > wall + p->cfg->limits.max_future_ms ? INP_C_REJECTED_FUTURE : INP_C_COUNT;
    if (why != INP_C_COUNT) {
        inp_count(p->inputs, i, why);
        pipe_log_input(p, i, why, topic);
        return;
    }
    lot_outcome o = pipe_apply(p, l, &e.topic, &e.ev, ts, wall, topic);
    inp_count(p->inputs, i, pipe_input_outcome(&o));
}

/* ---- staleness and the event clock ---- */

int64_t pipe_event_clock(const pipeline *p)
{
    int64_t wall = util_wall_ms();
    if (p->newest_event_ms == INT64_MIN)
        return wall;
    return p->newest_event_ms + (wall - p->newest_event_wall_ms);
}

/* Staleness, unknown bays and closures that expire move with the event clock, not with a
 * lot's own input: the lots this turn writes are brought up to date every turn, all of them at
 * most every PIPE_STALE_SCAN_MS (and when draining), so that a turn costs what it writes, not
 * the number of lots. */
static void pipe_update_stale(pipeline *p, uint64_t now, bool drain)
{
    int64_t clock = pipe_event_clock(p);
    for (size_t i = 0; i < p->n_queued; i++)
        (void)lot_update_stale(p->queued[i], clock);    /* already queued */
    if (!drain && now < p->stale_scan_at)
        return;
    p->stale_scan_at = now + PIPE_STALE_SCAN_MS;
    for (size_t i = 0; i < p->n_lots; i++) {
        if (lot_update_stale(p->lots[i], clock))
            pipe_queue_lot(p, p->lots[i]);
    }
}

/* ---- resync requests ---- */

void pipe_resync_config(pipeline *p)
{
    p->ids_due = p->static_due = true;
}

void pipe_resync_all(pipeline *p)
{
    p->ids_due = p->static_due = p->sensors_due = p->daemon_due = true;
    for (size_t i = 0; i < p->n_lots; i++)
        fc_mark_all_dirty(p->fc, p->lots[i]);
}

void pipe_republish_all(pipeline *p)
{
    p->republish_due = true;
}

void pipe_write_daemon(pipeline *p)
{
    p->daemon_due = true;
}

/* ---- the turn ---- */

static void pipe_observe_latency(pipeline *p, const pipe_batch *b)
{
    if (!b->messages || !b->first_read_ms)
        return;
    double seconds = (double)(util_wall_ms() - b->first_read_ms) / 1000.0;
    const double *bounds = metrics_latency_bounds();
    for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
        if (seconds <= bounds[i])
            p->latency_counts[i] += b->messages;
    }
    p->latency_count += b->messages;
    p->latency_sum += seconds * (double)b->messages;
}

/* Without the acknowledgement barrier (QoS 0) input would outrun Redis; this bounds it. */
static void pipe_update_backpressure(pipeline *p)
{
    bool full = store_batches_in_flight(p->st) >= PIPE_MAX_BATCHES_IN_FLIGHT;
    for (size_t i = 0; i < PIPE_MAX_SOURCES; i++)
        if (p->src[i].mq)
            mq_set_backpressure(p->src[i].mq, full);
}

/* Every connection's input that batch B holds is stored (none of a client that has been
 * replaced since, e.g. the startup batch sent before MQTT connected). */
static void pipe_mark_stored(pipeline *p, const pipe_batch *b)
{
    bool none_in_flight = store_batches_in_flight(p->st) == 0;
    for (size_t i = 0; i < PIPE_MAX_SOURCES; i++) {
        pipe_source *src = &p->src[i];
        if (!src->mq)
            continue;
        uint64_t upto = src->generation == b->generation[i] ? b->upto[i] : 0;
        if (src->idle_upto > upto && none_in_flight)
            upto = src->idle_upto;  /* input of turns that had nothing to store, read since */
        if (upto)
            mq_mark_stored(src->mq, upto);
    }
}

static void pipe_on_batch_done(void *ctx, uint64_t token, bool ok)
{
    pipe_batch *b = (pipe_batch *)(uintptr_t)token;
    pipeline *p = b->p;
    if (ok) {
        pipe_observe_latency(p, b);
        pipe_mark_stored(p, b);
        p->daemon_stored |= b->has_daemon;
    }
    /* A failure (the connection went) needs nothing here: the store reconnects, and
     * on_connected has everything written again; the input stays unacknowledged meanwhile. */
    free(b);
    pipe_update_backpressure(p);
    if (ok && pipe_has_work(p))
        pipe_end_turn_soon(p);  /* what waited for this batch (group commit), or the rest of
                                 * a large write, now that Redis took this part */
    if (ok && p->on_stored)
        p->on_stored(p->on_stored_ctx);
}

static void pipe_write_model(pipeline *p, lot *l, uint64_t now, bool force);

static pipe_rare pipe_rare_of(const lot *l)
{
    return (pipe_rare){ .has_data = l->has_data, .count_is_free = l->count_is_free,
                        .sm_started = l->smooth.started, .closed = l->closed,
                        .has_closed_until = l->has_closed_until, .status = l->status,
                        .count_ts_ms = l->count_ts_ms, .count_value = l->count_value,
                        .closed_until_ms = l->closed_until_ms };
}

static bool pipe_rare_equal(const pipe_rare *a, const pipe_rare *b)
{
    return a->has_data == b->has_data && a->count_is_free == b->count_is_free &&
           a->sm_started == b->sm_started && a->closed == b->closed &&
           a->has_closed_until == b->has_closed_until && a->status == b->status &&
           a->count_ts_ms == b->count_ts_ms && a->count_value == b->count_value &&
           a->closed_until_ms == b->closed_until_ms;
}

/* STORE_LOT_STATE_RARE when L's rare restore fields changed since they were last written (a
 * closure's reason is flagged by pipe_on_admin, the one place it changes while running). */
static unsigned pipe_rare_due(pipe_lot *pl, const lot *l)
{
    pipe_rare now = pipe_rare_of(l);
    if (pl->rare_written && pipe_rare_equal(&now, &pl->rare))
        return 0;
    pl->rare = now;
    pl->rare_written = true;
    return STORE_LOT_STATE_RARE;
}

/* One queued lot: its state and sensors, its observation, publish decision and model. */
static void pipe_write_lot(pipeline *p, lot *l, int64_t wall, uint64_t now)
{
    pipe_lot *pl = l->pub_data;
    store_batch_lot(p->st, l, pl->write_what | pipe_rare_due(pl, l), wall);
    pl->write_what = 0;
    if (!l->observed)
        pipe_observe(p, l);
    pipe_consider(p, l, now, false);
    pipe_write_model(p, l, now, p->draining);
    l->queued = false;
    l->observed = false;
    lot_clear_dirty(l);
}

/* Queues every lot for a full write (start, reload, a Redis that lost its data). */
static void pipe_queue_all(pipeline *p)
{
    unsigned what = (p->static_due ? STORE_LOT_STATIC : 0) |
                    (p->sensors_due ? STORE_LOT_ALL_SENSORS : 0);
    for (size_t i = 0; i < p->n_lots; i++) {
        ((pipe_lot *)p->lots[i]->pub_data)->write_what |= what;
        pipe_queue_lot(p, p->lots[i]);
    }
    p->static_due = p->sensors_due = false;
}

/* The queued lots, at most PIPE_MAX_LOTS_PER_BATCH of them. Returns whether none is left. */
static bool pipe_write_lots(pipeline *p, int64_t wall, uint64_t now)
{
    if (p->static_due || p->sensors_due)
        pipe_queue_all(p);
    if (p->ids_due)
        store_batch_lot_ids(p->st, p->lots, p->n_lots);
    size_t n = p->n_queued < PIPE_MAX_LOTS_PER_BATCH ? p->n_queued : PIPE_MAX_LOTS_PER_BATCH;
    for (size_t i = 0; i < n; i++)
        pipe_write_lot(p, p->queued[i], wall, now);
    memmove(p->queued, p->queued + n, (p->n_queued - n) * sizeof *p->queued);
    p->n_queued -= n;
    return p->n_queued == 0;
}

static void pipe_fields_emit(void *ctx, const char *field, const char *value)
{
    pipe_fields *f = ctx;
    util_grow((void **)&f->names, &f->cap_names, f->n + 1, sizeof *f->names);
    util_grow((void **)&f->values, &f->cap_values, f->n + 1, sizeof *f->values);
    f->names[f->n] = util_xstrdup(field);
    f->values[f->n] = util_xstrdup(value);
    f->n++;
}

static void pipe_fields_clear(pipe_fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->names[i]);
        free(f->values[i]);
    }
    f->n = 0;
}

static bool pipe_model_due(const pipe_lot *pl, uint64_t now)
{
    return !pl->model_written || now - pl->model_written_ms >= PIPE_MODEL_WRITE_MS;
}

/* L's model changes into the batch, if they are due (see PIPE_MODEL_WRITE_MS) or FORCE; else
 * they wait, and pipe_scan_models finds them. */
static void pipe_write_model(pipeline *p, lot *l, uint64_t now, bool force)
{
    pipe_lot *pl = l->pub_data;
    bool reset = fc_model_take_reset(p->fc, l);
    if (!reset && !force && !pipe_model_due(pl, now)) {
        pl->model_pending = true;
        return;
    }
    if (reset)
        store_batch_model_clear(p->st, l->id);
    pipe_fields_clear(&p->fields);
    fc_model_changes(p->fc, l, pipe_fields_emit, &p->fields);
    store_batch_model(p->st, l->id, p->fields.n, (const char *const *)p->fields.names,
                      (const char *const *)p->fields.values);
    if (p->fields.n) {      /* an empty model (no data yet) is no first write */
        pl->model_written = true;
        pl->model_written_ms = now;
    }
    pipe_fields_clear(&p->fields);
    pl->model_pending = false;
}

/* Whether a lot's waiting model changes are due (every one when draining), looked for once a
 * PIPE_MODEL_SCAN_MS: a lot that fell silent still has its learning stored. */
static void pipe_scan_models(pipeline *p, uint64_t now)
{
    if (!p->draining && now < p->model_scan_at)
        return;
    p->model_scan_at = now + PIPE_MODEL_SCAN_MS;
    for (size_t i = 0; i < p->n_lots && !p->models_due; i++) {
        const pipe_lot *pl = p->lots[i]->pub_data;
        p->models_due = pl->model_pending && (p->draining || pipe_model_due(pl, now));
    }
}

/* The due model changes that no lot write took along. */
static void pipe_write_due_models(pipeline *p, uint64_t now)
{
    if (!p->models_due)
        return;
    p->models_due = false;
    for (size_t i = 0; i < p->n_lots; i++) {
        pipe_lot *pl = p->lots[i]->pub_data;
        if (pl->model_pending && (p->draining || pipe_model_due(pl, now)))
            pipe_write_model(p, p->lots[i], now, true);
    }
}

/* Lots whose pending change or heartbeat is due (every pending one when draining). */
/* Lots whose pending change or heartbeat is due (every pending one when draining). When the
 * backlog fills midway, the rest wait, and the next pass starts with the first that waited,
 * so that under steady pressure every lot gets its turn. */
static void pipe_take_due(pipeline *p, uint64_t now, bool drain)
{
    if (!drain && !p->republish_due && now < p->next_due)
        return;                 /* nothing is due yet: no lot to visit */
    p->next_due = UINT64_MAX;   /* the scan notes every lot's next deadline */
    size_t n = p->n_lots;
    size_t start = p->due_cursor < n ? p->due_cursor : 0;
    bool waited = false;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        lot *l = p->lots[i];
        pipe_lot *pl = l->pub_data;
        bool due = p->republish_due || pubrule_due(&pl->rule, p->cfg, now) ||
                   (drain && pl->rule.pending);
        if (due && !drain && pipe_backlog_full(p)) {
            if (!waited)
                p->due_cursor = i;
            waited = true;
            pubrule_defer(&pl->rule, now + PIPE_BACKLOG_RETRY_MS);
        } else if (due) {
            pipe_snapshot(p, l, now);
        }
        pipe_note_due(p, pl);
    }
}

/* PL's next deadline lowers the bound below which no lot is due. */
static void pipe_note_due(pipeline *p, const pipe_lot *pl)
{
    uint64_t at = pubrule_next(&pl->rule, p->cfg);
    if (at < p->next_due)
        p->next_due = at;
}

static void pipe_write_outputs(pipeline *p)
{
    for (size_t i = 0; i < p->n_hist; i++)
        store_batch_history(p->st, p->hist[i].lot_id, &p->hist[i].e);
    for (size_t i = 0; i < p->n_out; i++) {
        const pipe_out *o = &p->out[i];
        if (o->forecast)
            store_batch_forecast(p->st, o->lot_id, o->forecast);
        store_batch_update(p->st, o->availability, o->availability_len);
    }
}

static void pipe_write_daemon_hash(pipeline *p)
{
    p->counters[PIPE_C_REDIS_TIMEOUTS] = store_timeouts(p->st);
    p->counters[PIPE_C_REDIS_REFUSALS] = store_refusals(p->st);
    store_counters c = { pipe_counter_names, p->counters, PIPE_C_COUNT };
    size_t n = p->inputs ? p->inputs->n * INP_C_COUNT : 0;
    for (size_t i = 0; i < n; i++)
        p->input_counter_values[i] = p->inputs->inputs[i / INP_C_COUNT].counters[i % INP_C_COUNT];
    store_counters in = { (const char *const *)p->input_counter_names, p->input_counter_values, n };
    store_batch_daemon(p->st, p->started_ms, &c, &in);
    p->daemon_due = false;
}

static void pipe_publish_outputs(pipeline *p)
{
    for (size_t i = 0; i < p->n_out; i++) {
        pipe_out *o = &p->out[i];
        /* A disconnected broker gets everything again on reconnect (pipe_republish_all), so
         * the snapshot counts as done either way. */
        if (out_publish_lot(p->mq, p->cfg, o->lot_id, "availability", o->availability,
                            o->availability_len) == 0)
            p->counters[PIPE_C_PUBLISHED]++;
        if (o->forecast_json && out_publish_lot(p->mq, p->cfg, o->lot_id, "forecast",
                                                o->forecast_json, o->forecast_len) == 0)
            p->counters[PIPE_C_PUBLISHED]++;
        free(o->lot_id);
        free(o->availability);
        free(o->forecast);
        free(o->forecast_json);
    }
    p->n_out = 0;
    for (size_t i = 0; i < p->n_hist; i++) {
        free(p->hist[i].lot_id);
        hist_entry_free(&p->hist[i].e);
    }
    p->n_hist = 0;
}

/* A summary waits only for a connected broker: a reconnect republishes everything anyway
 * (pipe_republish_all), so a disconnected one holds no summary pending (nor a timer armed). */
static bool pipe_summary_pending(const pipeline *p)
{
    return p->summary_dirty && p->mq && mq_is_connected(p->mq);
}

/* Clears the retained pages K > N that a longer summary left, so that a client never reads
 * stale ones; p->summary_pages keeps counting them until every clear has gone out. */
static void pipe_clear_summary_pages(pipeline *p, size_t n)
{
    size_t k = n + 1;
    while (k <= p->summary_pages && out_publish_summary_page(p->mq, p->cfg, k, "") == 0)
        k++;
    if (k > p->summary_pages)
        p->summary_pages = n;
}

/* The further pages go out first and page 1 last: QoS 1 on one connection keeps that order, so
 * a client that reassembles when page 1 arrives already has the pages of the same summary.
 * Returns 0 or the first error (the rest is not sent: a reconnect republishes it all). */
static int pipe_send_summary_pages(pipeline *p, char *const *pages, size_t n)
{
    if (n > p->summary_pages)
        p->summary_pages = n;
    for (size_t k = n; k >= 1; k--) {
        int rc = out_publish_summary_page(p->mq, p->cfg, k, pages[k - 1]);
        if (rc < 0)
            return rc;
        p->counters[PIPE_C_PUBLISHED]++;
    }
    pipe_clear_summary_pages(p, n);
    return 0;
}

static void pipe_publish_summary(pipeline *p, uint64_t now, bool force)
{
    if (!pipe_summary_pending(p))
        return;
    if (!force && now - p->summary_last_ms < (uint64_t)p->cfg->publish.summary_interval_ms)
        return;
    /* A refused publish or a failed format waits a summary interval too rather than being
     * retried at once. */
    p->summary_last_ms = now;
    size_t n;
    char **pages = out_format_summary_pages(p->lots, p->n_lots,
                                            (size_t)p->cfg->publish.summary_max_bytes, &n);
    if (!pages) {
        log_error("publish: cannot format the summary in pages of %" PRId64 " bytes",
                  p->cfg->publish.summary_max_bytes);
        return;
    }
    if (pipe_send_summary_pages(p, pages, n) == 0)
        p->summary_dirty = false;
    out_free_pages(pages, n);
}

/* Arms the publish timer for the earliest pending publish, heartbeat or summary. */
static void pipe_arm_pub_timer(pipeline *p, uint64_t now)
{
    uint64_t next = p->next_due;   /* early at worst: the scan it causes makes it exact */
    if (pipe_summary_pending(p)) {
        uint64_t at = p->summary_last_ms + (uint64_t)p->cfg->publish.summary_interval_ms;
        if (at < next)
            next = at;
    }
    if (next == UINT64_MAX) {
        uv_timer_stop(&p->pub_timer);
        p->pub_timer_at = UINT64_MAX;
        return;
    }
    if (next == p->pub_timer_at && uv_is_active((uv_handle_t *)&p->pub_timer))
        return;
    p->pub_timer_at = next;
    int rc = uv_timer_start(&p->pub_timer, pipe_on_pub_timer, next > now ? next - now : 0, 0);
    if (rc < 0)
        log_error("publish: cannot arm the timer: %s", uv_strerror(rc));
}

static void pipe_on_pub_timer(uv_timer_t *timer)
{
    pipeline *p = timer->data;
    p->pub_timer_at = UINT64_MAX;
    pipe_flush(p, false);
}

static bool pipe_has_work(const pipeline *p)
{
    return p->n_queued || p->n_out || p->n_hist || p->ids_due || p->static_due ||
           p->sensors_due || p->daemon_due || p->models_due;
}

/* Sends the open batch; once Redis has it, the input read so far may be acknowledged — unless
 * lots are left queued (PARTIAL): their changes may be what that input did, so the batch that
 * writes the last of them acknowledges it (batches are confirmed in order). */
static void pipe_commit(pipeline *p, bool has_daemon, bool partial)
{
    pipe_batch *b = util_xcalloc(1, sizeof *b);
    *b = (pipe_batch){ .p = p, .first_read_ms = partial ? 0 : p->turn_first_read_ms,
                       .has_daemon = has_daemon };
    for (size_t i = 0; i < PIPE_MAX_SOURCES; i++) {
        const pipe_source *src = &p->src[i];
        b->generation[i] = src->generation;
        b->upto[i] = src->mq && !partial ? mq_messages_read(src->mq) : 0;
        if (b->upto[i])
            b->messages += b->upto[i] - src->batched_upto;
    }
    if (store_batch_commit(p->st, (uint64_t)(uintptr_t)b, pipe_on_batch_done, p) < 0) {
        free(b);
        pipe_resync_all(p);     /* the reconnect writes everything again */
        return;
    }
    if (!partial) {
        for (size_t i = 0; i < PIPE_MAX_SOURCES; i++)
            if (b->upto[i])
                p->src[i].batched_upto = b->upto[i];
        p->turn_first_read_ms = 0;
    }
    p->counters[PIPE_C_REDIS_BATCHES]++;
    pipe_update_backpressure(p);
}

/* A turn that stores nothing (rejected or repeated input) acknowledges its input at once, or
 * after the batches still in flight, which were sent before it was read. */
static void pipe_ack_idle(pipeline *p)
{
    for (size_t i = 0; i < PIPE_MAX_SOURCES; i++) {
        pipe_source *src = &p->src[i];
        if (!src->mq)
            continue;
        uint64_t upto = mq_messages_read(src->mq);
        if (upto == src->batched_upto)
            continue;
        src->batched_upto = upto;
        p->turn_first_read_ms = 0;
        if (store_batches_in_flight(p->st) == 0)
            mq_mark_stored(src->mq, upto);
        else
            src->idle_upto = upto;
    }
}

void pipe_flush(pipeline *p, bool drain)
{
    if (!store_is_writable(p->st))
        return;     /* lots stay queued and input unacknowledged until Redis takes writes */
    uint64_t now = uv_now(p->loop);
    int64_t wall = util_wall_ms();
    bool force_summary = drain || p->republish_due;
    p->draining = drain;
    pipe_update_stale(p, now, drain);
    pipe_scan_models(p, now);
    pipe_take_due(p, now, drain);   /* before the queued lots: they may be among them */
    p->republish_due = false;
    if (!pipe_has_work(p)) {
        pipe_ack_idle(p);
        pipe_publish_summary(p, now, force_summary);
        pipe_arm_pub_timer(p, now);
        return;
    }
    if (!drain && store_batches_in_flight(p->st) >= PIPE_GROUP_IN_FLIGHT)
        return;     /* group commit: pipe_on_batch_done starts the turn that writes it */
    if (store_batch_begin(p->st) < 0)
        return;
    bool complete = pipe_write_lots(p, wall, now);
    if (complete)
        pipe_write_due_models(p, now);
    if (drain)
        pipe_take_due(p, now, true);    /* what the queued lots left pending */
    pipe_write_outputs(p);
    bool has_daemon = p->daemon_due;
    if (has_daemon)
        pipe_write_daemon_hash(p);
    p->ids_due = false;
    pipe_commit(p, has_daemon, !complete);
    pipe_publish_outputs(p);
    pipe_publish_summary(p, now, force_summary);
    pipe_arm_pub_timer(p, now);
}

bool pipe_is_idle(const pipeline *p)
{
    bool pending = false;
    for (size_t i = 0; i < p->n_lots && !pending; i++)
        pending = ((pipe_lot *)p->lots[i]->pub_data)->rule.pending;
    return !pipe_has_work(p) && !pending && !pipe_summary_pending(p) &&
           store_batches_in_flight(p->st) == 0;
}

void pipe_touch_lot(pipeline *p, lot *l)
{
    pipe_queue_lot(p, l);
}

void pipe_set_on_stored(pipeline *p, void (*fn)(void *ctx), void *ctx)
{
    p->on_stored = fn;
    p->on_stored_ctx = ctx;
}

bool pipe_daemon_stored(const pipeline *p)
{
    return p->daemon_stored;
}

/* ---- observation ---- */

const uint64_t *pipe_counters(const pipeline *p)
{
    return p->counters;
}

uint64_t pipe_messages_in(const pipeline *p)
{
    return p->counters[PIPE_C_MESSAGES_IN];
}

void pipe_metrics(const pipeline *p, metrics_snapshot *snap)
{
    snap->counter_names = pipe_counter_names;
    snap->counters = p->counters;
    snap->n_counters = PIPE_C_COUNT;
    snap->lots = p->lots;
    snap->n_lots = p->n_lots;
    snap->latency_bounds = metrics_latency_bounds();
    snap->latency_counts = p->latency_counts;
    snap->latency_count = p->latency_count;
    snap->latency_sum_seconds = p->latency_sum;
    snap->started_ms = p->started_ms;
    size_t n = p->inputs ? p->inputs->n : 0;
    for (size_t i = 0; i < n * INP_C_COUNT; i++)
        p->input_counter_values[i] = p->inputs->inputs[i / INP_C_COUNT].counters[i % INP_C_COUNT];
    snap->n_inputs = n;
    snap->input_counter_names = inp_counter_names;
    snap->input_counters = p->input_counter_values;
    snap->n_input_counters = INP_C_COUNT;
}

/* ---- teardown ---- */

static void pipe_on_handle_closed(uv_handle_t *handle)
{
    pipeline *p = handle->data;
    if (--p->open_handles == 0 && p->close_done)
        p->close_done(p->close_ctx);
}

void pipe_close(pipeline *p, void (*done)(void *ctx), void *ctx)
{
    p->close_done = done;
    p->close_ctx = ctx;
    uv_close((uv_handle_t *)&p->pub_timer, pipe_on_handle_closed);
    uv_close((uv_handle_t *)&p->turn_end, pipe_on_handle_closed);
}

void pipe_free(pipeline *p)
{
    if (!p)
        return;
    p->mq = NULL;
    memset(p->src, 0, sizeof p->src);
    pipe_free_input_names(p);
    for (size_t i = 0; i < p->n_lots; i++)
        pipe_free_lot(p, p->lots[i]);
    p->n_queued = 0;
    pipe_publish_outputs(p);    /* frees what a turn that never ran left */
    free(p->lots);
    free(p->queued);
    free(p->out);
    free(p->hist);
    free(p->fields.names);
    free(p->fields.values);
    map_free(p->by_id);
    free(p);
}
