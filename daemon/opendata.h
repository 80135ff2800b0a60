/* opendata: the read-only HTTP API's answers (SPEC §8) as JSON text, from an immutable
 * snapshot of the lots (od_snapshot): NGSI-LD entities (FIWARE Smart Data Models
 * OffStreetParking, ParkingSpot, ParkingGroup) and ParkAPI v3 parking sites.
 *
 * Pure: no I/O, no loop, no locks. The loop builds a snapshot (od_snapshot_build, which copies
 * everything it needs out of the lots), hands it to the HTTP threads, and each request formats
 * its answer from it alone; a snapshot is shared by reference count (od_snapshot_ref/unref are
 * the only calls safe from any thread on a shared snapshot besides the const formatters). */
#ifndef PARKD_OPENDATA_H
#define PARKD_OPENDATA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forecast.h"
#include "lot.h"

#define OD_LIMIT_DEFAULT 20
#define OD_LIMIT_MAX 1000
#define OD_ID_PATTERN_MAX 256       /* bytes of idPattern: regcomp's cost stays small */

/* The JSON-LD contexts: the Smart Data Models one and the NGSI-LD core. */
#define OD_CONTEXT_SDM \
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
#define OD_CONTEXT_CORE "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"

enum od_bay_state { OD_BAY_FREE, OD_BAY_OCCUPIED, OD_BAY_UNKNOWN };

typedef struct od_bay {
    char *id;
    enum od_bay_state state;
} od_bay;

/* A zone (SPEC §10) as the API shows it. Its id and name are held inline (both bounded: a
 * SPEC §2 id, CFG_ZONE_NAME_MAX) so copying a lot's zones costs one allocation, not two
 * string copies per zone, on the loop each snapshot. */
typedef struct od_zone {
    char id[PL_ID_MAX + 1];
    char name[CFG_ZONE_NAME_MAX + 1];
    int64_t capacity, occupied, free_spaces, unknown;
    enum lot_status status;
} od_zone;

/* A configured category's counts (its name is cfg_category_name(cat), a static string). */
typedef struct od_cat {
    enum cfg_category cat;
    int64_t capacity, occupied, free_spaces;
} od_cat;

/* A lot's forecast, sized to its horizons (fc_forecast holds room for CFG_MAX_HORIZONS). */
typedef struct od_forecast {
    int64_t ts_ms;
    bool has_full_at;
    int64_t full_at_ms;
    size_t n;
    fc_horizon_forecast h[];
} od_forecast;

/* One lot as the API shows it: copies, owned by the snapshot. */
typedef struct od_lot {
    char *id, *name;
    int64_t capacity, occupied;
    int64_t free_spaces;            /* lot_free_spaces: unknown bays are not free */
    double occupancy;
    enum lot_status status;
    bool has_data, stale, has_position;
    double lat, lon;
    int64_t ts_ms;                  /* the lot's event time */
    enum cfg_source source;
    od_bay *bays;                   /* source bays only, sorted by id */
    size_t n_bays;
    od_zone *zones;                 /* in configuration order; NULL when none */
    size_t n_zones;
    od_cat cats[CFG_N_CATEGORIES];  /* the configured ones, in SPEC §10 order */
    size_t n_cats;
    bool tracks_unknown;            /* lot_tracks_unknown: zones' unknown is meaningful */
    od_forecast *forecast;          /* NULL: none (no data yet) */
} od_lot;

typedef struct od_snapshot {
    atomic_int refs;
    od_lot *lots;                   /* configuration order */
    size_t n_lots;
} od_snapshot;

/* Forecasts computed per snapshot at most (about 11 µs each): beyond, a changed lot keeps its
 * previous forecast (or, in a first snapshot, has none) until a later snapshot, so a snapshot
 * costs the loop a bounded time: with 20,000 lots every forecast is there within 20 s. */
#define OD_FORECASTS_PER_BUILD 1000

/* A snapshot of LOTS[0..N) (their current state, and each one's forecast from FC; FC NULL:
 * none), with one reference. Computing a forecast is most of the cost, so a lot whose event
 * time, occupied and capacity equal its entry in PREV (the previous snapshot, or NULL) keeps
 * PREV's forecast, as do changed lots past OD_FORECASTS_PER_BUILD: pass PREV NULL after
 * anything else that changes forecasts (a reload's horizons). Loop thread only (it reads the
 * lots and the forecaster). Never NULL. */
od_snapshot *od_snapshot_build(lot *const *lots, size_t n, fc_engine *fc,
                               const od_snapshot *prev);

/* Takes one more reference / drops one; the last drop frees. Any thread; NULL is fine. */
od_snapshot *od_snapshot_ref(od_snapshot *s);
void od_snapshot_unref(od_snapshot *s);

/* An answer: status, a malloc'd body (caller frees), its content type (static), and an
 * optional malloc'd Link header value (caller frees). */
typedef struct od_reply {
    unsigned status;
    char *body;
    size_t len;
    const char *content_type;
    char *link;
} od_reply;

/* A query of GET /ngsi-ld/v1/entities; NULL members were not given. */
typedef struct od_query {
    const char *type, *options, *id_pattern, *limit, *offset;
    bool ld_json;                   /* Accept: application/ld+json: @context inline */
} od_query;

/* GET /ngsi-ld/v1/entities?Q: 200 with a JSON array (and a Link rel="next" when more follow,
 * pointing at PATH with the same query and the next offset), or 400 BadRequestData. */
void od_entities(const od_snapshot *s, const od_query *q, const char *path, od_reply *r);

/* GET /ngsi-ld/v1/entities/ID: 200 or 404 ResourceNotFound. Q's type/limit/offset are
 * ignored; options and ld_json apply. */
void od_entity(const od_snapshot *s, const char *id, const od_query *q, od_reply *r);

/* GET /api/public/v3/parking-sites and .../parking-sites/LOT (LOT NULL: the list). */
void od_parkapi(const od_snapshot *s, const char *lot, od_reply *r);

/* An NGSI-LD ProblemDetails answer; TYPE the last part of the error URI ("ResourceNotFound",
 * "BadRequestData", "MethodNotAllowed", ...). */
void od_problem(unsigned status, const char *type, const char *title, const char *detail,
                od_reply *r);

void od_reply_free(od_reply *r);

/* The map page's GET /config.json: {"mqtt_ws_url","tile_url","output_prefix"} (nulls when
 * unset), malloc'd (caller frees). */
char *od_config_json(const cfg_config *cfg);

#endif
