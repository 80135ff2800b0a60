/* learn: the two small online learners behind a forecast horizon. An exponentially forgetting
 * ridge regression (how the deviation from the usual profile carries over to the horizon), and
 * a ring of the signed errors of past forecasts (for intervals and the published MAE). Pure
 * state and arithmetic; event time drives all forgetting, so replays learn what live runs do. */
#ifndef PARKD_LEARN_H
#define PARKD_LEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LN_FEATURES 5

/* Regression y ~ coef . x, fitted by weighted least squares with a ridge pull towards PRIOR.
 * A sample's weight halves every tau * ln 2 of event time, so the fit follows slow changes. */
typedef struct ln_reg {
    double a[LN_FEATURES][LN_FEATURES];    /* sum of w x x^T */
    double b[LN_FEATURES];                 /* sum of w x y */
    double prior[LN_FEATURES];
    int64_t last_ms;                       /* event time of the newest sample; INT64_MIN none */
    double coef[LN_FEATURES];              /* the solution, valid when coef_valid */
    bool coef_valid;
} ln_reg;

void ln_reg_init(ln_reg *r, const double prior[LN_FEATURES]);

/* Adds sample (X, Y) observed at event time T_MS; older samples fade by exp(-dt / TAU_MS). */
void ln_reg_add(ln_reg *r, const double x[LN_FEATURES], double y, int64_t t_ms, int64_t tau_ms);

/* The coefficients minimising the weighted squared error plus RIDGE * |coef - prior|^2 (cached
 * until the next sample). Each is bounded to [-LN_COEF_MAX, LN_COEF_MAX]. */
#define LN_COEF_MAX 3.0
const double *ln_reg_coef(ln_reg *r, double ridge);

/* Storage as one text value: "last_ms", the upper triangle of a row by row, then b. */
int ln_reg_encode(const ln_reg *r, char *buf, size_t size);
/* Restores from ln_reg_encode text; false (R unchanged) when it does not parse. */
bool ln_reg_decode(ln_reg *r, const char *text);

/* The last LN_ERRORS signed errors (actual - forecast), differences of occupancies and so in
 * [-1, 1], kept in LN_ERROR_SCALE-ths: 16 bits are finer than one space in 32767, and halve the
 * ring, which is a good part of a lot's memory (one per horizon). */
#define LN_ERRORS 512
#define LN_ERROR_CHUNK 16
#define LN_ERROR_SCALE 32767
typedef struct ln_errors {
    int16_t e[LN_ERRORS];
    uint32_t next;                         /* where the next error goes */
    uint32_t count;                        /* <= LN_ERRORS */
    bool stats_valid;
    double q_low, q_high, mae;             /* cached by ln_errors_stats */
    bool dirty[LN_ERRORS / LN_ERROR_CHUNK];
    bool meta_dirty;
} ln_errors;

void ln_errors_init(ln_errors *e);
void ln_errors_add(ln_errors *e, double err);

/* The LOW and HIGH quantiles (e.g. 0.1 and 0.9) of the errors and their mean absolute value.
 * Needs at least one error; cached until the next ln_errors_add. */
void ln_errors_stats(ln_errors *e, double low, double high, double *q_low, double *q_high,
                     double *mae);

/* The Q quantile (0..1) of sorted V[0..N), N >= 1, interpolating between order statistics. */
double ln_quantile(const float *v, size_t n, double q);

/* Storage: EMIT(CTX, FIELD, VALUE) for each changed chunk, FIELD = "<NAME>.<chunk>" holding 16
 * errors, and "<NAME>" = "next count" when that changed; then all is clean. */
void ln_errors_flush(ln_errors *e, const char *name,
                     void (*emit)(void *ctx, const char *field, const char *value), void *ctx);
/* Like pf_mark_all_dirty: every chunk that differs from ln_errors_init's, and the meta. */
void ln_errors_mark_all_dirty(ln_errors *e);
/* Restores the field whose name after "<NAME>" is SUFFIX ("" or ".<chunk>"); false when it
 * does not parse. */
bool ln_errors_restore_field(ln_errors *e, const char *suffix, const char *value);

#endif
