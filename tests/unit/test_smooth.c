/* Unit tests for smooth: exact irregular steps, out-of-order updates, trend, projection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "smooth.h"

#define TAU 300000  /* 5 min */

static void test_first_value(void **state)
{
    sm_state s = { 0 };
    sm_update(&s, 1000, 42.0, TAU);
    assert_true(s.started);
    assert_int_equal(s.ts_ms, 1000);
    assert_float_equal(s.smoothed, 42.0, 0);
    assert_float_equal(s.value, 42.0, 0);
    assert_float_equal(sm_trend_per_hour(&s), 0.0, 0);
}

static void test_constant_stays(void **state)
{
    sm_state s = { 0 };
    int64_t t = 0;
    for (int i = 0; i < 100; i++, t += 1000 + 7919 * (i % 5))
        sm_update(&s, t, 100.0, TAU);
    assert_float_equal(s.smoothed, 100.0, 1e-12);
    assert_float_equal(sm_trend_per_hour(&s), 0.0, 1e-12);
    assert_float_equal(sm_smoothed_at(&s, t + 3600000, TAU), 100.0, 1e-12);
}

/* Each update relaxes the old smoothed value towards the value held since the previous update,
 * exactly, whatever the spacing. */
static void test_irregular_steps_exact(void **state)
{
    static const int64_t dts[] = { 1, 500, 60000, 1234567, 3, 300000, 45000 };
    static const double xs[] = { 10, 250, 0, 577, 300, 301, 12.5 };
    sm_state s = { 0 };
    sm_update(&s, 0, 100.0, TAU);
    double expect = 100.0, held = 100.0;
    int64_t t = 0;
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        t += dts[i];
        expect = held + (expect - held) * exp(-(double)dts[i] / TAU);
        sm_update(&s, t, xs[i], TAU);
        held = xs[i];
        assert_float_equal(s.smoothed, expect, 1e-9);
        assert_float_equal(s.value, held, 0);
        assert_int_equal(s.ts_ms, t);
    }
}

/* One long step and many small steps of the same total length give the same smoothed value. */
static void test_step_splitting_invariant(void **state)
{
    sm_state a = { 0 }, b = { 0 };
    sm_update(&a, 0, 0.0, TAU);
    sm_update(&b, 0, 0.0, TAU);
    sm_update(&a, 1000, 500.0, TAU);
    sm_update(&b, 1000, 500.0, TAU);
    sm_update(&a, 601000, 500.0, TAU);
    for (int64_t t = 1000 + 6000; t <= 601000; t += 6000)
        sm_update(&b, t, 500.0, TAU);
    assert_float_equal(a.smoothed, b.smoothed, 1e-9);
    assert_float_equal(a.smoothed, 500.0 * (1 - exp(-2.0)), 1e-9);
}

/* An update older than the state changes the held value only: dt = 0. */
static void test_out_of_order(void **state)
{
    sm_state s = { 0 };
    sm_update(&s, 10000, 100.0, TAU);
    sm_update(&s, 70000, 50.0, TAU);
    sm_state before = s;
    sm_update(&s, 20000, 80.0, TAU);
    assert_int_equal(s.ts_ms, before.ts_ms);
    assert_float_equal(s.smoothed, before.smoothed, 0);
    assert_float_equal(s.trend_per_ms, before.trend_per_ms, 0);
    assert_float_equal(s.value, 80.0, 0);
    /* Equal ts: the same. */
    sm_update(&s, 70000, 60.0, TAU);
    assert_float_equal(s.smoothed, before.smoothed, 0);
    assert_float_equal(s.trend_per_ms, before.trend_per_ms, 0);
    assert_float_equal(s.value, 60.0, 0);
    /* Later updates relax towards the held 60. */
    sm_update(&s, 70000 + TAU, 60.0, TAU);
    assert_float_equal(s.smoothed, 60 + (before.smoothed - 60) * exp(-1.0), 1e-9);
}

/* A ramp of R per hour, sampled every minute, gives a trend converging to R with its sign. */
static void test_trend_on_ramp(void **state)
{
    const double per_hour[] = { -120.0, 60.0 };
    for (size_t k = 0; k < 2; k++) {
        sm_state s = { 0 };
        double x = 1000.0;
        for (int64_t t = 0; t <= 4 * 3600000; t += 60000) {
            sm_update(&s, t, x, TAU);
            x += per_hour[k] / 60.0;
        }
        assert_float_equal(sm_trend_per_hour(&s), per_hour[k], fabs(per_hour[k]) * 0.02);
    }
}

/* A single step: the trend points the way of the step and never overshoots the smoothed slope. */
static void test_trend_after_step(void **state)
{
    sm_state s = { 0 };
    sm_update(&s, 0, 100.0, TAU);
    sm_update(&s, 1000, 0.0, TAU);   /* free drops to 0 */
    sm_update(&s, 61000, 0.0, TAU);
    double slope = (s.smoothed - 100.0) / 60000.0;
    assert_true(s.trend_per_ms < 0);
    assert_true(s.trend_per_ms >= slope);
}

static void test_projection(void **state)
{
    sm_state s = { 0 };
    sm_update(&s, 0, 200.0, TAU);
    sm_update(&s, 60000, 100.0, TAU);
    sm_state before = s;
    assert_float_equal(sm_smoothed_at(&s, 60000, TAU), s.smoothed, 0);
    assert_float_equal(sm_smoothed_at(&s, 0, TAU), s.smoothed, 0);   /* never backwards */
    assert_float_equal(sm_smoothed_at(&s, 60000 + TAU, TAU),
                       100.0 + (200.0 - 100.0) * exp(-1.0), 1e-9);
    assert_float_equal(sm_smoothed_at(&s, 60000 + 100 * (int64_t)TAU, TAU), 100.0, 1e-9);
    assert_memory_equal(&s, &before, sizeof s);  /* the state is untouched */
    /* The projection equals a real update at that time with the same value. */
    double p = sm_smoothed_at(&s, 200000, TAU);
    sm_update(&s, 200000, 100.0, TAU);
    assert_float_equal(s.smoothed, p, 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_value),
        cmocka_unit_test(test_constant_stays),
        cmocka_unit_test(test_irregular_steps_exact),
        cmocka_unit_test(test_step_splitting_invariant),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_trend_on_ramp),
        cmocka_unit_test(test_trend_after_step),
        cmocka_unit_test(test_projection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
