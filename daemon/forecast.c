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
#define FC_PENDING_MAX 64                  /* forecasts awaiting their target, per horizon */
#define FC_PENDING_SPACING_MS 600000       /* at most one learning forecast per 10 min */
#define FC_HOLD_MAX_MS (24 * 3600000LL)    /* bays and gates: no event means no change */
#define FC_FULL_FREE 0.5                   /* a forecast below half a space rounds to full */
#define FC_DEFAULT_WIDTH 0.05              /* interval half-width at 30 min before any errors */
#define FC_SCALE_TAU_MS 10800000.0         /* "how busy today is" looks back about 3 hours */

enum { FC_X_DEVIATION, FC_X_BIAS, FC_X_LAST_WEEK, FC_X_ANALOG, FC_X_SCALE };

/* A forecast made to learn from: scored once event time passes its target. */
typedef struct fc_pending {
    int64_t target_ms;
    float forecast;                        /* occupancy */
    float expected;                        /* the profile at the target, when forecast */
    float x[LN_FEATURES];
    bool learn;                            /* made by the model (not persistence): fit on it */
} fc_pending;

typedef struct fc_horizon {
    int64_t ms;
    ln_reg reg;
    bool reg_dirty;
    ln_errors errors;
    fc_pending pending[FC_PENDING_MAX];    /* ring, oldest at head */
    unsigned head, n;
    int64_t last_pending_ms;
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
    /* store_reconnects() when the model was last written whole or in part: a reconnect since
     * may have lost batches (or Redis its data), so the next write is the whole model */
    uint64_t store_epoch;
    bool store_epoch_known;
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
    char *tz_applied;                      /* TZ as set by us (NULL: as we found it) */
    char *tz_original;                     /* TZ at start, NULL when unset */
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

/* Local time (profile slots) follows the configured zone: set TZ for the process once, rather
 * than converting per call, since localtime_r is the only zone-aware converter libc offers.
 * ZONE NULL means the system's, i.e. TZ as the process found it. True when TZ changed. */
static bool fc_apply_timezone(fc_engine *fc, const char *zone)
{
    const char *want = zone ? zone : fc->tz_original;
    const char *have = fc->tz_applied ? fc->tz_applied : fc->tz_original;
    if ((want == NULL && have == NULL) || (want && have && strcmp(want, have) == 0))
        return false;
    if (want)
        setenv("TZ", want, 1);
    else
        unsetenv("TZ");
    tzset();
    free(fc->tz_applied);
    fc->tz_applied = util_xstrdup(want);
    return true;
}

/* ---- per-lot state ---- */

static void fc_horizon_init(fc_horizon *h, int64_t ms)
{
    memset(h, 0, sizeof *h);
    h->ms = ms;
    double prior[LN_FEATURES] = { exp(-(double)ms / FC_DEVIATION_TAU_MS), 0.0, 0.0, 0.0, 0.0 };
    ln_reg_init(&h->reg, prior);
    ln_errors_init(&h->errors);
    h->last_pending_ms = INT64_MIN;
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
        if (j < fl->n_hz)
            hz[i] = fl->hz[j];
        else
            fc_horizon_init(&hz[i], ms);
    }
    free(fl->hz);
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
    fc->tz_original = util_xstrdup(getenv("TZ"));
    fc_apply_timezone(fc, cfg->timezone);
    fc_pool_regen(fc);
    return fc;
}

void fc_set_config(fc_engine *fc, const cfg_config *cfg)
{
    fc->cfg = cfg;
    fc->gen++;
    if (fc_apply_timezone(fc, cfg->timezone))
        log_info("forecast: time zone now %s; learned profiles keep their local slots",
                 cfg->timezone ? cfg->timezone : "the system's");
    fc_pool_regen(fc);
}

void fc_free(fc_engine *fc)
{
    if (!fc)
        return;
    free(fc->pool);
    free(fc->tz_applied);
    free(fc->tz_original);
    free(fc);
}

void fc_forget_lot(fc_engine *fc, lot *l)
{
    fc_lot *fl = l->fc_data;
    if (fl) {
        free(fl->hz);
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
            const double *c = ln_reg_coef(&h->reg, FC_RIDGE);
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

static void fc_score(fc_engine *fc, fc_horizon *h, const fc_pending *p, double actual)
{
    double err = actual - p->forecast;
    ln_errors_add(&h->errors, err);
    fc_pool *pool = fc_pool_for(fc, h->ms);
    if (pool)
        ln_errors_add(&pool->errors, err);
    if (p->learn) {
        double xs[LN_FEATURES];
        for (int k = 0; k < LN_FEATURES; k++)
            xs[k] = p->x[k];
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
            fc_score(fc, h, p, fc_value_between(l, fl->obs_ms, fl->obs_x, t, x, p->target_ms));
        h->head = (h->head + 1) % FC_PENDING_MAX;
        h->n--;
    }
}

/* A new observation (T, X) of L: learn from the time since the last one. */
static void fc_observe(fc_engine *fc, fc_lot *fl, const lot *l, int64_t t, double x)
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

/* Spacing of learning forecasts for horizon H: every 10 min, or sparser so that the pending
 * ring always spans the horizon. */
static int64_t fc_pending_spacing(const fc_horizon *h)
{
    int64_t s = h->ms / (FC_PENDING_MAX - 4);
    return s > FC_PENDING_SPACING_MS ? s : FC_PENDING_SPACING_MS;
}

static void fc_push_pending(fc_horizon *h, int64_t t, const fc_point *pt)
{
    if (h->n == FC_PENDING_MAX) {
        h->head = (h->head + 1) % FC_PENDING_MAX;   /* cannot happen with the spacing above */
        h->n--;
    }
    fc_pending *p = &h->pending[(h->head + h->n) % FC_PENDING_MAX];
    p->target_ms = t + h->ms;
    p->forecast = (float)pt->occ;
    p->expected = (float)pt->expected;
    for (int k = 0; k < LN_FEATURES; k++)
        p->x[k] = (float)pt->x[k];
    p->learn = pt->learn;
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
        if (h->last_pending_ms != INT64_MIN && t < h->last_pending_ms + fc_pending_spacing(h))
            continue;
        if (!pts) {
            pts = util_xcalloc(fl->n_hz, sizeof *pts);
            fc_predict(fc, fl, t, x, pts);
        }
        fc_push_pending(h, t, &pts[i]);
    }
    free(pts);
}

/* ---- storage ---- */

/* An argv under construction (owned strings). */
typedef struct fc_argv {
    char **argv;
    size_t *lens;
    size_t n, cap, cap_lens;
} fc_argv;

static void fc_argv_push(fc_argv *a, const char *s)
{
    util_grow((void **)&a->argv, &a->cap, a->n + 1, sizeof *a->argv);
    util_grow((void **)&a->lens, &a->cap_lens, a->n + 1, sizeof *a->lens);
    a->argv[a->n] = util_xstrdup(s);
    a->lens[a->n] = strlen(s);
    a->n++;
}

static void fc_argv_emit(void *ctx, const char *field, const char *value)
{
    fc_argv_push(ctx, field);
    fc_argv_push(ctx, value);
}

static void fc_argv_send(fc_argv *a, store *st)
{
    store_batch_command(st, (int)a->n, (const char **)a->argv, a->lens);
}

static void fc_argv_free(fc_argv *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->argv[i]);
    free(a->argv);
    free(a->lens);
}

/* <prefix>lot:<id><suffix>, malloc'd. */
static char *fc_key(store *st, const lot *l, const char *suffix)
{
    const char *prefix = store_prefix(st);
    size_t size = strlen(prefix) + strlen(l->id) + strlen(suffix) + sizeof "lot:";
    char *key = util_xmalloc(size);
    snprintf(key, size, "%slot:%s%s", prefix, l->id, suffix);
    return key;
}

static void fc_mark_all_dirty(fc_lot *fl)
{
    pf_mark_all_dirty(&fl->profile);
    for (size_t i = 0; i < fl->n_hz; i++) {
        fl->hz[i].reg_dirty = true;
        ln_errors_mark_all_dirty(&fl->hz[i].errors);
    }
    fl->scale_dirty = fl->scale_ms != INT64_MIN;
    fl->hist_dirty = fl->hist.last_ms != INT64_MIN && !fl->hist.seq_unknown;
}

/* After a Redis reconnect the whole model is written again once, since what was in the lost
 * batches (or all of it, if Redis lost its data) is missing there. */
static void fc_check_store_epoch(fc_lot *fl, store *st)
{
    uint64_t epoch = store_reconnects(st);
    if (fl->store_epoch_known && epoch != fl->store_epoch)
        fc_mark_all_dirty(fl);
    fl->store_epoch = epoch;
    fl->store_epoch_known = true;
}

/* The changed fields of horizon H: its regression and error ring. */
static void fc_persist_horizon(fc_horizon *h, fc_argv *a)
{
    char name[40], value[640];
    if (h->reg_dirty) {
        snprintf(name, sizeof name, "g%" PRId64, h->ms / 60000);
        ln_reg_encode(&h->reg, value, sizeof value);
        fc_argv_emit(a, name, value);
        h->reg_dirty = false;
    }
    snprintf(name, sizeof name, "e%" PRId64, h->ms / 60000);
    ln_errors_flush(&h->errors, name, fc_argv_emit, a);
}

/* The changed small fields: busyness sums and the history state. */
static void fc_persist_scalars(fc_lot *fl, fc_argv *a)
{
    char value[80];
    if (fl->scale_dirty) {
        snprintf(value, sizeof value, "%" PRId64 " %.9g %.9g", fl->scale_ms, fl->scale_xp,
                 fl->scale_pp);
        fc_argv_emit(a, "s", value);
        fl->scale_dirty = false;
    }
    if (fl->hist_dirty) {
        hist_encode(&fl->hist, value, sizeof value);
        fc_argv_emit(a, "h", value);
        fl->hist_dirty = false;
    }
}

/* Writes what changed of FL's learned state into the :model hash: a few short fields per
 * 15 minutes of event time and per scored forecast; the whole model only after a reconnect. */
static void fc_persist(fc_lot *fl, const lot *l, store *st)
{
    fc_check_store_epoch(fl, st);
    fc_argv a = { 0 };
    char *key = fc_key(st, l, ":model");
    fc_argv_push(&a, "HSET");
    fc_argv_push(&a, key);
    fc_argv_emit(&a, "v", FC_MODEL_VERSION);
    size_t base = a.n;
    pf_flush(&fl->profile, fc_argv_emit, &a);
    for (size_t i = 0; i < fl->n_hz; i++)
        fc_persist_horizon(&fl->hz[i], &a);
    fc_persist_scalars(fl, &a);
    if (a.n > base)
        fc_argv_send(&a, st);
    fc_argv_free(&a);
    free(key);
}

void fc_lot_changed(fc_engine *fc, lot *l, store *st)
{
    fc_lot *fl = fc_lot_for(fc, l);
    if (!l->has_data)
        return;
    double x = fc_occupancy(l);
    fc_observe(fc, fl, l, l->ts_ms, x);
    fc_record_pending(fc, fl, l->ts_ms, x);
    if (hist_append(&fl->hist, l, st, fc->cfg->history.interval_ms, fc->cfg->history.max_len))
        fl->hist_dirty = true;
    fc_persist(fl, l, st);
}

/* ---- publishing ---- */

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

static size_t fc_format_horizon(const lot *l, const fc_horizon *h, const fc_point *pt,
                                bool first, char *buf, size_t size)
{
    char ts[40], mae[32] = "null";
    pl_format_time(l->ts_ms + h->ms, ts, sizeof ts);
    if (pt->has_mae)
        snprintf(mae, sizeof mae, "%.1f", pt->mae * (double)l->capacity);
    int n = snprintf(buf, size,
                     "%s{\"minutes\":%" PRId64 ",\"ts\":\"%s\",\"free\":%.1f,\"low\":%.1f,"
                     "\"high\":%.1f,\"mae\":%s}",
                     first ? "" : ",", h->ms / 60000, ts, fc_free_spaces(l, pt->occ),
                     fc_free_spaces(l, pt->high), fc_free_spaces(l, pt->low), mae);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* The SPEC §4 forecast JSON, malloc'd; *LEN its length. */
static char *fc_format_json(const lot *l, const fc_lot *fl, const fc_point *pts, size_t *len)
{
    size_t size = 256 + strlen(l->id) + fl->n_hz * 192;
    char *json = util_xmalloc(size);
    char ts[40], full[48] = "null";
    int64_t full_ms;
    pl_format_time(l->ts_ms, ts, sizeof ts);
    if (fc_full_at(l, fl, pts, &full_ms)) {
        full[0] = '"';
        size_t k = pl_format_time(full_ms, full + 1, sizeof full - 2);
        memcpy(full + 1 + k, "\"", 2);
    }
    size_t n = (size_t)snprintf(json, size, "{\"lot\":\"%s\",\"ts\":\"%s\",\"horizons\":[", l->id,
                                ts);
    for (size_t i = 0; i < fl->n_hz; i++)
        n += fc_format_horizon(l, &fl->hz[i], &pts[i], i == 0, json + n, size - n);
    n += (size_t)snprintf(json + n, size - n, "],\"full_at\":%s}", full);
    *len = n;
    return json;
}

/* The :forecast hash, replaced as a whole (DEL + HSET in the batch) so that horizons dropped by
 * a reload disappear and a reader never mixes two forecasts. A null mae is "". */
static void fc_write_hash(const lot *l, const fc_lot *fl, const fc_point *pts, store *st)
{
    char *key = fc_key(st, l, ":forecast");
    const char *del[] = { "DEL", key };
    size_t del_lens[] = { 3, strlen(key) };
    store_batch_command(st, 2, del, del_lens);
    fc_argv a = { 0 };
    char ts[40], name[48], value[48];
    pl_format_time(l->ts_ms, ts, sizeof ts);
    fc_argv_push(&a, "HSET");
    fc_argv_push(&a, key);
    fc_argv_emit(&a, "ts", ts);
    for (size_t i = 0; i < fl->n_hz; i++) {
        int64_t m = fl->hz[i].ms / 60000;
        const fc_point *pt = &pts[i];
        static const char *const suffix[] = { "", ":low", ":high", ":mae" };
        double v[] = { fc_free_spaces(l, pt->occ), fc_free_spaces(l, pt->high),
                       fc_free_spaces(l, pt->low), pt->mae * (double)l->capacity };
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "%" PRId64 "%s", m, suffix[k]);
            if (k == 3 && !pt->has_mae)
                value[0] = '\0';
            else
                snprintf(value, sizeof value, "%.1f", v[k]);
            fc_argv_emit(&a, name, value);
        }
    }
    fc_argv_send(&a, st);
    fc_argv_free(&a);
    free(key);
}

/* FL's forecasts of L now into a malloc'd array of n_hz points. */
static fc_point *fc_predict_now(fc_engine *fc, fc_lot *fl, const lot *l)
{
    fc_point *pts = util_xcalloc(fl->n_hz ? fl->n_hz : 1, sizeof *pts);
    fc_predict(fc, fl, l->ts_ms, fc_occupancy(l), pts);
    return pts;
}

char *fc_format_forecast(fc_engine *fc, lot *l, size_t *len)
{
    if (!l->has_data)
        return NULL;
    fc_lot *fl = fc_lot_for(fc, l);
    fc_point *pts = fc_predict_now(fc, fl, l);
    char *json = fc_format_json(l, fl, pts, len);
    free(pts);
    return json;
}

void fc_publish(fc_engine *fc, lot *l, mq_client *mq, store *st)
{
    if (!l->has_data)
        return;
    fc_lot *fl = fc_lot_for(fc, l);
    fc_point *pts = fc_predict_now(fc, fl, l);
    size_t len;
    char *json = fc_format_json(l, fl, pts, &len);
    if (mq) {
        const char *out = fc->cfg->mqtt.output_prefix;
        size_t size = strlen(out) + strlen(l->id) + sizeof "//forecast";
        char *topic = util_xmalloc(size);
        snprintf(topic, size, "%s/%s/forecast", out, l->id);
        mq_publish(mq, topic, json, len);
        free(topic);
    }
    if (st)
        fc_write_hash(l, fl, pts, st);
    free(json);
    free(pts);
}

/* ---- restore ---- */

typedef struct fc_restore_job {
    fc_engine *fc;
    store *st;
    size_t pending;         /* replies outstanding, plus one while requests are being sent */
    bool failed;
    void (*done)(void *ctx, int status);
    void *ctx;
} fc_restore_job;

typedef struct fc_restore_req {
    fc_restore_job *job;
    lot *l;
} fc_restore_req;

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

/* One stored field of the model hash; false when it is not understood. */
static bool fc_restore_field(fc_lot *fl, const char *field, const char *value, bool *has_hist)
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
        return h && ln_errors_restore_field(&h->errors, rest, value);
    default:
        return pf_restore_field(&fl->profile, field, value);
    }
}

static bool fc_model_version_ok(size_t n, const char *const *fields, const char *const *values)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i], "v") == 0)
            return values[i] && strcmp(values[i], FC_MODEL_VERSION) == 0;
    return false;
}

static void fc_restore_lot(fc_engine *fc, store *st, lot *l, size_t n,
                           const char *const *fields, const char *const *values)
{
    fc_lot *fl = fc_lot_for(fc, l);
    fl->store_epoch = store_reconnects(st);
    fl->store_epoch_known = true;
    bool has_hist = false;
    size_t ignored = 0;
    if (n > 0 && !fc_model_version_ok(n, fields, values)) {
        log_warning("forecast: lot %s: stored model has another version; learning afresh", l->id);
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (fields[i] && values[i] && !fc_restore_field(fl, fields[i], values[i], &has_hist))
            ignored++;
    }
    if (ignored)
        log_debug("forecast: lot %s: %zu stored fields not used", l->id, ignored);
    if (!has_hist && l->has_data)
        hist_bound(&fl->hist, l->ts_ms);
    fc_lot_sync_obs(fl, l);
}

static void fc_restore_release(fc_restore_job *job)
{
    if (--job->pending > 0)
        return;
    job->done(job->ctx, job->failed ? -EIO : 0);
    free(job);
}

static void fc_on_model(void *ctx, int status, size_t n, const char *const *fields,
                        const char *const *values)
{
    fc_restore_req *req = ctx;
    fc_restore_job *job = req->job;
    if (status < 0)
        job->failed = true;
    else
        fc_restore_lot(job->fc, job->st, req->l, n, fields, values);
    free(req);
    fc_restore_release(job);
}

int fc_restore(fc_engine *fc, store *st, lot *const *lots, size_t n,
               void (*done)(void *ctx, int status), void *ctx)
{
    fc_restore_job *job = util_xcalloc(1, sizeof *job);
    *job = (fc_restore_job){ fc, st, 1, false, done, ctx };
    int rc = 0;
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        fc_lot_for(fc, lots[i]);
        fc_restore_req *req = util_xmalloc(sizeof *req);
        *req = (fc_restore_req){ job, lots[i] };
        char *key = fc_key(st, lots[i], ":model");
        rc = store_hgetall(st, key, fc_on_model, req);
        free(key);
        if (rc < 0) {
            free(req);
            job->failed = true;
            break;
        }
        job->pending++;
        sent++;
    }
    if (rc < 0 && sent == 0) {
        free(job);          /* nothing in flight: the caller retries, DONE is not called */
        return rc;
    }
    fc_restore_release(job);
    return 0;
}
