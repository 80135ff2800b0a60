/* input: SPEC §9's inputs as the pipeline sees them. One network server's uplink goes in; out
 * comes the bay event it means (lot, bay, occupied, event time), or the reason it means none,
 * counted per input. Pure: no loop, no broker, no Redis; the devices files are read by
 * inp_load only (start, SIGHUP), never per message.
 *
 * Duplicates: the same device, frame counter and event time as the device's last uplink (one
 * uplink heard by two gateways and forwarded twice, or redelivered) is skipped as `duplicate`.
 * A frame counter that restarts low after a rejoin comes at another time, so it is no
 * duplicate: the bay's own rule (an older event time is ignored) decides. Redelivery after a restart, when this memory
 * is gone, is harmless for the same reason: the same uplink is the same bay state at the same
 * time, which the lot counts as a repeat. */
#ifndef PARKD_INPUT_H
#define PARKD_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "devices.h"
#include "map.h"
#include "payload.h"
#include "uplink.h"

/* What became of each message of an input: the names are the counters' (input:<name>:<c>). */
enum inp_counter {
    INP_C_UPLINKS,              /* every message the input received */
    INP_C_APPLIED, INP_C_UNCHANGED, INP_C_IGNORED_OLD,   /* the lot's outcomes */
    INP_C_DUPLICATE, INP_C_NOT_UPLINK,
    INP_C_REJECTED_UNKNOWN_DEVICE, INP_C_REJECTED_MALFORMED, INP_C_REJECTED_NO_FIELD,
    INP_C_REJECTED_UNMAPPED_VALUE, INP_C_REJECTED_OVERSIZE,
    INP_C_REJECTED_UNKNOWN_LOT, INP_C_REJECTED_FUTURE, INP_C_REJECTED_WRONG_KIND,
    INP_C_REJECTED_TOO_MANY_BAYS, INP_C_REJECTED_AMBIGUOUS_ZONE,
    INP_C_COUNT
};
extern const char *const inp_counter_names[INP_C_COUNT];

/* One configured input at run time. */
typedef struct inp_input {
    char name[CFG_INPUT_NAME_MAX + 1];
    enum ul_format format;
    ul_field_path path;
    ul_value_map values;
    int64_t max_payload;
    bool own_connection;        /* cfg has_mqtt: its own client, else the main one's */
    char *topic;                /* its subscription (owned) */
    dev_map *devices;           /* (owned) */
    map *last;                  /* device key -> inp_last: the duplicate check (owned) */
    uint64_t counters[INP_C_COUNT];
} inp_input;

typedef struct inp_set {
    inp_input *inputs;          /* in configuration order (owned) */
    size_t n;
} inp_set;

/* The inputs of CFG, with their devices files read. Returns NULL and sets *ERRORS (malloc'd,
 * caller frees: the files' "PATH:LINE: message" lines) when a devices file is wrong; a set
 * without inputs when CFG has none. */
inp_set *inp_load(const cfg_config *cfg, char **errors);

/* Moves the counters and duplicate memory of OLD's inputs into NEW's inputs of the same name
 * (a reload keeps them; the counters are cumulative). OLD is left empty of them. */
void inp_carry(inp_set *new_set, inp_set *old);

void inp_free(inp_set *s);

/* The bay event one uplink means. */
typedef struct inp_event {
    pl_topic topic;             /* kind PL_KIND_BAY, lot and bay from the devices file */
    pl_event ev;                /* occupied, and ts when the uplink carried a time */
    const char *device;         /* the devices file's key (owned by the map) */
} inp_event;

/* Input I's message on TOPIC: true with *OUT filled when it is a bay event to apply; false with
 * *WHY the counter it was counted under (duplicate, not_uplink, rejected_*). Either way
 * `uplinks` is counted. WALL_MS is the receive time, for uplinks without a time of their own
 * (the duplicate check's clock then). */
bool inp_take(inp_set *s, size_t i, const char *topic, const void *payload, size_t len,
              int64_t wall_ms, inp_event *out, enum inp_counter *why);

/* Counts C for input I (the lot's outcome of an event inp_take gave). */
void inp_count(inp_set *s, size_t i, enum inp_counter c);

/* The counter for a lot's rejection REASON (PL_UNKNOWN_LOT, PL_FUTURE, PL_WRONG_KIND, ...). */
enum inp_counter inp_counter_for_reject(enum pl_reject reason);

#endif
