/* lot: the SPEC §3 input rules (sources, clamping, ordering, duplicates) and the SPEC §4 status
 * rules (hysteresis, stale) for one car park. No I/O: everything that changed is marked dirty for
 * the caller to write out. */
#include "lot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Occupancy fractions are compared with this slack so that a threshold the operator wrote as a
 * round number (0.9 - 0.05) is met exactly at the matching count (85 of 100), despite binary
 * rounding. It is far below one car's share of any realistic capacity. */
#define LOT_OCCUPANCY_EPSILON 1e-9

static const char *const lot_status_names[] = {
    [LOT_STATUS_UNKNOWN] = "unknown",
    [LOT_STATUS_OPEN] = "open",
    [LOT_STATUS_ALMOST_FULL] = "almost_full",
    [LOT_STATUS_FULL] = "full",
    [LOT_STATUS_CLOSED] = "closed",
};

/* The reason of every lot closed without one (lot.closed_reason). */
static const char lot_no_reason[] = "";

/* ---- configuration ---- */

static void lot_groups_build(lot *l, const cfg_lot *cfg);
static void lot_refresh_zones(lot *l);

static void lot_copy_config(lot *l, const cfg_lot *cfg, int64_t tau_ms)
{
    free(l->name);
    l->name = util_xstrdup(cfg->name ? cfg->name : cfg->id);
    l->capacity = cfg->capacity;
    l->source = cfg->source;
    l->has_position = cfg->has_position;
    l->lat = cfg->lat;
    l->lon = cfg->lon;
    l->stale_after_ms = cfg->stale_after_ms;
    l->bay_stale_after_ms = cfg->bay_stale_after_ms;
    l->almost_full = cfg->almost_full;
    l->hysteresis = cfg->hysteresis;
    l->tau_ms = tau_ms;
}

lot *lot_new(const cfg_lot *cfg, int64_t tau_ms)
{
    lot *l = util_xcalloc(1, sizeof *l);
    l->id = util_xstrdup(cfg->id);
    lot_copy_config(l, cfg, tau_ms);
    l->status = LOT_STATUS_UNKNOWN;
    l->open_status = LOT_STATUS_UNKNOWN;
    l->ts_ms = INT64_MIN;
    l->count_ts_ms = INT64_MIN;
    l->count_value = -1;
    l->closed_reason = lot_no_reason;
    l->bays = map_new();
    l->gates = map_new();
    l->ambiguous = map_new();
    lot_groups_build(l, cfg);
    lot_refresh_zones(l);
    return l;
}

static void lot_free_entry(void *ctx, void *value)
{
    free(value);
}

void lot_free(lot *l)
{
    if (!l)
        return;
    map_foreach(l->bays, lot_free_entry, NULL);
    map_free(l->bays);
    map_foreach(l->gates, lot_free_entry, NULL);
    map_free(l->gates);
    map_foreach(l->ambiguous, lot_free_entry, NULL);
    map_free(l->ambiguous);
    zn_free(l->groups);
    free(l->zones);
    free(l->dirty_bays);
    free(l->heap);
    free(l->dirty_gates);
    if (l->closed_reason != lot_no_reason)
        free((char *)l->closed_reason);
    free(l->name);
    free(l->id);
    free(l);
}

/* ---- derived values ---- */

bool lot_tracks_unknown(const lot *l)
{
    return l->source == CFG_SOURCE_BAYS && l->bay_stale_after_ms > 0;
}

int64_t lot_free_spaces(const lot *l)
{
    /* occupied only counts known bays, so the sum stays within capacity; the clamp is cheap
     * insurance against a capacity lowered below it by a reload. */
    int64_t n = l->capacity - l->occupied - l->unknown;
    return n < 0 ? 0 : n;
}

/* The share of capacity not free: occupancy, plus the unknown bays, which status must not offer
 * as free either. */
static double lot_used_fraction(int64_t capacity, int64_t free_spaces)
{
    if (capacity <= 0)
        return 0.0;
    return (double)(capacity - free_spaces) / (double)capacity;
}

int64_t lot_group_occupied(const lot_group *g)
{
    return g->raw < 0 ? 0 : g->raw > g->capacity ? g->capacity : g->raw;
}

int64_t lot_group_free(const lot_group *g)
{
    int64_t n = g->capacity - lot_group_occupied(g) - g->unknown;
    return n < 0 ? 0 : n;
}

double lot_occupancy(const lot *l)
{
    return l->capacity > 0 ? (double)l->occupied / (double)l->capacity : 0.0;
}

const char *lot_status_name(enum lot_status status)
{
    if ((unsigned)status >= sizeof lot_status_names / sizeof lot_status_names[0])
        return "unknown";
    return lot_status_names[status];
}

int lot_status_parse(const char *s, enum lot_status *out)
{
    for (size_t i = 0; i < sizeof lot_status_names / sizeof lot_status_names[0]; i++) {
        if (strcmp(s, lot_status_names[i]) == 0) {
            *out = (enum lot_status)i;
            return 0;
        }
    }
    return -1;
}

/* Free spaces at which a full lot opens again: 1 % of capacity, at least one space, so a large
 * lot does not flap between full and almost_full as single cars come and go. */
static int64_t lot_full_exit_free(int64_t capacity)
{
    int64_t n = llround((double)capacity * 0.01);
    return n < 1 ? 1 : n;
}

/* The SPEC §4 status with hysteresis of a lot (or zone) of CAPACITY with FREE spaces, given its
 * current count-derived status PREV and L's thresholds. */
static enum lot_status lot_status_for(const lot *l, int64_t capacity, int64_t free_spaces,
                                      enum lot_status prev)
{
    if (!l->has_data)
        return LOT_STATUS_UNKNOWN;
    if (free_spaces <= 0)
        return LOT_STATUS_FULL;
    if (prev == LOT_STATUS_FULL && free_spaces < lot_full_exit_free(capacity))
        return LOT_STATUS_FULL;
    /* Leaving full passes through the almost_full rule as if the lot were almost full, so a lot
     * that empties slowly shows almost_full before open. */
    bool was_almost_full = prev == LOT_STATUS_FULL || prev == LOT_STATUS_ALMOST_FULL;
    double occupancy = lot_used_fraction(capacity, free_spaces);
    if (occupancy >= l->almost_full - LOT_OCCUPANCY_EPSILON)
        return LOT_STATUS_ALMOST_FULL;
    if (was_almost_full && occupancy >= l->almost_full - l->hysteresis - LOT_OCCUPANCY_EPSILON)
        return LOT_STATUS_ALMOST_FULL;
    return LOT_STATUS_OPEN;
}

/* Recomputes the count-derived status; a closure overrides what the outputs show. */
static void lot_refresh_status(lot *l)
{
    l->open_status = lot_status_for(l, l->capacity, lot_free_spaces(l), l->open_status);
    l->status = l->closed ? LOT_STATUS_CLOSED : l->open_status;
}

static void lot_refresh_zone(lot *l, lot_group *g)
{
    enum lot_status was = g->status;
    g->open_status = lot_status_for(l, g->capacity, lot_group_free(g), g->open_status);
    g->status = l->closed ? LOT_STATUS_CLOSED : g->open_status;
    if (g->status != was) {
        l->outputs_rev++;
        l->dirty_zones |= UINT64_C(1) << (g - l->zones);
    }
}

/* After what every zone's status depends on changed: the lot's data, closure or thresholds. */
static void lot_refresh_zones(lot *l)
{
    for (int z = 0; z < l->groups->n_zones; z++)
        lot_refresh_zone(l, &l->zones[z]);
}

/* Clamps N to [0, capacity]; *CLAMPED tells whether it had to. */
static int64_t lot_clamp(const lot *l, int64_t n, bool *clamped)
{
    *clamped = n < 0 || n > l->capacity;
    if (n < 0)
        return 0;
    return n > l->capacity ? l->capacity : n;
}

/* Keeps the smoothing's held value equal to the current free spaces after a change that came
 * from configuration or restore rather than from an event: dt = 0, so the past is not rewritten. */
static void lot_hold_free(lot *l)
{
    if (l->smooth.started)
        sm_update(&l->smooth, l->smooth.ts_ms, (double)lot_free_spaces(l), l->tau_ms);
}

/* ---- dirty marks ---- */

static void lot_mark_bay_dirty(lot *l, lot_bay *b)
{
    if (b->dirty)
        return;
    b->dirty = true;
    void *array = l->dirty_bays;
    util_grow(&array, &l->cap_dirty_bays, l->n_dirty_bays + 1, sizeof *l->dirty_bays);
    l->dirty_bays = array;
    l->dirty_bays[l->n_dirty_bays++] = b;
}

static void lot_mark_gate_dirty(lot *l, lot_gate *g)
{
    if (g->dirty)
        return;
    g->dirty = true;
    void *array = l->dirty_gates;
    util_grow(&array, &l->cap_dirty_gates, l->n_dirty_gates + 1, sizeof *l->dirty_gates);
    l->dirty_gates = array;
    l->dirty_gates[l->n_dirty_gates++] = g;
}

void lot_clear_dirty(lot *l)
{
    for (size_t i = 0; i < l->n_dirty_bays; i++)
        l->dirty_bays[i]->dirty = false;
    for (size_t i = 0; i < l->n_dirty_gates; i++)
        l->dirty_gates[i]->dirty = false;
    l->n_dirty_bays = 0;
    l->n_dirty_gates = 0;
    l->dirty = false;
    l->dirty_zones = 0;
    l->dirty_cats = 0;
    l->groups_changed = false;
}

/* ---- zones and categories (SPEC §10) ----
 * Each bay and gate carries its zone and categories, resolved once (zone.h), so an event moves
 * at most one zone and eight categories: O(1), never a pattern match. */

/* The counts of the zone ZONE (ZN_NONE: none) and categories CATS move by D_RAW occupied and
 * D_UNKNOWN unknown bays; the caller refreshes the zone's status. */
static void lot_groups_add(lot *l, int zone, uint8_t cats, int64_t d_raw, int64_t d_unknown)
{
    if (zone >= 0) {
        l->zones[zone].raw += d_raw;
        l->zones[zone].unknown += d_unknown;
        l->dirty_zones |= UINT64_C(1) << zone;
    }
    l->dirty_cats |= cats;
    for (unsigned c = cats; c; c &= c - 1) {
        lot_group *g = &l->cats[__builtin_ctz(c)];
        g->raw += d_raw;
        g->unknown += d_unknown;
    }
}

static void lot_groups_move(lot *l, int zone, uint8_t cats, int64_t d_raw, int64_t d_unknown)
{
    if (zone < 0 && !cats)
        return;
    lot_groups_add(l, zone, cats, d_raw, d_unknown);
    if (zone >= 0)
        lot_refresh_zone(l, &l->zones[zone]);
}

/* COUNT cars in or out through a gate of G, kept within [0, capacity] like the lot's. */
static void lot_group_gate_move(lot_group *g, bool in, uint64_t count)
{
    uint64_t room = (uint64_t)(in ? g->capacity - g->raw : g->raw);
    if (count > room)
        g->raw = in ? g->capacity : 0;
    else
        g->raw += in ? (int64_t)count : -(int64_t)count;
}

static void lot_groups_gate(lot *l, int zone, uint8_t cats, bool in, uint64_t count)
{
    if (zone >= 0) {
        lot_group_gate_move(&l->zones[zone], in, count);
        lot_refresh_zone(l, &l->zones[zone]);
        l->dirty_zones |= UINT64_C(1) << zone;
    }
    l->dirty_cats |= cats;
    for (unsigned c = cats; c; c &= c - 1)
        lot_group_gate_move(&l->cats[__builtin_ctz(c)], in, count);
}

/* L's resolver, zones and category capacities for CFG, all counts 0. */
static void lot_groups_build(lot *l, const cfg_lot *cfg)
{
    l->groups = zn_new(cfg);
    l->zones = util_xcalloc((size_t)l->groups->n_zones + 1, sizeof *l->zones);
    for (int z = 0; z < l->groups->n_zones; z++)
        l->zones[z] = (lot_group){ .capacity = l->groups->zones[z].capacity,
                                   .status = LOT_STATUS_UNKNOWN, .open_status = LOT_STATUS_UNKNOWN };
    for (int c = 0; c < CFG_N_CATEGORIES; c++)
        l->cats[c] = (lot_group){ .capacity = l->groups->cat_capacity[c] };
}

/* A sensor already counted keeps being counted (in the lot) when a reload or restart made it
 * ambiguous; it is then in no zone. Only a new one is refused (lot_resolve_new). */
static void lot_resolve_known(const lot *l, const char *id, int16_t *zone, uint8_t *cats)
{
    int z;
    zn_resolve(l->groups, id, &z, cats);
    *zone = (int16_t)(z == ZN_AMBIGUOUS ? ZN_NONE : z);
}

static void lot_regroup_bay(void *ctx, void *value)
{
    lot *l = ctx;
    lot_bay *b = value;
    lot_resolve_known(l, b->id, &b->zone, &b->cats);
    if (b->unknown)
        lot_groups_add(l, b->zone, b->cats, 0, 1);
    else
        lot_groups_add(l, b->zone, b->cats, b->occupied ? 1 : 0, 0);
}

static void lot_regroup_gate(void *ctx, void *value)
{
    lot *l = ctx;
    lot_gate *g = value;
    lot_resolve_known(l, g->id, &g->zone, &g->cats);
}

/* A gates lot's cars per zone cannot be recounted: they stay with the zone (and category) of the
 * same id, within its new capacity. */
static void lot_groups_carry(lot *l, const zn_resolver *old, const lot_group *old_zones,
                             const lot_group *old_cats)
{
    for (int z = 0; z < l->groups->n_zones; z++) {
        int was = zn_find_zone(old, l->groups->zones[z].id);
        if (was >= 0)
            l->zones[z].raw = lot_group_occupied(&(lot_group){ .capacity = l->zones[z].capacity,
                                                               .raw = old_zones[was].raw });
    }
    for (int c = 0; c < CFG_N_CATEGORIES; c++)
        if (l->cats[c].capacity > 0)
            l->cats[c].raw = lot_group_occupied(&(lot_group){ .capacity = l->cats[c].capacity,
                                                              .raw = old_cats[c].raw });
}

static void lot_forget_ambiguous(lot *l)
{
    map_foreach(l->ambiguous, lot_free_entry, NULL);
    map_free(l->ambiguous);
    l->ambiguous = map_new();
}

/* A reload with other zones or categories: every sensor is resolved again, once. */
static void lot_groups_reconfigure(lot *l, const cfg_lot *cfg)
{
    if (zn_same(l->groups, cfg))
        return;
    zn_resolver *old = l->groups;
    lot_group *old_zones = l->zones, old_cats[CFG_N_CATEGORIES];
    memcpy(old_cats, l->cats, sizeof old_cats);
    lot_groups_build(l, cfg);
    if (l->source == CFG_SOURCE_GATES)
        lot_groups_carry(l, old, old_zones, old_cats);
    map_foreach(l->bays, lot_regroup_bay, l);
    map_foreach(l->gates, lot_regroup_gate, l);
    lot_forget_ambiguous(l);
    l->groups_changed = true;
    l->outputs_rev++;
    zn_free(old);
    free(old_zones);
}

/* Resolves a sensor the lot has not seen. Returns false, with OUT set to the rejection, when two
 * zones' patterns claim it: refused, and remembered so that its next messages are refused
 * without matching again (and logged only the first time). */
static bool lot_resolve_new(lot *l, const char *id, int16_t *zone, uint8_t *cats, lot_outcome *out)
{
    *zone = ZN_NONE;
    *cats = 0;
    if (!zn_any(l->groups))
        return true;
    int z;
    zn_resolve(l->groups, id, &z, cats);
    if (z != ZN_AMBIGUOUS) {
        *zone = (int16_t)z;
        return true;
    }
    char *copy = util_xstrdup(id);
    map_put(l->ambiguous, copy, strlen(copy), copy);
    *out = (lot_outcome){ .result = LOT_REJECTED, .reject = PL_AMBIGUOUS_ZONE,
                          .first_ambiguous = true };
    return false;
}

/* Whether ID was refused as ambiguous before (lot_resolve_new). */
static bool lot_known_ambiguous(const lot *l, const char *id)
{
    return map_size(l->ambiguous) > 0 && map_get(l->ambiguous, id, strlen(id));
}

void lot_restore_zone(lot *l, const char *zone_id, int64_t occupied)
{
    int z = zn_find_zone(l->groups, zone_id);
    if (z < 0 || l->source != CFG_SOURCE_GATES)
        return;
    l->zones[z].raw = lot_group_occupied(&(lot_group){ .capacity = l->zones[z].capacity,
                                                       .raw = occupied });
    lot_refresh_zone(l, &l->zones[z]);
}

void lot_restore_category(lot *l, enum cfg_category cat, int64_t occupied)
{
    if ((unsigned)cat >= CFG_N_CATEGORIES || l->cats[cat].capacity <= 0 ||
        l->source != CFG_SOURCE_GATES)
        return;
    l->cats[cat].raw = lot_group_occupied(&(lot_group){ .capacity = l->cats[cat].capacity,
                                                        .raw = occupied });
}

/* ---- bays and gates ---- */

/* Ids come from pl_topic (bounded) or from storage; one that does not fit is refused rather than
 * truncated, since a truncated id would alias another sensor. */
static bool lot_id_fits(const char *id)
{
    size_t len = strnlen(id, PL_ID_MAX + 1);
    return len > 0 && len <= PL_ID_MAX;
}

static lot_bay *lot_find_bay(const lot *l, const char *id)
{
    return map_get(l->bays, id, strlen(id));
}

/* ---- known bays by last-seen time ----
 * A min-heap on ts_ms holds every known bay, so the bays that bay_stale_after expires are always
 * at its top: a sweep costs O(1) when none expired and O(log n) per expiring bay, and a bay event
 * O(log n), instead of a scan of all bays. It is kept with the feature off too, so switching it on
 * by a reload needs no rebuild. */

static void lot_heap_set(lot *l, size_t i, lot_bay *b)
{
    l->heap[i] = b;
    b->heap_pos = (uint32_t)i;     /* the heap never outgrows max_bays_per_lot (lot.h) */
}

static void lot_heap_up(lot *l, size_t i)
{
    lot_bay *b = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->ts_ms <= b->ts_ms)
            break;
        lot_heap_set(l, i, l->heap[parent]);
        i = parent;
    }
    lot_heap_set(l, i, b);
}

static void lot_heap_down(lot *l, size_t i)
{
    lot_bay *b = l->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= l->n_heap)
            break;
        if (child + 1 < l->n_heap && l->heap[child + 1]->ts_ms < l->heap[child]->ts_ms)
            child++;
        if (b->ts_ms <= l->heap[child]->ts_ms)
            break;
        lot_heap_set(l, i, l->heap[child]);
        i = child;
    }
    lot_heap_set(l, i, b);
}

/* After B's ts_ms changed (either way: a restore may set an older one). */
static void lot_heap_fix(lot *l, lot_bay *b)
{
    lot_heap_up(l, b->heap_pos);
    lot_heap_down(l, b->heap_pos);
}

static void lot_heap_push(lot *l, lot_bay *b)
{
    void *array = l->heap;
    util_grow(&array, &l->cap_heap, l->n_heap + 1, sizeof *l->heap);
    l->heap = array;
    lot_heap_set(l, l->n_heap++, b);
    lot_heap_up(l, b->heap_pos);
}

static lot_bay *lot_heap_pop(lot *l)
{
    lot_bay *top = l->heap[0];
    if (--l->n_heap > 0) {
        lot_heap_set(l, 0, l->heap[l->n_heap]);
        lot_heap_down(l, 0);
    }
    return top;
}

/* ---- bays ---- */

/* Known -> unknown: its last state stays (it is still stored) but counts for nothing. */
static void lot_bay_forget(lot *l, lot_bay *b)
{
    b->unknown = true;
    l->unknown++;
    if (b->occupied)
        l->bays_occupied--;
    lot_groups_move(l, b->zone, b->cats, b->occupied ? -1 : 0, 1);
}

/* Unknown -> known, with the state and ts already set. */
static void lot_bay_recall(lot *l, lot_bay *b)
{
    b->unknown = false;
    l->unknown--;
    if (b->occupied)
        l->bays_occupied++;
    lot_groups_move(l, b->zone, b->cats, b->occupied ? 1 : 0, -1);
    lot_heap_push(l, b);
}

static lot_bay *lot_add_bay(lot *l, const char *id, bool occupied, int64_t ts_ms, int16_t zone,
                            uint8_t cats)
{
    size_t len = strlen(id);
    lot_bay *b = util_xcalloc(1, sizeof *b + len + 1);
    memcpy(b->id, id, len + 1);
    b->occupied = occupied;
    b->ts_ms = ts_ms;
    b->zone = zone;
    b->cats = cats;
    map_put(l->bays, b->id, strlen(b->id), b);
    if (occupied) {
        l->bays_occupied++;
        lot_groups_move(l, zone, cats, 1, 0);
    }
    lot_heap_push(l, b);
    return b;
}

static void lot_set_bay(lot *l, lot_bay *b, bool occupied, int64_t ts_ms)
{
    if (b->unknown) {
        b->occupied = occupied;
        b->ts_ms = ts_ms;
        lot_bay_recall(l, b);
        return;
    }
    if (b->occupied != occupied) {
        l->bays_occupied += occupied ? 1 : -1;
        lot_groups_move(l, b->zone, b->cats, occupied ? 1 : -1, 0);
    }
    b->occupied = occupied;
    b->ts_ms = ts_ms;
    lot_heap_fix(l, b);
}

static lot_gate *lot_find_gate(const lot *l, const char *id)
{
    return map_get(l->gates, id, strlen(id));
}

static lot_gate *lot_add_gate(lot *l, const char *id, int16_t zone, uint8_t cats)
{
    lot_gate *g = util_xcalloc(1, sizeof *g);
    strcpy(g->id, id);
    g->zone = zone;
    g->cats = cats;
    map_put(l->gates, g->id, strlen(g->id), g);
    return g;
}

/* ---- applying input ---- */

static bool lot_source_takes(enum cfg_source source, enum pl_kind kind)
{
    switch (source) {
    case CFG_SOURCE_BAYS:
        return kind == PL_KIND_BAY;
    case CFG_SOURCE_GATES:
        return kind == PL_KIND_GATE || kind == PL_KIND_COUNT;
    case CFG_SOURCE_COUNT:
        return kind == PL_KIND_COUNT;
    }
    return false;
}

static lot_outcome lot_rejected(enum pl_reject reason)
{
    return (lot_outcome){ .result = LOT_REJECTED, .reject = reason };
}

/* Bookkeeping after any applied input at event time TS_MS: the lot is alive and its derived
 * state (smoothing, status) follows the new occupied. */
static void lot_after_apply(lot *l, int64_t ts_ms)
{
    bool first = !l->has_data;
    l->has_data = true;
    if (ts_ms > l->ts_ms)
        l->ts_ms = ts_ms;
    l->stale = false;
    l->dirty = true;
    sm_update(&l->smooth, ts_ms, (double)lot_free_spaces(l), l->tau_ms);
    lot_refresh_status(l);
    if (first)
        lot_refresh_zones(l);
}

/* A valid, newest input that repeats the current state: it still proves the lot is alive, so the
 * newest time advances and stale clears, but nothing else is written. */
static void lot_after_unchanged(lot *l, int64_t ts_ms)
{
    if (!l->has_data) {
        /* Only after a partial restore (bays without lot state): the repeat is the first data. */
        lot_after_apply(l, ts_ms);
        return;
    }
    if (ts_ms > l->ts_ms) {
        l->ts_ms = ts_ms;
        l->dirty = true;
    }
    if (l->stale) {
        l->stale = false;
        l->dirty = true;
    }
}

static lot_outcome lot_apply_bay(lot *l, const char *id, const pl_event *ev, int64_t ts_ms,
                                 int64_t max_bays)
{
    lot_outcome out = { .result = LOT_APPLIED };
    lot_bay *b = lot_find_bay(l, id);
    if (!b) {
        if (lot_known_ambiguous(l, id))
            return lot_rejected(PL_AMBIGUOUS_ZONE);
        if ((int64_t)(map_size(l->bays) + map_size(l->ambiguous)) >= max_bays)
            return lot_rejected(PL_TOO_MANY_BAYS);
        int16_t zone;
        uint8_t cats;
        if (!lot_resolve_new(l, id, &zone, &cats, &out))
            return out;
        /* Even a first "free" is stored: it is the bay's last applied state and ts. */
        b = lot_add_bay(l, id, ev->occupied, ts_ms, zone, cats);
    } else if (ts_ms < b->ts_ms) {
        out.result = LOT_IGNORED_OLD;
        out.lag_ms = b->ts_ms - ts_ms;
        return out;
    } else if (b->occupied == ev->occupied && !b->unknown) {
        /* (A repeat from an unknown bay is a change: the bay counts again.) */
        out.result = LOT_UNCHANGED;
        if (ts_ms > b->ts_ms) {
            /* A newer confirmation of the state: an event older than it must now be ignored
             * (else a redelivered repeat could flip the bay back), after a restart too, so the
             * bay's time advances and is stored. */
            b->ts_ms = ts_ms;
            lot_heap_fix(l, b);
            lot_mark_bay_dirty(l, b);
        }
        lot_after_unchanged(l, ts_ms);
        return out;
    } else {
        /* Equal ts with a different state: the later arrival wins. */
        lot_set_bay(l, b, ev->occupied, ts_ms);
    }
    lot_mark_bay_dirty(l, b);
    l->occupied = lot_clamp(l, l->bays_occupied, &out.clamped);
    lot_after_apply(l, ts_ms);
    return out;
}

/* OCCUPIED moved by COUNT cars in or out, clamped to [0, capacity] without overflow (COUNT may
 * be any 64-bit number). */
static int64_t lot_gate_move(const lot *l, bool in, uint64_t count, bool *clamped)
{
    uint64_t room = (uint64_t)(in ? l->capacity - l->occupied : l->occupied);
    *clamped = count > room;
    if (in)
        return *clamped ? l->capacity : l->occupied + (int64_t)count;
    return *clamped ? 0 : l->occupied - (int64_t)count;
}

static lot_outcome lot_apply_gate(lot *l, const char *id, const pl_event *ev, int64_t ts_ms,
                                  int64_t max_bays)
{
    lot_outcome out = { .result = LOT_APPLIED };
    lot_gate *g = lot_find_gate(l, id);
    if (!g) {
        if (lot_known_ambiguous(l, id))
            return lot_rejected(PL_AMBIGUOUS_ZONE);
        if ((int64_t)(map_size(l->gates) + map_size(l->ambiguous)) >= max_bays)
            return lot_rejected(PL_TOO_MANY_BAYS);
        int16_t zone;
        uint8_t cats;
        if (!lot_resolve_new(l, id, &zone, &cats, &out))
            return out;
        g = lot_add_gate(l, id, zone, cats);
    }
    if (ev->has_seq && g->has_seq && ev->seq <= g->seq) {
        out.result = LOT_IGNORED_DUPLICATE;
        return out;
    }
    /* Without seq there is no way to tell a redelivery from a new car: count it. */
    if (ev->has_seq) {
        g->seq = ev->seq;
        g->has_seq = true;
        lot_mark_gate_dirty(l, g);
    }
    l->occupied = lot_gate_move(l, ev->gate_in, ev->count, &out.clamped);
    lot_groups_gate(l, g->zone, g->cats, ev->gate_in, ev->count);
    lot_after_apply(l, ts_ms);
    return out;
}

/* SPEC §3: the same ts and value as the last applied count is a redelivery. Comparing with
 * the current occupied instead would undo the gate events applied since on a gates lot. When
 * the stored state predates count_value, the occupied it left is all there is to compare. */
static bool lot_count_is_redelivery(const lot *l, const pl_event *ev, int64_t ts_ms,
                                    int64_t occupied)
{
    if (ts_ms != l->count_ts_ms)
        return false;
    if (l->count_value < 0)
        return occupied == l->occupied;
    return ev->value == l->count_value && ev->is_free == l->count_is_free;
}

static lot_outcome lot_apply_count(lot *l, const pl_event *ev, int64_t ts_ms)
{
    lot_outcome out = { .result = LOT_APPLIED };
    if (ts_ms < l->count_ts_ms) {
        out.result = LOT_IGNORED_OLD;
        out.lag_ms = l->count_ts_ms - ts_ms;
        return out;
    }
    out.capacity_mismatch = ev->has_capacity && ev->capacity != l->capacity;
    bool clamped;
    int64_t occupied = lot_clamp(l, ev->is_free ? l->capacity - ev->value : ev->value, &clamped);
    if (lot_count_is_redelivery(l, ev, ts_ms, occupied)) {
        /* its clamp and capacity mismatch were counted when it was applied */
        out.result = LOT_UNCHANGED;
        out.capacity_mismatch = false;
        lot_after_unchanged(l, ts_ms);
        return out;
    }
    out.clamped = clamped;
    if (l->source == CFG_SOURCE_GATES) {
        out.recalibrated = true;
        out.correction = occupied - l->occupied;
    }
    l->occupied = occupied;
    l->count_ts_ms = ts_ms;
    l->count_value = ev->value;
    l->count_is_free = ev->is_free;
    lot_after_apply(l, ts_ms);
    return out;
}

lot_outcome lot_apply(lot *l, const pl_topic *topic, const pl_event *ev, int64_t ts_ms,
                      int64_t max_bays)
{
    if (!lot_source_takes(l->source, topic->kind))
        return lot_rejected(PL_WRONG_KIND);
    /* pl_parse_topic validated the id; this only guards the copy into the fixed-size id. */
    if (topic->kind != PL_KIND_COUNT && !lot_id_fits(topic->sensor))
        return lot_rejected(PL_BAD_ID);
    switch (topic->kind) {
    case PL_KIND_BAY:
        return lot_apply_bay(l, topic->sensor, ev, ts_ms, max_bays);
    case PL_KIND_GATE:
        return lot_apply_gate(l, topic->sensor, ev, ts_ms, max_bays);
    case PL_KIND_COUNT:
        return lot_apply_count(l, ev, ts_ms);
    }
    return lot_rejected(PL_WRONG_KIND);
}

/* Whether TS_MS is more than AFTER_MS behind CLOCK_MS. Unsigned difference: defined for any two
 * int64 values, exact when clock_ms > ts_ms. */
static bool lot_expired(int64_t ts_ms, int64_t clock_ms, int64_t after_ms)
{
    return clock_ms > ts_ms && (uint64_t)clock_ms - (uint64_t)ts_ms > (uint64_t)after_ms;
}

/* Moves the bays silent longer than bay_stale_after to unknown; true when any did. */
static bool lot_update_unknown(lot *l, int64_t clock_ms)
{
    if (l->bay_stale_after_ms <= 0)
        return false;
    bool changed = false;
    while (l->n_heap > 0 && lot_expired(l->heap[0]->ts_ms, clock_ms, l->bay_stale_after_ms)) {
        lot_bay_forget(l, lot_heap_pop(l));
        changed = true;
    }
    if (!changed)
        return false;
    bool clamped;
    l->occupied = lot_clamp(l, l->bays_occupied, &clamped);
    /* no event made this change: hold the smoothing rather than invent an event time */
    lot_hold_free(l);
    lot_refresh_status(l);
    l->dirty = true;
    return true;
}

/* A closure whose `until` the event clock has reached ends by itself. */
static bool lot_update_closure(lot *l, int64_t clock_ms)
{
    if (!l->closed || !l->has_closed_until || clock_ms < l->closed_until_ms)
        return false;
    return lot_set_closure(l, false, NULL, false, 0, clock_ms);
}

bool lot_update_stale(lot *l, int64_t clock_ms)
{
    bool closure_changed = lot_update_closure(l, clock_ms);
    bool bays_changed = lot_update_unknown(l, clock_ms) || closure_changed;
    bool stale = l->has_data && lot_expired(l->ts_ms, clock_ms, l->stale_after_ms);
    if (stale == l->stale)
        return bays_changed;
    l->stale = stale;
    l->dirty = true;
    return true;
}

/* occupied as the source defines it, clamped: for a bays lot the bays decide (once there are
 * any), otherwise the current value. A clamp here is a capacity change, not an anomaly. */
static void lot_reclamp(lot *l)
{
    bool clamped;
    bool from_bays = l->source == CFG_SOURCE_BAYS && map_size(l->bays) > 0;
    l->occupied = lot_clamp(l, from_bays ? l->bays_occupied : l->occupied, &clamped);
}

static void lot_recall_entry(void *ctx, void *value)
{
    lot_bay *b = value;
    if (b->unknown)
        lot_bay_recall(ctx, b);
}

void lot_configure(lot *l, const cfg_lot *cfg, int64_t tau_ms)
{
    int64_t old_bay_stale_after_ms = l->bay_stale_after_ms;
    lot_copy_config(l, cfg, tau_ms);
    /* Changed (or off): every bay counts by its last state again, once, O(n); the next
     * lot_update_stale expires what the new duration expires. */
    if (l->bay_stale_after_ms != old_bay_stale_after_ms && l->unknown > 0)
        map_foreach(l->bays, lot_recall_entry, l);
    lot_groups_reconfigure(l, cfg);
    lot_reclamp(l);
    lot_hold_free(l);
    lot_refresh_status(l);
    lot_refresh_zones(l);
    l->dirty = true;
}

/* ---- restore ---- */

/* After restoring a piece of state, re-derive what depends on it; the capacity may have changed
 * while the daemon was down. Nothing is marked dirty: the state came from storage. */
static void lot_after_restore(lot *l)
{
    lot_reclamp(l);
    lot_hold_free(l);
    lot_refresh_status(l);
    lot_refresh_zones(l);
}

void lot_restore_bay(lot *l, const char *id, bool occupied, int64_t ts_ms)
{
    if (!lot_id_fits(id))
        return;
    lot_bay *b = lot_find_bay(l, id);
    if (b) {
        lot_set_bay(l, b, occupied, ts_ms);
    } else {
        int16_t zone;
        uint8_t cats;
        lot_resolve_known(l, id, &zone, &cats);
        lot_add_bay(l, id, occupied, ts_ms, zone, cats);
    }
    lot_after_restore(l);
}

void lot_restore_gate(lot *l, const char *id, uint64_t seq)
{
    if (!lot_id_fits(id))
        return;
    lot_gate *g = lot_find_gate(l, id);
    if (!g) {
        int16_t zone;
        uint8_t cats;
        lot_resolve_known(l, id, &zone, &cats);
        g = lot_add_gate(l, id, zone, cats);
    }
    g->seq = seq;
    g->has_seq = true;
}

void lot_restore_count(lot *l, int64_t value, bool is_free)
{
    l->count_value = value < 0 ? -1 : value;
    l->count_is_free = is_free;
}

void lot_restore_state(lot *l, int64_t occupied, int64_t ts_ms, int64_t count_ts_ms,
                       enum lot_status status, const sm_state *smooth)
{
    /* A stored "unknown" is a lot that was configured but never had input. */
    l->has_data = status != LOT_STATUS_UNKNOWN;
    l->occupied = occupied;
    l->ts_ms = ts_ms;
    l->count_ts_ms = count_ts_ms;
    l->status = status;
    /* A stored "closed" hides the status underneath; lot_refresh_status derives it again. The
     * closure itself comes from lot_restore_closure. */
    l->open_status = status == LOT_STATUS_CLOSED ? LOT_STATUS_OPEN : status;
    if (smooth)
        l->smooth = *smooth;
    lot_after_restore(l);
}

/* ---- closures ---- */

/* Copies SRC (NULL: "") cut to LOT_REASON_MAX bytes; the parser already refuses longer ones. */
static void lot_copy_reason(char *dst, const char *src)
{
    size_t n = src ? strnlen(src, LOT_REASON_MAX) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

/* L's reason becomes REASON (already cut), in memory of its own only when there is one. */
static void lot_set_reason(lot *l, const char *reason)
{
    if (l->closed_reason != lot_no_reason)
        free((char *)l->closed_reason);
    l->closed_reason = reason[0] ? util_xstrdup(reason) : lot_no_reason;
}

static void lot_store_closure(lot *l, bool closed, const char *reason, bool has_until,
                              int64_t until_ms)
{
    l->closed = closed;
    l->has_closed_until = closed && has_until;
    l->closed_until_ms = l->has_closed_until ? until_ms : 0;
    char cut[LOT_REASON_MAX + 1];
    lot_copy_reason(cut, closed ? reason : NULL);
    lot_set_reason(l, cut);
    lot_refresh_status(l);
    lot_refresh_zones(l);
}

bool lot_set_closure(lot *l, bool closed, const char *reason, bool has_until, int64_t until_ms,
                     int64_t clock_ms)
{
    if (closed && has_until && until_ms <= clock_ms)
        closed = false;
    char cut[LOT_REASON_MAX + 1];
    lot_copy_reason(cut, closed ? reason : NULL);
    bool until_same = l->has_closed_until == (closed && has_until) &&
                      (!l->has_closed_until || l->closed_until_ms == until_ms);
    if (l->closed == closed && until_same && strcmp(l->closed_reason, cut) == 0)
        return false;
    lot_store_closure(l, closed, cut, has_until, until_ms);
    l->dirty = true;
    l->outputs_rev++;
    return true;
}

void lot_restore_closure(lot *l, const char *reason, bool has_until, int64_t until_ms)
{
    lot_store_closure(l, true, reason, has_until, until_ms);
}
