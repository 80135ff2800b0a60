/* publish: decides when each lot's availability is published (deadband, min_interval
 * coalescing, heartbeat, status/stale changes), formats the SPEC §4 JSON, and sends it as a
 * retained MQTT message and on the Redis updates channel; also the summary topic. */
#ifndef PARKD_PUBLISH_H
#define PARKD_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "lot.h"
#include "mqtt.h"
#include "store.h"

typedef struct pub pub;

/* Extra per-lot output published with the availability (the forecast module). Called with the
 * lot and the availability's publish time; may publish more topics. */
typedef void (*pub_extra_fn)(void *ctx, lot *l);

/* CFG, MQ and ST must outlive the publisher (pub_set_config swaps CFG). Never NULL. */
pub *pub_new(uv_loop_t *loop, const cfg_config *cfg, mq_client *mq, store *st);
/* Sets the MQTT client (created after the restore); until then nothing goes to MQTT. */
void pub_set_mqtt(pub *p, mq_client *mq);
void pub_set_extra(pub *p, pub_extra_fn fn, void *ctx);
/* Starts the heartbeat and summary timers. */
int pub_start(pub *p);
void pub_set_config(pub *p, const cfg_config *cfg);

/* Starts publishing L (which must outlive its registration); its first availability is due at
 * once. */
void pub_add_lot(pub *p, lot *l);
/* Stops publishing L (reload removed it); its retained topics stay as they are. */
void pub_remove_lot(pub *p, const lot *l);

/* L's state changed: publishes now if the change matters and min_interval allows, or when the
 * interval ends (a change is delayed, never dropped). */
void pub_lot_changed(pub *p, lot *l);

/* Publishes every lot now (after an MQTT reconnect, so changes made offline reach the broker). */
void pub_republish_all(pub *p);
/* Publishes every pending change now, ignoring min_interval (shutdown). */
void pub_flush_pending(pub *p);

uint64_t pub_published(const pub *p);

/* Formats L's availability JSON into BUF; returns its length, or 0 if it did not fit. */
size_t pub_format_availability(const pub *p, const lot *l, char *buf, size_t size);

/* Stops timers and closes handles; DONE(CTX) when all are closed. Free with pub_free after. */
void pub_close(pub *p, void (*done)(void *ctx), void *ctx);
void pub_free(pub *p);

#endif
