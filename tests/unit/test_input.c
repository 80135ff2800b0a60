/* Unit tests of input: a network server's uplinks to bay events, duplicates, and the counters
 * per input (SPEC §9), with a configuration and devices files as parkd loads them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "input.h"

#define T0 "2026-12-04T10:00:00Z"
#define T0_MS INT64_C(1796378400000)

static char dir[64];

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* A configuration with a ttn-v3 input (value map off) and a chirpstack-v4 one (value map on),
 * over DEVICES; loaded with inp_load. */
static inp_set *load(const char *devices, cfg_config **cfg_out)
{
    char cfg_path[128], dev_path[128], text[1024];
    snprintf(dev_path, sizeof dev_path, "%s/devices.csv", dir);
    write_file(dev_path, devices);
    snprintf(cfg_path, sizeof cfg_path, "%s/parkd.yaml", dir);
    snprintf(text, sizeof text,
             "lots:\n  - {id: P1, capacity: 5, source: bays}\n"
             "inputs:\n"
             "  - {name: tts, format: ttn-v3, occupied: {field: decoded_payload.occupied},\n"
             "     devices_file: %s, max_payload: 600}\n"
             "  - {name: cs, format: chirpstack-v4, devices_file: %s,\n"
             "     occupied: {field: status, occupied: [\"occupied\", 1], free: [\"free\", 0]}}\n",
             dev_path, dev_path);
    write_file(cfg_path, text);
    char *errors = NULL;
    cfg_config *cfg = NULL;
    if (cfg_load(cfg_path, &cfg, &errors) < 0)
        fail_msg("%s", errors);
    inp_set *s = inp_load(cfg, &errors);
    if (!s)
        fail_msg("%s", errors);
    *cfg_out = cfg;
    return s;
}

static int setup(void **state)
{
    strcpy(dir, "/tmp/parkd-input-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/devices.csv", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/parkd.yaml", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

static bool take(inp_set *s, size_t i, const char *topic, const char *payload, inp_event *e,
                 enum inp_counter *why)
{
    return inp_take(s, i, topic, payload, strlen(payload), T0_MS + 999, e, why);
}

static char *ttn(const char *device, int f_cnt, const char *occupied, const char *at)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "{\"end_device_ids\":{\"device_id\":\"%s\"},\"uplink_message\":"
             "{\"f_cnt\":%d,\"decoded_payload\":{\"occupied\":%s},\"received_at\":\"%s\"}}",
             device, f_cnt, occupied, at);
    return buf;
}

/* An uplink becomes its device's bay event, at the uplink's own time. */
static void test_uplink_to_event(void **state)
{
    cfg_config *cfg;
    inp_set *s = load("dev-1,P1,b1\n0A0B0C0D0E0F0001,P1,b2\n", &cfg);
    inp_event e;
    enum inp_counter why;
    assert_true(take(s, 0, "v3/a@t/devices/dev-1/up", ttn("dev-1", 7, "true", T0), &e, &why));
    assert_string_equal(e.topic.lot, "P1");
    assert_string_equal(e.topic.sensor, "b1");
    assert_int_equal(e.topic.kind, PL_KIND_BAY);
    assert_true(e.ev.occupied);
    assert_true(e.ev.has_ts);
    assert_int_equal(e.ev.ts_ms, T0_MS);
    const char *cs = "{\"deviceInfo\":{\"devEui\":\"0a0b0c0d0e0f0001\"},\"fCnt\":3,"
                     "\"object\":{\"status\":0},\"time\":\"" T0 "\"}";
    assert_true(take(s, 1, "application/x/device/0a0b0c0d0e0f0001/event/up", cs, &e, &why));
    assert_string_equal(e.topic.sensor, "b2");
    assert_false(e.ev.occupied);
    assert_int_equal(s->inputs[0].counters[INP_C_UPLINKS], 1);
    assert_int_equal(s->inputs[1].counters[INP_C_UPLINKS], 1);
    inp_free(s);
    cfg_free(cfg);
}

/* The same device and frame counter again is a duplicate; a rejoin's low counter later on is
 * not; the same counter much later (a counter that wrapped, or a rejoin) is not either. */
static void test_duplicates(void **state)
{
    cfg_config *cfg;
    inp_set *s = load("dev-1,P1,b1\n", &cfg);
    inp_event e;
    enum inp_counter why;
    assert_true(take(s, 0, NULL, ttn("dev-1", 40, "true", T0), &e, &why));
    assert_false(take(s, 0, NULL, ttn("dev-1", 40, "true", T0), &e, &why));
    assert_int_equal(why, INP_C_DUPLICATE);
    assert_true(take(s, 0, NULL, ttn("dev-1", 1, "false", "2026-12-04T10:05:00Z"), &e, &why));
    assert_true(take(s, 0, NULL, ttn("dev-1", 1, "true", "2026-12-04T11:00:00Z"), &e, &why));
    assert_int_equal(s->inputs[0].counters[INP_C_DUPLICATE], 1);
    inp_free(s);
    cfg_free(cfg);
}

/* Each way an uplink fails is counted under its own name, and gives no event. */
static void test_rejections(void **state)
{
    cfg_config *cfg;
    inp_set *s = load("dev-1,P1,b1\n0A0B0C0D0E0F0001,P1,b2\n", &cfg);
    inp_event e;
    enum inp_counter why;
    static const struct { size_t input; const char *topic, *payload; enum inp_counter why; } cases[] = {
        {0, NULL, "not json", INP_C_REJECTED_MALFORMED},
        {0, NULL, "{\"end_device_ids\":{\"device_id\":\"ghost\"},\"uplink_message\":{\"f_cnt\":1,"
                  "\"decoded_payload\":{\"occupied\":true}}}", INP_C_REJECTED_UNKNOWN_DEVICE},
        {0, NULL, "{\"end_device_ids\":{\"device_id\":\"dev-1\"},\"uplink_message\":{\"f_cnt\":2}}",
         INP_C_REJECTED_NO_FIELD},
        {0, NULL, "{\"end_device_ids\":{\"device_id\":\"dev-1\"},\"join_accept\":{}}", INP_C_NOT_UPLINK},
        {1, "application/x/device/0a0b0c0d0e0f0001/event/up",
         "{\"deviceInfo\":{\"devEui\":\"0a0b0c0d0e0f0001\"},\"fCnt\":3,\"object\":{\"status\":\"broken\"}}",
         INP_C_REJECTED_UNMAPPED_VALUE},
        {1, "application/x/device/0a0b0c0d0e0f0001/event/status",
         "{\"deviceInfo\":{\"devEui\":\"0a0b0c0d0e0f0001\"},\"batteryLevel\":90}", INP_C_NOT_UPLINK},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_false(take(s, cases[k].input, cases[k].topic, cases[k].payload, &e, &why));
        assert_int_equal(why, cases[k].why);
        assert_int_equal(s->inputs[cases[k].input].counters[cases[k].why], 1);
    }
    char big[700];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_false(take(s, 0, NULL, big, &e, &why));      /* past the input's max_payload */
    assert_int_equal(why, INP_C_REJECTED_OVERSIZE);
    assert_int_equal(inp_counter_for_reject(PL_UNKNOWN_LOT), INP_C_REJECTED_UNKNOWN_LOT);
    assert_int_equal(inp_counter_for_reject(PL_AMBIGUOUS_ZONE), INP_C_REJECTED_AMBIGUOUS_ZONE);
    inp_free(s);
    cfg_free(cfg);
}

/* A reload's new set keeps the counters and the duplicate memory of inputs of the same name. */
static void test_carry(void **state)
{
    cfg_config *cfg, *cfg2;
    inp_set *s = load("dev-1,P1,b1\n", &cfg);
    inp_event e;
    enum inp_counter why;
    assert_true(take(s, 0, NULL, ttn("dev-1", 5, "true", T0), &e, &why));
    inp_set *s2 = load("dev-1,P1,b9\n", &cfg2);        /* the device moved to another bay */
    inp_carry(s2, s);
    inp_free(s);
    assert_int_equal(s2->inputs[0].counters[INP_C_UPLINKS], 1);
    assert_false(take(s2, 0, NULL, ttn("dev-1", 5, "true", T0), &e, &why));
    assert_int_equal(why, INP_C_DUPLICATE);
    assert_true(take(s2, 0, NULL, ttn("dev-1", 6, "false", T0), &e, &why));
    assert_string_equal(e.topic.sensor, "b9");
    inp_free(s2);
    cfg_free(cfg);
    cfg_free(cfg2);
}

/* A wrong devices file is refused with its PATH:LINE errors. */
static void test_bad_devices_file(void **state)
{
    char dev_path[128], cfg_path[128], text[512];
    snprintf(dev_path, sizeof dev_path, "%s/devices.csv", dir);
    write_file(dev_path, "dev-1,P1\n");
    snprintf(cfg_path, sizeof cfg_path, "%s/parkd.yaml", dir);
    snprintf(text, sizeof text, "lots:\n  - {id: P1, capacity: 5, source: bays}\ninputs:\n"
             "  - {name: a, format: ttn-v3, occupied: {field: x}, devices_file: %s}\n", dev_path);
    write_file(cfg_path, text);
    char *errors = NULL;
    cfg_config *cfg = NULL;
    assert_int_equal(cfg_load(cfg_path, &cfg, &errors), 0);
    assert_null(inp_load(cfg, &errors));
    char want[160];
    snprintf(want, sizeof want, "%s:1:", dev_path);
    assert_non_null(strstr(errors, want));
    free(errors);
    cfg_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_uplink_to_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_carry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_devices_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
