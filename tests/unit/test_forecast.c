/* Unit tests for forecast, through its API: persistence for a new lot, learning a daily
 * pattern in local time (across the 2016-10-30 daylight-saving change), clamping of forecasts
 * and intervals to [0, capacity], full_at, mae, determinism, and keeping what was learned
 * across a change of horizons, and the model going out and back in as data (a restart). The
 * engine is pure: no store, no loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forecast.h"
#include "util.h"

#define MINUTE 60000LL
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define CAPACITY 200

typedef struct fixture {
    cfg_config cfg;
    int64_t horizons[3];
    fc_engine *fc;
    lot *l;
} fixture;

static char lot_id[] = "L1", lot_name[] = "Test lot";
static char out_prefix[] = "parking/out", redis_prefix[] = "parkd:", zone[] = "Europe/London";

static lot *make_lot(void)
{
    cfg_lot lc = { .id = lot_id, .name = lot_name, .capacity = CAPACITY,
                   .source = CFG_SOURCE_COUNT, .stale_after_ms = HOUR, .almost_full = 0.9,
                   .hysteresis = 0.05 };
    return lot_new(&lc, 5 * MINUTE);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->horizons[0] = 30 * MINUTE;
    f->horizons[1] = 60 * MINUTE;
    f->horizons[2] = 120 * MINUTE;
    f->cfg.mqtt.output_prefix = out_prefix;
    f->cfg.redis.prefix = redis_prefix;
    f->cfg.forecast.horizons_ms = f->horizons;
    f->cfg.forecast.n_horizons = 3;
    f->cfg.history.interval_ms = MINUTE;
    f->cfg.history.max_len = 1000;
    f->cfg.smoothing.tau_ms = 5 * MINUTE;
    f->cfg.timezone = zone;
    util_set_timezone(zone);    /* as main does, before the engine */
    f->fc = fc_new(&f->cfg);
    f->l = make_lot();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fc_forget_lot(f->fc, f->l);
    lot_free(f->l);
    fc_free(f->fc);
    free(f);
    return 0;
}

/* Local time in Europe/London (setup set TZ). */
static int64_t at(int y, int mo, int d, int h, int mi)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                     .tm_min = mi, .tm_isdst = -1 };
    return (int64_t)mktime(&tm) * 1000;
}

/* The :model hash as Redis would hold it: the fields fc_model_changes wrote, latest value. */
typedef struct model_hash {
    char **fields, **values;
    size_t n, cap_fields, cap_values;
} model_hash;

static void model_emit(void *ctx, const char *field, const char *value)
{
    model_hash *m = ctx;
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->fields[i], field) == 0) {
            free(m->values[i]);
            m->values[i] = util_xstrdup(value);
            return;
        }
    }
    util_grow((void **)&m->fields, &m->cap_fields, m->n + 1, sizeof *m->fields);
    util_grow((void **)&m->values, &m->cap_values, m->n + 1, sizeof *m->values);
    m->fields[m->n] = util_xstrdup(field);
    m->values[m->n] = util_xstrdup(value);
    m->n++;
}

static void model_free(model_hash *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->fields[i]);
        free(m->values[i]);
    }
    free(m->fields);
    free(m->values);
}

/* One count message for lot L of engine FC, as the pipeline handles it: observe, then the
 * changed model fields into M (if not NULL). */
static void feed_model(fc_engine *fc, lot *l, int64_t ts, int64_t occupied, model_hash *m)
{
    pl_topic t = { .kind = PL_KIND_COUNT };
    strcpy(t.lot, l->id);
    pl_event ev = { .kind = PL_KIND_COUNT, .has_ts = true, .ts_ms = ts, .value = occupied };
    lot_apply(l, &t, &ev, ts, 10000);
    hist_entry e;
    fc_observe(fc, l, &e);
    if (m)
        fc_model_changes(fc, l, model_emit, m);
    lot_clear_dirty(l);
}

static void feed_lot(fc_engine *fc, lot *l, int64_t ts, int64_t occupied)
{
    feed_model(fc, l, ts, occupied, NULL);
}

static void feed(fixture *f, int64_t ts, int64_t occupied)
{
    feed_lot(f->fc, f->l, ts, occupied);
}

/* The forecast JSON as published, malloc'd; NULL when the lot has no data. */
static char *fc_format_forecast(fc_engine *fc, lot *l, size_t *len)
{
    fc_forecast fcast;
    if (!fc_forecast_lot(fc, l, &fcast))
        return NULL;
    char buf[4096];
    *len = fc_format_json(l->id, &fcast, buf, sizeof buf);
    assert_true(*len > 0);
    return util_xstrndup(buf, *len);
}

/* A working day: empty at 07:00, full from 11:00 to 14:00, empty again by 19:00. */
static int64_t pattern(int minute_of_day)
{
    double h = minute_of_day / 60.0;
    double occ = h < 7 ? 0 : h < 11 ? (h - 7) / 4 : h < 14 ? 1 : h < 19 ? 1 - (h - 14) / 5 : 0;
    return (int64_t)llround(occ * CAPACITY);
}

/* Days of the pattern, readings every 20 minutes from 06:00 to 20:00 local time. */
static void feed_days(fixture *f, int y, int mo, int d0, int days, int extra)
{
    for (int d = d0; d < d0 + days; d++)
        for (int m = 6 * 60; m <= 20 * 60; m += 20)
            feed(f, at(y, mo, d, m / 60, m % 60), pattern(m) + extra);
}

static json_t *forecast(fixture *f)
{
    size_t len;
    char *text = fc_format_forecast(f->fc, f->l, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    free(text);
    assert_non_null(j);
    return j;
}

static double hnum(json_t *j, size_t i, const char *key)
{
    json_t *v = json_object_get(json_array_get(json_object_get(j, "horizons"), i), key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

/* Every published number within [0, capacity], and low <= free <= high. */
static void assert_bounded(json_t *j)
{
    for (size_t i = 0; i < 3; i++) {
        double lo = hnum(j, i, "low"), fr = hnum(j, i, "free"), hi = hnum(j, i, "high");
        assert_true(0 <= lo && lo <= fr && fr <= hi && hi <= CAPACITY);
    }
}

static void test_no_data_no_forecast(void **state)
{
    fixture *f = *state;
    size_t len;
    assert_null(fc_format_forecast(f->fc, f->l, &len));
}

/* A lot seen for the first time forecasts persistence, with no mae yet. */
static void test_new_lot_persistence(void **state)
{
    fixture *f = *state;
    feed(f, at(2016, 10, 4, 8, 0), 50);
    json_t *j = forecast(f);
    assert_string_equal(json_string_value(json_object_get(j, "lot")), "L1");
    assert_string_equal(json_string_value(json_object_get(j, "ts")), "2016-10-04T07:00:00Z");
    json_t *hz = json_object_get(j, "horizons");
    assert_int_equal(json_array_size(hz), 3);
    static const int minutes[] = { 30, 60, 120 };
    static const char *const ts[] = { "2016-10-04T07:30:00Z", "2016-10-04T08:00:00Z",
                                      "2016-10-04T09:00:00Z" };
    for (size_t i = 0; i < 3; i++) {
        json_t *h = json_array_get(hz, i);
        assert_int_equal(json_integer_value(json_object_get(h, "minutes")), minutes[i]);
        assert_string_equal(json_string_value(json_object_get(h, "ts")), ts[i]);
        assert_float_equal(hnum(j, i, "free"), 150.0, 1e-9);
        assert_true(json_is_null(json_object_get(h, "mae")));
    }
    assert_bounded(j);
    assert_true(json_is_null(json_object_get(j, "full_at")));
    json_decref(j);
}

/* Three weeks of a daily pattern: the forecasts follow it, the intervals are learned, mae is
 * published, and full_at points at the pattern's 11:00. */
static void test_learns_daily_pattern(void **state)
{
    fixture *f = *state;
    feed_days(f, 2016, 10, 3, 21, 0);
    feed(f, at(2016, 10, 24, 8, 0), pattern(8 * 60));
    feed(f, at(2016, 10, 24, 9, 0), pattern(9 * 60));
    json_t *j = forecast(f);
    static const int minutes[] = { 9 * 60 + 30, 10 * 60, 11 * 60 };
    for (size_t i = 0; i < 3; i++) {
        assert_float_equal(hnum(j, i, "free"), CAPACITY - pattern(minutes[i]), 4.0);
        json_t *mae = json_object_get(json_array_get(json_object_get(j, "horizons"), i), "mae");
        assert_true(json_is_number(mae) && json_number_value(mae) < 5.0);
    }
    assert_bounded(j);
    const char *full_at = json_string_value(json_object_get(j, "full_at"));
    assert_non_null(full_at);
    assert_true(strcmp(full_at, "2016-10-24T09:45:00Z") >= 0 &&
                strcmp(full_at, "2016-10-24T10:15:00Z") <= 0);   /* 11:00 BST = 10:00Z */
    json_decref(j);
}

/* The pattern learned in summer time is found at the same local times after the clocks went
 * back on 2016-10-30: 09:00 GMT forecasts what 09:00 BST looked like. */
static void test_pattern_across_dst(void **state)
{
    fixture *f = *state;
    feed_days(f, 2016, 10, 9, 21, 0);          /* 9 to 29 October, BST */
    feed(f, at(2016, 10, 31, 8, 0), pattern(8 * 60));   /* Monday, GMT */
    feed(f, at(2016, 10, 31, 9, 0), pattern(9 * 60));
    json_t *j = forecast(f);
    assert_string_equal(json_string_value(json_object_get(j, "ts")), "2016-10-31T09:00:00Z");
    assert_float_equal(hnum(j, 0, "free"), CAPACITY - pattern(9 * 60 + 30), 4.0);
    assert_float_equal(hnum(j, 1, "free"), CAPACITY - pattern(10 * 60), 4.0);
    json_decref(j);
}

/* A much busier day than usual pushes the model beyond capacity: clamped, and full now means
 * full_at = now. */
static void test_clamped_to_capacity(void **state)
{
    fixture *f = *state;
    feed_days(f, 2016, 10, 3, 14, 0);
    for (int m = 6 * 60; m <= 9 * 60; m += 20) {
        int64_t occ = pattern(m) + 90;
        feed(f, at(2016, 10, 17, m / 60, m % 60), occ > CAPACITY ? CAPACITY : occ);
        json_t *j = forecast(f);
        assert_bounded(j);
        json_decref(j);
    }
    feed(f, at(2016, 10, 17, 9, 20), CAPACITY);
    json_t *j = forecast(f);
    assert_bounded(j);
    assert_float_equal(hnum(j, 2, "free"), 0.0, 0);
    assert_string_equal(json_string_value(json_object_get(j, "full_at")),
                        json_string_value(json_object_get(j, "ts")));
    json_decref(j);
    /* and an empty evening, far below the usual: never above capacity */
    feed(f, at(2016, 10, 17, 12, 0), 0);
    j = forecast(f);
    assert_bounded(j);
    assert_true(json_is_null(json_object_get(j, "full_at")));
    json_decref(j);
}

/* Two engines fed the same events say exactly the same: nothing depends on the wall clock. */
static void test_deterministic(void **state)
{
    fixture *f = *state;
    fc_engine *fc2 = fc_new(&f->cfg);
    lot *l2 = make_lot();
    unsigned seed = 99;
    for (int64_t t = at(2016, 10, 3, 0, 0); t < at(2016, 10, 20, 0, 0); t += 7 * MINUTE) {
        seed = seed * 1103515245u + 12345u;
        int64_t occ = (int64_t)((seed >> 8) % (CAPACITY + 1));
        feed(f, t, occ);
        feed_lot(fc2, l2, t, occ);
    }
    size_t n1, n2;
    char *a = fc_format_forecast(f->fc, f->l, &n1), *b = fc_format_forecast(fc2, l2, &n2);
    assert_string_equal(a, b);
    free(a);
    free(b);
    fc_forget_lot(fc2, l2);
    lot_free(l2);
    fc_free(fc2);
}

/* Repeats and changes at the same event time, and a reload that changes the horizons: the
 * horizons still configured keep what they learned. */
static void test_same_time_and_reload(void **state)
{
    fixture *f = *state;
    feed_days(f, 2016, 10, 3, 14, 0);
    int64_t t = at(2016, 10, 17, 9, 0);
    feed(f, t, 80);
    hist_entry e;
    fc_observe(f->fc, f->l, &e);       /* e.g. a stale flag: no new event time */
    json_t *before = forecast(f);
    int64_t hz[2] = { 15 * MINUTE, 60 * MINUTE };
    cfg_config next = f->cfg;
    next.forecast.horizons_ms = hz;
    next.forecast.n_horizons = 2;
    fc_set_config(f->fc, &next);
    json_t *after = forecast(f);
    assert_int_equal(json_array_size(json_object_get(after, "horizons")), 2);
    assert_float_equal(hnum(after, 1, "free"), hnum(before, 1, "free"), 1e-9);
    assert_float_equal(hnum(after, 1, "low"), hnum(before, 1, "low"), 1e-9);
    assert_true(json_is_null(json_object_get(json_array_get(json_object_get(after, "horizons"), 0),
                                             "mae")));
    json_decref(before);
    json_decref(after);
    fc_set_config(f->fc, &f->cfg);
}

/* What fc_model_changes emitted, restored into a new engine (a restart), forecasts exactly as
 * the engine that learned it; with the whole model marked dirty, a second engine restored from
 * only what that writes into an emptied :model (a Redis that lost its data) gets the same. */
static void test_model_round_trip(void **state)
{
    fixture *f = *state;
    model_hash m = { 0 }, full = { 0 };
    unsigned seed = 7;
    for (int64_t t = at(2016, 10, 3, 0, 0); t < at(2016, 10, 17, 0, 0); t += 11 * MINUTE) {
        seed = seed * 1103515245u + 12345u;
        feed_model(f->fc, f->l, t, (int64_t)((seed >> 8) % (CAPACITY + 1)), &m);
    }
    assert_true(m.n > 10);
    assert_false(fc_model_take_reset(f->fc, f->l));
    fc_mark_all_dirty(f->fc, f->l);
    assert_true(fc_model_take_reset(f->fc, f->l));     /* the caller clears :model first */
    assert_false(fc_model_take_reset(f->fc, f->l));
    fc_model_changes(f->fc, f->l, model_emit, &full);
    assert_true(full.n > 10);       /* every chunk that differs from an empty model's */
    model_hash none = { 0 };
    fc_model_changes(f->fc, f->l, model_emit, &none);
    assert_int_equal(none.n, 0);    /* nothing changed: nothing emitted, not even "v" */
    size_t n1, n2;
    char *want = fc_format_forecast(f->fc, f->l, &n1);
    model_hash *sources[] = { &m, &full };
    for (size_t k = 0; k < 2; k++) {
        fc_engine *fc2 = fc_new(&f->cfg);
        lot *l2 = make_lot();
        l2->has_data = f->l->has_data;      /* the lot's own state comes back from :state */
        l2->ts_ms = f->l->ts_ms;
        l2->occupied = f->l->occupied;
        l2->status = f->l->status;
        fc_restore_lot(fc2, l2, sources[k]->n, (const char *const *)sources[k]->fields,
                       (const char *const *)sources[k]->values);
        char *got = fc_format_forecast(fc2, l2, &n2);
        assert_string_equal(got, want);
        free(got);
        fc_forget_lot(fc2, l2);
        lot_free(l2);
        fc_free(fc2);
    }
    free(want);
    model_free(&m);
    model_free(&full);
}

/* A lot of the fixture's config with F's lot state, its model restored from N FIELDS/VALUES
 * into engine *FC2 (a restart). */
static lot *restored_lot(const fixture *f, fc_engine *fc2, size_t n, char **fields, char **values)
{
    lot *l2 = make_lot();
    l2->has_data = f->l->has_data;
    l2->ts_ms = f->l->ts_ms;
    l2->occupied = f->l->occupied;
    l2->status = f->l->status;
    fc_restore_lot(fc2, l2, n, (const char *const *)fields, (const char *const *)values);
    return l2;
}

/* A :model written by the previous version restores what this one reads, drops its 28-day ring
 * ("r...") and a 512-error ring cleanly, and is rewritten whole on the next write (the caller
 * clears the hash first), without the dropped fields. */
static void test_model_of_earlier_version(void **state)
{
    fixture *f = *state;
    model_hash m = { 0 };
    feed_days(f, 2016, 10, 3, 14, 0);
    fc_mark_all_dirty(f->fc, f->l);
    fc_model_take_reset(f->fc, f->l);
    fc_model_changes(f->fc, f->l, model_emit, &m);
    size_t n1, n2;
    char *want = fc_format_forecast(f->fc, f->l, &n1);
    /* the old ring's fields beside the new ones: ignored, the forecast is the same */
    model_emit(&m, "r3", "17000");
    model_emit(&m, "r27.11", "0.1 - - 0.4 - - - 1");
    fc_engine *fc2 = fc_new(&f->cfg);
    lot *l2 = restored_lot(f, fc2, m.n, m.fields, m.values);
    char *got = fc_format_forecast(fc2, l2, &n2);
    assert_string_equal(got, want);
    free(got);
    assert_true(fc_model_take_reset(fc2, l2));
    model_hash rewritten = { 0 };
    fc_model_changes(fc2, l2, model_emit, &rewritten);
    assert_true(rewritten.n + 2 == m.n);                /* all but the old ring's two */
    for (size_t i = 0; i < rewritten.n; i++)
        assert_int_not_equal(rewritten.fields[i][0], 'r');
    fc_forget_lot(fc2, l2);
    lot_free(l2);
    fc_free(fc2);
    /* a full ring of 512 errors has no place in this one: the lot's intervals start afresh */
    model_emit(&m, "e30", "100 512");
    fc2 = fc_new(&f->cfg);
    l2 = restored_lot(f, fc2, m.n, m.fields, m.values);
    assert_true(fc_model_take_reset(fc2, l2));
    json_t *j = forecast(&(fixture){ .fc = fc2, .l = l2 });
    assert_true(json_is_null(json_object_get(json_array_get(json_object_get(j, "horizons"), 0),
                                             "mae")));
    json_decref(j);
    fc_forget_lot(fc2, l2);
    lot_free(l2);
    fc_free(fc2);
    free(want);
    model_free(&m);
    model_free(&rewritten);
}

/* A lot that never reported has no model: nothing allocated, nothing written, and a restore of
 * an empty :model leaves it so. */
static void test_no_model_without_data(void **state)
{
    fixture *f = *state;
    fc_restore_lot(f->fc, f->l, 0, NULL, NULL);
    hist_entry e;
    assert_false(fc_observe(f->fc, f->l, &e));
    fc_mark_all_dirty(f->fc, f->l);
    assert_false(fc_model_take_reset(f->fc, f->l));
    model_hash m = { 0 };
    fc_model_changes(f->fc, f->l, model_emit, &m);
    assert_int_equal(m.n, 0);
    assert_null(f->l->fc_data);
    feed(f, at(2016, 10, 4, 8, 0), 50);
    assert_non_null(f->l->fc_data);
}

/* A forecast too long for the caller's buffer is refused, not cut. */
static void test_format_does_not_truncate(void **state)
{
    fixture *f = *state;
    feed(f, at(2016, 10, 4, 8, 0), 50);
    fc_forecast fcast;
    assert_true(fc_forecast_lot(f->fc, f->l, &fcast));
    char buf[4096];
    size_t n = fc_format_json(f->l->id, &fcast, buf, sizeof buf);
    assert_true(n > 0);
    for (size_t size = 0; size <= n; size++)
        assert_int_equal(fc_format_json(f->l->id, &fcast, buf, size), 0);
    assert_int_equal(fc_format_json(f->l->id, &fcast, buf, n + 1), n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_data_no_forecast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_lot_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_learns_daily_pattern, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pattern_across_dst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clamped_to_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_time_and_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_of_earlier_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_model_without_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_does_not_truncate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
