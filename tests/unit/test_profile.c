/* Unit tests for profile: local-time slots across the Europe/London daylight-saving changes of
 * 2016 (27 March, 30 October), learning and reading the week profile, the fallbacks, same time
 * last week, analog days, and storage round trips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "profile.h"

/* The profile's means are kept in 16-bit steps, the recent days' samples in 8-bit ones: what
 * comes back is within a step of what went in. */
#define STEP (1.0 / PF_Q_SCALE)
#define RSTEP (1.0 / PF_R_SCALE)

#define MIN 60000LL
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

/* UTC instants. 2016-03-21 is a Monday. */
#define MON_0321_0000Z 1458518400000LL
#define SUN_0327_0000Z (MON_0321_0000Z + 6 * DAY)     /* clocks go forward at 01:00 UTC */
#define SUN_1030_0000Z 1477785600000LL                 /* clocks go back at 01:00 UTC */

/* Local time Y-MO-D H:MI in the test zone (Europe/London) as ms since the epoch. */
static int64_t at(int y, int mo, int d, int h, int mi)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                     .tm_min = mi, .tm_isdst = -1 };
    return (int64_t)mktime(&tm) * 1000;
}

static pf_profile *new_profile(void)
{
    pf_profile *p = malloc(sizeof *p);
    pf_init(p);
    return p;
}

static int setup_london(void **state)
{
    setenv("TZ", "Europe/London", 1);
    tzset();
    return 0;
}

static void assert_local(int64_t t, int weekday, double slot)
{
    pf_local lt = pf_local_time(t);
    assert_int_equal(lt.weekday, weekday);
    assert_float_equal(lt.slot, slot, 1e-9);
}

/* Spring forward: 00:45 UTC is 00:45 GMT, 01:00 UTC is already 02:00 BST; the local hour 01:xx
 * does not exist that day. */
static void test_slots_spring_forward(void **state)
{
    assert_local(SUN_0327_0000Z + 45 * MIN, 6, 3.0);
    assert_local(SUN_0327_0000Z + 60 * MIN, 6, 8.0);
    assert_local(SUN_0327_0000Z + 75 * MIN, 6, 9.0);
    /* Monday 09:00 local is the same slot in winter (09:00 UTC) and summer (08:00 UTC) */
    assert_local(MON_0321_0000Z + 9 * HOUR, 0, 36.0);
    assert_local(MON_0321_0000Z + 7 * DAY + 8 * HOUR, 0, 36.0);
    /* and the day numbers run on: one local day per calendar day */
    assert_int_equal(pf_local_time(MON_0321_0000Z + 7 * DAY + 8 * HOUR).day -
                     pf_local_time(MON_0321_0000Z + 9 * HOUR).day, 7);
}

/* Fall back: 00:30 UTC is 01:30 BST and 01:30 UTC is 01:30 GMT: the same local slot, twice. */
static void test_slots_fall_back(void **state)
{
    int64_t a = SUN_1030_0000Z + 30 * MIN, b = SUN_1030_0000Z + 90 * MIN;
    assert_local(a, 6, 6.0);
    assert_local(b, 6, 6.0);
    assert_int_equal(pf_local_time(a).day, pf_local_time(b).day);
    /* the evening is in GMT: 18:00 UTC is 18:00 local */
    assert_local(SUN_1030_0000Z + 18 * HOUR, 6, 72.0);
    /* the day before, 18:00 UTC was 19:00 BST */
    assert_local(SUN_1030_0000Z - DAY + 18 * HOUR, 5, 76.0);
}

/* What was learned at Monday 09:00 local in winter is expected at Monday 09:00 local in summer,
 * one UTC hour earlier; and same-time-last-week follows local time across the change. */
static void test_profile_across_spring_forward(void **state)
{
    pf_profile *p = new_profile();
    int64_t winter = MON_0321_0000Z + 9 * HOUR;             /* 09:00 GMT */
    int64_t summer = MON_0321_0000Z + 7 * DAY + 8 * HOUR;   /* 09:00 BST */
    pf_sample(p, winter, 0.7);
    pf_sample(p, winter + 15 * MIN, 0.8);
    double v;
    assert_true(pf_expected(p, summer, &v));
    assert_float_equal(v, 0.7, STEP);
    assert_true(pf_expected(p, summer + 7 * MIN + 30000, &v));   /* halfway to 09:15 */
    assert_float_equal(v, 0.75, STEP);
    assert_true(pf_days_ago(p, summer, 7, &v));
    assert_float_equal(v, 0.7, RSTEP);
    /* 09:00 UTC that summer Monday is 10:00 local: not learned, and 09:15 is the nearest */
    assert_true(pf_expected(p, summer + HOUR, &v));
    assert_float_equal(v, 0.8, STEP);
    assert_false(pf_days_ago(p, summer + HOUR, 7, &v));
    free(p);
}

/* Both instants of the repeated autumn hour teach the same slot. */
static void test_profile_across_fall_back(void **state)
{
    pf_profile *p = new_profile();
    pf_sample(p, SUN_1030_0000Z + 30 * MIN, 0.2);    /* 01:30 BST */
    pf_sample(p, SUN_1030_0000Z + 90 * MIN, 0.4);    /* 01:30 GMT */
    int w = 6 * PF_DAY_SLOTS + 6;
    assert_int_equal(p->week_n[w], 2);             /* weight 1 + exp(-1/6) */
    /* the second sample weighs 1 / (1 + exp(-1/6)) = 0.54 */
    assert_float_equal(p->week_mean[w] / (double)PF_Q_SCALE, 0.2 + 0.2 / (1.0 + exp(-1.0 / 6.0)),
                       STEP);
    assert_int_equal(p->week_n[w + 1], 0);
    /* the next Sunday 01:30 (GMT, 01:30 UTC) reads that slot */
    double v;
    assert_true(pf_expected(p, SUN_1030_0000Z + 7 * DAY + 90 * MIN, &v));
    assert_true(v > 0.2 && v < 0.4);
    free(p);
}

/* The week profile is an exponentially weighted mean: recent weeks count more. */
static void test_week_mean_forgets(void **state)
{
    pf_profile *p = new_profile();
    for (int week = 0; week < 30; week++)
        pf_sample(p, at(2016, 1, 4 + 7 * week, 12, 0), week < 20 ? 0.2 : 0.6);
    /* ten weeks of 0.6 after twenty of 0.2: weights exp(-k/6) leave ~19 % on the old level */
    double v;
    assert_true(pf_expected(p, at(2016, 1, 4, 12, 0), &v));
    assert_true(v > 0.5 && v < 0.56);
    free(p);
}

/* A slot the week has not seen yet is filled from the same time on other days. */
static void test_day_profile_fills_in(void **state)
{
    pf_profile *p = new_profile();
    int64_t mon = at(2016, 4, 4, 10, 0);
    pf_sample(p, mon, 0.5);
    double v;
    assert_true(pf_expected(p, mon + DAY, &v));     /* Tuesday 10:00: only Monday is known */
    assert_float_equal(v, 0.5, STEP);
    pf_sample(p, mon + DAY, 0.9);                   /* now Tuesday has its own */
    assert_true(pf_expected(p, mon + DAY, &v));
    assert_true(v > 0.7 && v <= 0.9);
    /* nothing learned within an hour of 03:00 */
    assert_false(pf_expected(p, at(2016, 4, 4, 3, 0), &v));
    free(p);
}

/* The morning's first reading at 07:57, before the first learned slot (08:00): the nearest
 * learned slot within an hour stands in. */
static void test_expected_reaches_nearest(void **state)
{
    pf_profile *p = new_profile();
    int64_t eight = at(2016, 4, 4, 8, 0);
    pf_sample(p, eight, 0.3);
    pf_sample(p, eight + 15 * MIN, 0.4);
    double v;
    assert_true(pf_expected(p, eight + 7 * DAY - 3 * MIN, &v));
    assert_float_equal(v, 0.3, STEP);
    assert_true(pf_expected(p, eight + 7 * DAY - 59 * MIN, &v));
    assert_false(pf_expected(p, eight + 7 * DAY - 80 * MIN, &v));
    free(p);
}

/* Analog days: the recent day that looked most like today decides the expected change. */
static void test_analog_follows_similar_days(void **state)
{
    pf_profile *p = new_profile();
    /* ten "busy" days rising 0.05 per slot from 0.2 at 08:00, ten "quiet" ones flat at 0.6 */
    for (int d = 1; d <= 20; d++) {
        for (int k = 0; k < 12; k++) {
            double v = d % 2 ? 0.2 + 0.05 * k : 0.6;
            pf_sample(p, at(2016, 4, 30 - d, 8, 0) + k * 15 * MIN, v);
        }
    }
    /* today so far looks busy */
    for (int k = 0; k <= 4; k++)
        pf_sample(p, at(2016, 4, 30, 8, 0) + k * 15 * MIN, 0.2 + 0.05 * k);
    double v;
    int64_t now = at(2016, 4, 30, 9, 0);   /* x = 0.4 */
    assert_true(pf_analog(p, now, 0.4, now + HOUR, &v));
    assert_float_equal(v, 0.6, 2 * RSTEP);  /* busy days rose 0.2 in the next hour (8-bit) */
    /* without enough days having the target time, no analog */
    assert_false(pf_analog(p, now, 0.4, now + 6 * HOUR, &v));
    free(p);
}

/* A ring row is reused after PF_RING_DAYS days: the old day's samples are gone. */
static void test_ring_row_reuse(void **state)
{
    pf_profile *p = new_profile();
    int64_t t = at(2016, 1, 4, 12, 0);
    pf_sample(p, t, 0.5);
    double v;
    assert_true(pf_days_ago(p, t + 7 * DAY, 7, &v));
    pf_sample(p, t + PF_RING_DAYS * DAY + HOUR, 0.1);
    assert_false(pf_days_ago(p, t + 7 * DAY, 7, &v));
    /* and a late sample for an older day does not wipe the newer one */
    pf_sample(p, t + 15 * MIN, 0.9);
    assert_true(pf_days_ago(p, t + PF_RING_DAYS * DAY + HOUR, 0, &v));
    assert_float_equal(v, 0.1, RSTEP);
    free(p);
}

/* ---- storage ---- */

typedef struct fields {
    char name[4096][24];
    char value[4096][400];
    int n;
} fields;

static void collect(void *ctx, const char *field, const char *value)
{
    fields *f = ctx;
    assert_true(f->n < 4096);
    assert_true(strlen(field) < sizeof f->name[0] && strlen(value) < sizeof f->value[0]);
    strcpy(f->name[f->n], field);
    strcpy(f->value[f->n], value);
    f->n++;
}

static void test_flush_restore_round_trip(void **state)
{
    pf_profile *p = new_profile(), *q = new_profile();
    fields *f = calloc(1, sizeof *f);
    for (int64_t t = MON_0321_0000Z; t < MON_0321_0000Z + 9 * DAY; t += 15 * MIN)
        pf_sample(p, t, 0.5 + 0.4 * sin((double)t / HOUR));
    pf_flush(p, collect, f);
    assert_true(f->n > 100);
    for (int i = 0; i < f->n; i++) {
        assert_true(pf_restore_field(q, f->name[i], f->value[i]));
        assert_false(pf_is_old_field(f->name[i]));
    }
    /* the text keeps 5 digits of the 16-bit means: each comes back within a step or two; the
     * sample counts (written as weights) and the 8-bit samples come back exactly */
    for (int k = 0; k < PF_WEEK_SLOTS; k++) {
        assert_float_equal(q->week_mean[k], p->week_mean[k], 1e-4 * PF_Q_SCALE);
        assert_int_equal(q->week_n[k], p->week_n[k]);
    }
    for (int k = 0; k < PF_DAY_SLOTS; k++) {
        assert_float_equal(q->day_mean[k], p->day_mean[k], 1e-4 * PF_Q_SCALE);
        assert_int_equal(q->day_n[k], p->day_n[k]);
    }
    assert_memory_equal(q->recent_day, p->recent_day, sizeof p->recent_day);
    assert_memory_equal(q->recent, p->recent, sizeof p->recent);
    /* clean after a flush; one sample dirties three chunks (week, day, recent) */
    f->n = 0;
    pf_flush(p, collect, f);
    assert_int_equal(f->n, 0);
    pf_sample(p, MON_0321_0000Z + 9 * DAY + 30 * MIN, 0.5);
    pf_flush(p, collect, f);
    assert_int_equal(f->n, 3);
    free(f);
    free(p);
    free(q);
}

static void test_restore_rejects_garbage(void **state)
{
    pf_profile *p = new_profile();
    assert_false(pf_restore_field(p, "w84", "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"));   /* range */
    assert_false(pf_restore_field(p, "w1", "0.5 1"));                               /* short */
    assert_false(pf_restore_field(p, "w1x", "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"));
    assert_false(pf_restore_field(p, "d0", "nan 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0"));
    assert_false(pf_restore_field(p, "y3.2", "0.1 0.2"));
    char row[16];
    snprintf(row, sizeof row, "y%d", PF_RING_DAYS);
    assert_false(pf_restore_field(p, row, "17000"));
    assert_false(pf_restore_field(p, "y3", "17000"));   /* day 17000 is not row 3's */
    assert_true(pf_restore_field(p, "y0", "17000"));
    assert_false(pf_restore_field(p, "x", "1"));
    assert_true(pf_restore_field(p, "y3.2", "0.1 - - 0.4 - - - 2"));
    assert_float_equal(p->recent[3][16] / (double)PF_R_SCALE, 0.1, RSTEP / 2);
    assert_int_equal(p->recent[3][17], PF_R_NONE);
    assert_int_equal(p->recent[3][23], PF_R_SCALE);   /* clamped to [0, 1] */
    free(p);
}

/* A model of the previous version: its week and day pairs ("mean weight", the weight in 2048ths
 * then) restore as the sample counts nearest their weights; its 28-day ring is not read, and is
 * told apart as old so that the caller rewrites the model without it. */
static void test_restore_earlier_version(void **state)
{
    pf_profile *p = new_profile();
    assert_true(pf_restore_field(p, "w0", "0.5 1 0.25 1.847 0.3 6.493 0.1 6.52 "
                                          "0 0 0.2 0.0005 0.9 2.5 0.4 31.99"));
    assert_int_equal(p->week_n[0], 1);
    assert_int_equal(p->week_n[1], 2);
    assert_true(p->week_n[2] > 30 && p->week_n[3] == PF_N_MAX);
    assert_int_equal(p->week_n[4], 0);
    assert_int_equal(p->week_n[5], 0);               /* far below one sample */
    assert_int_equal(p->week_n[6], 3);               /* 2.5: between 2.56 (3) and 1.85 (2) */
    assert_int_equal(p->week_n[7], PF_N_MAX);        /* beyond the limit */
    assert_float_equal(p->week_mean[1] / (double)PF_Q_SCALE, 0.25, STEP);
    assert_true(pf_restore_field(p, "d11", "0.5 1 0.5 1.951 0.5 20 0.5 20.5 "
                                           "0.5 5 0.5 10 0.5 15 0.5 3"));
    assert_int_equal(p->day_n[88], 1);
    assert_int_equal(p->day_n[89], 2);
    assert_true(p->day_n[90] > 50);
    /* the old ring: not read, and recognised */
    assert_false(pf_restore_field(p, "r3", "17000"));
    assert_false(pf_restore_field(p, "r27.11", "0.1 - - 0.4 - - - 1"));
    assert_true(pf_is_old_field("r3"));
    assert_true(pf_is_old_field("r27.11"));
    assert_false(pf_is_old_field("w3"));
    assert_false(pf_is_old_field("y3.1"));
    for (int r = 0; r < PF_RING_DAYS; r++)
        assert_int_equal(p->recent_day[r], PF_NO_DAY);
    free(p);
}

/* The weights behind the counts are those of the recurrence w' = keep w + 1 that earlier
 * versions ran: a month of one sample a week gives the same expected value either way. */
static void test_counts_follow_weights(void **state)
{
    pf_profile *p = new_profile();
    double m = 0.0, w = 0.0, keep = exp(-1.0 / 6.0);
    for (int week = 0; week < 40; week++) {
        double x = 0.1 + 0.02 * (week % 7);
        pf_sample(p, at(2016, 1, 4 + 7 * week, 12, 0), x);
        w = keep * w + 1.0;
        m += (x - m) / w;
    }
    double v;
    assert_true(pf_expected(p, at(2016, 1, 4, 12, 0), &v));
    /* the all-days profile (the same samples) weighs in too, at the same mean */
    assert_float_equal(v, m, 1e-3);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots_spring_forward),
        cmocka_unit_test(test_slots_fall_back),
        cmocka_unit_test(test_profile_across_spring_forward),
        cmocka_unit_test(test_profile_across_fall_back),
        cmocka_unit_test(test_week_mean_forgets),
        cmocka_unit_test(test_counts_follow_weights),
        cmocka_unit_test(test_day_profile_fills_in),
        cmocka_unit_test(test_expected_reaches_nearest),
        cmocka_unit_test(test_analog_follows_similar_days),
        cmocka_unit_test(test_ring_row_reuse),
        cmocka_unit_test(test_flush_restore_round_trip),
        cmocka_unit_test(test_restore_rejects_garbage),
        cmocka_unit_test(test_restore_earlier_version),
    };
    return cmocka_run_group_tests(tests, setup_london, NULL);
}
