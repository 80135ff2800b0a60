/* util: allocation wrappers that abort on out of memory, clocks, and number formatting. */
#ifndef PARKD_UTIL_H
#define PARKD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Never return NULL: running out of memory is fatal for a daemon that must not lose state
 * silently, so these print a message and abort. */
void *util_xmalloc(size_t size);
void *util_xcalloc(size_t n, size_t size);
void *util_xrealloc(void *p, size_t size);
char *util_xstrdup(const char *s);        /* NULL in, NULL out */
char *util_xstrndup(const char *s, size_t n);

/* Grows *ARRAY (of *CAP elements of ELEM bytes) so that it holds at least NEED elements. */
void util_grow(void **array, size_t *cap, size_t need, size_t elem);

/* Wall-clock time in ms since the epoch. */
int64_t util_wall_ms(void);

/* Opens PATH for reading when it is a regular file, for the files parkd reads itself on its
 * loop (configuration, password files): a FIFO named by mistake would block the loop in open()
 * or read() until some writer came (no signal handled meanwhile), and a device such as
 * /dev/zero never ends. Nothing but a regular file is opened, and the open cannot block
 * (O_NONBLOCK). Returns the descriptor (O_CLOEXEC; caller closes), or -1 with errno set: EISDIR
 * for a directory, EINVAL for any other kind of file; *KIND (when KIND is not NULL) then names
 * that kind ("a FIFO"), else it is NULL. */
int util_open_regular(const char *path, const char **kind);

/* What MODE's file type is, for a message: "a regular file", "a directory", "a FIFO", ... */
const char *util_file_kind(mode_t mode);

/* Reads a secret from PATH, a regular file (util_open_regular): its first line without the
 * newline, at most 1023 bytes. Returns a malloc'd string (caller frees, after wiping it), or
 * NULL with errno set (EINVAL for an empty file). Never logs the content. */
char *util_read_secret_file(const char *path);

/* A hint for a connect that failed with ERR before reaching the server: for EPERM/EACCES
 * (what a local firewall or systemd's IPAddressDeny= gives), " (blocked on this host: a
 * firewall, or IPAddressDeny=/IPAddressAllow= of the unit)"; else "". */
const char *util_connect_hint(int err);

/* Sets the process time zone (TZ) to ZONE, an IANA name; NULL keeps the system's. Local time
 * is what forecast profiles learn by. Call once at start, before any thread exists: setenv is
 * not thread-safe, so a reload cannot change it (the config marks timezone restart-only). */
void util_set_timezone(const char *zone);

/* Number formatting on the per-event path, where printf's generality was a sixth of parkd's CPU
 * per event under load. Both write a NUL-terminated string into BUF (SIZE >= UTIL_NUM_MAX) and
 * return its length. */
#define UTIL_NUM_MAX 32
size_t util_format_i64(char *buf, size_t size, int64_t v);
size_t util_format_u64(char *buf, size_t size, uint64_t v);
/* V's digits at P (room for 20), no terminator; returns where they end. */
char *util_put_u64(char *p, uint64_t v);
/* Exactly what snprintf's "%.<DECIMALS>f" writes (0 <= DECIMALS <= 6): the common case by
 * integer arithmetic, and snprintf itself for what that cannot decide exactly (a value within
 * rounding error of a tie, a large value, NaN, infinity). */
size_t util_format_fixed(char *buf, size_t size, double v, int decimals);

#endif
