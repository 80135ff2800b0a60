/* zone: which zone and categories (SPEC §10) a lot's bay or gate belongs to, from the lot's
 * configuration. Pure: no I/O. A resolver answers once per sensor (when the lot first hears of
 * it, or after a reload changed the zones); the lot keeps the answer with the sensor, so no
 * pattern is matched per event. */
#ifndef PARKD_ZONE_H
#define PARKD_ZONE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "map.h"

#define ZN_NONE      (-1)   /* in no zone */
#define ZN_AMBIGUOUS (-2)   /* two zones' patterns match and neither lists it exactly */

typedef struct zn_zone {
    char *id;
    char *name;
    char *name_json;        /* the name as a JSON string, quoted and escaped, for the outputs */
    int64_t capacity;
} zn_zone;

typedef struct zn_pattern {
    char *glob;             /* fnmatch(3) pattern, no flags */
    int zone;               /* the zone listing it, or ZN_NONE for a category's */
    uint8_t cats;           /* the categories listing it: bit c for enum cfg_category c */
} zn_pattern;

typedef struct zn_member {
    char *id;               /* the map's key */
    int zone;               /* ZN_NONE when only categories list it exactly */
    uint8_t cats;
} zn_member;

typedef struct zn_resolver {
    zn_zone *zones;         /* in the configuration's order (owned) */
    int n_zones;
    int64_t cat_capacity[CFG_N_CATEGORIES];   /* 0: category not configured */
    uint8_t cats_set;       /* bit c: category c configured */
    map *exact;             /* id -> zn_member (owned) */
    zn_pattern *patterns;   /* (owned) */
    size_t n_patterns;
} zn_resolver;

/* A resolver for CFG's zones and categories (none is fine: everything resolves to no zone and no
 * category). Copies what it needs; never NULL (aborts on out of memory). Free with zn_free. */
zn_resolver *zn_new(const cfg_lot *cfg);
void zn_free(zn_resolver *r);

/* Whether R describes exactly CFG's zones and categories (ids, names, capacities, members), so a
 * reload that changed none of them re-resolves nothing. */
bool zn_same(const zn_resolver *r, const cfg_lot *cfg);

/* Whether R has any zone or category. */
bool zn_any(const zn_resolver *r);

/* ID's zone (an index into R->zones, ZN_NONE or ZN_AMBIGUOUS) into *ZONE and its categories into
 * *CATS. An exact listing decides the zone over any pattern; categories add up from all that
 * list or match it. Cost: one hash lookup, plus one fnmatch per pattern. */
void zn_resolve(const zn_resolver *r, const char *id, int *zone, uint8_t *cats);

/* The index of the zone with id ID, or -1. */
int zn_find_zone(const zn_resolver *r, const char *id);

#endif
