#include "output.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"
#include "util.h"

#define OUT_TOPIC_MAX 512

char *out_name_json(const char *name)
{
    json_t *s = json_string(name);
    char *dumped = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    char *out = util_xstrdup(dumped ? dumped : "null");
    free(dumped);
    json_decref(s);
    return out;
}

static int out_fmt_double(char *buf, size_t size, int decimals, double v)
{
    if (!isfinite(v))
        return snprintf(buf, size, "null");
    return (int)util_format_fixed(buf, size, v, decimals);
}

/* While closed: ,"closed_reason":"…" (when given) and ,"closed_until":"…" (when given) into BUF;
 * "" otherwise, so the availability of an open lot reads as before closures existed. */
static void out_closure_fields(const lot *l, char *buf, size_t size)
{
    buf[0] = '\0';
    if (!l->closed)
        return;
    size_t n = 0;
    if (l->closed_reason[0]) {
        json_t *r = json_string(l->closed_reason);
        char *text = r ? json_dumps(r, JSON_ENCODE_ANY) : NULL;
        int k = text ? snprintf(buf, size, ",\"closed_reason\":%s", text) : 0;
        n = k > 0 && (size_t)k < size ? (size_t)k : 0;
        buf[n] = '\0';
        free(text);
        json_decref(r);
    }
    if (l->has_closed_until) {
        char ts[40];
        pl_format_time(l->closed_until_ms, ts, sizeof ts);
        snprintf(buf + n, size - n, ",\"closed_until\":\"%s\"", ts);
    }
}

/* ---- zones and categories (SPEC §10) ---- */

/* Appending to a fixed buffer: LEN grows while everything fits; OK_LEN is LEN, or 0 once
 * anything did not fit (then the whole output is refused, never cut). */
typedef struct out_buf {
    char *buf;
    size_t size, len;
    size_t ok_len;
} out_buf;

__attribute__((format(printf, 2, 3)))
static void out_append(out_buf *b, const char *fmt, ...)
{
    if (b->len >= b->size) {
        b->ok_len = 0;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->size - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->size - b->len) {
        b->len = b->size;
        b->ok_len = 0;
        return;
    }
    b->len += (size_t)n;
    b->ok_len = b->len;
}

/* A count as JSON: null before the lot has data. */
static const char *out_count(const lot *l, int64_t v, char *buf, size_t size)
{
    if (!l->has_data)
        return "null";
    snprintf(buf, size, "%" PRId64, v);
    return buf;
}

/* ,"zones":[{"id","name","capacity","occupied","free","status"[,"unknown"]}...] */
static void out_zones(out_buf *b, const lot *l)
{
    const zn_resolver *r = l->groups;
    if (r->n_zones == 0)
        return;
    out_append(b, ",\"zones\":[");
    for (int z = 0; z < r->n_zones; z++) {
        const lot_group *g = &l->zones[z];
        char occ[24], fr[24], unk[24];
        out_append(b, "%s{\"id\":\"%s\",\"name\":%s,\"capacity\":%" PRId64 ",\"occupied\":%s,"
                   "\"free\":%s", z ? "," : "", r->zones[z].id, r->zones[z].name_json, g->capacity,
                   out_count(l, lot_group_occupied(g), occ, sizeof occ),
                   out_count(l, lot_group_free(g), fr, sizeof fr));
        if (lot_tracks_unknown(l))
            out_append(b, ",\"unknown\":%s", out_count(l, g->unknown, unk, sizeof unk));
        out_append(b, ",\"status\":\"%s\"}", lot_status_name(g->status));
    }
    out_append(b, "]");
}

/* ,"categories":{"disabled":{"capacity","occupied","free"[,"unknown"]},...} in SPEC order */
static void out_categories(out_buf *b, const lot *l)
{
    if (!l->groups->cats_set)
        return;
    out_append(b, ",\"categories\":{");
    bool first = true;
    for (int c = 0; c < CFG_N_CATEGORIES; c++) {
        if (!((l->groups->cats_set >> c) & 1u))
            continue;
        const lot_group *g = &l->cats[c];
        char occ[24], fr[24], unk[24];
        out_append(b, "%s\"%s\":{\"capacity\":%" PRId64 ",\"occupied\":%s,\"free\":%s",
                   first ? "" : ",", cfg_category_name((enum cfg_category)c), g->capacity,
                   out_count(l, lot_group_occupied(g), occ, sizeof occ),
                   out_count(l, lot_group_free(g), fr, sizeof fr));
        if (lot_tracks_unknown(l))
            out_append(b, ",\"unknown\":%s", out_count(l, g->unknown, unk, sizeof unk));
        out_append(b, "}");
        first = false;
    }
    out_append(b, "}");
}

size_t out_format_availability(const lot *l, const char *name_json, char *buf, size_t size)
{
    if (!name_json)
        name_json = "null";
    char ts[40] = "null", occupied[32] = "null", free_s[32] = "null", smoothed[40] = "null",
         occupancy[40] = "null", trend[40] = "null", unknown[48] = "";
    /* a reason is at most 200 bytes, each at most \u00XX (6) once JSON-escaped */
    char closure[6 * PL_REASON_MAX + 128];
    out_closure_fields(l, closure, sizeof closure);
    if (l->has_data) {
        ts[0] = '"';
        size_t n = pl_format_time(l->ts_ms, ts + 1, sizeof ts - 2);
        ts[n + 1] = '"';
        ts[n + 2] = '\0';
        snprintf(occupied, sizeof occupied, "%" PRId64, l->occupied);
        snprintf(free_s, sizeof free_s, "%" PRId64, lot_free_spaces(l));
        out_fmt_double(smoothed, sizeof smoothed, 1, l->smooth.smoothed);
        out_fmt_double(occupancy, sizeof occupancy, 3, lot_occupancy(l));
        out_fmt_double(trend, sizeof trend, 1, sm_trend_per_hour(&l->smooth));
    }
    if (lot_tracks_unknown(l)) {
        if (l->has_data)
            snprintf(unknown, sizeof unknown, ",\"unknown\":%" PRId64, l->unknown);
        else
            snprintf(unknown, sizeof unknown, ",\"unknown\":null");
    }
    int n = snprintf(buf, size,
                     "{\"lot\":\"%s\",\"name\":%s,\"ts\":%s,\"capacity\":%" PRId64
                     ",\"occupied\":%s,\"free\":%s%s,\"free_smoothed\":%s,\"occupancy\":%s,"
                     "\"trend_per_hour\":%s,\"status\":\"%s\"%s,\"stale\":%s",
                     l->id, name_json, ts, l->capacity, occupied, free_s, unknown, smoothed, occupancy,
                     trend, lot_status_name(l->status), closure, l->stale ? "true" : "false");
    if (n <= 0 || (size_t)n >= size)
        return 0;
    out_buf b = { buf, size, (size_t)n, (size_t)n };
    out_zones(&b, l);
    out_categories(&b, l);
    out_append(&b, "}");
    return b.ok_len;
}

/* ---- the summary (SPEC §4) ----
 * Each lot's entry is dumped on its own, so that pages can be cut between entries by their
 * lengths; joined, they read exactly as one json_dumps of the whole document would. */

#define OUT_FRAME_MAX 192           /* a page's text around its lots: ts, totals, page numbers */

typedef struct out_summary {
    char **entries;                 /* one JSON object per lot */
    size_t *lens;
    size_t n;
    int64_t free_total, cap_total;  /* over the lots with data */
    char ts[48];                    /* the newest lot time as a JSON string, or null */
} out_summary;

/* The summary's share of SPEC §10: "unknown" for lots that count unknown bays, and the
 * categories' capacity and free (a map screen shows the free disabled or charging bays). Zones
 * stay in the lot's availability: with up to CFG_MAX_ZONES per lot they would make the one
 * message a map reads many times larger. -1 on out of memory. */
static int out_summary_groups(json_t *o, const lot *l)
{
    if (lot_tracks_unknown(l) &&
        json_object_set_new(o, "unknown", l->has_data ? json_integer(l->unknown) : json_null()))
        return -1;
    if (!l->groups->cats_set)
        return 0;
    json_t *cats = json_object();
    if (!cats || json_object_set_new(o, "categories", cats))
        return -1;
    for (int c = 0; c < CFG_N_CATEGORIES; c++) {
        if (!((l->groups->cats_set >> c) & 1u))
            continue;
        const lot_group *g = &l->cats[c];
        json_t *e = json_pack("{s:I, s:o}", "capacity", (json_int_t)g->capacity, "free",
                              l->has_data ? json_integer(lot_group_free(g)) : json_null());
        if (!e || json_object_set_new(cats, cfg_category_name((enum cfg_category)c), e))
            return -1;
    }
    return 0;
}

/* L's summary entry, malloc'd; NULL on out of memory in jansson (or a name that is not UTF-8,
 * which the YAML parser already refuses). */
static char *out_summary_entry(const lot *l)
{
    json_t *o = json_pack("{s:s, s:s, s:o, s:I, s:s, s:b, s:o, s:o}", "lot", l->id,
                          "name", l->name,
                          "free", l->has_data ? json_integer(lot_free_spaces(l)) : json_null(),
                          "capacity", (json_int_t)l->capacity,
                          "status", lot_status_name(l->status), "stale", (int)l->stale,
                          "lat", l->has_position ? json_real(l->lat) : json_null(),
                          "lon", l->has_position ? json_real(l->lon) : json_null());
    if (!o || out_summary_groups(o, l) < 0) {
        json_decref(o);
        return NULL;
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    return text;
}

static void out_summary_free(out_summary *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->entries[i]);
    free(s->entries);
    free(s->lens);
}

/* Every lot's entry and the totals; -1 on out of memory in jansson. */
static int out_summary_collect(out_summary *s, lot *const *lots, size_t n)
{
    *s = (out_summary){ .entries = util_xcalloc(n + 1, sizeof *s->entries),
                        .lens = util_xcalloc(n + 1, sizeof *s->lens) };
    int64_t newest = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        const lot *l = lots[i];
        if (!(s->entries[i] = out_summary_entry(l))) {
            out_summary_free(s);
            return -1;
        }
        s->lens[i] = strlen(s->entries[i]);
        s->n++;
        if (l->has_data) {
            s->free_total += lot_free_spaces(l);
            s->cap_total += l->capacity;
            if (l->ts_ms > newest)
                newest = l->ts_ms;
        }
    }
    if (newest == INT64_MIN) {
        snprintf(s->ts, sizeof s->ts, "null");
    } else {
        s->ts[0] = '"';
        size_t k = pl_format_time(newest, s->ts + 1, sizeof s->ts - 2);
        memcpy(s->ts + 1 + k, "\"", 2);
    }
    return 0;
}

/* The text of page K of PAGES before and after its lots; returns their total length, or 0 if
 * they did not fit OUT_FRAME_MAX (cannot happen: a ts and four numbers). Page 1 keeps the
 * unsplit summary's order, with "pages" added at the end. */
static size_t out_page_frame(const out_summary *s, size_t k, size_t pages,
                             char head[OUT_FRAME_MAX], char tail[OUT_FRAME_MAX])
{
    int h, t;
    if (k == 1) {
        h = snprintf(head, OUT_FRAME_MAX, "{\"ts\":%s,\"lots\":[", s->ts);
        t = snprintf(tail, OUT_FRAME_MAX, "],\"free\":%" PRId64 ",\"capacity\":%" PRId64
                     ",\"pages\":%zu}", s->free_total, s->cap_total, pages);
    } else {
        h = snprintf(head, OUT_FRAME_MAX, "{\"ts\":%s,\"page\":%zu,\"pages\":%zu,\"lots\":[",
                     s->ts, k, pages);
        t = snprintf(tail, OUT_FRAME_MAX, "]}");
    }
    if (h < 0 || t < 0 || h >= OUT_FRAME_MAX || t >= OUT_FRAME_MAX)
        return 0;
    return (size_t)h + (size_t)t;
}

/* Room for lots on page 1 (FIRST) or a later page, with the page numbers at their widest (the
 * count is not known yet); 0 if the frame alone fills MAX_BYTES. */
static size_t out_page_room(const out_summary *s, bool first, size_t max_bytes)
{
    char head[OUT_FRAME_MAX], tail[OUT_FRAME_MAX];
    size_t frame = out_page_frame(s, first ? 1 : SIZE_MAX, SIZE_MAX, head, tail);
    return frame && frame < max_bytes ? max_bytes - frame : 0;
}

/* Cuts the entries into pages greedily: (*STARTS)[k] is the first entry of page k + 1
 * (malloc'd). Returns the number of pages, 0 when an entry alone does not fit a page. */
static size_t out_summary_cut(const out_summary *s, size_t max_bytes, size_t **starts)
{
    size_t pages = 0, cap = 0, i = 0;
    *starts = NULL;
    do {
        size_t room = out_page_room(s, pages == 0, max_bytes), used = 0, first = i;
        for (; i < s->n && used + (i > first) + s->lens[i] <= room; i++)
            used += (i > first) + s->lens[i];
        if (i == first && i < s->n) {
            free(*starts);
            *starts = NULL;
            return 0;
        }
        util_grow((void **)starts, &cap, pages + 1, sizeof **starts);
        (*starts)[pages++] = first;
    } while (i < s->n);
    return pages;
}

/* Page K of PAGES: its frame around entries [FROM, TO), malloc'd. */
static char *out_page_text(const out_summary *s, size_t k, size_t pages, size_t from, size_t to)
{
    char head[OUT_FRAME_MAX], tail[OUT_FRAME_MAX];
    size_t len = out_page_frame(s, k, pages, head, tail);
    for (size_t i = from; i < to; i++)
        len += s->lens[i] + (i > from);
    char *text = util_xmalloc(len + 1), *w = text;
    w = stpcpy(w, head);
    for (size_t i = from; i < to; i++) {
        if (i > from)
            *w++ = ',';
        memcpy(w, s->entries[i], s->lens[i]);
        w += s->lens[i];
    }
    stpcpy(w, tail);
    return text;
}

char **out_format_summary_pages(lot *const *lots, size_t n, size_t max_bytes, size_t *n_pages)
{
    out_summary s;
    *n_pages = 0;
    if (out_summary_collect(&s, lots, n) < 0)
        return NULL;
    size_t *starts;
    size_t pages = out_summary_cut(&s, max_bytes, &starts);
    char **out = NULL;
    if (pages) {
        out = util_xcalloc(pages, sizeof *out);
        for (size_t k = 0; k < pages; k++)
            out[k] = out_page_text(&s, k + 1, pages, starts[k], k + 1 < pages ? starts[k + 1] : s.n);
        *n_pages = pages;
    }
    free(starts);
    out_summary_free(&s);
    return out;
}

void out_free_pages(char **pages, size_t n)
{
    for (size_t i = 0; pages && i < n; i++)
        free(pages[i]);
    free(pages);
}

int out_publish_lot(mq_client *mq, const cfg_config *cfg, const char *lot_id, const char *kind,
                    const char *json, size_t len)
{
    char topic[OUT_TOPIC_MAX];
    int n = snprintf(topic, sizeof topic, "%s/%s/%s", cfg->mqtt.output_prefix, lot_id, kind);
    if (n < 0 || (size_t)n >= sizeof topic)
        return -EIO;
    return mq ? mq_publish(mq, topic, json, len) : -ENOTCONN;
}

/* Page 1 on <out>/summary, page K > 1 on <out>/summary/<K>; an empty JSON clears a page. */
int out_publish_summary_page(mq_client *mq, const cfg_config *cfg, size_t k, const char *json)
{
    char topic[OUT_TOPIC_MAX];
    int n = k == 1 ? snprintf(topic, sizeof topic, "%s/summary", cfg->mqtt.output_prefix)
                   : snprintf(topic, sizeof topic, "%s/summary/%zu", cfg->mqtt.output_prefix, k);
    if (n < 0 || (size_t)n >= sizeof topic)
        return -EIO;
    return mq ? mq_publish(mq, topic, json, strlen(json)) : -ENOTCONN;
}
