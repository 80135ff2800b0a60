/* history: the history stream's entry ids and entries (see history.h). */
#include "history.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void hist_init(hist_state *h)
{
    h->last_ms = INT64_MIN;
    h->last_seq = 0;
    h->last_status = -1;
    h->seq_unknown = false;
}

static void hist_set_last(hist_state *h, int64_t ms, uint64_t seq, int status, int64_t *out_ms,
                      uint64_t *out_seq)
{
    h->last_ms = ms;
    h->last_seq = seq;
    h->last_status = status;
    h->seq_unknown = false;
    *out_ms = ms;
    *out_seq = seq;
}

/* The first sequence number of an entry at MS: 0-0 is not a stream id Redis takes (ts 0, the
 * epoch, is a valid event time). */
static uint64_t hist_first_seq(int64_t ms)
{
    return ms == 0 ? 1 : 0;
}

bool hist_next_id(hist_state *h, int64_t ts_ms, int status, int64_t interval_ms, int64_t *ms,
                  uint64_t *seq)
{
    if (ts_ms < 0)
        return false;       /* stream ids are unsigned */
    if (h->last_ms == INT64_MIN) {
        hist_set_last(h, ts_ms, hist_first_seq(ts_ms), status, ms, seq);
        return true;
    }
    bool changed = status != h->last_status;
    if (ts_ms > h->last_ms) {
        if (!changed && ts_ms - h->last_ms < interval_ms)
            return false;
        hist_set_last(h, ts_ms, hist_first_seq(ts_ms), status, ms, seq);
        return true;
    }
    /* Not newer than the last entry (an out-of-order bay, a stale flag, a reload): only a status
     * change is worth an entry, under the next sequence number of the last id. Without the
     * sequence that id's entries cannot be counted, so wait for a newer event time. */
    if (!changed || h->seq_unknown || h->last_seq == UINT64_MAX)
        return false;
    hist_set_last(h, h->last_ms, h->last_seq + 1, status, ms, seq);
    return true;
}

/* Each zone's and category's free into E (nothing for a lot without them). */
static void hist_take_groups(const lot *l, hist_entry *e)
{
    const zn_resolver *r = l->groups;
    e->groups = NULL;
    e->n_groups = 0;
    if (!zn_any(r))
        return;
    e->groups = util_xcalloc((size_t)r->n_zones + CFG_N_CATEGORIES, sizeof *e->groups);
    for (int z = 0; z < r->n_zones; z++) {
        hist_group *g = &e->groups[e->n_groups++];
        snprintf(g->field, sizeof g->field, "zone:%s:free", r->zones[z].id);
        g->free = lot_group_free(&l->zones[z]);
    }
    for (int c = 0; c < CFG_N_CATEGORIES; c++) {
        if (!((r->cats_set >> c) & 1u))
            continue;
        hist_group *g = &e->groups[e->n_groups++];
        snprintf(g->field, sizeof g->field, "cat:%s:free", cfg_category_name((enum cfg_category)c));
        g->free = lot_group_free(&l->cats[c]);
    }
}

bool hist_take(hist_state *h, const lot *l, int64_t interval_ms, hist_entry *e)
{
    if (!l->has_data || !hist_next_id(h, l->ts_ms, (int)l->status, interval_ms, &e->ms, &e->seq))
        return false;
    e->occupied = l->occupied;
    e->free = lot_free_spaces(l);
    e->free_smoothed = l->smooth.smoothed;
    e->has_unknown = lot_tracks_unknown(l);
    e->unknown = l->unknown;
    hist_take_groups(l, e);
    return true;
}

void hist_entry_free(hist_entry *e)
{
    free(e->groups);
    e->groups = NULL;
    e->n_groups = 0;
}

int hist_encode(const hist_state *h, char *buf, size_t size)
{
    return snprintf(buf, size, "%" PRId64 " %" PRIu64 " %d", h->last_ms, h->last_seq,
                    h->last_status);
}

bool hist_decode(hist_state *h, const char *text)
{
    long long ms;
    unsigned long long seq;
    int status;
    char tail;
    if (sscanf(text, "%lld %llu %d %c", &ms, &seq, &status, &tail) != 3 || status < -1 ||
        status > LOT_STATUS_CLOSED)
        return false;
    h->last_ms = (int64_t)ms;
    h->last_seq = (uint64_t)seq;
    h->last_status = status;
    h->seq_unknown = false;
    return true;
}

void hist_bound(hist_state *h, int64_t lot_ts_ms)
{
    if (h->last_ms != INT64_MIN && h->last_ms >= lot_ts_ms)
        return;
    /* Entries up to lot_ts_ms may exist that the state does not know of: continue strictly
     * after lot_ts_ms, keeping the last status so a change is still recognised. */
    h->last_ms = lot_ts_ms;
    h->last_seq = 0;
    h->seq_unknown = true;
}
