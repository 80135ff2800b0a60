/* Unit tests for util's number formatting: util_format_fixed writes exactly what snprintf's
 * "%.Nf" writes — random values over many magnitudes, exact ties (0.25, 2.5), values a hair
 * beside a tie, negatives that round to zero, carries, NaN, infinities, huge values — and
 * util_format_i64 and util_format_u64 what "%" PRId64 and PRIu64 write, the extremes included. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Asserts that util_format_fixed(V, D) equals snprintf("%.Df", V), naming the value if not. */
static void check_fixed(double v, int d)
{
    char want[512], got[512];
    int n = snprintf(want, sizeof want, "%.*f", d, v);
    size_t len = util_format_fixed(got, sizeof got, v, d);
    if (strcmp(want, got) != 0 || len != (size_t)n)
        fail_msg("%%.%df of %.17g (%a): snprintf \"%s\", util_format_fixed \"%s\" (%zu)", d, v,
                 v, want, got, len);
}

static void test_fixed_random(void **state)
{
    (void)state;
    srand(42);
    for (int i = 0; i < 300000; i++) {
        double mag = pow(10.0, (rand() % 22) - 8);
        double v = ((double)rand() / RAND_MAX - 0.5) * 2 * mag;
        for (int d = 0; d <= 6; d++)
            check_fixed(v, d);
    }
}

static void test_fixed_grid_and_ties(void **state)
{
    (void)state;
    for (int k = -20000; k <= 20000; k++) {
        for (int d = 0; d <= 4; d++) {
            double v = k / 200.0;       /* multiples of 0.005: many exact and near ties */
            check_fixed(v, d);
            check_fixed(nextafter(v, INFINITY), d);
            check_fixed(nextafter(v, -INFINITY), d);
            check_fixed(k * 0.05, d);   /* 0.05 is inexact: products near ties */
        }
    }
    const double ties[] = { 0.5, 1.5, 2.5, 0.25, 0.75, 0.125, 12.25, 12.35, 1e-7, 9.95, 9.96,
                            99.999, 0.0005, 2.675 };
    for (size_t i = 0; i < sizeof ties / sizeof ties[0]; i++)
        for (int d = 0; d <= 6; d++) {
            check_fixed(ties[i], d);
            check_fixed(-ties[i], d);
        }
}

static void test_fixed_special(void **state)
{
    (void)state;
    const double v[] = { 0.0, -0.0, -0.04, -0.0004, NAN, -NAN, INFINITY, -INFINITY, 1e300,
                         -1e300, 8589934591.9, 8589934592.0, 4294967296.55, 1e15 + 0.3,
                         5e-324, -5e-324, 0.9999999, 999999.95 };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        for (int d = 0; d <= 6; d++)
            check_fixed(v[i], d);
}

static void test_fixed_small_buffer(void **state)
{
    (void)state;
    char buf[4];
    size_t n = util_format_fixed(buf, sizeof buf, 123.456, 1);
    assert_int_equal(n, 5);         /* like snprintf: the length it needed */
    assert_string_equal(buf, "123");
}

static void test_i64(void **state)
{
    (void)state;
    const int64_t v[] = { 0, 1, -1, 9, 10, -10, 1234567890123, -987654321, INT64_MAX, INT64_MIN,
                          INT64_MIN + 1 };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char want[32], got[UTIL_NUM_MAX];
        int n = snprintf(want, sizeof want, "%" PRId64, v[i]);
        assert_int_equal(util_format_i64(got, sizeof got, v[i]), n);
        assert_string_equal(got, want);
    }
    const uint64_t u[] = { 0, 9, 10, UINT64_MAX, UINT64_MAX - 1, (uint64_t)INT64_MAX + 1 };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        char want[32], got[UTIL_NUM_MAX];
        int n = snprintf(want, sizeof want, "%" PRIu64, u[i]);
        assert_int_equal(util_format_u64(got, sizeof got, u[i]), n);
        assert_string_equal(got, want);
    }
    srand(7);
    for (int i = 0; i < 100000; i++) {
        uint64_t bits = ((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 2) ^ (uint64_t)rand();
        int64_t x = (int64_t)(bits & (uint64_t)INT64_MAX);
        x = (i & 1) ? -x : x;
        char want[32], got[UTIL_NUM_MAX];
        snprintf(want, sizeof want, "%" PRId64, x);
        util_format_i64(got, sizeof got, x);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_random),
        cmocka_unit_test(test_fixed_grid_and_ties),
        cmocka_unit_test(test_fixed_special),
        cmocka_unit_test(test_fixed_small_buffer),
        cmocka_unit_test(test_i64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
