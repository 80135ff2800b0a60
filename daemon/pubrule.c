#include "pubrule.h"

#include <math.h>

void pubrule_init(pubrule_lot *r)
{
    *r = (pubrule_lot){ .last_free = -1, .last_status = LOT_STATUS_UNKNOWN };
}

static bool pubrule_matters(const pubrule_lot *r, const lot *l, const cfg_config *cfg)
{
    /* A bay going silent or coming back may leave free as it was (an occupied bay turned
     * unknown), yet the published occupied and unknown are then wrong: it is a change. */
    if (!r->published || l->status != r->last_status || l->stale != r->last_stale ||
        l->unknown != r->last_unknown || l->outputs_rev != r->last_rev)
        return true;
    int64_t now_free = l->has_data ? lot_free_spaces(l) : -1;
    if (now_free == r->last_free)
        return false;
    if (now_free < 0 || r->last_free < 0)
        return true;
    return fabs((double)(now_free - r->last_free)) >= cfg->publish.deadband;
}

bool pubrule_changed(pubrule_lot *r, const lot *l, const cfg_config *cfg, uint64_t now, bool force)
{
    if (!force && !pubrule_matters(r, l, cfg))
        return false;
    uint64_t interval = (uint64_t)cfg->publish.min_interval_ms;
    if (!r->published || interval == 0 || now - r->last_ms >= interval)
        return true;
    if (!r->pending) {
        r->pending = true;
        r->due_ms = r->last_ms + interval;
    }
    return false;
}

void pubrule_defer(pubrule_lot *r, uint64_t at)
{
    r->pending = true;
    r->due_ms = at;
}

bool pubrule_due(const pubrule_lot *r, const cfg_config *cfg, uint64_t now)
{
    return now >= pubrule_next(r, cfg);
}

uint64_t pubrule_next(const pubrule_lot *r, const cfg_config *cfg)
{
    if (r->pending)
        return r->due_ms;
    if (r->published)
        return r->last_ms + (uint64_t)cfg->publish.heartbeat_ms;
    return UINT64_MAX;
}

void pubrule_sent(pubrule_lot *r, const lot *l, uint64_t now)
{
    r->published = true;
    r->last_free = l->has_data ? lot_free_spaces(l) : -1;
    r->last_status = l->status;
    r->last_stale = l->stale;
    r->last_unknown = l->unknown;
    r->last_rev = l->outputs_rev;
    r->last_ms = now;
    r->pending = false;
}
