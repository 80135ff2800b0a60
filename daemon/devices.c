/* devices: the devices_file of an input (SPEC §9).
 *
 * The file's text is kept and each accepted line is rewritten in place as "device\0lot\0bay\0"
 * (never longer than the line it replaces), so the entries point into it and a 64 MiB file costs
 * no second copy of its strings. The lot+bay index uses the contiguous "lot\0bay" as its key
 * (ids hold no NUL, so the pair is unambiguous). Map values are entry indexes + 1 rather than
 * pointers, because the entry array still grows while the file is read. */
#include "devices.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "map.h"
#include "payload.h"
#include "util.h"

struct dev_map {
    char *text;              /* the file, rewritten in place */
    dev_entry *entries;
    size_t n, cap;
    map *by_device;          /* normalised device -> index + 1 */
};

/* A loader's state: the map being built, the lot+bay index and the errors so far. */
typedef struct dev_loader {
    const char *path;
    dev_map *m;
    map *by_bay;             /* "lot\0bay" -> index + 1; only needed while loading */
    char *errors;
    size_t errors_len, errors_cap, n_errors;
} dev_loader;

#define ID_RULE "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"

/* ---- errors ------------------------------------------------------------------------------- */

/* Appends "PATH:LINE: MSG\n" (or "PATH: MSG\n" for LINE 0) to the text. */
static void dev_append(dev_loader *ld, size_t line, const char *msg)
{
    size_t need = strlen(ld->path) + strlen(msg) + 32;
    util_grow((void **)&ld->errors, &ld->errors_cap, ld->errors_len + need, 1);
    int n = line ? sprintf(ld->errors + ld->errors_len, "%s:%zu: %s\n", ld->path, line, msg)
                 : sprintf(ld->errors + ld->errors_len, "%s: %s\n", ld->path, msg);
    ld->errors_len += (size_t)n;
}

__attribute__((format(printf, 3, 4)))
static void dev_error(dev_loader *ld, size_t line, const char *fmt, ...)
{
    if (ld->n_errors++ >= DEV_MAX_ERRORS)
        return;
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dev_append(ld, line, msg);
}

/* The collected text with the count of those not shown; malloc'd. */
static char *dev_take_errors(dev_loader *ld)
{
    if (ld->n_errors > DEV_MAX_ERRORS) {
        char msg[64];
        snprintf(msg, sizeof msg, "%zu more errors not shown", ld->n_errors - DEV_MAX_ERRORS);
        dev_append(ld, 0, msg);
    }
    char *e = ld->errors;
    ld->errors = NULL;
    return e;
}

/* ---- keys ------------------------------------------------------------------------------------ */

static int dev_is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Upper-cases S[0..LEN) in place when it is a DevEUI (16 hex digits): DevEUIs are written in
 * either case (TTN sends upper, ChirpStack lower), device ids are compared as given. */
static void dev_normalise(char *s, size_t len)
{
    if (len != 16)
        return;
    for (size_t i = 0; i < len; i++) {
        if (!dev_is_hex(s[i]))
            return;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] >= 'a' && s[i] <= 'f')
            s[i] = (char)(s[i] - 'a' + 'A');
    }
}

/* ---- lines ------------------------------------------------------------------------------------ */

typedef struct dev_field {
    char *p;
    size_t len;
} dev_field;

static int dev_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static dev_field dev_trim(char *p, size_t len)
{
    while (len && dev_is_space(*p)) {
        p++;
        len--;
    }
    while (len && dev_is_space(p[len - 1]))
        len--;
    return (dev_field){p, len};
}

/* Splits LINE[0..LEN) at commas into up to 3 trimmed fields; returns how many there are
 * (4 meaning "more than 3"). */
static size_t dev_split(char *line, size_t len, dev_field f[3])
{
    size_t n = 0;
    char *start = line, *end = line + len;
    for (char *p = line;; p++) {
        if (p == end || *p == ',') {
            if (n == 3)
                return 4;
            f[n++] = dev_trim(start, (size_t)(p - start));
            if (p == end)
                return n;
            start = p + 1;
        }
    }
}

/* Checks the three fields; false (with errors recorded) when any breaks its rule. */
static int dev_check_fields(dev_loader *ld, size_t line, const dev_field f[3])
{
    static const char *const names[3] = {"device (a device id or DevEUI)", "lot", "bay"};
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        if (!pl_valid_id(f[i].p, f[i].len)) {
            dev_error(ld, line, "%s %s: must match " ID_RULE, names[i],
                      f[i].len ? "is not a valid id" : "is empty");
            ok = 0;
        }
    }
    return ok;
}

/* Rewrites the fields as "device\0lot\0bay\0" from DST on; returns the entry. Fields only move
 * towards DST, which lies at or before the first, so memmove never overtakes unread bytes. */
static dev_entry dev_pack(char *dst, const dev_field f[3], size_t line)
{
    char *at[3];
    for (int i = 0; i < 3; i++) {
        memmove(dst, f[i].p, f[i].len);
        at[i] = dst;
        dst[f[i].len] = '\0';
        dst += f[i].len + 1;
    }
    return (dev_entry){at[0], at[1], at[2], line};
}

static size_t dev_index(const void *v)
{
    return (size_t)(uintptr_t)v - 1;
}

/* Indexes entry I of the map; false (with an error) when its device or its bay is taken. */
static int dev_index_entry(dev_loader *ld, size_t i)
{
    dev_map *m = ld->m;
    const dev_entry *e = &m->entries[i];
    size_t dlen = strlen(e->device), pair_len = strlen(e->lot) + 1 + strlen(e->bay);
    void *dup = map_get(m->by_device, e->device, dlen);
    if (dup) {
        dev_error(ld, e->line, "device %s listed twice (first at line %zu)", e->device,
                  m->entries[dev_index(dup)].line);
        return 0;
    }
    dup = map_get(ld->by_bay, e->lot, pair_len);
    if (dup) {
        const dev_entry *o = &m->entries[dev_index(dup)];
        dev_error(ld, e->line, "lot %s bay %s is already mapped to device %s (line %zu)", e->lot,
                  e->bay, o->device, o->line);
        return 0;
    }
    map_put(m->by_device, e->device, dlen, (void *)(uintptr_t)(i + 1));
    map_put(ld->by_bay, e->lot, pair_len, (void *)(uintptr_t)(i + 1));
    return 1;
}

/* One line, LINE[0..LEN) without its newline. */
static void dev_line(dev_loader *ld, size_t lineno, char *line, size_t len)
{
    if (len > DEV_LINE_MAX) {
        dev_error(ld, lineno, "line longer than %d bytes", DEV_LINE_MAX);
        return;
    }
    dev_field all = dev_trim(line, len);
    if (all.len == 0 || all.p[0] == '#')
        return;
    dev_field f[3];
    size_t n = dev_split(line, len, f);
    if (n != 3) {
        dev_error(ld, lineno, "expected 3 fields (device,lot,bay), got %s",
                  n > 3 ? "more" : n == 2 ? "2" : "1");
        return;
    }
    if (!dev_check_fields(ld, lineno, f))
        return;
    dev_map *m = ld->m;
    util_grow((void **)&m->entries, &m->cap, m->n + 1, sizeof *m->entries);
    m->entries[m->n] = dev_pack(line, f, lineno);
    dev_normalise((char *)m->entries[m->n].device, f[0].len);
    if (dev_index_entry(ld, m->n))
        m->n++;
}

/* Walks the text line by line; false when there are more than DEV_MAX_LINES. */
static int dev_lines(dev_loader *ld, char *text, size_t len)
{
    size_t lineno = 0;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        if (++lineno > DEV_MAX_LINES) {
            dev_error(ld, 0, "more than %d lines", DEV_MAX_LINES);
            return 0;
        }
        dev_line(ld, lineno, p, (size_t)(stop - p));
        p = stop + 1;
    }
    return 1;
}

/* ---- loading ------------------------------------------------------------------------------- */

void dev_free(dev_map *m)
{
    if (!m)
        return;
    map_free(m->by_device);
    free(m->entries);
    free(m->text);
    free(m);
}

/* Takes TEXT (malloc'd, LEN bytes): the map owns it from here on, success or not. */
static int dev_build(const char *path, char *text, size_t len, dev_map **out, char **errors)
{
    dev_map *m = util_xcalloc(1, sizeof *m);
    m->text = text;
    m->by_device = map_new();
    dev_loader ld = {.path = path, .m = m, .by_bay = map_new()};
    dev_lines(&ld, text, len);
    map_free(ld.by_bay);
    *out = NULL;
    *errors = NULL;
    if (ld.n_errors) {
        *errors = dev_take_errors(&ld);
        dev_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int dev_parse(const char *path, const char *data, size_t len, dev_map **out, char **errors)
{
    if (len > DEV_MAX_FILE) {
        dev_loader ld = {.path = path};
        dev_error(&ld, 0, "larger than %u bytes", DEV_MAX_FILE);
        *out = NULL;
        *errors = dev_take_errors(&ld);
        return -1;
    }
    char *text = util_xmalloc(len + 1);
    memcpy(text, data, len);
    text[len] = '\0';
    return dev_build(path, text, len, out, errors);
}

/* Reads FD to its end, at most DEV_MAX_FILE bytes, into a malloc'd buffer. Returns 0 or an
 * errno (EFBIG past the bound). */
static int dev_read_fd(int fd, char **data, size_t *len)
{
    size_t cap = 0, n = 0;
    char *buf = NULL;
    for (;;) {
        util_grow((void **)&buf, &cap, n + 65536 + 1, 1);
        ssize_t got = read(fd, buf + n, cap - n - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            int err = got < 0 ? errno : 0;
            if (err) {
                free(buf);
                return err;
            }
            break;
        }
        n += (size_t)got;
        if (n > DEV_MAX_FILE) {
            free(buf);
            return EFBIG;
        }
    }
    *data = buf;
    *len = n;
    return 0;
}

int dev_load(const char *path, dev_map **out, char **errors)
{
    const char *kind = NULL;
    int fd = util_open_regular(path, &kind);
    int err = fd < 0 ? errno : 0;
    char *text = NULL;
    size_t len = 0;
    if (fd >= 0) {
        err = dev_read_fd(fd, &text, &len);
        close(fd);
    }
    if (!err)
        return dev_build(path, text, len, out, errors);
    dev_loader ld = {.path = path};
    if (kind)
        dev_error(&ld, 0, "not a regular file (%s)", kind);
    else if (err == EFBIG)
        dev_error(&ld, 0, "larger than %u bytes", DEV_MAX_FILE);
    else
        dev_error(&ld, 0, "cannot read: %s", strerror(err));
    *out = NULL;
    *errors = dev_take_errors(&ld);
    return -1;
}

/* ---- lookup --------------------------------------------------------------------------------- */

static const dev_entry *dev_find_key(const dev_map *m, const char *key)
{
    if (!key || !*key)
        return NULL;
    size_t len = strnlen(key, PL_ID_MAX + 1);
    if (len > PL_ID_MAX)
        return NULL;
    char norm[PL_ID_MAX + 1];
    memcpy(norm, key, len);
    dev_normalise(norm, len);
    void *v = map_get(m->by_device, norm, len);
    return v ? &m->entries[dev_index(v)] : NULL;
}

const dev_entry *dev_find(const dev_map *m, const char *device_id, const char *dev_eui)
{
    if (!m)
        return NULL;
    const dev_entry *e = dev_find_key(m, dev_eui);
    return e ? e : dev_find_key(m, device_id);
}

size_t dev_count(const dev_map *m)
{
    return m ? m->n : 0;
}
