/* profile: a lot's time-of-week profile in local time and its recent days (see profile.h). */
#include "profile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

/* Forgetting per sample of a slot, i.e. per week for the week profile (an effective memory of
 * about six weeks: long enough to average out one odd day, short enough to follow the season)
 * and per day for the all-days profile. */
#define PF_WEEK_KEEP 0.846481724890614     /* exp(-1/6) */
#define PF_DAY_KEEP 0.951229424500714      /* exp(-1/20) */
/* How much the all-days profile counts beside the week profile: as much as half a week's
 * sample, so it fills in for slots the week has not seen and fades as the week is learned. */
#define PF_DAY_SHARE 0.5
/* How far (in slots) pf_expected looks for a learned slot when a neighbour is unknown: an hour,
 * e.g. the first reading of the morning at 07:57 uses the 08:00 slot. */
#define PF_REACH 4
#define PF_ANALOG_WINDOW 4                 /* slots of today compared with each analog day */
#define PF_ANALOG_MIN 3

static int64_t pf_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int pf_mod(int64_t a, int64_t b)
{
    return (int)(a - pf_floor_div(a, b) * b);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int32_t pf_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = pf_floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

pf_local pf_local_time(int64_t t_ms)
{
    time_t secs = (time_t)pf_floor_div(t_ms, 1000);
    double ms = (double)(t_ms - (int64_t)secs * 1000);
    struct tm tm;
    pf_local out = { 0, 0, 0.0 };
    if (!localtime_r(&secs, &tm))
        return out;
    out.day = pf_days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    out.weekday = (tm.tm_wday + 6) % 7;
    double sec = tm.tm_sec > 59 ? 59.999 : tm.tm_sec + ms / 1000.0;   /* a leap second */
    out.slot = (tm.tm_hour * 60 + tm.tm_min + sec / 60.0) / 15.0;
    return out;
}

/* ---- compact values ---- */

static double pf_clamp01(double v)
{
    return v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
}

/* Occupancy X (clamped to [0, 1]; NaN is 0) in PF_Q_SCALE-ths, rounded to the nearest. */
static uint16_t pf_q(double x)
{
    return (uint16_t)lround((x >= 0.0 ? pf_clamp01(x) : 0.0) * PF_Q_SCALE);
}

static double pf_dq(uint16_t q)
{
    return (double)q / PF_Q_SCALE;
}

/* A recent sample X likewise in PF_R_SCALE-ths (never PF_R_NONE). */
static uint8_t pf_r(double x)
{
    return (uint8_t)lround((x >= 0.0 ? pf_clamp01(x) : 0.0) * PF_R_SCALE);
}

static double pf_dr(uint8_t r)
{
    return (double)r / PF_R_SCALE;
}

/* The weight of a slot that learned N samples, each forgotten by KEEP per later sample:
 * 1 + KEEP + ... + KEEP^(N-1). Tables, as pf_expected reads several slots per forecast. */
static double pf_week_w[PF_N_MAX + 1], pf_day_w[PF_N_MAX + 1];
static pthread_once_t pf_tables_once = PTHREAD_ONCE_INIT;

static void pf_tables_fill(void)
{
    for (int n = 1; n <= PF_N_MAX; n++) {
        pf_week_w[n] = 1.0 + PF_WEEK_KEEP * pf_week_w[n - 1];
        pf_day_w[n] = 1.0 + PF_DAY_KEEP * pf_day_w[n - 1];
    }
}

static double pf_week_weight(uint8_t n)
{
    return pf_week_w[n];
}

static double pf_day_weight(uint8_t n)
{
    return pf_day_w[n];
}

static void pf_set_bit16(uint16_t *mask, int bit)
{
    *mask = (uint16_t)(*mask | 1u << bit);
}

static bool pf_bit16(uint16_t mask, int bit)
{
    return mask >> bit & 1u;
}

void pf_init(pf_profile *p)
{
    pthread_once(&pf_tables_once, pf_tables_fill);     /* before any profile is read */
    memset(p, 0, sizeof *p);
    memset(p->recent, PF_R_NONE, sizeof p->recent);
    for (int r = 0; r < PF_RING_DAYS; r++)
        p->recent_day[r] = PF_NO_DAY;
}

/* ---- learning ---- */

static void pf_learn_mean(uint16_t *mean, uint8_t *n, const double *weights, double x)
{
    if (*n < PF_N_MAX)
        (*n)++;
    double m = pf_dq(*mean);
    *mean = pf_q(m + (x - m) / weights[*n]);
}

/* The ring row for DAY, cleared for it if it held an older day; NULL when DAY is older than
 * the row's (a late sample must not wipe newer days). */
static uint8_t *pf_recent_row(pf_profile *p, int32_t day)
{
    int r = pf_mod(day, PF_RING_DAYS);
    if (p->recent_day[r] == day)
        return p->recent[r];
    if (p->recent_day[r] != PF_NO_DAY && p->recent_day[r] > day)
        return NULL;
    p->recent_day[r] = day;
    memset(p->recent[r], PF_R_NONE, sizeof p->recent[r]);
    p->dirty_recent[r] = (uint16_t)((1u << PF_CHUNKS) - 1);
    p->dirty_recent_day |= 1u << r;
    return p->recent[r];
}

void pf_sample(pf_profile *p, int64_t t_ms, double x)
{
    if (!(x >= 0.0))
        x = 0.0;        /* also NaN */
    if (x > 1.0)
        x = 1.0;
    pf_local lt = pf_local_time(t_ms);
    long k = lround(lt.slot);
    if (k >= PF_DAY_SLOTS) {        /* rounded up to the next midnight */
        k = 0;
        lt.day++;
        lt.weekday = (lt.weekday + 1) % 7;
    }
    int w = lt.weekday * PF_DAY_SLOTS + (int)k;
    pf_learn_mean(&p->week_mean[w], &p->week_n[w], pf_week_w, x);
    pf_learn_mean(&p->day_mean[k], &p->day_n[k], pf_day_w, x);
    p->dirty_week[w / PF_CHUNK / 8] |= (uint8_t)(1u << (w / PF_CHUNK % 8));
    pf_set_bit16(&p->dirty_day, (int)k / PF_CHUNK);
    uint8_t *row = pf_recent_row(p, lt.day);
    if (row) {
        row[k] = pf_r(x);
        pf_set_bit16(&p->dirty_recent[pf_mod(lt.day, PF_RING_DAYS)], (int)k / PF_CHUNK);
    }
}

/* ---- reading ---- */

/* Week slot W (any integer, wrapped into the week) blended with its all-days slot. */
static bool pf_slot_value(const pf_profile *p, int64_t w, double *out)
{
    int k = pf_mod(w, PF_WEEK_SLOTS);
    double a = pf_week_weight(p->week_n[k]);
    double dw = pf_day_weight(p->day_n[k % PF_DAY_SLOTS]);
    double b = PF_DAY_SHARE * (dw < 1.0 ? dw : 1.0);
    if (a + b <= 0.0)
        return false;
    *out = (a * pf_dq(p->week_mean[k]) + b * pf_dq(p->day_mean[k % PF_DAY_SLOTS])) / (a + b);
    return true;
}

/* V0 at weight 1 - F and V1 at F, or whichever of them is known. */
static bool pf_blend(bool has0, double v0, bool has1, double v1, double f, double *out)
{
    if (has0 && has1)
        *out = v0 + (v1 - v0) * f;
    else if (has0 || has1)
        *out = has0 ? v0 : v1;
    return has0 || has1;
}

bool pf_expected(const pf_profile *p, int64_t t_ms, double *out)
{
    pf_local lt = pf_local_time(t_ms);
    double pos = lt.weekday * PF_DAY_SLOTS + lt.slot;
    int64_t k0 = (int64_t)floor(pos);
    double v0 = 0.0, v1 = 0.0;
    bool has0 = pf_slot_value(p, k0, &v0);
    bool has1 = pf_slot_value(p, k0 + 1, &v1);
    if (pf_blend(has0, v0, has1, v1, pos - (double)k0, out))
        return true;
    for (int r = 1; r <= PF_REACH; r++) {
        if (pf_slot_value(p, k0 + 1 + r, out) || pf_slot_value(p, k0 - r, out))
            return true;
    }
    return false;
}

/* The recent sample of local DAY at slot K (K may run past either end of the day). */
static bool pf_recent_get(const pf_profile *p, int64_t day, int64_t k, double *out)
{
    day += pf_floor_div(k, PF_DAY_SLOTS);
    k = pf_mod(k, PF_DAY_SLOTS);
    int r = pf_mod(day, PF_RING_DAYS);
    if (p->recent_day[r] != day || p->recent[r][k] == PF_R_NONE)
        return false;
    *out = pf_dr(p->recent[r][k]);
    return true;
}

/* The recent sample of DAY at fractional slot POS: interpolated, or the one known neighbour. */
static bool pf_recent_at(const pf_profile *p, int64_t day, double pos, double *out)
{
    int64_t k0 = (int64_t)floor(pos);
    double v0 = 0.0, v1 = 0.0;
    bool has0 = pf_recent_get(p, day, k0, &v0);
    bool has1 = pf_recent_get(p, day, k0 + 1, &v1);
    return pf_blend(has0, v0, has1, v1, pos - (double)k0, out);
}

bool pf_days_ago(const pf_profile *p, int64_t t_ms, int days_ago, double *out)
{
    pf_local lt = pf_local_time(t_ms);
    int64_t day = (int64_t)lt.day - days_ago;
    int64_t k0 = (int64_t)floor(lt.slot);
    double f = lt.slot - (double)k0;
    double v0, v1;
    if (!pf_recent_get(p, day, k0, &v0))
        return false;
    if (f < 1e-9) {
        *out = v0;
        return true;
    }
    /* Both neighbours: a week-old sample an hour away says little about this time. */
    if (!pf_recent_get(p, day, k0 + 1, &v1))
        return false;
    *out = v0 + (v1 - v0) * f;
    return true;
}

typedef struct pf_candidate {
    double distance;
    double change;
} pf_candidate;

/* Keeps BEST[0..*N) sorted by distance, at most PF_ANALOGS long. */
static void pf_keep_best(pf_candidate *best, int *n, pf_candidate c)
{
    int i;
    if (*n < PF_ANALOGS)
        i = (*n)++;
    else if (c.distance >= best[PF_ANALOGS - 1].distance)
        return;
    else
        i = PF_ANALOGS - 1;
    while (i > 0 && best[i - 1].distance > c.distance) {
        best[i] = best[i - 1];
        i--;
    }
    best[i] = c;
}

/* How unlike today the day LAG days back was, around NOW (mean squared difference). */
static double pf_analog_distance(const pf_profile *p, const pf_local *now, double x, double v0,
                                 int lag)
{
    double sum = (x - v0) * (x - v0);
    int n = 1;
    int64_t k0 = (int64_t)floor(now->slot);
    for (int j = 0; j < PF_ANALOG_WINDOW; j++) {
        double a, b;
        if (pf_recent_get(p, now->day, k0 - j, &a) &&
            pf_recent_get(p, (int64_t)now->day - lag, k0 - j, &b)) {
            sum += (a - b) * (a - b);
            n++;
        }
    }
    return sum / n;
}

bool pf_analog(const pf_profile *p, int64_t now_ms, double x, int64_t target_ms, double *out)
{
    pf_local now = pf_local_time(now_ms);
    pf_local target = pf_local_time(target_ms);
    /* the target as a slot position relative to the start of today */
    double target_pos = (double)(target.day - now.day) * PF_DAY_SLOTS + target.slot;
    pf_candidate best[PF_ANALOGS];
    int n = 0;
    for (int lag = 1; lag < PF_RING_DAYS; lag++) {
        int64_t day = (int64_t)now.day - lag;
        double v0, v1;
        if (!pf_recent_at(p, day, now.slot, &v0) || !pf_recent_at(p, day, target_pos, &v1))
            continue;
        pf_candidate c = { pf_analog_distance(p, &now, x, v0, lag), v1 - v0 };
        pf_keep_best(best, &n, c);
    }
    if (n < PF_ANALOG_MIN)
        return false;
    double sw = 0.0, sc = 0.0;
    for (int i = 0; i < n; i++) {
        double w = 1.0 / (best[i].distance + 1e-4);
        sw += w;
        sc += w * best[i].change;
    }
    *out = x + sc / sw;
    return true;
}

/* ---- storage ---- */

typedef void (*pf_emit_fn)(void *ctx, const char *field, const char *value);

/* The number of samples whose weight in WEIGHTS (a table of KEEP) is closest to W: a weight
 * as pf_flush writes it, or as earlier versions kept it (in 2048ths, which this rounds back). */
static uint8_t pf_samples(double w, const double *weights, double keep)
{
    if (!(w > 0.5))
        return 0;
    if (w >= weights[PF_N_MAX])
        return PF_N_MAX;
    double left = 1.0 - w * (1.0 - keep);     /* keep^n, in (0, 1) here */
    long n = left > 0.0 ? lround(log(left) / log(keep)) : PF_N_MAX;
    n = n < 1 ? 1 : n > PF_N_MAX ? PF_N_MAX : n;
    /* the log rounds a whisker either way of the table: settle on the nearest entry */
    if (n > 1 && fabs(weights[n - 1] - w) < fabs(weights[n] - w))
        n--;
    else if (n < PF_N_MAX && fabs(weights[n + 1] - w) < fabs(weights[n] - w))
        n++;
    return (uint8_t)n;
}

static void pf_emit_pairs(const uint16_t *mean, const uint8_t *n_samples, const double *weights,
                          char prefix, int chunk, pf_emit_fn emit, void *ctx)
{
    char field[32], value[400];
    size_t n = 0;
    for (int i = 0; i < PF_CHUNK; i++) {
        int k = chunk * PF_CHUNK + i;
        n += (size_t)snprintf(value + n, sizeof value - n, "%s%.5g %.6g", i ? " " : "",
                              pf_dq(mean[k]), weights[n_samples[k]]);
    }
    snprintf(field, sizeof field, "%c%d", prefix, chunk);
    emit(ctx, field, value);
}

static void pf_emit_recent(const pf_profile *p, int row, int chunk, pf_emit_fn emit, void *ctx)
{
    char field[32], value[400];
    size_t n = 0;
    for (int i = 0; i < PF_CHUNK; i++) {
        uint8_t v = p->recent[row][chunk * PF_CHUNK + i];
        if (v == PF_R_NONE)
            n += (size_t)snprintf(value + n, sizeof value - n, "%s-", i ? " " : "");
        else
            n += (size_t)snprintf(value + n, sizeof value - n, "%s%.4g", i ? " " : "", pf_dr(v));
    }
    snprintf(field, sizeof field, "y%d.%d", row, chunk);
    emit(ctx, field, value);
}

static void pf_flush_recent(pf_profile *p, pf_emit_fn emit, void *ctx)
{
    for (int r = 0; r < PF_RING_DAYS; r++) {
        if ((p->dirty_recent_day >> r & 1u) && p->recent_day[r] != PF_NO_DAY) {
            char field[32], value[24];
            snprintf(field, sizeof field, "y%d", r);
            snprintf(value, sizeof value, "%ld", (long)p->recent_day[r]);
            emit(ctx, field, value);
        }
        for (int c = 0; c < PF_CHUNKS; c++) {
            if (pf_bit16(p->dirty_recent[r], c))
                pf_emit_recent(p, r, c, emit, ctx);
        }
        p->dirty_recent[r] = 0;
    }
    p->dirty_recent_day = 0;
}

void pf_flush(pf_profile *p, pf_emit_fn emit, void *ctx)
{
    for (int c = 0; c < PF_WEEK_SLOTS / PF_CHUNK; c++) {
        if (p->dirty_week[c / 8] >> (c % 8) & 1u)
            pf_emit_pairs(p->week_mean, p->week_n, pf_week_w, 'w', c, emit, ctx);
    }
    memset(p->dirty_week, 0, sizeof p->dirty_week);
    for (int c = 0; c < PF_CHUNKS; c++) {
        if (pf_bit16(p->dirty_day, c))
            pf_emit_pairs(p->day_mean, p->day_n, pf_day_w, 'd', c, emit, ctx);
    }
    p->dirty_day = 0;
    pf_flush_recent(p, emit, ctx);
}

/* Whether a chunk differs from pf_init's: only those need writing into an empty :model. */
static bool pf_pairs_learned(const uint16_t *mean, const uint8_t *n_samples, int chunk)
{
    for (int i = 0; i < PF_CHUNK; i++) {
        int k = chunk * PF_CHUNK + i;
        if (mean[k] || n_samples[k])
            return true;
    }
    return false;
}

static bool pf_recent_learned(const pf_profile *p, int row, int chunk)
{
    for (int i = 0; i < PF_CHUNK; i++) {
        if (p->recent[row][chunk * PF_CHUNK + i] != PF_R_NONE)
            return true;
    }
    return false;
}

void pf_mark_all_dirty(pf_profile *p)
{
    memset(p->dirty_week, 0, sizeof p->dirty_week);
    for (int c = 0; c < PF_WEEK_SLOTS / PF_CHUNK; c++) {
        if (pf_pairs_learned(p->week_mean, p->week_n, c))
            p->dirty_week[c / 8] |= (uint8_t)(1u << (c % 8));
    }
    p->dirty_day = 0;
    for (int c = 0; c < PF_CHUNKS; c++) {
        if (pf_pairs_learned(p->day_mean, p->day_n, c))
            pf_set_bit16(&p->dirty_day, c);
    }
    p->dirty_recent_day = 0;
    for (int r = 0; r < PF_RING_DAYS; r++) {
        if (p->recent_day[r] != PF_NO_DAY)
            p->dirty_recent_day |= 1u << r;
        p->dirty_recent[r] = 0;
        for (int c = 0; c < PF_CHUNKS; c++) {
            if (pf_recent_learned(p, r, c))
                pf_set_bit16(&p->dirty_recent[r], c);
        }
    }
}

/* A whole non-negative number in [0, LIMIT) from S up to END (or the end of S). */
static bool pf_parse_index(const char *s, const char **end, long limit, long *out)
{
    char *e;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || v < 0 || v >= limit)
        return false;
    *out = v;
    *end = e;
    return true;
}

/* N space-separated numbers ("-" is NaN when ALLOW_NONE); false on anything else. */
static bool pf_parse_numbers(const char *s, double *out, int n, bool allow_none)
{
    for (int i = 0; i < n; i++) {
        while (*s == ' ')
            s++;
        if (allow_none && *s == '-' && (s[1] == ' ' || s[1] == '\0')) {
            out[i] = NAN;
            s++;
            continue;
        }
        char *e;
        out[i] = strtod(s, &e);
        if (e == s || !isfinite(out[i]))
            return false;
        s = e;
    }
    while (*s == ' ')
        s++;
    return *s == '\0';
}

static bool pf_restore_pairs(uint16_t *mean, uint8_t *n_samples, const double *weights,
                             double keep, long chunk, const char *value)
{
    double v[2 * PF_CHUNK];
    if (!pf_parse_numbers(value, v, 2 * PF_CHUNK, false))
        return false;
    for (int i = 0; i < PF_CHUNK; i++) {
        mean[chunk * PF_CHUNK + i] = pf_q(v[2 * i]);
        n_samples[chunk * PF_CHUNK + i] = pf_samples(v[2 * i + 1], weights, keep);
    }
    return true;
}

static bool pf_restore_recent(pf_profile *p, const char *rest, const char *value)
{
    long row, chunk;
    const char *e;
    if (!pf_parse_index(rest, &e, PF_RING_DAYS, &row))
        return false;
    if (*e == '\0') {
        char *end;
        errno = 0;
        long day = strtol(value, &end, 10);
        if (errno || end == value || *end || day <= PF_NO_DAY || day > INT32_MAX ||
            pf_mod(day, PF_RING_DAYS) != row)
            return false;
        p->recent_day[row] = (int32_t)day;
        return true;
    }
    if (*e != '.' || !pf_parse_index(e + 1, &e, PF_CHUNKS, &chunk) || *e)
        return false;
    double v[PF_CHUNK];
    if (!pf_parse_numbers(value, v, PF_CHUNK, true))
        return false;
    for (int i = 0; i < PF_CHUNK; i++)
        p->recent[row][chunk * PF_CHUNK + i] = isnan(v[i]) ? PF_R_NONE : pf_r(v[i]);
    return true;
}

bool pf_restore_field(pf_profile *p, const char *field, const char *value)
{
    long chunk;
    const char *e;
    switch (field[0]) {
    case 'w':
        return pf_parse_index(field + 1, &e, PF_WEEK_SLOTS / PF_CHUNK, &chunk) && !*e &&
               pf_restore_pairs(p->week_mean, p->week_n, pf_week_w, PF_WEEK_KEEP, chunk, value);
    case 'd':
        return pf_parse_index(field + 1, &e, PF_CHUNKS, &chunk) && !*e &&
               pf_restore_pairs(p->day_mean, p->day_n, pf_day_w, PF_DAY_KEEP, chunk, value);
    case 'y':
        return pf_restore_recent(p, field + 1, value);
    default:
        return false;
    }
}

bool pf_is_old_field(const char *field)
{
    return field[0] == 'r' && field[1] >= '0' && field[1] <= '9';
}
