/* uplink: parses one LoRaWAN network server uplink (SPEC §9: The Things Stack v3 and ChirpStack
 * v4 MQTT integrations, JSON) into device identity, frame counter, event time and bay state.
 *
 * Pure functions, like payload.h: nothing allocated outlives a call (jansson's tree is freed
 * before ul_parse returns), no I/O, safe on the hot path and for fuzzing. Field paths and value
 * maps are built once from the configuration (ul_path_parse, ul_map_add) and only read per
 * message, so ul_parse does no string splitting and no allocation of its own. */
#ifndef PARKD_UPLINK_H
#define PARKD_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UL_DEVICE_ID_MAX 64   /* bytes of a device id; TTN's are at most 36 */
#define UL_DEV_EUI_LEN 16     /* hex digits of a DevEUI */
#define UL_PATH_MAX_SEGS 8    /* segments of a field path */
#define UL_SEG_MAX 64         /* bytes of one segment */
#define UL_MAP_MAX 8          /* values on each side of a value map */
#define UL_SCALAR_MAX 64      /* bytes of a string in a value map */
#define UL_ERRBUF_SIZE 160    /* size of the ERRBUF the builders below write into */

enum ul_format { UL_TTN_V3, UL_CHIRPSTACK_V4 };

/* Why a message gave no bay state. UL_OK is not a rejection. UL_NOT_UPLINK is no error either:
 * a join, status, ack, location... event on a neighbouring topic, which the caller ignores
 * silently (but counts). */
enum ul_result {
    UL_OK = 0,
    UL_MALFORMED,      /* not JSON, not an object, a known field of the wrong type or too long */
    UL_NOT_UPLINK,     /* another kind of event of the same network server */
    UL_NO_FIELD,       /* an uplink without decoded payload, or without the configured field */
    UL_UNMAPPED_VALUE, /* the field is there, but its value means neither occupied nor free */
    UL_RESULT_COUNT
};

/* "malformed", "not_uplink", "no_field", "unmapped_value"; "ok" for UL_OK. Static strings, the
 * names of the per-input counters. */
const char *ul_reason_name(enum ul_result r);

/* A dot-separated field path ("decoded_payload.occupied"), split once. Plain data: copy freely. */
typedef struct ul_field_path {
    size_t n_segs;                              /* 1..UL_PATH_MAX_SEGS */
    char segs[UL_PATH_MAX_SEGS][UL_SEG_MAX + 1];
} ul_field_path;

/* Splits TEXT (NUL-terminated) into *PATH. Every segment must be non-empty and at most
 * UL_SEG_MAX bytes, at most UL_PATH_MAX_SEGS of them. Returns 0, or -1 with a message in ERRBUF
 * (UL_ERRBUF_SIZE bytes) and *PATH zeroed. */
int ul_path_parse(const char *text, ul_field_path *path, char *errbuf);

/* A JSON scalar of a value map. Strings compare exactly (bytes), numbers by value (1 == 1.0),
 * booleans as booleans; a string never equals a number ("1" is not 1). */
enum ul_scalar_kind { UL_SCALAR_STRING, UL_SCALAR_NUMBER, UL_SCALAR_BOOL };

typedef struct ul_scalar {
    enum ul_scalar_kind kind;
    char str[UL_SCALAR_MAX + 1];  /* UL_SCALAR_STRING */
    size_t str_len;
    double num;                   /* UL_SCALAR_NUMBER */
    bool b;                       /* UL_SCALAR_BOOL */
} ul_scalar;

/* Which values mean occupied and which mean free. n_occupied == n_free == 0 (a zeroed map)
 * means no map: then true/false, 1/0 and "occupied"/"free" are accepted, as in SPEC §3. */
typedef struct ul_value_map {
    size_t n_occupied, n_free;
    ul_scalar occupied[UL_MAP_MAX];
    ul_scalar free[UL_MAP_MAX];
} ul_value_map;

/* Reads TEXT[0..LEN) as one JSON scalar ("\"free\"", "0", "1.5", "true") into *OUT. Returns 0,
 * or -1 with a message in ERRBUF (null, an object, an array, a string over UL_SCALAR_MAX bytes,
 * not JSON). For the configuration, which may hold the YAML value's text. */
int ul_scalar_parse(const char *text, size_t len, ul_scalar *out, char *errbuf);

/* Adds *S to the OCCUPIED (true) or free (false) side of *MAP. Returns 0, or -1 with a message
 * in ERRBUF: that side already holds UL_MAP_MAX values, or S is already on either side (a value
 * cannot mean both, and a repeat is a typo). */
int ul_map_add(ul_value_map *map, bool occupied, const ul_scalar *s, char *errbuf);

/* What one uplink says. */
typedef struct ul_uplink {
    /* ttn-v3: end_device_ids.device_id, required, matching the SPEC §2 id rule (a superset of
     * TTN's [a-z0-9](-?[a-z0-9]){2,}, at most 36). chirpstack-v4: deviceInfo.deviceName when it
     * is a usable devices_file key (1..64 bytes matching the id rule), else "" (names are free
     * text there, e.g. "Test device"; the DevEUI is the identity). */
    char device_id[UL_DEVICE_ID_MAX + 1];
    bool has_dev_eui;                     /* always true for chirpstack-v4 */
    char dev_eui[UL_DEV_EUI_LEN + 1];     /* upper-case hex, when has_dev_eui */
    /* Both servers omit a zero frame counter (TTN: "empty fields are omitted"; ChirpStack: the
     * protobuf JSON mapping), so an absent one is 0: f_cnt is always valid, and has_fcnt only
     * says whether the message carried it. */
    bool has_fcnt;
    uint32_t f_cnt;
    /* ttn-v3: uplink_message.received_at (network server), else the top-level received_at
     * (application server). chirpstack-v4: time. Without it the caller uses its receive time. */
    bool has_time;
    int64_t time_ms;                      /* ms since the epoch, >= 0, when has_time */
    bool occupied;                        /* when UL_OK */
} ul_uplink;

/* Parses PAYLOAD[0..LEN) (not NUL-terminated; size limits are the caller's) received on TOPIC
 * (NUL-terminated; may be NULL) as FORMAT, reading the bay state at PATH (relative to
 * uplink_message for ttn-v3, to object for chirpstack-v4) through MAP (NULL or a zeroed map:
 * the default values). Returns:
 *   UL_OK              *out complete;
 *   UL_NO_FIELD, UL_UNMAPPED_VALUE
 *                      identity, f_cnt and time filled (for the log line), occupied false;
 *   UL_MALFORMED, UL_NOT_UPLINK
 *                      *out zeroed.
 * Not an uplink: ttn-v3, no uplink_message object (join_accept, downlink_*, location_solved,
 * service_data); chirpstack-v4, a TOPIC whose last level is not "up" (join, status, ack, txack,
 * log, location, integration), or without TOPIC a message lacking deviceInfo or all of fCnt,
 * fPort and rxInfo. */
enum ul_result ul_parse(enum ul_format format, const char *topic, const char *payload, size_t len,
                        const ul_field_path *path, const ul_value_map *map, ul_uplink *out);

#endif
