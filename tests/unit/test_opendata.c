/* Unit tests for opendata: the NGSI-LD and ParkAPI answers built from a snapshot. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "opendata.h"

#define TS 1475567982000        /* 2016-10-04T07:59:42Z */

static lot *make_lot(const char *id, enum cfg_source src, bool pos, int64_t occupied)
{
    cfg_lot c = { .id = (char *)id, .name = (char *)"Name \"q\"", .capacity = 10, .source = src,
                  .has_position = pos, .lat = 52.5, .lon = -1.9, .stale_after_ms = 3600000,
                  .almost_full = 0.9, .hysteresis = 0.05 };
    lot *l = lot_new(&c, 300000);
    l->has_data = true;
    l->occupied = occupied;
    l->ts_ms = TS;
    l->status = LOT_STATUS_OPEN;
    return l;
}

static void add_bay(lot *l, const char *bay, bool occupied)
{
    pl_topic t = { .kind = PL_KIND_BAY };
    strcpy(t.lot, l->id);
    strcpy(t.sensor, bay);
    pl_event ev = { .kind = PL_KIND_BAY, .has_ts = true, .ts_ms = TS, .occupied = occupied };
    lot_apply(l, &t, &ev, TS, 100);
}

/* Three lots: A (count, placed), B (bays b2 free, b1 occupied), C (no position). */
static od_snapshot *make_snapshot(void)
{
    lot *lots[3] = { make_lot("A", CFG_SOURCE_COUNT, true, 4),
                     make_lot("B", CFG_SOURCE_BAYS, true, 0), make_lot("C", CFG_SOURCE_COUNT,
                                                                       false, 1) };
    add_bay(lots[1], "b2", false);
    add_bay(lots[1], "b1", true);
    od_snapshot *s = od_snapshot_build(lots, 3, NULL, NULL);
    for (int i = 0; i < 3; i++)
        lot_free(lots[i]);      /* the snapshot holds copies */
    return s;
}

static json_t *body(const od_reply *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->len, 0, &e);
    if (!j)
        fail_msg("not JSON: %s: %s", e.text, r->body);
    return j;
}

static void test_key_values(void **state)
{
    od_snapshot *s = make_snapshot();
    od_query q = { .type = "OffStreetParking", .options = "keyValues" };
    od_reply r;
    od_entities(s, &q, "/e", &r);
    assert_int_equal(r.status, 200);
    json_t *a = body(&r);
    assert_int_equal(json_array_size(a), 2);        /* C has no position: left out */
    json_t *e = json_array_get(a, 0);
    assert_string_equal(json_string_value(json_object_get(e, "id")),
                        "urn:ngsi-ld:OffStreetParking:A");
    assert_string_equal(json_string_value(json_object_get(e, "name")), "Name \"q\"");
    assert_int_equal(json_integer_value(json_object_get(e, "availableSpotNumber")), 6);
    assert_int_equal(json_integer_value(json_object_get(e, "totalSpotNumber")), 10);
    assert_int_equal(json_integer_value(json_object_get(e, "occupiedSpotNumber")), 4);
    assert_string_equal(json_string_value(json_array_get(json_object_get(e, "status"), 0)),
                        "spacesAvailable");
    assert_string_equal(json_string_value(json_object_get(e, "dateModified")),
                        "2016-10-04T07:59:42Z");
    json_t *c = json_object_get(json_object_get(e, "location"), "coordinates");
    assert_true(json_real_value(json_array_get(c, 0)) == -1.9);   /* [lon, lat] */
    assert_true(json_real_value(json_array_get(c, 1)) == 52.5);
    assert_null(json_object_get(e, "@context"));
    assert_non_null(strstr(r.link, "json-ld#context"));
    json_decref(a);
    od_reply_free(&r);
    od_snapshot_unref(s);
}

static void test_normalized_and_ld(void **state)
{
    od_snapshot *s = make_snapshot();
    od_query q = { .ld_json = true };
    od_reply r;
    od_entity(s, "urn:ngsi-ld:OffStreetParking:A", &q, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/ld+json");
    assert_null(r.link);
    json_t *e = body(&r);
    json_t *av = json_object_get(e, "availableSpotNumber");
    assert_string_equal(json_string_value(json_object_get(av, "type")), "Property");
    assert_int_equal(json_integer_value(json_object_get(av, "value")), 6);
    assert_string_equal(json_string_value(json_object_get(av, "observedAt")),
                        "2016-10-04T07:59:42Z");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "location"), "type")),
                        "GeoProperty");
    assert_int_equal(json_array_size(json_object_get(e, "@context")), 2);
    json_decref(e);
    od_reply_free(&r);
    od_snapshot_unref(s);
}

static void test_spots(void **state)
{
    od_snapshot *s = make_snapshot();
    od_query q = { .type = "ParkingSpot", .options = "keyValues" };
    od_reply r;
    od_entities(s, &q, "/e", &r);
    json_t *a = body(&r);
    assert_int_equal(json_array_size(a), 2);
    json_t *b1 = json_array_get(a, 0);          /* sorted by bay id */
    assert_string_equal(json_string_value(json_object_get(b1, "id")),
                        "urn:ngsi-ld:ParkingSpot:B:b1");
    assert_string_equal(json_string_value(json_object_get(b1, "status")), "occupied");
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 1), "status")), "free");
    assert_string_equal(json_string_value(json_object_get(b1, "refParkingSite")),
                        "urn:ngsi-ld:OffStreetParking:B");
    json_decref(a);
    od_reply_free(&r);
    od_entity(s, "urn:ngsi-ld:ParkingSpot:B:b2", &q, &r);
    assert_int_equal(r.status, 200);
    od_reply_free(&r);
    od_entity(s, "urn:ngsi-ld:ParkingGroup:B:z", &q, &r);
    assert_int_equal(r.status, 404);
    od_reply_free(&r);
    od_snapshot_unref(s);
}

static void test_pages_and_errors(void **state)
{
    od_snapshot *s = make_snapshot();
    od_reply r;
    od_query q = { .type = "OffStreetParking", .limit = "1", .id_pattern = "^urn:.*[AB]$" };
    od_entities(s, &q, "/e", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(r.link);
    assert_non_null(strstr(r.link, "offset=1>; rel=\"next\""));
    assert_non_null(strstr(r.link, "idPattern=%5Eurn:.%2A%5BAB%5D%24"));
    od_reply_free(&r);
    q.offset = "1";
    od_entities(s, &q, "/e", &r);
    assert_true(!r.link || !strstr(r.link, "rel=\"next\""));
    od_reply_free(&r);

    static const char *const bad_limits[] = { "0", "1001", "-1", "x", "" };
    for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++) {
        od_query b = { .type = "OffStreetParking", .limit = bad_limits[i] };
        od_entities(s, &b, "/e", &r);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"));
        od_reply_free(&r);
    }
    od_query t = { .type = "Car" };
    od_entities(s, &t, "/e", &r);
    assert_int_equal(r.status, 400);
    od_reply_free(&r);
    od_query p = { .type = "OffStreetParking", .id_pattern = "(" };
    od_entities(s, &p, "/e", &r);
    assert_int_equal(r.status, 400);
    od_reply_free(&r);
    od_entity(s, "urn:ngsi-ld:OffStreetParking:C", &t, &r);   /* no position: no entity */
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "ResourceNotFound"));
    od_reply_free(&r);
    od_snapshot_unref(s);
}

static void test_parkapi(void **state)
{
    od_snapshot *s = make_snapshot();
    s->lots[1].status = LOT_STATUS_CLOSED;
    s->lots[2].stale = true;
    od_reply r;
    od_parkapi(s, NULL, &r);
    json_t *j = body(&r);
    json_t *items = json_object_get(j, "items");
    assert_int_equal(json_array_size(items), 3);
    json_t *a = json_array_get(items, 0), *c = json_array_get(items, 2);
    assert_int_equal(json_integer_value(json_object_get(a, "realtime_free_capacity")), 6);
    assert_string_equal(json_string_value(json_object_get(a, "realtime_opening_status")), "OPEN");
    json_t *b = json_array_get(items, 1);
    assert_string_equal(json_string_value(json_object_get(b, "realtime_opening_status")),
                        "CLOSED");
    assert_true(json_is_true(json_object_get(a, "has_realtime_data")));
    assert_true(json_is_false(json_object_get(c, "has_realtime_data")));
    assert_null(json_object_get(c, "realtime_free_capacity"));
    assert_null(json_object_get(c, "lat"));
    json_decref(j);
    od_reply_free(&r);
    od_parkapi(s, "nope", &r);
    assert_int_equal(r.status, 404);
    od_reply_free(&r);
    od_snapshot_unref(s);
}

/* Forecasts: present with data, kept from the previous snapshot while the lot is unchanged,
 * computed again when it changed, and at most OD_FORECASTS_PER_BUILD new ones per build. */
static void test_forecast_reuse(void **state)
{
    int64_t horizons[2] = { 15 * 60000, 30 * 60000 };
    cfg_config cfg = { .forecast = { .horizons_ms = horizons, .n_horizons = 2 },
                       .history = { .interval_ms = 60000, .max_len = 100 },
                       .smoothing = { .tau_ms = 300000 } };
    fc_engine *fc = fc_new(&cfg);
    size_t n = OD_FORECASTS_PER_BUILD + 5;
    lot **lots = calloc(n, sizeof *lots);
    for (size_t i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "L%zu", i);
        lots[i] = make_lot(id, CFG_SOURCE_COUNT, true, 4);
    }
    od_snapshot *a = od_snapshot_build(lots, n, fc, NULL);
    assert_non_null(a->lots[0].forecast);
    assert_int_equal(a->lots[0].forecast->n, 2);
    assert_int_equal(a->lots[0].forecast->ts_ms, TS);
    assert_null(a->lots[n - 1].forecast);           /* past the budget: in a later build */
    od_snapshot *b = od_snapshot_build(lots, n, fc, a);
    assert_non_null(b->lots[n - 1].forecast);       /* the unchanged ones cost nothing */
    lots[0]->ts_ms = TS + 60000;                    /* changed: computed again */
    od_snapshot *c = od_snapshot_build(lots, n, fc, b);
    assert_int_equal(c->lots[0].forecast->ts_ms, TS + 60000);
    assert_int_equal(c->lots[1].forecast->ts_ms, TS);
    od_reply r;
    od_query q = { .options = "keyValues" };
    od_entity(c, "urn:ngsi-ld:OffStreetParking:L0", &q, &r);
    json_t *e = body(&r);
    json_t *h = json_object_get(json_object_get(e, "forecast"), "horizons");
    assert_int_equal(json_array_size(h), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(h, 1), "minutes")), 30);
    json_decref(e);
    od_reply_free(&r);
    od_snapshot_unref(a);
    od_snapshot_unref(b);
    od_snapshot_unref(c);
    for (size_t i = 0; i < n; i++) {
        fc_forget_lot(fc, lots[i]);
        lot_free(lots[i]);
    }
    free(lots);
    fc_free(fc);
}

static void test_paths(void **state)
{
    assert_true(http_path_ok("/index.html"));
    assert_true(http_path_ok("/a/b.js"));
    assert_true(http_path_ok("/..a"));
    assert_false(http_path_ok("/../x"));
    assert_false(http_path_ok("/a/../../x"));
    assert_false(http_path_ok("/a/.."));
    assert_false(http_path_ok("/./x"));
    assert_false(http_path_ok("//etc/passwd"));
    assert_false(http_path_ok("x"));
    assert_false(http_path_ok("/a\\b"));
    assert_string_equal(http_content_type("/a.html"), "text/html; charset=utf-8");
    assert_string_equal(http_content_type("/a.js.map"), "application/json");
    assert_string_equal(http_content_type("/a.svg"), "image/svg+xml");
    assert_string_equal(http_content_type("/x.d/noext"), "application/octet-stream");
}

/* Unknown bays (bay_stale_after): a ParkingSpot says unknown, and the lot's free numbers leave
 * them out, as free = capacity - occupied - unknown. */
static void test_unknown_bays(void **state)
{
    lot *l = make_lot("U", CFG_SOURCE_BAYS, true, 0);
    cfg_lot c = { .id = (char *)"U", .name = (char *)"U", .capacity = 10,
                  .source = CFG_SOURCE_BAYS, .has_position = true, .lat = 52.5, .lon = -1.9,
                  .stale_after_ms = 100 * 3600000LL, .bay_stale_after_ms = 3600000,
                  .almost_full = 0.9, .hysteresis = 0.05 };
    lot_configure(l, &c, 300000);
    add_bay(l, "u1", true);
    add_bay(l, "u2", false);
    lot_update_stale(l, TS + 3600001);
    assert_int_equal(lot_free_spaces(l), 8);
    od_snapshot *s = od_snapshot_build(&l, 1, NULL, NULL);
    lot_free(l);
    od_query q = { .type = "ParkingSpot", .options = "keyValues" };
    od_reply r;
    od_entity(s, "urn:ngsi-ld:ParkingSpot:U:u1", &q, &r);
    json_t *j = body(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "unknown");
    json_decref(j);
    od_reply_free(&r);
    od_entity(s, "urn:ngsi-ld:OffStreetParking:U", &q, &r);
    j = body(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "availableSpotNumber")), 8);
    json_decref(j);
    od_reply_free(&r);
    od_parkapi(s, "U", &r);
    j = body(&r);
    json_t *site = json_object_get(j, "items") ? json_array_get(json_object_get(j, "items"), 0) : j;
    assert_int_equal(json_integer_value(json_object_get(site, "realtime_free_capacity")), 8);
    json_decref(j);
    od_reply_free(&r);
    od_snapshot_unref(s);
}

/* ---- zones and categories (SPEC §10) ---- */

/* Lot Z (bays, placed unless !POS): zones L1 "Level 1" (4, L1-*) and L2 (6, exact L2-1 and
 * L2-2) with a quote in its name; categories disabled (2: L1-1, L2-1), ev_charging (3: *-2)
 * and women (1: L2-2). Bays: L1-1 and L1-3 and L2-2 occupied, L1-2 and L2-1 free. So L1 has
 * 2 occupied, 2 free; L2 1 and 5; disabled 1 and 1; ev_charging 1 and 2; women 1 and 0. */
static lot *make_zoned_lot(const char *id, bool pos, int64_t bay_stale_after_ms)
{
    static char *l1_pat[] = { "L1-*" }, *l2_ids[] = { "L2-1", "L2-2" };
    static char *dis_ids[] = { "L1-1", "L2-1" }, *ev_pat[] = { "*-2" }, *wo_ids[] = { "L2-2" };
    cfg_zone zones[2] = {
        { .id = "L1", .name = "Level 1", .capacity = 4,
          .members = { .patterns = l1_pat, .n_patterns = 1 } },
        { .id = "L2", .name = "Level \"2\"", .capacity = 6,
          .members = { .ids = l2_ids, .n_ids = 2 } },
    };
    cfg_lot c = { .id = (char *)id, .name = (char *)"Zoned", .capacity = 10,
                  .source = CFG_SOURCE_BAYS, .has_position = pos, .lat = 52.5, .lon = -1.9,
                  .stale_after_ms = 100 * 3600000LL, .bay_stale_after_ms = bay_stale_after_ms,
                  .almost_full = 0.9, .hysteresis = 0.05, .zones = zones, .n_zones = 2 };
    c.categories[CFG_CAT_DISABLED] = (cfg_category_def){ .set = true, .capacity = 2,
        .members = { .ids = dis_ids, .n_ids = 2 } };
    c.categories[CFG_CAT_EV_CHARGING] = (cfg_category_def){ .set = true, .capacity = 3,
        .members = { .patterns = ev_pat, .n_patterns = 1 } };
    c.categories[CFG_CAT_WOMEN] = (cfg_category_def){ .set = true, .capacity = 1,
        .members = { .ids = wo_ids, .n_ids = 1 } };
    lot *l = lot_new(&c, 300000);
    static const char *const bays[] = { "L1-1", "L1-2", "L1-3", "L2-1", "L2-2" };
    static const bool occ[] = { true, false, true, false, true };
    for (int i = 0; i < 5; i++)
        add_bay(l, bays[i], occ[i]);
    return l;
}

static od_snapshot *zoned_snapshot(void)
{
    lot *lots[2] = { make_zoned_lot("Z", true, 0), make_zoned_lot("N", false, 0) };
    od_snapshot *s = od_snapshot_build(lots, 2, NULL, NULL);
    lot_free(lots[0]);          /* the snapshot holds copies: nothing may point into the lot */
    lot_free(lots[1]);
    return s;
}

static void test_snapshot_groups(void **state)
{
    od_snapshot *s = zoned_snapshot();
    const od_lot *l = &s->lots[0];
    assert_int_equal(l->n_zones, 2);
    assert_string_equal(l->zones[0].id, "L1");
    assert_string_equal(l->zones[0].name, "Level 1");
    assert_int_equal(l->zones[0].capacity, 4);
    assert_int_equal(l->zones[0].occupied, 2);
    assert_int_equal(l->zones[0].free_spaces, 2);
    assert_int_equal(l->zones[0].status, LOT_STATUS_OPEN);
    assert_string_equal(l->zones[1].name, "Level \"2\"");
    assert_int_equal(l->zones[1].occupied, 1);
    assert_int_equal(l->zones[1].free_spaces, 5);
    assert_int_equal(l->n_cats, 3);            /* SPEC §10 order, configured ones only */
    assert_int_equal(l->cats[0].cat, CFG_CAT_DISABLED);
    assert_int_equal(l->cats[0].occupied, 1);
    assert_int_equal(l->cats[0].free_spaces, 1);
    assert_int_equal(l->cats[1].cat, CFG_CAT_EV_CHARGING);
    assert_int_equal(l->cats[1].free_spaces, 2);
    assert_int_equal(l->cats[2].cat, CFG_CAT_WOMEN);
    assert_int_equal(l->cats[2].capacity, 1);
    assert_int_equal(l->cats[2].free_spaces, 0);
    assert_false(l->tracks_unknown);
    od_snapshot_unref(s);
}

static json_t *get_entity(const od_snapshot *s, const char *id, const char *options)
{
    od_query q = { .options = options };
    od_reply r;
    od_entity(s, id, &q, &r);
    assert_int_equal(r.status, 200);
    json_t *e = body(&r);
    od_reply_free(&r);
    return e;
}

/* One ParkingGroup per zone of a placed lot, values exact, only schema attributes (and
 * occupiedSpotNumber); the lot without a position has none, as it has no OffStreetParking. */
static void test_parking_groups(void **state)
{
    od_snapshot *s = zoned_snapshot();
    od_query q = { .type = "ParkingGroup", .options = "keyValues" };
    od_reply r;
    od_entities(s, &q, "/e", &r);
    assert_int_equal(r.status, 200);
    json_t *a = body(&r);
    od_reply_free(&r);
    assert_int_equal(json_array_size(a), 2);
    json_t *want = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:[f,f]}, s:[s], s:s, s:i, s:i, s:i, s:s}",
        "id", "urn:ngsi-ld:ParkingGroup:Z:L1", "type", "ParkingGroup", "name", "Level 1",
        "location", "type", "Point", "coordinates", -1.9, 52.5, "category", "offStreet",
        "refParkingSite", "urn:ngsi-ld:OffStreetParking:Z", "totalSpotNumber", 4,
        "availableSpotNumber", 2, "occupiedSpotNumber", 2,
        "dateModified", "2016-10-04T07:59:42Z");
    assert_true(json_equal(json_array_get(a, 0), want));
    json_decref(want);
    json_t *g2 = json_array_get(a, 1);
    assert_string_equal(json_string_value(json_object_get(g2, "id")),
                        "urn:ngsi-ld:ParkingGroup:Z:L2");
    assert_string_equal(json_string_value(json_object_get(g2, "name")), "Level \"2\"");
    assert_int_equal(json_integer_value(json_object_get(g2, "availableSpotNumber")), 5);
    json_decref(a);

    json_t *e = get_entity(s, "urn:ngsi-ld:ParkingGroup:Z:L2", NULL);   /* normalized */
    json_t *av = json_object_get(e, "availableSpotNumber");
    assert_string_equal(json_string_value(json_object_get(av, "type")), "Property");
    assert_int_equal(json_integer_value(json_object_get(av, "value")), 5);
    assert_string_equal(json_string_value(json_object_get(av, "observedAt")),
                        "2016-10-04T07:59:42Z");
    json_t *ref = json_object_get(e, "refParkingSite");
    assert_string_equal(json_string_value(json_object_get(ref, "type")), "Relationship");
    assert_string_equal(json_string_value(json_object_get(ref, "object")),
                        "urn:ngsi-ld:OffStreetParking:Z");
    assert_null(json_object_get(e, "status"));      /* not in the ParkingGroup schema */
    json_decref(e);

    od_entity(s, "urn:ngsi-ld:ParkingGroup:N:L1", &q, &r);     /* no position: no entity */
    assert_int_equal(r.status, 404);
    od_reply_free(&r);
    od_entity(s, "urn:ngsi-ld:ParkingGroup:Z:L3", &q, &r);
    assert_int_equal(r.status, 404);
    od_reply_free(&r);
    od_snapshot_unref(s);
}

/* Listing ParkingGroups pages and filters as the other types do. */
static void test_group_pages(void **state)
{
    od_snapshot *s = zoned_snapshot();
    od_query q = { .type = "ParkingGroup", .options = "keyValues", .limit = "1" };
    od_reply r;
    od_entities(s, &q, "/e", &r);
    json_t *a = body(&r);
    assert_int_equal(json_array_size(a), 1);
    assert_non_null(strstr(r.link, "type=ParkingGroup"));
    assert_non_null(strstr(r.link, "offset=1>; rel=\"next\""));
    json_decref(a);
    od_reply_free(&r);
    q.offset = "1";
    od_entities(s, &q, "/e", &r);
    a = body(&r);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "id")),
                        "urn:ngsi-ld:ParkingGroup:Z:L2");
    assert_true(!r.link || !strstr(r.link, "rel=\"next\""));
    json_decref(a);
    od_reply_free(&r);
    od_query p = { .type = "ParkingGroup", .id_pattern = ":L1$" };
    od_entities(s, &p, "/e", &r);
    a = body(&r);
    assert_int_equal(json_array_size(a), 1);
    json_decref(a);
    od_reply_free(&r);
    od_snapshot_unref(s);
}

static json_int_t int_of(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", k);
    return json_integer_value(v);
}

/* ParkAPI: capacity_<cat> always, realtime_free_capacity_<cat> with realtime data, SPEC names
 * and ParkAPI's own (charging, woman) alike. */
static void test_parkapi_categories(void **state)
{
    od_snapshot *s = zoned_snapshot();
    od_reply r;
    od_parkapi(s, "Z", &r);
    json_t *o = body(&r);
    od_reply_free(&r);
    assert_int_equal(int_of(o, "capacity_disabled"), 2);
    assert_int_equal(int_of(o, "realtime_free_capacity_disabled"), 1);
    assert_int_equal(int_of(o, "capacity_ev_charging"), 3);
    assert_int_equal(int_of(o, "capacity_charging"), 3);
    assert_int_equal(int_of(o, "realtime_free_capacity_ev_charging"), 2);
    assert_int_equal(int_of(o, "realtime_free_capacity_charging"), 2);
    assert_int_equal(int_of(o, "capacity_women"), 1);
    assert_int_equal(int_of(o, "capacity_woman"), 1);
    assert_int_equal(int_of(o, "realtime_free_capacity_women"), 0);
    assert_int_equal(int_of(o, "realtime_free_capacity_woman"), 0);
    assert_null(json_object_get(o, "capacity_family"));     /* not configured */
    assert_null(json_object_get(o, "capacity_disabled_charging"));
    json_decref(o);
    s->lots[0].stale = true;            /* no realtime data: capacities only */
    od_parkapi(s, "Z", &r);
    o = body(&r);
    od_reply_free(&r);
    assert_int_equal(int_of(o, "capacity_disabled"), 2);
    assert_int_equal(int_of(o, "capacity_woman"), 1);
    assert_null(json_object_get(o, "realtime_free_capacity_disabled"));
    assert_null(json_object_get(o, "realtime_free_capacity_woman"));
    json_decref(o);
    od_snapshot_unref(s);
}

/* With bay_stale_after, a zone's unknown bays are copied and left out of its free. */
static void test_group_unknown(void **state)
{
    lot *l = make_zoned_lot("Z", true, 3600000);
    lot_update_stale(l, TS + 3600001);      /* every bay is silent past bay_stale_after */
    od_snapshot *s = od_snapshot_build(&l, 1, NULL, NULL);
    lot_free(l);
    assert_true(s->lots[0].tracks_unknown);
    assert_int_equal(s->lots[0].zones[0].unknown, 3);
    assert_int_equal(s->lots[0].zones[0].free_spaces, 1);     /* 4 - 0 occupied - 3 unknown */
    json_t *e = get_entity(s, "urn:ngsi-ld:ParkingGroup:Z:L1", "keyValues");
    assert_int_equal(int_of(e, "availableSpotNumber"), 1);
    json_decref(e);
    od_snapshot_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_values),
        cmocka_unit_test(test_normalized_and_ld),
        cmocka_unit_test(test_spots),
        cmocka_unit_test(test_pages_and_errors),
        cmocka_unit_test(test_parkapi),
        cmocka_unit_test(test_unknown_bays),
        cmocka_unit_test(test_forecast_reuse),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_snapshot_groups),
        cmocka_unit_test(test_parking_groups),
        cmocka_unit_test(test_group_pages),
        cmocka_unit_test(test_parkapi_categories),
        cmocka_unit_test(test_group_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
