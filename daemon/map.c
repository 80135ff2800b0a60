/* map: open addressing with linear probing. Entries are never deleted, so no tombstones: a probe
 * stops at the first empty slot. The table doubles before the load factor would pass 0.8 (a
 * successful lookup then probes 3 slots on average, comparing 32-bit hashes first): the bays of
 * all lots are the daemon's largest map by far, and at 0.7 a lot of 100 bays took 256 slots. An
 * empty map has no table at all: every lot has maps of bays, gates and refused ids, which most
 * lots never fill (a count lot none of them), and 16 empty slots each were 1.5 KB a lot. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAP_INITIAL_CAP 16          /* a power of two: the hash is masked, not divided */
#define MAP_LOAD_NUM 8              /* grow when size would exceed cap * 8 / 10 */
#define MAP_LOAD_DEN 10

/* 24 bytes: keys are ids (at most a few hundred bytes), so 32 bits of length are plenty, and 32
 * bits of the hash tell keys apart as well as 64 before the memcmp. */
typedef struct map_slot {
    const char *key;                /* NULL: empty slot */
    void *value;
    uint32_t hash;                  /* kept so growing never rehashes the keys */
    uint32_t len;
} map_slot;

struct map {
    map_slot *slots;                /* NULL while the map is empty */
    size_t cap;                     /* power of two, or 0 with no slots */
    size_t size;
};

/* FNV-1a, 64-bit: simple, fast on the short ids we store, and well enough spread; folded to 32
 * bits, high into low, so the mask of a small table sees all of it. */
static uint32_t map_hash(const char *key, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ULL;
    }
    return (uint32_t)(h ^ h >> 32);
}

map *map_new(void)
{
    map *m = util_xmalloc(sizeof *m);
    m->cap = 0;
    m->size = 0;
    m->slots = NULL;
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
 * (load factor < 1), so the probe terminates. M must have slots (cap > 0). */
static map_slot *map_find_slot(const map *m, const char *key, size_t len, uint32_t hash)
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
    m->cap = old_cap ? 2 * old_cap : MAP_INITIAL_CAP;
    m->slots = util_xcalloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key)
            *map_find_slot(m, old[i].key, old[i].len, old[i].hash) = old[i];
    }
    free(old);
}

void *map_get(const map *m, const char *key, size_t len)
{
    if (m->size == 0)
        return NULL;
    map_slot *s = map_find_slot(m, key, len, map_hash(key, len));
    return s->key ? s->value : NULL;
}

void map_put(map *m, const char *key, size_t len, void *value)
{
    if ((m->size + 1) * MAP_LOAD_DEN > m->cap * MAP_LOAD_NUM)
        map_grow(m);
    if (len > UINT32_MAX)
        abort();    /* no id comes near: a caller's bug, not a condition to handle */
    uint32_t hash = map_hash(key, len);
    map_slot *s = map_find_slot(m, key, len, hash);
    if (!s->key)
        m->size++;
    /* An existing key is overwritten rather than duplicated (the API forbids it, but a second
     * entry for one key would be unreachable and leak its value silently). */
    s->key = key;
    s->len = (uint32_t)len;
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
