/* Unit tests for smooth: first value, exact irregular steps, out-of-order updates, the trend as
 * a smoothed rate (ramps, steps, irregular and split steps), restart from saved state,
 * projection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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

/* A ramp sampled at irregular, bursty times still gives its rate: the estimate does not depend
 * on the spacing of the samples, only on the signal. */
static void test_trend_on_irregular_ramp(void **state)
{
    static const int64_t gaps[] = { 1000, 17000, 250, 90000, 3000, 45000, 120000, 500 };
    const double per_ms = -50.0 / 3600000.0;
    sm_state s = { 0 };
    int64_t t = 0;
    for (int i = 0; t <= 6 * 3600000; i++) {
        sm_update(&s, t, 2000.0 + per_ms * (double)t, TAU);
        t += gaps[i % 8];
    }
    /* A held (piecewise-constant) ramp lags by half a step on average; the rate is exact. */
    assert_float_equal(sm_trend_per_hour(&s), -50.0, 2.5);
}

/* Splitting a held interval into many updates with the same value changes neither the smoothed
 * value nor the trend: the closed form is exact for any step. */
static void test_trend_split_invariant(void **state)
{
    sm_state a = { 0 }, b = { 0 };
    for (int k = 0; k < 2; k++) {
        sm_state *s = k ? &b : &a;
        sm_update(s, 0, 100.0, TAU);
        sm_update(s, 60000, 40.0, TAU);
        sm_update(s, 90000, 70.0, TAU);
    }
    sm_update(&a, 900000, 70.0, TAU);
    for (int64_t t = 90000 + 7000; t < 900000; t += 7000)
        sm_update(&b, t, 70.0, TAU);
    sm_update(&b, 900000, 70.0, TAU);
    assert_float_equal(a.smoothed, b.smoothed, 1e-9);
    assert_float_equal(a.trend_per_ms, b.trend_per_ms, 1e-15);
}

/* After the signal goes flat the trend decays to zero, and the smoothed value settles. */
static void test_trend_decays_when_flat(void **state)
{
    sm_state s = { 0 };
    for (int64_t t = 0; t <= 3600000; t += 60000)
        sm_update(&s, t, (double)t / 10000.0, TAU);
    assert_true(sm_trend_per_hour(&s) > 300.0);
    sm_update(&s, 3600000 + 40 * (int64_t)TAU, 360.0, TAU);
    assert_float_equal(sm_trend_per_hour(&s), 0.0, 1e-6);
    assert_float_equal(s.smoothed, 360.0, 1e-6);
}

/* The first value starts everything; the second gives a trend of its sign. */
static void test_second_value_trend(void **state)
{
    sm_state s = { 0 };
    sm_update(&s, 5000, 10.0, TAU);
    sm_update(&s, 65000, 20.0, TAU);   /* 10 was held for a minute: nothing moves yet */
    assert_float_equal(s.smoothed, 10.0, 0);
    assert_float_equal(s.trend_per_ms, 0.0, 0);
    sm_update(&s, 125000, 20.0, TAU);
    assert_true(s.smoothed > 10.0 && s.smoothed < 20.0);
    assert_true(s.trend_per_ms > 0.0);
}

/* A restart restores the five fields as text (store.c writes them with %.17g); the restored
 * state must continue exactly like the one that never stopped. */
static void test_restart_continues_exactly(void **state)
{
    sm_state live = { 0 };
    int64_t t = 0;
    for (int i = 0; i < 40; i++, t += 13000 + 7000 * (i % 3))
        sm_update(&live, t, 300.0 + 40.0 * sin(i * 0.3), TAU);
    char buf[5][40];
    snprintf(buf[0], sizeof buf[0], "%d", live.started);
    snprintf(buf[1], sizeof buf[1], "%lld", (long long)live.ts_ms);
    snprintf(buf[2], sizeof buf[2], "%.17g", live.value);
    snprintf(buf[3], sizeof buf[3], "%.17g", live.smoothed);
    snprintf(buf[4], sizeof buf[4], "%.17g", live.trend_per_ms);
    sm_state back = {
        .started = atoi(buf[0]) == 1, .ts_ms = strtoll(buf[1], NULL, 10),
        .value = strtod(buf[2], NULL), .smoothed = strtod(buf[3], NULL),
        .trend_per_ms = strtod(buf[4], NULL),
    };
    assert_true(back.started == live.started && back.ts_ms == live.ts_ms);
    assert_float_equal(back.value, live.value, 0);
    assert_float_equal(back.smoothed, live.smoothed, 0);
    assert_float_equal(back.trend_per_ms, live.trend_per_ms, 0);
    /* lot.c re-holds the value at dt = 0 after a restore: a no-op for the trend */
    sm_update(&back, back.ts_ms, back.value, TAU);
    for (int i = 0; i < 20; i++, t += 29000) {
        sm_update(&live, t, 250.0 + i, TAU);
        sm_update(&back, t, 250.0 + i, TAU);
    }
    assert_float_equal(back.smoothed, live.smoothed, 0);
    assert_float_equal(back.trend_per_ms, live.trend_per_ms, 0);
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
        cmocka_unit_test(test_trend_on_irregular_ramp),
        cmocka_unit_test(test_trend_split_invariant),
        cmocka_unit_test(test_trend_decays_when_flat),
        cmocka_unit_test(test_second_value_trend),
        cmocka_unit_test(test_restart_continues_exactly),
        cmocka_unit_test(test_projection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
