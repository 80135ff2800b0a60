/* Unit tests for output: the summary's pages (SPEC §4 `<out>/summary`) and the size bounds of
 * every output, at the largest lot the configuration allows. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forecast.h"
#include "output.h"

#define TS 1475567982000        /* 2016-10-04T07:59:42Z */
#define WIDE_CAPACITY 10000000  /* the largest capacity the configuration allows */

/* A lot with data: OCCUPIED of CAPACITY, at TS. */
static lot *make_lot(const char *id, const char *name, int64_t capacity, int64_t occupied)
{
    cfg_lot c = { .id = (char *)id, .name = (char *)name, .capacity = capacity,
                  .source = CFG_SOURCE_COUNT, .has_position = true, .lat = 52.4781,
                  .lon = -1.9086, .stale_after_ms = 3600000, .almost_full = 0.9,
                  .hysteresis = 0.05 };
    lot *l = lot_new(&c, 300000);
    l->has_data = true;
    l->occupied = occupied;
    l->ts_ms = TS;
    l->status = LOT_STATUS_OPEN;
    return l;
}

/* The largest lot entry there can be: a 64-byte id, a name of CFG_NAME_MAX control characters
 * (each escaped as \u00XX), the widest numbers and status. */
static lot *make_widest_lot(int i)
{
    char id[65], name[CFG_NAME_MAX + 1];
    snprintf(id, sizeof id, "%064d", i);
    memset(name, '\x01', CFG_NAME_MAX);
    name[CFG_NAME_MAX] = '\0';
    lot *l = make_lot(id, name, WIDE_CAPACITY, 0);
    l->lat = -89.123456789;
    l->lon = -179.123456789;
    l->status = LOT_STATUS_ALMOST_FULL;
    l->smooth.smoothed = -1e7;
    l->smooth.trend_per_ms = -1e7;     /* |trend| <= capacity / tau, tau >= 1 ms */
    return l;
}

static void free_lots(lot **lots, size_t n)
{
    for (size_t i = 0; i < n; i++)
        lot_free(lots[i]);
    free(lots);
}

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("not JSON (%s): %.200s", err.text, text);
    return j;
}

static void test_unsplit_summary(void **state)
{
    lot *lots[2] = { make_lot("A1", "Broad \"Street\"", 100, 60), make_lot("B2", "B2", 50, 50) };
    lots[1]->status = LOT_STATUS_FULL;
    lots[1]->has_position = false;
    size_t n;
    char **pages = out_format_summary_pages(lots, 2, 60000, &n);
    assert_non_null(pages);
    assert_int_equal(n, 1);
    /* what one json_dumps of the whole summary gave before pages, plus "pages":1 */
    assert_string_equal(pages[0],
        "{\"ts\":\"2016-10-04T07:59:42Z\",\"lots\":["
        "{\"lot\":\"A1\",\"name\":\"Broad \\\"Street\\\"\",\"free\":40,\"capacity\":100,"
        "\"status\":\"open\",\"stale\":false,\"lat\":52.4781,\"lon\":-1.9086},"
        "{\"lot\":\"B2\",\"name\":\"B2\",\"free\":0,\"capacity\":50,\"status\":\"full\","
        "\"stale\":false,\"lat\":null,\"lon\":null}],"
        "\"free\":40,\"capacity\":150,\"pages\":1}");
    out_free_pages(pages, n);
    lot_free(lots[0]);
    lot_free(lots[1]);
}

static void test_no_data_yet(void **state)
{
    lot *l = make_lot("A1", "A1", 100, 0);
    l->has_data = false;
    l->status = LOT_STATUS_UNKNOWN;
    size_t n;
    char **pages = out_format_summary_pages(&l, 1, 60000, &n);
    assert_non_null(pages);
    assert_int_equal(n, 1);
    assert_string_equal(pages[0],
        "{\"ts\":null,\"lots\":[{\"lot\":\"A1\",\"name\":\"A1\",\"free\":null,\"capacity\":100,"
        "\"status\":\"unknown\",\"stale\":false,\"lat\":52.4781,\"lon\":-1.9086}],"
        "\"free\":0,\"capacity\":0,\"pages\":1}");
    out_free_pages(pages, n);
    lot_free(l);
}

/* Checks PAGES as a client reassembles them: page 1's totals and "pages", pages 2…N labelled,
 * each at most MAX bytes, every lot once in configuration order; returns the lots seen. */
static size_t check_pages(char **pages, size_t n, size_t max, lot *const *lots, size_t n_lots)
{
    size_t seen = 0;
    int64_t free_total = 0, cap_total = 0;
    for (size_t i = 0; i < n_lots; i++) {
        free_total += lot_free_spaces(lots[i]);
        cap_total += lots[i]->capacity;
    }
    for (size_t k = 1; k <= n; k++) {
        assert_true(strlen(pages[k - 1]) <= max);
        json_t *p = parse(pages[k - 1]);
        assert_int_equal(json_integer_value(json_object_get(p, "pages")), n);
        if (k == 1) {
            assert_int_equal(json_integer_value(json_object_get(p, "free")), free_total);
            assert_int_equal(json_integer_value(json_object_get(p, "capacity")), cap_total);
            assert_null(json_object_get(p, "page"));
        } else {
            assert_int_equal(json_integer_value(json_object_get(p, "page")), k);
            assert_null(json_object_get(p, "free"));
        }
        assert_string_equal(json_string_value(json_object_get(p, "ts")), "2016-10-04T07:59:42Z");
        json_t *arr = json_object_get(p, "lots");
        assert_true(json_array_size(arr) > 0);
        for (size_t i = 0; i < json_array_size(arr); i++, seen++) {
            assert_true(seen < n_lots);
            const char *id = json_string_value(json_object_get(json_array_get(arr, i), "lot"));
            assert_string_equal(id, lots[seen]->id);
        }
        json_decref(p);
    }
    return seen;
}

static void test_split_summary(void **state)
{
    enum { N = 300 };
    lot **lots = calloc(N, sizeof *lots);
    for (int i = 0; i < N; i++) {
        char id[16], name[64];
        snprintf(id, sizeof id, "L%04d", i);
        snprintf(name, sizeof name, "Car park %04d, Example Street", i);
        lots[i] = make_lot(id, name, 100, i % 97);
    }
    size_t n;
    char **pages = out_format_summary_pages(lots, N, 4096, &n);
    assert_non_null(pages);
    assert_true(n >= 10);
    assert_int_equal(check_pages(pages, n, 4096, lots, N), N);
    /* greedy: a page other than the last is too full to take one more ~135-byte entry */
    for (size_t k = 0; k + 1 < n; k++)
        assert_true(strlen(pages[k]) > 4096 - 200);
    out_free_pages(pages, n);

    pages = out_format_summary_pages(lots, N, 60000, &n);
    assert_non_null(pages);
    assert_int_equal(n, 1);
    assert_int_equal(check_pages(pages, n, 60000, lots, N), N);
    out_free_pages(pages, n);
    free_lots(lots, N);
}

/* The smallest summary_max_bytes holds the totals and two of the largest entries. */
static void test_widest_lots_fit_the_minimum(void **state)
{
    enum { N = 5 };
    lot **lots = calloc(N, sizeof *lots);
    for (int i = 0; i < N; i++)
        lots[i] = make_widest_lot(i);
    size_t n;
    char **pages = out_format_summary_pages(lots, N, CFG_SUMMARY_MIN_BYTES, &n);
    assert_non_null(pages);
    assert_int_equal(n, 3);
    assert_int_equal(check_pages(pages, n, CFG_SUMMARY_MIN_BYTES, lots, N), N);
    out_free_pages(pages, n);
    free_lots(lots, N);
}

static void test_entry_larger_than_a_page(void **state)
{
    lot *l = make_lot("A1", "A1", 100, 0);
    size_t n = 7;
    assert_null(out_format_summary_pages(&l, 1, 100, &n));
    assert_int_equal(n, 0);
    lot_free(l);
}

/* OUT_JSON_MAX holds the availability of the widest lot, with room to spare. */
static void test_availability_bound(void **state)
{
    lot *l = make_widest_lot(1);
    /* and closed, with the widest reason (control characters) and an until */
    char reason[PL_REASON_MAX + 1];
    memset(reason, '\x01', PL_REASON_MAX);
    reason[PL_REASON_MAX] = '\0';
    assert_true(lot_set_closure(l, true, reason, true, 253402300799000LL, TS));
    char *name = out_name_json(l->name);
    assert_int_equal(strlen(name), 6 * CFG_NAME_MAX + 2);
    char buf[OUT_JSON_MAX];
    size_t len = out_format_availability(l, name, buf, sizeof buf);
    assert_true(len > 0 && len < 3072);    /* OUT_JSON_MAX 4096 leaves room */
    json_decref(parse(buf));
    free(name);
    lot_free(l);
}


/* The widest lot with groups: CFG_MAX_ZONES zones with 64-byte ids and CFG_ZONE_NAME_MAX names of
 * control characters, every category, unknown bays counted, closed with the widest reason. */
static lot *make_widest_grouped_lot(int i)
{
    static char ids[CFG_MAX_ZONES][65], name[CFG_ZONE_NAME_MAX + 1], lot_id[65];
    static char lot_name[CFG_NAME_MAX + 1];
    static char *pattern[] = {"*"};
    static cfg_zone zones[CFG_MAX_ZONES];
    memset(name, '\x01', CFG_ZONE_NAME_MAX);
    memset(lot_name, '\x01', CFG_NAME_MAX);
    snprintf(lot_id, sizeof lot_id, "%064d", i);
    for (int z = 0; z < CFG_MAX_ZONES; z++) {
        snprintf(ids[z], sizeof ids[z], "%064d", z);
        zones[z] = (cfg_zone){ ids[z], name, WIDE_CAPACITY / CFG_MAX_ZONES, { NULL, 0, NULL, 0 } };
    }
    cfg_lot c = { .id = lot_id, .name = lot_name, .capacity = WIDE_CAPACITY,
                  .source = CFG_SOURCE_BAYS, .has_position = true, .lat = -89.123456789,
                  .lon = -179.123456789, .stale_after_ms = 3600000, .bay_stale_after_ms = 1,
                  .almost_full = 0.9, .hysteresis = 0.05, .zones = zones, .n_zones = CFG_MAX_ZONES };
    for (int k = 0; k < CFG_N_CATEGORIES; k++)
        c.categories[k] = (cfg_category_def){ true, WIDE_CAPACITY, { NULL, 0, pattern, 1 } };
    lot *l = lot_new(&c, 300000);
    l->has_data = true;
    l->ts_ms = TS;
    for (int z = 0; z < CFG_MAX_ZONES; z++)
        l->zones[z].unknown = WIDE_CAPACITY / CFG_MAX_ZONES;
    for (int k = 0; k < CFG_N_CATEGORIES; k++)
        l->cats[k].unknown = WIDE_CAPACITY;
    l->unknown = WIDE_CAPACITY;
    l->smooth.smoothed = -1e7;
    l->smooth.trend_per_ms = -1e7;
    char reason[PL_REASON_MAX + 1];
    memset(reason, '\x01', PL_REASON_MAX);
    reason[PL_REASON_MAX] = '\0';
    lot_set_closure(l, true, reason, true, 253402300799000LL, TS);
    return l;
}

/* OUT_JSON_MAX holds it, and its zones and categories read back as configured. */
static void test_availability_bound_with_groups(void **state)
{
    lot *l = make_widest_grouped_lot(1);
    char *name = out_name_json(l->name);
    static char buf[OUT_JSON_MAX];
    size_t len = out_format_availability(l, name, buf, sizeof buf);
    assert_true(len > 0 && len < 43 * 1024);
    json_t *j = parse(buf);
    json_t *zones = json_object_get(j, "zones");
    assert_int_equal(json_array_size(zones), CFG_MAX_ZONES);
    json_t *z0 = json_array_get(zones, 0);
    assert_string_equal(json_string_value(json_object_get(z0, "status")), "closed");
    assert_int_equal(json_integer_value(json_object_get(z0, "free")), 0);
    assert_int_equal(json_object_size(json_object_get(j, "categories")), CFG_N_CATEGORIES);
    json_decref(j);
    /* one byte short of its length: refused whole, never cut */
    assert_int_equal(out_format_availability(l, name, buf, len), 0);
    free(name);
    lot_free(l);
}

/* The smallest summary_max_bytes still holds such a lot's entry (with every category). */
static void test_grouped_lot_fits_the_minimum(void **state)
{
    enum { N = 3 };
    lot **lots = calloc(N, sizeof *lots);
    for (int i = 0; i < N; i++)
        lots[i] = make_widest_grouped_lot(i);
    size_t n;
    char **pages = out_format_summary_pages(lots, N, CFG_SUMMARY_MIN_BYTES, &n);
    assert_non_null(pages);
    assert_int_equal(check_pages(pages, n, CFG_SUMMARY_MIN_BYTES, lots, N), N);
    json_t *j = parse(pages[0]);
    json_t *e = json_array_get(json_object_get(j, "lots"), 0);
    assert_int_equal(json_object_size(json_object_get(e, "categories")), CFG_N_CATEGORIES);
    assert_null(json_object_get(e, "zones"));
    json_decref(j);
    out_free_pages(pages, n);
    free_lots(lots, N);
}

/* A closed lot says so, with its reason and until; reopened, the fields are gone. */
static void test_availability_closed(void **state)
{
    lot *l = make_lot("A", "a", 10, 4);
    assert_true(lot_set_closure(l, true, "works \"x\"", true, TS + 3600000, TS));
    char buf[OUT_JSON_MAX];
    assert_true(out_format_availability(l, "\"a\"", buf, sizeof buf) > 0);
    json_t *j = parse(buf);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "closed");
    assert_string_equal(json_string_value(json_object_get(j, "closed_reason")), "works \"x\"");
    assert_string_equal(json_string_value(json_object_get(j, "closed_until")),
                        "2016-10-04T08:59:42Z");
    assert_int_equal(json_integer_value(json_object_get(j, "free")), 6);
    json_decref(j);
    assert_true(lot_set_closure(l, false, NULL, false, 0, TS));
    assert_true(out_format_availability(l, "\"a\"", buf, sizeof buf) > 0);
    j = parse(buf);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "open");
    assert_null(json_object_get(j, "closed_reason"));
    assert_null(json_object_get(j, "closed_until"));
    json_decref(j);
    lot_free(l);
}

/* OUT_JSON_MAX holds a forecast of CFG_MAX_HORIZONS horizons at the widest numbers. */
static void test_forecast_bound(void **state)
{
    fc_forecast f = { .ts_ms = 253402300799000, .n = CFG_MAX_HORIZONS, .has_full_at = true,
                      .full_at_ms = 253402300799000 };
    for (size_t i = 0; i < f.n; i++)
        f.h[i] = (fc_horizon_forecast){ .minutes = 525600, .ts_ms = 253402300799000 + 31536000000,
                                        .free = WIDE_CAPACITY, .low = WIDE_CAPACITY,
                                        .high = WIDE_CAPACITY, .has_mae = true,
                                        .mae = WIDE_CAPACITY };
    char id[65], buf[OUT_JSON_MAX];
    memset(id, 'x', 64);
    id[64] = '\0';
    size_t len = fc_format_json(id, &f, buf, sizeof buf);
    assert_true(len > 0 && len < OUT_JSON_MAX);
    json_decref(parse(buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsplit_summary),
        cmocka_unit_test(test_no_data_yet),
        cmocka_unit_test(test_split_summary),
        cmocka_unit_test(test_widest_lots_fit_the_minimum),
        cmocka_unit_test(test_entry_larger_than_a_page),
        cmocka_unit_test(test_availability_bound),
        cmocka_unit_test(test_availability_closed),
        cmocka_unit_test(test_availability_bound_with_groups),
        cmocka_unit_test(test_grouped_lot_fits_the_minimum),
        cmocka_unit_test(test_forecast_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
