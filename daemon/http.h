/* http: parkd's one HTTP server (libmicrohttpd, on a thread of its own): GET /metrics, and with
 * the API on the SPEC §8 routes (NGSI-LD, ParkAPI v3, /config.json, the map's static files).
 *
 * Read-only, and it never touches loop state: the loop publishes immutable things (the
 * rendered /metrics text, an od_snapshot) with http_set_metrics / http_publish, which swap a
 * pointer under a mutex; a request takes a reference under the same mutex and formats from it
 * with the mutex released. So a request costs the loop nothing but that swap, and a slow or
 * hostile client can only hold its own reference. */
#ifndef PARKD_HTTP_H
#define PARKD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "opendata.h"

#define HTTP_MAX_HEADER_BYTES 8192  /* request line + headers; more is answered 431 */
#define HTTP_IDLE_TIMEOUT_S 10      /* a connection idle this long is closed */

typedef struct http_server http_server;

typedef struct http_options {
    const char *listen;             /* "HOST:PORT" or "[IPv6]:PORT"; port 0: a free one */
    const char *name;               /* prefix of its log lines and errors: "http", "metrics" */
    bool api;                       /* false: /metrics only */
    unsigned max_connections;       /* more at once are refused */
    char *const *cors_origins;      /* Origin values answered with Access-Control-Allow-Origin */
    size_t n_cors_origins;          /* ("*": any) */
    const char *web_root;           /* static files; NULL: none */
    const char *config_json;        /* body of GET /config.json (copied); NULL: 404 */
} http_options;

/* Starts serving per O (everything in O is copied), bound to that address only. Returns 0 and
 * *out, or a negative errno and *err (malloc'd "NAME: cannot listen on LISTEN: why", caller
 * frees): a bad address, a port in use, no thread. */
int http_start(const http_options *o, http_server **out, char **err);

/* The port it listens on. */
int http_port(const http_server *h);

/* The /metrics text from now on (copied). Any one thread at a time (the loop). */
void http_set_metrics(http_server *h, const char *text, size_t len);

/* The snapshot the API answers from from now on; takes a reference of its own. */
void http_publish(http_server *h, od_snapshot *snap);

/* Stops the server (waits for its thread: requests in progress finish) and frees H; NULL is
 * fine. */
void http_stop(http_server *h);

/* The Content-Type for a file name by its extension (static string). Pure: for tests. */
const char *http_content_type(const char *path);

/* Whether PATH (URL path, already unescaped, starting with '/') may name a file under the web
 * root: no ".." or "." segment, no NUL, backslash or empty segment. Pure: for tests. */
bool http_path_ok(const char *path);

#endif
