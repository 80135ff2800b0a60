/* log: leveled log lines on stderr, with journal <N> prefixes under systemd, and rate-limited
 * warnings for rejected and anomalous input. The level may be read from any thread. */
#ifndef PARKD_LOG_H
#define PARKD_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* Detects whether stderr is the journal (JOURNAL_STREAM) to choose "<N>" prefixes over
 * timestamps. Safe to call again (reload). */
void log_init(enum cfg_log_level level);
void log_set_level(enum cfg_log_level level);

void log_msg(enum cfg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(CFG_LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(CFG_LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(CFG_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(CFG_LOG_DEBUG, __VA_ARGS__)

/* A rate limit for one kind of line: at most BURST lines per WINDOW_MS window (wall time).
 * Zero-initialised it is open. A limiter belongs to one thread. */
typedef struct log_limit {
    int64_t window_start_ms;
    unsigned lines;
    unsigned long suppressed;
} log_limit;

/* True when LIM lets one more line through now; *SUPPRESSED is then the number of lines held
 * back since the last one that passed (say it in the line). */
bool log_limit_pass(log_limit *lim, int64_t window_ms, unsigned burst,
                    unsigned long *suppressed);

/* A warning about rejected input, limited per REASON_INDEX (< 32) to a burst of lines per
 * 10 s window; the next line after a window says how many were suppressed. TOPIC is printed
 * with control and non-ASCII bytes escaped and cut at 200 bytes, since it is untrusted. */
void log_rejected(unsigned reason_index, const char *reason, const char *topic,
                  const char *detail);

/* A warning about input that was applied but looks wrong (e.g. a capacity mismatch), limited
 * like log_rejected with one shared limit for all kinds. */
void log_anomaly(const char *kind, const char *topic, const char *detail);

#endif
