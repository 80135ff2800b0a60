/* Unit tests for learn: the forgetting ridge regression (recovery of known coefficients, the
 * prior when data is missing, forgetting on event time, storage) and the error rings
 * (quantiles, wrap-around, the 8-bit square-root scale, storage, rings of earlier versions). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "learn.h"

#define MIN 60000LL
#define DAY (1440 * MIN)
#define TAU (14 * DAY)

static const double prior[LN_FEATURES] = { 0.8, 0.0, 0.0, 0.0, 0.0 };

/* A deterministic pseudo-random number in [-1, 1). */
/* The coefficients of R with the test's prior. */
static const double *coef(const ln_reg *r, double ridge, double out[LN_FEATURES])
{
    ln_reg_coef(r, prior, ridge, out);
    return out;
}

/* How far a stored error may be from ERR: half a step of the square-root scale there. */
static double err_tol(double err)
{
    double r = sqrt(fabs(err)) + 1.0 / LN_ERROR_SCALE;
    return r * r - fabs(err) + 1e-9;
}

static double noise(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return ((*state >> 8) & 0xffff) / 32768.0 - 1.0;
}

static void test_reg_recovers_coefficients(void **state)
{
    ln_reg r;
    ln_reg_init(&r);
    unsigned seed = 1;
    const double truth[LN_FEATURES] = { 0.6, 0.02, 0.3, -0.2, 0.4 };
    for (int i = 0; i < 3000; i++) {
        double x[LN_FEATURES] = { 0.2 * noise(&seed), 1.0, 0.1 * noise(&seed),
                                  0.1 * noise(&seed), 0.1 * noise(&seed) };
        double y = 0.001 * noise(&seed);
        for (int k = 0; k < LN_FEATURES; k++)
            y += truth[k] * x[k];
        ln_reg_add(&r, x, y, i * 10 * MIN, TAU);
    }
    double buf[LN_FEATURES];
    const double *c = coef(&r, 0.1, buf);
    for (int k = 0; k < LN_FEATURES; k++)
        assert_float_equal(c[k], truth[k], 0.02);
}

/* No data: the prior. A feature never seen (always 0) stays at its prior too. */
static void test_reg_prior(void **state)
{
    ln_reg r;
    ln_reg_init(&r);
    double buf[LN_FEATURES];
    const double *c = coef(&r, 0.1, buf);
    for (int k = 0; k < LN_FEATURES; k++)
        assert_float_equal(c[k], prior[k], 1e-12);
    double x[LN_FEATURES] = { 0.0, 1.0, 0.0, 0.0 };
    for (int i = 0; i < 100; i++)
        ln_reg_add(&r, x, 0.05, i * MIN, TAU);
    c = coef(&r, 0.1, buf);
    assert_float_equal(c[0], prior[0], 1e-12);
    assert_float_equal(c[1], 0.05, 1e-3);
}

/* Old samples fade with event time: after a change the fit follows the new relation. */
static void test_reg_forgets(void **state)
{
    ln_reg r;
    ln_reg_init(&r);
    unsigned seed = 7;
    int64_t t = 0;
    for (int phase = 0; phase < 2; phase++) {
        for (int i = 0; i < 2000; i++, t += 30 * MIN) {
            double x[LN_FEATURES] = { 0.2 * noise(&seed), 1.0, 0.0, 0.0 };
            ln_reg_add(&r, x, (phase ? 0.2 : 0.9) * x[0], t, TAU);
        }
    }
    /* 2000 half hours = 41 days = ~3 tau after the change */
    double buf[LN_FEATURES];
    assert_float_equal(coef(&r, 0.1, buf)[0], 0.2, 0.05);
    /* samples out of order do not make time run back */
    int64_t last = r.last_ms;
    double x[LN_FEATURES] = { 0.1, 1.0, 0.0, 0.0 };
    ln_reg_add(&r, x, 0.02, last - DAY, TAU);
    assert_int_equal(r.last_ms, last);
}

static void test_reg_bounded(void **state)
{
    ln_reg r;
    ln_reg_init(&r);
    double x[LN_FEATURES] = { 1e-3, 0.0, 0.0, 0.0 };
    for (int i = 0; i < 10; i++)
        ln_reg_add(&r, x, 1.0, i * MIN, TAU);   /* y = 1000 x */
    double buf[LN_FEATURES];
    assert_float_equal(coef(&r, 1e-9, buf)[0], LN_COEF_MAX, 0);
}

static void test_reg_encode_decode(void **state)
{
    ln_reg a, b;
    ln_reg_init(&a);
    ln_reg_init(&b);
    unsigned seed = 3;
    for (int i = 0; i < 50; i++) {
        double x[LN_FEATURES] = { noise(&seed), 1.0, noise(&seed), noise(&seed), noise(&seed) };
        ln_reg_add(&a, x, noise(&seed), i * 10 * MIN, TAU);
    }
    char buf[512];
    int n = ln_reg_encode(&a, buf, sizeof buf);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_true(ln_reg_decode(&b, buf));
    assert_int_equal(b.last_ms, a.last_ms);
    double bufa[LN_FEATURES], bufb[LN_FEATURES];
    const double *ca = coef(&a, 0.1, bufa), *cb = coef(&b, 0.1, bufb);
    for (int k = 0; k < LN_FEATURES; k++)
        assert_float_equal(ca[k], cb[k], 1e-6);
    /* the symmetric matrix is kept as its upper triangle: the text is what earlier versions
     * wrote (last_ms, 15 + 5 numbers), so their regressions restore as they were */
    int numbers = 0;
    for (const char *p = buf; *p; p++)
        numbers += *p == ' ';
    assert_int_equal(numbers, LN_FEATURES * (LN_FEATURES + 1) / 2 + LN_FEATURES);
    assert_false(ln_reg_decode(&b, "12 1 2 3"));
    assert_false(ln_reg_decode(&b, "x"));
    char bad[600];
    snprintf(bad, sizeof bad, "%s junk", buf);
    assert_false(ln_reg_decode(&b, bad));
}

static void test_quantile(void **state)
{
    const float v[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    assert_float_equal(ln_quantile(v, 11, 0.1), 1.0, 1e-6);
    assert_float_equal(ln_quantile(v, 11, 0.95), 9.5, 1e-6);
    assert_float_equal(ln_quantile(v, 11, 0.0), 0.0, 0);
    assert_float_equal(ln_quantile(v, 11, 1.0), 10.0, 0);
    assert_float_equal(ln_quantile(v, 1, 0.5), 0.0, 0);
}

static void test_errors_stats_and_wrap(void **state)
{
    ln_errors *e = malloc(sizeof *e);
    ln_errors_init(e);
    double lo, hi, mae;
    for (int i = 0; i <= 100; i++)
        ln_errors_add(e, (i - 50) / 1000.0);        /* -0.05 .. 0.05 */
    ln_errors_stats(e, 0.1, 0.9, &lo, &hi, &mae);
    assert_float_equal(lo, -0.04, err_tol(0.04));
    assert_float_equal(hi, 0.04, err_tol(0.04));
    assert_float_equal(mae, 2550.0 / 101 / 1000, err_tol(0.05));
    /* a full ring keeps only the last LN_ERRORS */
    for (int i = 0; i < LN_ERRORS; i++)
        ln_errors_add(e, 0.2);
    assert_int_equal(e->count, LN_ERRORS);
    ln_errors_stats(e, 0.1, 0.9, &lo, &hi, &mae);
    assert_float_equal(lo, 0.2, err_tol(0.2));
    assert_float_equal(mae, 0.2, err_tol(0.2));
    ln_errors_add(e, NAN);                           /* ignored */
    assert_int_equal(e->next, 101);
    free(e);
}

typedef struct fields {
    char name[64][64];
    char value[64][256];
    int n;
} fields;

static void collect(void *ctx, const char *field, const char *value)
{
    fields *f = ctx;
    assert_true(f->n < 64);
    snprintf(f->name[f->n], sizeof f->name[0], "%s", field);
    snprintf(f->value[f->n], sizeof f->value[0], "%s", value);
    f->n++;
}

static void test_errors_flush_restore(void **state)
{
    ln_errors *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    fields *f = calloc(1, sizeof *f);
    ln_errors_init(a);
    ln_errors_init(b);
    for (int i = 0; i < 40; i++)
        ln_errors_add(a, sin(i) / 10);
    ln_errors_flush(a, "e30", collect, f);
    assert_int_equal(f->n, 3 + 1);                   /* chunks 0..2 and the meta field */
    for (int i = 0; i < f->n; i++) {
        assert_memory_equal(f->name[i], "e30", 3);
        assert_true(ln_errors_restore_field(b, f->name[i] + 3, f->value[i]));
    }
    assert_int_equal(b->next, a->next);
    assert_int_equal(b->count, a->count);
    assert_true(ln_errors_restore_done(b));
    for (int i = 0; i < 40; i++)     /* the text holds each 8-bit step exactly */
        assert_int_equal(b->e[i], a->e[i]);
    f->n = 0;
    ln_errors_add(a, 0.01);
    ln_errors_flush(a, "e30", collect, f);
    assert_int_equal(f->n, 2);                       /* one chunk and the meta */
    assert_false(ln_errors_restore_field(b, "", "512 3"));
    char chunk[16];
    snprintf(chunk, sizeof chunk, ".%d", LN_ERRORS / LN_ERROR_CHUNK);
    assert_false(ln_errors_restore_field(b, chunk, "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"));
    assert_false(ln_errors_restore_field(b, ".1", "0 0"));
    free(f);
    free(a);
    free(b);
}

/* Every step of the 8-bit scale survives a flush and restore; errors land on the nearest step,
 * fine near 0 and coarse only for large ones. */
static void test_errors_scale_round_trip(void **state)
{
    ln_errors *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    fields *f = calloc(1, sizeof *f);
    ln_errors_init(a);
    ln_errors_init(b);
    for (int q = -LN_ERROR_SCALE; q <= LN_ERROR_SCALE; q++) {
        double r = (double)q / LN_ERROR_SCALE;
        ln_errors_add(a, q < 0 ? -r * r : r * r);
        assert_int_equal(a->e[(a->next + LN_ERRORS - 1) % LN_ERRORS], q);
    }
    ln_errors_add(a, 2.0);                           /* clamped to 1 */
    assert_int_equal(a->e[255], LN_ERROR_SCALE);
    ln_errors_add(a, 0.0005);
    assert_int_equal(a->e[256], 3);                  /* sqrt(0.0005) * 127 = 2.84 */
    for (int c = 0; c < (int)(a->count + LN_ERROR_CHUNK - 1) / LN_ERROR_CHUNK; c++) {
        f->n = 0;
        a->dirty = 1u << c;
        a->meta_dirty = c == 0;
        ln_errors_flush(a, "e30", collect, f);
        for (int i = 0; i < f->n; i++)
            assert_true(ln_errors_restore_field(b, f->name[i] + 3, f->value[i]));
    }
    assert_true(ln_errors_restore_done(b));
    assert_int_equal(b->count, a->count);
    assert_memory_equal(b->e, a->e, a->count);
    free(f);
    free(a);
    free(b);
}

/* Rings of earlier versions (512 errors, 16-bit, written in the same decimal text): one that fits
 * restores, its values on the nearest step; a full one has no place here and restores empty. */
static void test_errors_restore_earlier_ring(void **state)
{
    ln_errors *e = malloc(sizeof *e);
    ln_errors_init(e);
    assert_true(ln_errors_restore_field(e, "", "20 20"));
    assert_true(ln_errors_restore_field(e, ".0", "0.01234 -0.2 0 0 0 0 0 0 0 0 0 0 0 0 0 0.9999"));
    assert_true(ln_errors_restore_done(e));
    assert_int_equal(e->count, 20);
    double lo, hi, mae;
    ln_errors_stats(e, 0.0, 1.0, &lo, &hi, &mae);
    assert_float_equal(lo, -0.2, err_tol(0.2));
    assert_float_equal(hi, 0.9999, err_tol(1.0));
    assert_int_equal(e->e[0], 14);                  /* sqrt(0.01234) * 127 = 14.1 */

    ln_errors_init(e);
    assert_false(ln_errors_restore_field(e, "", "300 512"));
    char chunk[16];
    snprintf(chunk, sizeof chunk, ".%d", LN_ERRORS / LN_ERROR_CHUNK + 1);
    assert_false(ln_errors_restore_field(e, chunk, "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0.5"));
    assert_true(ln_errors_restore_field(e, ".0", "0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1 "
                                               "0.1 0.1 0.1 0.1"));
    assert_false(ln_errors_restore_done(e));        /* no meta: the chunk cannot be placed */
    for (int i = 0; i < LN_ERRORS; i++)
        assert_int_equal(e->e[i], 0);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reg_recovers_coefficients),
        cmocka_unit_test(test_reg_prior),
        cmocka_unit_test(test_reg_forgets),
        cmocka_unit_test(test_reg_bounded),
        cmocka_unit_test(test_reg_encode_decode),
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_errors_stats_and_wrap),
        cmocka_unit_test(test_errors_flush_restore),
        cmocka_unit_test(test_errors_scale_round_trip),
        cmocka_unit_test(test_errors_restore_earlier_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
