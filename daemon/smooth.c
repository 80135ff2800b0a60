/* smooth: exact exponential smoothing of a piecewise-constant signal, and its rate of change.
 *
 * Between updates the signal holds `value`, so everything relaxes towards it in closed form;
 * irregular, bursty or sparse updates therefore give exactly the result a fine regular sampling
 * of the same signal would (splitting a step in two changes nothing).
 *
 * The trend is Brown's double exponential smoothing in continuous time: s1 is the smoothed
 * value (an EMA of the signal with time constant tau) and s2 an EMA of s1 with the same tau.
 * For a signal rising at r per ms, s1 trails it by r*tau and s2 by 2*r*tau, so (s1 - s2) / tau
 * is a smoothed estimate of r that needs no differencing of noisy neighbouring samples. The
 * state keeps (smoothed, trend_per_ms); s2 = smoothed - tau * trend is derived from it, so the
 * stored state stays the same five fields. */
#include "smooth.h"

#include <math.h>

#define SM_MS_PER_HOUR 3600000.0

/* Weight left on the old state after DT_MS: exp(-dt/tau). */
static double sm_decay(int64_t dt_ms, int64_t tau_ms)
{
    return exp(-(double)dt_ms / (double)tau_ms);
}

/* The smoothed value DT_MS after ts_ms, with the held value unchanged. */
static double sm_relax(const sm_state *s, int64_t dt_ms, int64_t tau_ms)
{
    if (tau_ms <= 0)
        return s->value;
    return s->value + (s->smoothed - s->value) * sm_decay(dt_ms, tau_ms);
}

/* The trend DT_MS after ts_ms with the held value unchanged. With e = exp(-dt/tau) and v the
 * held value, the closed-form cascade gives
 *     s1' = v + (s1 - v) e
 *     s2' = v + (s2 - v) e + (s1 - v) (dt/tau) e
 * so (s1' - s2') / tau = e * (trend - (s1 - v) dt / tau^2). */
static double sm_trend_after(const sm_state *s, int64_t dt_ms, int64_t tau_ms)
{
    double tau = (double)tau_ms;
    double dt = (double)dt_ms;
    return sm_decay(dt_ms, tau_ms) * (s->trend_per_ms - (s->smoothed - s->value) * dt / (tau * tau));
}

void sm_update(sm_state *s, int64_t ts_ms, double x, int64_t tau_ms)
{
    if (!s->started) {
        s->started = true;
        s->ts_ms = ts_ms;
        s->value = x;
        s->smoothed = x;
        s->trend_per_ms = 0.0;
        return;
    }
    /* An out-of-order update changes the held value from now on, but time does not run back, so
     * neither the smoothed value nor the trend moves. */
    if (ts_ms <= s->ts_ms) {
        s->value = x;
        return;
    }
    int64_t dt = ts_ms - s->ts_ms;
    if (tau_ms <= 0) {
        /* No smoothing: the value is the signal and the trend the raw rate of the last step. */
        s->trend_per_ms = (x - s->value) / (double)dt;
        s->smoothed = x;
    } else {
        s->trend_per_ms = sm_trend_after(s, dt, tau_ms);
        s->smoothed = sm_relax(s, dt, tau_ms);
    }
    s->value = x;
    s->ts_ms = ts_ms;
}

double sm_smoothed_at(const sm_state *s, int64_t at_ms, int64_t tau_ms)
{
    if (!s->started || at_ms <= s->ts_ms)
        return s->smoothed;
    return sm_relax(s, at_ms - s->ts_ms, tau_ms);
}

double sm_trend_per_hour(const sm_state *s)
{
    return s->trend_per_ms * SM_MS_PER_HOUR;
}
