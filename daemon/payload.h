/* payload: parses input topics, ids, timestamps and payloads (SPEC §2, §3). Pure functions:
 * nothing is allocated that outlives a call, so they are safe on the hot path and for fuzzing. */
#ifndef PARKD_PAYLOAD_H
#define PARKD_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_ID_MAX 64

enum pl_kind { PL_KIND_BAY, PL_KIND_GATE, PL_KIND_COUNT };

/* Why input was rejected. PL_OK is not a rejection. The names are the counters' names. */
enum pl_reject {
    PL_OK = 0,
    PL_BAD_TOPIC,    /* not <prefix>/<lot>/bay/<id>, <prefix>/<lot>/gate/<id>, <prefix>/<lot>/count */
    PL_BAD_ID,       /* a lot, bay or gate id breaks the SPEC §2 rule */
    PL_UNKNOWN_LOT,  /* set by the caller: valid id, not configured */
    PL_MALFORMED,    /* payload not one of the accepted forms */
    PL_OVERSIZE,     /* set by the caller: payload longer than limits.max_payload */
    PL_WRONG_KIND,   /* set by the caller: kind not taken by the lot's source */
    PL_FUTURE,       /* set by the caller: ts more than limits.max_future ahead */
    PL_TOO_MANY_BAYS,/* set by the caller: a new bay beyond limits.max_bays_per_lot */
    PL_AMBIGUOUS_ZONE,/* set by the caller: a new bay or gate that two zones' patterns match */
    PL_REJECT_COUNT
};

/* "bad_topic", "bad_id", "unknown_lot", "malformed", "oversize", "wrong_kind", "future",
 * "too_many_bays", "ambiguous_zone"; "ok" for PL_OK. Static strings. */
const char *pl_reject_name(enum pl_reject reason);

typedef struct pl_topic {
    enum pl_kind kind;
    char lot[PL_ID_MAX + 1];
    char sensor[PL_ID_MAX + 1];   /* bay or gate id; "" for count */
} pl_topic;

/* True when S[0..LEN) matches [A-Za-z0-9][A-Za-z0-9_.-]{0,63}. */
bool pl_valid_id(const char *s, size_t len);

/* Splits TOPIC (NUL-terminated) under PREFIX (e.g. "parking", may itself contain '/').
 * Returns PL_OK, PL_BAD_TOPIC (wrong shape or prefix) or PL_BAD_ID. */
enum pl_reject pl_parse_topic(const char *topic, const char *prefix, pl_topic *out);

typedef struct pl_event {
    enum pl_kind kind;
    bool has_ts;
    int64_t ts_ms;          /* event time, ms since the epoch, when has_ts */
    /* bay */
    bool occupied;
    /* gate */
    bool gate_in;           /* true: "in", false: "out" */
    uint64_t count;         /* >= 1 */
    bool has_seq;
    uint64_t seq;           /* full unsigned 64-bit range */
    /* count */
    bool is_free;           /* payload gave "free" rather than "occupied" */
    int64_t value;          /* the occupied or free number, >= 0 */
    bool has_capacity;
    int64_t capacity;
} pl_event;

/* Parses PAYLOAD[0..LEN) (not NUL-terminated, may hold NULs) as KIND. Returns PL_OK and fills
 * *out, or PL_MALFORMED. Size limits are the caller's. */
enum pl_reject pl_parse_payload(enum pl_kind kind, const char *payload, size_t len, pl_event *out);

/* Parses an ISO-8601 / RFC-3339 time ("2016-10-04T07:59:42Z", "2016-10-04T08:59:42+01:00",
 * fractions of a second allowed) into ms since the epoch. Returns 0, or -1 when malformed. */
int pl_parse_time(const char *s, size_t len, int64_t *ts_ms);

/* Writes TS_MS as "YYYY-MM-DDTHH:MM:SSZ" (UTC, whole seconds) into BUF (at least 32 bytes).
 * Returns the length written. */
size_t pl_format_time(int64_t ts_ms, char *buf, size_t size);

/* ---- admin input (SPEC §10 closures) ---- */

#define PL_REASON_MAX 200   /* bytes of a closure's reason */

typedef struct pl_admin {
    bool closed;            /* "state": "closed" (else "open") */
    bool has_until;
    int64_t until_ms;       /* "until" (SPEC §3 T), when has_until */
    char reason[PL_REASON_MAX + 1];   /* "" when absent */
} pl_admin;

/* Splits TOPIC = <PREFIX>/<lot>/state; writes the lot id into LOT (PL_ID_MAX + 1 bytes).
 * Returns PL_OK, PL_BAD_TOPIC or PL_BAD_ID. */
enum pl_reject pl_parse_admin_topic(const char *topic, const char *prefix, char *lot);

/* Parses {"state":"closed"|"open","reason":"...","until":T}. Returns PL_OK or PL_MALFORMED. */
enum pl_reject pl_parse_admin(const char *payload, size_t len, pl_admin *out);

#endif
