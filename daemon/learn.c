/* learn: forgetting ridge regression and error rings (see learn.h). */
#include "learn.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- regression ---- */

void ln_reg_init(ln_reg *r)
{
    memset(r, 0, sizeof *r);
    r->last_ms = INT64_MIN;
}

/* The index in ln_reg.a of element (I, J) of the symmetric matrix. */
static int ln_tri(int i, int j)
{
    if (i > j) {
        int t = i;
        i = j;
        j = t;
    }
    return i * LN_FEATURES - i * (i - 1) / 2 + (j - i);
}

void ln_reg_add(ln_reg *r, const double x[LN_FEATURES], double y, int64_t t_ms, int64_t tau_ms)
{
    double keep = 1.0;
    if (r->last_ms != INT64_MIN && t_ms > r->last_ms && tau_ms > 0)
        keep = exp(-(double)(t_ms - r->last_ms) / (double)tau_ms);
    if (r->last_ms == INT64_MIN || t_ms > r->last_ms)
        r->last_ms = t_ms;
    for (int i = 0; i < LN_FEATURES; i++) {
        r->b[i] = keep * r->b[i] + x[i] * y;
        for (int j = i; j < LN_FEATURES; j++)
            r->a[ln_tri(i, j)] = keep * r->a[ln_tri(i, j)] + x[i] * x[j];
    }
}

/* Solves M c = V in place by Gaussian elimination with partial pivoting; false if singular. */
static bool ln_solve(double m[LN_FEATURES][LN_FEATURES], double v[LN_FEATURES],
                     double c[LN_FEATURES])
{
    for (int col = 0; col < LN_FEATURES; col++) {
        int piv = col;
        for (int row = col + 1; row < LN_FEATURES; row++)
            if (fabs(m[row][col]) > fabs(m[piv][col]))
                piv = row;
        if (fabs(m[piv][col]) < 1e-12)
            return false;
        for (int j = 0; j < LN_FEATURES; j++) {
            double t = m[col][j];
            m[col][j] = m[piv][j];
            m[piv][j] = t;
        }
        double t = v[col];
        v[col] = v[piv];
        v[piv] = t;
        for (int row = col + 1; row < LN_FEATURES; row++) {
            double f = m[row][col] / m[col][col];
            for (int j = col; j < LN_FEATURES; j++)
                m[row][j] -= f * m[col][j];
            v[row] -= f * v[col];
        }
    }
    for (int i = LN_FEATURES - 1; i >= 0; i--) {
        double s = v[i];
        for (int j = i + 1; j < LN_FEATURES; j++)
            s -= m[i][j] * c[j];
        c[i] = s / m[i][i];
    }
    return true;
}

void ln_reg_coef(const ln_reg *r, const double prior[LN_FEATURES], double ridge,
                 double coef[LN_FEATURES])
{
    double m[LN_FEATURES][LN_FEATURES], v[LN_FEATURES], c[LN_FEATURES];
    for (int i = 0; i < LN_FEATURES; i++) {
        for (int j = 0; j < LN_FEATURES; j++)
            m[i][j] = r->a[ln_tri(i, j)] + (i == j ? ridge : 0.0);
        v[i] = r->b[i] + ridge * prior[i];
    }
    if (!ln_solve(m, v, c))
        memcpy(c, prior, sizeof c);
    for (int i = 0; i < LN_FEATURES; i++) {
        /* bounded, so one corrupt sample cannot make forecasts absurd (they are clamped too) */
        double b = isfinite(c[i]) ? c[i] : prior[i];
        coef[i] = b > LN_COEF_MAX ? LN_COEF_MAX : b < -LN_COEF_MAX ? -LN_COEF_MAX : b;
    }
}

int ln_reg_encode(const ln_reg *r, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%" PRId64, r->last_ms);
    for (int k = 0; k < LN_TRIANGLE; k++)
        n += snprintf(buf + n, size > (size_t)n ? size - (size_t)n : 0, " %.9g", r->a[k]);
    for (int i = 0; i < LN_FEATURES; i++)
        n += snprintf(buf + n, size > (size_t)n ? size - (size_t)n : 0, " %.9g", r->b[i]);
    return n;
}

bool ln_reg_decode(ln_reg *r, const char *text)
{
    char *e;
    errno = 0;
    long long last = strtoll(text, &e, 10);
    if (errno || e == text)
        return false;
    double v[LN_TRIANGLE + LN_FEATURES];
    const char *s = e;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        v[i] = strtod(s, &e);
        if (e == s || !isfinite(v[i]))
            return false;
        s = e;
    }
    while (*s == ' ')
        s++;
    if (*s)
        return false;
    memcpy(r->a, v, sizeof r->a);
    memcpy(r->b, v + LN_TRIANGLE, sizeof r->b);
    r->last_ms = (int64_t)last;
    return true;
}

/* ---- error rings ---- */

void ln_errors_init(ln_errors *e)
{
    memset(e, 0, sizeof *e);
}

/* ERR, clamped to [-1, 1], on the square-root scale of learn.h. */
static int8_t ln_error_q(double err)
{
    double c = err < -1.0 ? -1.0 : err > 1.0 ? 1.0 : err;
    double q = lround(sqrt(fabs(c)) * LN_ERROR_SCALE);
    return (int8_t)(c < 0.0 ? -q : q);
}

static double ln_error_dq(int8_t q)
{
    double r = (double)q / LN_ERROR_SCALE;
    return q < 0 ? -r * r : r * r;
}

void ln_errors_add(ln_errors *e, double err)
{
    if (!isfinite(err))
        return;
    e->e[e->next] = ln_error_q(err);
    e->dirty |= 1u << (e->next / LN_ERROR_CHUNK);
    e->next = (uint16_t)((e->next + 1) % LN_ERRORS);
    if (e->count < LN_ERRORS)
        e->count++;
    e->meta_dirty = true;
    e->stats_valid = false;
}

double ln_quantile(const float *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    if (pos <= 0.0)
        return v[0];
    if (pos >= (double)(n - 1))
        return v[n - 1];
    size_t i = (size_t)pos;
    double f = pos - (double)i;
    return v[i] + (v[i + 1] - v[i]) * f;
}

static int ln_cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void ln_errors_stats(ln_errors *e, double low, double high, double *q_low, double *q_high,
                     double *mae)
{
    if (!e->stats_valid && e->count > 0) {
        float sorted[LN_ERRORS];
        double sum = 0.0;
        for (unsigned i = 0; i < e->count; i++) {
            sorted[i] = (float)ln_error_dq(e->e[i]);
            sum += fabs(ln_error_dq(e->e[i]));
        }
        qsort(sorted, e->count, sizeof sorted[0], ln_cmp_float);
        e->q_low = (float)ln_quantile(sorted, e->count, low);
        e->q_high = (float)ln_quantile(sorted, e->count, high);
        e->mae = (float)(sum / e->count);
        e->stats_valid = true;
    }
    *q_low = e->q_low;
    *q_high = e->q_high;
    *mae = e->mae;
}

void ln_errors_flush(ln_errors *e, const char *name,
                     void (*emit)(void *ctx, const char *field, const char *value), void *ctx)
{
    char field[64], value[LN_ERROR_CHUNK * 16];
    for (int c = 0; c < LN_ERRORS / LN_ERROR_CHUNK; c++) {
        if (!(e->dirty >> c & 1u))
            continue;
        size_t n = 0;
        for (int i = 0; i < LN_ERROR_CHUNK; i++)
            n += (size_t)snprintf(value + n, sizeof value - n, "%s%.4g", i ? " " : "",
                                  ln_error_dq(e->e[c * LN_ERROR_CHUNK + i]));
        snprintf(field, sizeof field, "%s.%d", name, c);
        emit(ctx, field, value);
    }
    e->dirty = 0;
    if (e->meta_dirty) {
        e->meta_dirty = false;
        snprintf(value, sizeof value, "%u %u", (unsigned)e->next, (unsigned)e->count);
        emit(ctx, name, value);
    }
}

void ln_errors_mark_all_dirty(ln_errors *e)
{
    e->dirty = 0;
    for (int c = 0; c < LN_ERRORS / LN_ERROR_CHUNK; c++) {
        for (int i = 0; i < LN_ERROR_CHUNK; i++) {
            if (e->e[c * LN_ERROR_CHUNK + i] != 0)              /* else as ln_errors_init's */
                e->dirty |= 1u << c;
        }
    }
    e->meta_dirty = true;
}

static bool ln_errors_restore_meta(ln_errors *e, const char *value)
{
    unsigned long next, count;
    char tail;
    /* until the ring is full, errors fill it from index 0: next == count */
    if (sscanf(value, "%lu %lu %c", &next, &count, &tail) != 2 || next >= LN_ERRORS ||
        count > LN_ERRORS || (count < LN_ERRORS && next != count))
        return false;
    e->next = (uint16_t)next;
    e->count = (uint16_t)count;
    e->stats_valid = false;
    return true;
}

static bool ln_errors_restore_chunk(ln_errors *e, const char *index, const char *value)
{
    char *end;
    errno = 0;
    long c = strtol(index, &end, 10);
    if (errno || end == index || *end || c < 0 || c >= LN_ERRORS / LN_ERROR_CHUNK)
        return false;
    int8_t v[LN_ERROR_CHUNK];
    const char *s = value;
    for (int i = 0; i < LN_ERROR_CHUNK; i++) {
        double d = strtod(s, &end);
        if (end == s || !isfinite(d) || fabs(d) > 1.0)
            return false;
        v[i] = ln_error_q(d);
        s = end;
    }
    while (*s == ' ')
        s++;
    if (*s)
        return false;
    memcpy(&e->e[c * LN_ERROR_CHUNK], v, sizeof v);
    e->stats_valid = false;
    return true;
}

bool ln_errors_restore_field(ln_errors *e, const char *suffix, const char *value)
{
    if (*suffix == '\0')
        return ln_errors_restore_meta(e, value);
    if (*suffix == '.')
        return ln_errors_restore_chunk(e, suffix + 1, value);
    return false;
}

bool ln_errors_restore_done(ln_errors *e)
{
    if (e->count == 0)
        ln_errors_init(e);
    return e->count > 0;
}
