/* history: the lot's SPEC §5 history stream (<prefix>lot:<id>:history), so dashboards can draw
 * the last days with XRANGE. Entry ids are the event time in ms ("<ms>-<seq>"); Redis rejects
 * an id not above the stream's last one, and a rejected command fails the whole MULTI batch,
 * so the last id is tracked (and stored) here and every new id is strictly greater. Pure: the
 * store module writes the entries (store_batch_history). */
#ifndef PARKD_HISTORY_H
#define PARKD_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lot.h"

typedef struct hist_state {
    int64_t last_ms;        /* the last entry's id is last_ms-last_seq; INT64_MIN: none yet */
    uint64_t last_seq;
    int last_status;        /* enum lot_status of the last entry; -1: none */
    bool seq_unknown;       /* only a lower bound of the last id is known (see hist_restore) */
} hist_state;

void hist_init(hist_state *h);

/* Whether a lot at event time TS_MS with STATUS gets an entry: at most one per INTERVAL_MS of
 * event time, plus one on each status change. An event not newer than the last entry never
 * reuses its id: a status change then takes last_ms-(last_seq+1), anything else is skipped.
 * When true, *MS and *SEQ are the new id, which becomes the state's last id. */
bool hist_next_id(hist_state *h, int64_t ts_ms, int status, int64_t interval_ms, int64_t *ms,
                  uint64_t *seq);

/* "zone:<id>:free" or "cat:<name>:free" and its value, in an entry of a lot with zones or
 * categories (SPEC §10). */
#define HIST_GROUP_FIELD_MAX (sizeof "zone::free" + PL_ID_MAX)
typedef struct hist_group {
    char field[HIST_GROUP_FIELD_MAX];
    int64_t free;
} hist_group;

/* One entry of the stream: id MS-SEQ, fields occupied, free, free_smoothed, unknown when the
 * lot counts unknown bays, and each zone's and category's free. */
typedef struct hist_entry {
    int64_t ms;
    uint64_t seq;
    int64_t occupied;
    int64_t free;
    double free_smoothed;
    bool has_unknown;
    int64_t unknown;
    hist_group *groups;     /* n_groups of them (owned; NULL when none): free with hist_entry_free */
    size_t n_groups;
} hist_entry;

/* Frees what hist_take allocated in E (not E itself). */
void hist_entry_free(hist_entry *e);

/* L's entry now, into *E, if hist_next_id says one is due (L has data). Returns true when it
 * is (the state changed and must be stored with the entry). */
bool hist_take(hist_state *h, const lot *l, int64_t interval_ms, hist_entry *e);

/* The state as text "last_ms last_seq last_status" and back (false when it does not parse). */
int hist_encode(const hist_state *h, char *buf, size_t size);
bool hist_decode(hist_state *h, const char *text);

/* After a restore without a stored state (e.g. it was deleted): every entry ever written has an
 * id at or below the lot's restored event time LOT_TS_MS (written in the same batch as each
 * entry), so new ids start strictly above it. */
void hist_bound(hist_state *h, int64_t lot_ts_ms);

#endif
