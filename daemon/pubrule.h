/* pubrule: when a lot's availability (and forecast) is published (SPEC §4): when free changes
 * by at least publish.deadband or status/stale/unknown changes (or a zone's status, the zones
 * themselves or a closure's reason: lot.outputs_rev), at most once per publish.min_interval
 * (a change inside it becomes pending and is published when it ends, never dropped), and
 * again every publish.heartbeat. Pure: the caller passes its monotonic clock in ms, keeps the
 * timer and does the publishing. */
#ifndef PARKD_PUBRULE_H
#define PARKD_PUBRULE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "lot.h"

typedef struct pubrule_lot {
    bool published;             /* anything published yet */
    int64_t last_free;          /* as last published; -1 for unknown */
    enum lot_status last_status;
    bool last_stale;
    int64_t last_unknown;       /* unknown bays as last published */
    uint64_t last_rev;          /* lot.outputs_rev as last published */
    uint64_t last_ms;           /* when last published */
    bool pending;               /* a change waits until due_ms */
    uint64_t due_ms;
} pubrule_lot;

void pubrule_init(pubrule_lot *r);

/* L's state changed at NOW: true when it is to be published now. A change that matters but
 * falls inside min_interval becomes pending instead (due when the interval ends). FORCE
 * treats any state as a change that matters (after a reconnect of the broker). */
bool pubrule_changed(pubrule_lot *r, const lot *l, const cfg_config *cfg, uint64_t now, bool force);

/* Defers R's publication until AT (the broker's backlog is full): it stays pending, so the
 * latest state goes out then, coalescing whatever changed meanwhile. */
void pubrule_defer(pubrule_lot *r, uint64_t at);

/* Whether R is to be published at NOW: a pending change that is due, or its heartbeat. */
bool pubrule_due(const pubrule_lot *r, const cfg_config *cfg, uint64_t now);

/* When R next becomes due by pubrule_due (UINT64_MAX: never without a change). */
uint64_t pubrule_next(const pubrule_lot *r, const cfg_config *cfg);

/* L was published at NOW. */
void pubrule_sent(pubrule_lot *r, const lot *l, uint64_t now);

#endif
