/* Unit tests for lot: the SPEC §3 input rules and the SPEC §4 status rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lot.h"

#define TAU 300000
#define HOUR INT64_C(3600000)
#define MAX_BAYS 10000

static char lot_id[] = "BHMBCCMKT01";
static char lot_name[] = "Broad Street";

static cfg_lot make_cfg(int64_t capacity, enum cfg_source source)
{
    return (cfg_lot){ .id = lot_id, .name = lot_name, .capacity = capacity, .source = source,
                      .has_position = true, .lat = 52.4781, .lon = -1.9086,
                      .stale_after_ms = HOUR, .almost_full = 0.9, .hysteresis = 0.05 };
}

static lot *make_lot(int64_t capacity, enum cfg_source source)
{
    cfg_lot cfg = make_cfg(capacity, source);
    return lot_new(&cfg, TAU);
}

static pl_topic make_topic(enum pl_kind kind, const char *sensor)
{
    pl_topic t = { .kind = kind };
    strcpy(t.lot, lot_id);
    strcpy(t.sensor, sensor);
    return t;
}

static lot_outcome bay_max(lot *l, const char *id, bool occupied, int64_t ts, int64_t max_bays)
{
    pl_topic t = make_topic(PL_KIND_BAY, id);
    pl_event ev = { .kind = PL_KIND_BAY, .has_ts = true, .ts_ms = ts, .occupied = occupied };
    return lot_apply(l, &t, &ev, ts, max_bays);
}

static lot_outcome bay(lot *l, const char *id, bool occupied, int64_t ts)
{
    return bay_max(l, id, occupied, ts, MAX_BAYS);
}

static lot_outcome gate_full(lot *l, const char *id, bool in, uint64_t count, bool has_seq,
                             uint64_t seq, int64_t ts, int64_t max_bays)
{
    pl_topic t = make_topic(PL_KIND_GATE, id);
    pl_event ev = { .kind = PL_KIND_GATE, .has_ts = true, .ts_ms = ts, .gate_in = in,
                    .count = count, .has_seq = has_seq, .seq = seq };
    return lot_apply(l, &t, &ev, ts, max_bays);
}

static lot_outcome gate(lot *l, const char *id, bool in, uint64_t count, int64_t ts)
{
    return gate_full(l, id, in, count, false, 0, ts, MAX_BAYS);
}

static lot_outcome gate_seq(lot *l, const char *id, bool in, uint64_t seq, int64_t ts)
{
    return gate_full(l, id, in, 1, true, seq, ts, MAX_BAYS);
}

static lot_outcome count_full(lot *l, bool is_free, int64_t value, bool has_capacity,
                              int64_t capacity, int64_t ts)
{
    pl_topic t = make_topic(PL_KIND_COUNT, "");
    pl_event ev = { .kind = PL_KIND_COUNT, .has_ts = true, .ts_ms = ts, .is_free = is_free,
                    .value = value, .has_capacity = has_capacity, .capacity = capacity };
    return lot_apply(l, &t, &ev, ts, MAX_BAYS);
}

static lot_outcome count_occ(lot *l, int64_t occupied, int64_t ts)
{
    return count_full(l, false, occupied, false, 0, ts);
}

static lot_outcome count_free(lot *l, int64_t free_spaces, int64_t ts)
{
    return count_full(l, true, free_spaces, false, 0, ts);
}

static lot_bay *find_bay(lot *l, const char *id)
{
    return map_get(l->bays, id, strlen(id));
}

static lot_gate *find_gate(lot *l, const char *id)
{
    return map_get(l->gates, id, strlen(id));
}

/* ---- construction, names ---- */

static void test_new_lot_is_unknown(void **state)
{
    lot *l = make_lot(577, CFG_SOURCE_COUNT);
    assert_string_equal(l->id, lot_id);
    assert_ptr_not_equal(l->id, lot_id);
    assert_string_equal(l->name, lot_name);
    assert_ptr_not_equal(l->name, lot_name);
    assert_int_equal(l->capacity, 577);
    assert_int_equal(l->status, LOT_STATUS_UNKNOWN);
    assert_false(l->has_data);
    assert_int_equal(l->occupied, 0);
    assert_true(l->ts_ms == INT64_MIN);
    assert_true(l->count_ts_ms == INT64_MIN);
    assert_false(l->stale);
    assert_false(lot_update_stale(l, 100LL * HOUR));   /* no data: never stale */
    assert_false(l->stale);
    assert_int_equal(lot_free_spaces(l), 577);
    assert_float_equal(lot_occupancy(l), 0.0, 0);
    lot_free(l);
    lot_free(NULL);
}

static void test_status_names(void **state)
{
    static const char *const names[] = { "unknown", "open", "almost_full", "full", "closed" };
    for (int i = 0; i < 5; i++) {
        enum lot_status st;
        assert_string_equal(lot_status_name((enum lot_status)i), names[i]);
        assert_int_equal(lot_status_parse(names[i], &st), 0);
        assert_int_equal(st, i);
    }
    enum lot_status st = LOT_STATUS_OPEN;
    assert_int_equal(lot_status_parse("FULL", &st), -1);
    assert_int_equal(lot_status_parse("", &st), -1);
    assert_int_equal(st, LOT_STATUS_OPEN);
}

/* ---- bays ---- */

static void test_bays_count_occupied(void **state)
{
    lot *l = make_lot(10, CFG_SOURCE_BAYS);
    assert_int_equal(bay(l, "a", true, 1000).result, LOT_APPLIED);
    assert_int_equal(bay(l, "b", true, 1000).result, LOT_APPLIED);
    assert_int_equal(bay(l, "c", true, 1000).result, LOT_APPLIED);
    /* A first "free" creates the bay: its state and ts must be stored. */
    assert_int_equal(bay(l, "d", false, 1000).result, LOT_APPLIED);
    assert_non_null(find_bay(l, "d"));
    assert_int_equal(map_size(l->bays), 4);
    assert_int_equal(l->occupied, 3);
    assert_int_equal(l->bays_occupied, 3);
    assert_true(l->has_data);
    assert_int_equal(l->status, LOT_STATUS_OPEN);
    assert_int_equal(bay(l, "b", false, 2000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 2);
    assert_int_equal(bay(l, "d", true, 2000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 3);
    assert_int_equal(l->ts_ms, 2000);
    lot_free(l);
}

/* Bay records keep their ids inline at their own length: the shortest and the longest id both
 * come back whole, and the state bits do not disturb one another. */
static void test_bay_ids_inline(void **state)
{
    lot *l = make_lot(10, CFG_SOURCE_BAYS);
    char longest[PL_ID_MAX + 1];
    memset(longest, 'x', PL_ID_MAX);
    longest[PL_ID_MAX] = '\0';
    assert_int_equal(bay(l, "a", true, 1000).result, LOT_APPLIED);
    assert_int_equal(bay(l, longest, false, 1000).result, LOT_APPLIED);
    lot_bay *a = find_bay(l, "a"), *x = find_bay(l, longest);
    assert_string_equal(a->id, "a");
    assert_string_equal(x->id, longest);
    assert_true(a->occupied && a->dirty && !a->unknown);
    assert_true(!x->occupied && x->dirty && !x->unknown);
    lot_clear_dirty(l);
    assert_true(a->occupied && !a->dirty && !a->unknown);
    lot_restore_bay(l, "b", true, 500);
    lot_bay *b = find_bay(l, "b");
    assert_true(b->occupied && !b->dirty && b->ts_ms == 500);
    assert_int_equal(l->occupied, 2);
    lot_free(l);
}

static void test_bay_repeat_unchanged(void **state)
{
    lot *l = make_lot(10, CFG_SOURCE_BAYS);
    bay(l, "a", true, 1000);
    lot_clear_dirty(l);
    /* A repeat with a newer ts: the state stays, the bay's time advances (and is written, so
     * a restart keeps it), and the lot is alive at 5000. */
    lot_outcome o = bay(l, "a", true, 5000);
    assert_int_equal(o.result, LOT_UNCHANGED);
    assert_false(o.clamped);
    lot_bay *b = find_bay(l, "a");
    assert_int_equal(b->ts_ms, 5000);
    assert_true(b->dirty);
    assert_int_equal(l->n_dirty_bays, 1);
    assert_int_equal(l->occupied, 1);
    assert_int_equal(l->ts_ms, 5000);
    assert_true(l->dirty);
    /* An exact redelivery changes nothing at all. */
    lot_clear_dirty(l);
    assert_int_equal(bay(l, "a", true, 5000).result, LOT_UNCHANGED);
    assert_int_equal(bay(l, "a", true, 1000).result, LOT_IGNORED_OLD);    /* older than 5000 */
    assert_false(l->dirty);
    assert_int_equal(l->ts_ms, 5000);
    /* An event older than the repeat is ignored; so the repeat's redelivery cannot flip it. */
    assert_int_equal(bay(l, "a", false, 3000).result, LOT_IGNORED_OLD);
    assert_int_equal(bay(l, "a", true, 5000).result, LOT_UNCHANGED);
    assert_true(b->occupied);
    assert_false(l->dirty);
    lot_free(l);
}

static void test_bay_older_ignored(void **state)
{
    lot *l = make_lot(10, CFG_SOURCE_BAYS);
    bay(l, "a", true, 5000);
    lot_clear_dirty(l);
    assert_int_equal(bay(l, "a", false, 4999).result, LOT_IGNORED_OLD);
    assert_int_equal(bay(l, "a", true, 1).result, LOT_IGNORED_OLD);
    lot_bay *b = find_bay(l, "a");
    assert_true(b->occupied);
    assert_int_equal(b->ts_ms, 5000);
    assert_int_equal(l->occupied, 1);
    assert_false(l->dirty);
    assert_int_equal(l->n_dirty_bays, 0);
    lot_free(l);
}

/* Equal ts, different state: not older, so it applies (the later arrival wins). */
static void test_bay_equal_ts_different_state(void **state)
{
    lot *l = make_lot(10, CFG_SOURCE_BAYS);
    bay(l, "a", true, 5000);
    assert_int_equal(bay(l, "a", false, 5000).result, LOT_APPLIED);
    assert_false(find_bay(l, "a")->occupied);
    assert_int_equal(l->occupied, 0);
    lot_free(l);
}

static void test_bays_clamped_to_capacity(void **state)
{
    lot *l = make_lot(2, CFG_SOURCE_BAYS);
    assert_false(bay(l, "a", true, 1000).clamped);
    assert_false(bay(l, "b", true, 1000).clamped);
    lot_outcome o = bay(l, "c", true, 1000);
    assert_int_equal(o.result, LOT_APPLIED);
    assert_true(o.clamped);
    assert_int_equal(l->occupied, 2);
    assert_int_equal(l->bays_occupied, 3);
    /* Back within capacity: no clamp. */
    o = bay(l, "a", false, 2000);
    assert_false(o.clamped);
    assert_int_equal(l->occupied, 2);
    lot_free(l);
}

static void test_too_many_bays(void **state)
{
    lot *l = make_lot(10, CFG_SOURCE_BAYS);
    assert_int_equal(bay_max(l, "a", true, 1000, 2).result, LOT_APPLIED);
    assert_int_equal(bay_max(l, "b", false, 1000, 2).result, LOT_APPLIED);
    lot_clear_dirty(l);
    lot_outcome o = bay_max(l, "c", true, 2000, 2);
    assert_int_equal(o.result, LOT_REJECTED);
    assert_int_equal(o.reject, PL_TOO_MANY_BAYS);
    assert_null(find_bay(l, "c"));
    assert_int_equal(map_size(l->bays), 2);
    assert_int_equal(l->occupied, 1);
    assert_int_equal(l->ts_ms, 1000);
    assert_false(l->dirty);
    /* Known bays still update at the limit. */
    assert_int_equal(bay_max(l, "b", true, 2000, 2).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 2);
    lot_free(l);
}

/* ---- gates ---- */

static void test_gates_in_out(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_GATES);
    assert_int_equal(gate(l, "north", true, 1, 1000).result, LOT_APPLIED);
    assert_int_equal(gate(l, "north", true, 3, 2000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 4);
    assert_int_equal(gate(l, "south", false, 2, 3000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 2);
    assert_int_equal(lot_free_spaces(l), 98);
    assert_int_equal(map_size(l->gates), 2);
    assert_int_equal(l->ts_ms, 3000);
    /* Gate events are not ordered by ts: an older one still counts, ts_ms stays the newest. */
    assert_int_equal(gate(l, "south", true, 1, 500).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 3);
    assert_int_equal(l->ts_ms, 3000);
    lot_free(l);
}

static void test_gate_seq_duplicates_and_jumps(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_GATES);
    assert_int_equal(gate_seq(l, "g", true, 5, 1000).result, LOT_APPLIED);
    lot_clear_dirty(l);
    assert_int_equal(gate_seq(l, "g", true, 5, 1000).result, LOT_IGNORED_DUPLICATE);
    assert_int_equal(gate_seq(l, "g", true, 4, 2000).result, LOT_IGNORED_DUPLICATE);
    assert_int_equal(gate_seq(l, "g", true, 0, 2000).result, LOT_IGNORED_DUPLICATE);
    assert_int_equal(l->occupied, 1);
    assert_false(l->dirty);
    assert_int_equal(l->n_dirty_gates, 0);
    /* A jump (lost messages) is applied; the gap is not counted. */
    assert_int_equal(gate_seq(l, "g", true, 9, 3000).result, LOT_APPLIED);
    assert_int_equal(find_gate(l, "g")->seq, 9);
    assert_int_equal(gate_seq(l, "g", true, 6, 3000).result, LOT_IGNORED_DUPLICATE);
    assert_int_equal(gate_seq(l, "g", false, 10, 4000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 1);
    /* Seqs are per gate. */
    assert_int_equal(gate_seq(l, "h", true, 1, 4000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 2);
    lot_free(l);
}

static void test_gate_seq_max(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_GATES);
    assert_int_equal(gate_seq(l, "g", true, 0, 1000).result, LOT_APPLIED);
    assert_int_equal(gate_seq(l, "g", true, UINT64_MAX - 1, 1000).result, LOT_APPLIED);
    assert_int_equal(gate_seq(l, "g", true, UINT64_MAX, 1000).result, LOT_APPLIED);
    assert_true(find_gate(l, "g")->seq == UINT64_MAX);
    assert_int_equal(gate_seq(l, "g", true, UINT64_MAX, 1000).result, LOT_IGNORED_DUPLICATE);
    assert_int_equal(l->occupied, 3);
    /* A fresh gate may start at the top. */
    assert_int_equal(gate_seq(l, "h", true, UINT64_MAX, 1000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 4);
    lot_free(l);
}

static void test_gate_without_seq_always_applied(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_GATES);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gate(l, "g", true, 1, 1000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 3);
    /* A gate without seq has nothing to store. */
    assert_int_equal(l->n_dirty_gates, 0);
    assert_false(find_gate(l, "g")->has_seq);
    /* After seq'd events, an event without seq is applied and keeps the last seq. */
    gate_seq(l, "g", true, 7, 2000);
    assert_int_equal(gate(l, "g", false, 1, 3000).result, LOT_APPLIED);
    assert_int_equal(find_gate(l, "g")->seq, 7);
    assert_int_equal(l->occupied, 3);
    lot_free(l);
}

static void test_gate_clamps(void **state)
{
    lot *l = make_lot(5, CFG_SOURCE_GATES);
    lot_outcome o = gate(l, "g", false, 1, 1000);
    assert_int_equal(o.result, LOT_APPLIED);
    assert_true(o.clamped);
    assert_int_equal(l->occupied, 0);
    assert_false(gate(l, "g", true, 5, 2000).clamped);
    assert_int_equal(l->occupied, 5);
    o = gate(l, "g", true, 1, 3000);
    assert_true(o.clamped);
    assert_int_equal(l->occupied, 5);
    assert_false(gate(l, "g", false, 2, 4000).clamped);
    assert_int_equal(l->occupied, 3);
    o = gate(l, "g", false, 4, 5000);
    assert_true(o.clamped);
    assert_int_equal(l->occupied, 0);
    /* The whole 64-bit range of count, without overflow. */
    assert_true(gate(l, "g", true, UINT64_MAX, 6000).clamped);
    assert_int_equal(l->occupied, 5);
    assert_true(gate(l, "g", false, UINT64_MAX, 7000).clamped);
    assert_int_equal(l->occupied, 0);
    lot_free(l);
}

static void test_too_many_gates(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_GATES);
    assert_int_equal(gate_full(l, "a", true, 1, false, 0, 1000, 1).result, LOT_APPLIED);
    lot_outcome o = gate_full(l, "b", true, 1, true, 1, 1000, 1);
    assert_int_equal(o.result, LOT_REJECTED);
    assert_int_equal(o.reject, PL_TOO_MANY_BAYS);
    assert_null(find_gate(l, "b"));
    assert_int_equal(l->occupied, 1);
    assert_int_equal(gate_full(l, "a", true, 1, false, 0, 1000, 1).result, LOT_APPLIED);
    lot_free(l);
}

/* ---- count ---- */

static void test_count_occupied_and_free(void **state)
{
    lot *l = make_lot(577, CFG_SOURCE_COUNT);
    lot_outcome o = count_occ(l, 61, 1000);
    assert_int_equal(o.result, LOT_APPLIED);
    assert_false(o.clamped);
    assert_false(o.recalibrated);
    assert_int_equal(l->occupied, 61);
    assert_int_equal(l->count_ts_ms, 1000);
    assert_int_equal(count_free(l, 516, 2000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 61);
    assert_int_equal(count_free(l, 500, 3000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 77);
    assert_int_equal(lot_free_spaces(l), 500);
    lot_free(l);
}

static void test_count_clamps(void **state)
{
    lot *l = make_lot(577, CFG_SOURCE_COUNT);
    lot_outcome o = count_occ(l, 600, 1000);
    assert_int_equal(o.result, LOT_APPLIED);
    assert_true(o.clamped);
    assert_int_equal(l->occupied, 577);
    /* Its redelivery is unchanged and not a second anomaly. */
    o = count_occ(l, 600, 1000);
    assert_int_equal(o.result, LOT_UNCHANGED);
    assert_false(o.clamped);
    o = count_free(l, 600, 2000);
    assert_true(o.clamped);
    assert_int_equal(l->occupied, 0);
    o = count_occ(l, 577, 3000);
    assert_false(o.clamped);
    assert_int_equal(l->occupied, 577);
    o = count_free(l, 0, 4000);
    assert_false(o.clamped);
    o = count_occ(l, 0, 5000);
    assert_false(o.clamped);
    assert_int_equal(l->occupied, 0);
    lot_free(l);
}

static void test_count_capacity_mismatch(void **state)
{
    lot *l = make_lot(577, CFG_SOURCE_COUNT);
    lot_outcome o = count_full(l, false, 100, true, 600, 1000);
    assert_int_equal(o.result, LOT_APPLIED);
    assert_true(o.capacity_mismatch);
    assert_int_equal(l->capacity, 577);
    assert_int_equal(l->occupied, 100);
    o = count_full(l, true, 500, true, 577, 2000);
    assert_false(o.capacity_mismatch);
    assert_int_equal(l->occupied, 77);
    /* "free" is relative to the configured capacity, whatever the message says. */
    o = count_full(l, true, 500, true, 1000, 3000);
    assert_true(o.capacity_mismatch);
    assert_int_equal(l->occupied, 77);
    lot_free(l);
}

static void test_count_ordering(void **state)
{
    lot *l = make_lot(577, CFG_SOURCE_COUNT);
    count_occ(l, 100, 2000);
    lot_clear_dirty(l);
    assert_int_equal(count_occ(l, 50, 1999).result, LOT_IGNORED_OLD);
    assert_int_equal(l->occupied, 100);
    assert_int_equal(l->count_ts_ms, 2000);
    assert_false(l->dirty);
    /* Same value, same ts: a redelivery. */
    assert_int_equal(count_occ(l, 100, 2000).result, LOT_UNCHANGED);
    assert_false(l->dirty);
    /* Same ts, different value: the later arrival wins. */
    assert_int_equal(count_occ(l, 90, 2000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 90);
    lot_clear_dirty(l);
    /* Same value, newer ts: the count's time advances. */
    lot_outcome o = count_occ(l, 90, 3000);
    assert_int_equal(o.result, LOT_APPLIED);
    assert_int_equal(l->count_ts_ms, 3000);
    assert_int_equal(l->ts_ms, 3000);
    assert_true(l->dirty);
    assert_int_equal(count_occ(l, 95, 2500).result, LOT_IGNORED_OLD);
    lot_free(l);
}

static void test_gates_recalibration(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_GATES);
    gate(l, "g", true, 10, 1000);
    lot_outcome o = count_occ(l, 7, 2000);
    assert_int_equal(o.result, LOT_APPLIED);
    assert_true(o.recalibrated);
    assert_int_equal(o.correction, -3);
    assert_int_equal(l->occupied, 7);
    gate(l, "g", true, 1, 3000);
    o = count_free(l, 80, 4000);
    assert_true(o.recalibrated);
    assert_int_equal(o.correction, 12);
    assert_int_equal(l->occupied, 20);
    /* Counts on a gates lot are ordered too. */
    assert_int_equal(count_occ(l, 0, 3999).result, LOT_IGNORED_OLD);
    /* A count matching the gates' sum: applied, correction 0. */
    o = count_occ(l, 20, 5000);
    assert_int_equal(o.result, LOT_APPLIED);
    assert_true(o.recalibrated);
    assert_int_equal(o.correction, 0);
    /* Clamped recalibration: correction is to the clamped value. */
    o = count_occ(l, 150, 6000);
    assert_true(o.clamped);
    assert_int_equal(o.correction, 80);
    assert_int_equal(l->occupied, 100);
    lot_free(l);
}

/* SPEC §3: a count with the ts and value of the last applied one is a redelivery, whatever
 * the gates did since; it must not take back the cars counted in between. */
static void test_gates_count_redelivered(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_GATES);
    assert_int_equal(count_occ(l, 50, 1000).result, LOT_APPLIED);
    gate_seq(l, "g", true, 1, 2000);
    assert_int_equal(l->occupied, 51);
    lot_clear_dirty(l);
    lot_outcome o = count_occ(l, 50, 1000);
    assert_int_equal(o.result, LOT_UNCHANGED);
    assert_false(o.recalibrated);
    assert_int_equal(l->occupied, 51);
    assert_false(l->dirty);
    /* the same number as free is another message */
    o = count_free(l, 50, 1000);
    assert_int_equal(o.result, LOT_APPLIED);
    assert_int_equal(l->occupied, 50);
    /* state stored before count_value was kept: the occupied it left is the comparison */
    lot_restore_count(l, -1, false);
    assert_int_equal(count_occ(l, 50, 1000).result, LOT_UNCHANGED);
    lot_free(l);
}

/* ---- kinds ---- */

static void expect_wrong_kind(lot *l, lot_outcome o)
{
    assert_int_equal(o.result, LOT_REJECTED);
    assert_int_equal(o.reject, PL_WRONG_KIND);
    assert_false(l->has_data);
    assert_false(l->dirty);
    assert_int_equal(l->occupied, 0);
    assert_int_equal(l->status, LOT_STATUS_UNKNOWN);
    assert_true(l->ts_ms == INT64_MIN);
    assert_true(l->count_ts_ms == INT64_MIN);
    assert_int_equal(map_size(l->bays), 0);
    assert_int_equal(map_size(l->gates), 0);
}

static void test_wrong_kind(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_BAYS);
    expect_wrong_kind(l, gate_seq(l, "g", true, 1, 1000));
    expect_wrong_kind(l, count_occ(l, 5, 1000));
    lot_free(l);

    l = make_lot(100, CFG_SOURCE_GATES);
    expect_wrong_kind(l, bay(l, "a", true, 1000));
    lot_free(l);

    l = make_lot(100, CFG_SOURCE_COUNT);
    expect_wrong_kind(l, bay(l, "a", true, 1000));
    expect_wrong_kind(l, gate(l, "g", true, 1, 1000));
    lot_free(l);
}

/* ---- status ---- */

static void expect_status_at(lot *l, int64_t occupied, int64_t *ts, enum lot_status status)
{
    *ts += 1000;
    assert_int_equal(count_occ(l, occupied, *ts).result, LOT_APPLIED);
    assert_int_equal(l->status, status);
}

static void test_status_almost_full_hysteresis(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_COUNT);
    int64_t ts = 0;
    assert_int_equal(l->status, LOT_STATUS_UNKNOWN);
    expect_status_at(l, 0, &ts, LOT_STATUS_OPEN);
    expect_status_at(l, 89, &ts, LOT_STATUS_OPEN);
    expect_status_at(l, 90, &ts, LOT_STATUS_ALMOST_FULL);     /* entered at exactly 0.90 */
    expect_status_at(l, 86, &ts, LOT_STATUS_ALMOST_FULL);
    expect_status_at(l, 85, &ts, LOT_STATUS_ALMOST_FULL);     /* 0.85 is not below 0.85 */
    expect_status_at(l, 84, &ts, LOT_STATUS_OPEN);            /* left below 0.85 */
    expect_status_at(l, 89, &ts, LOT_STATUS_OPEN);            /* not re-entered before 0.90 */
    expect_status_at(l, 95, &ts, LOT_STATUS_ALMOST_FULL);
    expect_status_at(l, 10, &ts, LOT_STATUS_OPEN);
    lot_free(l);

    /* 0.8 - 0.1 is 0.7000000000000001 in binary: 7 of 10 must still count as not below it. */
    cfg_lot cfg = make_cfg(10, CFG_SOURCE_COUNT);
    cfg.almost_full = 0.8;
    cfg.hysteresis = 0.1;
    l = lot_new(&cfg, TAU);
    ts = 0;
    expect_status_at(l, 8, &ts, LOT_STATUS_ALMOST_FULL);
    expect_status_at(l, 7, &ts, LOT_STATUS_ALMOST_FULL);
    expect_status_at(l, 6, &ts, LOT_STATUS_OPEN);
    lot_free(l);
}

/* Capacity 577: full is left at max(1, round(5.77)) = 6 free. */
static void test_status_full_577(void **state)
{
    lot *l = make_lot(577, CFG_SOURCE_COUNT);
    int64_t ts = 0;
    expect_status_at(l, 576, &ts, LOT_STATUS_ALMOST_FULL);
    expect_status_at(l, 577, &ts, LOT_STATUS_FULL);           /* entered at free = 0 */
    for (int64_t free_spaces = 1; free_spaces <= 5; free_spaces++)
        expect_status_at(l, 577 - free_spaces, &ts, LOT_STATUS_FULL);
    expect_status_at(l, 571, &ts, LOT_STATUS_ALMOST_FULL);    /* 6 free: left */
    expect_status_at(l, 576, &ts, LOT_STATUS_ALMOST_FULL);    /* 1 free: not full again */
    expect_status_at(l, 577, &ts, LOT_STATUS_FULL);
    /* Leaving full applies the almost_full rule as if almost full: 0.86 stays almost_full. */
    expect_status_at(l, 497, &ts, LOT_STATUS_ALMOST_FULL);
    expect_status_at(l, 577, &ts, LOT_STATUS_FULL);
    expect_status_at(l, 400, &ts, LOT_STATUS_OPEN);           /* 0.69: straight to open */
    lot_free(l);
}

static void test_status_full_small_lots(void **state)
{
    /* Capacity 10: round(0.1) = 0, so one free space opens it. */
    lot *l = make_lot(10, CFG_SOURCE_COUNT);
    int64_t ts = 0;
    expect_status_at(l, 10, &ts, LOT_STATUS_FULL);
    expect_status_at(l, 9, &ts, LOT_STATUS_ALMOST_FULL);
    lot_free(l);
    /* Capacity 150: round(1.5) = 2. */
    l = make_lot(150, CFG_SOURCE_COUNT);
    ts = 0;
    expect_status_at(l, 150, &ts, LOT_STATUS_FULL);
    expect_status_at(l, 149, &ts, LOT_STATUS_FULL);
    expect_status_at(l, 148, &ts, LOT_STATUS_ALMOST_FULL);
    lot_free(l);
}

static void test_status_from_bays_and_gates(void **state)
{
    lot *l = make_lot(2, CFG_SOURCE_BAYS);
    bay(l, "a", false, 1000);
    assert_int_equal(l->status, LOT_STATUS_OPEN);
    bay(l, "a", true, 2000);
    bay(l, "b", true, 2000);
    assert_int_equal(l->status, LOT_STATUS_FULL);
    lot_free(l);
    l = make_lot(3, CFG_SOURCE_GATES);
    gate(l, "g", true, 3, 1000);
    assert_int_equal(l->status, LOT_STATUS_FULL);
    gate(l, "g", false, 1, 2000);
    assert_int_equal(l->status, LOT_STATUS_OPEN);   /* 0.67 < 0.85 */
    lot_free(l);
}

/* ---- stale ---- */

static void test_stale_transitions(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_COUNT);
    count_occ(l, 10, 1000);
    lot_clear_dirty(l);
    assert_false(lot_update_stale(l, 1000 + HOUR));             /* exactly stale_after: not yet */
    assert_false(l->stale);
    assert_false(l->dirty);
    assert_true(lot_update_stale(l, 1000 + HOUR + 1));
    assert_true(l->stale);
    assert_true(l->dirty);
    lot_clear_dirty(l);
    assert_false(lot_update_stale(l, 1000 + 2 * HOUR));         /* no change */
    assert_false(l->dirty);
    /* A repeated (unchanged) count still proves the lot alive. */
    assert_int_equal(count_occ(l, 10, 1000).result, LOT_UNCHANGED);
    assert_false(l->stale);
    assert_true(l->dirty);
    assert_true(lot_update_stale(l, 1000 + 2 * HOUR));          /* ts did not advance */
    assert_true(l->stale);
    /* New input clears it. */
    count_occ(l, 11, 2 * HOUR);
    assert_false(l->stale);
    assert_false(lot_update_stale(l, 2 * HOUR + 5));
    assert_true(lot_update_stale(l, 3 * HOUR + 1));
    lot_free(l);
}

/* ---- configure ---- */

static void test_configure_capacity_change(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_COUNT);
    count_occ(l, 95, 1000);
    assert_int_equal(l->status, LOT_STATUS_ALMOST_FULL);
    lot_clear_dirty(l);

    cfg_lot cfg = make_cfg(90, CFG_SOURCE_COUNT);
    char name[] = "Broad St";
    cfg.name = name;
    lot_configure(l, &cfg, TAU);
    assert_int_equal(l->capacity, 90);
    assert_int_equal(l->occupied, 90);
    assert_int_equal(l->status, LOT_STATUS_FULL);
    assert_string_equal(l->name, "Broad St");
    assert_true(l->dirty);
    assert_float_equal(l->smooth.value, 0.0, 0);     /* smoothing holds the new free */

    cfg.capacity = 200;
    cfg.almost_full = 0.4;
    cfg.hysteresis = 0.1;
    lot_configure(l, &cfg, TAU);
    assert_int_equal(l->occupied, 90);
    assert_float_equal(l->almost_full, 0.4, 0);
    assert_int_equal(l->status, LOT_STATUS_ALMOST_FULL);   /* 0.45 >= 0.4 */
    assert_float_equal(l->smooth.value, 110.0, 0);
    lot_free(l);

    /* A lot without data stays unknown. */
    l = make_lot(100, CFG_SOURCE_COUNT);
    lot_configure(l, &cfg, TAU);
    assert_int_equal(l->status, LOT_STATUS_UNKNOWN);
    assert_false(l->smooth.started);
    lot_free(l);
}

/* A bays lot re-derives occupied from its bays: more room shows the bays that were clamped. */
static void test_configure_bays_lot(void **state)
{
    lot *l = make_lot(3, CFG_SOURCE_BAYS);
    for (int i = 0; i < 5; i++) {
        char id[8] = "b0";
        id[1] = (char)('0' + i);
        bay(l, id, true, 1000);
    }
    assert_int_equal(l->occupied, 3);
    cfg_lot cfg = make_cfg(10, CFG_SOURCE_BAYS);
    lot_configure(l, &cfg, TAU);
    assert_int_equal(l->occupied, 5);
    assert_int_equal(l->status, LOT_STATUS_OPEN);
    cfg.capacity = 4;
    lot_configure(l, &cfg, TAU);
    assert_int_equal(l->occupied, 4);
    assert_int_equal(l->status, LOT_STATUS_FULL);
    lot_free(l);
}

/* ---- restore ---- */

static void test_restore_then_apply(void **state)
{
    lot *l = make_lot(10, CFG_SOURCE_BAYS);
    sm_state sm = { .started = true, .ts_ms = 1000, .value = 9, .smoothed = 8.5,
                    .trend_per_ms = 1e-6 };
    lot_restore_state(l, 1, 1000, INT64_MIN, LOT_STATUS_OPEN, &sm);
    lot_restore_bay(l, "a", true, 1000);
    lot_restore_bay(l, "b", false, 900);
    assert_true(l->has_data);
    assert_int_equal(l->occupied, 1);
    assert_int_equal(l->bays_occupied, 1);
    assert_int_equal(l->status, LOT_STATUS_OPEN);
    assert_float_equal(l->smooth.smoothed, 8.5, 0);
    assert_false(l->dirty);
    assert_int_equal(l->n_dirty_bays, 0);
    assert_false(find_bay(l, "a")->dirty);

    assert_int_equal(bay(l, "a", true, 2000).result, LOT_UNCHANGED);
    assert_int_equal(bay(l, "a", false, 999).result, LOT_IGNORED_OLD);
    assert_int_equal(bay(l, "b", false, 950).result, LOT_UNCHANGED);
    assert_int_equal(bay(l, "b", true, 2000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 2);
    assert_int_equal(l->n_dirty_bays, 2);     /* a's newer time, b's state */
    assert_ptr_equal(l->dirty_bays[0], find_bay(l, "a"));
    assert_ptr_equal(l->dirty_bays[1], find_bay(l, "b"));
    lot_free(l);
}

static void test_restore_gates_and_count(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_GATES);
    lot_restore_gate(l, "g", 10);
    lot_restore_state(l, 40, 5000, 4000, LOT_STATUS_OPEN, NULL);
    assert_false(l->dirty);
    assert_int_equal(l->n_dirty_gates, 0);
    assert_int_equal(gate_seq(l, "g", true, 10, 6000).result, LOT_IGNORED_DUPLICATE);
    assert_int_equal(gate_seq(l, "g", true, 11, 6000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 41);
    assert_int_equal(count_occ(l, 0, 3999).result, LOT_IGNORED_OLD);
    assert_int_equal(count_occ(l, 45, 4000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 45);
    lot_free(l);
}

/* The capacity may have shrunk while the daemon was down: restored state is re-clamped and the
 * status re-evaluated, from the restored status. */
static void test_restore_reclamps(void **state)
{
    lot *l = make_lot(577, CFG_SOURCE_COUNT);
    lot_restore_state(l, 700, 5000, 5000, LOT_STATUS_ALMOST_FULL, NULL);
    assert_int_equal(l->occupied, 577);
    assert_int_equal(l->status, LOT_STATUS_FULL);
    assert_false(l->dirty);
    lot_free(l);
    /* A stored unknown is a lot without data. */
    l = make_lot(577, CFG_SOURCE_COUNT);
    lot_restore_state(l, 0, INT64_MIN, INT64_MIN, LOT_STATUS_UNKNOWN, NULL);
    assert_false(l->has_data);
    assert_int_equal(l->status, LOT_STATUS_UNKNOWN);
    assert_false(lot_update_stale(l, 10LL * HOUR));
    lot_free(l);
}

/* ---- dirty lists ---- */

static void test_dirty_lists(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_BAYS);
    bay(l, "a", true, 1000);
    bay(l, "b", true, 1000);
    bay(l, "c", false, 1000);
    bay(l, "a", false, 2000);                    /* already dirty: listed once */
    assert_int_equal(l->n_dirty_bays, 3);
    assert_ptr_equal(l->dirty_bays[0], find_bay(l, "a"));
    assert_ptr_equal(l->dirty_bays[1], find_bay(l, "b"));
    assert_ptr_equal(l->dirty_bays[2], find_bay(l, "c"));
    assert_true(l->dirty);
    lot_clear_dirty(l);
    assert_int_equal(l->n_dirty_bays, 0);
    assert_false(l->dirty);
    assert_false(find_bay(l, "a")->dirty);
    assert_false(find_bay(l, "b")->dirty);
    bay(l, "b", false, 3000);
    assert_int_equal(l->n_dirty_bays, 1);
    assert_ptr_equal(l->dirty_bays[0], find_bay(l, "b"));
    /* Many bays: the list grows. */
    for (int i = 0; i < 50; i++) {
        char id[16];
        id[0] = 'x';
        id[1] = (char)('A' + i / 10);
        id[2] = (char)('0' + i % 10);
        id[3] = '\0';
        bay(l, id, i % 2, 4000);
    }
    assert_int_equal(l->n_dirty_bays, 51);
    lot_free(l);

    l = make_lot(100, CFG_SOURCE_GATES);
    gate_seq(l, "g", true, 1, 1000);
    gate_seq(l, "g", true, 2, 1000);
    gate_seq(l, "h", true, 1, 1000);
    assert_int_equal(l->n_dirty_gates, 2);
    assert_ptr_equal(l->dirty_gates[0], find_gate(l, "g"));
    lot_clear_dirty(l);
    assert_int_equal(l->n_dirty_gates, 0);
    assert_false(find_gate(l, "g")->dirty);
    gate_seq(l, "h", true, 2, 1000);
    assert_int_equal(l->n_dirty_gates, 1);
    assert_ptr_equal(l->dirty_gates[0], find_gate(l, "h"));
    lot_free(l);
}

/* ---- smoothing feed ---- */

static void test_smoothing_fed_with_free(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_COUNT);
    count_occ(l, 20, 0);
    assert_true(l->smooth.started);
    assert_float_equal(l->smooth.smoothed, 80.0, 0);
    count_occ(l, 40, TAU);
    assert_float_equal(l->smooth.value, 60.0, 0);
    assert_int_equal(l->smooth.ts_ms, TAU);
    count_occ(l, 40, 2 * TAU);
    assert_float_equal(l->smooth.smoothed, 60.0 + 20.0 * 0.36787944117144233, 1e-9);
    assert_true(sm_trend_per_hour(&l->smooth) < 0);
    lot_free(l);
}

/* ---- unknown bays (bay_stale_after) ---- */

static lot *make_unknown_lot(int64_t capacity, int64_t bay_stale_after_ms)
{
    cfg_lot cfg = make_cfg(capacity, CFG_SOURCE_BAYS);
    cfg.stale_after_ms = 100 * HOUR;     /* keep lot staleness out of the way */
    cfg.bay_stale_after_ms = bay_stale_after_ms;
    return lot_new(&cfg, TAU);
}

static void assert_counts(const lot *l, int64_t occupied, int64_t unknown, int64_t free_spaces)
{
    assert_int_equal(l->occupied, occupied);
    assert_int_equal(l->unknown, unknown);
    assert_int_equal(lot_free_spaces(l), free_spaces);
}

static void test_unknown_bays_expire_on_the_clock(void **state)
{
    lot *l = make_unknown_lot(10, HOUR);
    assert_true(lot_tracks_unknown(l));
    bay(l, "a", true, 0);
    bay(l, "b", false, 0);
    bay(l, "c", true, HOUR / 2);
    assert_counts(l, 2, 0, 8);
    lot_clear_dirty(l);
    /* exactly bay_stale_after old is still known, as with stale_after */
    assert_false(lot_update_stale(l, HOUR));
    assert_false(l->dirty);
    assert_true(lot_update_stale(l, HOUR + 1));
    assert_true(l->dirty);
    assert_true(find_bay(l, "a")->unknown);
    assert_true(find_bay(l, "b")->unknown);
    assert_false(find_bay(l, "c")->unknown);
    assert_counts(l, 1, 2, 7);
    assert_false(lot_update_stale(l, HOUR + 2));
    assert_true(lot_update_stale(l, HOUR + HOUR / 2 + 1));
    assert_counts(l, 0, 3, 7);
    /* the last state stays, for :bays */
    assert_true(find_bay(l, "a")->occupied);
    lot_free(l);
}

static void test_unknown_bay_comes_back(void **state)
{
    lot *l = make_unknown_lot(10, HOUR);
    bay(l, "a", true, 0);
    bay(l, "b", false, 0);
    assert_true(lot_update_stale(l, 2 * HOUR));
    assert_counts(l, 0, 2, 8);
    lot_clear_dirty(l);
    /* a heartbeat repeating the state is a change of the counts */
    assert_int_equal(bay(l, "a", true, 2 * HOUR).result, LOT_APPLIED);
    assert_true(l->dirty);
    assert_false(find_bay(l, "a")->unknown);
    assert_counts(l, 1, 1, 8);
    /* a new state too */
    assert_int_equal(bay(l, "b", true, 2 * HOUR).result, LOT_APPLIED);
    assert_counts(l, 2, 0, 8);
    /* and an older event than the last one stays ignored, also for an unknown bay */
    assert_true(lot_update_stale(l, 4 * HOUR));
    assert_int_equal(bay(l, "a", false, HOUR).result, LOT_IGNORED_OLD);
    assert_counts(l, 0, 2, 8);
    /* a repeat from a known bay is still only a repeat */
    assert_int_equal(bay(l, "a", true, 4 * HOUR).result, LOT_APPLIED);
    assert_int_equal(bay(l, "a", true, 4 * HOUR + 1).result, LOT_UNCHANGED);
    /* it moved the bay's time: it expires an hour after the repeat, not after the first */
    assert_false(lot_update_stale(l, 5 * HOUR + 1));     /* b expired before; a not yet */
    assert_false(find_bay(l, "a")->unknown);
    assert_true(lot_update_stale(l, 5 * HOUR + 2));
    assert_true(find_bay(l, "a")->unknown);
    lot_free(l);
}

static void test_unknown_off_by_default(void **state)
{
    lot *l = make_lot(10, CFG_SOURCE_BAYS);
    assert_false(lot_tracks_unknown(l));
    bay(l, "a", true, 0);
    lot_update_stale(l, 1000 * HOUR);
    assert_counts(l, 1, 0, 9);
    lot_free(l);
}

static void test_unknown_status_uses_free(void **state)
{
    lot *l = make_unknown_lot(10, HOUR);
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "b%d", i);
        bay(l, id, false, i < 9 ? 0 : HOUR);
    }
    assert_int_equal(l->status, LOT_STATUS_OPEN);
    lot_update_stale(l, HOUR + 1);     /* 9 unknown, one free */
    assert_counts(l, 0, 9, 1);
    assert_int_equal(l->status, LOT_STATUS_ALMOST_FULL);
    lot_update_stale(l, 2 * HOUR + 1);
    assert_counts(l, 0, 10, 0);
    assert_int_equal(l->status, LOT_STATUS_FULL);
    lot_free(l);
}

static void test_unknown_reload(void **state)
{
    lot *l = make_unknown_lot(10, HOUR);
    bay(l, "a", true, 0);
    bay(l, "b", true, 2 * HOUR);
    lot_update_stale(l, 2 * HOUR);
    assert_counts(l, 1, 1, 8);
    cfg_lot cfg = make_cfg(10, CFG_SOURCE_BAYS);
    cfg.stale_after_ms = 100 * HOUR;
    lot_configure(l, &cfg, TAU);        /* off: every bay counts again */
    assert_false(lot_tracks_unknown(l));
    assert_counts(l, 2, 0, 8);
    assert_false(lot_update_stale(l, 10 * HOUR));
    cfg.bay_stale_after_ms = 3 * HOUR;  /* on again, longer: applies at the next sweep */
    lot_configure(l, &cfg, TAU);
    assert_true(lot_update_stale(l, 4 * HOUR));
    assert_counts(l, 1, 1, 8);
    cfg.bay_stale_after_ms = 30 * HOUR; /* longer than a's silence: a is known again */
    lot_configure(l, &cfg, TAU);
    assert_false(lot_update_stale(l, 4 * HOUR));
    assert_counts(l, 2, 0, 8);
    lot_free(l);
}

static void test_unknown_after_restore(void **state)
{
    lot *l = make_unknown_lot(10, HOUR);
    lot_restore_bay(l, "a", true, 0);
    lot_restore_bay(l, "b", false, 0);
    lot_restore_bay(l, "c", true, 2 * HOUR);
    lot_restore_state(l, 2, 2 * HOUR, INT64_MIN, LOT_STATUS_OPEN, NULL);
    assert_true(lot_update_stale(l, 2 * HOUR));
    assert_counts(l, 1, 2, 7);
    lot_free(l);
}

/* Bays seen in any order expire exactly as a scan of all of them would say. */
static void test_unknown_heap_matches_scan(void **state)
{
    enum { N = 200 };
    lot *l = make_unknown_lot(N, HOUR);
    int64_t ts[N];
    uint32_t seed = 12345;
    char id[16];
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        ts[i] = (int64_t)(seed >> 8) % (5 * HOUR);
        snprintf(id, sizeof id, "b%d", i);
        bay(l, id, i % 3 == 0, ts[i]);
    }
    for (int i = 0; i < N; i += 7) {   /* some move forward later */
        ts[i] += HOUR;
        snprintf(id, sizeof id, "b%d", i);
        bay(l, id, i % 3 == 0, ts[i]);
    }
    for (int64_t clock = 0; clock <= 7 * HOUR; clock += HOUR / 10) {
        lot_update_stale(l, clock);
        int64_t unknown = 0, occupied = 0;
        for (int i = 0; i < N; i++) {
            bool gone = clock - ts[i] > HOUR;
            unknown += gone;
            occupied += !gone && i % 3 == 0;
        }
        assert_counts(l, occupied, unknown, N - occupied - unknown);
    }
    lot_free(l);
}

/* ---- closures ---- */

static void test_closure_overrides_status(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_COUNT);
    count_occ(l, 10, 1000);
    lot_clear_dirty(l);
    assert_true(lot_set_closure(l, true, "works", false, 0, 1000));
    assert_true(l->dirty);
    assert_int_equal(l->status, LOT_STATUS_CLOSED);
    assert_string_equal(l->closed_reason, "works");
    /* Counts keep being applied underneath, the shown status stays closed. */
    assert_int_equal(count_occ(l, 100, 2000).result, LOT_APPLIED);
    assert_int_equal(l->occupied, 100);
    assert_int_equal(l->status, LOT_STATUS_CLOSED);
    assert_int_equal(l->open_status, LOT_STATUS_FULL);
    /* Reopening recomputes from the counts: full, with full's hysteresis memory kept. */
    assert_true(lot_set_closure(l, false, NULL, false, 0, 3000));
    assert_int_equal(l->status, LOT_STATUS_FULL);
    assert_string_equal(l->closed_reason, "");
    assert_int_equal(count_occ(l, 99, 4000).result, LOT_APPLIED);
    assert_int_equal(l->status, LOT_STATUS_ALMOST_FULL);    /* left full, as without a closure */
    lot_free(l);
}

static void test_closure_idempotent(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_COUNT);
    count_occ(l, 10, 1000);
    assert_true(lot_set_closure(l, true, "r", true, 9000, 1000));
    lot_clear_dirty(l);
    /* The retained message redelivered after a restart: no change. */
    assert_false(lot_set_closure(l, true, "r", true, 9000, 1500));
    assert_false(l->dirty);
    /* Another reason or until is a change. */
    assert_true(lot_set_closure(l, true, "other", true, 9000, 1500));
    assert_true(lot_set_closure(l, true, "other", false, 0, 1500));
    assert_false(l->has_closed_until);
    assert_true(lot_set_closure(l, false, NULL, false, 0, 1500));
    lot_clear_dirty(l);
    assert_false(lot_set_closure(l, false, "ignored", true, 5, 1500));
    assert_false(l->dirty);
    lot_free(l);
}

static void test_closure_until(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_COUNT);
    count_occ(l, 10, 1000);
    /* An until already past at arrival means open. */
    assert_false(lot_set_closure(l, true, "late", true, 1000, 1000));
    assert_int_equal(l->status, LOT_STATUS_OPEN);
    assert_true(lot_set_closure(l, true, "soon", true, 5000, 1000));
    assert_true(l->has_closed_until);
    lot_clear_dirty(l);
    assert_false(lot_update_stale(l, 4999));
    assert_int_equal(l->status, LOT_STATUS_CLOSED);
    /* The event clock reaching until reopens the lot by itself. */
    assert_true(lot_update_stale(l, 5000));
    assert_true(l->dirty);
    assert_false(l->closed);
    assert_int_equal(l->status, LOT_STATUS_OPEN);
    lot_free(l);
}

static void test_closure_restore(void **state)
{
    lot *l = make_lot(100, CFG_SOURCE_COUNT);
    lot_restore_state(l, 95, 1000, 1000, LOT_STATUS_CLOSED, NULL);
    lot_restore_closure(l, "stored", true, 7000);
    assert_false(l->dirty);
    assert_int_equal(l->status, LOT_STATUS_CLOSED);
    assert_int_equal(l->open_status, LOT_STATUS_ALMOST_FULL);
    assert_true(l->closed_until_ms == 7000);
    assert_false(lot_set_closure(l, true, "stored", true, 7000, 1000));
    assert_true(lot_update_stale(l, 7000));
    assert_int_equal(l->status, LOT_STATUS_ALMOST_FULL);
    lot_free(l);
}


/* ---- zones and categories (SPEC §10) ---- */

#define T0 INT64_C(1475567982000)

static char *zl1[] = {"L1-*"}, *zl2[] = {"L2-*"}, *za[] = {"A*"}, *zx1[] = {"*1"};
static char *zl2_exact[] = {"L1-05"}, *zdis[] = {"L1-01", "L2-01"}, *zev[] = {"L2-0[1-3]"};
static char zid1[] = "L1", zid2[] = "L2", zid3[] = "A", zid4[] = "X", zname1[] = "Level 1";

static cfg_lot zoned_cfg(cfg_zone *zones, size_t n)
{
    cfg_lot cfg = make_cfg(20, CFG_SOURCE_BAYS);
    cfg.zones = zones;
    cfg.n_zones = n;
    return cfg;
}

static void two_levels(cfg_zone *z)
{
    z[0] = (cfg_zone){ zid1, zname1, 10, { NULL, 0, zl1, 1 } };
    z[1] = (cfg_zone){ zid2, zid2, 10, { NULL, 0, zl2, 1 } };
}

static int64_t zone_sum_occupied(const lot *l)
{
    int64_t n = 0;
    for (int z = 0; z < l->groups->n_zones; z++)
        n += lot_group_occupied(&l->zones[z]);
    return n;
}

/* Each bay counts in its zone and its categories; an exact listing beats a pattern. */
static void test_zone_counts(void **state)
{
    cfg_zone z[2];
    two_levels(z);
    cfg_lot cfg = zoned_cfg(z, 2);
    cfg.categories[CFG_CAT_DISABLED] = (cfg_category_def){ true, 2, { zdis, 2, NULL, 0 } };
    cfg.categories[CFG_CAT_EV_CHARGING] = (cfg_category_def){ true, 3, { NULL, 0, zev, 1 } };
    lot *l = lot_new(&cfg, TAU);
    bay(l, "L1-01", true, T0);
    bay(l, "L1-02", true, T0);
    bay(l, "L2-01", true, T0);
    bay(l, "L2-02", false, T0);
    bay(l, "other", true, T0);     /* in no zone: counts for the lot only */
    assert_int_equal(l->occupied, 4);
    assert_int_equal(lot_group_occupied(&l->zones[0]), 2);
    assert_int_equal(lot_group_occupied(&l->zones[1]), 1);
    assert_int_equal(lot_group_free(&l->zones[1]), 9);
    assert_int_equal(lot_group_occupied(&l->cats[CFG_CAT_DISABLED]), 2);
    assert_int_equal(lot_group_free(&l->cats[CFG_CAT_DISABLED]), 0);
    assert_int_equal(lot_group_occupied(&l->cats[CFG_CAT_EV_CHARGING]), 1);
    bay(l, "L2-02", true, T0 + 1);
    bay(l, "L1-01", false, T0 + 1);
    bay(l, "L1-01", false, T0 + 2);                 /* a repeat changes nothing */
    assert_int_equal(bay(l, "L2-01", false, T0 - 1).result, LOT_IGNORED_OLD);
    assert_int_equal(lot_group_occupied(&l->zones[0]), 1);
    assert_int_equal(lot_group_occupied(&l->zones[1]), 2);
    assert_int_equal(lot_group_occupied(&l->cats[CFG_CAT_DISABLED]), 1);
    assert_int_equal(lot_group_occupied(&l->cats[CFG_CAT_EV_CHARGING]), 2);
    assert_int_equal(zone_sum_occupied(l) + 1, l->occupied);   /* + "other" */
    lot_free(l);
}

/* bay_stale_after: an unknown bay leaves its zone's occupied and counts as its unknown. */
static void test_zone_unknown(void **state)
{
    cfg_zone z[2];
    two_levels(z);
    cfg_lot cfg = zoned_cfg(z, 2);
    cfg.bay_stale_after_ms = HOUR;
    cfg.categories[CFG_CAT_DISABLED] = (cfg_category_def){ true, 2, { zdis, 2, NULL, 0 } };
    lot *l = lot_new(&cfg, TAU);
    bay(l, "L1-01", true, T0);
    bay(l, "L1-02", false, T0 + HOUR / 2);
    assert_true(lot_update_stale(l, T0 + HOUR + 1));
    assert_int_equal(l->unknown, 1);
    assert_int_equal(l->zones[0].unknown, 1);
    assert_int_equal(lot_group_occupied(&l->zones[0]), 0);
    assert_int_equal(lot_group_free(&l->zones[0]), 9);
    assert_int_equal(l->cats[CFG_CAT_DISABLED].unknown, 1);
    assert_int_equal(lot_group_free(&l->cats[CFG_CAT_DISABLED]), 1);
    bay(l, "L1-01", true, T0 + HOUR + 2);           /* a heartbeat brings it back */
    assert_int_equal(l->zones[0].unknown, 0);
    assert_int_equal(lot_group_occupied(&l->zones[0]), 1);
    assert_int_equal(l->cats[CFG_CAT_DISABLED].unknown, 0);
    lot_free(l);
}

/* Two zones' patterns match "A1": refused once as first_ambiguous, then refused quietly, and
 * never counted; "A2" is fine. */
static void test_zone_ambiguous(void **state)
{
    cfg_zone z[2] = { { zid3, zid3, 10, { NULL, 0, za, 1 } }, { zid4, zid4, 10, { NULL, 0, zx1, 1 } } };
    cfg_lot cfg = zoned_cfg(z, 2);
    lot *l = lot_new(&cfg, TAU);
    lot_outcome o = bay(l, "A1", true, T0);
    assert_int_equal(o.result, LOT_REJECTED);
    assert_int_equal(o.reject, PL_AMBIGUOUS_ZONE);
    assert_true(o.first_ambiguous);
    o = bay(l, "A1", true, T0 + 1);
    assert_int_equal(o.reject, PL_AMBIGUOUS_ZONE);
    assert_false(o.first_ambiguous);
    assert_int_equal(map_size(l->bays), 0);
    assert_int_equal(bay(l, "A2", true, T0).result, LOT_APPLIED);
    assert_int_equal(bay(l, "B1", true, T0).result, LOT_APPLIED);
    assert_int_equal(lot_group_occupied(&l->zones[0]), 1);
    assert_int_equal(lot_group_occupied(&l->zones[1]), 1);
    assert_int_equal(l->occupied, 2);
    lot_free(l);
}

/* A reload that lists L1-05 exactly in L2 moves it: counts recomputed, the lot's unchanged. */
static void test_zone_reload_moves_bay(void **state)
{
    cfg_zone z[2];
    two_levels(z);
    cfg_lot cfg = zoned_cfg(z, 2);
    lot *l = lot_new(&cfg, TAU);
    bay(l, "L1-05", true, T0);
    bay(l, "L1-06", true, T0);
    bay(l, "L2-01", true, T0);
    uint64_t rev = l->outputs_rev;
    lot_configure(l, &cfg, TAU);                    /* the same zones: nothing to redo */
    assert_false(l->groups_changed);
    z[1].members = (cfg_members){ zl2_exact, 1, zl2, 1 };
    lot_configure(l, &cfg, TAU);
    assert_true(l->groups_changed);
    assert_true(l->outputs_rev != rev);
    assert_int_equal(lot_group_occupied(&l->zones[0]), 1);
    assert_int_equal(lot_group_occupied(&l->zones[1]), 2);
    assert_int_equal(l->occupied, 3);
    bay(l, "L1-05", false, T0 + 1);                 /* and it stays moved */
    assert_int_equal(lot_group_occupied(&l->zones[1]), 1);
    assert_int_equal(lot_group_occupied(&l->zones[0]), 1);
    lot_free(l);
}

/* A gates lot's zones move with their gates, clamped to their capacity; a count recalibrates the
 * lot only; a reload keeps each zone's cars by zone id. */
static void test_zone_gates(void **state)
{
    static char *gn[] = {"gn"}, *gs[] = {"gs"};
    cfg_zone z[2] = { { zid1, zid1, 12, { gn, 1, NULL, 0 } }, { zid2, zid2, 8, { gs, 1, NULL, 0 } } };
    cfg_lot cfg = make_cfg(20, CFG_SOURCE_GATES);
    cfg.zones = z;
    cfg.n_zones = 2;
    lot *l = lot_new(&cfg, TAU);
    gate(l, "gn", true, 5, T0);
    gate(l, "gs", true, 10, T0);                    /* more than S holds: clamped at 8 */
    gate(l, "gs", false, 1, T0);
    assert_int_equal(lot_group_occupied(&l->zones[0]), 5);
    assert_int_equal(lot_group_occupied(&l->zones[1]), 7);
    assert_int_equal(l->occupied, 14);
    count_full(l, false, 3, false, 0, T0 + 1);
    assert_int_equal(l->occupied, 3);
    assert_int_equal(lot_group_occupied(&l->zones[0]), 5);
    z[1].capacity = 6;
    lot_configure(l, &cfg, TAU);
    assert_int_equal(lot_group_occupied(&l->zones[0]), 5);
    assert_int_equal(lot_group_occupied(&l->zones[1]), 6);
    lot_restore_zone(l, "L2", 2);
    assert_int_equal(lot_group_occupied(&l->zones[1]), 2);
    lot_free(l);
}

/* A zone has the lot's status rules on its own numbers, and is closed with the lot. */
static void test_zone_status(void **state)
{
    cfg_zone z[2];
    two_levels(z);
    cfg_lot cfg = zoned_cfg(z, 2);
    lot *l = lot_new(&cfg, TAU);
    assert_int_equal(l->zones[0].status, LOT_STATUS_UNKNOWN);
    char id[16];
    for (int i = 0; i < 9; i++) {
        snprintf(id, sizeof id, "L1-%02d", i);
        bay(l, id, true, T0);
    }
    assert_int_equal(l->zones[0].status, LOT_STATUS_ALMOST_FULL);
    assert_int_equal(l->zones[1].status, LOT_STATUS_OPEN);
    bay(l, "L1-09", true, T0);
    assert_int_equal(l->zones[0].status, LOT_STATUS_FULL);
    bay(l, "L1-09", false, T0 + 1);
    assert_int_equal(l->zones[0].status, LOT_STATUS_ALMOST_FULL);   /* 1 free leaves full */
    uint64_t rev = l->outputs_rev;
    assert_true(lot_set_closure(l, true, "event", false, 0, T0 + 2));
    assert_int_equal(l->zones[0].status, LOT_STATUS_CLOSED);
    assert_int_equal(l->zones[1].status, LOT_STATUS_CLOSED);
    assert_true(l->outputs_rev != rev);
    assert_true(lot_set_closure(l, false, NULL, false, 0, T0 + 3));
    assert_int_equal(l->zones[1].status, LOT_STATUS_OPEN);
    lot_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_lot_is_unknown),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_bays_count_occupied),
        cmocka_unit_test(test_bay_ids_inline),
        cmocka_unit_test(test_bay_repeat_unchanged),
        cmocka_unit_test(test_bay_older_ignored),
        cmocka_unit_test(test_bay_equal_ts_different_state),
        cmocka_unit_test(test_bays_clamped_to_capacity),
        cmocka_unit_test(test_too_many_bays),
        cmocka_unit_test(test_zone_counts),
        cmocka_unit_test(test_zone_unknown),
        cmocka_unit_test(test_zone_ambiguous),
        cmocka_unit_test(test_zone_reload_moves_bay),
        cmocka_unit_test(test_zone_gates),
        cmocka_unit_test(test_zone_status),
        cmocka_unit_test(test_gates_in_out),
        cmocka_unit_test(test_gate_seq_duplicates_and_jumps),
        cmocka_unit_test(test_gate_seq_max),
        cmocka_unit_test(test_gate_without_seq_always_applied),
        cmocka_unit_test(test_gate_clamps),
        cmocka_unit_test(test_too_many_gates),
        cmocka_unit_test(test_count_occupied_and_free),
        cmocka_unit_test(test_count_clamps),
        cmocka_unit_test(test_count_capacity_mismatch),
        cmocka_unit_test(test_count_ordering),
        cmocka_unit_test(test_gates_recalibration),
        cmocka_unit_test(test_gates_count_redelivered),
        cmocka_unit_test(test_wrong_kind),
        cmocka_unit_test(test_status_almost_full_hysteresis),
        cmocka_unit_test(test_status_full_577),
        cmocka_unit_test(test_status_full_small_lots),
        cmocka_unit_test(test_status_from_bays_and_gates),
        cmocka_unit_test(test_stale_transitions),
        cmocka_unit_test(test_configure_capacity_change),
        cmocka_unit_test(test_configure_bays_lot),
        cmocka_unit_test(test_restore_then_apply),
        cmocka_unit_test(test_restore_gates_and_count),
        cmocka_unit_test(test_restore_reclamps),
        cmocka_unit_test(test_dirty_lists),
        cmocka_unit_test(test_smoothing_fed_with_free),
        cmocka_unit_test(test_unknown_bays_expire_on_the_clock),
        cmocka_unit_test(test_unknown_bay_comes_back),
        cmocka_unit_test(test_unknown_off_by_default),
        cmocka_unit_test(test_unknown_status_uses_free),
        cmocka_unit_test(test_unknown_reload),
        cmocka_unit_test(test_unknown_after_restore),
        cmocka_unit_test(test_unknown_heap_matches_scan),
        cmocka_unit_test(test_closure_overrides_status),
        cmocka_unit_test(test_closure_idempotent),
        cmocka_unit_test(test_closure_until),
        cmocka_unit_test(test_closure_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
