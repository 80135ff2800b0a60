/* Unit tests for history: entry ids strictly increase whatever the order of events (Redis
 * rejects an XADD id at or below the stream's last, which would fail a whole batch), one entry
 * per interval plus status changes, and the state across a restart. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "history.h"

#define MINUTE 60000LL

/* (ms, seq) strictly after (last_ms, last_seq) */
static bool id_after(int64_t ms, uint64_t seq, int64_t last_ms, uint64_t last_seq)
{
    return ms > last_ms || (ms == last_ms && seq > last_seq);
}

static void test_first_entry_and_interval(void **state)
{
    hist_state h;
    hist_init(&h);
    int64_t ms;
    uint64_t seq;
    assert_true(hist_next_id(&h, 1000, LOT_STATUS_OPEN, MINUTE, &ms, &seq));
    assert_int_equal(ms, 1000);
    assert_int_equal(seq, 0);
    assert_false(hist_next_id(&h, 1000 + 59999, LOT_STATUS_OPEN, MINUTE, &ms, &seq));
    assert_true(hist_next_id(&h, 1000 + MINUTE, LOT_STATUS_OPEN, MINUTE, &ms, &seq));
    assert_int_equal(ms, 1000 + MINUTE);
    /* a status change inside the interval is an entry of its own */
    assert_true(hist_next_id(&h, 1000 + MINUTE + 5, LOT_STATUS_ALMOST_FULL, MINUTE, &ms, &seq));
    assert_int_equal(ms, 1000 + MINUTE + 5);
    /* interval 0: every newer event */
    assert_true(hist_next_id(&h, 1000 + MINUTE + 6, LOT_STATUS_ALMOST_FULL, 0, &ms, &seq));
    assert_false(hist_next_id(&h, 1000 + MINUTE + 6, LOT_STATUS_ALMOST_FULL, 0, &ms, &seq));
}

/* A status change at the same (or an older) event time takes the next sequence number. */
static void test_same_time_status_change(void **state)
{
    hist_state h;
    hist_init(&h);
    int64_t ms;
    uint64_t seq;
    assert_true(hist_next_id(&h, 5000, LOT_STATUS_OPEN, MINUTE, &ms, &seq));
    assert_true(hist_next_id(&h, 5000, LOT_STATUS_FULL, MINUTE, &ms, &seq));
    assert_int_equal(ms, 5000);
    assert_int_equal(seq, 1);
    assert_true(hist_next_id(&h, 4000, LOT_STATUS_ALMOST_FULL, MINUTE, &ms, &seq));
    assert_int_equal(ms, 5000);
    assert_int_equal(seq, 2);
    assert_false(hist_next_id(&h, 4000, LOT_STATUS_ALMOST_FULL, MINUTE, &ms, &seq));
    assert_false(hist_next_id(&h, -5, LOT_STATUS_OPEN, MINUTE, &ms, &seq));
}

/* Random event times (late bays, repeats, jumps) and statuses: every id strictly increases. */
/* ts 0 (the epoch) is a valid event time, but 0-0 is not a stream id: the entry is 0-1. */
static void test_epoch_entry(void **state)
{
    hist_state h;
    hist_init(&h);
    int64_t ms;
    uint64_t seq;
    assert_true(hist_next_id(&h, 0, LOT_STATUS_OPEN, MINUTE, &ms, &seq));
    assert_int_equal(ms, 0);
    assert_int_equal(seq, 1);
    assert_true(hist_next_id(&h, 0, LOT_STATUS_FULL, MINUTE, &ms, &seq));
    assert_int_equal(ms, 0);
    assert_int_equal(seq, 2);
    assert_true(hist_next_id(&h, MINUTE, LOT_STATUS_FULL, MINUTE, &ms, &seq));
    assert_int_equal(seq, 0);
}

static void test_ids_strictly_increase(void **state)
{
    hist_state h;
    hist_init(&h);
    unsigned seed = 12345;
    int64_t t = 1475568000000LL, last_ms = -1;
    uint64_t last_seq = 0;
    int entries = 0, last_status = -1;
    for (int i = 0; i < 100000; i++) {
        seed = seed * 1103515245u + 12345u;
        int r = (seed >> 16) % 10;
        int64_t ts = r < 6 ? t + (seed >> 8) % 90000 : r < 8 ? t : t - (seed >> 8) % 90000;
        if (ts > t)
            t = ts;
        int status = 1 + (seed >> 4) % 3;
        int64_t ms;
        uint64_t seq;
        if (hist_next_id(&h, ts, status, MINUTE, &ms, &seq)) {
            assert_true(id_after(ms, seq, last_ms, last_seq));
            last_ms = ms;
            last_seq = seq;
            last_status = status;
            entries++;
        } else {
            /* skipped only when nothing is due: same status, or no newer time for a change */
            assert_true(status == last_status || ts <= last_ms || ts - last_ms < MINUTE);
        }
    }
    assert_true(entries > 1000);
}

/* Restart: the stored state continues exactly; without one, ids start above the lot's time. */
static void test_restore(void **state)
{
    hist_state h, back;
    hist_init(&h);
    hist_init(&back);
    int64_t ms;
    uint64_t seq;
    assert_true(hist_next_id(&h, 9000, LOT_STATUS_OPEN, MINUTE, &ms, &seq));
    assert_true(hist_next_id(&h, 9000, LOT_STATUS_FULL, MINUTE, &ms, &seq));
    char buf[80];
    hist_encode(&h, buf, sizeof buf);
    assert_true(hist_decode(&back, buf));
    assert_int_equal(back.last_ms, h.last_ms);
    assert_int_equal(back.last_seq, h.last_seq);
    assert_int_equal(back.last_status, h.last_status);
    assert_false(back.seq_unknown);
    assert_true(hist_next_id(&back, 9000, LOT_STATUS_OPEN, MINUTE, &ms, &seq));
    assert_int_equal(seq, 2);
    assert_false(hist_decode(&back, "1 2"));
    assert_false(hist_decode(&back, "1 2 9"));
    assert_false(hist_decode(&back, "1 2 3 x"));

    /* state lost: the lot's restored time bounds every id written so far */
    hist_state lost;
    hist_init(&lost);
    hist_bound(&lost, 9000);
    assert_false(hist_next_id(&lost, 9000, LOT_STATUS_FULL, MINUTE, &ms, &seq));
    assert_false(hist_next_id(&lost, 8000, LOT_STATUS_OPEN, MINUTE, &ms, &seq));
    assert_true(hist_next_id(&lost, 9001, LOT_STATUS_FULL, MINUTE, &ms, &seq));
    assert_int_equal(ms, 9001);
    assert_int_equal(seq, 0);
}

/* hist_take makes the entry of a lot with data, with its fields, and skips one without. */
static void test_take(void **state)
{
    char id[] = "L1", name[] = "L1";
    cfg_lot lc = { .id = id, .name = name, .capacity = 10, .source = CFG_SOURCE_COUNT,
                   .stale_after_ms = 3600000, .almost_full = 0.9, .hysteresis = 0.05 };
    lot *l = lot_new(&lc, 300000);
    hist_state h;
    hist_init(&h);
    hist_entry e;
    assert_false(hist_take(&h, l, MINUTE, &e));
    lot_restore_state(l, 3, 123456, 123456, LOT_STATUS_OPEN, NULL);
    assert_true(hist_take(&h, l, MINUTE, &e));
    assert_int_equal(e.ms, 123456);
    assert_int_equal(e.seq, 0);
    assert_int_equal(e.occupied, 3);
    assert_int_equal(e.free, 7);
    assert_int_equal(h.last_ms, 123456);
    assert_false(hist_take(&h, l, MINUTE, &e));
    lot_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_entry_and_interval),
        cmocka_unit_test(test_same_time_status_change),
        cmocka_unit_test(test_epoch_entry),
        cmocka_unit_test(test_ids_strictly_increase),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
