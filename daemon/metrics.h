/* metrics: a Prometheus text endpoint (metrics.listen, off by default). The loop renders a
 * snapshot once a second; the HTTP server (libmicrohttpd, its own thread) only serves the last
 * rendered text, so it never touches loop state. */
#ifndef PARKD_METRICS_H
#define PARKD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lot.h"

#define METRICS_LATENCY_BUCKETS 12

typedef struct metrics metrics;

/* Everything the endpoint shows, as the loop sees it at one moment. */
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
} metrics_snapshot;

/* Upper bounds in seconds of the latency histogram buckets (static array). */
const double *metrics_latency_bounds(void);

/* Starts serving on LISTEN ("HOST:PORT"). Returns 0 and *out, or a negative errno and *err
 * (malloc'd, caller frees). */
int metrics_start(const char *listen, metrics **out, char **err);

/* Renders SNAP into the text served from now on. */
void metrics_update(metrics *m, const metrics_snapshot *snap);

/* Renders SNAP in the Prometheus text exposition format into a malloc'd string (caller frees);
 * *len gets its length. Exposed for tests. */
char *metrics_render(const metrics_snapshot *snap, size_t *len);

/* Stops the server and frees M; NULL is fine. */
void metrics_stop(metrics *m);

#endif
