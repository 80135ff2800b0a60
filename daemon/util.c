#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

const char *util_file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:  return "a regular file";
    case S_IFDIR:  return "a directory";
    case S_IFIFO:  return "a FIFO";
    case S_IFCHR:  return "a character device";
    case S_IFBLK:  return "a block device";
    case S_IFSOCK: return "a socket";
    default:       return "not a file";
    }
}

/* -1 with errno and *KIND set for what MODE says is not a regular file; 0 for one. */
static int util_refuse_kind(mode_t mode, const char **kind)
{
    if (S_ISREG(mode))
        return 0;
    if (kind)
        *kind = util_file_kind(mode);
    errno = S_ISDIR(mode) ? EISDIR : EINVAL;
    return -1;
}

int util_open_regular(const char *path, const char **kind)
{
    struct stat st;
    if (kind)
        *kind = NULL;
    /* stat first, so a device is not even opened (opening some has effects); fstat after, as
     * the path may have been replaced in between */
    if (stat(path, &st) < 0 || util_refuse_kind(st.st_mode, kind) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || util_refuse_kind(st.st_mode, kind) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* Reads up to SIZE bytes of FD into BUF. Returns the count, or -1 with errno set. */
static ssize_t util_read_upto(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n < size) {
        ssize_t got = read(fd, buf + n, size - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        n += (size_t)got;
    }
    return (ssize_t)n;
}

char *util_read_secret_file(const char *path)
{
    int fd = util_open_regular(path, NULL);
    if (fd < 0)
        return NULL;
    char buf[1024];
    ssize_t n = util_read_upto(fd, buf, sizeof buf - 1);
    int err = errno;
    close(fd);
    if (n <= 0) {
        explicit_bzero(buf, sizeof buf);
        errno = n < 0 ? err : EINVAL;
        return NULL;
    }
    buf[n] = '\0';
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

/* ---- number formatting ---- */

char *util_put_u64(char *p, uint64_t v)
{
    char rev[20];
    size_t n = 0;
    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = rev[--n];
    return p;
}

size_t util_format_i64(char *buf, size_t size, int64_t v)
{
    if (size < UTIL_NUM_MAX)
        return (size_t)snprintf(buf, size, "%" PRId64, v);
    char *p = buf;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        *p++ = '-';
        u = 0 - u;      /* well defined for INT64_MIN too */
    }
    p = util_put_u64(p, u);
    *p = '\0';
    return (size_t)(p - buf);
}

size_t util_format_u64(char *buf, size_t size, uint64_t v)
{
    if (size < UTIL_NUM_MAX)
        return (size_t)snprintf(buf, size, "%" PRIu64, v);
    char *p = util_put_u64(buf, v);
    *p = '\0';
    return (size_t)(p - buf);
}

/* Below this, |v| x 10^decimals carries an error far under UTIL_TIE_BAND (2^33: an ulp of
 * 2^-19), so rounding the product rounds the exact value unless it lies in the band. */
#define UTIL_FIXED_LIMIT 8589934592.0
#define UTIL_TIE_BAND 1e-4

size_t util_format_fixed(char *buf, size_t size, double v, int decimals)
{
    static const double scale[] = { 1, 10, 100, 1000, 10000, 100000, 1000000 };
    if (decimals < 0 || decimals > 6 || size < UTIL_NUM_MAX)
        return (size_t)snprintf(buf, size, "%.*f", decimals, v);
    double s = fabs(v) * scale[decimals];
    if (!(s < UTIL_FIXED_LIMIT))    /* also NaN */
        return (size_t)snprintf(buf, size, "%.*f", decimals, v);
    double whole = floor(s), frac = s - whole;
    if (fabs(frac - 0.5) < UTIL_TIE_BAND)   /* printf rounds the exact decimal expansion */
        return (size_t)snprintf(buf, size, "%.*f", decimals, v);
    uint64_t r = (uint64_t)whole + (frac > 0.5);
    uint64_t unit = (uint64_t)scale[decimals];
    char *p = buf;
    if (signbit(v))
        *p++ = '-';     /* as printf: -0.04 is "-0.0" */
    p = util_put_u64(p, r / unit);
    if (decimals) {
        *p++ = '.';
        uint64_t f = r % unit;
        for (int k = decimals - 1; k >= 0; k--) {
            p[k] = (char)('0' + f % 10);
            f /= 10;
        }
        p += decimals;
    }
    *p = '\0';
    return (size_t)(p - buf);
}
