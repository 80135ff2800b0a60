#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

#define LOG_BURST 10
#define LOG_WINDOW_MS 10000
#define LOG_REASONS 32

/* Atomic: the metrics thread logs too, while a reload on the loop may change the level. */
static _Atomic int log_level = CFG_LOG_INFO;
static bool log_to_journal;

/* The limiters are only used from the loop thread (message handling). */
static log_limit log_limits[LOG_REASONS];
static log_limit log_anomaly_limit;

/* JOURNAL_STREAM holds "dev:ino" of the journal's stream socket; stderr only counts as the
 * journal when it is that very file, not merely inherited by a child writing elsewhere. */
static bool log_stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(enum cfg_log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
    log_to_journal = log_stderr_is_journal();
}

void log_set_level(enum cfg_log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

static const char *log_level_name(enum cfg_log_level level)
{
    switch (level) {
    case CFG_LOG_ERROR: return "error";
    case CFG_LOG_WARNING: return "warning";
    case CFG_LOG_INFO: return "info";
    default: return "debug";
    }
}

static void log_vwrite(enum cfg_log_level level, const char *fmt, va_list ap)
{
    char prefix[64], msg[4096], out[8192];
    if (log_to_journal) {
        snprintf(prefix, sizeof prefix, "<%d>", (int)level);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000, log_level_name(level));
    }
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* A message of several lines (a list of config errors) becomes several lines that each
     * carry the prefix: the journal makes an entry of every line, and an entry without <N>
     * would get the default priority. */
    size_t len = 0;
    for (char *line = msg, *next; line && len < sizeof out; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!*line)
            continue;
        int n = snprintf(out + len, sizeof out - len, "%s%s\n", prefix, line);
        len = n < 0 ? len : len + (size_t)n >= sizeof out ? sizeof out - 1 : len + (size_t)n;
    }
    if (len && out[len - 1] != '\n')
        out[len - 1] = '\n';     /* cut: still end with a newline */
    /* one write per message so concurrent writers never interleave within a line */
    fwrite(out, 1, len, stderr);
    fflush(stderr);
}

void log_msg(enum cfg_log_level level, const char *fmt, ...)
{
    if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

static void log_escape(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 5 < size; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        }
        if (i >= 200) {
            o += (size_t)snprintf(out + o, size - o, "...");
            break;
        }
    }
    out[o] = '\0';
}

bool log_limit_pass(log_limit *lim, int64_t window_ms, unsigned burst,
                    unsigned long *suppressed)
{
    int64_t now = util_wall_ms();
    if (now - lim->window_start_ms >= window_ms) {
        lim->window_start_ms = now;
        lim->lines = 0;
    }
    if (lim->lines >= burst) {
        lim->suppressed++;
        return false;
    }
    lim->lines++;
    *suppressed = lim->suppressed;
    lim->suppressed = 0;
    return true;
}

static bool log_warnings_on(void)
{
    return CFG_LOG_WARNING <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_rejected(unsigned reason_index, const char *reason, const char *topic,
                  const char *detail)
{
    unsigned long suppressed;
    if (!log_warnings_on() || !log_limit_pass(&log_limits[reason_index % LOG_REASONS], LOG_WINDOW_MS,
                                               LOG_BURST, &suppressed))
        return;
    char safe[1024];
    log_escape(topic ? topic : "", safe, sizeof safe);
    if (suppressed)
        log_warning("rejected input (%s) on topic \"%s\": %s (%lu similar suppressed)", reason,
                    safe, detail, suppressed);
    else
        log_warning("rejected input (%s) on topic \"%s\": %s", reason, safe, detail);
}

void log_anomaly(const char *kind, const char *topic, const char *detail)
{
    unsigned long suppressed;
    if (!log_warnings_on() || !log_limit_pass(&log_anomaly_limit, LOG_WINDOW_MS, LOG_BURST,
                                                    &suppressed))
        return;
    char safe[1024];
    log_escape(topic ? topic : "", safe, sizeof safe);
    if (suppressed)
        log_warning("anomaly (%s) on topic \"%s\": %s (%lu similar suppressed)", kind, safe,
                    detail, suppressed);
    else
        log_warning("anomaly (%s) on topic \"%s\": %s", kind, safe, detail);
}
