/* lot: one car park's occupancy state and the SPEC §3 rules that change it. Pure state, no I/O:
 * the caller feeds parsed events in and writes dirty state out. */
#ifndef PARKD_LOT_H
#define PARKD_LOT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "map.h"
#include "payload.h"
#include "smooth.h"
#include "zone.h"

/* CLOSED is last so stored and history values of the others keep their numbers. */
enum lot_status {
    LOT_STATUS_UNKNOWN, LOT_STATUS_OPEN, LOT_STATUS_ALMOST_FULL, LOT_STATUS_FULL, LOT_STATUS_CLOSED
};

#define LOT_REASON_MAX PL_REASON_MAX  /* bytes of an operator's closure reason */

/* One bay sensor, 16 bytes and its id: a lot of 100,000 bays holds 100,000 of these, so the id
 * is stored inline at its own length (ids are at most PL_ID_MAX bytes; typically a few), the
 * flags are bits and the heap index 32 bits (limits.max_bays_per_lot is at most 10,000,000).
 * Owned by lot.bays; allocated by lot.c only (the id decides its size). */
typedef struct lot_bay {
    int64_t ts_ms;          /* event time of the applied state */
    uint32_t heap_pos;      /* index in lot.heap while known */
    int16_t zone;           /* index into lot.zones, or ZN_NONE (resolved once, zone.h) */
    uint8_t cats;           /* bit c: in category c */
    bool occupied : 1;      /* the last state heard, also while unknown */
    bool unknown : 1;       /* silent longer than bay_stale_after: neither free nor occupied */
    bool dirty : 1;         /* changed since the last lot_clear_dirty */
    char id[];              /* NUL-terminated */
} lot_bay;

_Static_assert(sizeof(lot_bay) == 16, "lot_bay stays 16 bytes before its id");

typedef struct lot_gate {
    uint64_t seq;           /* last applied seq, when has_seq */
    bool has_seq;
    bool dirty;
    int16_t zone;           /* as for a bay */
    uint8_t cats;
    char id[PL_ID_MAX + 1];
} lot_gate;

_Static_assert(CFG_MAX_ZONES <= 64, "lot.dirty_zones has a bit per zone");

/* The counts of one zone or category (SPEC §10). */
typedef struct lot_group {
    int64_t capacity;           /* configured */
    int64_t raw;                /* bays lot: its known bays that are occupied; gates lot: the cars
                                 * in through its gates, kept within [0, capacity] */
    int64_t unknown;            /* bays lot with bay_stale_after: its unknown bays */
    enum lot_status status;     /* zones: the lot's rules on the zone's numbers; closed with it */
    enum lot_status open_status;
} lot_group;

enum lot_result {
    LOT_APPLIED,            /* state changed */
    LOT_UNCHANGED,          /* valid and newest, but a repeat of the current state */
    LOT_IGNORED_OLD,        /* bay or count older than the last applied one */
    LOT_IGNORED_DUPLICATE,  /* gate seq <= last applied seq */
    LOT_REJECTED            /* see lot_outcome.reject; no state changed */
};

typedef struct lot_outcome {
    enum lot_result result;
    enum pl_reject reject;      /* PL_WRONG_KIND, PL_TOO_MANY_BAYS or PL_AMBIGUOUS_ZONE when
                                 * LOT_REJECTED */
    bool first_ambiguous;       /* PL_AMBIGUOUS_ZONE for the first time for this sensor: log it */
    bool clamped;               /* occupied was clamped to [0, capacity]: an anomaly */
    bool capacity_mismatch;     /* a count message's capacity differs from the configured one */
    bool recalibrated;          /* a count on a gates lot; correction = new - old occupied */
    int64_t correction;
    int64_t lag_ms;             /* LOT_IGNORED_OLD: how far behind the last applied time */
} lot_outcome;

typedef struct lot {
    /* configuration, copied by lot_new / lot_configure (owned) */
    char *id;
    char *name;
    int64_t capacity;
    enum cfg_source source;
    bool has_position;
    double lat, lon;
    int64_t stale_after_ms;
    int64_t bay_stale_after_ms; /* 0: off */
    double almost_full, hysteresis;
    int64_t tau_ms;

    /* state */
    bool has_data;              /* any input applied (or restored) */
    int64_t occupied;           /* always within [0, capacity] */
    int64_t ts_ms;              /* newest event time of any applied input */
    int64_t count_ts_ms;        /* event time of the last applied count; INT64_MIN when none */
    int64_t count_value;        /* that count message's number, -1 when unknown (SPEC §3: the */
    bool count_is_free;         /* same ts and value again is a redelivery), and its kind */
    int64_t bays_occupied;      /* source bays: number of known bays whose state is occupied */
    int64_t unknown;            /* source bays: number of unknown bays (bay_stale_after) */
    enum lot_status status;     /* what outputs show: LOT_STATUS_CLOSED while closed */
    enum lot_status open_status;/* the count-derived status underneath, kept for hysteresis */
    bool closed;                /* an operator closed the lot (SPEC §10) */
    bool has_closed_until;
    int64_t closed_until_ms;    /* event time at which the closure ends, when has_closed_until */
    const char *closed_reason;  /* at most LOT_REASON_MAX bytes: lot_no_reason ("") or a copy
                                 * (owned), as few lots are ever closed with a reason */
    bool stale;
    sm_state smooth;            /* of free spaces */

    zn_resolver *groups;        /* the configured zones and categories (owned) */
    lot_group *zones;           /* groups->n_zones of them (owned) */
    lot_group cats[CFG_N_CATEGORIES];  /* those in groups->cats_set count */
    uint64_t dirty_zones;       /* bit z: zone z's counts or status changed since lot_clear_dirty */
    uint8_t dirty_cats;         /* bit c: category c's counts changed */
    bool groups_changed;        /* zones or categories changed by a reload since lot_clear_dirty:
                                 * the lot's stored fields of removed ones must go */
    map *ambiguous;             /* ids refused as PL_AMBIGUOUS_ZONE -> their malloc'd copy */
    uint64_t outputs_rev;       /* bumped when what the outputs show changed beyond free, status,
                                 * stale and unknown: a zone's status, the zones and categories
                                 * themselves (reload), a closure's reason or until */

    map *bays;                  /* id -> lot_bay (owned) */
    map *gates;                 /* id -> lot_gate (owned) */
    lot_bay **heap;             /* known bays, a min-heap on ts_ms (owned array, bays not) */
    size_t n_heap, cap_heap;
    lot_bay **dirty_bays;       /* bays with dirty set, n_dirty_bays of them (owned array) */
    size_t n_dirty_bays, cap_dirty_bays;
    lot_gate **dirty_gates;
    size_t n_dirty_gates, cap_dirty_gates;
    bool dirty;                 /* lot-level state changed since lot_clear_dirty */

    bool queued;                /* in the daemon's list of lots to write this turn */
    bool observed;              /* forecaster and publisher have seen the latest state */
    void *pub_data;             /* the publisher's per-lot state (not owned) */
    void *fc_data;              /* the forecaster's per-lot state (not owned) */
} lot;

/* A new lot with no data (status unknown) configured from CFG; TAU_MS is smoothing.tau.
 * Never NULL (aborts on out of memory). Free with lot_free. */
lot *lot_new(const cfg_lot *cfg, int64_t tau_ms);
void lot_free(lot *l);

/* Applies a changed configuration (reload): name, capacity, source, position, thresholds,
 * zones and categories. A changed capacity applies at once: occupied is re-clamped and the
 * status re-evaluated. Changed zones or categories re-resolve every bay and gate once, O(n):
 * a bays lot's zone counts are recounted from its bays; a gates lot's zones keep their cars by
 * zone id (a gate moved to another zone moves the cars that pass it from then on). */
void lot_configure(lot *l, const cfg_lot *cfg, int64_t tau_ms);

/* Applies one parsed event of kind TOPIC->kind for sensor TOPIC->sensor, with event time TS_MS
 * (the payload's ts or the receive time, already checked against max_future). MAX_BAYS bounds
 * the number of distinct bays. Updates occupied, ts, status, smoothing and dirty marks. */
lot_outcome lot_apply(lot *l, const pl_topic *topic, const pl_event *ev, int64_t ts_ms,
                      int64_t max_bays);

/* Re-evaluates `stale`, a closure's `until` and, with bay_stale_after, which bays are unknown, against the event clock
 * CLOCK_MS; true when anything changed (marks dirty). Cost: O(1) when no bay expired, else
 * O(k log n) for k bays expiring out of n. */
bool lot_update_stale(lot *l, int64_t clock_ms);

/* An operator's closure (CLOSED true) or reopening at event clock CLOCK_MS. REASON may be NULL;
 * it is cut to LOT_REASON_MAX bytes. An UNTIL_MS at or before CLOCK_MS means open. Counts keep
 * being applied underneath; reopening recomputes the status from them. Returns true when
 * anything changed (marks dirty): the same closure again is no change, so a redelivered retained
 * message is harmless. */
bool lot_set_closure(lot *l, bool closed, const char *reason, bool has_until, int64_t until_ms,
                     int64_t clock_ms);

/* A zone's or category's occupied (raw within [0, capacity]) and free (capacity - occupied -
 * unknown, at least 0). */
int64_t lot_group_occupied(const lot_group *g);
int64_t lot_group_free(const lot_group *g);

/* Restores the cars inside zone ZONE_ID (gates lots: they cannot be recounted from bays); an
 * unknown zone is ignored. Nothing is marked dirty. */
void lot_restore_zone(lot *l, const char *zone_id, int64_t occupied);
/* Likewise for category CAT of a gates lot. */
void lot_restore_category(lot *l, enum cfg_category cat, int64_t occupied);

/* Whether the lot counts unknown bays (a bays lot with bay_stale_after): then, and only then, the
 * outputs carry `unknown`, so those of every other lot stay as they were. */
bool lot_tracks_unknown(const lot *l);
int64_t lot_free_spaces(const lot *l);       /* capacity - occupied - unknown, at least 0 */
double lot_occupancy(const lot *l);          /* occupied / capacity */
const char *lot_status_name(enum lot_status status);  /* "unknown", "open", ..., "closed" */
int lot_status_parse(const char *s, enum lot_status *out); /* 0 or -1 */

/* Restore from storage, before any input. Bays and gates are created (not dirty). */
void lot_restore_bay(lot *l, const char *id, bool occupied, int64_t ts_ms);
void lot_restore_gate(lot *l, const char *id, uint64_t seq);
/* Restores the lot-level state; occupied is re-clamped to the (possibly new) capacity. */
void lot_restore_state(lot *l, int64_t occupied, int64_t ts_ms, int64_t count_ts_ms,
                       enum lot_status status, const sm_state *smooth);

/* The identity of the last applied count message (VALUE and IS_FREE as in its payload; -1:
 * unknown, e.g. state stored by a version that did not keep it). */
void lot_restore_count(lot *l, int64_t value, bool is_free);

/* Restores a stored closure, before or after lot_restore_state; nothing is marked dirty. */
void lot_restore_closure(lot *l, const char *reason, bool has_until, int64_t until_ms);

/* Forgets all dirty marks after the caller has written them out. */
void lot_clear_dirty(lot *l);

#endif
