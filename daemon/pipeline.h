/* pipeline: the one owner of every per-turn side effect. Each loop turn:
 *   ingest (MQTT message -> parse -> lot rules, pipe_on_message)
 *   -> pure updates (smoothing in lot_apply; forecast observation)
 *   -> one snapshot per changed or due lot (availability, forecast)
 *   -> effects: one Redis batch (lot state, history, model, forecast hash, updates channel,
 *      the daemon hash), then the MQTT publishes
 *   -> commit, and the input's acknowledgements released once Redis confirmed the EXEC.
 * pipe_flush runs the turn; it alone begins and commits batches and marks input stored. It
 * also owns the registry of running lots and the counters. */
#ifndef PARKD_PIPELINE_H
#define PARKD_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "forecast.h"
#include "input.h"
#include "lot.h"
#include "metrics.h"
#include "mqtt.h"
#include "payload.h"
#include "store.h"

enum pipe_counter {
    PIPE_C_MESSAGES_IN,
    PIPE_C_APPLIED,
    PIPE_C_UNCHANGED,
    PIPE_C_IGNORED_OLD,
    PIPE_C_IGNORED_DUPLICATE,
    PIPE_C_REJECTED_FIRST,  /* + enum pl_reject - 1, for PL_BAD_TOPIC .. PL_TOO_MANY_BAYS */
    PIPE_C_ANOMALY_CLAMPED = PIPE_C_REJECTED_FIRST + PL_REJECT_COUNT - 1,
    PIPE_C_ANOMALY_CAPACITY,
    PIPE_C_RECALIBRATIONS,
    PIPE_C_PUBLISHED,
    PIPE_C_REDIS_BATCHES,
    PIPE_C_REDIS_TIMEOUTS,
    PIPE_C_REDIS_REFUSALS,
    PIPE_C_INPUT_FIRST,     /* + enum pl_kind: messages with a valid topic, per kind */
    PIPE_C_COUNT = PIPE_C_INPUT_FIRST + PL_KIND_COUNT + 1
};

/* The counter names of the parkd:daemon hash and /metrics, PIPE_C_COUNT of them. */
extern const char *const pipe_counter_names[PIPE_C_COUNT];

typedef struct pipeline pipeline;

/* A pipeline writing through ST and learning with FC (both outlive it), configured by CFG
 * (pipe_set_config swaps it). Starts with no lots and no MQTT client. Never NULL. */
pipeline *pipe_new(uv_loop_t *loop, const cfg_config *cfg, store *st, fc_engine *fc,
                   int64_t started_ms);
void pipe_set_config(pipeline *p, const cfg_config *cfg);

/* The MQTT client whose input is ingested and acknowledged, and that outputs go to (NULL:
 * none yet, or being replaced). Input read by an earlier client is never acknowledged on a
 * later one. */
void pipe_set_mqtt(pipeline *p, mq_client *mq);

/* Input INPUT's own connection (SPEC §9; an input without one rides on the main connection):
 * its messages are acknowledged under the same barrier, on their own. NULL: none now. */
void pipe_set_input_mqtt(pipeline *p, size_t input, mq_client *mq);

/* The network-server inputs (not owned; they must outlive their use, NULL: none). The main
 * connection's messages on a topic of an input without its own connection go to it. */
void pipe_set_inputs(pipeline *p, inp_set *inputs);

/* ---- the registry ---- */

/* Starts running L (restored already; the pipeline owns it from now on): input for its id is
 * applied, and its first publish and full write are due at once. */
void pipe_add_lot(pipeline *p, lot *l);
/* Stops running the lot with this id and frees it (its keys and retained topics stay). */
void pipe_remove_lot(pipeline *p, const char *id);
lot *pipe_find_lot(const pipeline *p, const char *id);
/* The running lots, in configuration order after pipe_order_lots. */
lot *const *pipe_lots(const pipeline *p, size_t *n);
/* Orders the running lots as IDS[0..N) (a reload's order); ids not running are skipped. */
void pipe_order_lots(pipeline *p, char *const *ids, size_t n);

/* ---- the turn ---- */

/* One MQTT message (mq_callbacks.on_message). Only pure work happens here; the turn itself
 * (pipe_flush) runs once per loop iteration, after that iteration's I/O callbacks, so every
 * message read in it shares one batch. */
void pipe_on_message(pipeline *p, const char *topic, const void *payload, size_t len);

/* One message of input I (its own connection's on_message, or routed by pipe_on_message). */
void pipe_on_input_message(pipeline *p, size_t i, const char *topic, const void *payload,
                           size_t len);

/* Every lot's configuration and the lot id set are written in the next batch (start, reload). */
void pipe_resync_config(pipeline *p);
/* Everything is written again in full: what Redis holds may be behind (a reconnect). */
void pipe_resync_all(pipeline *p);
/* Every lot and the summary are published again (the broker reconnected). */
void pipe_republish_all(pipeline *p);
/* The parkd:daemon hash is written in the next batch (it also is each second). */
void pipe_write_daemon(pipeline *p);

/* Runs the turn: re-evaluates staleness, writes what changed as one batch, publishes what is
 * due. Nothing happens while Redis is down: changes stay queued and input unacknowledged.
 * With DRAIN (shutdown) every pending publish goes out now, min_interval or not. */
void pipe_flush(pipeline *p, bool drain);

/* L's configuration changed (reload): it is written and considered for publishing. */
void pipe_touch_lot(pipeline *p, lot *l);

/* FN(CTX) runs after every batch Redis confirmed. */
void pipe_set_on_stored(pipeline *p, void (*fn)(void *ctx), void *ctx);
/* A batch with the daemon hash (identity and counters) was confirmed. */
bool pipe_daemon_stored(const pipeline *p);

/* Nothing queued, no batch in flight: every change is in Redis. */
bool pipe_is_idle(const pipeline *p);

/* ---- observation ---- */

const uint64_t *pipe_counters(const pipeline *p);
uint64_t pipe_messages_in(const pipeline *p);
/* The event clock: the newest event time applied, advanced by the wall time since. */
int64_t pipe_event_clock(const pipeline *p);
/* Fills the loop-side parts of SNAP (counters, lots, latency histogram). */
void pipe_metrics(const pipeline *p, metrics_snapshot *snap);

/* Closes the pipeline's loop handles (the turn and the publish timer), then DONE(CTX). */
void pipe_close(pipeline *p, void (*done)(void *ctx), void *ctx);
void pipe_free(pipeline *p);

#endif
