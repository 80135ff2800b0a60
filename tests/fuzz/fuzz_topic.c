/* fuzz_topic: libFuzzer target for pl_parse_topic and pl_valid_id (SPEC §2, §3).
 *
 * Input: one selector byte, then the topic. The selector picks the input prefix: one of a few
 * fixed ones, or (odd selectors) the bytes up to the first NUL of the rest, so prefixes get
 * fuzzed too. Besides sanitizer reports it aborts when pl_valid_id disagrees with a plain
 * reading of the SPEC §2 rule, or when an accepted topic does not rebuild to exactly the input
 * from its parts (so nothing a topic level holds can slip into a Redis key or an output topic
 * unvalidated), or when a rejected one leaves anything in *out. */
#include "payload.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
    fprintf(stderr, "fuzz_topic: %s\n", what);
    abort();
}

/* SPEC §2 as written: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, nothing else (bytes, not locale). */
static int reference_id(const uint8_t *s, size_t len)
{
    if (len < 1 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        int alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return 0;
    }
    return 1;
}

static void check_topic(const char *topic, const char *prefix)
{
    pl_topic t;
    memset(&t, 0xa5, sizeof t);
    enum pl_reject r = pl_parse_topic(topic, prefix, &t);
    if (r != PL_OK) {
        pl_topic zero;
        memset(&zero, 0, sizeof zero);
        if (r != PL_BAD_TOPIC && r != PL_BAD_ID)
            die("reason other than bad_topic/bad_id");
        if (memcmp(&zero, &t, sizeof t) != 0)
            die("rejected topic not zeroed");
        return;
    }
    size_t lot_len = strnlen(t.lot, sizeof t.lot), sensor_len = strnlen(t.sensor, sizeof t.sensor);
    if (lot_len > PL_ID_MAX || sensor_len > PL_ID_MAX)
        die("id not NUL-terminated");
    if (!reference_id((const uint8_t *)t.lot, lot_len))
        die("accepted an invalid lot id");
    const char *level;
    switch (t.kind) {
    case PL_KIND_BAY: level = "bay"; break;
    case PL_KIND_GATE: level = "gate"; break;
    case PL_KIND_COUNT: level = "count"; break;
    default: die("bad kind"); return;
    }
    if (t.kind == PL_KIND_COUNT ? sensor_len != 0
                                : !reference_id((const uint8_t *)t.sensor, sensor_len))
        die("accepted an invalid sensor id");
    size_t need = strlen(prefix) + lot_len + sensor_len + 16;
    char *rebuilt = malloc(need);
    if (!rebuilt)
        abort();
    int n = t.kind == PL_KIND_COUNT
                ? snprintf(rebuilt, need, "%s%s%s/count", prefix, *prefix ? "/" : "", t.lot)
                : snprintf(rebuilt, need, "%s%s%s/%s/%s", prefix, *prefix ? "/" : "", t.lot,
                           level, t.sensor);
    if (n < 0 || strcmp(rebuilt, topic) != 0)
        die("accepted topic does not rebuild from its parts");
    free(rebuilt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const prefixes[] = {"parking", "city/parking", "", "a/b/c/d"};
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;

    /* pl_valid_id reads exactly LEN bytes, NULs included. */
    if ((pl_valid_id((const char *)data, size) ? 1 : 0) != reference_id(data, size))
        die("pl_valid_id disagrees with the SPEC §2 rule");

    char *buf = malloc(size + 1);   /* exact size, so ASan sees any read past the NUL */
    if (!buf)
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    if (sel & 1) {
        /* "PREFIX\0TOPIC": a fuzzed prefix (the config refuses + and #, but be robust anyway) */
        size_t plen = strlen(buf);
        const char *topic = plen < size ? buf + plen + 1 : "";
        check_topic(topic, buf);
    } else {
        check_topic(buf, prefixes[(sel >> 1) % (sizeof prefixes / sizeof prefixes[0])]);
    }
    free(buf);
    return 0;
}
