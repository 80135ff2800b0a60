/* Unit tests for map: insert/lookup, growth, missing keys, keys sharing a prefix. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

typedef struct item {
    char key[32];
    int n;
} item;

static item *item_new(const char *fmt, int n)
{
    item *it = calloc(1, sizeof *it);
    assert_non_null(it);
    snprintf(it->key, sizeof it->key, fmt, n);
    it->n = n;
    return it;
}

static void *get(const map *m, const char *key)
{
    return map_get(m, key, strlen(key));
}

static void put(map *m, item *it)
{
    map_put(m, it->key, strlen(it->key), it);
}

static void free_item(void *ctx, void *value)
{
    (*(int *)ctx)++;
    free(value);
}

static void test_empty(void **state)
{
    map *m = map_new();
    assert_int_equal(map_size(m), 0);
    assert_null(get(m, "a"));
    assert_null(get(m, ""));
    /* an empty map has no table yet (map.c): walking it sees nothing, the first put makes one */
    int n = 0;
    map_foreach(m, free_item, &n);
    assert_int_equal(n, 0);
    item *it = item_new("k%d", 1);
    put(m, it);
    assert_ptr_equal(get(m, "k1"), it);
    map_foreach(m, free_item, &n);
    assert_int_equal(n, 1);
    map_free(m);
    map_free(NULL);
}

/* Many keys force several doublings; every key must survive each rehash. */
static void test_many_keys_and_growth(void **state)
{
    enum { N = 5000 };
    map *m = map_new();
    for (int i = 0; i < N; i++) {
        put(m, item_new("bay-%d", i));
        assert_int_equal(map_size(m), (size_t)i + 1);
    }
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "bay-%d", i);
        item *it = get(m, key);
        assert_non_null(it);
        assert_int_equal(it->n, i);
        assert_string_equal(it->key, key);
    }
    int freed = 0;
    map_foreach(m, free_item, &freed);
    assert_int_equal(freed, N);
    map_free(m);
}

static void test_missing_keys(void **state)
{
    map *m = map_new();
    for (int i = 0; i < 100; i++)
        put(m, item_new("g%d", i));
    assert_null(get(m, "g100"));
    assert_null(get(m, "g-1"));
    assert_null(get(m, "G1"));
    assert_null(get(m, ""));
    int freed = 0;
    map_foreach(m, free_item, &freed);
    map_free(m);
}

/* Keys that are prefixes of each other differ only in length: LEN must be part of the match. */
static void test_same_prefix(void **state)
{
    map *m = map_new();
    item *a = item_new("A%d", 1), *ab = item_new("A%d0", 1), *abc = item_new("A%d00", 1);
    put(m, a);
    put(m, ab);
    put(m, abc);
    assert_ptr_equal(get(m, "A1"), a);
    assert_ptr_equal(get(m, "A10"), ab);
    assert_ptr_equal(get(m, "A100"), abc);
    assert_null(get(m, "A"));
    assert_null(get(m, "A1000"));
    /* A key given by length inside a longer buffer (not NUL-terminated at LEN). */
    assert_ptr_equal(map_get(m, "A100", 2), a);
    assert_ptr_equal(map_get(m, "A100", 3), ab);
    int freed = 0;
    map_foreach(m, free_item, &freed);
    assert_int_equal(freed, 3);
    map_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_many_keys_and_growth),
        cmocka_unit_test(test_missing_keys),
        cmocka_unit_test(test_same_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
