/* profile: what one lot usually looks like at each time of the week, in local time, learned
 * online; plus the samples of its recent days, for "same time last week" and "days that looked
 * like today" (analog days). Pure state and arithmetic, no I/O; the process time zone (TZ, set
 * once by the forecast engine) decides what local time is.
 *
 * Values are occupancy fractions in [0, 1]. The signal is sampled on a 15-minute grid of UTC
 * instants; every real UTC offset is a whole number of quarter hours, so grid instants are local
 * quarter hours too, and one lot contributes one sample per grid slot per week whatever its
 * event rate. Slots are addressed by local wall time, so daylight-saving changes move nothing:
 * 09:00 on Monday is the same slot in winter and summer; the repeated autumn hour is sampled
 * twice and the skipped spring hour not at all. */
#ifndef PARKD_PROFILE_H
#define PARKD_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_GRID_MS 900000                          /* 15 minutes */
#define PF_DAY_SLOTS 96
#define PF_WEEK_SLOTS (7 * PF_DAY_SLOTS)
#define PF_RING_DAYS 8                             /* recent days kept (analog days, last week) */
#define PF_CHUNK 8                                 /* slots per stored field */
#define PF_CHUNKS (PF_DAY_SLOTS / PF_CHUNK)        /* stored fields per day */
#define PF_NO_DAY INT32_MIN

/* The profile's means are kept in 16 bits, in 65534ths: finer than one space for any car park
 * under 65534 spaces. (8 bits would lose an update smaller than half a step, 1/508, which at a
 * weight of 20 is any sample within 4 % of the mean: the mean would stick.) */
#define PF_Q_SCALE 65534
/* The recent days' samples are kept in 8 bits, in 254ths (PF_R_NONE: no sample): they only
 * feed the last-week and analog-day features, whose regression coefficients absorb a step of
 * 0.4 % (measured: no change in forecast MAE beyond noise; README, "Bounds"). */
#define PF_R_SCALE 254
#define PF_R_NONE UINT8_MAX
/* A slot's weight is not stored: after n samples forgotten by KEEP each it is
 * (1 - KEEP^n) / (1 - KEEP), so the number of samples (saturating at PF_N_MAX, where KEEP^n is
 * below 1e-5 for both profiles) is all it takes, in one byte. */
#define PF_N_MAX UINT8_MAX

/* A local time: day number (days since 1970-01-01 in the local calendar), weekday (Monday 0),
 * and position within the day in grid slots (0 <= slot < 96, minute / 15 with the fraction). */
typedef struct pf_local {
    int32_t day;
    int weekday;
    double slot;
} pf_local;

/* 3.1 KB with 8 recent days (9 KB before, with 28 days of 16-bit samples): owned by the
 * forecaster's per-lot state (forecast.c). */
_Static_assert(PF_CHUNKS <= 16 && PF_RING_DAYS <= 32, "pf_profile's dirty bit masks");
_Static_assert(PF_RING_DAYS > 7, "pf_days_ago(7) reads the day a week back");

typedef struct pf_profile {
    /* exponentially weighted mean per slot of the week, and of the day (all days alike: the
     * fallback while the week is still being learned), and how many samples each has learned */
    uint16_t week_mean[PF_WEEK_SLOTS];
    uint16_t day_mean[PF_DAY_SLOTS];
    uint8_t week_n[PF_WEEK_SLOTS];
    uint8_t day_n[PF_DAY_SLOTS];
    /* the samples of the last PF_RING_DAYS local days: row day % PF_RING_DAYS */
    uint8_t recent[PF_RING_DAYS][PF_DAY_SLOTS];
    int32_t recent_day[PF_RING_DAYS];              /* the day a row holds, or PF_NO_DAY */
    /* chunks changed since the last pf_flush, a bit each: bit c % 8 of byte c / 8 of
     * dirty_week; bit c of dirty_day and of dirty_recent[row]; bit row of dirty_recent_day */
    uint8_t dirty_week[(PF_WEEK_SLOTS / PF_CHUNK + 7) / 8];
    uint16_t dirty_day;
    uint16_t dirty_recent[PF_RING_DAYS];
    uint32_t dirty_recent_day;
} pf_profile;

/* Local time of T_MS in the process time zone. */
pf_local pf_local_time(int64_t t_ms);

/* An empty profile: nothing learned, no recent days. */
void pf_init(pf_profile *p);

/* Learns occupancy X (clamped to [0, 1]) at T_MS, a grid instant (rounded to the nearest
 * local slot otherwise). */
void pf_sample(pf_profile *p, int64_t t_ms, double x);

/* The usual occupancy at T_MS, interpolated between the two nearest slots (from the nearest
 * learned slot within an hour when a neighbour is unknown). False when nothing near is learned. */
bool pf_expected(const pf_profile *p, int64_t t_ms, double *out);

/* The sample of the same local time DAYS_AGO local days before T_MS (interpolated between the
 * grid samples around it). False when missing. */
bool pf_days_ago(const pf_profile *p, int64_t t_ms, int days_ago, double *out);

/* Analog days: of the recent days, the PF_ANALOGS whose samples over the hour before NOW_MS
 * (and whose value at NOW_MS, against X now) are closest to today's; returns X plus their
 * weighted mean change from NOW_MS to TARGET_MS (same local times on those days). False when
 * fewer than three days have the samples. */
#define PF_ANALOGS 5
bool pf_analog(const pf_profile *p, int64_t now_ms, double x, int64_t target_ms, double *out);

/* Storage: EMIT(CTX, FIELD, VALUE) once per chunk changed since the last flush (NUL-terminated
 * strings valid during the call), then the chunks count as clean. Fields: "w<chunk>" and
 * "d<chunk>" (8 "mean weight" pairs, as earlier versions wrote them), "y<row>" (its day
 * number) and "y<row>.<chunk>" (8 samples, "-" for none). Earlier versions kept 28 recent days
 * as "r<row>" and "r<row>.<chunk>": rows of another ring size, which pf_restore_field does not
 * read (see pf_is_old_field). */
void pf_flush(pf_profile *p, void (*emit)(void *ctx, const char *field, const char *value),
              void *ctx);
/* Marks every chunk that differs from pf_init's as changed: the next flush writes what it takes
 * to rebuild the profile from an empty :model (the caller clears the hash first). */
void pf_mark_all_dirty(pf_profile *p);
/* Restores one field written by pf_flush. Returns false (and changes nothing) for a field that
 * is not the profile's or does not parse. */
bool pf_restore_field(pf_profile *p, const char *field, const char *value);
/* Whether FIELD is one that earlier versions wrote and this one no longer reads (the 28-day
 * ring): its model should be rewritten without it. */
bool pf_is_old_field(const char *field);

#endif
