/* metrics: the Prometheus text endpoint.
 *
 * Two threads meet here, and only at one point: the loop renders a snapshot into a new string
 * (metrics_update) and swaps it in under the mutex; libmicrohttpd's own thread answers a request
 * by copying the current string under the same mutex. The HTTP thread never sees loop state, so
 * a slow or hostile scraper can only ever cost a copy of the text. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "log.h"
#include "util.h"

#ifndef PARKD_VERSION
#define PARKD_VERSION "unknown"
#endif

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_MAX_CONNECTIONS 16
#define METRICS_CONNECTION_TIMEOUT_S 10

static const double metrics_bounds[METRICS_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
};

const double *metrics_latency_bounds(void)
{
    return metrics_bounds;
}

/* ---- rendering ---- */

typedef struct mbuf {
    char *s;
    size_t len, cap;
} mbuf;

static void mbuf_printf(mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void mbuf_printf(mbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort();    /* an invalid format: a programming error */
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        util_grow((void **)&b->s, &b->cap, b->len + (size_t)n + 1, 1);
    }
}

static void mbuf_putc(mbuf *b, char c)
{
    util_grow((void **)&b->s, &b->cap, b->len + 2, 1);
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

/* A label value: backslash, double quote and newline escaped, as the format requires. */
static void mbuf_label_value(mbuf *b, const char *v)
{
    for (; *v; v++) {
        switch (*v) {
        case '\\': mbuf_printf(b, "\\\\"); break;
        case '"': mbuf_printf(b, "\\\""); break;
        case '\n': mbuf_printf(b, "\\n"); break;
        default: mbuf_putc(b, *v); break;
        }
    }
}

/* A double the way Prometheus clients write it: the shortest text that reads back the same. */
static void mbuf_double(mbuf *b, double v)
{
    if (isnan(v)) {
        mbuf_printf(b, "NaN");
        return;
    }
    if (isinf(v)) {
        mbuf_printf(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char tmp[40];
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {    /* an integer, exactly: no exponent */
        mbuf_printf(b, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    mbuf_printf(b, "%s", tmp);
}

static void mbuf_header(mbuf *b, const char *name, const char *type, const char *help)
{
    mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{label="value"} — LABEL NULL for none. No newline, no value. */
static void mbuf_sample_start(mbuf *b, const char *name, const char *label, const char *value)
{
    mbuf_printf(b, "%s", name);
    if (label) {
        mbuf_printf(b, "{%s=\"", label);
        mbuf_label_value(b, value);
        mbuf_printf(b, "\"}");
    }
    mbuf_putc(b, ' ');
}

static void mbuf_sample_u64(mbuf *b, const char *name, const char *label, const char *value,
                            uint64_t v)
{
    mbuf_sample_start(b, name, label, value);
    mbuf_printf(b, "%" PRIu64 "\n", v);
}

static void mbuf_sample_double(mbuf *b, const char *name, const char *label, const char *value,
                               double v)
{
    mbuf_sample_start(b, name, label, value);
    mbuf_double(b, v);
    mbuf_putc(b, '\n');
}

/* The counter families with labels. A counter name belongs to the first family that matches:
 * one of EXACT, or PREFIX followed by the label value. */
enum { FAM_RESULT, FAM_REJECTED, FAM_ANOMALY, FAM_INPUT, FAM_COUNT, FAM_NONE = -1 };

typedef struct metrics_family {
    const char *name, *help, *label;
    const char *prefix;             /* NULL: the EXACT list */
    const char *const *exact;
} metrics_family;

static const char *const metrics_results[] = {
    "applied", "unchanged", "ignored_old", "ignored_duplicate", NULL,
};

static const metrics_family metrics_families[FAM_COUNT] = {
    [FAM_RESULT] = { "parkd_messages_total",
                     "Input messages by result (rejected: any reason).", "result", NULL,
                     metrics_results },
    [FAM_REJECTED] = { "parkd_rejected_total", "Rejected input messages by reason.", "reason",
                       "rejected_", NULL },
    [FAM_ANOMALY] = { "parkd_anomalies_total",
                      "Accepted input that needed correcting (clamped, capacity mismatch).",
                      "kind", "anomaly_", NULL },
    [FAM_INPUT] = { "parkd_input_messages_total",
                    "Input messages with a valid topic, by kind (bay, gate, count).", "kind",
                    "input_", NULL },
};

/* The family of counter NAME and its label value (a pointer into NAME), or FAM_NONE. */
static int metrics_classify(const char *name, const char **label_value)
{
    for (int f = 0; f < FAM_COUNT; f++) {
        const metrics_family *fam = &metrics_families[f];
        if (fam->exact) {
            for (const char *const *e = fam->exact; *e; e++) {
                if (strcmp(name, *e) == 0) {
                    *label_value = name;
                    return f;
                }
            }
        } else {
            size_t n = strlen(fam->prefix);
            if (strncmp(name, fam->prefix, n) == 0 && name[n]) {
                *label_value = name + n;
                return f;
            }
        }
    }
    return FAM_NONE;
}

static void metrics_render_counters(mbuf *b, const metrics_snapshot *s)
{
    uint64_t rejected = 0;
    for (size_t i = 0; i < s->n_counters; i++) {
        const char *v;
        if (metrics_classify(s->counter_names[i], &v) == FAM_REJECTED)
            rejected += s->counters[i];
    }
    for (int f = 0; f < FAM_COUNT; f++) {
        const metrics_family *fam = &metrics_families[f];
        bool header = false;
        for (size_t i = 0; i < s->n_counters; i++) {
            const char *v;
            if (metrics_classify(s->counter_names[i], &v) != f)
                continue;
            if (!header) {
                mbuf_header(b, fam->name, "counter", fam->help);
                header = true;
            }
            mbuf_sample_u64(b, fam->name, fam->label, v, s->counters[i]);
        }
        if (f == FAM_RESULT && header)
            mbuf_sample_u64(b, fam->name, fam->label, "rejected", rejected);
    }
    /* everything else: one family per counter */
    for (size_t i = 0; i < s->n_counters; i++) {
        const char *v, *n = s->counter_names[i];
        if (metrics_classify(n, &v) != FAM_NONE)
            continue;
        char name[128];
        bool received = strcmp(n, "messages_in") == 0;
        snprintf(name, sizeof name, "parkd_%s_total", received ? "messages_received" : n);
        for (char *c = name; *c; c++) {
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_'))
                *c = '_';
        }
        char help[160];
        if (received)
            snprintf(help, sizeof help, "Input messages received (own output topics excluded).");
        else
            snprintf(help, sizeof help, "The parkd:daemon counter %s.", n);
        mbuf_header(b, name, "counter", help);
        mbuf_sample_u64(b, name, NULL, NULL, s->counters[i]);
    }
}

static void metrics_render_services(mbuf *b, const metrics_snapshot *s)
{
    mbuf_header(b, "parkd_up", "gauge", "1 when the connection to the service is up.");
    mbuf_sample_u64(b, "parkd_up", "service", "mqtt", s->mqtt_up);
    mbuf_sample_u64(b, "parkd_up", "service", "redis", s->redis_up);
    mbuf_header(b, "parkd_reconnects_total", "counter",
                "Reconnection attempts to the service (after the first connect).");
    mbuf_sample_u64(b, "parkd_reconnects_total", "service", "mqtt", s->mqtt_reconnects);
    mbuf_sample_u64(b, "parkd_reconnects_total", "service", "redis", s->redis_reconnects);
}

/* A per-lot sample: name{lot="ID"[,EXTRA="EXTRA_VALUE"]} */
static void mbuf_lot_start(mbuf *b, const char *name, const lot *l, const char *extra,
                           const char *extra_value)
{
    mbuf_printf(b, "%s{lot=\"", name);
    mbuf_label_value(b, l->id);
    if (extra) {
        mbuf_printf(b, "\",%s=\"", extra);
        mbuf_label_value(b, extra_value);
    }
    mbuf_printf(b, "\"} ");
}

enum lot_gauge {
    G_CAPACITY, G_OCCUPIED, G_FREE, G_FREE_SMOOTHED, G_OCCUPANCY, G_STALE, G_LAST_EVENT,
    G_COUNT
};

static const struct {
    const char *name, *help;
    bool needs_data;        /* no sample for a lot without data */
} lot_gauges[G_COUNT] = {
    [G_CAPACITY] = { "parkd_lot_capacity", "Configured capacity of the lot.", false },
    [G_OCCUPIED] = { "parkd_lot_occupied", "Occupied spaces.", true },
    [G_FREE] = { "parkd_lot_free", "Free spaces.", true },
    [G_FREE_SMOOTHED] = { "parkd_lot_free_smoothed", "Smoothed free spaces.", true },
    [G_OCCUPANCY] = { "parkd_lot_occupancy", "Occupied spaces / capacity (0..1).", true },
    [G_STALE] = { "parkd_lot_stale", "1 when the lot has had no input for stale_after.", false },
    [G_LAST_EVENT] = { "parkd_lot_last_event_timestamp_seconds",
                       "Event time of the newest applied input (Unix seconds).", true },
};

static double metrics_lot_value(const lot *l, enum lot_gauge g)
{
    switch (g) {
    case G_CAPACITY: return (double)l->capacity;
    case G_OCCUPIED: return (double)l->occupied;
    case G_FREE: return (double)lot_free_spaces(l);
    case G_FREE_SMOOTHED:
        return l->smooth.started ? l->smooth.smoothed : (double)lot_free_spaces(l);
    case G_OCCUPANCY: return lot_occupancy(l);
    case G_STALE: return l->stale ? 1 : 0;
    case G_LAST_EVENT: return (double)l->ts_ms / 1000.0;
    default: return NAN;
    }
}

static void metrics_render_lots(mbuf *b, const metrics_snapshot *s)
{
    mbuf_header(b, "parkd_lots", "gauge", "Configured lots.");
    mbuf_sample_u64(b, "parkd_lots", NULL, NULL, s->n_lots);
    if (!s->n_lots)
        return;
    mbuf_header(b, "parkd_lot_info", "gauge", "Always 1; the lot's name and source as labels.");
    for (size_t i = 0; i < s->n_lots; i++) {
        const lot *l = s->lots[i];
        mbuf_printf(b, "parkd_lot_info{lot=\"");
        mbuf_label_value(b, l->id);
        mbuf_printf(b, "\",name=\"");
        mbuf_label_value(b, l->name ? l->name : l->id);
        mbuf_printf(b, "\",source=\"%s\"} 1\n", cfg_source_name(l->source));
    }
    for (int g = 0; g < G_COUNT; g++) {
        mbuf_header(b, lot_gauges[g].name, "gauge", lot_gauges[g].help);
        for (size_t i = 0; i < s->n_lots; i++) {
            const lot *l = s->lots[i];
            if (lot_gauges[g].needs_data && !l->has_data)
                continue;
            mbuf_lot_start(b, lot_gauges[g].name, l, NULL, NULL);
            mbuf_double(b, metrics_lot_value(l, (enum lot_gauge)g));
            mbuf_putc(b, '\n');
        }
    }
    static const enum lot_status statuses[] = {
        LOT_STATUS_UNKNOWN, LOT_STATUS_OPEN, LOT_STATUS_ALMOST_FULL, LOT_STATUS_FULL,
    };
    mbuf_header(b, "parkd_lot_status", "gauge", "1 for the lot's current status, else 0.");
    for (size_t i = 0; i < s->n_lots; i++) {
        for (size_t k = 0; k < sizeof statuses / sizeof statuses[0]; k++) {
            mbuf_lot_start(b, "parkd_lot_status", s->lots[i], "status",
                           lot_status_name(statuses[k]));
            mbuf_printf(b, "%d\n", s->lots[i]->status == statuses[k]);
        }
    }
}

static void metrics_render_latency(mbuf *b, const metrics_snapshot *s)
{
    static const char name[] = "parkd_input_to_redis_seconds";
    mbuf_header(b, name, "histogram",
                "Time from reading an input message to Redis confirming its effect.");
    char le[40];
    for (int i = 0; s->latency_bounds && s->latency_counts && i < METRICS_LATENCY_BUCKETS; i++) {
        mbuf tmp = { 0 };
        mbuf_double(&tmp, s->latency_bounds[i]);
        snprintf(le, sizeof le, "%s", tmp.s);
        free(tmp.s);
        mbuf_sample_u64(b, "parkd_input_to_redis_seconds_bucket", "le", le, s->latency_counts[i]);
    }
    mbuf_sample_u64(b, "parkd_input_to_redis_seconds_bucket", "le", "+Inf", s->latency_count);
    mbuf_sample_double(b, "parkd_input_to_redis_seconds_sum", NULL, NULL, s->latency_sum_seconds);
    mbuf_sample_u64(b, "parkd_input_to_redis_seconds_count", NULL, NULL, s->latency_count);
}

char *metrics_render(const metrics_snapshot *snap, size_t *len)
{
    mbuf b = { 0 };
    util_grow((void **)&b.s, &b.cap, 4096, 1);
    b.s[0] = '\0';
    mbuf_header(&b, "parkd_build_info", "gauge", "Always 1; the parkd version as a label.");
    mbuf_sample_u64(&b, "parkd_build_info", "version", PARKD_VERSION, 1);
    if (snap->started_ms) {
        mbuf_header(&b, "parkd_start_time_seconds", "gauge", "Start time of parkd (Unix seconds).");
        mbuf_sample_double(&b, "parkd_start_time_seconds", NULL, NULL,
                           (double)snap->started_ms / 1000.0);
    }
    metrics_render_services(&b, snap);
    metrics_render_counters(&b, snap);
    metrics_render_lots(&b, snap);
    metrics_render_latency(&b, snap);
    *len = b.len;
    return b.s;
}

/* ---- the HTTP server ---- */

struct metrics {
    struct MHD_Daemon *mhd;
    pthread_mutex_t lock;
    char *text;                 /* the last rendered text, under lock */
    size_t len;
    atomic_bool starting;       /* MHD messages go to start_error, not the log */
    char start_error[256];
    int port;
    /* MHD's messages after the start (about clients, so a scraper could flood the log): a
     * burst per window. Touched by MHD's one polling thread only. */
    int64_t log_window_ms;
    unsigned log_lines;
    unsigned long log_suppressed;
};

#define METRICS_LOG_BURST 5
#define METRICS_LOG_WINDOW_MS 60000

static void metrics_mhd_log(void *cls, const char *fmt, va_list ap)
{
    metrics *m = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (atomic_load(&m->starting)) {
        snprintf(m->start_error, sizeof m->start_error, "%s", msg);
        return;
    }
    int64_t now = util_wall_ms();
    if (now - m->log_window_ms >= METRICS_LOG_WINDOW_MS) {
        m->log_window_ms = now;
        m->log_lines = 0;
    }
    if (m->log_lines >= METRICS_LOG_BURST) {
        m->log_suppressed++;
        return;
    }
    m->log_lines++;
    if (m->log_suppressed)
        log_warning("metrics: %s (%lu similar suppressed)", msg, m->log_suppressed);
    else
        log_warning("metrics: %s", msg);
    m->log_suppressed = 0;
}

static enum MHD_Result metrics_reply(struct MHD_Connection *conn, unsigned status,
                                     const char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            status == MHD_HTTP_OK ? METRICS_CONTENT_TYPE
                                                  : "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

#define METRICS_TEXT(s) (s), sizeof(s) - 1, MHD_RESPMEM_PERSISTENT

static enum MHD_Result metrics_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                          const char *method, const char *version,
                                          const char *upload_data, size_t *upload_data_size,
                                          void **req_cls)
{
    metrics *m = cls;
    static int first_call;
    (void)version; (void)upload_data;
    if (!*req_cls) {
        *req_cls = &first_call;     /* answer once the headers (and any body) are in */
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;      /* a body is never wanted: discard it */
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return metrics_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                             METRICS_TEXT("method not allowed: use GET\n"));
    if (strcmp(url, "/metrics") != 0)
        return metrics_reply(conn, MHD_HTTP_NOT_FOUND, METRICS_TEXT("not found: try /metrics\n"));
    pthread_mutex_lock(&m->lock);
    enum MHD_Result rc;
    if (m->text)
        rc = metrics_reply(conn, MHD_HTTP_OK, m->text, m->len, MHD_RESPMEM_MUST_COPY);
    else
        rc = metrics_reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, METRICS_TEXT("starting\n"));
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* Splits "HOST:PORT" or "[HOST]:PORT" and resolves it (first address). */
static int metrics_resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen,
                           char *why, size_t why_size)
{
    char host[256];
    const char *port;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof host)
            goto bad;
        memcpy(host, listen + 1, (size_t)(close - listen - 1));
        host[close - listen - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof host)
            goto bad;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        port = colon + 1;
    }
    char *end;
    errno = 0;
    long port_number = strtol(port, &end, 10);
    if (!host[0] || !port[0] || *end || errno || port_number < 0 || port_number > 65535 ||
        port[0] == '-' || port[0] == '+' || port[0] == ' ')
        goto bad;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(why, why_size, "%s", gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
bad:
    snprintf(why, why_size, "expected HOST:PORT or [IPv6]:PORT");
    return -EINVAL;
}

static int metrics_fail(metrics *m, char **err, const char *listen, const char *why, int rc)
{
    size_t n = strlen(listen) + strlen(why) + 64;
    *err = util_xmalloc(n);
    snprintf(*err, n, "metrics: cannot listen on %s: %s", listen, why);
    if (m) {
        pthread_mutex_destroy(&m->lock);
        free(m);
    }
    return rc;
}

int metrics_start(const char *listen, metrics **out, char **err)
{
    *out = NULL;
    *err = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen;
    char why[256];
    int rc = metrics_resolve(listen, &ss, &sslen, why, sizeof why);
    if (rc < 0)
        return metrics_fail(NULL, err, listen, why, rc);

    metrics *m = util_xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    atomic_init(&m->starting, true);
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;      /* v6 only: bound to exactly the address given */
    /* The server's thread takes no signals: they are the loop's (uv_signal). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    errno = 0;
    m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, metrics_on_request, m,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_EXTERNAL_LOGGER, metrics_mhd_log, m,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_MAX_CONNECTIONS,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_CONNECTION_TIMEOUT_S,
                              MHD_OPTION_END);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!m->mhd) {
        /* errno says it best ("Address already in use"); MHD's own message otherwise */
        const char *msg = saved                ? strerror(saved)
                          : m->start_error[0] ? m->start_error : "cannot start the HTTP server";
        snprintf(why, sizeof why, "%s", msg);
        return metrics_fail(m, err, listen, why, saved ? -saved : -EIO);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
    m->port = info ? info->port : 0;
    atomic_store(&m->starting, false);    /* from now on MHD's thread logs to the log */
    *out = m;
    return 0;
}

int metrics_port(const metrics *m)
{
    return m ? m->port : 0;
}

void metrics_update(metrics *m, const metrics_snapshot *snap)
{
    if (!m)
        return;
    size_t len;
    char *text = metrics_render(snap, &len);
    pthread_mutex_lock(&m->lock);
    char *old = m->text;
    m->text = text;
    m->len = len;
    pthread_mutex_unlock(&m->lock);
    free(old);
}

void metrics_stop(metrics *m)
{
    if (!m)
        return;
    if (m->mhd)
        MHD_stop_daemon(m->mhd);
    pthread_mutex_destroy(&m->lock);
    free(m->text);
    free(m);
}
