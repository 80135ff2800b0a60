/* http: the HTTP server.
 *
 * Two threads meet here, and only at one point: the loop swaps in new published state
 * (metrics text, snapshot) under the mutex; libmicrohttpd's one internal thread copies the
 * text or takes a snapshot reference under the same mutex and answers from that. Everything
 * else a request does (formatting JSON, opening a static file) happens on that thread with
 * no lock held. */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "util.h"

#define HTTP_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* MHD's per-connection pool holds the request head and the reply's headers; twice the limit
 * we answer 431 at leaves room for both, and anything past it MHD refuses itself. */
#define HTTP_MEMORY_LIMIT (2 * HTTP_MAX_HEADER_BYTES)
#define HTTP_LOG_BURST 5
#define HTTP_LOG_WINDOW_MS 60000
#define HTTP_ENTITIES "/ngsi-ld/v1/entities"
#define HTTP_SITES "/api/public/v3/parking-sites"

struct http_server {
    struct MHD_Daemon *mhd;
    pthread_mutex_t lock;
    char *metrics;                  /* under lock: the last /metrics text */
    size_t metrics_len;
    od_snapshot *snap;              /* under lock: the last published snapshot */
    char *name;
    bool api;
    char **origins;
    size_t n_origins;
    char *web_root;                 /* realpath of the web root, or NULL */
    char *config_json;
    atomic_bool starting;           /* MHD messages go to start_error, not the log */
    char start_error[256];
    int port;
    /* The ParkAPI list of one snapshot, rendered once: it is the one big answer, the
     * same for every client. Touched by MHD's one internal thread only; holds a reference
     * on its snapshot so the pointer comparison can never match a newer one at the same
     * address. */
    od_snapshot *sites_for;
    char *sites_body;
    size_t sites_len;
    /* MHD's messages after the start (about clients, so a client could flood the log): a
     * burst per window. Touched by MHD's one internal thread only. */
    int64_t log_window_ms;
    unsigned log_lines;
    unsigned long log_suppressed;
};

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    http_server *h = cls;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (atomic_load(&h->starting)) {
        snprintf(h->start_error, sizeof h->start_error, "%s", msg);
        return;
    }
    int64_t now = util_wall_ms();
    if (now - h->log_window_ms >= HTTP_LOG_WINDOW_MS) {
        h->log_window_ms = now;
        h->log_lines = 0;
    }
    if (h->log_lines >= HTTP_LOG_BURST) {
        h->log_suppressed++;
        return;
    }
    h->log_lines++;
    if (h->log_suppressed)
        log_warning("%s: %s (%lu similar suppressed)", h->name, msg, h->log_suppressed);
    else
        log_warning("%s: %s", h->name, msg);
    h->log_suppressed = 0;
}

/* ---- pure helpers ---- */

const char *http_content_type(const char *path)
{
    static const struct { const char *ext, *type; } types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".png", "image/png" },
        { ".svg", "image/svg+xml" },
        { ".json", "application/json" },
        { ".map", "application/json" },
        { ".txt", "text/plain; charset=utf-8" },
        { ".ico", "image/x-icon" },
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcmp(dot, types[i].ext))
                return types[i].type;
    return "application/octet-stream";
}

bool http_path_ok(const char *path)
{
    if (path[0] != '/' || strchr(path, '\\'))
        return false;
    for (const char *p = path + 1;;) {
        size_t n = strcspn(p, "/");
        if (n == 0 && p[0] == '/')
            return false;                           /* "//": an empty segment */
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (!p[n])
            return true;
        p += n + 1;
    }
}

/* ---- replies ---- */

/* The Origin of the request when it is one we answer CORS for, else NULL. */
static const char *http_cors_origin(const http_server *h, struct MHD_Connection *conn)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return NULL;
    for (size_t i = 0; i < h->n_origins; i++) {
        if (!strcmp(h->origins[i], "*"))
            return "*";
        if (!strcmp(h->origins[i], origin))
            return origin;
    }
    return NULL;
}

/* Queues R (consumed) with the common headers. */
static enum MHD_Result http_queue(const http_server *h, struct MHD_Connection *conn,
                                  unsigned status, struct MHD_Response *r, const char *type)
{
    if (!r)
        return MHD_NO;
    enum MHD_Result ok = MHD_YES;
    if (type)
        ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    const char *origin = http_cors_origin(h, conn);
    if (origin)
        ok &= MHD_add_response_header(r, "Access-Control-Allow-Origin", origin);
    /* the answer depends on Origin whenever origins are configured: caches must know */
    if (h->n_origins && (!origin || strcmp(origin, "*") != 0))
        ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
    enum MHD_Result rc = ok == MHD_YES ? MHD_queue_response(conn, status, r) : MHD_NO;
    MHD_destroy_response(r);
    return rc;
}

/* Queues an od_reply (its body handed to MHD, which frees it). */
static enum MHD_Result http_reply_od(const http_server *h, struct MHD_Connection *conn,
                                     od_reply *rep)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(rep->len, rep->body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        od_reply_free(rep);
        return MHD_NO;
    }
    rep->body = NULL;
    if (rep->link && MHD_add_response_header(r, MHD_HTTP_HEADER_LINK, rep->link) != MHD_YES) {
        MHD_destroy_response(r);
        od_reply_free(rep);
        return MHD_NO;
    }
    od_reply_free(rep);
    return http_queue(h, conn, rep->status, r, rep->content_type);
}

static enum MHD_Result http_problem(const http_server *h, struct MHD_Connection *conn,
                                    unsigned status, const char *type, const char *title,
                                    const char *detail)
{
    od_reply rep;
    od_problem(status, type, title, detail, &rep);
    return http_reply_od(h, conn, &rep);
}

static enum MHD_Result http_text(const http_server *h, struct MHD_Connection *conn,
                                 unsigned status, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                             MHD_RESPMEM_PERSISTENT);
    return http_queue(h, conn, status, r, "text/plain; charset=utf-8");
}

/* ---- routes ---- */

static enum MHD_Result http_metrics(http_server *h, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&h->lock);
    struct MHD_Response *r = NULL;
    if (h->metrics)
        r = MHD_create_response_from_buffer(h->metrics_len, h->metrics, MHD_RESPMEM_MUST_COPY);
    bool have = h->metrics != NULL;
    pthread_mutex_unlock(&h->lock);
    if (!have)
        return http_text(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "starting\n");
    return http_queue(h, conn, MHD_HTTP_OK, r, HTTP_METRICS_TYPE);
}

static od_snapshot *http_take_snapshot(http_server *h)
{
    pthread_mutex_lock(&h->lock);
    od_snapshot *s = od_snapshot_ref(h->snap);
    pthread_mutex_unlock(&h->lock);
    return s;
}

static const char *http_arg(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

/* GET /api/public/v3/parking-sites from the cache, rendered first if S is new. Consumes S's
 * reference. */
static enum MHD_Result http_sites(http_server *h, struct MHD_Connection *conn, od_snapshot *s)
{
    if (h->sites_for != s) {
        od_reply rep;
        od_parkapi(s, NULL, &rep);
        od_snapshot_unref(h->sites_for);
        free(h->sites_body);
        h->sites_for = od_snapshot_ref(s);
        h->sites_body = rep.body;
        h->sites_len = rep.len;
        rep.body = NULL;
        od_reply_free(&rep);
    }
    od_snapshot_unref(s);
    struct MHD_Response *r = MHD_create_response_from_buffer(h->sites_len, h->sites_body,
                                                             MHD_RESPMEM_MUST_COPY);
    return http_queue(h, conn, MHD_HTTP_OK, r, "application/json");
}

static enum MHD_Result http_api(http_server *h, struct MHD_Connection *conn, const char *url)
{
    od_snapshot *s = http_take_snapshot(h);
    if (!s)
        return http_problem(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "InternalError",
                            "Starting", "no state published yet");
    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
    od_query q = { .type = http_arg(conn, "type"), .options = http_arg(conn, "options"),
                   .id_pattern = http_arg(conn, "idPattern"), .limit = http_arg(conn, "limit"),
                   .offset = http_arg(conn, "offset"),
                   .ld_json = accept && strstr(accept, "application/ld+json") };
    od_reply rep;
    size_t ne = strlen(HTTP_ENTITIES), ns = strlen(HTTP_SITES);
    if (!strcmp(url, HTTP_ENTITIES))
        od_entities(s, &q, HTTP_ENTITIES, &rep);
    else if (!strncmp(url, HTTP_ENTITIES "/", ne + 1) && url[ne + 1])
        od_entity(s, url + ne + 1, &q, &rep);
    else if (!strcmp(url, HTTP_SITES))
        return http_sites(h, conn, s);
    else
        od_parkapi(s, url + ns + 1, &rep);
    od_snapshot_unref(s);
    return http_reply_od(h, conn, &rep);
}

static bool http_is_api(const char *url)
{
    size_t ne = strlen(HTTP_ENTITIES), ns = strlen(HTTP_SITES);
    return !strcmp(url, HTTP_ENTITIES) ||
           (!strncmp(url, HTTP_ENTITIES "/", ne + 1) && url[ne + 1]) || !strcmp(url, HTTP_SITES) ||
           (!strncmp(url, HTTP_SITES "/", ns + 1) && url[ns + 1] && !strchr(url + ns + 1, '/'));
}

/* Opens URL's file under the web root: the resolved path must stay inside the root (no
 * symlink out of it) and be a regular file. Returns the fd or -1. */
static int http_open_static(const http_server *h, const char *url, struct stat *st)
{
    if (!h->web_root || !http_path_ok(url))
        return -1;
    char path[PATH_MAX], real[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s%s", h->web_root, url);
    if (n < 0 || (size_t)n >= sizeof path || !realpath(path, real))
        return -1;
    size_t rl = strlen(h->web_root);
    if (strncmp(real, h->web_root, rl) != 0 || real[rl] != '/')
        return -1;
    int fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

static enum MHD_Result http_static(http_server *h, struct MHD_Connection *conn, const char *url)
{
    const char *file = strcmp(url, "/") ? url : "/index.html";
    struct stat st;
    int fd = http_open_static(h, file, &st);
    if (fd < 0) {
        if (!strcmp(url, "/"))
            return http_text(h, conn, MHD_HTTP_NOT_FOUND,
                             "no map page here: build it (make web) or set PARKD_WEB_ROOT; "
                             "the API is under /ngsi-ld/v1/entities and "
                             "/api/public/v3/parking-sites\n");
        return http_problem(h, conn, MHD_HTTP_NOT_FOUND, "ResourceNotFound", "Not found", NULL);
    }
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    return http_queue(h, conn, MHD_HTTP_OK, r, http_content_type(file));
}

static enum MHD_Result http_route(http_server *h, struct MHD_Connection *conn, const char *url)
{
    if (!strcmp(url, "/metrics"))
        return http_metrics(h, conn);
    if (!h->api)
        return http_text(h, conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
    if (http_is_api(url))
        return http_api(h, conn, url);
    if (!strcmp(url, "/config.json") && h->config_json) {
        struct MHD_Response *r = MHD_create_response_from_buffer(
            strlen(h->config_json), h->config_json, MHD_RESPMEM_PERSISTENT);
        return http_queue(h, conn, MHD_HTTP_OK, r, "application/json");
    }
    return http_static(h, conn, url);
}

static enum MHD_Result http_add_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    size_t *total = cls;
    (void)kind;
    *total += strlen(key) + (value ? strlen(value) : 0) + 4;   /* ": " and CRLF */
    return MHD_YES;
}

static enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **req_cls)
{
    http_server *h = cls;
    static int first_call;
    (void)upload_data;
    if (!*req_cls) {
        *req_cls = &first_call;     /* answer once the headers (and any body) are in */
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;      /* a body is never wanted: discard it */
        return MHD_YES;
    }
    size_t head = strlen(method) + strlen(url) + strlen(version) + 4;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, http_add_size, &head);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, http_add_size, &head);
    if (head > HTTP_MAX_HEADER_BYTES)
        return http_problem(h, conn, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "BadRequestData",
                            "Request header fields too large", "at most 8 KiB");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return http_problem(h, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "OperationNotSupported",
                            "Method not allowed", "this API is read-only: use GET");
    return http_route(h, conn, url);
}

/* ---- start and stop ---- */

/* Splits "HOST:PORT" or "[HOST]:PORT" and resolves it (first address). */
static int http_resolve(const char *listen, struct sockaddr_storage *ss, char *why,
                        size_t why_size)
{
    char host[256];
    const char *port;
    if (listen[0] == '[') {
        const char *close_b = strchr(listen, ']');
        if (!close_b || close_b[1] != ':' || (size_t)(close_b - listen - 1) >= sizeof host)
            goto bad;
        memcpy(host, listen + 1, (size_t)(close_b - listen - 1));
        host[close_b - listen - 1] = '\0';
        port = close_b + 2;
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
    freeaddrinfo(res);
    return 0;
bad:
    snprintf(why, why_size, "expected HOST:PORT or [IPv6]:PORT");
    return -EINVAL;
}

static int http_fail(http_server *h, char **err, const http_options *o, const char *why, int rc)
{
    size_t n = strlen(o->listen) + strlen(why) + strlen(o->name) + 64;
    *err = util_xmalloc(n);
    snprintf(*err, n, "%s: cannot listen on %s: %s", o->name, o->listen, why);
    http_stop(h);
    return rc;
}

static http_server *http_new(const http_options *o)
{
    http_server *h = util_xcalloc(1, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    atomic_init(&h->starting, true);
    h->name = util_xstrdup(o->name);
    h->api = o->api;
    h->origins = util_xcalloc(o->n_cors_origins + 1, sizeof *h->origins);
    for (size_t i = 0; i < o->n_cors_origins; i++)
        h->origins[i] = util_xstrdup(o->cors_origins[i]);
    h->n_origins = o->n_cors_origins;
    h->config_json = util_xstrdup(o->config_json);
    char real[PATH_MAX];
    if (o->web_root && realpath(o->web_root, real))
        h->web_root = util_xstrdup(real);
    return h;
}

int http_start(const http_options *o, http_server **out, char **err)
{
    *out = NULL;
    *err = NULL;
    struct sockaddr_storage ss;
    char why[256];
    int rc = http_resolve(o->listen, &ss, why, sizeof why);
    if (rc < 0)
        return http_fail(NULL, err, o, why, rc);
    http_server *h = http_new(o);
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;      /* v6 only: bound to exactly the address given */
    /* The server's thread takes no signals: they are the loop's (uv_signal). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    errno = 0;
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, http_on_request, h,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, h,
                              MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_LIMIT,
                              MHD_OPTION_END);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!h->mhd) {
        /* errno says it best ("Address already in use"); MHD's own message otherwise */
        const char *msg = saved                ? strerror(saved)
                          : h->start_error[0] ? h->start_error : "cannot start the HTTP server";
        snprintf(why, sizeof why, "%s", msg);
        return http_fail(h, err, o, why, saved ? -saved : -EIO);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    atomic_store(&h->starting, false);    /* from now on MHD's thread logs to the log */
    *out = h;
    return 0;
}

int http_port(const http_server *h)
{
    return h ? h->port : 0;
}

void http_set_metrics(http_server *h, const char *text, size_t len)
{
    if (!h)
        return;
    char *copy = util_xstrndup(text, len);
    pthread_mutex_lock(&h->lock);
    char *old = h->metrics;
    h->metrics = copy;
    h->metrics_len = len;
    pthread_mutex_unlock(&h->lock);
    free(old);
}

void http_publish(http_server *h, od_snapshot *snap)
{
    if (!h)
        return;
    od_snapshot_ref(snap);
    pthread_mutex_lock(&h->lock);
    od_snapshot *old = h->snap;
    h->snap = snap;
    pthread_mutex_unlock(&h->lock);
    od_snapshot_unref(old);     /* freed here, on the loop, unless a request still holds it */
}

void http_stop(http_server *h)
{
    if (!h)
        return;
    if (h->mhd)
        MHD_stop_daemon(h->mhd);
    pthread_mutex_destroy(&h->lock);
    free(h->metrics);
    od_snapshot_unref(h->snap);
    od_snapshot_unref(h->sites_for);
    free(h->sites_body);
    for (size_t i = 0; i < h->n_origins; i++)
        free(h->origins[i]);
    free(h->origins);
    free(h->web_root);
    free(h->config_json);
    free(h->name);
    free(h);
}
