/* output: what parkd shows the world over MQTT (SPEC §4): the availability and forecast JSON of
 * a lot, the summary, and the retained publishes on <out>/<lot>/availability,
 * <out>/<lot>/forecast and <out>/summary. Formatting is pure; the out_publish_* calls queue on
 * the MQTT client (libmosquitto writes them once the storage barrier allows). */
#ifndef PARKD_OUTPUT_H
#define PARKD_OUTPUT_H

#include <stddef.h>

#include "config.h"
#include "lot.h"
#include "mqtt.h"

#define OUT_JSON_MAX 4096           /* an availability or forecast JSON always fits */

/* NAME as a JSON string (quoted, escaped), malloc'd (caller frees). */
char *out_name_json(const char *name);

/* L's availability JSON (NAME_JSON from out_name_json) into BUF; returns its length, 0 if it
 * did not fit. */
size_t out_format_availability(const lot *l, const char *name_json, char *buf, size_t size);

/* The summary of LOTS[0..N), malloc'd (caller frees); NULL on out of memory in jansson. */
char *out_format_summary(lot *const *lots, size_t n);

/* Retained publish of JSON on <out>/<LOT_ID>/<KIND>. Returns 0, -ENOTCONN or -EIO (MQ NULL
 * counts as not connected: everything is published again on connect). */
int out_publish_lot(mq_client *mq, const cfg_config *cfg, const char *lot_id, const char *kind,
                    const char *json, size_t len);
int out_publish_summary(mq_client *mq, const cfg_config *cfg, const char *json);

#endif
