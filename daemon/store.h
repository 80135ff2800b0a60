/* store: parkd's Redis side. The connection (hiredis async on the libuv loop through
 * redis_uv.h, AUTH/SELECT, reconnect with backoff, a reply timeout), every key parkd uses
 * (SPEC §5 and the restore keys documented in the README, all built by one key builder), the
 * commands that write them, and the restore of every lot's state on start.
 *
 * Writes are batches: store_batch_begin opens a MULTI, the store_batch_* calls append commands,
 * store_batch_commit sends EXEC. Only the pipeline module calls them; nothing here opens a
 * batch as a side effect. Failure model: a committed batch is kept (its commands as sent)
 * until Redis confirms it. A batch Redis refuses on a live connection (maxmemory's OOM, a
 * read-only replica, any command error but a history entry's) is sent again as it was, with
 * every batch after it, after a backoff (0.1 s doubling to 5 s, reset only by a confirmed
 * batch); meanwhile store_is_writable is false, no new batch opens, and the cause is logged
 * once, then at most every 30 s. A lost connection or a reply slower than redis.timeout fails
 * nothing at once: it reconnects with backoff (0.25 s doubling to 10 s, reset only by a
 * confirmed batch) and reads <prefix>written, the mark each batch sets in its transaction.
 * When Redis holds this run's mark of the last confirmed batch or of one in flight, it lost
 * nothing: the batches it executed count as confirmed, the rest go again, and on_connected
 * says intact. Otherwise (Redis restarted without its data, another server) the kept batches
 * fail and the caller rewrites its full state. */
#ifndef PARKD_STORE_H
#define PARKD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "forecast.h"
#include "history.h"
#include "lot.h"

typedef struct store store;

typedef struct store_callbacks {
    /* Connected, authenticated and on the right db (after every reconnect too). INTACT:
     * Redis holds everything confirmed so far, and the batches in flight when the connection
     * went were confirmed or are sent again; else they have failed (done with ok = false)
     * and Redis may have lost anything: the caller writes its full state again. */
    void (*on_connected)(void *ctx, bool intact);
    /* The connection was lost or timed out; a reconnect is scheduled. The batches in flight
     * wait for on_connected's verdict (or fail first: done with ok = false). */
    void (*on_disconnected)(void *ctx);
    /* SPEC §11: a fenced batch found another epoch; nothing more is written (may be NULL). */
    void (*on_fenced)(void *ctx);
} store_callbacks;

/* Counters of the parkd:daemon hash: NAMES[i] = VALUES[i], N of them. */
typedef struct store_counters {
    const char *const *names;
    const uint64_t *values;
    size_t n;
} store_counters;

/* A store for CFG's redis section (CFG and CB must outlive it). Never NULL. */
store *store_new(uv_loop_t *loop, const cfg_config *cfg, const store_callbacks *cb, void *ctx);

/* Swaps in a reloaded configuration (a changed connection setting needs store_reconnect). */
void store_set_config(store *s, const cfg_config *cfg);

/* Drops the connection and connects again with the current configuration (reload). */
void store_reconnect(store *s);

/* Starts connecting (retried with backoff). Returns 0 or a negative errno (timers). */
int store_start(store *s);
bool store_is_connected(const store *s);
/* Connected and taking writes: a batch may open (false while a refused batch waits). */
bool store_is_writable(const store *s);
/* Redis refused the oldest kept batch and it waits to be sent again. */
bool store_is_refusing(const store *s);
/* EXECs Redis refused since the start. */
uint64_t store_refusals(const store *s);
uint64_t store_reconnects(const store *s);
/* Times a reply took longer than redis.timeout (each one dropped the connection). */
uint64_t store_timeouts(const store *s);

/* ---- high availability (SPEC §11) ---- */

/* One try at <prefix>leader for INSTANCE: renewed (PEXPIRE LEASE_MS) when it holds it at EPOCH,
 * taken with a new epoch (INCR <prefix>epoch) when EPOCH is 0 and nobody holds it. DONE gets
 * the epoch held (0: not held, HOLDER says by whom; UINT64_MAX: no answer). One Lua script, so
 * the check and the change are one step. Returns 0 or -ENOTCONN (DONE not called). */
int store_lease(store *s, const char *instance, uint64_t epoch, int64_t lease_ms,
                void (*done)(void *ctx, uint64_t epoch, const char *holder), void *ctx);

/* From now on every batch is fenced by EPOCH: it goes out only after WATCH and GET of
 * <prefix>epoch showed EPOCH (one batch on the wire at a time), and EXEC runs it only if the
 * epoch did not move meanwhile. Another epoch: on_fenced, and nothing is written any more.
 * 0 turns fencing off. Call with no batch open or kept. */
void store_set_fence(store *s, uint64_t epoch);
bool store_is_fenced(const store *s);

/* Deletes <prefix>leader if INSTANCE holds it at EPOCH (a clean stop hands over at once). */
int store_lease_release(store *s, const char *instance, uint64_t epoch);

/* Writes <prefix>instance:<INSTANCE> (role, pid, epoch, updated_ms), expiring after TTL_MS. */
int store_instance(store *s, const char *instance, const char *role, uint64_t epoch,
                   int64_t ttl_ms);

/* ---- restore ---- */

/* Called once per lot with its stored :model hash (N pairs, valid during the call only),
 * after the lot's own state was restored into it. */
typedef void (*store_model_fn)(void *ctx, lot *l, size_t n, const char *const *fields,
                               const char *const *values);

/* Loads every lot's state (lot hash state, bays with their event times, gate seqs, smoothing)
 * into LOTS[0..N) with the lot_restore_* calls and hands each lot's :model hash to MODEL, then
 * calls DONE(CTX, 0), or DONE(CTX, -EIO) if the connection failed meanwhile (call again once
 * reconnected: restoring twice gives the same state). The lots must stay alive until DONE.
 * Returns 0, or -ENOTCONN (DONE is then not called). */
int store_restore(store *s, lot *const *lots, size_t n, store_model_fn model,
                  void (*done)(void *ctx, int status), void *ctx);

/* ---- batches ---- */

/* Opens this turn's batch (MULTI). Returns 0, or -ENOTCONN (not writable). One batch at a
 * time is open. */
int store_batch_begin(store *s);
bool store_batch_is_open(const store *s);

/* What store_batch_lot writes beyond the lot's state and its dirty bays and gates. */
#define STORE_LOT_STATIC 1u         /* name, capacity, source, lat, lon (start, reload) */
#define STORE_LOT_ALL_SENSORS 2u    /* every bay and gate, dirty or not (Redis reconnect) */
#define STORE_LOT_STATE_RARE 4u     /* the restore state's rarely changing fields (has_data,
                                     * the last count, status, the closure): without it only
                                     * the fields an event changes (occupied, times, smoothing) */

/* The lot's SPEC §5 hash (one HSET), its restore state, and its dirty bays and gates, plus
 * WHAT (STORE_LOT_* flags). WALL_MS is written as updated_ms. */
void store_batch_lot(store *s, const lot *l, unsigned what, int64_t wall_ms);
/* Replaces the set of configured lot ids. */
void store_batch_lot_ids(store *s, lot *const *lots, size_t n);
/* One entry of the lot's history stream, trimmed near history.max_len. */
void store_batch_history(store *s, const char *lot_id, const hist_entry *e);
/* DEL of the lot's :model hash, before a whole model is written again (fc_model_take_reset). */
void store_batch_model_clear(store *s, const char *lot_id);
/* HSET of N changed fields of the lot's :model hash (nothing when N is 0). */
void store_batch_model(store *s, const char *lot_id, size_t n, const char *const *fields,
                       const char *const *values);
/* The lot's :forecast hash, replaced whole (DEL + HSET) so that horizons dropped by a reload
 * disappear and a reader never mixes two forecasts. */
void store_batch_forecast(store *s, const char *lot_id, const fc_forecast *f);
/* PUBLISH of an availability JSON on the <prefix>updates channel. */
void store_batch_update(store *s, const char *json, size_t len);
/* The parkd:daemon hash: version, pid, started_ms, the COUNTERS and MORE (NULL: none). */
void store_batch_daemon(store *s, int64_t started_ms, const store_counters *counters,
                        const store_counters *more);
/* SPEC §11: the daemon hash also names the active instance LEADER and its epoch (the fence's,
 * store_set_fence), and each
 * daemon hash write refreshes <prefix>instance:<LEADER> (expiring after INSTANCE_TTL_MS) in the
 * same fenced batch (LEADER NULL: no ha). */
void store_set_leader(store *s, const char *leader, int64_t instance_ttl_ms);

/* Sends EXEC. DONE(CTX, TOKEN, ok) runs once: when Redis has executed the batch (ok; batches
 * are confirmed in the order they were committed), or when the connection was lost or timed
 * out first (not ok). A refusal is not a failure: the batch goes again (see above). Returns
 * 0, or -ENOTCONN (the batch is dropped; DONE is not called). */
int store_batch_commit(store *s, uint64_t token, void (*done)(void *ctx, uint64_t token, bool ok),
                       void *ctx);
/* Committed batches not yet confirmed (sent, or refused and waiting to go again). */
size_t store_batches_in_flight(const store *s);

/* Waits for every reply in flight, for at most TIMEOUT_MS (a refused batch is not sent
 * again), disconnects and closes all handles, then DONE(CTX). Batches not confirmed by then
 * fail (their input is unacknowledged and is redelivered). Free with store_free after. */
void store_close(store *s, uint64_t timeout_ms, void (*done)(void *ctx), void *ctx);
void store_free(store *s);

#endif
