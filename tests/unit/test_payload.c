/* Unit tests of payload: topics and ids (SPEC §2), payloads and timestamps (SPEC §3). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "payload.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* 2016-10-04T07:59:42Z, the example time of SPEC §4. */
#define T0_S INT64_C(1475567982)
#define T0_MS (T0_S * 1000)

static const char *kind_name(enum pl_kind kind)
{
    return kind == PL_KIND_BAY ? "bay" : kind == PL_KIND_GATE ? "gate" : "count";
}

static enum pl_reject parse(enum pl_kind kind, const char *s, pl_event *ev)
{
    return pl_parse_payload(kind, s, strlen(s), ev);
}

static pl_event parse_ok(enum pl_kind kind, const char *s)
{
    pl_event ev;
    if (parse(kind, s, &ev) != PL_OK)
        fail_msg("%s payload rejected: '%s'", kind_name(kind), s);
    assert_int_equal(ev.kind, kind);
    return ev;
}

/* Each case must be malformed, and leave the event zeroed. */
static void expect_malformed(enum pl_kind kind, const char *const *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pl_event ev;
        if (parse(kind, cases[i], &ev) != PL_MALFORMED)
            fail_msg("%s payload accepted: '%s'", kind_name(kind), cases[i]);
        assert_false(ev.has_ts);
        assert_false(ev.has_seq);
    }
}

static int64_t time_ok(const char *s)
{
    int64_t ms = -42;
    if (pl_parse_time(s, strlen(s), &ms) != 0)
        fail_msg("time rejected: '%s'", s);
    return ms;
}

static enum pl_reject topic(const char *t, const char *prefix, pl_topic *out)
{
    return pl_parse_topic(t, prefix, out);
}

/* ---- names -------------------------------------------------------------------------------- */

static void test_reject_names(void **state)
{
    static const char *const want[PL_REJECT_COUNT] = {
        "ok", "bad_topic", "bad_id", "unknown_lot", "malformed",
        "oversize", "wrong_kind", "future", "too_many_bays", "ambiguous_zone",
    };
    for (int r = 0; r < PL_REJECT_COUNT; r++)
        assert_string_equal(pl_reject_name((enum pl_reject)r), want[r]);
    assert_non_null(pl_reject_name(PL_REJECT_COUNT));
}

/* ---- ids and topics ----------------------------------------------------------------------- */

static void test_valid_id(void **state)
{
    char id[PL_ID_MAX + 2];
    memset(id, 'a', sizeof id);
    assert_true(pl_valid_id("BHMBCCMKT01", 11));
    assert_true(pl_valid_id("a", 1));
    assert_true(pl_valid_id("0_a.b-c", 7));
    assert_true(pl_valid_id(id, PL_ID_MAX));
    assert_false(pl_valid_id(id, PL_ID_MAX + 1));
    assert_false(pl_valid_id("", 0));
    assert_false(pl_valid_id(".", 1));
    assert_false(pl_valid_id("..", 2));
    assert_false(pl_valid_id("_a", 2));
    assert_false(pl_valid_id("-a", 2));
    assert_false(pl_valid_id("a b", 3));
    assert_false(pl_valid_id("a/b", 3));
    assert_false(pl_valid_id("a\0b", 3));
    assert_false(pl_valid_id("caf\xc3\xa9", 5));
    assert_true(pl_valid_id("ab+", 2)); /* only LEN bytes count */
}

static void test_topic_each_kind(void **state)
{
    pl_topic t;
    assert_int_equal(topic("parking/BHM01/bay/B-17", "parking", &t), PL_OK);
    assert_int_equal(t.kind, PL_KIND_BAY);
    assert_string_equal(t.lot, "BHM01");
    assert_string_equal(t.sensor, "B-17");

    assert_int_equal(topic("parking/BHM01/gate/north.1", "parking", &t), PL_OK);
    assert_int_equal(t.kind, PL_KIND_GATE);
    assert_string_equal(t.lot, "BHM01");
    assert_string_equal(t.sensor, "north.1");

    assert_int_equal(topic("parking/BHM01/count", "parking", &t), PL_OK);
    assert_int_equal(t.kind, PL_KIND_COUNT);
    assert_string_equal(t.lot, "BHM01");
    assert_string_equal(t.sensor, "");
}

static void test_topic_prefix_with_slash(void **state)
{
    pl_topic t;
    assert_int_equal(topic("city/parking/L1/bay/7", "city/parking", &t), PL_OK);
    assert_string_equal(t.lot, "L1");
    assert_string_equal(t.sensor, "7");
    assert_int_equal(topic("city/parking/L1/count", "city/parking", &t), PL_OK);
    assert_int_equal(t.kind, PL_KIND_COUNT);
    assert_int_equal(topic("parking/L1/count", "city/parking", &t), PL_BAD_TOPIC);
    assert_int_equal(topic("city/parkingX/L1/count", "city/parking", &t), PL_BAD_TOPIC);
    assert_int_equal(topic("city/L1/count", "city/parking", &t), PL_BAD_TOPIC);
}

static void test_topic_bad_shapes(void **state)
{
    static const char *const bad[] = {
        "",
        "parking",
        "parking/",
        "parking/L1",
        "parking/L1/",
        "parking/L1/bay",
        "parking/L1/bay/",
        "parking/L1/gate",
        "parking/L1/count/",
        "parking/L1/count/x",
        "parking/L1/bay/7/extra",
        "parking/L1/gate/7/extra",
        "parking//bay/7",
        "parking/L1//7",
        "parking/L1/Bay/7",
        "parking/L1/BAY/7",
        "parking/L1/bays/7",
        "parking/L1/counts",
        "parking/L1/sensor/7",
        "parking/L1/bay/+",
        "parking/+/bay/7",
        "parking/L1/#",
        "parking/#",
        "parking/L1/bay/7#",
        "parkingX/L1/count",
        "Parking/L1/count",
        "/parking/L1/count",
        "other/L1/count",
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        pl_topic t;
        if (topic(bad[i], "parking", &t) != PL_BAD_TOPIC)
            fail_msg("topic not bad_topic: '%s'", bad[i]);
    }
}

static void test_topic_bad_ids(void **state)
{
    char buf[256];
    char id64[PL_ID_MAX + 1], id65[PL_ID_MAX + 2];
    pl_topic t;
    memset(id64, 'x', PL_ID_MAX);
    id64[PL_ID_MAX] = '\0';
    memset(id65, 'y', PL_ID_MAX + 1);
    id65[PL_ID_MAX + 1] = '\0';

    snprintf(buf, sizeof buf, "parking/%s/bay/%s", id64, id64);
    assert_int_equal(topic(buf, "parking", &t), PL_OK);
    assert_string_equal(t.lot, id64);
    assert_string_equal(t.sensor, id64);
    snprintf(buf, sizeof buf, "parking/%s/count", id65);
    assert_int_equal(topic(buf, "parking", &t), PL_BAD_ID);
    snprintf(buf, sizeof buf, "parking/L1/gate/%s", id65);
    assert_int_equal(topic(buf, "parking", &t), PL_BAD_ID);

    static const char *const bad[] = {
        "parking/./bay/1",     "parking/../bay/1",      "parking/L1/bay/.",
        "parking/L1/bay/..",   "parking/L1/gate/..",    "parking/.hidden/count",
        "parking/_x/count",    "parking/-x/count",      "parking/a b/count",
        "parking/L1/bay/x:y",  "parking/caf\xc3\xa9/count", "parking/L1/bay/a*",
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++)
        if (topic(bad[i], "parking", &t) != PL_BAD_ID)
            fail_msg("topic not bad_id: '%s'", bad[i]);
}

static void test_topic_empty_prefix(void **state)
{
    pl_topic t;
    assert_int_equal(topic("L1/bay/3", "", &t), PL_OK);
    assert_string_equal(t.lot, "L1");
    assert_int_equal(topic("/L1/bay/3", "", &t), PL_BAD_TOPIC);
}

/* ---- bay ---------------------------------------------------------------------------------- */

static void test_bay_bare(void **state)
{
    static const char *const occupied[] = {"1", "true", "occupied", " 1", "1\n", "\ttrue\r\n"};
    static const char *const free_[] = {"0", "false", "free", "free\n", "  0  "};
    for (size_t i = 0; i < N_ELEMS(occupied); i++) {
        pl_event ev = parse_ok(PL_KIND_BAY, occupied[i]);
        assert_true(ev.occupied);
        assert_false(ev.has_ts);
    }
    for (size_t i = 0; i < N_ELEMS(free_); i++)
        assert_false(parse_ok(PL_KIND_BAY, free_[i]).occupied);

    static const char *const bad[] = {
        "",     " ",      "\n",   "2",     "-1",   "01",    "1.0",  "True", "TRUE", "FALSE",
        "Occupied", "FREE", "yes", "on",   "\"free\"", "\"1\"", "null", "[1]", "1 1", "truex",
        "occupied free", "{}", "[]",
    };
    expect_malformed(PL_KIND_BAY, bad, N_ELEMS(bad));
}

static void test_bay_json(void **state)
{
    pl_event ev = parse_ok(PL_KIND_BAY, "{\"occupied\": true, \"ts\": 1475567982}");
    assert_true(ev.occupied);
    assert_true(ev.has_ts);
    assert_int_equal(ev.ts_ms, T0_MS);

    ev = parse_ok(PL_KIND_BAY, "{\"occupied\":false}");
    assert_false(ev.occupied);
    assert_false(ev.has_ts);
    assert_true(parse_ok(PL_KIND_BAY, "{\"occupied\":1}").occupied);
    assert_false(parse_ok(PL_KIND_BAY, "{\"occupied\":0}").occupied);
    ev = parse_ok(PL_KIND_BAY, "\n {\"ts\":\"2016-10-04T07:59:42Z\",\"occupied\":1} \n");
    assert_int_equal(ev.ts_ms, T0_MS);
    /* Unknown members are sensors' business; nested values in them are not looked at. */
    ev = parse_ok(PL_KIND_BAY, "{\"occupied\":true,\"battery\":3.1,\"rssi\":-80,"
                               "\"meta\":{\"occupied\":\"x\",\"a\":[1,{\"b\":null}]}}");
    assert_true(ev.occupied);

    static const char *const bad[] = {
        "{}",
        "{\"ts\":1475567982}",
        "{\"occupied\":2}",
        "{\"occupied\":-1}",
        "{\"occupied\":1.0}",
        "{\"occupied\":\"true\"}",
        "{\"occupied\":\"occupied\"}",
        "{\"occupied\":null}",
        "{\"occupied\":[true]}",
        "{\"Occupied\":true}",
        "{\"occupied\":true,\"occupied\":true}",
        "{\"occupied\":true,\"ts\":null}",
        "{\"occupied\":true,\"ts\":true}",
        "{\"occupied\":true,\"ts\":-1}",
        "{\"occupied\":true,\"ts\":\"yesterday\"}",
        "{\"occupied\":true}x",
        "{\"occupied\":true}}",
        "{\"occupied\":true} {}",
        "{\"occupied\":true,}",
        "{\"occupied\":true",
        "{occupied:true}",
        "{'occupied':true}",
        "[{\"occupied\":true}]",
        "\"occupied\"",
        "{\"occupied\":tru}",
    };
    expect_malformed(PL_KIND_BAY, bad, N_ELEMS(bad));
}

/* ---- gate --------------------------------------------------------------------------------- */

static void test_gate_bare(void **state)
{
    pl_event ev = parse_ok(PL_KIND_GATE, "in");
    assert_true(ev.gate_in);
    assert_int_equal(ev.count, 1);
    assert_false(ev.has_seq);
    ev = parse_ok(PL_KIND_GATE, "out\n");
    assert_false(ev.gate_in);
    assert_int_equal(ev.count, 1);

    static const char *const bad[] = {"", "In", "OUT", "i", "inn", "in out", "1", "\"in\"", "exit"};
    expect_malformed(PL_KIND_GATE, bad, N_ELEMS(bad));
}

static void test_gate_json(void **state)
{
    pl_event ev = parse_ok(PL_KIND_GATE, "{\"event\":\"in\"}");
    assert_true(ev.gate_in);
    assert_int_equal(ev.count, 1);
    assert_false(ev.has_seq);
    assert_false(ev.has_ts);

    ev = parse_ok(PL_KIND_GATE,
                  "{\"event\":\"out\",\"count\":3,\"seq\":42,\"ts\":\"2016-10-04T07:59:42Z\"}");
    assert_false(ev.gate_in);
    assert_int_equal(ev.count, 3);
    assert_true(ev.has_seq);
    assert_true(ev.seq == 42);
    assert_true(ev.has_ts);
    assert_int_equal(ev.ts_ms, T0_MS);

    ev = parse_ok(PL_KIND_GATE, "{\"seq\":0,\"event\":\"in\",\"lane\":2}");
    assert_true(ev.has_seq);
    assert_true(ev.seq == 0);

    static const char *const bad[] = {
        "{}",
        "{\"count\":1}",
        "{\"event\":\"IN\"}",
        "{\"event\":\"entry\"}",
        "{\"event\":1}",
        "{\"event\":true}",
        "{\"event\":\"in\",\"count\":0}",
        "{\"event\":\"in\",\"count\":-1}",
        "{\"event\":\"in\",\"count\":1.5}",
        "{\"event\":\"in\",\"count\":2.0}",
        "{\"event\":\"in\",\"count\":\"2\"}",
        "{\"event\":\"in\",\"count\":null}",
        "{\"event\":\"in\",\"count\":99999999999999999999}",
        "{\"event\":\"in\",\"event\":\"out\"}",
        "{\"event\":\"in\",\"ts\":-0.5}",
        "{\"event\":\"in\"} x",
        "{\"event\":\"in\",\"ts\":{}}",
    };
    expect_malformed(PL_KIND_GATE, bad, N_ELEMS(bad));
}

static void expect_seq(const char *payload, uint64_t want)
{
    pl_event ev = parse_ok(PL_KIND_GATE, payload);
    assert_true(ev.has_seq);
    if (ev.seq != want)
        fail_msg("seq %llu, want %llu in '%s'", (unsigned long long)ev.seq,
                 (unsigned long long)want, payload);
}

static void test_gate_seq_range(void **state)
{
    expect_seq("{\"event\":\"in\",\"seq\":9223372036854775807}", INT64_MAX);
    expect_seq("{\"event\":\"in\",\"seq\":9223372036854775808}", (uint64_t)INT64_MAX + 1);
    expect_seq("{\"event\":\"in\",\"seq\":18446744073709551615}", UINT64_MAX);
    expect_seq("{\"event\":\"in\",\"seq\":18446744073709551614,\"count\":2}", UINT64_MAX - 1);
    expect_seq("  {\r\n\"seq\"\t:\n18446744073709551615 ,\"event\":\"out\"}\n", UINT64_MAX);
    /* The key is compared after unescaping, as jansson does. */
    expect_seq("{\"event\":\"in\",\"s\\u0065q\":18446744073709551615}", UINT64_MAX);
    /* Text that looks like a seq inside strings and nested values is not the seq. */
    expect_seq("{\"note\":\"\\\"seq\\\": 1, {[\",\"meta\":{\"seq\":7,\"x\":[\"]\"]},"
               "\"event\":\"in\",\"seq\":18446744073709551615}",
               UINT64_MAX);

    pl_event ev = parse_ok(PL_KIND_GATE, "{\"event\":\"in\",\"meta\":{\"seq\":5}}");
    assert_false(ev.has_seq);
    ev = parse_ok(PL_KIND_GATE, "{\"event\":\"in\",\"seqs\":5,\"se\":6}");
    assert_false(ev.has_seq);

    static const char *const bad[] = {
        "{\"event\":\"in\",\"seq\":18446744073709551616}",
        "{\"event\":\"in\",\"seq\":18446744073709551617}",
        "{\"event\":\"in\",\"seq\":99999999999999999999}",
        "{\"event\":\"in\",\"seq\":184467440737095516150}",
        "{\"event\":\"in\",\"seq\":100000000000000000000000000000000000000000}",
        "{\"event\":\"in\",\"seq\":-1}",
        "{\"event\":\"in\",\"seq\":-18446744073709551615}",
        "{\"event\":\"in\",\"seq\":-0}",
        "{\"event\":\"in\",\"seq\":1.5}",
        "{\"event\":\"in\",\"seq\":1.0}",
        "{\"event\":\"in\",\"seq\":1e3}",
        "{\"event\":\"in\",\"seq\":18446744073709551615.0}",
        "{\"event\":\"in\",\"seq\":01}",
        "{\"event\":\"in\",\"seq\":-}",
        "{\"event\":\"in\",\"seq\":\"5\"}",
        "{\"event\":\"in\",\"seq\":true}",
        "{\"event\":\"in\",\"seq\":null}",
        "{\"event\":\"in\",\"seq\":[5]}",
        "{\"event\":\"in\",\"seq\":5,\"seq\":6}",
        "{\"event\":\"in\",\"seq\":18446744073709551615,\"seq\":1}",
        "{\"event\":\"in\",\"seq\":18446744073709551615,\"s\\u0065q\":1}",
        "{\"event\":\"in\",\"seq\":18446744073709551615x}",
        "{\"event\":\"in\",\"seq\":18446744073709551615",
        "{\"event\":\"in\",\"seq\":18446744073709551615}}",
        "{\"event\":\"in\",\"seq\":18446744073709551615,\"count\":0}",
        "{\"event\":\"in\",\"seq\" 5}",
        "{\"event\":\"in\",\"seq\":}",
    };
    expect_malformed(PL_KIND_GATE, bad, N_ELEMS(bad));
}

/* ---- count -------------------------------------------------------------------------------- */

static void test_count_forms(void **state)
{
    pl_event ev = parse_ok(PL_KIND_COUNT, "{\"occupied\":61,\"ts\":1475567982}");
    assert_false(ev.is_free);
    assert_int_equal(ev.value, 61);
    assert_false(ev.has_capacity);
    assert_int_equal(ev.ts_ms, T0_MS);

    ev = parse_ok(PL_KIND_COUNT, "{\"free\":516,\"capacity\":577,\"site\":\"BHM\"}");
    assert_true(ev.is_free);
    assert_int_equal(ev.value, 516);
    assert_true(ev.has_capacity);
    assert_int_equal(ev.capacity, 577);
    assert_false(ev.has_ts);

    assert_int_equal(parse_ok(PL_KIND_COUNT, "{\"occupied\":0}").value, 0);
    assert_int_equal(parse_ok(PL_KIND_COUNT, "{\"free\":0,\"capacity\":1}").value, 0);
    ev = parse_ok(PL_KIND_COUNT, "{\"occupied\":9223372036854775807}");
    assert_int_equal(ev.value, INT64_MAX);

    ev = parse_ok(PL_KIND_COUNT, "61");
    assert_false(ev.is_free);
    assert_int_equal(ev.value, 61);
    assert_int_equal(parse_ok(PL_KIND_COUNT, "0\n").value, 0);
    assert_int_equal(parse_ok(PL_KIND_COUNT, " 577 ").value, 577);
    assert_int_equal(parse_ok(PL_KIND_COUNT, "9223372036854775807").value, INT64_MAX);
}

static void test_count_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "-1",
        "+1",
        "1.5",
        "1e2",
        "0x10",
        "9223372036854775808",
        "1 2",
        "true",
        "free",
        "{}",
        "{\"capacity\":10}",
        "{\"occupied\":1,\"free\":2}",
        "{\"occupied\":-1}",
        "{\"free\":-5}",
        "{\"occupied\":1.5}",
        "{\"occupied\":1.0}",
        "{\"occupied\":\"61\"}",
        "{\"occupied\":true}",
        "{\"occupied\":null}",
        "{\"occupied\":9223372036854775808}",
        "{\"occupied\":1,\"capacity\":0}",
        "{\"occupied\":1,\"capacity\":-5}",
        "{\"occupied\":1,\"capacity\":1.5}",
        "{\"occupied\":1,\"capacity\":\"577\"}",
        "{\"occupied\":1,\"occupied\":1}",
        "{\"free\":1,\"ts\":\"2016-10-04T07:59:42\"}",
        "{\"occupied\":1}garbage",
        "[61]",
    };
    expect_malformed(PL_KIND_COUNT, bad, N_ELEMS(bad));
}

/* ---- arbitrary bytes ---------------------------------------------------------------------- */

static void test_payload_bytes(void **state)
{
    pl_event ev;
    /* Embedded NULs: never treated as an end. */
    assert_int_equal(pl_parse_payload(PL_KIND_BAY, "1\0", 2, &ev), PL_MALFORMED);
    assert_int_equal(pl_parse_payload(PL_KIND_BAY, "\0" "1", 2, &ev), PL_MALFORMED);
    assert_int_equal(pl_parse_payload(PL_KIND_GATE, "in\0out", 6, &ev), PL_MALFORMED);
    assert_int_equal(pl_parse_payload(PL_KIND_COUNT, "6\0" "1", 3, &ev), PL_MALFORMED);
    static const char nul_json[] = "{\"occupied\":true}\0";
    assert_int_equal(pl_parse_payload(PL_KIND_BAY, nul_json, sizeof nul_json - 1, &ev),
                     PL_MALFORMED);
    static const char nul_key[] = "{\"occ\0upied\":true}";
    assert_int_equal(pl_parse_payload(PL_KIND_BAY, nul_key, sizeof nul_key - 1, &ev),
                     PL_MALFORMED);
    assert_int_equal(parse(PL_KIND_BAY, "{\"occupied\":true,\"x\":\"a\\u0000b\"}", &ev),
                     PL_MALFORMED);
    /* jansson alone would drop a NUL right after a number or literal. */
    static const char *const nul_after_token[] = {
        "{\"event\":\"in\",\"seq\":1\0}",   "{\"event\":\"in\",\"count\":2\0}",
        "{\"occupied\":true\0}",               "{\"x\":null,\"occupied\":0\0}",
        "{\"occupied\":5\0}",                  "{\"free\":5,\"ts\":1475567982.5\0}",
    };
    static const enum pl_kind nul_kinds[] = {PL_KIND_GATE, PL_KIND_GATE, PL_KIND_BAY,
                                             PL_KIND_BAY,  PL_KIND_COUNT, PL_KIND_COUNT};
    for (size_t i = 0; i < N_ELEMS(nul_after_token); i++) {
        size_t len = strlen(nul_after_token[i]) + 2; /* the NUL and the closing brace */
        assert_int_equal(pl_parse_payload(nul_kinds[i], nul_after_token[i], len, &ev),
                         PL_MALFORMED);
    }

    /* Only LEN bytes are read: the same buffers without a terminator. */
    assert_int_equal(pl_parse_payload(PL_KIND_BAY, "1xyz", 1, &ev), PL_OK);
    assert_true(ev.occupied);
    assert_int_equal(pl_parse_payload(PL_KIND_GATE, "outside", 3, &ev), PL_OK);
    char *exact = malloc(17);
    memcpy(exact, "{\"occupied\":true}", 17);
    assert_int_equal(pl_parse_payload(PL_KIND_BAY, exact, 17, &ev), PL_OK);
    assert_int_equal(pl_parse_payload(PL_KIND_BAY, exact, 16, &ev), PL_MALFORMED);
    free(exact);
    assert_int_equal(pl_parse_payload(PL_KIND_BAY, "", 0, &ev), PL_MALFORMED);
    assert_int_equal(pl_parse_payload(PL_KIND_BAY, NULL, 0, &ev), PL_MALFORMED);

    /* High bytes, invalid UTF-8, a BOM. */
    assert_int_equal(parse(PL_KIND_BAY, "\xef\xbb\xbf" "1", &ev), PL_MALFORMED);
    assert_int_equal(parse(PL_KIND_BAY, "{\"occupied\":true,\"x\":\"\xff\"}", &ev),
                     PL_MALFORMED);
    assert_int_equal(parse(PL_KIND_GATE, "{\"\xc3\xa9\":1,\"event\":\"in\",\"seq\":3}", &ev),
                     PL_OK);
    assert_true(ev.seq == 3);
}

/* Nesting far beyond jansson's depth limit, inside an unknown member and as the seq value. */
static void test_payload_deep_nesting(void **state)
{
    enum { DEPTH = 100000 };
    const char *heads[] = {"{\"occupied\":true,\"x\":", "{\"event\":\"in\",\"seq\":",
                           "{\"event\":\"in\",\"m\":"};
    enum pl_kind kinds[] = {PL_KIND_BAY, PL_KIND_GATE, PL_KIND_GATE};
    char *buf = malloc(2 * DEPTH + 64);
    for (size_t k = 0; k < N_ELEMS(heads); k++) {
        size_t n = strlen(heads[k]);
        memcpy(buf, heads[k], n);
        memset(buf + n, '[', DEPTH);
        memset(buf + n + DEPTH, ']', DEPTH);
        buf[n + 2 * DEPTH] = '}';
        pl_event ev;
        assert_int_equal(pl_parse_payload(kinds[k], buf, n + 2 * DEPTH + 1, &ev), PL_MALFORMED);
        /* Unbalanced: never closed. */
        assert_int_equal(pl_parse_payload(kinds[k], buf, n + DEPTH, &ev), PL_MALFORMED);
    }
    free(buf);
}

/* Every prefix of valid payloads is either malformed or (for bare forms) a shorter valid one;
 * mostly this runs the truncated-input paths under the sanitizers. */
static void test_payload_truncations(void **state)
{
    static const char *const cases[] = {
        "{\"event\":\"in\",\"note\":\"a\\\"}\\u00e9\",\"meta\":{\"q\":[1,\"]\"]},"
        "\"seq\":18446744073709551615,\"count\":2,\"ts\":\"2016-10-04T07:59:42.250+01:00\"}",
        "{\"occupied\":true,\"ts\":1475567982.25}",
        "{\"free\":3,\"capacity\":10,\"ts\":\"2016-10-04 07:59:42z\"}",
    };
    static const enum pl_kind kinds[] = {PL_KIND_GATE, PL_KIND_BAY, PL_KIND_COUNT};
    for (size_t k = 0; k < N_ELEMS(cases); k++) {
        size_t n = strlen(cases[k]);
        pl_event ev;
        assert_int_equal(pl_parse_payload(kinds[k], cases[k], n, &ev), PL_OK);
        for (size_t len = 0; len < n; len++) {
            char *copy = malloc(len ? len : 1);
            memcpy(copy, cases[k], len);
            assert_int_equal(pl_parse_payload(kinds[k], copy, len, &ev), PL_MALFORMED);
            free(copy);
        }
    }
}

/* ---- timestamps --------------------------------------------------------------------------- */

static int64_t ts_of(enum pl_kind kind, const char *payload)
{
    pl_event ev = parse_ok(kind, payload);
    assert_true(ev.has_ts);
    return ev.ts_ms;
}

static void test_ts_numbers(void **state)
{
    assert_int_equal(ts_of(PL_KIND_BAY, "{\"occupied\":1,\"ts\":1475567982}"), T0_MS);
    assert_int_equal(ts_of(PL_KIND_BAY, "{\"occupied\":1,\"ts\":1475567982.25}"), T0_MS + 250);
    assert_int_equal(ts_of(PL_KIND_BAY, "{\"occupied\":1,\"ts\":1475567982.0006}"), T0_MS + 1);
    assert_int_equal(ts_of(PL_KIND_BAY, "{\"occupied\":1,\"ts\":1475567982.0004}"), T0_MS);
    assert_int_equal(ts_of(PL_KIND_BAY, "{\"occupied\":1,\"ts\":1.475567982e9}"), T0_MS);
    assert_int_equal(ts_of(PL_KIND_BAY, "{\"occupied\":1,\"ts\":0}"), 0);
    assert_int_equal(ts_of(PL_KIND_BAY, "{\"occupied\":1,\"ts\":0.0}"), 0);
    assert_int_equal(ts_of(PL_KIND_GATE, "{\"event\":\"in\",\"ts\":253402300799}"),
                     INT64_C(253402300799000));
    assert_int_equal(ts_of(PL_KIND_COUNT, "{\"free\":1,\"ts\":253402300799.999}"),
                     INT64_C(253402300799999));

    static const char *const bad[] = {
        "{\"occupied\":1,\"ts\":-1}",
        "{\"occupied\":1,\"ts\":-0.001}",
        "{\"occupied\":1,\"ts\":253402300800}",
        "{\"occupied\":1,\"ts\":253402300799.9999}",
        "{\"occupied\":1,\"ts\":1e300}",
        "{\"occupied\":1,\"ts\":1e400}",
        "{\"occupied\":1,\"ts\":9223372036854775807}",
        "{\"occupied\":1,\"ts\":99999999999999999999}",
        "{\"occupied\":1,\"ts\":NaN}",
        "{\"occupied\":1,\"ts\":Infinity}",
        "{\"occupied\":1,\"ts\":\"1475567982\"}",
        "{\"occupied\":1,\"ts\":[1475567982]}",
        "{\"occupied\":1,\"ts\":false}",
        "{\"occupied\":1,\"ts\":\"1969-12-31T23:59:59Z\"}",
        "{\"occupied\":1,\"ts\":\"1970-01-01T00:30:00+01:00\"}",
        "{\"occupied\":1,\"ts\":\"9999-12-31T23:59:59-01:00\"}",
    };
    expect_malformed(PL_KIND_BAY, bad, N_ELEMS(bad));
}

static void test_time_iso_forms(void **state)
{
    assert_int_equal(time_ok("2016-10-04T07:59:42Z"), T0_MS);
    assert_int_equal(time_ok("2016-10-04t07:59:42z"), T0_MS);
    assert_int_equal(time_ok("2016-10-04 07:59:42Z"), T0_MS);
    assert_int_equal(time_ok("2016-10-04T07:59:42.250Z"), T0_MS + 250);
    assert_int_equal(time_ok("2016-10-04T07:59:42.2Z"), T0_MS + 200);
    assert_int_equal(time_ok("2016-10-04T07:59:42.25Z"), T0_MS + 250);
    assert_int_equal(time_ok("2016-10-04T07:59:42.123456789Z"), T0_MS + 123);
    assert_int_equal(time_ok("2016-10-04T07:59:42.0005Z"), T0_MS + 1);
    assert_int_equal(time_ok("2016-10-04T07:59:42.9995Z"), T0_MS + 1000);
    assert_int_equal(time_ok("2016-10-04T07:59:42.000Z"), T0_MS);
    assert_int_equal(time_ok("2016-10-04T08:59:42+01:00"), T0_MS);
    assert_int_equal(time_ok("2016-10-04T08:59:42+0100"), T0_MS);
    assert_int_equal(time_ok("2016-10-04T08:59:42+01"), T0_MS);
    assert_int_equal(time_ok("2016-10-04T02:29:42-05:30"), T0_MS);
    assert_int_equal(time_ok("2016-10-04T02:29:42-0530"), T0_MS);
    assert_int_equal(time_ok("2016-10-04T08:59:42.250+01:00"), T0_MS + 250);
    assert_int_equal(time_ok("2016-10-04T07:59:42+00:00"), T0_MS);
    assert_int_equal(time_ok("2016-10-04T07:59:42-00:00"), T0_MS);
    assert_int_equal(time_ok("2016-10-05T06:59:42+23:00"), T0_MS);
    assert_int_equal(time_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(time_ok("1969-12-31T23:59:59Z"), -1000);
    assert_int_equal(time_ok("1900-03-01T00:00:00Z"), INT64_C(-2203891200000));
    assert_int_equal(time_ok("9999-12-31T23:59:59Z"), INT64_C(253402300799000));
    assert_int_equal(time_ok("0000-01-01T00:00:00Z"), INT64_C(-62167219200000));
    /* A leap second reads as the next minute's :00. */
    assert_int_equal(time_ok("2016-12-31T23:59:60Z"), time_ok("2017-01-01T00:00:00Z"));
    /* Only LEN bytes are read. */
    int64_t ms;
    assert_int_equal(pl_parse_time("2016-10-04T07:59:42Zjunk", 20, &ms), 0);
    assert_int_equal(ms, T0_MS);
}

static void test_time_calendar(void **state)
{
    assert_int_equal(time_ok("2016-02-29T00:00:00Z"), INT64_C(1456704000000));
    assert_int_equal(time_ok("2000-02-29T12:00:00Z"), INT64_C(951825600000));
    assert_int_equal(time_ok("2016-03-01T00:00:00Z") - time_ok("2016-02-28T00:00:00Z"),
                     2 * 86400000);
    assert_int_equal(time_ok("2015-03-01T00:00:00Z") - time_ok("2015-02-28T00:00:00Z"),
                     86400000);
    assert_int_equal(time_ok("2016-12-31T00:00:00Z") - time_ok("2016-01-01T00:00:00Z"),
                     INT64_C(365) * 86400000);
    static const char *const good_days[] = {
        "2016-01-31T00:00:00Z", "2016-03-31T00:00:00Z", "2016-04-30T00:00:00Z",
        "2016-06-30T00:00:00Z", "2016-07-31T00:00:00Z", "2016-08-31T00:00:00Z",
        "2016-09-30T00:00:00Z", "2016-11-30T00:00:00Z", "2016-12-31T23:59:59Z",
        "2400-02-29T00:00:00Z",
    };
    for (size_t i = 0; i < N_ELEMS(good_days); i++)
        time_ok(good_days[i]);
}

static void test_time_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "2016-10-04T07:59:42",        /* no zone: ambiguous */
        "2016-10-04T07:59:42.250",
        "2016-10-04",
        "2016-10-04T07:59Z",
        "2016-10-04T07Z",
        "2016-02-30T00:00:00Z",
        "2015-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2016-04-31T00:00:00Z",
        "2016-06-31T00:00:00Z",
        "2016-09-31T00:00:00Z",
        "2016-11-31T00:00:00Z",
        "2016-01-32T00:00:00Z",
        "2016-00-10T00:00:00Z",
        "2016-13-10T00:00:00Z",
        "2016-10-00T00:00:00Z",
        "2016-10-04T24:00:00Z",
        "2016-10-04T23:60:00Z",
        "2016-10-04T23:59:61Z",
        "2016-10-04T07:59:42+24:00",
        "2016-10-04T07:59:42+01:60",
        "2016-10-04T07:59:42+1:00",
        "2016-10-04T07:59:42+01:0",
        "2016-10-04T07:59:42+01:",
        "2016-10-04T07:59:42+010",
        "2016-10-04T07:59:42+01:00:00",
        "2016-10-04T07:59:42 +01:00",
        "2016-10-04T07:59:42ZZ",
        "2016-10-04T07:59:42Z ",
        " 2016-10-04T07:59:42Z",
        "2016-10-04T07:59:42.Z",
        "2016-10-04T07:59:42,250Z",
        "2016-10-04T07:59:42UTC",
        "2016-10-04T07:59:42GMT",
        "2016-10-04X07:59:42Z",
        "2016-10-04T07-59-42Z",
        "2016/10/04T07:59:42Z",
        "2016-1-04T07:59:42Z",
        "2016-10-4T07:59:42Z",
        "16-10-04T07:59:42Z",
        "+2016-10-04T07:59:42Z",
        "-2016-10-04T07:59:42Z",
        "20161004T075942Z",
        "2016-10-04T7:59:42Z",
        "2016-10-04T07:59:4Z",
        "2016-10-04T07:59:42.+01:00",
        "1475567982",
        "2016-10-04T07:59:42\xef\xbc\xba",
    };
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        int64_t ms = 7;
        if (pl_parse_time(bad[i], strlen(bad[i]), &ms) != -1)
            fail_msg("time accepted: '%s'", bad[i]);
        assert_int_equal(ms, 7); /* untouched on failure */
    }
    int64_t ms;
    assert_int_equal(pl_parse_time("2016-10-04T07:59:42Z", 19, &ms), -1);
    assert_int_equal(pl_parse_time("2016-10-04T07:59:42\0Z", 21, &ms), -1);
    assert_int_equal(pl_parse_time(NULL, 0, &ms), -1);
}

/* ---- formatting --------------------------------------------------------------------------- */

static void expect_format(int64_t ms, const char *want)
{
    char buf[32];
    size_t n = pl_format_time(ms, buf, sizeof buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_format_time(void **state)
{
    expect_format(0, "1970-01-01T00:00:00Z");
    expect_format(T0_MS, "2016-10-04T07:59:42Z");
    expect_format(T0_MS + 999, "2016-10-04T07:59:42Z");
    expect_format(-1, "1969-12-31T23:59:59Z");
    expect_format(-1000, "1969-12-31T23:59:59Z");
    expect_format(-1001, "1969-12-31T23:59:58Z");
    expect_format(INT64_C(951825600000), "2000-02-29T12:00:00Z");
    expect_format(INT64_C(1456704000000) - 1, "2016-02-28T23:59:59Z");
    expect_format(INT64_C(253402300799999), "9999-12-31T23:59:59Z");
    expect_format(INT64_C(-2203891200000), "1900-03-01T00:00:00Z");

    /* Extremes do not crash or overflow the buffer. */
    char buf[32];
    assert_true(pl_format_time(INT64_MAX, buf, sizeof buf) < sizeof buf);
    assert_true(pl_format_time(INT64_MIN, buf, sizeof buf) < sizeof buf);
    /* A short buffer is truncated and terminated. */
    char small[5];
    assert_int_equal(pl_format_time(T0_MS, small, sizeof small), 4);
    assert_string_equal(small, "2016");
    assert_int_equal(pl_format_time(T0_MS, small, 0), 0);
}

/* format then parse gives the time floored to the second, over the whole 0000–9999 range, and
 * each day of 2015–2016 (a leap and a common year) maps to consecutive dates. */
static void test_format_round_trip(void **state)
{
    const int64_t lo = INT64_C(-62167219200000), hi = INT64_C(253402300799999);
    uint64_t x = 88172645463325252u; /* xorshift: deterministic, no libc rand state */
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ms = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        char buf[32];
        size_t n = pl_format_time(ms, buf, sizeof buf);
        int64_t back;
        if (pl_parse_time(buf, n, &back) != 0)
            fail_msg("round trip: %lld formatted as '%s' does not parse", (long long)ms, buf);
        int64_t floored = ms / 1000 * 1000 - (ms % 1000 < 0 ? 1000 : 0);
        if (back != floored)
            fail_msg("round trip: %lld -> '%s' -> %lld", (long long)ms, buf, (long long)back);
    }
    /* the C library's own calendar agrees, second for second, over 1970..2106 */
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        time_t t = (time_t)(x % UINT64_C(4294967296));
        struct tm tm;
        char want[32], got[32];
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        assert_int_equal(pl_format_time((int64_t)t * 1000 + 999, got, sizeof got), strlen(want));
        assert_string_equal(got, want);
    }
    int64_t day0 = time_ok("2015-01-01T00:00:00Z");
    for (int d = 0; d < 731; d++) {
        char buf[32];
        pl_format_time(day0 + (int64_t)d * 86400000, buf, sizeof buf);
        assert_int_equal(time_ok(buf), day0 + (int64_t)d * 86400000);
        assert_string_equal(buf + 10, "T00:00:00Z");
    }
}

/* ---- admin (closures) ---- */

static enum pl_reject admin(const char *text, pl_admin *a)
{
    return pl_parse_admin(text, strlen(text), a);
}

static void test_admin_topic(void **state)
{
    char lot[PL_ID_MAX + 1];
    assert_int_equal(pl_parse_admin_topic("parking/admin/A1/state", "parking/admin", lot), PL_OK);
    assert_string_equal(lot, "A1");
    assert_int_equal(pl_parse_admin_topic("parking/admin/A1/count", "parking/admin", lot),
                     PL_BAD_TOPIC);
    assert_int_equal(pl_parse_admin_topic("parking/admin/A1", "parking/admin", lot), PL_BAD_TOPIC);
    assert_int_equal(pl_parse_admin_topic("parking/admin/A1/state/x", "parking/admin", lot),
                     PL_BAD_TOPIC);
    assert_int_equal(pl_parse_admin_topic("parking/admin//state", "parking/admin", lot),
                     PL_BAD_TOPIC);
    assert_int_equal(pl_parse_admin_topic("parking/admin/-x/state", "parking/admin", lot),
                     PL_BAD_ID);
    assert_int_equal(pl_parse_admin_topic("other/A1/state", "parking/admin", lot), PL_BAD_TOPIC);
}

static void test_admin_payload(void **state)
{
    pl_admin a;
    assert_int_equal(admin("{\"state\":\"closed\",\"reason\":\"works\",\"until\":1700000000}", &a),
                     PL_OK);
    assert_true(a.closed);
    assert_string_equal(a.reason, "works");
    assert_true(a.has_until);
    assert_true(a.until_ms == 1700000000000LL);
    assert_int_equal(admin(" {\"state\":\"open\"} ", &a), PL_OK);
    assert_false(a.closed);
    assert_false(a.has_until);
    assert_string_equal(a.reason, "");
    assert_int_equal(admin("{\"state\":\"closed\",\"until\":\"2023-11-14T22:13:20Z\"}", &a), PL_OK);
    assert_true(a.until_ms == 1700000000000LL);
    /* malformed: no state, another state, wrong types, too long a reason, not JSON */
    assert_int_equal(admin("{}", &a), PL_MALFORMED);
    assert_int_equal(admin("{\"state\":\"shut\"}", &a), PL_MALFORMED);
    assert_int_equal(admin("{\"state\":1}", &a), PL_MALFORMED);
    assert_int_equal(admin("{\"state\":\"closed\",\"reason\":5}", &a), PL_MALFORMED);
    assert_int_equal(admin("{\"state\":\"closed\",\"until\":\"soon\"}", &a), PL_MALFORMED);
    assert_int_equal(admin("{\"state\":\"closed\",\"until\":-1}", &a), PL_MALFORMED);
    assert_int_equal(admin("closed", &a), PL_MALFORMED);
    assert_int_equal(admin("", &a), PL_MALFORMED);
    assert_int_equal(pl_parse_admin(NULL, 0, &a), PL_MALFORMED);
    assert_int_equal(admin("{\"state\":\"closed\",\"reason\":\"a\\u0000b\"}", &a), PL_MALFORMED);
    char big[PL_REASON_MAX + 64];
    int n = snprintf(big, sizeof big, "{\"state\":\"closed\",\"reason\":\"%0*d\"}", PL_REASON_MAX, 0);
    assert_true(n > 0 && (size_t)n < sizeof big);
    assert_int_equal(admin(big, &a), PL_OK);
    assert_int_equal(strlen(a.reason), PL_REASON_MAX);
    n = snprintf(big, sizeof big, "{\"state\":\"closed\",\"reason\":\"%0*d\"}", PL_REASON_MAX + 1, 0);
    assert_true(n > 0 && (size_t)n < sizeof big);
    assert_int_equal(admin(big, &a), PL_MALFORMED);
    assert_false(a.closed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reject_names),
        cmocka_unit_test(test_valid_id),
        cmocka_unit_test(test_topic_each_kind),
        cmocka_unit_test(test_topic_prefix_with_slash),
        cmocka_unit_test(test_topic_bad_shapes),
        cmocka_unit_test(test_topic_bad_ids),
        cmocka_unit_test(test_topic_empty_prefix),
        cmocka_unit_test(test_bay_bare),
        cmocka_unit_test(test_bay_json),
        cmocka_unit_test(test_gate_bare),
        cmocka_unit_test(test_gate_json),
        cmocka_unit_test(test_gate_seq_range),
        cmocka_unit_test(test_count_forms),
        cmocka_unit_test(test_count_malformed),
        cmocka_unit_test(test_payload_bytes),
        cmocka_unit_test(test_payload_deep_nesting),
        cmocka_unit_test(test_payload_truncations),
        cmocka_unit_test(test_ts_numbers),
        cmocka_unit_test(test_time_iso_forms),
        cmocka_unit_test(test_time_calendar),
        cmocka_unit_test(test_time_malformed),
        cmocka_unit_test(test_format_time),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_admin_topic),
        cmocka_unit_test(test_admin_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
