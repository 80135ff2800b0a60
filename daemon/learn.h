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

/* Regression y ~ coef . x, fitted by weighted least squares with a ridge pull towards a prior.
 * A sample's weight halves every tau * ln 2 of event time, so the fit follows slow changes.
 * 168 bytes: the sums only (the matrix is symmetric, so its upper triangle); the prior comes
 * from the caller and the coefficients are solved when asked for (a 5 x 5 system, cheaper than
 * keeping them for every horizon of every lot). */
#define LN_TRIANGLE (LN_FEATURES * (LN_FEATURES + 1) / 2)
typedef struct ln_reg {
    double a[LN_TRIANGLE];                 /* sum of w x x^T, row by row from the diagonal */
    double b[LN_FEATURES];                 /* sum of w x y */
    int64_t last_ms;                       /* event time of the newest sample; INT64_MIN none */
} ln_reg;

void ln_reg_init(ln_reg *r);

/* Adds sample (X, Y) observed at event time T_MS; older samples fade by exp(-dt / TAU_MS). */
void ln_reg_add(ln_reg *r, const double x[LN_FEATURES], double y, int64_t t_ms, int64_t tau_ms);

/* Into COEF, the coefficients minimising the weighted squared error plus
 * RIDGE * |coef - PRIOR|^2 (PRIOR itself when the system is singular). Each is bounded to
 * [-LN_COEF_MAX, LN_COEF_MAX]. */
#define LN_COEF_MAX 3.0
void ln_reg_coef(const ln_reg *r, const double prior[LN_FEATURES], double ridge,
                 double coef[LN_FEATURES]);

/* Storage as one text value: "last_ms", the upper triangle of a row by row, then b. */
int ln_reg_encode(const ln_reg *r, char *buf, size_t size);
/* Restores from ln_reg_encode text; false (R unchanged) when it does not parse. */
bool ln_reg_decode(ln_reg *r, const char *text);

/* The last LN_ERRORS signed errors (actual - forecast), differences of occupancies and so in
 * [-1, 1], in 8 bits each on a square-root scale: error e is kept as
 * round(LN_ERROR_SCALE * sign(e) * sqrt(|e|)), so steps are fine where errors usually are
 * (0.0006 at e = 0.005, 0.002 at 0.05) and coarse only for rare large misses (0.016 at 1);
 * measured on the Birmingham replay, intervals and MAE come out as with 16 bits. The ring is one
 * per horizon and lot, and was a good part of a lot's memory. 384 errors are 2.7 days of
 * forecasts at the 10-minute spacing; measured against the 512 of earlier versions, the 80 %
 * intervals cover 79-80 % (512: 79-81 %) and the published mae is nearer the realised one, as
 * the window follows the recent days more closely; 256 covered only 76-79 %. */
#define LN_ERRORS 384
#define LN_ERROR_CHUNK 16
#define LN_ERROR_SCALE 127
_Static_assert(LN_ERRORS / LN_ERROR_CHUNK <= 32 && LN_ERRORS <= UINT16_MAX, "ln_errors fields");
typedef struct ln_errors {
    int8_t e[LN_ERRORS];
    uint16_t next;                         /* where the next error goes */
    uint16_t count;                        /* <= LN_ERRORS */
    bool stats_valid;
    bool meta_dirty;
    uint32_t dirty;                        /* bit c: chunk c changed */
    float q_low, q_high, mae;              /* cached by ln_errors_stats */
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
 * does not parse or does not fit this ring: earlier versions kept 512 errors, whose meta
 * "next count" beyond LN_ERRORS is refused (and their chunks beyond it), so such a ring restores
 * as empty once ln_errors_restore_done has run. The values themselves read alike (decimal). */
bool ln_errors_restore_field(ln_errors *e, const char *suffix, const char *value);
/* After the fields: a ring whose meta did not restore keeps nothing (chunks without their
 * "next count" cannot be placed). Returns whether anything is kept. */
bool ln_errors_restore_done(ln_errors *e);

#endif
