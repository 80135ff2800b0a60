/* zone: resolving a sensor id to its zone and categories, once per sensor. */
#include "zone.h"

#include <fnmatch.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* NAME quoted and escaped as JSON, malloc'd; "null" if jansson cannot (out of memory, or a name
 * that is not UTF-8, which the YAML parser refuses). */
static char *zn_json_string(const char *name)
{
    json_t *s = json_string(name);
    char *dumped = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    char *out = util_xstrdup(dumped ? dumped : "null");
    free(dumped);
    json_decref(s);
    return out;
}

static zn_member *zn_member_for(zn_resolver *r, const char *id)
{
    zn_member *m = map_get(r->exact, id, strlen(id));
    if (m)
        return m;
    m = util_xcalloc(1, sizeof *m);
    m->id = util_xstrdup(id);
    m->zone = ZN_NONE;
    map_put(r->exact, m->id, strlen(m->id), m);
    return m;
}

static void zn_add_pattern(zn_resolver *r, size_t *cap, const char *glob, int zone, uint8_t cats)
{
    void *array = r->patterns;
    util_grow(&array, cap, r->n_patterns + 1, sizeof *r->patterns);
    r->patterns = array;
    r->patterns[r->n_patterns++] = (zn_pattern){util_xstrdup(glob), zone, cats};
}

/* MEMBERS belong to zone ZONE (or ZN_NONE) and to the categories CATS. The config check already
 * refused an exact id in two zones. */
static void zn_add_members(zn_resolver *r, size_t *cap, const cfg_members *members, int zone,
                           uint8_t cats)
{
    for (size_t i = 0; i < members->n_ids; i++) {
        zn_member *m = zn_member_for(r, members->ids[i]);
        if (zone != ZN_NONE)
            m->zone = zone;
        m->cats |= cats;
    }
    for (size_t i = 0; i < members->n_patterns; i++)
        zn_add_pattern(r, cap, members->patterns[i], zone, cats);
}

zn_resolver *zn_new(const cfg_lot *cfg)
{
    zn_resolver *r = util_xcalloc(1, sizeof *r);
    r->exact = map_new();
    r->n_zones = (int)cfg->n_zones;
    r->zones = util_xcalloc(cfg->n_zones + 1, sizeof *r->zones);
    size_t cap = 0;
    for (int z = 0; z < r->n_zones; z++) {
        const cfg_zone *cz = &cfg->zones[z];
        const char *name = cz->name ? cz->name : cz->id;
        r->zones[z] = (zn_zone){util_xstrdup(cz->id), util_xstrdup(name), zn_json_string(name),
                                cz->capacity};
        zn_add_members(r, &cap, &cz->members, z, 0);
    }
    for (int c = 0; c < CFG_N_CATEGORIES; c++) {
        const cfg_category_def *cat = &cfg->categories[c];
        if (!cat->set)
            continue;
        r->cat_capacity[c] = cat->capacity;
        r->cats_set |= (uint8_t)(1u << c);
        zn_add_members(r, &cap, &cat->members, ZN_NONE, (uint8_t)(1u << c));
    }
    return r;
}

static void zn_free_member(void *ctx, void *value)
{
    zn_member *m = value;
    free(m->id);
    free(m);
}

void zn_free(zn_resolver *r)
{
    if (!r)
        return;
    map_foreach(r->exact, zn_free_member, NULL);
    map_free(r->exact);
    for (int z = 0; z < r->n_zones; z++) {
        free(r->zones[z].id);
        free(r->zones[z].name);
        free(r->zones[z].name_json);
    }
    free(r->zones);
    for (size_t i = 0; i < r->n_patterns; i++)
        free(r->patterns[i].glob);
    free(r->patterns);
    free(r);
}

bool zn_any(const zn_resolver *r)
{
    return r->n_zones > 0 || r->cats_set != 0;
}

/* Whether MEMBERS are all in R as belonging to zone ZONE (or categories CATS): the ids by lookup,
 * the patterns in order starting at *NEXT, which moves past them. */
static bool zn_same_members(const zn_resolver *r, const cfg_members *members, int zone,
                            uint8_t cats, size_t *next)
{
    for (size_t i = 0; i < members->n_ids; i++) {
        const zn_member *m = map_get(r->exact, members->ids[i], strlen(members->ids[i]));
        if (!m || (zone != ZN_NONE && m->zone != zone) || (cats && !(m->cats & cats)))
            return false;
    }
    for (size_t i = 0; i < members->n_patterns; i++, (*next)++) {
        if (*next >= r->n_patterns)
            return false;
        const zn_pattern *p = &r->patterns[*next];
        if (strcmp(p->glob, members->patterns[i]) != 0 || p->zone != zone || p->cats != cats)
            return false;
    }
    return true;
}

/* Counts the exact ids CFG lists (an id listed by a zone and a category counts once), to compare
 * with the map's size: together with zn_same_members this makes the comparison exact. */
static size_t zn_count_exact(const cfg_lot *cfg)
{
    zn_resolver *tmp = zn_new(cfg);
    size_t n = map_size(tmp->exact);
    zn_free(tmp);
    return n;
}

bool zn_same(const zn_resolver *r, const cfg_lot *cfg)
{
    if ((size_t)r->n_zones != cfg->n_zones)
        return false;
    size_t next = 0;
    for (int z = 0; z < r->n_zones; z++) {
        const cfg_zone *cz = &cfg->zones[z];
        const char *name = cz->name ? cz->name : cz->id;
        if (strcmp(r->zones[z].id, cz->id) || strcmp(r->zones[z].name, name) ||
            r->zones[z].capacity != cz->capacity ||
            !zn_same_members(r, &cz->members, z, 0, &next))
            return false;
    }
    for (int c = 0; c < CFG_N_CATEGORIES; c++) {
        const cfg_category_def *cat = &cfg->categories[c];
        bool set = (r->cats_set >> c) & 1u;
        if (set != cat->set || (set && r->cat_capacity[c] != cat->capacity))
            return false;
        if (set && !zn_same_members(r, &cat->members, ZN_NONE, (uint8_t)(1u << c), &next))
            return false;
    }
    return next == r->n_patterns && map_size(r->exact) == zn_count_exact(cfg);
}

void zn_resolve(const zn_resolver *r, const char *id, int *zone, uint8_t *cats)
{
    const zn_member *m = map_get(r->exact, id, strlen(id));
    *zone = m ? m->zone : ZN_NONE;
    *cats = m ? m->cats : 0;
    bool exact_zone = *zone != ZN_NONE;
    for (size_t i = 0; i < r->n_patterns; i++) {
        const zn_pattern *p = &r->patterns[i];
        if (fnmatch(p->glob, id, 0) != 0)
            continue;
        *cats |= p->cats;
        if (p->zone == ZN_NONE || exact_zone || p->zone == *zone)
            continue;
        *zone = *zone == ZN_NONE ? p->zone : ZN_AMBIGUOUS;
    }
}

int zn_find_zone(const zn_resolver *r, const char *id)
{
    for (int z = 0; z < r->n_zones; z++)
        if (!strcmp(r->zones[z].id, id))
            return z;
    return -1;
}
