/* pattern: the benchmark's load, shared by the load generator and the programs that check and
 * time its effect. Header-only (static inline), so each bench program is one .c file.
 *
 * Event i of N goes to lot i % L; it is that lot's k-th event (k = i / L), and sets bay k % B to
 * occupied in even rounds (k / B) and free in odd ones. So every event changes its bay, the
 * lots are fed round-robin (as many independent sensors would), and a lot's occupied follows a
 * triangle wave 1, 2 .. B, B-1 .. 0, 1 ..: the occupied an output shows names the event that
 * caused it, within half a period (B events of that lot). After the N events, one more event,
 * the sentinel, sets bay "end" of lot "END": MQTT keeps the order of one publisher's messages
 * on one subscription and parkd writes its batches in order, so once the sentinel is in Redis
 * every earlier event is too (or was dropped, which the full check then shows). */
#ifndef BENCH_PATTERN_H
#define BENCH_PATTERN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define BP_END_LOT "END"
#define BP_END_BAY "end"
#define BP_ID_MAX 32

typedef struct bp_event {
    uint32_t lot;
    uint32_t bay;
    uint64_t k;         /* the lot's own event number */
    bool occupied;
} bp_event;

static inline bp_event bp_event_at(uint64_t i, uint32_t lots, uint32_t bays)
{
    bp_event e;
    e.lot = (uint32_t)(i % lots);
    e.k = i / lots;
    e.bay = (uint32_t)(e.k % bays);
    e.occupied = (e.k / bays) % 2 == 0;
    return e;
}

/* The lot's occupied once its k-th event (0-based) is applied. */
static inline uint32_t bp_occupied_after(uint64_t k, uint32_t bays)
{
    uint32_t b = (uint32_t)(k % bays);
    return (k / bays) % 2 == 0 ? b + 1 : bays - 1 - b;
}

/* How many of the N events go to LOT. */
static inline uint64_t bp_lot_events(uint64_t n, uint32_t lots, uint32_t lot)
{
    return n / lots + (lot < n % lots ? 1 : 0);
}

/* The final state of a bay after N events: -1 never set, else 0 / 1. */
static inline int bp_bay_final(uint64_t n, uint32_t lots, uint32_t bays, uint32_t lot,
                               uint32_t bay)
{
    uint64_t k_n = bp_lot_events(n, lots, lot);
    if (k_n <= bay)
        return -1;
    uint64_t last_k = bay + (k_n - 1 - bay) / bays * bays;
    return (last_k / bays) % 2 == 0;
}

/* The final occupied of a lot after N events (0 when it had none). */
static inline uint32_t bp_lot_final(uint64_t n, uint32_t lots, uint32_t bays, uint32_t lot)
{
    uint64_t k_n = bp_lot_events(n, lots, lot);
    return k_n ? bp_occupied_after(k_n - 1, bays) : 0;
}

static inline int bp_lot_id(char *buf, size_t size, uint32_t lot)
{
    return snprintf(buf, size, "L%04u", lot);
}

static inline int bp_bay_id(char *buf, size_t size, uint32_t bay)
{
    return snprintf(buf, size, "b%03u", bay);
}

/* "L0042" -> 42; -1 for anything else (the sentinel lot, a stranger). */
static inline long bp_parse_lot(const char *s, size_t len)
{
    if (len < 2 || s[0] != 'L')
        return -1;
    long v = 0;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > 100000000)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static inline uint64_t bp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
