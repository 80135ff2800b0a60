/* output: what parkd shows the world over MQTT (SPEC §4): the availability and forecast JSON of
 * a lot, the summary, and the retained publishes on <out>/<lot>/availability,
 * <out>/<lot>/forecast, <out>/summary and <out>/summary/<k>. Formatting is pure; the
 * out_publish_* calls queue on the MQTT client (libmosquitto writes them once the storage
 * barrier allows). Every output has a bounded size (see OUT_JSON_MAX and the summary pages), so
 * none can exceed a broker's packet limit and cost the connection. */
#ifndef PARKD_OUTPUT_H
#define PARKD_OUTPUT_H

#include <stddef.h>

#include "config.h"
#include "lot.h"
#include "mqtt.h"

/* An availability or forecast JSON always fits: the availability of a lot with a 64-byte id and
 * a CFG_NAME_MAX name escaped as \u00XX throughout is under 2 KB, plus at most CFG_MAX_ZONES
 * zones of a 64-byte id and a CFG_ZONE_NAME_MAX name so escaped (under 600 bytes each) and the
 * eight categories (under 100 bytes each): under 42 KB in all; a forecast with
 * CFG_MAX_HORIZONS horizons at the widest numbers (capacity 10^7, a year's minutes) under 4 KB.
 * test_output checks both. */
#define OUT_JSON_MAX 49152

/* NAME as a JSON string (quoted, escaped), malloc'd (caller frees). */
char *out_name_json(const char *name);

/* L's availability JSON (NAME_JSON from out_name_json) into BUF; returns its length, 0 if it
 * did not fit. */
size_t out_format_availability(const lot *l, const char *name_json, char *buf, size_t size);

/* The summary of LOTS[0..N) as pages whose JSON is at most MAX_BYTES each (SPEC §4): page 1
 * has "ts", the first lots, the totals "free" and "capacity" over all lots and "pages":N (1
 * when it is not split); page k > 1 has "ts", "page":k, "pages":N and the next lots, in
 * configuration order. Returns the N (in *N_PAGES) malloc'd pages in a malloc'd array (free
 * with out_free_pages); NULL on out of memory in jansson, or when one lot's entry alone does
 * not fit a page (the limits on names and on summary_max_bytes rule that out, see config.h). */
char **out_format_summary_pages(lot *const *lots, size_t n, size_t max_bytes, size_t *n_pages);
void out_free_pages(char **pages, size_t n);

/* Retained publish of JSON on <out>/<LOT_ID>/<KIND>. Returns 0, -ENOTCONN or -EIO (MQ NULL
 * counts as not connected: everything is published again on connect). */
int out_publish_lot(mq_client *mq, const cfg_config *cfg, const char *lot_id, const char *kind,
                    const char *json, size_t len);
/* Page K of the summary: 1 on <out>/summary, K > 1 on <out>/summary/<K>; JSON "" clears the
 * retained page. */
int out_publish_summary_page(mq_client *mq, const cfg_config *cfg, size_t k, const char *json);

#endif
