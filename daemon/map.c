/* map: open addressing with linear probing. Entries are never deleted, so no tombstones: a probe
 * stops at the first empty slot. The table doubles before the load factor would pass 0.7. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAP_INITIAL_CAP 16          /* a power of two: the hash is masked, not divided */
#define MAP_LOAD_NUM 7              /* grow when size would exceed cap * 7 / 10 */
#define MAP_LOAD_DEN 10

typedef struct map_slot {
    const char *key;                /* NULL: empty slot */
    size_t len;
    uint64_t hash;                  /* kept so growing never rehashes the keys */
    void *value;
} map_slot;

struct map {
    map_slot *slots;
    size_t cap;                     /* power of two */
    size_t size;
};

/* FNV-1a, 64-bit: simple, fast on the short ids we store, and well enough spread. */
static uint64_t map_hash(const char *key, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return h;
}

map *map_new(void)
{
    map *m = util_xmalloc(sizeof *m);
    m->cap = MAP_INITIAL_CAP;
    m->size = 0;
    m->slots = util_xcalloc(m->cap, sizeof *m->slots);
    return m;
}

void map_free(map *m)
{
    if (!m)
        return;
    free(m->slots);
    free(m);
}

/* The slot holding KEY, or the empty slot where it would go. The table always has an empty slot
 * (load factor < 1), so the probe terminates. */
static map_slot *map_find_slot(const map *m, const char *key, size_t len, uint64_t hash)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        map_slot *s = &m->slots[i];
        if (!s->key)
            return s;
        if (s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0)
            return s;
    }
}

static void map_grow(map *m)
{
    map_slot *old = m->slots;
    size_t old_cap = m->cap;
    m->cap *= 2;
    m->slots = util_xcalloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key)
            *map_find_slot(m, old[i].key, old[i].len, old[i].hash) = old[i];
    }
    free(old);
}

void *map_get(const map *m, const char *key, size_t len)
{
    map_slot *s = map_find_slot(m, key, len, map_hash(key, len));
    return s->key ? s->value : NULL;
}

void map_put(map *m, const char *key, size_t len, void *value)
{
    if ((m->size + 1) * MAP_LOAD_DEN > m->cap * MAP_LOAD_NUM)
        map_grow(m);
    uint64_t hash = map_hash(key, len);
    map_slot *s = map_find_slot(m, key, len, hash);
    if (!s->key)
        m->size++;
    /* An existing key is overwritten rather than duplicated (the API forbids it, but a second
     * entry for one key would be unreachable and leak its value silently). */
    s->key = key;
    s->len = len;
    s->hash = hash;
    s->value = value;
}

size_t map_size(const map *m)
{
    return m->size;
}

void map_foreach(const map *m, void (*fn)(void *ctx, void *value), void *ctx)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key)
            fn(ctx, m->slots[i].value);
    }
}
