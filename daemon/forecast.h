/* forecast: learns each lot's behaviour online from its event-time stream and forecasts free
 * spaces at the configured horizons with an 80 % interval, full_at and online MAE (SPEC §4);
 * also appends the lot's history stream (SPEC §5, history.h). What it learned lives in
 * <prefix>lot:<id>:model (profile.h, learn.h). Per-lot state hangs off lot->fc_data. The
 * process time zone (TZ) is set from the configured timezone: local time is what profiles
 * learn by. */
#ifndef PARKD_FORECAST_H
#define PARKD_FORECAST_H

#include <stddef.h>

#include "config.h"
#include "lot.h"
#include "mqtt.h"
#include "store.h"

typedef struct fc_engine fc_engine;

/* CFG must outlive the engine (fc_set_config swaps it; its horizons may change, and what was
 * learned for a horizon still configured is kept). Never NULL. */
fc_engine *fc_new(const cfg_config *cfg);
void fc_set_config(fc_engine *fc, const cfg_config *cfg);
void fc_free(fc_engine *fc);

/* Frees L's forecasting state (lot removed or daemon stopping). */
void fc_forget_lot(fc_engine *fc, lot *l);

/* L changed this loop turn, and ST's batch is open: learn from L's state at its event time and
 * append history entries and learned state to the batch (store_batch_command). */
void fc_lot_changed(fc_engine *fc, lot *l, store *st);

/* L's availability was just published: publish its forecast on <out>/<lot>/forecast (MQ may be
 * NULL before MQTT is up) and write the :forecast hash into ST (joins an open batch). */
void fc_publish(fc_engine *fc, lot *l, mq_client *mq, store *st);

/* L's current forecast as the SPEC §4 JSON, malloc'd (caller frees), its length in *LEN; NULL
 * when L has no data yet. The same text fc_publish sends. */
char *fc_format_forecast(fc_engine *fc, lot *l, size_t *len);

/* Loads the learned state of LOTS[0..N) from ST (after their lot state: the lot's event time
 * and occupancy are the last observation), then DONE(CTX, 0 or -EIO). Returns 0, or a negative
 * errno when nothing could be requested (DONE is then not called). No batch may be open. */
int fc_restore(fc_engine *fc, store *st, lot *const *lots, size_t n,
               void (*done)(void *ctx, int status), void *ctx);

#endif
