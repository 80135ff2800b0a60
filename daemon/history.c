/* history: the history stream's entry ids and XADD commands (see history.h). */
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

static void hist_take(hist_state *h, int64_t ms, uint64_t seq, int status, int64_t *out_ms,
                      uint64_t *out_seq)
{
    h->last_ms = ms;
    h->last_seq = seq;
    h->last_status = status;
    h->seq_unknown = false;
    *out_ms = ms;
    *out_seq = seq;
}

bool hist_next_id(hist_state *h, int64_t ts_ms, int status, int64_t interval_ms, int64_t *ms,
                  uint64_t *seq)
{
    if (ts_ms < 0)
        return false;       /* stream ids are unsigned */
    if (h->last_ms == INT64_MIN) {
        hist_take(h, ts_ms, 0, status, ms, seq);
        return true;
    }
    bool changed = status != h->last_status;
    if (ts_ms > h->last_ms) {
        if (!changed && ts_ms - h->last_ms < interval_ms)
            return false;
        hist_take(h, ts_ms, 0, status, ms, seq);
        return true;
    }
    /* Not newer than the last entry (an out-of-order bay, a stale flag, a reload): only a status
     * change is worth an entry, under the next sequence number of the last id. Without the
     * sequence that id's entries cannot be counted, so wait for a newer event time. */
    if (!changed || h->seq_unknown || h->last_seq == UINT64_MAX)
        return false;
    hist_take(h, h->last_ms, h->last_seq + 1, status, ms, seq);
    return true;
}

bool hist_append(hist_state *h, const lot *l, store *st, int64_t interval_ms, int64_t max_len)
{
    int64_t ms;
    uint64_t seq;
    if (!l->has_data || !hist_next_id(h, l->ts_ms, (int)l->status, interval_ms, &ms, &seq))
        return false;
    const char *prefix = store_prefix(st);
    size_t key_size = strlen(prefix) + strlen(l->id) + sizeof "lot::history";
    char *key = util_xmalloc(key_size);
    char maxlen[32], id[48], occupied[32], free_s[32], smoothed[40];
    snprintf(key, key_size, "%slot:%s:history", prefix, l->id);
    snprintf(maxlen, sizeof maxlen, "%" PRId64, max_len);
    snprintf(id, sizeof id, "%" PRId64 "-%" PRIu64, ms, seq);
    snprintf(occupied, sizeof occupied, "%" PRId64, l->occupied);
    snprintf(free_s, sizeof free_s, "%" PRId64, lot_free_spaces(l));
    snprintf(smoothed, sizeof smoothed, "%.1f", l->smooth.smoothed);
    const char *argv[] = { "XADD", key, "MAXLEN", "~", maxlen, id, "occupied", occupied,
                           "free", free_s, "free_smoothed", smoothed };
    size_t lens[sizeof argv / sizeof argv[0]];
    for (size_t i = 0; i < sizeof argv / sizeof argv[0]; i++)
        lens[i] = strlen(argv[i]);
    store_batch_command(st, (int)(sizeof argv / sizeof argv[0]), argv, lens);
    free(key);
    return true;
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
        status > LOT_STATUS_FULL)
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
