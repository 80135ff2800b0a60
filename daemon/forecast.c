/* First version: persistence (free stays as it is) with no interval learning; the learned
 * model replaces it. */
#include "forecast.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"
#include "util.h"

struct fc_engine {
    const cfg_config *cfg;
};

fc_engine *fc_new(const cfg_config *cfg)
{
    fc_engine *fc = util_xcalloc(1, sizeof *fc);
    fc->cfg = cfg;
    return fc;
}

void fc_set_config(fc_engine *fc, const cfg_config *cfg)
{
    fc->cfg = cfg;
}

void fc_free(fc_engine *fc)
{
    free(fc);
}

void fc_forget_lot(fc_engine *fc, lot *l)
{
    (void)fc;
    l->fc_data = NULL;
}

void fc_lot_changed(fc_engine *fc, lot *l, store *st)
{
    (void)fc; (void)l; (void)st;
}

void fc_publish(fc_engine *fc, lot *l, mq_client *mq, store *st)
{
    if (!l->has_data)
        return;
    char json[2048], ts[40], hts[40], topic[512];
    pl_format_time(l->ts_ms, ts, sizeof ts);
    int64_t free_now = lot_free_spaces(l);
    int n = snprintf(json, sizeof json, "{\"lot\":\"%s\",\"ts\":\"%s\",\"horizons\":[", l->id, ts);
    for (size_t i = 0; i < fc->cfg->forecast.n_horizons && n < (int)sizeof json - 200; i++) {
        int64_t h = fc->cfg->forecast.horizons_ms[i];
        pl_format_time(l->ts_ms + h, hts, sizeof hts);
        n += snprintf(json + n, sizeof json - (size_t)n,
                      "%s{\"minutes\":%" PRId64 ",\"ts\":\"%s\",\"free\":%" PRId64
                      ",\"low\":%" PRId64 ",\"high\":%" PRId64 ",\"mae\":null}",
                      i ? "," : "", h / 60000, hts, free_now, free_now, free_now);
    }
    n += snprintf(json + n, sizeof json - (size_t)n, "],\"full_at\":null}");
    snprintf(topic, sizeof topic, "%s/%s/forecast", fc->cfg->mqtt.output_prefix, l->id);
    if (mq)
        mq_publish(mq, topic, json, (size_t)n);
    (void)st;
}

int fc_restore(fc_engine *fc, store *st, lot *const *lots, size_t n,
               void (*done)(void *ctx, int status), void *ctx)
{
    (void)fc; (void)st; (void)lots; (void)n;
    done(ctx, 0);
    return 0;
}
