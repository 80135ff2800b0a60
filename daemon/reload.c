#include "reload.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
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

void reload_plan_make(const cfg_config *old, const cfg_config *new_cfg, reload_plan *out)
{
    *out = (reload_plan){ 0 };
    out->effects = cfg_reload_effects(old, new_cfg, reload_note, NULL);
    out->added = util_xcalloc(new_cfg->n_lots + 1, sizeof *out->added);
    out->kept = util_xcalloc(new_cfg->n_lots + 1, sizeof *out->kept);
    out->removed = util_xcalloc(old->n_lots + 1, sizeof *out->removed);
    for (size_t i = 0; i < new_cfg->n_lots; i++) {
        const cfg_lot *l = &new_cfg->lots[i];
        if (cfg_find_lot(old, l->id))
            out->kept[out->n_kept++] = l;
        else
            out->added[out->n_added++] = l;
    }
    for (size_t i = 0; i < old->n_lots; i++) {
        if (!cfg_find_lot(new_cfg, old->lots[i].id))
            out->removed[out->n_removed++] = old->lots[i].id;
    }
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
