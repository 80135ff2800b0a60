/* forecast: learns each lot's behaviour online from its event-time stream and forecasts free
 * spaces at the configured horizons with an 80 % interval, full_at and online MAE (SPEC §4);
 * also keeps the lot's history-stream ids (SPEC §5, history.h).
 *
 * Pure: no I/O. What it learned goes out as data — the changed fields of
 * <prefix>lot:<id>:model (fc_model_changes) — and comes back the same way (fc_restore_lot); a
 * forecast is a value (fc_forecast) that the pipeline formats, stores and publishes. Per-lot
 * state hangs off lot->fc_data. Local time (the profiles' slots) is the process time zone,
 * which main sets once from the configured timezone before any thread starts. */
#ifndef PARKD_FORECAST_H
#define PARKD_FORECAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "history.h"
#include "lot.h"

typedef struct fc_engine fc_engine;

/* One horizon's forecast, in spaces. */
typedef struct fc_horizon_forecast {
    int64_t minutes;
    int64_t ts_ms;              /* the target event time */
    double free, low, high;
    bool has_mae;               /* false until the lot or the pool has scored enough */
    double mae;
} fc_horizon_forecast;

/* A lot's forecast at its event time TS_MS: what the forecast topic and :forecast hash show. */
typedef struct fc_forecast {
    int64_t ts_ms;
    size_t n;
    fc_horizon_forecast h[CFG_MAX_HORIZONS];
    bool has_full_at;
    int64_t full_at_ms;
} fc_forecast;

/* Receives one field of a hash (the :model or :forecast one). Strings live for the call only. */
typedef void (*fc_emit_fn)(void *ctx, const char *field, const char *value);

/* CFG must outlive the engine (fc_set_config swaps it; its horizons may change, and what was
 * learned for a horizon still configured is kept). Never NULL. */
fc_engine *fc_new(const cfg_config *cfg);
void fc_set_config(fc_engine *fc, const cfg_config *cfg);
void fc_free(fc_engine *fc);

/* Frees L's forecasting state (lot removed or daemon stopping). */
void fc_forget_lot(fc_engine *fc, lot *l);

/* Learns from L's state now (at its event time). Returns true when a history entry is due,
 * into *ENTRY. Call at most once per state the lot passes through that should be learned from. */
bool fc_observe(fc_engine *fc, lot *l, hist_entry *entry);

/* The :model fields changed since the last call (the version field "v" first when there are
 * any), which are then considered stored. Nothing is emitted when nothing changed. */
void fc_model_changes(fc_engine *fc, lot *l, fc_emit_fn emit, void *ctx);

/* The next fc_model_changes emits the whole model (after Redis lost its data). A lot without
 * data has learned nothing and is left as it is: no :model restores as the same empty model. */
void fc_mark_all_dirty(fc_engine *fc, lot *l);
/* Whether fc_mark_all_dirty ran since the last call, or fc_restore_lot found fields of an
 * earlier layout: the stored :model must be cleared before the next fc_model_changes is
 * written, which holds only what differs from an empty model (not every chunk's zeros) and
 * none of the fields this version no longer reads. */
bool fc_model_take_reset(fc_engine *fc, lot *l);

/* L's current forecast into *F; false when L has no data yet. */
bool fc_forecast_lot(fc_engine *fc, lot *l, fc_forecast *f);

/* F as the SPEC §4 JSON for lot LOT_ID into BUF; its length, or 0 when it does not fit. */
size_t fc_format_json(const char *lot_id, const fc_forecast *f, char *buf, size_t size);

/* F as the fields of the :forecast hash (ts, <m>, <m>:low, <m>:high, <m>:mae; a null mae is
 * ""): at most 1 + 4 * CFG_MAX_HORIZONS fields. */
void fc_forecast_fields(const fc_forecast *f, fc_emit_fn emit, void *ctx);

/* Loads L's stored model fields FIELDS/VALUES[0..N) (N 0: none stored), after its lot state:
 * the lot's event time and occupancy are the last observation. */
void fc_restore_lot(fc_engine *fc, lot *l, size_t n, const char *const *fields,
                    const char *const *values);

#endif
