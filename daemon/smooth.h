/* smooth: time-aware exponential smoothing of a piecewise-constant signal on event time. */
#ifndef PARKD_SMOOTH_H
#define PARKD_SMOOTH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct sm_state {
    bool started;
    int64_t ts_ms;        /* event time of the last update */
    double value;         /* the raw value held since ts_ms */
    double smoothed;      /* smoothed value at ts_ms */
    double trend_per_ms;  /* smoothed rate of change of `smoothed`, per ms */
} sm_state;

/* Feeds value X observed at event time TS_MS. The first call sets smoothed = X and trend 0.
 * Irregular steps are exact for a signal that holds its value between updates: the weight of
 * the old state decays as exp(-dt / TAU_MS). An update older than ts_ms is applied with dt = 0
 * (time never runs backwards). */
void sm_update(sm_state *s, int64_t ts_ms, double x, int64_t tau_ms);

/* The smoothed value as it would be at AT_MS >= ts_ms with the held value unchanged. */
double sm_smoothed_at(const sm_state *s, int64_t at_ms, int64_t tau_ms);

/* Trend in units per hour. */
double sm_trend_per_hour(const sm_state *s);

#endif
