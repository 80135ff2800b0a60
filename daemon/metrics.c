/* metrics: the Prometheus text of /metrics, rendered on the loop from a snapshot of its
 * state; http.c serves the rendered text (so the HTTP thread never sees loop state). */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#ifndef PARKD_VERSION
#define PARKD_VERSION "unknown"
#endif


static const double metrics_bounds[METRICS_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
};

const double *metrics_latency_bounds(void)
{
    return metrics_bounds;
}

/* ---- rendering ---- */

typedef struct mbuf {
    char *s;
    size_t len, cap;
} mbuf;

static void mbuf_printf(mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void mbuf_printf(mbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort();    /* an invalid format: a programming error */
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        util_grow((void **)&b->s, &b->cap, b->len + (size_t)n + 1, 1);
    }
}

static void mbuf_putc(mbuf *b, char c)
{
    util_grow((void **)&b->s, &b->cap, b->len + 2, 1);
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

/* A label value: backslash, double quote and newline escaped, as the format requires. */
static void mbuf_label_value(mbuf *b, const char *v)
{
    for (; *v; v++) {
        switch (*v) {
        case '\\': mbuf_printf(b, "\\\\"); break;
        case '"': mbuf_printf(b, "\\\""); break;
        case '\n': mbuf_printf(b, "\\n"); break;
        default: mbuf_putc(b, *v); break;
        }
    }
}

/* A double the way Prometheus clients write it: the shortest text that reads back the same. */
static void mbuf_double(mbuf *b, double v)
{
    if (isnan(v)) {
        mbuf_printf(b, "NaN");
        return;
    }
    if (isinf(v)) {
        mbuf_printf(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char tmp[40];
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {    /* an integer, exactly: no exponent */
        mbuf_printf(b, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    mbuf_printf(b, "%s", tmp);
}

static void mbuf_header(mbuf *b, const char *name, const char *type, const char *help)
{
    mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{label="value"} — LABEL NULL for none. No newline, no value. */
static void mbuf_sample_start(mbuf *b, const char *name, const char *label, const char *value)
{
    mbuf_printf(b, "%s", name);
    if (label) {
        mbuf_printf(b, "{%s=\"", label);
        mbuf_label_value(b, value);
        mbuf_printf(b, "\"}");
    }
    mbuf_putc(b, ' ');
}

static void mbuf_sample_u64(mbuf *b, const char *name, const char *label, const char *value,
                            uint64_t v)
{
    mbuf_sample_start(b, name, label, value);
    mbuf_printf(b, "%" PRIu64 "\n", v);
}

static void mbuf_sample_double(mbuf *b, const char *name, const char *label, const char *value,
                               double v)
{
    mbuf_sample_start(b, name, label, value);
    mbuf_double(b, v);
    mbuf_putc(b, '\n');
}

/* The counter families with labels. A counter name belongs to the first family that matches:
 * one of EXACT, or PREFIX followed by the label value. */
enum { FAM_RESULT, FAM_REJECTED, FAM_ANOMALY, FAM_INPUT, FAM_COUNT, FAM_NONE = -1 };

typedef struct metrics_family {
    const char *name, *help, *label;
    const char *prefix;             /* NULL: the EXACT list */
    const char *const *exact;
} metrics_family;

static const char *const metrics_results[] = {
    "applied", "unchanged", "ignored_old", "ignored_duplicate", NULL,
};

static const metrics_family metrics_families[FAM_COUNT] = {
    [FAM_RESULT] = { "parkd_messages_total",
                     "Input messages by result (rejected: any reason).", "result", NULL,
                     metrics_results },
    [FAM_REJECTED] = { "parkd_rejected_total", "Rejected input messages by reason.", "reason",
                       "rejected_", NULL },
    [FAM_ANOMALY] = { "parkd_anomalies_total",
                      "Accepted input that needed correcting (clamped, capacity mismatch).",
                      "kind", "anomaly_", NULL },
    [FAM_INPUT] = { "parkd_input_messages_total",
                    "Input messages with a valid topic, by kind (bay, gate, count).", "kind",
                    "input_", NULL },
};

/* The family of counter NAME and its label value (a pointer into NAME), or FAM_NONE. */
static int metrics_classify(const char *name, const char **label_value)
{
    for (int f = 0; f < FAM_COUNT; f++) {
        const metrics_family *fam = &metrics_families[f];
        if (fam->exact) {
            for (const char *const *e = fam->exact; *e; e++) {
                if (strcmp(name, *e) == 0) {
                    *label_value = name;
                    return f;
                }
            }
        } else {
            size_t n = strlen(fam->prefix);
            if (strncmp(name, fam->prefix, n) == 0 && name[n]) {
                *label_value = name + n;
                return f;
            }
        }
    }
    return FAM_NONE;
}

static void metrics_render_counters(mbuf *b, const metrics_snapshot *s)
{
    uint64_t rejected = 0;
    for (size_t i = 0; i < s->n_counters; i++) {
        const char *v;
        if (metrics_classify(s->counter_names[i], &v) == FAM_REJECTED)
            rejected += s->counters[i];
    }
    for (int f = 0; f < FAM_COUNT; f++) {
        const metrics_family *fam = &metrics_families[f];
        bool header = false;
        for (size_t i = 0; i < s->n_counters; i++) {
            const char *v;
            if (metrics_classify(s->counter_names[i], &v) != f)
                continue;
            if (!header) {
                mbuf_header(b, fam->name, "counter", fam->help);
                header = true;
            }
            mbuf_sample_u64(b, fam->name, fam->label, v, s->counters[i]);
        }
        if (f == FAM_RESULT && header)
            mbuf_sample_u64(b, fam->name, fam->label, "rejected", rejected);
    }
    /* everything else: one family per counter */
    for (size_t i = 0; i < s->n_counters; i++) {
        const char *v, *n = s->counter_names[i];
        if (metrics_classify(n, &v) != FAM_NONE)
            continue;
        char name[128];
        bool received = strcmp(n, "messages_in") == 0;
        snprintf(name, sizeof name, "parkd_%s_total", received ? "messages_received" : n);
        for (char *c = name; *c; c++) {
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_'))
                *c = '_';
        }
        char help[160];
        if (received)
            snprintf(help, sizeof help, "Input messages received (own output topics excluded).");
        else
            snprintf(help, sizeof help, "The parkd:daemon counter %s.", n);
        mbuf_header(b, name, "counter", help);
        mbuf_sample_u64(b, name, NULL, NULL, s->counters[i]);
    }
}

static void metrics_render_services(mbuf *b, const metrics_snapshot *s)
{
    mbuf_header(b, "parkd_up", "gauge", "1 when the connection to the service is up.");
    mbuf_sample_u64(b, "parkd_up", "service", "mqtt", s->mqtt_up);
    mbuf_sample_u64(b, "parkd_up", "service", "redis", s->redis_up);
    mbuf_header(b, "parkd_reconnects_total", "counter",
                "Reconnection attempts to the service (after the first connect).");
    mbuf_sample_u64(b, "parkd_reconnects_total", "service", "mqtt", s->mqtt_reconnects);
    mbuf_sample_u64(b, "parkd_reconnects_total", "service", "redis", s->redis_reconnects);
}

/* SPEC §9's inputs: parkd_uplinks_total{input} (every message), parkd_uplink_results_total
 * {input,result} (what became of them), parkd_up{service="input:<name>"} for an input's own
 * connection. Input names are [A-Za-z0-9_-]+, safe in a label as they are. */
static void metrics_render_inputs(mbuf *b, const metrics_snapshot *s)
{
    if (!s->n_inputs)
        return;
    mbuf_header(b, "parkd_uplinks_total", "counter",
                "Messages received on a network-server input (SPEC §9).");
    for (size_t i = 0; i < s->n_inputs; i++)
        mbuf_sample_u64(b, "parkd_uplinks_total", "input", s->input_names[i],
                        s->input_counters[i * s->n_input_counters]);
    mbuf_header(b, "parkd_uplink_results_total", "counter",
                "What became of a network-server input's messages, by result.");
    for (size_t i = 0; i < s->n_inputs; i++)
        for (size_t k = 1; k < s->n_input_counters; k++)
            mbuf_printf(b, "parkd_uplink_results_total{input=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                        s->input_names[i], s->input_counter_names[k],
                        s->input_counters[i * s->n_input_counters + k]);
    for (size_t i = 0; i < s->n_inputs; i++) {
        if (!s->input_own[i])
            continue;
        char service[64];
        snprintf(service, sizeof service, "input:%s", s->input_names[i]);
        mbuf_sample_u64(b, "parkd_up", "service", service, s->input_up[i]);
    }
}

/* SPEC §11: parkd_ha_active{instance} 1 for the lease holder, 0 for a standby; parkd_ha_epoch. */
static void metrics_render_ha(mbuf *b, const metrics_snapshot *s)
{
    if (!s->ha_instance)
        return;
    mbuf_header(b, "parkd_ha_active", "gauge",
                "1 while this instance holds the lease (active), 0 while it is a standby.");
    mbuf_sample_u64(b, "parkd_ha_active", "instance", s->ha_instance, s->ha_active);
    mbuf_header(b, "parkd_ha_epoch", "gauge", "The lease epoch this instance holds (0: none).");
    mbuf_sample_u64(b, "parkd_ha_epoch", "instance", s->ha_instance, s->ha_epoch);
}

/* A per-lot sample: name{lot="ID"[,EXTRA="EXTRA_VALUE"]} */
static void mbuf_lot_start(mbuf *b, const char *name, const lot *l, const char *extra,
                           const char *extra_value)
{
    mbuf_printf(b, "%s{lot=\"", name);
    mbuf_label_value(b, l->id);
    if (extra) {
        mbuf_printf(b, "\",%s=\"", extra);
        mbuf_label_value(b, extra_value);
    }
    mbuf_printf(b, "\"} ");
}

enum lot_gauge {
    G_CAPACITY, G_OCCUPIED, G_FREE, G_FREE_SMOOTHED, G_OCCUPANCY, G_STALE, G_LAST_EVENT,
    G_COUNT
};

static const struct {
    const char *name, *help;
    bool needs_data;        /* no sample for a lot without data */
} lot_gauges[G_COUNT] = {
    [G_CAPACITY] = { "parkd_lot_capacity", "Configured capacity of the lot.", false },
    [G_OCCUPIED] = { "parkd_lot_occupied", "Occupied spaces.", true },
    [G_FREE] = { "parkd_lot_free", "Free spaces.", true },
    [G_FREE_SMOOTHED] = { "parkd_lot_free_smoothed", "Smoothed free spaces.", true },
    [G_OCCUPANCY] = { "parkd_lot_occupancy", "Occupied spaces / capacity (0..1).", true },
    [G_STALE] = { "parkd_lot_stale", "1 when the lot has had no input for stale_after.", false },
    [G_LAST_EVENT] = { "parkd_lot_last_event_timestamp_seconds",
                       "Event time of the newest applied input (Unix seconds).", true },
};

static double metrics_lot_value(const lot *l, enum lot_gauge g)
{
    switch (g) {
    case G_CAPACITY: return (double)l->capacity;
    case G_OCCUPIED: return (double)l->occupied;
    case G_FREE: return (double)lot_free_spaces(l);
    case G_FREE_SMOOTHED:
        return l->smooth.started ? l->smooth.smoothed : (double)lot_free_spaces(l);
    case G_OCCUPANCY: return lot_occupancy(l);
    case G_STALE: return l->stale ? 1 : 0;
    case G_LAST_EVENT: return (double)l->ts_ms / 1000.0;
    default: return NAN;
    }
}

static void metrics_render_lots(mbuf *b, const metrics_snapshot *s)
{
    mbuf_header(b, "parkd_lots", "gauge", "Configured lots.");
    mbuf_sample_u64(b, "parkd_lots", NULL, NULL, s->n_lots);
    if (!s->n_lots)
        return;
    mbuf_header(b, "parkd_lot_info", "gauge", "Always 1; the lot's name and source as labels.");
    for (size_t i = 0; i < s->n_lots; i++) {
        const lot *l = s->lots[i];
        mbuf_printf(b, "parkd_lot_info{lot=\"");
        mbuf_label_value(b, l->id);
        mbuf_printf(b, "\",name=\"");
        mbuf_label_value(b, l->name ? l->name : l->id);
        mbuf_printf(b, "\",source=\"%s\"} 1\n", cfg_source_name(l->source));
    }
    for (int g = 0; g < G_COUNT; g++) {
        mbuf_header(b, lot_gauges[g].name, "gauge", lot_gauges[g].help);
        for (size_t i = 0; i < s->n_lots; i++) {
            const lot *l = s->lots[i];
            if (lot_gauges[g].needs_data && !l->has_data)
                continue;
            mbuf_lot_start(b, lot_gauges[g].name, l, NULL, NULL);
            mbuf_double(b, metrics_lot_value(l, (enum lot_gauge)g));
            mbuf_putc(b, '\n');
        }
    }
    static const enum lot_status statuses[] = {
        LOT_STATUS_UNKNOWN, LOT_STATUS_OPEN, LOT_STATUS_ALMOST_FULL, LOT_STATUS_FULL,
        LOT_STATUS_CLOSED,
    };
    mbuf_header(b, "parkd_lot_status", "gauge", "1 for the lot's current status, else 0.");
    for (size_t i = 0; i < s->n_lots; i++) {
        for (size_t k = 0; k < sizeof statuses / sizeof statuses[0]; k++) {
            mbuf_lot_start(b, "parkd_lot_status", s->lots[i], "status",
                           lot_status_name(statuses[k]));
            mbuf_printf(b, "%d\n", s->lots[i]->status == statuses[k]);
        }
    }
}

static void metrics_render_latency(mbuf *b, const metrics_snapshot *s)
{
    static const char name[] = "parkd_input_to_redis_seconds";
    mbuf_header(b, name, "histogram",
                "Time from reading an input message to Redis confirming its effect.");
    char le[40];
    for (int i = 0; s->latency_bounds && s->latency_counts && i < METRICS_LATENCY_BUCKETS; i++) {
        mbuf tmp = { 0 };
        mbuf_double(&tmp, s->latency_bounds[i]);
        snprintf(le, sizeof le, "%s", tmp.s);
        free(tmp.s);
        mbuf_sample_u64(b, "parkd_input_to_redis_seconds_bucket", "le", le, s->latency_counts[i]);
    }
    mbuf_sample_u64(b, "parkd_input_to_redis_seconds_bucket", "le", "+Inf", s->latency_count);
    mbuf_sample_double(b, "parkd_input_to_redis_seconds_sum", NULL, NULL, s->latency_sum_seconds);
    mbuf_sample_u64(b, "parkd_input_to_redis_seconds_count", NULL, NULL, s->latency_count);
}

char *metrics_render(const metrics_snapshot *snap, size_t *len)
{
    mbuf b = { 0 };
    util_grow((void **)&b.s, &b.cap, 4096, 1);
    b.s[0] = '\0';
    mbuf_header(&b, "parkd_build_info", "gauge", "Always 1; the parkd version as a label.");
    mbuf_sample_u64(&b, "parkd_build_info", "version", PARKD_VERSION, 1);
    if (snap->started_ms) {
        mbuf_header(&b, "parkd_start_time_seconds", "gauge", "Start time of parkd (Unix seconds).");
        mbuf_sample_double(&b, "parkd_start_time_seconds", NULL, NULL,
                           (double)snap->started_ms / 1000.0);
    }
    metrics_render_services(&b, snap);
    metrics_render_counters(&b, snap);
    metrics_render_inputs(&b, snap);
    metrics_render_ha(&b, snap);
    metrics_render_lots(&b, snap);
    metrics_render_latency(&b, snap);
    *len = b.len;
    return b.s;
}
