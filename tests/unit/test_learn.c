/* Unit tests for learn: the forgetting ridge regression (recovery of known coefficients, the
 * prior when data is missing, forgetting on event time, storage) and the error rings
 * (quantiles, wrap-around, storage). */
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
static double noise(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return ((*state >> 8) & 0xffff) / 32768.0 - 1.0;
}

static void test_reg_recovers_coefficients(void **state)
{
    ln_reg r;
    ln_reg_init(&r, prior);
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
    const double *c = ln_reg_coef(&r, 0.1);
    for (int k = 0; k < LN_FEATURES; k++)
        assert_float_equal(c[k], truth[k], 0.02);
}

/* No data: the prior. A feature never seen (always 0) stays at its prior too. */
static void test_reg_prior(void **state)
{
    ln_reg r;
    ln_reg_init(&r, prior);
    const double *c = ln_reg_coef(&r, 0.1);
    for (int k = 0; k < LN_FEATURES; k++)
        assert_float_equal(c[k], prior[k], 1e-12);
    double x[LN_FEATURES] = { 0.0, 1.0, 0.0, 0.0 };
    for (int i = 0; i < 100; i++)
        ln_reg_add(&r, x, 0.05, i * MIN, TAU);
    c = ln_reg_coef(&r, 0.1);
    assert_float_equal(c[0], prior[0], 1e-12);
    assert_float_equal(c[1], 0.05, 1e-3);
}

/* Old samples fade with event time: after a change the fit follows the new relation. */
static void test_reg_forgets(void **state)
{
    ln_reg r;
    ln_reg_init(&r, prior);
    unsigned seed = 7;
    int64_t t = 0;
    for (int phase = 0; phase < 2; phase++) {
        for (int i = 0; i < 2000; i++, t += 30 * MIN) {
            double x[LN_FEATURES] = { 0.2 * noise(&seed), 1.0, 0.0, 0.0 };
            ln_reg_add(&r, x, (phase ? 0.2 : 0.9) * x[0], t, TAU);
        }
    }
    /* 2000 half hours = 41 days = ~3 tau after the change */
    assert_float_equal(ln_reg_coef(&r, 0.1)[0], 0.2, 0.05);
    /* samples out of order do not make time run back */
    int64_t last = r.last_ms;
    double x[LN_FEATURES] = { 0.1, 1.0, 0.0, 0.0 };
    ln_reg_add(&r, x, 0.02, last - DAY, TAU);
    assert_int_equal(r.last_ms, last);
}

static void test_reg_bounded(void **state)
{
    ln_reg r;
    ln_reg_init(&r, prior);
    double x[LN_FEATURES] = { 1e-3, 0.0, 0.0, 0.0 };
    for (int i = 0; i < 10; i++)
        ln_reg_add(&r, x, 1.0, i * MIN, TAU);   /* y = 1000 x */
    assert_float_equal(ln_reg_coef(&r, 1e-9)[0], LN_COEF_MAX, 0);
}

static void test_reg_encode_decode(void **state)
{
    ln_reg a, b;
    ln_reg_init(&a, prior);
    ln_reg_init(&b, prior);
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
    const double *ca = ln_reg_coef(&a, 0.1), *cb = ln_reg_coef(&b, 0.1);
    for (int k = 0; k < LN_FEATURES; k++)
        assert_float_equal(ca[k], cb[k], 1e-6);
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
    assert_float_equal(lo, -0.04, 1.0 / LN_ERROR_SCALE);
    assert_float_equal(hi, 0.04, 1.0 / LN_ERROR_SCALE);
    assert_float_equal(mae, 2550.0 / 101 / 1000, 1.0 / LN_ERROR_SCALE);
    /* a full ring keeps only the last LN_ERRORS */
    for (int i = 0; i < LN_ERRORS; i++)
        ln_errors_add(e, 0.2);
    assert_int_equal(e->count, LN_ERRORS);
    ln_errors_stats(e, 0.1, 0.9, &lo, &hi, &mae);
    assert_float_equal(lo, 0.2, 1.0 / LN_ERROR_SCALE);
    assert_float_equal(mae, 0.2, 1.0 / LN_ERROR_SCALE);
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
    for (int i = 0; i < 40; i++)     /* 4 digits of text, in 16-bit steps */
        assert_float_equal(b->e[i], a->e[i], 1e-4 * LN_ERROR_SCALE);
    f->n = 0;
    ln_errors_add(a, 0.01);
    ln_errors_flush(a, "e30", collect, f);
    assert_int_equal(f->n, 2);                       /* one chunk and the meta */
    assert_false(ln_errors_restore_field(b, "", "512 3"));
    assert_false(ln_errors_restore_field(b, ".32", "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"));
    assert_false(ln_errors_restore_field(b, ".1", "0 0"));
    free(f);
    free(a);
    free(b);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
