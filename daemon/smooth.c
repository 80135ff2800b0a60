/* smooth: exact exponential smoothing of a piecewise-constant signal. Between updates the signal
 * holds `value`, so the smoothed value relaxes towards it in closed form; irregular, bursty or
 * sparse updates therefore give the same result as a fine regular sampling would. */
#include "smooth.h"

#include <math.h>

#define SM_MS_PER_HOUR 3600000.0

/* Weight left on the old state after DT_MS: exp(-dt/tau). A non-positive tau means no smoothing
 * (the old state is forgotten at once). */
static double sm_decay(int64_t dt_ms, int64_t tau_ms)
{
    if (tau_ms <= 0)
        return 0.0;
    return exp(-(double)dt_ms / (double)tau_ms);
}

/* The smoothed value DT_MS after ts_ms, with the held value unchanged. */
static double sm_relax(const sm_state *s, int64_t dt_ms, int64_t tau_ms)
{
    return s->value + (s->smoothed - s->value) * sm_decay(dt_ms, tau_ms);
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
    double smoothed = sm_relax(s, dt, tau_ms);
    double slope = (smoothed - s->smoothed) / (double)dt;
    /* The trend is itself smoothed with the same time constant, so a burst of closely spaced
     * updates (tiny dt, noisy slope) moves it little and a long gap moves it a lot. */
    double blend = 1.0 - sm_decay(dt, tau_ms);
    s->trend_per_ms += (slope - s->trend_per_ms) * blend;
    s->smoothed = smoothed;
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
