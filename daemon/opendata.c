/* opendata: NGSI-LD and ParkAPI answers from an immutable snapshot.
 *
 * Answers are built as jansson trees and dumped compact: jansson escapes every string, so a
 * lot name can never break the JSON. A listing walks all candidates once (the snapshot is
 * small: at most limits.max_lots lots and their bays), filtering by type and idPattern, and
 * keeps only the page asked for; counting the rest is what tells whether a next page exists. */
#include "opendata.h"

#include <errno.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "map.h"
#include "payload.h"
#include "util.h"

#define OD_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))
#define OD_ERRORS "https://uri.etsi.org/ngsi-ld/errors/"
#define OD_URN "urn:ngsi-ld:"

/* ---- the snapshot ---- */

static void od_collect_bay(void *ctx, void *value)
{
    od_lot *l = ctx;
    const lot_bay *b = value;
    enum od_bay_state state = b->occupied ? OD_BAY_OCCUPIED : OD_BAY_FREE;
    l->bays[l->n_bays++] = (od_bay){ util_xstrdup(b->id), b->unknown ? OD_BAY_UNKNOWN : state };
}

static int od_bay_cmp(const void *a, const void *b)
{
    return strcmp(((const od_bay *)a)->id, ((const od_bay *)b)->id);
}

static od_forecast *od_forecast_copy(const od_forecast *f)
{
    size_t size = sizeof *f + f->n * sizeof f->h[0];
    od_forecast *c = util_xmalloc(size);
    memcpy(c, f, size);
    return c;
}

static od_forecast *od_forecast_of(lot *l, fc_engine *fc)
{
    fc_forecast f;
    if (!fc || !fc_forecast_lot(fc, l, &f))
        return NULL;
    od_forecast *o = util_xmalloc(sizeof *o + f.n * sizeof o->h[0]);
    *o = (od_forecast){ .ts_ms = f.ts_ms, .has_full_at = f.has_full_at,
                        .full_at_ms = f.full_at_ms, .n = f.n };
    memcpy(o->h, f.h, f.n * sizeof o->h[0]);
    return o;
}

/* PREV's forecast for L when L has not changed since (NULL: compute it); free too, since a
 * bay turning unknown changes it without an event. */
static const od_forecast *od_unchanged(const od_lot *prev, const lot *l)
{
    if (!prev || !prev->forecast || strcmp(prev->id, l->id) != 0 || !l->has_data ||
        prev->ts_ms != l->ts_ms || prev->occupied != l->occupied ||
        prev->free_spaces != lot_free_spaces(l) || prev->capacity != l->capacity)
        return NULL;
    return prev->forecast;
}

/* L's forecast: PREV's when L has not changed, a new one while *BUDGET lasts, else PREV's
 * (possibly none) until a later snapshot has budget for it. */
static od_forecast *od_lot_forecast(lot *l, fc_engine *fc, const od_lot *prev, size_t *budget)
{
    const od_forecast *same = od_unchanged(prev, l);
    if (same)
        return od_forecast_copy(same);
    if (*budget) {
        (*budget)--;
        return od_forecast_of(l, fc);
    }
    bool mine = prev && prev->forecast && !strcmp(prev->id, l->id);
    return mine ? od_forecast_copy(prev->forecast) : NULL;
}

/* L's zones into one array and its configured categories inline: one allocation per lot with
 * zones, at most CFG_MAX_ZONES fixed-size copies, no per-zone strings to free. */
static void od_copy_groups(od_lot *o, const lot *l)
{
    const zn_resolver *r = l->groups;
    if (r && r->n_zones > 0) {
        o->zones = util_xcalloc((size_t)r->n_zones, sizeof *o->zones);
        for (int z = 0; z < r->n_zones; z++) {
            const lot_group *g = &l->zones[z];
            od_zone *d = &o->zones[o->n_zones++];
            *d = (od_zone){ .capacity = g->capacity, .occupied = lot_group_occupied(g),
                            .free_spaces = lot_group_free(g), .unknown = g->unknown,
                            .status = g->status };
            snprintf(d->id, sizeof d->id, "%s", r->zones[z].id);
            snprintf(d->name, sizeof d->name, "%s", r->zones[z].name ? r->zones[z].name
                                                                       : r->zones[z].id);
        }
    }
    for (int c = 0; r && c < CFG_N_CATEGORIES; c++) {
        if (!((r->cats_set >> c) & 1u))
            continue;
        const lot_group *g = &l->cats[c];
        o->cats[o->n_cats++] = (od_cat){ .cat = (enum cfg_category)c, .capacity = g->capacity,
                                         .occupied = lot_group_occupied(g),
                                         .free_spaces = lot_group_free(g) };
    }
    o->tracks_unknown = lot_tracks_unknown(l);
}

static void od_copy_lot(od_lot *o, lot *l, fc_engine *fc, const od_lot *prev, size_t *budget)
{
    *o = (od_lot){ .id = util_xstrdup(l->id), .name = util_xstrdup(l->name ? l->name : l->id),
                   .capacity = l->capacity, .occupied = l->occupied,
                   .free_spaces = lot_free_spaces(l),
                   .occupancy = lot_occupancy(l), .status = l->status,
                   .has_data = l->has_data, .stale = l->stale,
                   .has_position = l->has_position, .lat = l->lat, .lon = l->lon,
                   .ts_ms = l->ts_ms, .source = l->source };
    if (l->source == CFG_SOURCE_BAYS && l->bays && map_size(l->bays)) {
        o->bays = util_xcalloc(map_size(l->bays), sizeof *o->bays);
        map_foreach(l->bays, od_collect_bay, o);
        qsort(o->bays, o->n_bays, sizeof *o->bays, od_bay_cmp);
    }
    od_copy_groups(o, l);
    o->forecast = od_lot_forecast(l, fc, prev, budget);
}

od_snapshot *od_snapshot_build(lot *const *lots, size_t n, fc_engine *fc,
                               const od_snapshot *prev)
{
    od_snapshot *s = util_xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->lots = util_xcalloc(n ? n : 1, sizeof *s->lots);
    size_t budget = OD_FORECASTS_PER_BUILD;
    for (size_t i = 0; i < n; i++)
        od_copy_lot(&s->lots[i], lots[i], fc, prev && i < prev->n_lots ? &prev->lots[i] : NULL,
                    &budget);
    s->n_lots = n;
    return s;
}

od_snapshot *od_snapshot_ref(od_snapshot *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void od_snapshot_unref(od_snapshot *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n_lots; i++) {
        od_lot *l = &s->lots[i];
        for (size_t b = 0; b < l->n_bays; b++)
            free(l->bays[b].id);
        free(l->bays);
        free(l->zones);
        free(l->forecast);
        free(l->id);
        free(l->name);
    }
    free(s->lots);
    free(s);
}

void od_reply_free(od_reply *r)
{
    free(r->body);
    free(r->link);
    r->body = r->link = NULL;
}

/* ---- JSON helpers ---- */

static json_t *od_time(int64_t ts_ms)
{
    char buf[40];
    pl_format_time(ts_ms, buf, sizeof buf);
    return json_string(buf);
}

/* Sets R to TREE dumped (TREE is consumed). */
static void od_set_json(od_reply *r, unsigned status, json_t *tree, const char *type)
{
    r->status = status;
    r->content_type = type;
    r->body = json_dumps(tree, OD_JSON_FLAGS);
    json_decref(tree);
    if (!r->body)
        abort();        /* jansson fails only on out of memory here */
    r->len = strlen(r->body);
}

void od_problem(unsigned status, const char *type, const char *title, const char *detail,
                od_reply *r)
{
    char uri[128];
    *r = (od_reply){ 0 };
    snprintf(uri, sizeof uri, OD_ERRORS "%s", type);
    json_t *p = json_pack("{s:s, s:s, s:i}", "type", uri, "title", title, "status", (int)status);
    if (detail)
        json_object_set_new(p, "detail", json_string(detail));
    od_set_json(r, status, p, "application/json");
}

static json_t *od_context(void)
{
    return json_pack("[s,s]", OD_CONTEXT_SDM, OD_CONTEXT_CORE);
}

/* ---- entities ---- */

enum od_type { OD_T_PARKING, OD_T_SPOT, OD_T_GROUP, OD_T_NONE };

static const char *const od_type_names[] = {
    [OD_T_PARKING] = "OffStreetParking", [OD_T_SPOT] = "ParkingSpot", [OD_T_GROUP] = "ParkingGroup",
};

static enum od_type od_type_parse(const char *s, size_t len)
{
    for (int t = 0; t < OD_T_NONE; t++)
        if (strlen(od_type_names[t]) == len && !strncmp(s, od_type_names[t], len))
            return (enum od_type)t;
    return OD_T_NONE;
}

/* How one entity is written: key-values or normalized, with or without @context. */
typedef struct od_form {
    bool key_values, ld_json;
    const char *observed;       /* the lot's event time, for observedAt; NULL: none */
} od_form;

/* Adds attribute NAME = VALUE (consumed) in F's form; DYNAMIC ones carry observedAt. */
static void od_attr(json_t *e, const od_form *f, const char *name, json_t *value, bool dynamic)
{
    if (f->key_values) {
        json_object_set_new(e, name, value);
        return;
    }
    json_t *p = json_pack("{s:s, s:o}", "type", "Property", "value", value);
    if (dynamic && f->observed)
        json_object_set_new(p, "observedAt", json_string(f->observed));
    json_object_set_new(e, name, p);
}

static void od_location(json_t *e, const od_form *f, const od_lot *l)
{
    json_t *point = json_pack("{s:s, s:[f,f]}", "type", "Point", "coordinates", l->lon, l->lat);
    if (f->key_values)
        json_object_set_new(e, "location", point);
    else
        json_object_set_new(e, "location",
                            json_pack("{s:s, s:o}", "type", "GeoProperty", "value", point));
}

static void od_date_modified(json_t *e, const od_form *f, const od_lot *l)
{
    if (!l->has_data)
        return;
    if (f->key_values)
        json_object_set_new(e, "dateModified", od_time(l->ts_ms));
    else
        json_object_set_new(e, "dateModified",
                            json_pack("{s:s, s:{s:s, s:o}}", "type", "Property", "value",
                                      "@type", "DateTime", "@value", od_time(l->ts_ms)));
}

static json_t *od_entity_start(const char *id, enum od_type t, const od_form *f)
{
    json_t *e = json_pack("{s:s, s:s}", "id", id, "type", od_type_names[t]);
    (void)f;
    return e;
}

static void od_entity_end(json_t *e, const od_form *f)
{
    if (f->ld_json)
        json_object_set_new(e, "@context", od_context());
}

/* The status of a lot with data, as DATEX II / the schema name it. */
static const char *od_parking_status(const od_lot *l)
{
    switch (l->status) {
    case LOT_STATUS_OPEN: return "spacesAvailable";
    case LOT_STATUS_ALMOST_FULL: return "almostFull";
    case LOT_STATUS_FULL: return "full";
    case LOT_STATUS_CLOSED: return "closed";
    default: return NULL;
    }
}

/* The forecast extension: what <out>/<lot>/forecast carries, without the lot. */
static json_t *od_forecast_json(const od_forecast *fc)
{
    json_t *hs = json_array();
    for (size_t i = 0; i < fc->n; i++) {
        const fc_horizon_forecast *h = &fc->h[i];
        json_t *o = json_pack("{s:I, s:o, s:f, s:f, s:f}", "minutes", (json_int_t)h->minutes,
                              "ts", od_time(h->ts_ms), "free", h->free, "low", h->low,
                              "high", h->high);
        json_object_set_new(o, "mae", h->has_mae ? json_real(h->mae) : json_null());
        json_array_append_new(hs, o);
    }
    return json_pack("{s:o, s:o, s:o}", "ts", od_time(fc->ts_ms), "horizons", hs, "full_at",
                     fc->has_full_at ? od_time(fc->full_at_ms) : json_null());
}

static json_t *od_parking_entity(const od_lot *l, const char *id, const od_form *f)
{
    json_t *e = od_entity_start(id, OD_T_PARKING, f);
    od_attr(e, f, "name", json_string(l->name), false);
    od_location(e, f, l);
    od_attr(e, f, "totalSpotNumber", json_integer(l->capacity), false);
    if (l->has_data) {
        od_attr(e, f, "availableSpotNumber", json_integer(l->free_spaces), true);
        od_attr(e, f, "occupiedSpotNumber", json_integer(l->occupied), true);
        od_attr(e, f, "occupancy", json_real(l->occupancy), true);
        const char *st = od_parking_status(l);
        if (st)
            od_attr(e, f, "status", json_pack("[s]", st), true);
        od_date_modified(e, f, l);
    }
    if (l->forecast)
        od_attr(e, f, "forecast", od_forecast_json(l->forecast), true);
    od_entity_end(e, f);
    return e;
}

/* refParkingSite: the lot's OffStreetParking urn, a Relationship when normalized. */
static void od_ref_site(json_t *e, const od_form *f, const od_lot *l)
{
    char site[128];
    snprintf(site, sizeof site, OD_URN "OffStreetParking:%s", l->id);
    if (f->key_values)
        json_object_set_new(e, "refParkingSite", json_string(site));
    else
        json_object_set_new(e, "refParkingSite",
                            json_pack("{s:s, s:s}", "type", "Relationship", "object", site));
}

static const char *od_bay_state_name(enum od_bay_state s)
{
    return s == OD_BAY_FREE ? "free" : s == OD_BAY_OCCUPIED ? "occupied" : "unknown";
}

static json_t *od_spot_entity(const od_lot *l, const od_bay *b, const char *id, const od_form *f)
{
    json_t *e = od_entity_start(id, OD_T_SPOT, f);
    od_location(e, f, l);
    /* a stale lot's bays may have changed since: their state is not known any more */
    od_attr(e, f, "status", json_string(od_bay_state_name(l->stale ? OD_BAY_UNKNOWN : b->state)),
            true);
    od_attr(e, f, "category", json_pack("[s]", "offStreet"), false);
    od_ref_site(e, f, l);
    od_date_modified(e, f, l);
    od_entity_end(e, f);
    return e;
}

/* A zone as a ParkingGroup. Only what its schema defines, and occupiedSpotNumber (not in the
 * ParkingGroup schema, which does not forbid it: the same attribute as OffStreetParking's, so a
 * client reads zones and lots alike). Left out: status (the schema has none for groups; the
 * zone's status stays in the MQTT availability), allowedVehicleType (a zone is an area, not a
 * vehicle type), unknown (availableSpotNumber already leaves unknown bays out).
 * category ["offStreet"]: a zone is a level or an area of an off-street car park, and the
 * schema's offStreet/onStreet pair says where the group lies, as ParkingSpot's does here;
 * "completeFloor" would claim a whole storey, which an area is not. */
static json_t *od_group_entity(const od_lot *l, const od_zone *z, const char *id,
                               const od_form *f)
{
    json_t *e = od_entity_start(id, OD_T_GROUP, f);
    od_attr(e, f, "name", json_string(z->name), false);
    od_location(e, f, l);
    od_attr(e, f, "category", json_pack("[s]", "offStreet"), false);
    od_ref_site(e, f, l);
    od_attr(e, f, "totalSpotNumber", json_integer(z->capacity), false);
    if (l->has_data) {
        od_attr(e, f, "availableSpotNumber", json_integer(z->free_spaces), true);
        od_attr(e, f, "occupiedSpotNumber", json_integer(z->occupied), true);
        od_date_modified(e, f, l);
    }
    od_entity_end(e, f);
    return e;
}

/* Walks every entity of type T (in a stable order) and calls FN for each with K, the index of
 * its bay (ParkingSpot) or zone (ParkingGroup) in L (0 for OffStreetParking); FN returns false
 * to stop. Lots without a position are not entities: NGSI-LD requires a location, and a
 * ParkingGroup has only its lot's. */
typedef bool (*od_visit_fn)(void *ctx, const od_lot *l, size_t k, const char *id);

static void od_walk(const od_snapshot *s, enum od_type t, od_visit_fn fn, void *ctx)
{
    char id[192];
    for (size_t i = 0; i < s->n_lots; i++) {
        const od_lot *l = &s->lots[i];
        if (!l->has_position)
            continue;
        if (t == OD_T_PARKING) {
            snprintf(id, sizeof id, OD_URN "OffStreetParking:%s", l->id);
            if (!fn(ctx, l, 0, id))
                return;
        } else if (t == OD_T_SPOT) {
            for (size_t b = 0; b < l->n_bays; b++) {
                snprintf(id, sizeof id, OD_URN "ParkingSpot:%s:%s", l->id, l->bays[b].id);
                if (!fn(ctx, l, b, id))
                    return;
            }
        } else {
            for (size_t z = 0; z < l->n_zones; z++) {
                snprintf(id, sizeof id, OD_URN "ParkingGroup:%s:%s", l->id, l->zones[z].id);
                if (!fn(ctx, l, z, id))
                    return;
            }
        }
    }
}

/* Entity K of lot L of type T: K indexes L's bays (ParkingSpot) or zones (ParkingGroup). */
static json_t *od_build(enum od_type t, const od_lot *l, size_t k, const char *id,
                        const od_form *base)
{
    char observed[40];
    od_form f = *base;
    f.observed = NULL;
    if (l->has_data) {
        pl_format_time(l->ts_ms, observed, sizeof observed);
        f.observed = observed;
    }
    if (t == OD_T_SPOT)
        return od_spot_entity(l, &l->bays[k], id, &f);
    if (t == OD_T_GROUP)
        return od_group_entity(l, &l->zones[k], id, &f);
    return od_parking_entity(l, id, &f);
}

typedef struct od_list {
    enum od_type type;
    const regex_t *pattern;         /* NULL: every id */
    od_form form;
    uint64_t offset, limit, matched;
    json_t *items;
} od_list;

static bool od_list_visit(void *ctx, const od_lot *l, size_t item, const char *id)
{
    od_list *ls = ctx;
    if (ls->pattern && regexec(ls->pattern, id, 0, NULL, 0) != 0)
        return true;
    uint64_t k = ls->matched++;
    if (k >= ls->offset && k < ls->offset + ls->limit)
        json_array_append_new(ls->items, od_build(ls->type, l, item, id, &ls->form));
    return k < ls->offset + ls->limit;      /* one past the page says there is a next */
}

/* A non-negative decimal integer of at most 9 digits. */
static int od_parse_count(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 9 || strspn(s, "0123456789") != n)
        return -1;
    *out = strtoull(s, NULL, 10);
    return 0;
}

static bool od_has_option(const char *options, const char *want)
{
    size_t n = strlen(want);
    for (const char *p = options; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && !strncmp(p, want, n))
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* Appends NAME=VALUE, percent-encoding VALUE, to the Link URL in B. */
static void od_query_param(char **b, size_t *len, size_t *cap, const char *name, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    util_grow((void **)b, cap, *len + strlen(name) + 3 * strlen(v) + 3, 1);
    *len += (size_t)sprintf(*b + *len, "%s%s=", *len && (*b)[*len - 1] != '?' ? "&" : "", name);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~:", *p)) {
            (*b)[(*len)++] = (char)*p;
        } else {
            (*b)[(*len)++] = '%';
            (*b)[(*len)++] = hex[*p >> 4];
            (*b)[(*len)++] = hex[*p & 15];
        }
    }
    (*b)[*len] = '\0';
}

static char *od_next_link(const char *path, const od_query *q, uint64_t limit, uint64_t next)
{
    size_t len = 0, cap = 0;
    char *b = NULL;
    char num[2][24];
    snprintf(num[0], sizeof num[0], "%" PRIu64, limit);
    snprintf(num[1], sizeof num[1], "%" PRIu64, next);
    util_grow((void **)&b, &cap, strlen(path) + 4, 1);
    len = (size_t)sprintf(b, "<%s?", path);
    od_query_param(&b, &len, &cap, "type", q->type);
    if (q->options)
        od_query_param(&b, &len, &cap, "options", q->options);
    if (q->id_pattern)
        od_query_param(&b, &len, &cap, "idPattern", q->id_pattern);
    od_query_param(&b, &len, &cap, "limit", num[0]);
    od_query_param(&b, &len, &cap, "offset", num[1]);
    util_grow((void **)&b, &cap, len + 16, 1);
    strcpy(b + len, ">; rel=\"next\"");
    return b;
}

static const char *od_content_type(bool ld_json)
{
    return ld_json ? "application/ld+json" : "application/json";
}

static char *od_context_link(void)
{
    return util_xstrdup("<" OD_CONTEXT_SDM ">; rel=\"http://www.w3.org/ns/json-ld#context\"; "
                        "type=\"application/ld+json\"");
}

/* Checks Q's limit, offset and type; 0, or -1 with R set to the 400. */
static int od_check_query(const od_query *q, od_list *ls, od_reply *r)
{
    ls->limit = OD_LIMIT_DEFAULT;
    ls->offset = 0;
    if (q->limit && (od_parse_count(q->limit, &ls->limit) < 0 || ls->limit < 1 ||
                     ls->limit > OD_LIMIT_MAX)) {
        od_problem(400, "BadRequestData", "Bad limit", "limit must be an integer in 1..1000", r);
        return -1;
    }
    if (q->offset && od_parse_count(q->offset, &ls->offset) < 0) {
        od_problem(400, "BadRequestData", "Bad offset", "offset must be a non-negative integer", r);
        return -1;
    }
    if (!q->type) {
        od_problem(400, "BadRequestData", "Missing type",
                   "type is required: OffStreetParking, ParkingSpot or ParkingGroup", r);
        return -1;
    }
    ls->type = od_type_parse(q->type, strlen(q->type));
    if (ls->type == OD_T_NONE) {
        od_problem(400, "BadRequestData", "Unknown type",
                   "type must be OffStreetParking, ParkingSpot or ParkingGroup", r);
        return -1;
    }
    return 0;
}

/* Compiles Q's idPattern into RE; 0 (*HAVE set when there is one), or -1 with R set. */
static int od_compile_pattern(const od_query *q, regex_t *re, bool *have, od_reply *r)
{
    *have = false;
    if (!q->id_pattern)
        return 0;
    if (strlen(q->id_pattern) > OD_ID_PATTERN_MAX || regcomp(re, q->id_pattern,
                                                             REG_EXTENDED | REG_NOSUB) != 0) {
        od_problem(400, "BadRequestData", "Bad idPattern",
                   "idPattern must be a POSIX extended regular expression of at most 256 bytes",
                   r);
        return -1;
    }
    *have = true;
    return 0;
}

void od_entities(const od_snapshot *s, const od_query *q, const char *path, od_reply *r)
{
    *r = (od_reply){ 0 };
    od_list ls = { 0 };
    if (od_check_query(q, &ls, r) < 0)
        return;
    regex_t re;
    bool have_re;
    if (od_compile_pattern(q, &re, &have_re, r) < 0)
        return;
    ls.pattern = have_re ? &re : NULL;
    ls.form = (od_form){ .key_values = od_has_option(q->options, "keyValues"),
                         .ld_json = q->ld_json };
    ls.items = json_array();
    od_walk(s, ls.type, od_list_visit, &ls);
    if (have_re)
        regfree(&re);
    od_set_json(r, 200, ls.items, od_content_type(q->ld_json));
    /* one Link header, its values comma-separated (RFC 8288): the context, then the next page */
    char *next = ls.matched > ls.offset + ls.limit
                     ? od_next_link(path, q, ls.limit, ls.offset + ls.limit) : NULL;
    char *ctx = q->ld_json ? NULL : od_context_link();
    if (next && ctx) {
        size_t n = strlen(ctx) + strlen(next) + 3;
        r->link = util_xmalloc(n);
        snprintf(r->link, n, "%s, %s", ctx, next);
        free(ctx);
        free(next);
    } else {
        r->link = next ? next : ctx;
    }
}

typedef struct od_find {
    const char *id;
    enum od_type type;
    od_form form;
    json_t *found;
} od_find;

static bool od_find_visit(void *ctx, const od_lot *l, size_t k, const char *id)
{
    od_find *f = ctx;
    if (strcmp(id, f->id) != 0)
        return true;
    f->found = od_build(f->type, l, k, id, &f->form);
    return false;
}

void od_entity(const od_snapshot *s, const char *id, const od_query *q, od_reply *r)
{
    *r = (od_reply){ 0 };
    od_find f = { .id = id, .type = OD_T_NONE,
                  .form = { .key_values = od_has_option(q->options, "keyValues"),
                            .ld_json = q->ld_json } };
    if (!strncmp(id, OD_URN, strlen(OD_URN))) {
        const char *t = id + strlen(OD_URN);
        f.type = od_type_parse(t, strcspn(t, ":"));
    }
    if (f.type != OD_T_NONE)
        od_walk(s, f.type, od_find_visit, &f);
    if (!f.found) {
        od_problem(404, "ResourceNotFound", "Entity not found", id, r);
        return;
    }
    od_set_json(r, 200, f.found, od_content_type(q->ld_json));
    if (!q->ld_json)
        r->link = od_context_link();
}

/* ---- ParkAPI v3 ---- */

/* ParkAPI v3's own name for a category where it differs from SPEC §10's (its ParkingSite
 * model has capacity_/realtime_free_capacity_ + disabled, woman, family, charging,
 * carsharing, truck, bus; none for motorcycles), else NULL. */
static const char *od_parkapi_alias(enum cfg_category c)
{
    switch (c) {
    case CFG_CAT_EV_CHARGING: return "charging";
    case CFG_CAT_WOMEN: return "woman";
    default: return NULL;
    }
}

/* Sets capacity_<NAME> = V, or realtime_free_capacity_<NAME> when REALTIME. */
static void od_site_cat_field(json_t *o, const char *name, bool realtime, int64_t v)
{
    char key[64];
    snprintf(key, sizeof key, "%s%s", realtime ? "realtime_free_capacity_" : "capacity_", name);
    json_object_set_new(o, key, json_integer(v));
}

/* Per configured category capacity_<cat> and, with REALTIME, realtime_free_capacity_<cat>, with
 * <cat> SPEC §10's name (SPEC §8); where ParkAPI names it otherwise (ev_charging, women) its
 * name too, so ParkAPI clients, which know only theirs, read those categories as well. */
static void od_site_cats(json_t *o, const od_lot *l, bool realtime)
{
    for (size_t i = 0; i < l->n_cats; i++) {
        const od_cat *c = &l->cats[i];
        const char *names[2] = { cfg_category_name(c->cat), od_parkapi_alias(c->cat) };
        for (int n = 0; n < 2 && names[n]; n++) {
            od_site_cat_field(o, names[n], false, c->capacity);
            if (realtime)
                od_site_cat_field(o, names[n], true, c->free_spaces);
        }
    }
}

static json_t *od_site(const od_lot *l)
{
    json_t *o = json_pack("{s:s, s:s, s:I}", "id", l->id, "name", l->name, "capacity",
                          (json_int_t)l->capacity);
    if (l->has_position) {
        json_object_set_new(o, "lat", json_real(l->lat));
        json_object_set_new(o, "lon", json_real(l->lon));
    }
    /* stale or never heard from: what parkd last knew is not real-time any more */
    bool realtime = l->has_data && !l->stale;
    json_object_set_new(o, "has_realtime_data", json_boolean(realtime));
    if (realtime) {
        json_object_set_new(o, "realtime_capacity", json_integer(l->capacity));
        json_object_set_new(o, "realtime_free_capacity", json_integer(l->free_spaces));
        const char *opening = l->status == LOT_STATUS_CLOSED ? "CLOSED" : "OPEN";
        json_object_set_new(o, "realtime_opening_status", json_string(opening));
        json_object_set_new(o, "realtime_data_updated_at", od_time(l->ts_ms));
    }
    od_site_cats(o, l, realtime);
    return o;
}

void od_parkapi(const od_snapshot *s, const char *lot_id, od_reply *r)
{
    *r = (od_reply){ 0 };
    if (!lot_id) {
        json_t *items = json_array();
        for (size_t i = 0; i < s->n_lots; i++)
            json_array_append_new(items, od_site(&s->lots[i]));
        od_set_json(r, 200, json_pack("{s:o}", "items", items), "application/json");
        return;
    }
    for (size_t i = 0; i < s->n_lots; i++) {
        if (!strcmp(s->lots[i].id, lot_id)) {
            od_set_json(r, 200, od_site(&s->lots[i]), "application/json");
            return;
        }
    }
    od_problem(404, "ResourceNotFound", "Parking site not found", lot_id, r);
}

char *od_config_json(const cfg_config *cfg)
{
    json_t *o = json_pack("{s:s?, s:s?, s:s}", "mqtt_ws_url", cfg->http.map_mqtt_ws_url,
                          "tile_url", cfg->http.map_tile_url, "output_prefix",
                          cfg->mqtt.output_prefix);
    char *text = json_dumps(o, OD_JSON_FLAGS);
    json_decref(o);
    if (!text)
        abort();
    return text;
}
