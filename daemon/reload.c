#include "reload.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "util.h"

static void reload_note(void *ctx, const char *name, unsigned flag)
{
    (void)ctx;
    if (flag == CFG_RELOAD_RESTART)
        log_warning("reload: %s changed; it is read at start only and applies after a restart",
                    name);
    else
        log_info("reload: %s changed", name);
}

/* The ids of CFG's lots, for lookups in O(1): with tens of thousands of lots a scan per lot
 * held the loop for seconds (1.9 s at 20,000 lots) on every SIGHUP. */
static map *reload_index(const cfg_config *cfg)
{
    map *m = map_new();
    for (size_t i = 0; i < cfg->n_lots; i++) {
        const char *id = cfg->lots[i].id;
        if (!map_get(m, id, strlen(id)))
            map_put(m, id, strlen(id), (void *)&cfg->lots[i]);
    }
    return m;
}

void reload_plan_make(const cfg_config *old, const cfg_config *new_cfg, reload_plan *out)
{
    *out = (reload_plan){ 0 };
    out->effects = cfg_reload_effects(old, new_cfg, reload_note, NULL);
    out->added = util_xcalloc(new_cfg->n_lots + 1, sizeof *out->added);
    out->kept = util_xcalloc(new_cfg->n_lots + 1, sizeof *out->kept);
    out->removed = util_xcalloc(old->n_lots + 1, sizeof *out->removed);
    map *old_ids = reload_index(old), *new_ids = reload_index(new_cfg);
    for (size_t i = 0; i < new_cfg->n_lots; i++) {
        const cfg_lot *l = &new_cfg->lots[i];
        if (map_get(old_ids, l->id, strlen(l->id)))
            out->kept[out->n_kept++] = l;
        else
            out->added[out->n_added++] = l;
    }
    for (size_t i = 0; i < old->n_lots; i++) {
        const char *id = old->lots[i].id;
        if (!map_get(new_ids, id, strlen(id)))
            out->removed[out->n_removed++] = id;
    }
    map_free(old_ids);
    map_free(new_ids);
}

void reload_plan_free(reload_plan *plan)
{
    free(plan->added);
    free(plan->kept);
    free(plan->removed);
    *plan = (reload_plan){ 0 };
}

void reload_keep_start_values(const cfg_config *old, cfg_config *new_cfg)
{
    cfg_keep_restart_keys(old, new_cfg);
}
