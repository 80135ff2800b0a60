/* Unit tests of uplink: TTN v3 and ChirpStack v4 uplinks (SPEC §9), field paths, value maps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uplink.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- fixtures --------------------------------------------------------------------------------
 * The Things Stack messages follow the "Uplink message example" and "Join message example" of
 * https://www.thethingsindustries.com/docs/integrations/data-formats/ (doc/content/integrations/
 * data-formats/_index.md of TheThingsIndustries/lorawan-stack-docs); only f_cnt and
 * decoded_payload are changed to a parking sensor's. */

#define TTN_TOPIC "v3/app1@ttn/devices/dev1/up"

#define TTN_IDS \
    "\"end_device_ids\":{\"device_id\":\"dev1\",\"application_ids\":{\"application_id\":\"app1\"}," \
    "\"dev_eui\":\"0004A30B001C0530\",\"join_eui\":\"800000000000000C\",\"dev_addr\":\"00BCB929\"},"

#define TTN_GTW1 \
    "\"rx_metadata\":[{\"gateway_ids\":{\"gateway_id\":\"gtw1\",\"eui\":\"9C5C8E00001A05C4\"}," \
    "\"time\":\"2020-02-12T15:15:45.787Z\",\"timestamp\":2463457000,\"rssi\":-35," \
    "\"channel_rssi\":-35,\"snr\":5,\"uplink_token\":\"ChIKEAoEZ3R3MRIInFyOAAAaBcQQ6L3Vlgk=\"," \
    "\"channel_index\":2}],"

/* The same frame heard by a second gateway (different rx_metadata): a redelivery, same f_cnt. */
#define TTN_GTW2 \
    "\"rx_metadata\":[{\"gateway_ids\":{\"gateway_id\":\"gtw2\",\"eui\":\"B827EBFFFE8D5B0A\"}," \
    "\"time\":\"2020-02-12T15:15:45.788Z\",\"timestamp\":117804212,\"rssi\":-97," \
    "\"channel_rssi\":-97,\"snr\":-4.25,\"uplink_token\":\"ChIKEAoEZ3R3MhIIuCfr//6NWwoQ\"," \
    "\"channel_index\":5}],"

#define TTN_SETTINGS \
    "\"settings\":{\"data_rate\":{\"lora\":{\"bandwidth\":125000,\"spreading_factor\":7}}," \
    "\"data_rate_index\":5,\"coding_rate\":\"4/6\",\"frequency\":\"868300000\"," \
    "\"timestamp\":2463457000,\"time\":\"2020-02-12T15:15:45.787Z\"}," \
    "\"consumed_airtime\":\"0.056576s\","

#define TTN_HEAD \
    "{" TTN_IDS "\"correlation_ids\":[\"as:up:01E0WZGT6Y7657CPFPE5WEYDSQ\"," \
    "\"gs:conn:01E0WDEC6T5T4XXBAX7S1VMFKE\"],\"received_at\":\"2020-02-12T15:15:46.014773143Z\","

/* uplink_message.received_at 2020-02-12T15:15:45.789585559Z, rounded to ms. */
#define TTN_UP_MS INT64_C(1581520545790)
/* the top-level received_at 2020-02-12T15:15:46.014773143Z */
#define TTN_AS_MS INT64_C(1581520546015)

static const char ttn_up[] =
    TTN_HEAD "\"uplink_message\":{\"session_key_id\":\"AXA50tHUGUucuzS/bCGMNw==\",\"f_port\":1,"
    "\"f_cnt\":42,\"frm_payload\":\"AQ==\",\"decoded_payload\":{\"occupied\":true,\"battery\":3.6},"
    TTN_GTW1 TTN_SETTINGS "\"received_at\":\"2020-02-12T15:15:45.789585559Z\"}}";

static const char ttn_up_gtw2[] =
    TTN_HEAD "\"uplink_message\":{\"session_key_id\":\"AXA50tHUGUucuzS/bCGMNw==\",\"f_port\":1,"
    "\"f_cnt\":42,\"frm_payload\":\"AQ==\",\"decoded_payload\":{\"occupied\":true,\"battery\":3.6},"
    TTN_GTW2 TTN_SETTINGS "\"received_at\":\"2020-02-12T15:15:45.789585559Z\"}}";

/* No payload formatter on the application: the doc's example without decoded_payload. */
static const char ttn_up_raw[] =
    TTN_HEAD "\"uplink_message\":{\"session_key_id\":\"AXA50tHUGUucuzS/bCGMNw==\",\"f_port\":1,"
    "\"f_cnt\":43,\"frm_payload\":\"gkHe\"," TTN_GTW1 TTN_SETTINGS
    "\"received_at\":\"2020-02-12T15:15:45.789585559Z\"}}";

/* The first uplink of a session: "Empty fields are omitted from payloads" (same page), so f_cnt 0
 * is absent; and no uplink_message.received_at, so the top-level one is the event time. */
static const char ttn_up_fcnt0[] =
    TTN_HEAD "\"uplink_message\":{\"session_key_id\":\"AXA50tHUGUucuzS/bCGMNw==\",\"f_port\":1,"
    "\"frm_payload\":\"AA==\",\"decoded_payload\":{\"occupied\":false}," TTN_GTW1 TTN_SETTINGS
    "\"locations\":{}}}";

/* Join message example of the same page, on v3/app1/devices/dev1/join. */
static const char ttn_join[] =
    "{\"end_device_ids\":{\"device_id\":\"dev1\",\"application_ids\":{\"application_id\":\"app1\"},"
    "\"dev_eui\":\"0004A30B001C0530\",\"join_eui\":\"800000000000000C\",\"dev_addr\":\"01497ECC\"},"
    "\"correlation_ids\":[\"as:up:01E191YN5F2HMBQCBCVRF731VY\"],"
    "\"received_at\":\"2020-02-17T07:49:09.935284891Z\",\"join_accept\":{"
    "\"session_key_id\":\"AXBSH1Pk6Z0G166RlH16CQ==\",\"received_at\":\"2020-02-17T07:49:09.736532315Z\"}}";

/* ChirpStack v4 events follow the JSON examples of
 * https://www.chirpstack.io/docs/chirpstack/integrations/events.html (src/chirpstack/integrations/
 * events.md of chirpstack/chirpstack-docs). The documented "up" example has neither fCnt (0,
 * omitted by the protobuf JSON mapping) nor object (no codec); cs_up adds both. */

#define CS_TOPIC(ev) "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/" ev

#define CS_INFO \
    "\"deviceInfo\":{\"tenantId\":\"52f14cd4-c6f1-4fbd-8f87-4025e1d49242\",\"tenantName\":" \
    "\"ChirpStack\",\"applicationId\":\"17c82e96-be03-4f38-aef3-f83d48582d97\"," \
    "\"applicationName\":\"Test application\",\"deviceProfileId\":" \
    "\"14855bf7-d10d-4aee-b618-ebfcb64dc7ad\",\"deviceProfileName\":\"Test device-profile\"," \
    "\"deviceName\":\"Test device\",\"devEui\":\"0101010101010101\",\"tags\":{\"key\":\"value\"}},"

#define CS_RADIO \
    "\"rxInfo\":[{\"gatewayId\":\"0016c001f153a14c\",\"uplinkId\":4217106255,\"rssi\":-36," \
    "\"snr\":10.5,\"context\":\"E3OWOQ==\",\"metadata\":{\"region_name\":\"eu868\"," \
    "\"region_common_name\":\"EU868\"}}],\"txInfo\":{\"frequency\":867100000,\"modulation\":" \
    "{\"lora\":{\"bandwidth\":125000,\"spreadingFactor\":11,\"codeRate\":\"CR_4_5\"}}}"

/* 2022-07-18T09:34:15.775023242+00:00 */
#define CS_UP_MS INT64_C(1658136855775)

static const char cs_up[] =
    "{\"deduplicationId\":\"3ac7e3c4-4401-4b8d-9386-a5c902f9202d\","
    "\"time\":\"2022-07-18T09:34:15.775023242+00:00\"," CS_INFO
    "\"devAddr\":\"00189440\",\"dr\":1,\"fCnt\":7,\"fPort\":1,\"data\":\"AQ==\","
    "\"object\":{\"occupied\":1}," CS_RADIO "}";

static const char cs_up_doc[] =
    "{\"deduplicationId\":\"3ac7e3c4-4401-4b8d-9386-a5c902f9202d\","
    "\"time\":\"2022-07-18T09:34:15.775023242+00:00\"," CS_INFO
    "\"devAddr\":\"00189440\",\"dr\":1,\"fPort\":1,\"data\":\"qg==\"," CS_RADIO "}";

static const char cs_join[] =
    "{\"deduplicationId\":\"c9dbe358-2578-4fb7-b295-66b44edc45a6\","
    "\"time\":\"2022-07-18T09:33:28.823500726+00:00\"," CS_INFO "\"devAddr\":\"00189440\"}";

static const char cs_status[] =
    "{\"deduplicationId\":\"bf2a9746-1c8b-49be-a92e-f0b89c8534e4\","
    "\"time\":\"2022-07-18T09:35:06.927172638+00:00\"," CS_INFO "\"margin\":10,\"batteryLevel\":88.3}";

/* ---- helpers --------------------------------------------------------------------------------- */

static ul_field_path path_of(const char *text)
{
    ul_field_path p;
    char err[UL_ERRBUF_SIZE];
    if (ul_path_parse(text, &p, err) != 0)
        fail_msg("path '%s' refused: %s", text, err);
    return p;
}

static enum ul_result parse_with(enum ul_format f, const char *topic, const char *msg,
                                 const char *path, const ul_value_map *map, ul_uplink *out)
{
    ul_field_path p = path_of(path);
    memset(out, 0xa5, sizeof *out);   /* nothing of a previous call may show through */
    return ul_parse(f, topic, msg, strlen(msg), &p, map, out);
}

static enum ul_result ttn(const char *msg, ul_uplink *out)
{
    return parse_with(UL_TTN_V3, TTN_TOPIC, msg, "decoded_payload.occupied", NULL, out);
}

static enum ul_result cs(const char *topic, const char *msg, ul_uplink *out)
{
    return parse_with(UL_CHIRPSTACK_V4, topic, msg, "occupied", NULL, out);
}

static void assert_zeroed(const ul_uplink *u)
{
    ul_uplink zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(u, &zero, sizeof zero);
}

static ul_scalar scalar(const char *json)
{
    ul_scalar s;
    char err[UL_ERRBUF_SIZE];
    if (ul_scalar_parse(json, strlen(json), &s, err) != 0)
        fail_msg("scalar '%s' refused: %s", json, err);
    return s;
}

static void map_add(ul_value_map *m, bool occupied, const char *json)
{
    char err[UL_ERRBUF_SIZE];
    ul_scalar s = scalar(json);
    if (ul_map_add(m, occupied, &s, err) != 0)
        fail_msg("map value '%s' refused: %s", json, err);
}

/* A TTN uplink whose decoded_payload is DECODED (JSON text). */
static enum ul_result ttn_decoded(const char *decoded, const char *path, const ul_value_map *map,
                                  ul_uplink *out)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "{" TTN_IDS "\"uplink_message\":{\"f_cnt\":5,\"decoded_payload\":%s}}",
             decoded);
    return parse_with(UL_TTN_V3, TTN_TOPIC, msg, path, map, out);
}

/* ---- TTN -------------------------------------------------------------------------------------- */

static void test_ttn_uplink(void **state)
{
    ul_uplink u;
    assert_int_equal(ttn(ttn_up, &u), UL_OK);
    assert_string_equal(u.device_id, "dev1");
    assert_true(u.has_dev_eui);
    assert_string_equal(u.dev_eui, "0004A30B001C0530");
    assert_true(u.has_fcnt);
    assert_int_equal(u.f_cnt, 42);
    assert_true(u.has_time);
    assert_int_equal(u.time_ms, TTN_UP_MS);
    assert_true(u.occupied);
}

static void test_ttn_two_gateways(void **state)
{
    ul_uplink a, b;
    assert_int_equal(ttn(ttn_up, &a), UL_OK);
    assert_int_equal(ttn(ttn_up_gtw2, &b), UL_OK);
    assert_memory_equal(&a, &b, sizeof a);   /* the caller's (device, f_cnt) dedup sees one frame */
}

static void test_ttn_no_decoded_payload(void **state)
{
    ul_uplink u;
    assert_int_equal(ttn(ttn_up_raw, &u), UL_NO_FIELD);
    assert_string_equal(u.device_id, "dev1");   /* identity kept for the log line */
    assert_int_equal(u.f_cnt, 43);
    assert_int_equal(u.time_ms, TTN_UP_MS);
    assert_false(u.occupied);
}

static void test_ttn_fcnt_absent_is_zero(void **state)
{
    ul_uplink u;
    assert_int_equal(ttn(ttn_up_fcnt0, &u), UL_OK);
    assert_false(u.has_fcnt);
    assert_int_equal(u.f_cnt, 0);
    assert_true(u.has_time);
    assert_int_equal(u.time_ms, TTN_AS_MS);   /* fallback: the top-level received_at */
    assert_false(u.occupied);
}

static void test_ttn_join_not_uplink(void **state)
{
    ul_uplink u;
    assert_int_equal(parse_with(UL_TTN_V3, "v3/app1/devices/dev1/join", ttn_join,
                                "decoded_payload.occupied", NULL, &u), UL_NOT_UPLINK);
    assert_zeroed(&u);
}

static void test_ttn_optional_fields(void **state)
{
    ul_uplink u;
    /* no dev_eui (allowed), no time anywhere: the caller uses its receive time */
    const char *msg = "{\"end_device_ids\":{\"device_id\":\"eui-70b3d57ed005b89a\"},"
                      "\"uplink_message\":{\"f_cnt\":1,\"decoded_payload\":{\"occupied\":\"free\"}}}";
    assert_int_equal(ttn(msg, &u), UL_OK);
    assert_string_equal(u.device_id, "eui-70b3d57ed005b89a");
    assert_false(u.has_dev_eui);
    assert_false(u.has_time);
    assert_false(u.occupied);
    /* a lower-case dev_eui is normalised */
    msg = "{\"end_device_ids\":{\"device_id\":\"d1\",\"dev_eui\":\"70b3d57ed005b89a\"},"
          "\"uplink_message\":{\"f_cnt\":4294967295,\"decoded_payload\":{\"occupied\":1}}}";
    assert_int_equal(ttn(msg, &u), UL_OK);
    assert_string_equal(u.dev_eui, "70B3D57ED005B89A");
    assert_int_equal(u.f_cnt, UINT32_MAX);
}

static void test_ttn_long_ids(void **state)
{
    char id[80], msg[400];
    ul_uplink u;
    memset(id, 'a', 64);
    id[64] = '\0';
    snprintf(msg, sizeof msg, "{\"end_device_ids\":{\"device_id\":\"%s\"},\"uplink_message\":"
             "{\"decoded_payload\":{\"occupied\":true}}}", id);
    assert_int_equal(ttn(msg, &u), UL_OK);
    assert_string_equal(u.device_id, id);
    id[64] = 'a';
    id[65] = '\0';
    snprintf(msg, sizeof msg, "{\"end_device_ids\":{\"device_id\":\"%s\"},\"uplink_message\":"
             "{\"decoded_payload\":{\"occupied\":true}}}", id);
    assert_int_equal(ttn(msg, &u), UL_MALFORMED);
    assert_zeroed(&u);
}

static void test_ttn_malformed(void **state)
{
    static const char *const cases[] = {
        "", "not json", "[1]", "\"up\"", "42", "{\"uplink_message\":{}",
        "{\"uplink_message\":\"x\",\"end_device_ids\":{\"device_id\":\"d\"}}",
        "{\"uplink_message\":{}}",
        "{\"end_device_ids\":\"d\",\"uplink_message\":{}}",
        "{\"end_device_ids\":{\"device_id\":7},\"uplink_message\":{}}",
        "{\"end_device_ids\":{\"device_id\":\"has space\"},\"uplink_message\":{}}",
        "{\"end_device_ids\":{\"device_id\":\"\"},\"uplink_message\":{}}",
        "{\"end_device_ids\":{\"device_id\":\"d\",\"dev_eui\":\"0004A30B001C053\"},\"uplink_message\":{}}",
        "{\"end_device_ids\":{\"device_id\":\"d\",\"dev_eui\":\"0004A30B001C053G\"},\"uplink_message\":{}}",
        "{\"end_device_ids\":{\"device_id\":\"d\",\"dev_eui\":null},\"uplink_message\":{}}",
        "{\"end_device_ids\":{\"device_id\":\"d\"},\"uplink_message\":{\"f_cnt\":-1}}",
        "{\"end_device_ids\":{\"device_id\":\"d\"},\"uplink_message\":{\"f_cnt\":4294967296}}",
        "{\"end_device_ids\":{\"device_id\":\"d\"},\"uplink_message\":{\"f_cnt\":\"1\"}}",
        "{\"end_device_ids\":{\"device_id\":\"d\"},\"uplink_message\":{\"f_cnt\":1.5}}",
        "{\"end_device_ids\":{\"device_id\":\"d\"},\"uplink_message\":{\"received_at\":\"yesterday\"}}",
        "{\"end_device_ids\":{\"device_id\":\"d\"},\"uplink_message\":{\"received_at\":1581520545}}",
        "{\"end_device_ids\":{\"device_id\":\"d\"},\"received_at\":\"1969-12-31T23:59:59Z\","
        "\"uplink_message\":{}}",
        "{\"end_device_ids\":{\"device_id\":\"d\"},\"uplink_message\":{},\"uplink_message\":{}}",
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ul_uplink u;
        enum ul_result r = ttn(cases[i], &u);
        if (r != UL_MALFORMED)
            fail_msg("'%s': %s, expected malformed", cases[i], ul_reason_name(r));
        assert_zeroed(&u);
    }
}

static void test_ttn_field_missing(void **state)
{
    ul_uplink u;
    assert_int_equal(ttn_decoded("{}", "decoded_payload.occupied", NULL, &u), UL_NO_FIELD);
    assert_int_equal(ttn_decoded("{\"occupied\":null}", "decoded_payload.occupied", NULL, &u),
                     UL_NO_FIELD);
    assert_int_equal(ttn_decoded("[true]", "decoded_payload.occupied", NULL, &u), UL_NO_FIELD);
    assert_int_equal(ttn_decoded("{\"a\":5}", "decoded_payload.a.b", NULL, &u), UL_NO_FIELD);
    assert_int_equal(u.f_cnt, 5);
    /* paths are relative to uplink_message: any of its fields can be read */
    assert_int_equal(ttn_decoded("{\"s\":{\"bay\":{\"state\":\"occupied\"}}}",
                                 "decoded_payload.s.bay.state", NULL, &u), UL_OK);
    assert_true(u.occupied);
}

/* ---- values ---------------------------------------------------------------------------------- */

static void test_default_values(void **state)
{
    static const struct { const char *v; enum ul_result r; bool occupied; } cases[] = {
        {"true", UL_OK, true}, {"false", UL_OK, false}, {"1", UL_OK, true}, {"0", UL_OK, false},
        {"\"occupied\"", UL_OK, true}, {"\"free\"", UL_OK, false},
        {"2", UL_UNMAPPED_VALUE, false}, {"-1", UL_UNMAPPED_VALUE, false},
        {"1.0", UL_UNMAPPED_VALUE, false}, {"\"true\"", UL_UNMAPPED_VALUE, false},
        {"\"Occupied\"", UL_UNMAPPED_VALUE, false}, {"\"free \"", UL_UNMAPPED_VALUE, false},
        {"{}", UL_UNMAPPED_VALUE, false}, {"[1]", UL_UNMAPPED_VALUE, false},
        {"\"free\\u0000x\"", UL_MALFORMED, false},   /* jansson refuses NUL without a flag */
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char decoded[64];
        ul_uplink u;
        snprintf(decoded, sizeof decoded, "{\"occupied\":%s}", cases[i].v);
        enum ul_result r = ttn_decoded(decoded, "decoded_payload.occupied", NULL, &u);
        if (r != cases[i].r || u.occupied != cases[i].occupied)
            fail_msg("value %s: %s/%d", cases[i].v, ul_reason_name(r), u.occupied);
    }
}

static void test_value_map_strings(void **state)
{
    ul_value_map m;
    memset(&m, 0, sizeof m);
    map_add(&m, true, "\"occupied\"");
    map_add(&m, true, "\"OCC\"");
    map_add(&m, false, "\"vacant\"");
    ul_uplink u;
    assert_int_equal(ttn_decoded("{\"status\":\"OCC\"}", "decoded_payload.status", &m, &u), UL_OK);
    assert_true(u.occupied);
    assert_int_equal(ttn_decoded("{\"status\":\"vacant\"}", "decoded_payload.status", &m, &u),
                     UL_OK);
    assert_false(u.occupied);
    /* with a map, only the map counts: "free" and true are not in it */
    assert_int_equal(ttn_decoded("{\"status\":\"free\"}", "decoded_payload.status", &m, &u),
                     UL_UNMAPPED_VALUE);
    assert_int_equal(ttn_decoded("{\"status\":true}", "decoded_payload.status", &m, &u),
                     UL_UNMAPPED_VALUE);
    assert_int_equal(ttn_decoded("{\"status\":\"occ\"}", "decoded_payload.status", &m, &u),
                     UL_UNMAPPED_VALUE);
    assert_int_equal(u.f_cnt, 5);
}

static void test_value_map_numbers(void **state)
{
    ul_value_map m;
    memset(&m, 0, sizeof m);
    map_add(&m, true, "1");
    map_add(&m, true, "2");
    map_add(&m, false, "0");
    map_add(&m, false, "\"free\"");
    static const struct { const char *v; enum ul_result r; bool occupied; } cases[] = {
        {"1", UL_OK, true}, {"1.0", UL_OK, true}, {"2", UL_OK, true}, {"0", UL_OK, false},
        {"0.0", UL_OK, false}, {"-0", UL_OK, false}, {"\"free\"", UL_OK, false},
        {"\"1\"", UL_UNMAPPED_VALUE, false}, {"3", UL_UNMAPPED_VALUE, false},
        {"1.5", UL_UNMAPPED_VALUE, false}, {"true", UL_UNMAPPED_VALUE, false},
        {"{\"x\":1}", UL_UNMAPPED_VALUE, false},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char decoded[64];
        ul_uplink u;
        snprintf(decoded, sizeof decoded, "{\"st\":%s}", cases[i].v);
        enum ul_result r = ttn_decoded(decoded, "decoded_payload.st", &m, &u);
        if (r != cases[i].r || u.occupied != cases[i].occupied)
            fail_msg("value %s: %s/%d", cases[i].v, ul_reason_name(r), u.occupied);
    }
}

static void test_value_map_booleans(void **state)
{
    ul_value_map m;
    memset(&m, 0, sizeof m);
    map_add(&m, true, "false");   /* an inverted sensor: false means a car is there */
    map_add(&m, false, "true");
    ul_uplink u;
    assert_int_equal(ttn_decoded("{\"empty\":false}", "decoded_payload.empty", &m, &u), UL_OK);
    assert_true(u.occupied);
    assert_int_equal(ttn_decoded("{\"empty\":0}", "decoded_payload.empty", &m, &u),
                     UL_UNMAPPED_VALUE);
}

static void test_value_map_building(void **state)
{
    ul_value_map m;
    ul_scalar s;
    char err[UL_ERRBUF_SIZE];
    memset(&m, 0, sizeof m);
    map_add(&m, true, "1");
    s = scalar("1.0");
    assert_int_equal(ul_map_add(&m, false, &s, err), -1);   /* a value cannot mean both */
    s = scalar("1");
    assert_int_equal(ul_map_add(&m, true, &s, err), -1);    /* nor be listed twice */
    for (int i = 2; i <= UL_MAP_MAX; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        map_add(&m, true, num);
    }
    s = scalar("99");
    assert_int_equal(ul_map_add(&m, true, &s, err), -1);
    assert_non_null(strstr(err, "more than"));
    assert_int_equal(ul_map_add(&m, false, &s, err), 0);    /* the other side still has room */

    static const char *const bad[] = {"null", "{}", "[1]", "", "fre", "\"unterminated",
        "\"0123456789012345678901234567890123456789012345678901234567890123456789\""};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        if (ul_scalar_parse(bad[i], strlen(bad[i]), &s, err) != -1)
            fail_msg("scalar '%s' accepted", bad[i]);
    }
    s = scalar("\"a b\"");
    assert_int_equal(s.kind, UL_SCALAR_STRING);
    assert_int_equal(s.str_len, 3);
    assert_int_equal(scalar("-2.5").kind, UL_SCALAR_NUMBER);
    assert_true(scalar("true").b);
}

/* ---- field paths -------------------------------------------------------------------------- */

static void test_paths(void **state)
{
    ul_field_path p = path_of("decoded_payload.occupied");
    assert_int_equal(p.n_segs, 2);
    assert_string_equal(p.segs[0], "decoded_payload");
    assert_string_equal(p.segs[1], "occupied");
    char seg[UL_SEG_MAX + 2], text[8 * (UL_SEG_MAX + 1) + 16];
    memset(seg, 's', UL_SEG_MAX);
    seg[UL_SEG_MAX] = '\0';
    snprintf(text, sizeof text, "%s.%s.%s.%s.%s.%s.%s.%s", seg, seg, seg, seg, seg, seg, seg, seg);
    p = path_of(text);
    assert_int_equal(p.n_segs, UL_PATH_MAX_SEGS);
    assert_string_equal(p.segs[7], seg);

    char err[UL_ERRBUF_SIZE];
    static const char *const bad[] = {"", ".", "a.", ".a", "a..b", "a.b.c.d.e.f.g.h.i"};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        if (ul_path_parse(bad[i], &p, err) != -1)
            fail_msg("path '%s' accepted", bad[i]);
        assert_int_equal(p.n_segs, 0);
    }
    assert_int_equal(ul_path_parse(NULL, &p, err), -1);
    seg[UL_SEG_MAX] = 's';
    seg[UL_SEG_MAX + 1] = '\0';
    assert_int_equal(ul_path_parse(seg, &p, err), -1);
    assert_non_null(strstr(err, "64 bytes"));
}

/* ---- ChirpStack ------------------------------------------------------------------------------- */

static void test_chirpstack_uplink(void **state)
{
    ul_uplink u;
    assert_int_equal(cs(CS_TOPIC("up"), cs_up, &u), UL_OK);
    assert_true(u.has_dev_eui);
    assert_string_equal(u.dev_eui, "0101010101010101");
    assert_string_equal(u.device_id, "");   /* "Test device" is no id */
    assert_true(u.has_fcnt);
    assert_int_equal(u.f_cnt, 7);
    assert_true(u.has_time);
    assert_int_equal(u.time_ms, CS_UP_MS);
    assert_true(u.occupied);
    /* the same without a topic: recognised by deviceInfo and fCnt/fPort/rxInfo */
    assert_int_equal(cs(NULL, cs_up, &u), UL_OK);
    assert_int_equal(cs("", cs_up, &u), UL_OK);
}

static void test_chirpstack_documented_up(void **state)
{
    ul_uplink u;
    assert_int_equal(cs(CS_TOPIC("up"), cs_up_doc, &u), UL_NO_FIELD);   /* no codec: no object */
    assert_false(u.has_fcnt);
    assert_int_equal(u.f_cnt, 0);
    assert_int_equal(u.time_ms, CS_UP_MS);
    assert_string_equal(u.dev_eui, "0101010101010101");
}

static void test_chirpstack_not_uplink(void **state)
{
    static const struct { const char *topic, *msg; } cases[] = {
        {CS_TOPIC("join"), cs_join}, {CS_TOPIC("status"), cs_status},
        {NULL, cs_join}, {NULL, cs_status},
        {CS_TOPIC("ack"), cs_up},          /* the topic decides when there is one */
        {CS_TOPIC("up/extra"), cs_up},
        {NULL, "{\"fCnt\":1,\"object\":{\"occupied\":true}}"},   /* no deviceInfo */
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ul_uplink u;
        enum ul_result r = cs(cases[i].topic, cases[i].msg, &u);
        if (r != UL_NOT_UPLINK)
            fail_msg("case %zu: %s, expected not_uplink", i, ul_reason_name(r));
        assert_zeroed(&u);
    }
}

static void test_chirpstack_device_name(void **state)
{
    ul_uplink u;
    const char *msg = "{\"deviceInfo\":{\"deviceName\":\"bay-12-sensor\",\"devEui\":"
                      "\"a84041000181c7a1\"},\"fCnt\":3,\"object\":{\"occupied\":false}}";
    assert_int_equal(cs(CS_TOPIC("up"), msg, &u), UL_OK);
    assert_string_equal(u.device_id, "bay-12-sensor");
    assert_string_equal(u.dev_eui, "A84041000181C7A1");
    assert_false(u.has_time);
    assert_false(u.occupied);
}

static void test_chirpstack_malformed(void **state)
{
    static const char *const cases[] = {
        "nope", "[]", "{\"fCnt\":1}",
        "{\"deviceInfo\":{}}",
        "{\"deviceInfo\":{\"devEui\":\"01010101\"}}",
        "{\"deviceInfo\":[],\"fCnt\":1}",
        "{\"deviceInfo\":{\"devEui\":\"0101010101010101\"},\"fCnt\":-3}",
        "{\"deviceInfo\":{\"devEui\":\"0101010101010101\"},\"fCnt\":true}",
        "{\"deviceInfo\":{\"devEui\":\"0101010101010101\"},\"time\":\"2022-07-18\"}",
        "{\"deviceInfo\":{\"devEui\":\"0101010101010101\"},\"time\":\"2022-07-18T09:34:15\"}",
        "{\"deviceInfo\":{\"devEui\":\"0101010101010101\"},\"object\":[1]}",
        "{\"deviceInfo\":{\"devEui\":\"0101010101010101\"},\"object\":\"{}\"}",
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        ul_uplink u;
        enum ul_result r = cs(CS_TOPIC("up"), cases[i], &u);
        if (r != UL_MALFORMED)
            fail_msg("'%s': %s, expected malformed", cases[i], ul_reason_name(r));
        assert_zeroed(&u);
    }
    ul_uplink u;
    assert_int_equal(cs(CS_TOPIC("up"), "{\"deviceInfo\":{\"devEui\":\"0101010101010101\"},"
                        "\"object\":null}", &u), UL_NO_FIELD);
}

static void test_reason_names(void **state)
{
    assert_string_equal(ul_reason_name(UL_OK), "ok");
    assert_string_equal(ul_reason_name(UL_MALFORMED), "malformed");
    assert_string_equal(ul_reason_name(UL_NOT_UPLINK), "not_uplink");
    assert_string_equal(ul_reason_name(UL_NO_FIELD), "no_field");
    assert_string_equal(ul_reason_name(UL_UNMAPPED_VALUE), "unmapped_value");
}

static void test_bad_arguments(void **state)
{
    ul_uplink u;
    ul_field_path empty;
    memset(&empty, 0, sizeof empty);
    assert_int_equal(ul_parse(UL_TTN_V3, NULL, ttn_up, strlen(ttn_up), &empty, NULL, &u),
                     UL_MALFORMED);
    /* a length shorter than the text: only those bytes are read */
    ul_field_path p = path_of("decoded_payload.occupied");
    assert_int_equal(ul_parse(UL_TTN_V3, NULL, ttn_up, strlen(ttn_up) - 1, &p, NULL, &u),
                     UL_MALFORMED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttn_uplink),
        cmocka_unit_test(test_ttn_two_gateways),
        cmocka_unit_test(test_ttn_no_decoded_payload),
        cmocka_unit_test(test_ttn_fcnt_absent_is_zero),
        cmocka_unit_test(test_ttn_join_not_uplink),
        cmocka_unit_test(test_ttn_optional_fields),
        cmocka_unit_test(test_ttn_long_ids),
        cmocka_unit_test(test_ttn_malformed),
        cmocka_unit_test(test_ttn_field_missing),
        cmocka_unit_test(test_default_values),
        cmocka_unit_test(test_value_map_strings),
        cmocka_unit_test(test_value_map_numbers),
        cmocka_unit_test(test_value_map_booleans),
        cmocka_unit_test(test_value_map_building),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_chirpstack_uplink),
        cmocka_unit_test(test_chirpstack_documented_up),
        cmocka_unit_test(test_chirpstack_not_uplink),
        cmocka_unit_test(test_chirpstack_device_name),
        cmocka_unit_test(test_chirpstack_malformed),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
