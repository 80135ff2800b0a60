/* fuzz_payload: libFuzzer target for pl_parse_payload (SPEC §3), every kind, bare and JSON forms.
 *
 * Besides crashes and sanitizer reports it aborts when a result breaks the contract of
 * payload.h: a reason other than PL_OK/PL_MALFORMED, a rejected event not left zeroed, an
 * accepted one with a field out of its documented range, or a ts that does not survive
 * pl_format_time + pl_parse_time. A differential check against plain jansson covers the gate
 * "seq" scan, the one part of the parser that reads JSON by hand. */
#include "payload.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* payload.c: event times lie in [0, 10000-01-01T00:00:00Z). */
#define TS_LIMIT_MS (INT64_C(253402300800) * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, enum pl_kind kind, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_payload: %s (kind %d, %zu bytes)\n", what, (int)kind, size);
    abort();
}

/* An accepted event's ts must format and parse back to the same second. */
static void check_ts(const pl_event *ev, const uint8_t *data, size_t size)
{
    if (!ev->has_ts)
        return;
    if (ev->ts_ms < 0 || ev->ts_ms >= TS_LIMIT_MS)
        die("ts out of range", ev->kind, data, size);
    char buf[32];
    size_t n = pl_format_time(ev->ts_ms, buf, sizeof buf);
    int64_t back;
    if (n != 20 || pl_parse_time(buf, n, &back) != 0 || back != ev->ts_ms - ev->ts_ms % 1000)
        die("ts does not round-trip through pl_format_time", ev->kind, data, size);
}

static void check_event(enum pl_kind kind, enum pl_reject r, const pl_event *ev,
                        const uint8_t *data, size_t size)
{
    if (ev->kind != kind)
        die("kind not kept", kind, data, size);
    if (r != PL_OK) {
        pl_event zero;
        memset(&zero, 0, sizeof zero);
        zero.kind = kind;
        if (r != PL_MALFORMED)
            die("reason other than malformed", kind, data, size);
        if (memcmp(&zero, ev, sizeof zero) != 0)
            die("rejected event not zeroed", kind, data, size);
        return;
    }
    check_ts(ev, data, size);
    switch (kind) {
    case PL_KIND_BAY:
        break;
    case PL_KIND_GATE:
        if (ev->count < 1 || ev->count > (uint64_t)INT64_MAX)
            die("gate count out of range", kind, data, size);
        if (!ev->has_seq && ev->seq != 0)
            die("seq without has_seq", kind, data, size);
        break;
    case PL_KIND_COUNT:
        if (ev->value < 0)
            die("negative count value", kind, data, size);
        if (ev->has_capacity ? ev->capacity < 1 : ev->capacity != 0)
            die("capacity out of range", kind, data, size);
        break;
    }
}

/* The payload as jansson alone sees it, when it is a JSON text (after the whitespace trim
 * payload.c does). Returns NULL when it is not JSON or jansson refuses it; *OVERFLOW says the
 * refusal was a number too big for int64, which payload.c deliberately handles for "seq". */
static json_t *reference_json(const uint8_t *data, size_t size, int *overflow)
{
    static const char space[] = " \t\r\n\v\f";
    const char *p = (const char *)data;
    size_t i = 0, j = size;
    *overflow = 0;
    while (i < j && p[i] && strchr(space, p[i]))
        i++;
    while (j > i && p[j - 1] && strchr(space, p[j - 1]))
        j--;
    if (i == j || p[i] != '{' || memchr(p + i, 0, j - i))
        return NULL;
    json_error_t e;
    json_t *root = json_loadb(p + i, j - i, JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        *overflow = json_error_code(&e) == json_error_numeric_overflow;
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* Gate JSON against jansson: every document payload.c accepts jansson accepts too (but for an
 * unsigned seq beyond INT64_MAX), an int64-range seq is read as jansson reads it, and a plain
 * {"event": "in"|"out"} with no count, seq or ts is never refused whatever else it holds. */
static void check_gate_differential(const uint8_t *data, size_t size)
{
    pl_event ev;
    enum pl_reject r = pl_parse_payload(PL_KIND_GATE, (const char *)data, size, &ev);
    int overflow;
    json_t *root = reference_json(data, size, &overflow);
    if (!root) {
        const char *p = (const char *)data;
        size_t i = 0;
        while (i < size && p[i] && strchr(" \t\r\n\v\f", p[i]))
            i++;
        if (r == PL_OK && i < size && p[i] == '{' && !overflow)
            die("accepted JSON that jansson refuses", PL_KIND_GATE, data, size);
        return;
    }
    const json_t *seq = json_object_get(root, "seq");
    const json_t *event = json_object_get(root, "event");
    if (r == PL_OK) {
        if (!json_is_string(event))
            die("accepted a gate without a string event", PL_KIND_GATE, data, size);
        if (ev.has_seq != (seq != NULL))
            die("has_seq disagrees with jansson", PL_KIND_GATE, data, size);
        if (seq && (!json_is_integer(seq) || json_integer_value(seq) < 0 ||
                    ev.seq != (uint64_t)json_integer_value(seq)))
            die("seq value disagrees with jansson", PL_KIND_GATE, data, size);
    } else if (!seq && !json_object_get(root, "count") && !json_object_get(root, "ts") &&
               json_is_string(event)) {
        const char *s = json_string_value(event);
        size_t n = json_string_length(event);
        if ((n == 2 && !memcmp(s, "in", 2)) || (n == 3 && !memcmp(s, "out", 3)))
            die("refused a plain gate event", PL_KIND_GATE, data, size);
    }
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum pl_kind kinds[] = {PL_KIND_BAY, PL_KIND_GATE, PL_KIND_COUNT};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        pl_event ev;
        memset(&ev, 0xa5, sizeof ev);   /* nothing of a previous call may show through */
        enum pl_reject r = pl_parse_payload(kinds[k], (const char *)data, size, &ev);
        check_event(kinds[k], r, &ev, data, size);
    }
    check_gate_differential(data, size);
    return 0;
}
