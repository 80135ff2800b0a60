/* reload: what a SIGHUP's new configuration changes, as a plan the daemon carries out. Driven
 * by the "on reload" column of config.c's table (cfg_reload_effects): most keys apply at once,
 * connection keys reconnect, start-only keys keep their running value (logged). Lots are
 * diffed by id. No I/O beyond the log. */
#ifndef PARKD_RELOAD_H
#define PARKD_RELOAD_H

#include <stddef.h>

#include "config.h"

typedef struct reload_plan {
    unsigned effects;           /* CFG_RELOAD_* of the keys that differ */
    const cfg_lot **added;      /* lots of NEW not in OLD (pointers into NEW) */
    size_t n_added;
    const cfg_lot **kept;       /* lots of NEW also in OLD */
    size_t n_kept;
    const char **removed;       /* ids of OLD's lots not in NEW (pointers into OLD) */
    size_t n_removed;
} reload_plan;

/* The plan from OLD to NEW_CFG (both must outlive it; free it with reload_plan_free). Logs the
 * start-only keys that changed: they apply at the next restart. */
void reload_plan_make(const cfg_config *old, const cfg_config *new_cfg, reload_plan *out);
void reload_plan_free(reload_plan *plan);

/* NEW_CFG with the start-only keys set back to OLD's values, so that the running daemon keeps
 * what it started with (the strings are duplicated into NEW_CFG, which owns them). */
void reload_keep_start_values(const cfg_config *old, cfg_config *new_cfg);

#endif
