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
    double trend_per_ms;  /* smoothed rate of change of the signal, per ms (see smooth.c) */
} sm_state;

/* Feeds value X observed at event time TS_MS. The first call sets smoothed = X and trend 0.
 * Irregular steps are exact for a signal that holds its value between updates: the weight of
 * the old state decays as exp(-dt / TAU_MS), and the trend is the double-exponential estimate
 * (s1 - s2) / tau, which converges to r on a signal rising at r and decays to 0 once the signal
 * is flat. An update at or before ts_ms only changes the held value (time never runs
 * backwards). The state is plain data: saved and restored field by field it continues exactly
 * (a restart changes nothing). */
void sm_update(sm_state *s, int64_t ts_ms, double x, int64_t tau_ms);

/* The smoothed value as it would be at AT_MS >= ts_ms with the held value unchanged. */
double sm_smoothed_at(const sm_state *s, int64_t at_ms, int64_t tau_ms);

/* Trend in units per hour. */
double sm_trend_per_hour(const sm_state *s);

#endif
