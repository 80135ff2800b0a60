/* metrics: the Prometheus text of GET /metrics (metrics.listen or http.listen). The loop
 * renders a snapshot of its state once a second; http.c serves the last rendered text, so the
 * HTTP thread never touches loop state. Pure rendering, no server. */
#ifndef PARKD_METRICS_H
#define PARKD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lot.h"

#define METRICS_LATENCY_BUCKETS 12

/* Everything the endpoint shows, as the loop sees it at one moment. Counters are mapped to
 * metric families by name (see metrics.c): "messages_in", the message results "applied",
 * "unchanged", "ignored_old", "ignored_duplicate", "rejected_<reason>", "anomaly_<kind>",
 * "input_<kind>" (messages per input kind); any other name N becomes parkd_N_total. */
typedef struct metrics_snapshot {
    const char *const *counter_names;   /* parkd:daemon counter names, e.g. "rejected_malformed" */
    const uint64_t *counters;
    size_t n_counters;
    bool mqtt_up, redis_up;
    uint64_t mqtt_reconnects, redis_reconnects;
    lot *const *lots;                   /* per-lot free, occupancy, status, stale */
    size_t n_lots;
    /* input-to-Redis latency: cumulative counts per upper bound (seconds) */
    const double *latency_bounds;       /* METRICS_LATENCY_BUCKETS of them, ascending */
    const uint64_t *latency_counts;     /* cumulative, same length */
    uint64_t latency_count;
    double latency_sum_seconds;
    int64_t started_ms;                 /* wall time of the start; 0: not shown */
    /* SPEC §9's inputs: per input its name, whether it has a connection of its own and
     * whether that is up, and n_input_counters counters named input_counter_names (the first
     * "uplinks": every message; the others what became of them) */
    const char *const *input_names;
    const bool *input_own, *input_up;
    size_t n_inputs;
    const char *const *input_counter_names;
    const uint64_t *input_counters;     /* n_inputs x n_input_counters, input by input */
    size_t n_input_counters;
    /* SPEC §11: NULL without ha */
    const char *ha_instance;
    bool ha_active;
    uint64_t ha_epoch;
} metrics_snapshot;

/* Upper bounds in seconds of the latency histogram buckets (static array). */
const double *metrics_latency_bounds(void);

/* Renders SNAP in the Prometheus text exposition format (version 0.0.4) into a malloc'd string
 * (caller frees); *len gets its length. Pure: exposed for tests. */
char *metrics_render(const metrics_snapshot *snap, size_t *len);

#endif
