/* store: parkd's Redis side. The connection (hiredis async on the libuv loop, AUTH/SELECT,
 * reconnect with backoff), the key layout (SPEC §5 and the restore keys documented in the
 * README), batched writes sent as one MULTI/EXEC pipeline per loop turn, and the restore of
 * every lot's state on start. */
#ifndef PARKD_STORE_H
#define PARKD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "lot.h"

typedef struct store store;

typedef struct store_callbacks {
    /* Connected, authenticated and on the right db (after every reconnect too). */
    void (*on_connected)(void *ctx);
    /* The connection was lost: every batch in flight has failed (its done callback ran with
     * ok = false before this). A reconnect is scheduled. */
    void (*on_disconnected)(void *ctx);
} store_callbacks;

/* Counters of the parkd:daemon hash: NAMES[i] = VALUES[i], N of them. */
typedef struct store_counters {
    const char *const *names;
    const uint64_t *values;
    size_t n;
} store_counters;

/* A store for CFG's redis section (CFG and CB must outlive it). Never NULL. */
store *store_new(uv_loop_t *loop, const cfg_config *cfg, const store_callbacks *cb, void *ctx);

/* Swaps in a reloaded configuration whose redis section is identical (the caller keeps it so). */
void store_set_config(store *s, const cfg_config *cfg);

/* Drops the connection and connects again with the current configuration (reload). */
void store_reconnect(store *s);

/* Starts connecting (retried with backoff). Returns 0 or a negative errno. */
int store_start(store *s);
bool store_is_connected(const store *s);
uint64_t store_reconnects(const store *s);

/* Loads every lot's state (lot hash state, bays with their event times, gate seqs, smoothing)
 * into LOTS[0..N) with the lot_restore_* calls, then calls DONE(CTX, 0), or DONE(CTX, -EIO) if
 * the connection failed meanwhile (call again once reconnected). Needs a connection. */
int store_restore(store *s, lot *const *lots, size_t n, void (*done)(void *ctx, int status),
                  void *ctx);

/* Batch building. Every call appends to the batch of this loop turn, which must be committed
 * with store_batch_commit before returning to the loop. */

/* What store_batch_lot writes beyond the lot's state and its dirty bays and gates. */
#define STORE_LOT_STATIC 1u         /* name, capacity, source, lat, lon (start, reload) */
#define STORE_LOT_ALL_SENSORS 2u    /* every bay and gate, dirty or not (Redis reconnect) */

/* The lot's SPEC §5 hash (one HSET), its restore state, and its dirty bays and gates, plus
 * WHAT (STORE_LOT_* flags). WALL_MS is written as updated_ms. */
void store_batch_lot(store *s, const lot *l, unsigned what, int64_t wall_ms);
/* Replaces the set of configured lot ids. */
void store_batch_lot_ids(store *s, lot *const *lots, size_t n);
/* PUBLISH of an availability JSON on the <prefix>updates channel. */
void store_batch_update(store *s, const char *json, size_t len);
/* A free-form command (argv form) in the batch, for modules with keys of their own (built
 * with store_prefix). */
void store_batch_command(store *s, int argc, const char **argv, const size_t *lens);
/* The prefix ("parkd:") for modules that build their own keys. */
const char *store_prefix(const store *s);

bool store_batch_open(const store *s);

/* Reads hash KEY (HGETALL) for modules with keys of their own: CB(CTX, 0, N, FIELDS, VALUES)
 * with N field/value pairs (valid during the call only), or CB(CTX, -EIO, 0, NULL, NULL).
 * Must not be called while a batch is open. Returns 0 or -ENOTCONN. */
int store_hgetall(store *s, const char *key,
                  void (*cb)(void *ctx, int status, size_t n, const char *const *fields,
                             const char *const *values),
                  void *ctx);

/* Sends the batch as MULTI ... EXEC. DONE(CTX, TOKEN, ok) runs when Redis has executed it
 * (ok) or it failed (connection lost, or a command error, which is logged). Returns 0, or
 * -ENOTCONN (nothing was sent; DONE is not called). An empty batch returns -ENODATA. */
int store_batch_commit(store *s, uint64_t token, void (*done)(void *ctx, uint64_t token, bool ok),
                       void *ctx);
size_t store_batches_in_flight(const store *s);

/* Writes the parkd:daemon hash (version, pid, started_ms, counters); fire and forget. */
void store_write_daemon(store *s, int64_t started_ms, const store_counters *counters);

/* Waits for every reply in flight, disconnects and closes all handles, then DONE(CTX). */
void store_close(store *s, void (*done)(void *ctx), void *ctx);
void store_free(store *s);

#endif
