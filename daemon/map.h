/* map: a bounded-growth open-addressing hash map from string keys to caller-owned values. */
#ifndef PARKD_MAP_H
#define PARKD_MAP_H

#include <stddef.h>

typedef struct map map;

/* A new empty map. Aborts on out of memory (util_xmalloc). Free with map_free. */
map *map_new(void);

/* Frees the table only: keys and values belong to the caller (free them first with map_foreach). */
void map_free(map *m);

/* The value for KEY[0..LEN), or NULL. */
void *map_get(const map *m, const char *key, size_t len);

/* Inserts VALUE under KEY, which must not be present. KEY is not copied: it must stay valid, and
 * unchanged, as long as the entry (typically it lives inside VALUE). */
void map_put(map *m, const char *key, size_t len, void *value);

size_t map_size(const map *m);

/* Calls FN(CTX, value) for every entry, in no particular order. FN must not modify the map. */
void map_foreach(const map *m, void (*fn)(void *ctx, void *value), void *ctx);

#endif
