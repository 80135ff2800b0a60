#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void util_oom(size_t size)
{
    fprintf(stderr, "<2>parkd: out of memory (%zu bytes)\n", size);
    abort();
}

void *util_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        util_oom(size);
    return p;
}

void *util_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        util_oom(n * size);
    return p;
}

void *util_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        util_oom(size);
    return q;
}

char *util_xstrdup(const char *s)
{
    return s ? util_xstrndup(s, strlen(s)) : NULL;
}

char *util_xstrndup(const char *s, size_t n)
{
    char *p = util_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void util_grow(void **array, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return;
    size_t cap2 = *cap ? *cap * 2 : 8;
    while (cap2 < need)
        cap2 *= 2;
    *array = util_xrealloc(*array, cap2 * elem);
    *cap = cap2;
}

int64_t util_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *util_read_secret_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char buf[1024];
    if (!fgets(buf, sizeof buf, f)) {
        fclose(f);
        errno = EINVAL;
        return NULL;
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    char *secret = util_xstrdup(buf);
    explicit_bzero(buf, sizeof buf);
    return secret;
}

void util_set_timezone(const char *zone)
{
    if (zone && setenv("TZ", zone, 1) != 0)
        return;     /* only ENOMEM is possible: the system's zone stays */
    tzset();
}

const char *util_connect_hint(int err)
{
    if (err == EPERM || err == EACCES)
        return " (blocked on this host: a firewall, or IPAddressDeny=/IPAddressAllow= of the unit)";
    return "";
}
