/* feeds: the MQTT connections of the inputs that have one of their own (SPEC §9 `inputs[].mqtt`,
 * a LoRaWAN network server's broker). One client per such input on the one loop, each with its
 * own session and backoff; their messages go to pipe_on_input_message and are acknowledged
 * under the pipeline's barrier, per connection, so one that is down stalls no other. Inputs
 * without a connection of their own ride on the main one (pipeline.c routes them). */
#ifndef PARKD_FEEDS_H
#define PARKD_FEEDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "pipeline.h"

typedef struct feeds feeds;

/* No connections yet; P outlives the feeds. Never NULL. */
feeds *feed_new(uv_loop_t *loop, pipeline *p);

/* Creates (not starts) the clients of CFG's inputs that have their own connection, to replace
 * the running ones at feed_switch. Returns 0, or -1 with *ERR (malloc'd) on a bad setting (a
 * password file that cannot be read, TLS files libmosquitto refuses): nothing changes then. */
int feed_prepare(feeds *f, const cfg_config *cfg, char **err);

/* Whether a prepared set waits to be switched in. */
bool feed_prepared(const feeds *f);

/* The prepared clients replace the running ones: those close first (same client ids, same
 * sessions), then the new ones start. At start there are none to close. */
void feed_switch(feeds *f);

/* Pauses or resumes reading every connection (a reload restoring added lots). */
void feed_set_paused(feeds *f, bool paused);

/* Stops reading for good (shutdown). */
void feed_stop_input(feeds *f);

/* Closes every connection (at most TIMEOUT_MS for the broker's acknowledgements), then
 * DONE(CTX). Unstored input stays unacknowledged and is redelivered to the next session. */
void feed_close(feeds *f, uint64_t timeout_ms, void (*done)(void *ctx), void *ctx);
void feed_free(feeds *f);

/* Connections running, and of them connected (for STATUS and metrics). */
size_t feed_count(const feeds *f);
size_t feed_connected(const feeds *f);
/* Whether input I's own connection is up; false for an input without one. */
bool feed_input_up(const feeds *f, size_t input);

#endif
