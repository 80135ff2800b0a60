/* Differential test of payload.c's fast path for flat JSON objects: on generated payloads of
 * every kind (valid ones, and ones off by a byte: signs, exponents, leading zeros, escapes,
 * control bytes, UTF-8, duplicates, nesting, truncation, odd whitespace, huge numbers), the
 * fast path followed by jansson gives exactly what jansson alone gives — the same verdict and
 * the same event, byte for byte. The .c is included (as chrony's tests do) to reach the
 * static parse_json_with. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../daemon/payload.c"

static const char *const keys[] = { "occupied", "ts", "free", "capacity", "event", "count",
                                    "seq", "battery", "occupie", "o\\u0063cupied", "" };
static const char *const values[] = {
    "true", "false", "null", "0", "1", "2", "-0", "-1", "01", "1.0", "1.", ".5", "1e3", "1E3",
    "0.5", "10", "577", "18446744073709551615", "18446744073709551616", "9223372036854775807",
    "123456789012345678", "1234567890123456789", "1475567982", "1475567982.5",
    "1475567982.123456789", "1796684000000", "\"occupied\"", "\"free\"", "\"in\"", "\"out\"",
    "\"2016-10-04T07:59:42Z\"", "\"2016-10-04T08:59:42+01:00\"", "\"yesterday\"", "\"\"",
    "\"a\\u0062\"", "\"\\u00e9\"", "\"caf\xc3\xa9\"", "\"\x01\"", "\"\xff\"", "[1]", "{}",
    "{\"a\":1}", "tru", "falsey", "1x", "\"in", "0.", "00", "1.5e", "1.5e-3"
};
static const char *const spaces[] = { "", " ", "\t", "\n", "\r\n", "  ", "\v", "\f" };

static uint64_t rng = 88172645463325252u;
static unsigned pick(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}
#define PICK(a) a[pick(sizeof a / sizeof a[0])]

/* One generated object of 0..4 members, some of them from the kind's own keys. */
static size_t gen(char *buf, size_t size)
{
    size_t n = 0;
    int members = (int)pick(5);
    n += (size_t)snprintf(buf + n, size - n, "%s{", PICK(spaces));
    for (int i = 0; i < members && n < size - 200; i++) {
        n += (size_t)snprintf(buf + n, size - n, "%s%s\"%s\"%s:%s%s%s", i ? "," : "",
                              PICK(spaces), PICK(keys), PICK(spaces), PICK(spaces), PICK(values),
                              PICK(spaces));
    }
    n += (size_t)snprintf(buf + n, size - n, "}%s", PICK(spaces));
    unsigned mutate = pick(10);
    if (mutate == 0 && n > 1)
        n = pick((unsigned)n);                      /* truncated */
    else if (mutate == 1)
        n += (size_t)snprintf(buf + n, size - n, "x"); /* trailing garbage */
    buf[n] = '\0';
    return n;
}

static unsigned long fast_built, accepted;   /* how much of the corpus the comparison covers */

static const char *const good_ts[] = { "1475567982", "1475567982.5", "1475567982.123456789",
                                       "\"2016-10-04T07:59:42Z\"", "0", "1796684000000" };
static const char *const good_ints[] = { "0", "1", "2", "10", "577", "123456789012345678" };

/* A value for KEY: most often one a sensor of that kind would send, else any. */
static const char *value_for(const char *key)
{
    if (pick(5) == 0)
        return PICK(values);
    if (strcmp(key, "ts") == 0)
        return PICK(good_ts);
    if (strcmp(key, "event") == 0)
        return pick(2) ? "\"in\"" : "\"out\"";
    if (strcmp(key, "occupied") == 0 && pick(2))
        return pick(2) ? "true" : "false";
    return PICK(good_ints);
}

/* A payload of KIND's own members, in any order, each present or not, sometimes doubled. */
static size_t gen_kind(enum pl_kind kind, char *buf, size_t size)
{
    static const char *const bay[] = { "occupied", "ts" };
    static const char *const gate[] = { "event", "count", "seq", "ts" };
    static const char *const count[] = { "occupied", "free", "capacity", "ts" };
    const char *const *k = kind == PL_KIND_BAY ? bay : kind == PL_KIND_GATE ? gate : count;
    size_t nk = kind == PL_KIND_BAY ? 2 : 4;
    size_t n = (size_t)snprintf(buf, size, "{");
    int members = 0;
    for (size_t i = 0; i < nk + (pick(8) == 0); i++) {
        const char *key = k[(i + pick(2)) % nk];
        if (pick(4) == 0)
            continue;
        n += (size_t)snprintf(buf + n, size - n, "%s%s\"%s\"%s:%s%s", members++ ? "," : "",
                              PICK(spaces), key, PICK(spaces), PICK(spaces), value_for(key));
    }
    n += (size_t)snprintf(buf + n, size - n, "}");
    return n;
}

static void check_same(enum pl_kind kind, const char *text, size_t len)
{
    pl_event fast, slow;
    memset(&fast, 0, sizeof fast);
    memset(&slow, 0, sizeof slow);
    span s = trim_space(text, len);
    bool f = s.len && s.p[0] == '{' && parse_json_with(kind, s, &fast, true);
    bool w = s.len && s.p[0] == '{' && parse_json_with(kind, s, &slow, false);
    json_t *flat = s.len ? load_flat_object(s) : NULL;
    fast_built += flat != NULL;
    accepted += f && flat != NULL;
    json_decref(flat);
    if (f != w || (f && memcmp(&fast, &slow, sizeof fast) != 0))
        fail_msg("kind %d, payload '%s': fast path %s, jansson alone %s", (int)kind, text,
                 f ? "accepts" : "rejects", w ? "accepts" : "rejects");
}

static void test_generated(void **state)
{
    (void)state;
    char buf[2048];
    for (int i = 0; i < 150000; i++) {
        size_t len = gen(buf, sizeof buf);
        for (int k = PL_KIND_BAY; k <= PL_KIND_COUNT; k++)
            check_same((enum pl_kind)k, buf, len);
        for (int k = PL_KIND_BAY; k <= PL_KIND_COUNT; k++) {
            len = gen_kind((enum pl_kind)k, buf, sizeof buf);
            for (int j = PL_KIND_BAY; j <= PL_KIND_COUNT; j++)
                check_same((enum pl_kind)j, buf, len);
        }
    }
    print_message("fast path built %lu objects, %lu of them accepted events\n", fast_built,
                  accepted);
    assert_true(fast_built > 200000 && accepted > 20000);
}

static void test_typical(void **state)
{
    (void)state;
    const char *const typical[] = {
        "{\"occupied\":true,\"ts\":1475567982.5}", "{\"ts\": 1475567982, \"occupied\": 0}",
        "{\"occupied\": 17, \"ts\": \"2016-10-04T07:59:42Z\"}", "{\"free\": 516, \"capacity\": 577}",
        "{\"event\": \"in\", \"count\": 2, \"seq\": 41, \"ts\": 1475567982.25}",
        "{\"event\":\"out\",\"seq\":18446744073709551615}", "{\"event\":\"in\",\"seq\":0}",
        "{\"occupied\":true,\"occupied\":false}", "{}", "{\"occupied\":true,\"battery\":3.6}",
    };
    for (size_t i = 0; i < sizeof typical / sizeof typical[0]; i++)
        for (int k = PL_KIND_BAY; k <= PL_KIND_COUNT; k++)
            check_same((enum pl_kind)k, typical[i], strlen(typical[i]));
    /* and the fast path does take the usual shapes (else it would be a slow path in disguise) */
    cursor c = { typical[0], typical[0] + strlen(typical[0]) };
    json_t *o = load_flat_object((span){ c.p, (size_t)(c.end - c.p) });
    assert_non_null(o);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typical),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
