/* ha: SPEC §11's lease. Several parkd share one configuration; the one holding <prefix>leader
 * (<instance>:<epoch>) is active, the others are standby (Redis only). Every third of ha.lease
 * (a quarter, so that two renewals can fail before the end) the active renews it and each
 * standby tries to take it; each instance refreshes <prefix>instance:<id>. An active that has
 * not renewed within three quarters of the lease, or that finds another holder, has lost it.
 * Loop thread only; it talks to Redis through the store (store_lease). */
#ifndef PARKD_HA_H
#define PARKD_HA_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "store.h"

typedef struct ha ha;

typedef struct ha_callbacks {
    /* This instance took the lease at EPOCH (it was standby). */
    void (*on_won)(void *ctx, uint64_t epoch);
    /* This instance held the lease and has lost it (WHY for the log). */
    void (*on_lost)(void *ctx, const char *why);
    /* The first try at the lease found another holder: a ready standby. */
    void (*on_standby)(void *ctx);
} ha_callbacks;

/* For CFG's ha section (enabled) over ST; CB outlives it. CFG is read here only (its ha keys
 * apply at start), so a reload may free it. Never NULL. */
ha *ha_new(uv_loop_t *loop, const cfg_config *cfg, store *st, const ha_callbacks *cb, void *ctx);

/* Starts trying (again, after ha_stop); a first try at once. Returns 0 or a negative errno. */
int ha_start(ha *h);
void ha_close(ha *h, void (*done)(void *ctx), void *ctx);
void ha_free(ha *h);

bool ha_is_active(const ha *h);
const char *ha_role(const ha *h);           /* "active", "standby" */
const char *ha_instance(const ha *h);
uint64_t ha_epoch(const ha *h);             /* 0 while standby */
const char *ha_leader(const ha *h);         /* the holder last seen ("" when none) */

#endif
