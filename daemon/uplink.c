/* uplink: The Things Stack v3 and ChirpStack v4 uplinks (SPEC §9).
 *
 * Like payload.c, this runs on every message of an input and is fuzzed: lengths are explicit,
 * jansson's tree is the only allocation and is freed before ul_parse returns, and every field
 * read is type-checked, because a network server's JSON is as untrusted as any other input. */
#include "uplink.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "payload.h"

/* ---- names ---------------------------------------------------------------------------------- */

const char *ul_reason_name(enum ul_result r)
{
    switch (r) {
    case UL_OK: return "ok";
    case UL_MALFORMED: return "malformed";
    case UL_NOT_UPLINK: return "not_uplink";
    case UL_NO_FIELD: return "no_field";
    case UL_UNMAPPED_VALUE: return "unmapped_value";
    case UL_RESULT_COUNT: break;
    }
    return "unknown";
}

/* ---- field paths ------------------------------------------------------------------------------ */

int ul_path_parse(const char *text, ul_field_path *path, char *errbuf)
{
    memset(path, 0, sizeof *path);
    if (!text || !*text) {
        snprintf(errbuf, UL_ERRBUF_SIZE, "empty field path");
        return -1;
    }
    const char *p = text;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        const char *why = n == 0 ? "an empty segment" : n > UL_SEG_MAX ? "a segment over 64 bytes"
                        : path->n_segs == UL_PATH_MAX_SEGS ? "more than 8 segments" : NULL;
        if (why) {
            snprintf(errbuf, UL_ERRBUF_SIZE, "field path \"%.80s\" has %s", text, why);
            memset(path, 0, sizeof *path);
            return -1;
        }
        memcpy(path->segs[path->n_segs++], p, n);
        if (!dot)
            return 0;
        p = dot + 1;
    }
}

/* ---- value maps --------------------------------------------------------------------------------- */

/* JSON V as a scalar. False for null, objects, arrays and overlong strings. */
static bool scalar_from_json(const json_t *v, ul_scalar *out)
{
    memset(out, 0, sizeof *out);
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (n > UL_SCALAR_MAX)
            return false;
        out->kind = UL_SCALAR_STRING;
        memcpy(out->str, json_string_value(v), n);
        out->str_len = n;
    } else if (json_is_number(v)) {
        out->kind = UL_SCALAR_NUMBER;
        out->num = json_number_value(v);
    } else if (json_is_boolean(v)) {
        out->kind = UL_SCALAR_BOOL;
        out->b = json_is_true(v);
    } else {
        return false;
    }
    return true;
}

int ul_scalar_parse(const char *text, size_t len, ul_scalar *out, char *errbuf)
{
    json_error_t e;
    json_t *v = text ? json_loadb(text, len, JSON_DECODE_ANY, &e) : NULL;
    bool ok = v && scalar_from_json(v, out);
    json_decref(v);
    if (!ok) {
        memset(out, 0, sizeof *out);
        snprintf(errbuf, UL_ERRBUF_SIZE, "\"%.*s\" is not a string (at most 64 bytes), number or "
                 "boolean", text ? (int)(len > 64 ? 64 : len) : 0, text ? text : "");
        return -1;
    }
    return 0;
}

static bool scalar_equal(const ul_scalar *a, const ul_scalar *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case UL_SCALAR_STRING: return a->str_len == b->str_len && !memcmp(a->str, b->str, a->str_len);
    case UL_SCALAR_NUMBER: return a->num == b->num;
    case UL_SCALAR_BOOL: return a->b == b->b;
    }
    return false;
}

static bool scalar_in(const ul_scalar *list, size_t n, const ul_scalar *s)
{
    for (size_t i = 0; i < n; i++) {
        if (scalar_equal(&list[i], s))
            return true;
    }
    return false;
}

int ul_map_add(ul_value_map *map, bool occupied, const ul_scalar *s, char *errbuf)
{
    size_t *n = occupied ? &map->n_occupied : &map->n_free;
    if (scalar_in(map->occupied, map->n_occupied, s) || scalar_in(map->free, map->n_free, s)) {
        snprintf(errbuf, UL_ERRBUF_SIZE, "a value is listed twice in the value map");
        return -1;
    }
    if (*n == UL_MAP_MAX) {
        snprintf(errbuf, UL_ERRBUF_SIZE, "more than %d %s values", UL_MAP_MAX,
                 occupied ? "occupied" : "free");
        return -1;
    }
    (occupied ? map->occupied : map->free)[(*n)++] = *s;
    return 0;
}

/* SPEC §3's bay values, for inputs without a map. */
static enum ul_result default_value(const json_t *v, bool *occupied)
{
    if (json_is_boolean(v)) {
        *occupied = json_is_true(v);
    } else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *occupied = json_integer_value(v) == 1;
    } else if (json_is_string(v) && !strcmp(json_string_value(v), "occupied") &&
               json_string_length(v) == 8) {
        *occupied = true;
    } else if (json_is_string(v) && !strcmp(json_string_value(v), "free") &&
               json_string_length(v) == 4) {
        *occupied = false;
    } else {
        return UL_UNMAPPED_VALUE;
    }
    return UL_OK;
}

static enum ul_result map_value(const ul_value_map *map, const json_t *v, bool *occupied)
{
    if (!map || map->n_occupied + map->n_free == 0)
        return default_value(v, occupied);
    ul_scalar s;
    if (!scalar_from_json(v, &s))
        return UL_UNMAPPED_VALUE;
    if (scalar_in(map->occupied, map->n_occupied, &s))
        *occupied = true;
    else if (scalar_in(map->free, map->n_free, &s))
        *occupied = false;
    else
        return UL_UNMAPPED_VALUE;
    return UL_OK;
}

/* ---- field readers ------------------------------------------------------------------------- */

/* The value at PATH under OBJ; NULL when any step is missing, not an object, or null. */
static const json_t *follow(const json_t *obj, const ul_field_path *path)
{
    const json_t *v = obj;
    for (size_t i = 0; i < path->n_segs && v; i++)
        v = json_is_object(v) ? json_object_get(v, path->segs[i]) : NULL;
    return json_is_null(v) ? NULL : v;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* V (a string of 16 hex digits) into OUT upper-cased. */
static bool read_dev_eui(const json_t *v, char *out)
{
    if (!json_is_string(v) || json_string_length(v) != UL_DEV_EUI_LEN)
        return false;
    const char *s = json_string_value(v);
    for (size_t i = 0; i < UL_DEV_EUI_LEN; i++) {
        if (!is_hex(s[i]))
            return false;
        out[i] = (char)(s[i] >= 'a' ? s[i] - 'a' + 'A' : s[i]);
    }
    out[UL_DEV_EUI_LEN] = '\0';
    return true;
}

/* V, a string matching the SPEC §2 id rule, into OUT (UL_DEVICE_ID_MAX + 1 bytes). */
static bool read_id(const json_t *v, char *out)
{
    if (!json_is_string(v))
        return false;
    size_t n = json_string_length(v);
    if (!pl_valid_id(json_string_value(v), n))
        return false;
    memcpy(out, json_string_value(v), n + 1);
    return true;
}

/* An optional frame counter: absent is 0 (both servers omit zeros); else a uint32. */
static bool read_fcnt(const json_t *v, ul_uplink *out)
{
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
        return false;
    out->has_fcnt = true;
    out->f_cnt = (uint32_t)json_integer_value(v);
    return true;
}

/* An optional RFC 3339 time; pl_parse_time takes the servers' nanoseconds ("...46.014773143Z")
 * and offsets ("+00:00"), rounding to ms. Present but unreadable, or before the epoch: false. */
static bool read_time(const json_t *v, ul_uplink *out)
{
    if (!v)
        return true;
    int64_t ms;
    if (!json_is_string(v) || pl_parse_time(json_string_value(v), json_string_length(v), &ms) != 0 ||
        ms < 0)
        return false;
    out->has_time = true;
    out->time_ms = ms;
    return true;
}

/* Reads the state at PATH under BASE (NULL: the server sent no decoded payload). */
static enum ul_result read_state(const json_t *base, const ul_field_path *path,
                                 const ul_value_map *map, ul_uplink *out)
{
    const json_t *v = base ? follow(base, path) : NULL;
    if (!v)
        return UL_NO_FIELD;
    return map_value(map, v, &out->occupied);
}

/* ---- formats ------------------------------------------------------------------------------- */

/* The Things Stack: {"end_device_ids": {"device_id", "dev_eui"?}, "received_at",
 * "uplink_message": {"f_cnt"?, "decoded_payload"?, "received_at", ...}}. */
static enum ul_result parse_ttn(const json_t *root, const ul_field_path *path,
                                const ul_value_map *map, ul_uplink *out)
{
    const json_t *up = json_object_get(root, "uplink_message");
    if (!up)
        return UL_NOT_UPLINK;
    const json_t *ids = json_object_get(root, "end_device_ids");
    if (!json_is_object(up) || !json_is_object(ids) ||
        !read_id(json_object_get(ids, "device_id"), out->device_id))
        return UL_MALFORMED;
    const json_t *eui = json_object_get(ids, "dev_eui");   /* optional: ABP devices may lack one */
    if (eui && !read_dev_eui(eui, out->dev_eui))
        return UL_MALFORMED;
    out->has_dev_eui = eui != NULL;
    const json_t *t = json_object_get(up, "received_at");
    if (!read_fcnt(json_object_get(up, "f_cnt"), out) ||
        !read_time(t ? t : json_object_get(root, "received_at"), out))
        return UL_MALFORMED;
    return read_state(up, path, map, out);
}

/* The last level of TOPIC: what ChirpStack names the event ("application/A/device/D/event/up"). */
static const char *last_level(const char *topic)
{
    const char *slash = strrchr(topic, '/');
    return slash ? slash + 1 : topic;
}

static bool chirpstack_is_uplink(const char *topic, const json_t *root)
{
    if (topic && *topic)
        return strcmp(last_level(topic), "up") == 0;
    return json_object_get(root, "deviceInfo") &&
           (json_object_get(root, "fCnt") || json_object_get(root, "fPort") ||
            json_object_get(root, "rxInfo"));
}

/* ChirpStack: {"time", "deviceInfo": {"devEui", "deviceName", ...}, "fCnt"?, "object"?, ...}.
 * deviceName is free text, so one that is no usable id is left out rather than refused. */
static enum ul_result parse_chirpstack(const char *topic, const json_t *root,
                                       const ul_field_path *path, const ul_value_map *map,
                                       ul_uplink *out)
{
    if (!chirpstack_is_uplink(topic, root))
        return UL_NOT_UPLINK;
    const json_t *info = json_object_get(root, "deviceInfo");
    if (!json_is_object(info) || !read_dev_eui(json_object_get(info, "devEui"), out->dev_eui))
        return UL_MALFORMED;
    out->has_dev_eui = true;
    if (!read_id(json_object_get(info, "deviceName"), out->device_id))
        out->device_id[0] = '\0';
    if (!read_fcnt(json_object_get(root, "fCnt"), out) ||
        !read_time(json_object_get(root, "time"), out))
        return UL_MALFORMED;
    const json_t *obj = json_object_get(root, "object");
    if (obj && !json_is_object(obj) && !json_is_null(obj))
        return UL_MALFORMED;
    return read_state(json_is_object(obj) ? obj : NULL, path, map, out);
}

enum ul_result ul_parse(enum ul_format format, const char *topic, const char *payload, size_t len,
                        const ul_field_path *path, const ul_value_map *map, ul_uplink *out)
{
    memset(out, 0, sizeof *out);
    if (!payload || !path || path->n_segs == 0)
        return UL_MALFORMED;
    json_error_t e;
    json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &e);
    enum ul_result r = UL_MALFORMED;
    if (json_is_object(root))
        r = format == UL_TTN_V3 ? parse_ttn(root, path, map, out)
                                : parse_chirpstack(topic, root, path, map, out);
    json_decref(root);
    if (r == UL_MALFORMED || r == UL_NOT_UPLINK)
        memset(out, 0, sizeof *out);
    else if (r != UL_OK)
        out->occupied = false;
    return r;
}
