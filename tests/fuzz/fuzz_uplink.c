/* fuzz_uplink: libFuzzer target for ul_parse (SPEC §9), both formats.
 *
 * Input: one selector byte, then the message. Selector bit 0 picks the format (TTN v3 or
 * ChirpStack v4), bits 1-2 the topic (an uplink's, a join's, NULL, ""), bit 3 a value map
 * instead of the default values. Besides crashes and sanitizer reports it aborts when a result
 * breaks the contract of uplink.h: an unknown reason, a rejected message not left zeroed, an
 * accepted one with an id, DevEUI or time out of its documented form, a message jansson cannot
 * read as an object not reported malformed, or two parses of the same bytes that differ. */
#include "payload.h"
#include "uplink.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* payload.c's bound: event times lie before 10000-01-01T00:00:00Z. */
#define TS_LIMIT_MS (INT64_C(253402300800) * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, enum ul_format f, enum ul_result r)
{
    fprintf(stderr, "fuzz_uplink: %s (format %d, result %s)\n", what, (int)f, ul_reason_name(r));
    abort();
}

static int is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i])
            return 0;
    }
    return 1;
}

static void check_fields(enum ul_format f, enum ul_result r, const ul_uplink *u)
{
    size_t idlen = strnlen(u->device_id, sizeof u->device_id);
    if (idlen == sizeof u->device_id || (idlen && !pl_valid_id(u->device_id, idlen)))
        die("device_id breaks the id rule", f, r);
    if (f == UL_TTN_V3 && idlen == 0)
        die("ttn uplink without device_id", f, r);
    if (f == UL_CHIRPSTACK_V4 && !u->has_dev_eui)
        die("chirpstack uplink without DevEUI", f, r);
    if (u->has_dev_eui) {
        if (strlen(u->dev_eui) != UL_DEV_EUI_LEN ||
            strspn(u->dev_eui, "0123456789ABCDEF") != UL_DEV_EUI_LEN)
            die("DevEUI not 16 upper-case hex digits", f, r);
    } else if (!is_zero(u->dev_eui, sizeof u->dev_eui)) {
        die("dev_eui without has_dev_eui", f, r);
    }
    if (!u->has_fcnt && u->f_cnt != 0)
        die("f_cnt without has_fcnt", f, r);
    if (u->has_time ? u->time_ms < 0 || u->time_ms >= TS_LIMIT_MS : u->time_ms != 0)
        die("time out of range", f, r);
}

static void check(enum ul_format f, enum ul_result r, const ul_uplink *u)
{
    switch (r) {
    case UL_MALFORMED:
    case UL_NOT_UPLINK:
        if (!is_zero(u, sizeof *u))
            die("rejected uplink not zeroed", f, r);
        return;
    case UL_NO_FIELD:
    case UL_UNMAPPED_VALUE:
        if (u->occupied)
            die("occupied set without a state", f, r);
        check_fields(f, r, u);
        return;
    case UL_OK:
        check_fields(f, r, u);
        return;
    case UL_RESULT_COUNT:
        break;
    }
    die("unknown result", f, r);
}

/* What jansson alone makes of the message: an object, or not. */
static int reference_object(const uint8_t *data, size_t size)
{
    json_error_t e;
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &e);
    int is_obj = json_is_object(root);
    json_decref(root);
    return is_obj;
}

static const ul_value_map *value_map(void)
{
    static ul_value_map m;
    static int built;
    if (!built) {
        static const char *const occ[] = {"\"occupied\"", "1", "true"};
        static const char *const fr[] = {"\"free\"", "0", "2.5"};
        char err[UL_ERRBUF_SIZE];
        for (size_t i = 0; i < 3; i++) {
            ul_scalar s;
            if (ul_scalar_parse(occ[i], strlen(occ[i]), &s, err) || ul_map_add(&m, 1, &s, err) ||
                ul_scalar_parse(fr[i], strlen(fr[i]), &s, err) || ul_map_add(&m, 0, &s, err))
                die(err, UL_TTN_V3, UL_OK);
        }
        built = 1;
    }
    return &m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const topics[][4] = {
        {"v3/app1@ttn/devices/dev1/up", "v3/app1@ttn/devices/dev1/join", NULL, ""},
        {"application/a/device/0101010101010101/event/up",
         "application/a/device/0101010101010101/event/join", NULL, ""},
    };
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    enum ul_format f = (sel & 1) ? UL_CHIRPSTACK_V4 : UL_TTN_V3;
    const char *topic = topics[sel & 1][(sel >> 1) & 3];
    const ul_value_map *map = (sel & 8) ? value_map() : NULL;
    char err[UL_ERRBUF_SIZE];
    ul_field_path field;  /* not "path": test_regressions includes fuzz_config.c, whose static is */
    if (ul_path_parse(f == UL_TTN_V3 ? "decoded_payload.occupied" : "occupied", &field, err))
        die(err, f, UL_OK);

    const char *msg = (const char *)data + 1;
    size_t len = size - 1;
    ul_uplink a, b;
    memset(&a, 0xa5, sizeof a);
    enum ul_result r = ul_parse(f, topic, msg, len, &field, map, &a);
    check(f, r, &a);
    memset(&b, 0x5a, sizeof b);
    if (ul_parse(f, topic, msg, len, &field, map, &b) != r || memcmp(&a, &b, sizeof a) != 0)
        die("two parses differ", f, r);
    if (r != UL_MALFORMED && !reference_object(data + 1, len))
        die("accepted a message jansson does not read as an object", f, r);
    return 0;
}
