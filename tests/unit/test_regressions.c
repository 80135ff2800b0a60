/* Regression tests from fuzzing (tests/fuzz/): every input of the seed corpora in
 * tests/fuzz/corpus/<target>/ goes through the same target code and property checks as under
 * libFuzzer, so a crash input saved there is replayed by every `make check` and, under ASan and
 * UBSan, by `make check-asan`, without clang. Inputs that once mattered are also named here.
 *
 * The five targets are included with their entry points and helpers renamed, so that one
 * binary holds them all; a broken property aborts, which fails this test binary. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLVMFuzzerTestOneInput fuzz_payload_one
#define die payload_die
#include "../fuzz/fuzz_payload.c"
#undef die
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_topic_one
#define die topic_die
#include "../fuzz/fuzz_topic.c"
#undef die
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_time_one
#define die time_die
#define digits time_digits
#include "../fuzz/fuzz_time.c"
#undef digits
#undef die
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_config_one
#define die config_die
#include "../fuzz/fuzz_config.c"
#undef die
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_uplink_one
#define die uplink_die
#include "../fuzz/fuzz_uplink.c"
#undef die
#undef LLVMFuzzerTestOneInput

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

/* tests/fuzz/corpus/TARGET under the source tree (PARKD_TOP from tests/run.sh, else the
 * current directory, which is the tree's top under make). */
static void corpus_dir(const char *target, char *buf, size_t size)
{
    const char *top = getenv("PARKD_TOP");
    snprintf(buf, size, "%s/tests/fuzz/corpus/%s", top && *top ? top : ".", target);
}

static void run_one(fuzz_fn fn, const char *file)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        fail_msg("cannot open %s", file);
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 4096;
            data = realloc(data, cap);
            assert_non_null(data);
        }
        size_t got = fread(data + size, 1, cap - size, f);
        if (got == 0)
            break;
        size += got;
    }
    fclose(f);
    /* An exact-size copy, as libFuzzer gives it, so ASan sees a read one past the end. */
    uint8_t *exact = malloc(size ? size : 1);
    assert_non_null(exact);
    if (size)
        memcpy(exact, data, size);
    free(data);
    fn(exact, size);
    free(exact);
}

/* Replays every file of the target's corpus; returns how many. */
static size_t replay(const char *target, fuzz_fn fn)
{
    char dir[1024], file[2048];
    corpus_dir(target, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("no corpus at %s (run from the source tree or set PARKD_TOP)", dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(file, sizeof file, "%s/%s", dir, e->d_name);
        run_one(fn, file);
        n++;
    }
    closedir(d);
    return n;
}

static void run_text(fuzz_fn fn, const char *text)
{
    size_t n = strlen(text);
    uint8_t *exact = malloc(n ? n : 1);
    assert_non_null(exact);
    memcpy(exact, text, n);
    fn(exact, n);
    free(exact);
}

static void test_corpus_payload(void **state)
{
    assert_true(replay("payload", fuzz_payload_one) > 0);
}

static void test_corpus_topic(void **state)
{
    assert_true(replay("topic", fuzz_topic_one) > 0);
}

static void test_corpus_time(void **state)
{
    assert_true(replay("time", fuzz_time_one) > 0);
}

static void test_corpus_config(void **state)
{
    assert_true(replay("config", fuzz_config_one) > 0);
}

static void test_corpus_uplink(void **state)
{
    assert_true(replay("uplink", fuzz_uplink_one) > 0);
}

/* Inputs worth naming: the edges the fuzzers were pointed at. */
static void test_named_inputs(void **state)
{
    static const char *const payloads[] = {
        "{\"event\":\"in\",\"seq\":18446744073709551615}",  /* beyond jansson's int64 */
        "{\"event\":\"in\",\"seq\":18446744073709551616}",
        "{\"event\":\"in\",\"seq\":-0}",                    /* jansson says 0; not unsigned */
        "{\"event\":\"in\",\"s\\u0065q\":7}",               /* an escaped key is still "seq" */
        "{\"occupied\": 1, \"ts\": 253402300799.9999}",     /* rounds up to year 10000 */
        "{\"occupied\": 1, \"ts\": \"9999-12-31T23:59:60Z\"}",
        "{\"occupied\": 1}\x00",
        "   \n",
        "",
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++)
        run_text(fuzz_payload_one, payloads[i]);
    static const uint8_t nul_in_json[] = "{\"a\":1\0}";
    fuzz_payload_one(nul_in_json, sizeof nul_in_json - 1);

    static const char *const times[] = {
        "0000-01-01T00:00:00+23:59", "9999-12-31T23:59:60-23:59", "2016-02-30T00:00:00Z",
        "2016-10-04T07:59:42.99999999999999999999Z", "2016-10-04T07:59:42+0100",
    };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
        run_text(fuzz_time_one, times[i]);
    static const uint8_t int64_min[8] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    fuzz_time_one(int64_min, sizeof int64_min);

    static const char *const configs[] = {
        "lots: &l [*l]\n",                                   /* a list that contains itself */
        "mqtt: &m {tls: *m}\nlots: [{id: A, capacity: 1, source: count}]\n",
        "lots: [{id: A, capacity: 1, source: count}]\n---\nlots: []\n",
        "lots:\n  - {id: \"A\\0B\", capacity: 1, source: count}\n",
        "timezone: ../../etc/passwd\nlots: [{id: A, capacity: 1, source: count}]\n",
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++)
        run_text(fuzz_config_one, configs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_payload),
        cmocka_unit_test(test_corpus_topic),
        cmocka_unit_test(test_corpus_time),
        cmocka_unit_test(test_corpus_config),
        cmocka_unit_test(test_corpus_uplink),
        cmocka_unit_test(test_named_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
