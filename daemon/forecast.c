/* forecast: per-lot online forecasting of occupancy (SPEC §4 forecast topic, §5 :forecast hash),
 * the history stream, and the learned state kept in Redis.
 *
 * The method, per lot and horizon h, in occupancy fractions (x = occupied / capacity):
 *   forecast(t + h) = P(t + h) + c1 (x - P(t)) + c2 + c3 L + c4 A + c5 (s - 1) P(t + h)
 * where P is the lot's time-of-week profile in local time (profile.c), L the deviation from P
 * of the same time a week ago, A the deviation from P of what the most similar recent days did
 * next (analog days), and s how busy the last hours were relative to P (a busy day is busy in
 * proportion: the ratio of recent occupancy to the profile, weighted over about three hours).
 * The coefficients are an exponentially forgetting ridge regression per lot and horizon
 * (learn.c), fitted on parkd's own past forecasts once their target time has passed, with a
 * prior that lets the current deviation fade with the horizon. The 80 % interval
 * is the 10 % and 90 % quantiles of the same lot's recent forecast errors at that horizon, and
 * `mae` their mean absolute value. Until a lot has a profile near now and the target, it
 * forecasts persistence; until it has scored enough forecasts its intervals come from all lots'
 * errors. Event time (lot->ts_ms) drives everything, so a replay learns what the live day did. */
#include "forecast.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "learn.h"
#include "log.h"
#include "payload.h"
#include "profile.h"
#include "util.h"

#define FC_MODEL_VERSION "1"
#define FC_MIN_SCORED 20                   /* errors before a lot's own interval and mae */
#define FC_Q_LOW 0.1                       /* the 80 % interval */
#define FC_Q_HIGH 0.9
#define FC_RIDGE 0.1                       /* pull of the prior, in squared-deviation units */
#define FC_REG_TAU_MS (14 * 86400000LL)    /* the regression forgets over about two weeks */
#define FC_DEVIATION_TAU_MS 14400000.0     /* prior: a deviation fades over about four hours */
#define FC_PENDING_MAX 64                  /* most forecasts awaiting their target, per horizon */
#define FC_PENDING_SPACING_MS 600000       /* at most one learning forecast per 10 min */
#define FC_HOLD_MAX_MS (24 * 3600000LL)    /* bays and gates: no event means no change */
#define FC_FULL_FREE 0.5                   /* a forecast below half a space rounds to full */
#define FC_DEFAULT_WIDTH 0.05              /* interval half-width at 30 min before any errors */
#define FC_SCALE_TAU_MS 10800000.0         /* "how busy today is" looks back about 3 hours */

enum { FC_X_DEVIATION, FC_X_BIAS, FC_X_LAST_WEEK, FC_X_ANALOG, FC_X_SCALE };

/* A forecast made to learn from: scored once event time passes its target. 32 bytes: the bias
 * feature is always 1 and is not kept, and whether the model made it (rather than persistence)
 * is a bit of fc_horizon.learn. */
typedef struct fc_pending {
    int64_t target_ms;
    float forecast;                        /* occupancy */
    float expected;                        /* the profile at the target, when forecast */
    float x[LN_FEATURES - 1];              /* the features but FC_X_BIAS */
} fc_pending;

_Static_assert(FC_PENDING_MAX <= 64, "fc_horizon.learn has a bit per pending forecast");

/* One horizon of one lot: 0.6 KB (ln_reg and ln_errors, learn.h) plus its pending ring. */
typedef struct fc_horizon {
    int64_t ms;
    ln_reg reg;
    ln_errors errors;
    int64_t last_pending_ms;
    fc_pending *pending;                   /* ring of cap (fc_pending_cap), oldest at head */
    uint64_t learn;                        /* bit i: pending[i] was made by the model: fit on it */
    uint8_t cap, head, n;
    bool reg_dirty;
} fc_horizon;

typedef struct fc_lot {
    unsigned gen;                          /* fc->gen its horizons were built for */
    pf_profile profile;
    bool has_obs;                          /* the last observation learned from */
    int64_t obs_ms;
    double obs_x;
    fc_horizon *hz;                        /* one per configured horizon (owned) */
    size_t n_hz;
    /* recent occupancy against the profile at the grid instants: sums of x P and P^2, each
     * sample's weight fading by exp(-dt / FC_SCALE_TAU_MS) */
    int64_t scale_ms;                      /* the last grid instant added; INT64_MIN none */
    double scale_xp, scale_pp;
    bool scale_dirty;
    hist_state hist;
    bool hist_dirty;
    bool model_reset;           /* the whole model is marked: the stored hash is cleared first */
} fc_lot;

/* All lots' recent errors per horizon, for lots that have not scored enough of their own. */
typedef struct fc_pool {
    int64_t ms;
    ln_errors errors;
} fc_pool;

struct fc_engine {
    const cfg_config *cfg;
    unsigned gen;
    fc_pool *pool;
    size_t n_pool;
};

/* One horizon's forecast, in occupancy fractions. */
typedef struct fc_point {
    double occ, low, high;
    bool has_mae;
    double mae;
    bool learn;
    double expected;
    double x[LN_FEATURES];
} fc_point;

static double fc_clamp01(double v)
{
    return v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
}

static double fc_occupancy(const lot *l)
{
    return fc_clamp01((double)l->occupied / (double)l->capacity);
}

/* Free spaces for occupancy OCC, within [0, capacity] and never "-0.0". */
static double fc_free_spaces(const lot *l, double occ)
{
    double f = (double)l->capacity * (1.0 - fc_clamp01(occ));
    return (f < 0.0 ? 0.0 : f) + 0.0;
}

/* ---- time zone ---- */

/* ---- per-lot state ---- */

/* Spacing of learning forecasts for a horizon of MS: every 10 min, or sparser so that the
 * pending ring always spans the horizon. */
static int64_t fc_pending_spacing(int64_t ms)
{
    int64_t s = ms / (FC_PENDING_MAX - 4);
    return s > FC_PENDING_SPACING_MS ? s : FC_PENDING_SPACING_MS;
}

/* The pending ring a horizon of MS needs. A forecast is pushed only after everything due was
 * scored, so those waiting were pushed within the last MS, at least a spacing apart: at most
 * ceil(MS / spacing) of them, e.g. 6 for 60 min. Sized so rather than FC_PENDING_MAX for all,
 * which for the usual 15-60 min horizons kept 2.5 KB a horizon and lot that never filled. */
static unsigned fc_pending_cap(int64_t ms)
{
    int64_t n = ms / fc_pending_spacing(ms) + 2;
    return n < FC_PENDING_MAX ? (unsigned)n : FC_PENDING_MAX;
}

/* The regression's prior for a horizon of MS: the current deviation fades with the horizon,
 * nothing else counts. */
static void fc_prior(int64_t ms, double prior[LN_FEATURES])
{
    for (int k = 0; k < LN_FEATURES; k++)
        prior[k] = 0.0;
    prior[FC_X_DEVIATION] = exp(-(double)ms / FC_DEVIATION_TAU_MS);
}

static void fc_horizon_init(fc_horizon *h, int64_t ms)
{
    memset(h, 0, sizeof *h);
    h->ms = ms;
    h->cap = (uint8_t)fc_pending_cap(ms);
    h->pending = util_xcalloc(h->cap, sizeof *h->pending);
    ln_reg_init(&h->reg);
    ln_errors_init(&h->errors);
    h->last_pending_ms = INT64_MIN;
}

static void fc_free_horizons(fc_lot *fl)
{
    for (size_t i = 0; i < fl->n_hz; i++)
        free(fl->hz[i].pending);
    free(fl->hz);
}

/* Rebuilds the horizons for the current configuration, keeping what was learned for any
 * horizon that is still configured. */
static void fc_lot_regen(fc_engine *fc, fc_lot *fl)
{
    size_t n = fc->cfg->forecast.n_horizons;
    fc_horizon *hz = util_xcalloc(n ? n : 1, sizeof *hz);
    for (size_t i = 0; i < n; i++) {
        int64_t ms = fc->cfg->forecast.horizons_ms[i];
        size_t j = 0;
        while (j < fl->n_hz && fl->hz[j].ms != ms)
            j++;
        if (j < fl->n_hz) {
            hz[i] = fl->hz[j];
            fl->hz[j].pending = NULL;       /* moved */
        } else {
            fc_horizon_init(&hz[i], ms);
        }
    }
    fc_free_horizons(fl);
    fl->hz = hz;
    fl->n_hz = n;
    fl->gen = fc->gen;
}

/* The last observation is the lot's state (after a restore, or a lot seen for the first time). */
static void fc_lot_sync_obs(fc_lot *fl, const lot *l)
{
    fl->has_obs = l->has_data;
    fl->obs_ms = l->ts_ms;
    fl->obs_x = l->has_data ? fc_occupancy(l) : 0.0;
}

/* L's forecasting state, made on first use: only lots with data or a stored model have one,
 * so a configured lot that never reports costs no model (3.3 KB and 0.8 KB a horizon). */
static fc_lot *fc_lot_for(fc_engine *fc, lot *l)
{
    fc_lot *fl = l->fc_data;
    if (!fl) {
        fl = util_xcalloc(1, sizeof *fl);
        pf_init(&fl->profile);
        hist_init(&fl->hist);
        fl->scale_ms = INT64_MIN;
        fc_lot_sync_obs(fl, l);
        fl->gen = fc->gen - 1;
        l->fc_data = fl;
    }
    if (fl->gen != fc->gen)
        fc_lot_regen(fc, fl);
    return fl;
}

static fc_pool *fc_pool_for(fc_engine *fc, int64_t ms)
{
    for (size_t i = 0; i < fc->n_pool; i++)
        if (fc->pool[i].ms == ms)
            return &fc->pool[i];
    return NULL;
}

static void fc_pool_regen(fc_engine *fc)
{
    size_t n = fc->cfg->forecast.n_horizons;
    fc_pool *pool = util_xcalloc(n ? n : 1, sizeof *pool);
    for (size_t i = 0; i < n; i++) {
        int64_t ms = fc->cfg->forecast.horizons_ms[i];
        fc_pool *old = fc_pool_for(fc, ms);
        if (old) {
            pool[i] = *old;
        } else {
            pool[i].ms = ms;
            ln_errors_init(&pool[i].errors);
        }
    }
    free(fc->pool);
    fc->pool = pool;
    fc->n_pool = n;
}

/* ---- engine ---- */

fc_engine *fc_new(const cfg_config *cfg)
{
    fc_engine *fc = util_xcalloc(1, sizeof *fc);
    fc->cfg = cfg;
    fc->gen = 1;
    fc_pool_regen(fc);
    return fc;
}

void fc_set_config(fc_engine *fc, const cfg_config *cfg)
{
    fc->cfg = cfg;
    fc->gen++;
    fc_pool_regen(fc);
}

void fc_free(fc_engine *fc)
{
    if (!fc)
        return;
    free(fc->pool);
    free(fc);
}

void fc_forget_lot(fc_engine *fc, lot *l)
{
    (void)fc;   /* per-lot state is all on the lot; the engine keeps none of it */
    fc_lot *fl = l->fc_data;
    if (fl) {
        fc_free_horizons(fl);
        free(fl);
    }
    l->fc_data = NULL;
}

/* ---- forecasting ---- */

/* How busy the last hours were relative to the profile, minus 1 (0: as usual). */
static double fc_busyness(const fc_lot *fl)
{
    return fl->scale_pp > 1e-6 ? fl->scale_xp / fl->scale_pp - 1.0 : 0.0;
}

/* The features of a forecast for TARGET made at T with occupancy X; false without a profile
 * at the target (NOW_EXPECTED is the profile at T). */
static bool fc_features(const fc_lot *fl, double now_expected, int64_t t, double x,
                        int64_t target, double xs[LN_FEATURES], double *expected)
{
    const pf_profile *p = &fl->profile;
    if (!pf_expected(p, target, expected))
        return false;
    double v;
    xs[FC_X_DEVIATION] = x - now_expected;
    xs[FC_X_BIAS] = 1.0;
    /* a missing week or analog says "no deviation beyond the profile" */
    xs[FC_X_LAST_WEEK] = pf_days_ago(p, target, 7, &v) ? v - *expected : 0.0;
    xs[FC_X_ANALOG] = pf_analog(p, t, x, target, &v) ? v - *expected : 0.0;
    xs[FC_X_SCALE] = fc_busyness(fl) * *expected;
    return true;
}

/* Interval half-width before any errors were scored: grows like a random walk with h. */
static double fc_default_width(int64_t horizon_ms)
{
    double w = FC_DEFAULT_WIDTH * sqrt((double)horizon_ms / 1800000.0);
    return w > 0.5 ? 0.5 : w;
}

static void fc_interval(fc_engine *fc, fc_horizon *h, fc_point *pt)
{
    double q_low, q_high, mae = 0.0;
    fc_pool *pool = fc_pool_for(fc, h->ms);
    pt->has_mae = h->errors.count >= FC_MIN_SCORED;
    if (pt->has_mae) {
        ln_errors_stats(&h->errors, FC_Q_LOW, FC_Q_HIGH, &q_low, &q_high, &mae);
    } else if (pool && pool->errors.count >= FC_MIN_SCORED) {
        ln_errors_stats(&pool->errors, FC_Q_LOW, FC_Q_HIGH, &q_low, &q_high, &mae);
    } else {
        q_high = fc_default_width(h->ms);
        q_low = -q_high;
    }
    pt->mae = mae;
    /* the interval always contains the forecast, even when past errors lean one way */
    pt->low = fmin(fc_clamp01(pt->occ + q_low), pt->occ);
    pt->high = fmax(fc_clamp01(pt->occ + q_high), pt->occ);
}

/* Forecasts every horizon of FL from occupancy X at event time T into OUT[0..n_hz). */
static void fc_predict(fc_engine *fc, fc_lot *fl, int64_t t, double x, fc_point *out)
{
    double now_expected = 0.0;
    bool has_now = pf_expected(&fl->profile, t, &now_expected);
    for (size_t i = 0; i < fl->n_hz; i++) {
        fc_horizon *h = &fl->hz[i];
        fc_point *pt = &out[i];
        memset(pt, 0, sizeof *pt);
        pt->learn = has_now && fc_features(fl, now_expected, t, x, t + h->ms, pt->x,
                                           &pt->expected);
        if (pt->learn) {
            double c[LN_FEATURES], prior[LN_FEATURES];
            fc_prior(h->ms, prior);
            ln_reg_coef(&h->reg, prior, FC_RIDGE, c);
            double occ = pt->expected;
            for (int k = 0; k < LN_FEATURES; k++)
                occ += c[k] * pt->x[k];
            pt->occ = fc_clamp01(occ);
        } else {
            pt->occ = x;        /* persistence until the profile knows these times */
        }
        fc_interval(fc, h, pt);
    }
}

/* ---- learning from the event stream ---- */

/* How long a gap between two observations may be bridged to learn from it. Counts are polls of
 * a changing quantity: beyond stale_after the data is missing (e.g. overnight). Bays and gates
 * change only by events, so a quiet night is real; only a day without events is a gap. */
static int64_t fc_bridge_ms(const lot *l)
{
    if (l->source == CFG_SOURCE_COUNT)
        return l->stale_after_ms;
    return l->stale_after_ms > FC_HOLD_MAX_MS ? l->stale_after_ms : FC_HOLD_MAX_MS;
}

/* The occupancy at T in (T0, T1] between observations X0 and X1: linear for polled counts,
 * held until the next event for bays and gates. */
static double fc_value_between(const lot *l, int64_t t0, double x0, int64_t t1, double x1,
                               int64_t t)
{
    if (t >= t1)
        return x1;
    if (l->source == CFG_SOURCE_COUNT)
        return x0 + (x1 - x0) * (double)(t - t0) / (double)(t1 - t0);
    return x0;
}

static int64_t fc_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Adds occupancy X at grid instant G, against what the profile expected there, to the
 * busyness sums; on the grid, so a lot's event rate does not weigh in. */
static void fc_add_busyness(fc_lot *fl, int64_t g, double x)
{
    double expected;
    if (!pf_expected(&fl->profile, g, &expected))
        return;
    double keep = fl->scale_ms == INT64_MIN ? 0.0
                                            : exp(-(double)(g - fl->scale_ms) / FC_SCALE_TAU_MS);
    fl->scale_xp = keep * fl->scale_xp + x * expected;
    fl->scale_pp = keep * fl->scale_pp + expected * expected;
    fl->scale_ms = g;
    fl->scale_dirty = true;
}

/* Teaches the profile the grid instants between the last observation and (T, X). */
static void fc_sample_grid(fc_lot *fl, const lot *l, int64_t t, double x)
{
    int64_t g = (fc_floor_div(fl->obs_ms, PF_GRID_MS) + 1) * PF_GRID_MS;
    for (; g <= t; g += PF_GRID_MS) {
        double v = fc_value_between(l, fl->obs_ms, fl->obs_x, t, x, g);
        fc_add_busyness(fl, g, v);
        pf_sample(&fl->profile, g, v);
    }
}

/* The features of pending forecast P, with the bias it does not keep. */
static void fc_pending_features(const fc_pending *p, double xs[LN_FEATURES])
{
    for (int k = 0, j = 0; k < LN_FEATURES; k++)
        xs[k] = k == FC_X_BIAS ? 1.0 : (double)p->x[j++];
}

/* Scores the pending forecast at index I of H's ring against ACTUAL. */
static void fc_score(fc_engine *fc, fc_horizon *h, unsigned i, double actual)
{
    const fc_pending *p = &h->pending[i];
    double err = actual - p->forecast;
    ln_errors_add(&h->errors, err);
    fc_pool *pool = fc_pool_for(fc, h->ms);
    if (pool)
        ln_errors_add(&pool->errors, err);
    if (h->learn >> i & 1u) {
        double xs[LN_FEATURES];
        fc_pending_features(p, xs);
        ln_reg_add(&h->reg, xs, actual - p->expected, p->target_ms, FC_REG_TAU_MS);
        h->reg_dirty = true;
    }
}

/* Scores the forecasts whose target lies in (obs_ms, T]; those across a gap are dropped. */
static void fc_score_due(fc_engine *fc, fc_lot *fl, const lot *l, fc_horizon *h, int64_t t,
                         double x, bool bridged)
{
    while (h->n > 0) {
        fc_pending *p = &h->pending[h->head];
        if (p->target_ms > t)
            break;
        if (bridged && p->target_ms > fl->obs_ms)
            fc_score(fc, h, h->head,
                     fc_value_between(l, fl->obs_ms, fl->obs_x, t, x, p->target_ms));
        h->head = (uint8_t)((h->head + 1) % h->cap);
        h->n--;
    }
}

/* A new observation (T, X) of L: learn from the time since the last one. */
static void fc_learn(fc_engine *fc, fc_lot *fl, const lot *l, int64_t t, double x)
{
    if (!fl->has_obs) {
        fc_lot_sync_obs(fl, l);
        return;
    }
    if (t <= fl->obs_ms) {
        fl->obs_x = x;      /* a change at the same event time (late bay, reload): a correction */
        return;
    }
    bool bridged = t - fl->obs_ms <= fc_bridge_ms(l);
    if (bridged)
        fc_sample_grid(fl, l, t, x);
    for (size_t i = 0; i < fl->n_hz; i++)
        fc_score_due(fc, fl, l, &fl->hz[i], t, x, bridged);
    fl->obs_ms = t;
    fl->obs_x = x;
}

static void fc_push_pending(fc_horizon *h, int64_t t, const fc_point *pt)
{
    if (h->n == h->cap) {
        h->head = (uint8_t)((h->head + 1) % h->cap);   /* cannot happen: fc_pending_cap */
        h->n--;
    }
    unsigned i = (h->head + h->n) % h->cap;
    fc_pending *p = &h->pending[i];
    p->target_ms = t + h->ms;
    p->forecast = (float)pt->occ;
    p->expected = (float)pt->expected;
    for (int k = 0, j = 0; k < LN_FEATURES; k++) {
        if (k != FC_X_BIAS)
            p->x[j++] = (float)pt->x[k];
    }
    if (pt->learn)
        h->learn |= (uint64_t)1 << i;
    else
        h->learn &= ~((uint64_t)1 << i);
    h->n++;
    h->last_pending_ms = t;
}

/* Makes the forecasts to be scored later, whether or not they are published: what is learned
 * must not depend on publishing (deadband, min_interval, wall clock). */
static void fc_record_pending(fc_engine *fc, fc_lot *fl, int64_t t, double x)
{
    fc_point *pts = NULL;
    for (size_t i = 0; i < fl->n_hz; i++) {
        fc_horizon *h = &fl->hz[i];
        if (h->last_pending_ms != INT64_MIN && t < h->last_pending_ms + fc_pending_spacing(h->ms))
            continue;
        if (!pts) {
            pts = util_xcalloc(fl->n_hz, sizeof *pts);
            fc_predict(fc, fl, t, x, pts);
        }
        fc_push_pending(h, t, &pts[i]);
    }
    free(pts);
}

/* ---- the model as data ---- */

/* Emits the version field before the first changed field, so an unchanged model emits nothing. */
typedef struct fc_emitter {
    fc_emit_fn emit;
    void *ctx;
    bool started;
} fc_emitter;

static void fc_emitter_field(void *ctx, const char *field, const char *value)
{
    fc_emitter *e = ctx;
    if (!e->started) {
        e->emit(e->ctx, "v", FC_MODEL_VERSION);
        e->started = true;
    }
    e->emit(e->ctx, field, value);
}

static void fc_lot_mark_all_dirty(fc_lot *fl)
{
    fl->model_reset = true;
    pf_mark_all_dirty(&fl->profile);
    for (size_t i = 0; i < fl->n_hz; i++) {
        fl->hz[i].reg_dirty = true;
        ln_errors_mark_all_dirty(&fl->hz[i].errors);
    }
    fl->scale_dirty = fl->scale_ms != INT64_MIN;
    fl->hist_dirty = fl->hist.last_ms != INT64_MIN && !fl->hist.seq_unknown;
}

void fc_mark_all_dirty(fc_engine *fc, lot *l)
{
    if (!l->has_data)
        return;     /* nothing learned: a missing :model restores as the empty one it is */
    fc_lot_mark_all_dirty(fc_lot_for(fc, l));
}

bool fc_model_take_reset(fc_engine *fc, lot *l)
{
    if (!l->fc_data)
        return false;
    fc_lot *fl = fc_lot_for(fc, l);
    bool reset = fl->model_reset;
    fl->model_reset = false;
    return reset;
}

/* The changed fields of horizon H: its regression and error ring. */
static void fc_changes_horizon(fc_horizon *h, fc_emitter *e)
{
    char name[40], value[640];
    if (h->reg_dirty) {
        snprintf(name, sizeof name, "g%" PRId64, h->ms / 60000);
        ln_reg_encode(&h->reg, value, sizeof value);
        fc_emitter_field(e, name, value);
        h->reg_dirty = false;
    }
    snprintf(name, sizeof name, "e%" PRId64, h->ms / 60000);
    ln_errors_flush(&h->errors, name, fc_emitter_field, e);
}

/* The changed small fields: busyness sums and the history state. */
static void fc_changes_scalars(fc_lot *fl, fc_emitter *e)
{
    char value[80];
    if (fl->scale_dirty) {
        snprintf(value, sizeof value, "%" PRId64 " %.9g %.9g", fl->scale_ms, fl->scale_xp,
                 fl->scale_pp);
        fc_emitter_field(e, "s", value);
        fl->scale_dirty = false;
    }
    if (fl->hist_dirty) {
        hist_encode(&fl->hist, value, sizeof value);
        fc_emitter_field(e, "h", value);
        fl->hist_dirty = false;
    }
}

/* A few short fields per 15 minutes of event time and per scored forecast; the whole model only
 * after fc_mark_all_dirty. */
void fc_model_changes(fc_engine *fc, lot *l, fc_emit_fn emit, void *ctx)
{
    if (!l->fc_data)
        return;     /* nothing learned yet */
    fc_lot *fl = fc_lot_for(fc, l);
    fc_emitter e = { emit, ctx, false };
    pf_flush(&fl->profile, fc_emitter_field, &e);
    for (size_t i = 0; i < fl->n_hz; i++)
        fc_changes_horizon(&fl->hz[i], &e);
    fc_changes_scalars(fl, &e);
}

bool fc_observe(fc_engine *fc, lot *l, hist_entry *entry)
{
    if (!l->has_data)
        return false;   /* nothing to learn: no model until there is (see fc_lot_for) */
    fc_lot *fl = fc_lot_for(fc, l);
    double x = fc_occupancy(l);
    fc_learn(fc, fl, l, l->ts_ms, x);
    fc_record_pending(fc, fl, l->ts_ms, x);
    if (!hist_take(&fl->hist, l, fc->cfg->history.interval_ms, entry))
        return false;
    fl->hist_dirty = true;
    return true;
}

/* ---- forecasts as values ---- */

/* The event time at which free is forecast to reach 0 within the longest horizon, following
 * the forecasts linearly from now through each horizon in turn. */
static bool fc_full_at(const lot *l, const fc_lot *fl, const fc_point *pts, int64_t *at)
{
    double prev_free = (double)lot_free_spaces(l);
    int64_t prev_ms = 0;
    if (prev_free < FC_FULL_FREE) {
        *at = l->ts_ms;
        return true;
    }
    for (size_t i = 0; i < fl->n_hz; i++) {
        double f = fc_free_spaces(l, pts[i].occ);
        if (f < FC_FULL_FREE) {
            double frac = (prev_free - FC_FULL_FREE) / (prev_free - f);
            *at = l->ts_ms + prev_ms + (int64_t)llround(frac * (double)(fl->hz[i].ms - prev_ms));
            return true;
        }
        prev_free = f;
        prev_ms = fl->hz[i].ms;
    }
    return false;
}

bool fc_forecast_lot(fc_engine *fc, lot *l, fc_forecast *f)
{
    /* a closed lot's counts say nothing about when spaces will be free (SPEC §10) */
    if (!l->has_data || l->closed)
        return false;
    fc_lot *fl = fc_lot_for(fc, l);
    fc_point pts[CFG_MAX_HORIZONS];
    memset(pts, 0, sizeof pts);
    fc_predict(fc, fl, l->ts_ms, fc_occupancy(l), pts);
    f->ts_ms = l->ts_ms;
    f->n = fl->n_hz;
    for (size_t i = 0; i < fl->n_hz; i++) {
        const fc_point *pt = &pts[i];
        /* the interval's low end in spaces comes from the high end in occupancy */
        f->h[i] = (fc_horizon_forecast){ fl->hz[i].ms / 60000, l->ts_ms + fl->hz[i].ms,
                                         fc_free_spaces(l, pt->occ), fc_free_spaces(l, pt->high),
                                         fc_free_spaces(l, pt->low), pt->has_mae,
                                         pt->mae * (double)l->capacity };
    }
    f->has_full_at = fc_full_at(l, fl, pts, &f->full_at_ms);
    return true;
}

/* Appends to BUF[*N..SIZE); false when it does not fit. */
static bool fc_append(char *buf, size_t size, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fc_append(char *buf, size_t size, size_t *n, const char *fmt, ...)
{
    if (*n >= size)
        return false;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *n, size - *n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= size - *n)
        return false;
    *n += (size_t)k;
    return true;
}

static bool fc_format_horizon(const fc_horizon_forecast *h, bool first, char *buf, size_t size,
                              size_t *n)
{
    /* util_format_fixed, not printf's %.1f: with min_interval 0 a forecast goes out per event */
    char ts[40], mae[UTIL_NUM_MAX] = "null", v[3][UTIL_NUM_MAX];
    pl_format_time(h->ts_ms, ts, sizeof ts);
    if (h->has_mae)
        util_format_fixed(mae, sizeof mae, h->mae, 1);
    util_format_fixed(v[0], sizeof v[0], h->free, 1);
    util_format_fixed(v[1], sizeof v[1], h->low, 1);
    util_format_fixed(v[2], sizeof v[2], h->high, 1);
    return fc_append(buf, size, n,
                     "%s{\"minutes\":%" PRId64 ",\"ts\":\"%s\",\"free\":%s,\"low\":%s,"
                     "\"high\":%s,\"mae\":%s}",
                     first ? "" : ",", h->minutes, ts, v[0], v[1], v[2], mae);
}

size_t fc_format_json(const char *lot_id, const fc_forecast *f, char *buf, size_t size)
{
    char ts[40], full[48] = "null";
    pl_format_time(f->ts_ms, ts, sizeof ts);
    if (f->has_full_at) {
        full[0] = '"';
        size_t k = pl_format_time(f->full_at_ms, full + 1, sizeof full - 2);
        memcpy(full + 1 + k, "\"", 2);
    }
    size_t n = 0;
    if (!fc_append(buf, size, &n, "{\"lot\":\"%s\",\"ts\":\"%s\",\"horizons\":[", lot_id, ts))
        return 0;
    for (size_t i = 0; i < f->n; i++)
        if (!fc_format_horizon(&f->h[i], i == 0, buf, size, &n))
            return 0;
    return fc_append(buf, size, &n, "],\"full_at\":%s}", full) ? n : 0;
}

void fc_forecast_fields(const fc_forecast *f, fc_emit_fn emit, void *ctx)
{
    char ts[40], name[48], value[UTIL_NUM_MAX];
    pl_format_time(f->ts_ms, ts, sizeof ts);
    emit(ctx, "ts", ts);
    for (size_t i = 0; i < f->n; i++) {
        const fc_horizon_forecast *h = &f->h[i];
        static const char *const suffix[] = { "", ":low", ":high", ":mae" };
        double v[] = { h->free, h->low, h->high, h->mae };
        size_t len = util_format_i64(name, sizeof name, h->minutes);
        for (int k = 0; k < 4; k++) {
            memcpy(name + len, suffix[k], strlen(suffix[k]) + 1);
            if (k == 3 && !h->has_mae)
                value[0] = '\0';
            else
                util_format_fixed(value, sizeof value, v[k], 1);
            emit(ctx, name, value);
        }
    }
}

/* ---- restore ---- */

static fc_horizon *fc_horizon_by_minutes(fc_lot *fl, const char *s, const char **rest)
{
    char *end;
    errno = 0;
    long long m = strtoll(s, &end, 10);
    if (errno || end == s || m <= 0)
        return NULL;
    *rest = end;
    for (size_t i = 0; i < fl->n_hz; i++)
        if (fl->hz[i].ms == m * 60000)
            return &fl->hz[i];
    return NULL;    /* a horizon no longer configured: forgotten */
}

static bool fc_restore_busyness(fc_lot *fl, const char *value)
{
    long long ms;
    double xp, pp;
    char tail;
    if (sscanf(value, "%lld %lf %lf %c", &ms, &xp, &pp, &tail) != 3 || !isfinite(xp) ||
        !isfinite(pp) || xp < 0.0 || pp < 0.0)
        return false;
    fl->scale_ms = (int64_t)ms;
    fl->scale_xp = xp;
    fl->scale_pp = pp;
    return true;
}

/* One stored field of the model hash; false when it is not understood. *STALE is set for a
 * field of an earlier version's layout that this one drops (profile.h, learn.h), so that the
 * whole model is written afresh rather than leave it in the hash. */
static bool fc_restore_field(fc_lot *fl, const char *field, const char *value, bool *has_hist,
                             bool *stale)
{
    const char *rest;
    fc_horizon *h;
    switch (field[0]) {
    case 'v':
        return strcmp(field, "v") == 0;
    case 'h':
        *has_hist = strcmp(field, "h") == 0 && hist_decode(&fl->hist, value);
        return *has_hist;
    case 's':
        return strcmp(field, "s") == 0 && fc_restore_busyness(fl, value);
    case 'g':
        h = fc_horizon_by_minutes(fl, field + 1, &rest);
        return h && *rest == '\0' && ln_reg_decode(&h->reg, value);
    case 'e':
        h = fc_horizon_by_minutes(fl, field + 1, &rest);
        if (!h)
            return false;
        if (ln_errors_restore_field(&h->errors, rest, value))
            return true;
        *stale = true;      /* e.g. a 512-error ring (ln_errors_restore_field) */
        return false;
    default:
        if (pf_restore_field(&fl->profile, field, value))
            return true;
        *stale |= pf_is_old_field(field);
        return false;
    }
}

static bool fc_model_version_ok(size_t n, const char *const *fields, const char *const *values)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i], "v") == 0)
            return values[i] && strcmp(values[i], FC_MODEL_VERSION) == 0;
    return false;
}

/* A model stored by an earlier version restores what this one still reads: the week and day
 * profiles (same fields), the regressions and the history state; its 28-day ring ("r...") is
 * not read (the 8-day one, "y...", fills again within a week; until then the last-week and
 * analog features say "no deviation", as for a new lot), nor an error ring of another size
 * (the pool's errors stand in until 20 are scored again). Such a model is then rewritten whole
 * (fc_model_take_reset clears the hash first), so the dropped fields do not linger. */
void fc_restore_lot(fc_engine *fc, lot *l, size_t n, const char *const *fields,
                    const char *const *values)
{
    if (n == 0 && !l->has_data && !l->fc_data)
        return;     /* nothing stored and nothing to learn from yet: no model (fc_lot_for) */
    fc_lot *fl = fc_lot_for(fc, l);
    bool has_hist = false, stale = false;
    size_t ignored = 0;
    if (n > 0 && !fc_model_version_ok(n, fields, values)) {
        log_warning("forecast: lot %s: stored model has another version; learning afresh", l->id);
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (fields[i] && values[i] &&
            !fc_restore_field(fl, fields[i], values[i], &has_hist, &stale))
            ignored++;
    }
    for (size_t i = 0; i < fl->n_hz; i++)
        ln_errors_restore_done(&fl->hz[i].errors);
    if (ignored)
        log_debug("forecast: lot %s: %zu stored fields not used", l->id, ignored);
    if (stale) {
        log_info("forecast: lot %s: stored model has fields of an earlier layout; rewriting it",
                 l->id);
        fc_lot_mark_all_dirty(fl);
    }
    if (!has_hist && l->has_data)
        hist_bound(&fl->hist, l->ts_ms);
    fc_lot_sync_obs(fl, l);
}
