/* config: loads and validates parkd's YAML configuration (SPEC §6).
 *
 * Every key is one row of a table (cfg_keys for the top level and its sections, cfg_lot_keys for
 * one entry of `lots`) with its type, range, default and the offset where it lands. Defaults are
 * written as text and go through the same parsers as the file's values, so a default can never
 * be a value the file could not say. The YAML is loaded into a libyaml document (its node marks give
 * line and column) and walked once; errors are collected, not fatal, so one --check shows them
 * all. */
#include "config.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <yaml.h>

#include "uplink.h"

#define CFG_MAX_FILE     (16 * 1024 * 1024) /* a config is never this big; refuse a runaway file */
#define CFG_MAX_ERRORS   100                /* shown; more are counted */
#define CFG_ZONEINFO     "/usr/share/zoneinfo"
#define CFG_ID_MAX       64

#define MS_SECOND        INT64_C(1000)
#define MS_MINUTE        (60 * MS_SECOND)
#define MS_HOUR          (60 * MS_MINUTE)
#define MS_DAY           (24 * MS_HOUR)
/* The upper bound of every duration, which keeps arithmetic on them far from overflow. */
#define MS_YEAR          (365 * MS_DAY)

enum cfg_type {
    CFG_T_SECTION,     /* a mapping of further rows named "section.key" */
    CFG_T_STRING,      /* char * */
    CFG_T_INT,         /* int or int64_t, in [imin, imax] */
    CFG_T_BOOL,        /* bool: true or false only */
    CFG_T_DURATION,    /* int64_t ms, in [imin, imax] */
    CFG_T_DOUBLE,      /* double, in dmin..dmax (ends excluded by CFG_F_*_EXCL) */
    CFG_T_ENUM,        /* int-sized enum, one of enums[] */
    CFG_T_DURATIONS,   /* forecast.horizons: sorted unique list of durations */
    CFG_T_LISTEN,      /* char * "HOST:PORT" */
    CFG_T_ORIGINS,     /* http.cors_origins: list of "scheme://host[:port]" or "*" */
    CFG_T_SENTINELS,   /* redis.sentinels: list of "HOST:PORT" */
    CFG_T_TIMEZONE,    /* char * relative name of a file under CFG_ZONEINFO */
    CFG_T_ID,          /* char * matching the SPEC §2 id rule */
    CFG_T_LOTS,        /* the lots list, loaded after everything else (it needs `defaults`) */
    CFG_T_GROUPS       /* a lot's zones or categories, loaded once its source is known */
};

#define CFG_F_NULLABLE   0x01  /* ~ means unset (NULL) */
#define CFG_F_NONEMPTY   0x02  /* "" is an error */
#define CFG_F_REQUIRED   0x04  /* absence is an error */
#define CFG_F_MIN_EXCL   0x08  /* double: dmin itself is out of range */
#define CFG_F_MAX_EXCL   0x10  /* double: dmax itself is out of range */
#define CFG_F_WHOLE_SEC  0x20  /* duration: a whole number of seconds */
#define CFG_F_WHOLE_MIN  0x40  /* duration: a whole number of minutes */
#define CFG_F_TOPIC      0x80  /* an MQTT topic prefix: no wildcards, no trailing '/' */

typedef struct cfg_enum {
    const char *name;
    int value;
} cfg_enum;

typedef struct cfg_key {
    const char *name;          /* full dotted path, e.g. "mqtt.tls.ca_file" */
    enum cfg_type type;
    unsigned flags;
    int64_t imin, imax;        /* CFG_T_INT, CFG_T_DURATION(S); CFG_T_STRING: imax bytes (0: any) */
    double dmin, dmax;         /* CFG_T_DOUBLE */
    const cfg_enum *enums;     /* CFG_T_ENUM, ends with a NULL name */
    const char *deflt;         /* YAML text of the default; NULL: none (or NULL for nullable) */
    size_t offset, size;       /* where the value lands in cfg_config or cfg_lot */
    unsigned reload;           /* what a reload that changes it does: CFG_RELOAD_* (0: apply) */
} cfg_key;

static const cfg_enum cfg_log_levels[] = {
    {"error", CFG_LOG_ERROR}, {"warning", CFG_LOG_WARNING},
    {"info", CFG_LOG_INFO}, {"debug", CFG_LOG_DEBUG}, {NULL, 0}
};

static const cfg_enum cfg_sources[] = {
    {"bays", CFG_SOURCE_BAYS}, {"gates", CFG_SOURCE_GATES}, {"count", CFG_SOURCE_COUNT}, {NULL, 0}
};

/* cfg_store writes enums through an int. */
_Static_assert(sizeof(enum cfg_source) == sizeof(int), "enum cfg_source is int-sized");
_Static_assert(sizeof(enum cfg_log_level) == sizeof(int), "enum cfg_log_level is int-sized");

#define CFG_STR(x)   #x
#define CFG_XSTR(x)  CFG_STR(x)
#define FIELD(T, m)  .offset = offsetof(T, m), .size = sizeof(((T *)0)->m)
#define SECTION(n) \
    { .name = n, .type = CFG_T_SECTION }
#define STR(T, n, f, d, m, ...) \
    { .name = n, .type = CFG_T_STRING, .flags = (f), .deflt = d, FIELD(T, m), __VA_ARGS__ }
#define INT(T, n, lo, hi, d, m, ...) \
    { .name = n, .type = CFG_T_INT, .imin = (lo), .imax = (hi), .deflt = d, FIELD(T, m), __VA_ARGS__ }
#define BOOL(T, n, d, m, ...) \
    { .name = n, .type = CFG_T_BOOL, .deflt = d, FIELD(T, m), __VA_ARGS__ }
#define DUR(T, n, f, lo, hi, d, m, ...) \
    { .name = n, .type = CFG_T_DURATION, .flags = (f), .imin = (lo), .imax = (hi), .deflt = d, FIELD(T, m), __VA_ARGS__ }
#define DBL(T, n, f, lo, hi, d, m, ...) \
    { .name = n, .type = CFG_T_DOUBLE, .flags = (f), .dmin = (lo), .dmax = (hi), .deflt = d, FIELD(T, m), __VA_ARGS__ }
#define ENUM(T, n, f, e, d, m, ...) \
    { .name = n, .type = CFG_T_ENUM, .flags = (f), .enums = e, .deflt = d, FIELD(T, m), __VA_ARGS__ }
#define SPECIAL(T, n, t, f, d, m, ...) \
    { .name = n, .type = t, .flags = (f), .deflt = d, FIELD(T, m), __VA_ARGS__ }

/* The "on reload" column: a reload that changes the key reconnects MQTT or Redis, or cannot
 * apply it at all (the running value stays until a restart, and the log says so). */
#define MQTT_CONN   .reload = CFG_RELOAD_MQTT
#define REDIS_CONN  .reload = CFG_RELOAD_REDIS
#define AT_START    .reload = CFG_RELOAD_RESTART

#define C cfg_config
#define NULLSTR (CFG_F_NULLABLE | CFG_F_NONEMPTY)

/* SPEC §6, in its order. A section row comes before its keys. */
static const cfg_key cfg_keys[] = {
    SECTION("mqtt"),
    STR(C, "mqtt.host", CFG_F_NONEMPTY, "127.0.0.1", mqtt.host, MQTT_CONN),
    INT(C, "mqtt.port", 1, 65535, "1883", mqtt.port, MQTT_CONN),
    STR(C, "mqtt.client_id", CFG_F_NONEMPTY, "parkd", mqtt.client_id, MQTT_CONN),
    STR(C, "mqtt.username", NULLSTR, NULL, mqtt.username, MQTT_CONN),
    STR(C, "mqtt.password_file", NULLSTR, NULL, mqtt.password_file, MQTT_CONN),
    SECTION("mqtt.tls"),
    STR(C, "mqtt.tls.ca_file", NULLSTR, NULL, mqtt.tls_ca_file, MQTT_CONN),
    STR(C, "mqtt.tls.cert_file", NULLSTR, NULL, mqtt.tls_cert_file, MQTT_CONN),
    STR(C, "mqtt.tls.key_file", NULLSTR, NULL, mqtt.tls_key_file, MQTT_CONN),
    /* libmosquitto refuses a keepalive under 5 s and takes whole seconds; MQTT has 16 bits for it. */
    DUR(C, "mqtt.keepalive", CFG_F_WHOLE_SEC, 5 * MS_SECOND, 65535 * MS_SECOND, "30s", mqtt.keepalive_ms, MQTT_CONN),
    INT(C, "mqtt.qos", 0, 2, "1", mqtt.qos, MQTT_CONN),
    BOOL(C, "mqtt.clean_session", "false", mqtt.clean_session, MQTT_CONN),
    STR(C, "mqtt.input_prefix", CFG_F_NONEMPTY | CFG_F_TOPIC, "parking", mqtt.input_prefix, MQTT_CONN),
    STR(C, "mqtt.output_prefix", CFG_F_NONEMPTY | CFG_F_TOPIC, "parking/out", mqtt.output_prefix, MQTT_CONN),
    STR(C, "mqtt.admin_prefix", CFG_F_NONEMPTY | CFG_F_TOPIC, "parking/admin", mqtt.admin_prefix, MQTT_CONN),

    SECTION("redis"),
    STR(C, "redis.host", CFG_F_NONEMPTY, "127.0.0.1", redis.host, REDIS_CONN),
    INT(C, "redis.port", 1, 65535, "6379", redis.port, REDIS_CONN),
    STR(C, "redis.socket", NULLSTR, NULL, redis.socket, REDIS_CONN),
    STR(C, "redis.username", NULLSTR, NULL, redis.username, REDIS_CONN),
    STR(C, "redis.password_file", NULLSTR, NULL, redis.password_file, REDIS_CONN),
    INT(C, "redis.db", 0, 15, "0", redis.db, REDIS_CONN),
    STR(C, "redis.prefix", 0, "parkd:", redis.prefix, REDIS_CONN),
    /* A reply slower than this counts as Redis down: reconnect, full rewrite. */
    DUR(C, "redis.timeout", 0, 10, MS_HOUR, "5s", redis.timeout_ms),
    INT(C, "redis.min_replicas_ack", 0, 16, "0", redis.min_replicas_ack),
    { .name = "redis.sentinels", .type = CFG_T_SENTINELS, .reload = CFG_RELOAD_RESTART },
    STR(C, "redis.master_name", NULLSTR, NULL, redis.master_name, AT_START, .imax = 128),

    SECTION("publish"),
    DUR(C, "publish.min_interval", 0, 0, MS_YEAR, "2s", publish.min_interval_ms),
    DUR(C, "publish.heartbeat", 0, 1, MS_YEAR, "5m", publish.heartbeat_ms),
    DBL(C, "publish.deadband", 0, 0, 1e7, "1", publish.deadband),
    DUR(C, "publish.summary_interval", 0, 1, MS_YEAR, "10s", publish.summary_interval_ms),
    /* Bytes of one summary page's payload; MQTT's own limit is 256 MiB. */
    INT(C, "publish.summary_max_bytes", CFG_SUMMARY_MIN_BYTES, 268435455, "60000",
        publish.summary_max_bytes),

    SECTION("smoothing"),
    DUR(C, "smoothing.tau", 0, 1, MS_YEAR, "5m", smoothing.tau_ms),

    SECTION("forecast"),
    /* Whole minutes: SPEC §4/§5 name a horizon by its minutes ("minutes":30, field "30:low"). */
    { .name = "forecast.horizons", .type = CFG_T_DURATIONS, .flags = CFG_F_WHOLE_MIN,
      .imin = MS_MINUTE, .imax = MS_YEAR, .deflt = "15m,30m,60m" },

    SECTION("history"),
    DUR(C, "history.interval", 0, 1, MS_YEAR, "1m", history.interval_ms),
    INT(C, "history.max_len", 1, INT64_C(1000000000000), "100000", history.max_len),

    SECTION("limits"),
    INT(C, "limits.max_payload", 1, 1048576, "1024", limits.max_payload),
    DUR(C, "limits.max_future", 0, 0, MS_YEAR, "5m", limits.max_future_ms),
    INT(C, "limits.max_bays_per_lot", 1, 10000000, "10000", limits.max_bays_per_lot),
    /* ~ is the default (SPEC §6 writes max_lots: ~); "memory" below says how it was sized. */
    { .name = "limits.max_lots", .type = CFG_T_INT, .flags = CFG_F_NULLABLE, .imin = 1,
      .imax = 10000000, .deflt = CFG_XSTR(CFG_MAX_LOTS_DEFAULT), FIELD(C, limits.max_lots) },

    SECTION("log"),
    ENUM(C, "log.level", 0, cfg_log_levels, "info", log_level),

    SECTION("metrics"),
    SPECIAL(C, "metrics.listen", CFG_T_LISTEN, NULLSTR, NULL, metrics.listen, AT_START),

    /* The HTTP server is started once: a reload that changes any of these logs that it needs a
     * restart (like metrics.listen), so a running server never changes under its clients. */
    SECTION("http"),
    SPECIAL(C, "http.listen", CFG_T_LISTEN, NULLSTR, NULL, http.listen, AT_START),
    { .name = "http.cors_origins", .type = CFG_T_ORIGINS, .reload = CFG_RELOAD_RESTART },
    INT(C, "http.max_connections", 1, 65536, "256", http.max_connections, AT_START),
    SECTION("http.map"),
    STR(C, "http.map.mqtt_ws_url", NULLSTR, NULL, http.map_mqtt_ws_url, AT_START, .imax = 2048),
    STR(C, "http.map.tile_url", NULLSTR, NULL, http.map_tile_url, AT_START, .imax = 2048),

    SPECIAL(C, "timezone", CFG_T_TIMEZONE, NULLSTR, NULL, timezone, AT_START),

    /* SPEC §11. Read at start only: a role cannot change under a running instance. */
    SECTION("ha"),
    SPECIAL(C, "ha.instance", CFG_T_ID, CFG_F_NULLABLE, NULL, ha.instance, AT_START),
    /* renewed every third of it; at least 1 s, so a renewal has room for a slow reply */
    DUR(C, "ha.lease", 0, MS_SECOND, MS_HOUR, "5s", ha.lease_ms, AT_START),

    SECTION("defaults"),
    DUR(C, "defaults.stale_after", 0, 1, MS_YEAR, "1h", defaults.stale_after_ms),
    DBL(C, "defaults.almost_full", CFG_F_MIN_EXCL, 0, 1, "0.9", defaults.almost_full),
    DBL(C, "defaults.hysteresis", CFG_F_MAX_EXCL, 0, 1, "0.05", defaults.hysteresis),

    { .name = "lots", .type = CFG_T_LOTS, .flags = CFG_F_REQUIRED },
    { .name = "inputs", .type = CFG_T_LOTS },     /* deferred too: loaded after the rest */
};
#undef C

#define L cfg_lot
/* One entry of `lots`. No defaults here: name falls back to id, the rest to `defaults`. */
static const cfg_key cfg_lot_keys[] = {
    SPECIAL(L, "id", CFG_T_ID, CFG_F_REQUIRED, NULL, id),
    STR(L, "name", CFG_F_NONEMPTY, NULL, name, .imax = CFG_NAME_MAX),
    { .name = "capacity", .type = CFG_T_INT, .flags = CFG_F_REQUIRED, .imin = 1, .imax = 10000000,
      FIELD(L, capacity) },
    ENUM(L, "source", CFG_F_REQUIRED, cfg_sources, NULL, source),
    DBL(L, "lat", 0, -90, 90, NULL, lat),
    DBL(L, "lon", 0, -180, 180, NULL, lon),
    DUR(L, "stale_after", 0, 1, MS_YEAR, NULL, stale_after_ms),
    DUR(L, "bay_stale_after", 0, 1, MS_YEAR, NULL, bay_stale_after_ms),
    DBL(L, "almost_full", CFG_F_MIN_EXCL, 0, 1, NULL, almost_full),
    DBL(L, "hysteresis", CFG_F_MAX_EXCL, 0, 1, NULL, hysteresis),
    { .name = "zones", .type = CFG_T_GROUPS },
    { .name = "categories", .type = CFG_T_GROUPS },
};
#undef L

#define Z cfg_zone
/* One entry of a lot's `zones`; its `bays` or `gates` list is read by cfg_load_members. */
static const cfg_key cfg_zone_keys[] = {
    SPECIAL(Z, "id", CFG_T_ID, CFG_F_REQUIRED, NULL, id),
    STR(Z, "name", CFG_F_NONEMPTY, NULL, name, .imax = CFG_ZONE_NAME_MAX),
    { .name = "capacity", .type = CFG_T_INT, .flags = CFG_F_REQUIRED, .imin = 1, .imax = 10000000,
      FIELD(Z, capacity) },
};
#undef Z

#define K cfg_category_def
static const cfg_key cfg_category_keys[] = {
    { .name = "capacity", .type = CFG_T_INT, .flags = CFG_F_REQUIRED, .imin = 1, .imax = 10000000,
      FIELD(K, capacity) },
};
#undef K
#undef NULLSTR
#undef SPECIAL
#undef ENUM
#undef DBL
#undef DUR
#undef BOOL
#undef INT
#undef STR
#undef SECTION
#undef FIELD
#undef CFG_XSTR
#undef CFG_STR
#undef MQTT_CONN
#undef REDIS_CONN
#undef AT_START

#define N_KEYS      (sizeof cfg_keys / sizeof cfg_keys[0])
#define N_LOT_KEYS  (sizeof cfg_lot_keys / sizeof cfg_lot_keys[0])
#define N_ZONE_KEYS (sizeof cfg_zone_keys / sizeof cfg_zone_keys[0])
#define N_CAT_KEYS  (sizeof cfg_category_keys / sizeof cfg_category_keys[0])

static const char *const cfg_category_names[CFG_N_CATEGORIES] = {
    [CFG_CAT_DISABLED] = "disabled", [CFG_CAT_EV_CHARGING] = "ev_charging",
    [CFG_CAT_FAMILY] = "family", [CFG_CAT_WOMEN] = "women", [CFG_CAT_CARSHARING] = "carsharing",
    [CFG_CAT_MOTORCYCLE] = "motorcycle", [CFG_CAT_TRUCK] = "truck", [CFG_CAT_BUS] = "bus",
};

typedef struct cfg_error {
    size_t line, col;          /* 1-based; 0 when the error has no position */
    size_t seq;                /* discovery order, to keep the sort stable */
    char *msg;
} cfg_error;

/* What a mapping walk saw, per row: the key node (for "first at line N"), the value node (to point
 * cross-checks at), and whether the value was rejected (so cross-checks stay quiet about it). */
typedef struct cfg_seen {
    yaml_node_t *key, *value;
    bool bad;
} cfg_seen;

typedef struct cfg_parser {
    const char *path;
    yaml_document_t *doc;
    cfg_config *cfg;
    cfg_seen seen[N_KEYS];
    yaml_node_t *lots_key;     /* deferred until the rest (notably `defaults`) is loaded */
    cfg_error *errors;
    size_t n_errors, cap_errors;
} cfg_parser;

typedef union cfg_value {
    int64_t i;
    double d;
    bool b;
    char *s;
} cfg_value;

static void cfg_free_origins(cfg_config *cfg);

/* ---- errors ---- */

static void cfg_verror(cfg_parser *p, size_t line, size_t col, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    util_grow((void **)&p->errors, &p->cap_errors, p->n_errors + 1, sizeof *p->errors);
    p->errors[p->n_errors] = (cfg_error){line, col, p->n_errors, util_xstrdup(msg)};
    p->n_errors++;
}

__attribute__((format(printf, 3, 4)))
static void cfg_error_at(cfg_parser *p, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_verror(p, node->start_mark.line + 1, node->start_mark.column + 1, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 4, 5)))
static void cfg_error_mark(cfg_parser *p, size_t line, size_t col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_verror(p, line, col, fmt, ap);
    va_end(ap);
}

static int cfg_error_cmp(const void *a, const void *b)
{
    const cfg_error *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Joins the errors, in file order, into one malloc'd text of "PATH:LINE:COL: msg\n" lines. */
static char *cfg_format_errors(cfg_parser *p)
{
    qsort(p->errors, p->n_errors, sizeof *p->errors, cfg_error_cmp);
    size_t shown = p->n_errors < CFG_MAX_ERRORS ? p->n_errors : CFG_MAX_ERRORS;
    size_t cap = 64 + strlen(p->path);
    for (size_t i = 0; i < shown; i++)
        cap += strlen(p->path) + strlen(p->errors[i].msg) + 48;
    char *out = util_xmalloc(cap), *at = out;
    for (size_t i = 0; i < shown; i++) {
        const cfg_error *e = &p->errors[i];
        if (e->line)
            at += sprintf(at, "%s:%zu:%zu: %s\n", p->path, e->line, e->col, e->msg);
        else
            at += sprintf(at, "%s: %s\n", p->path, e->msg);
    }
    if (shown < p->n_errors)
        sprintf(at, "%s: %zu more errors not shown\n", p->path, p->n_errors - shown);
    return out;
}

static void cfg_free_errors(cfg_parser *p)
{
    for (size_t i = 0; i < p->n_errors; i++)
        free(p->errors[i].msg);
    free(p->errors);
}

/* Quotes TEXT for a message: control and non-ASCII bytes escaped, long text cut, so a message
 * stays one readable line whatever the file holds. BUF must hold at least 48 bytes. */
static const char *cfg_quote(const char *text, char *buf, size_t size)
{
    size_t n = 0, i;
    buf[n++] = '"';
    for (i = 0; text[i] && n + 8 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\')
            n += (size_t)sprintf(buf + n, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            n += (size_t)sprintf(buf + n, "\\x%02x", c);
        else
            buf[n++] = (char)c;
    }
    if (text[i])
        n += (size_t)sprintf(buf + n, "...");
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}

/* "5s", "1h", "500ms": a duration as an operator would write it. */
static const char *cfg_format_duration(int64_t ms, char *buf, size_t size)
{
    static const struct { int64_t ms; const char *unit; } units[] = {
        {MS_DAY, "d"}, {MS_HOUR, "h"}, {MS_MINUTE, "m"}, {MS_SECOND, "s"}
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, size, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
            return buf;
        }
    snprintf(buf, size, "%" PRId64 "ms", ms);
    return buf;
}

/* ---- scalar syntax ---- */

static bool cfg_is_null(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)node->data.scalar.value;
    return !strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

static const char *cfg_node_kind(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_MAPPING_NODE:  return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default:                 return cfg_is_null(node) ? "null" : "a scalar";
    }
}

/* Decimal integer: optional '-', digits. YAML's 0x, 0o, 1_000 and +1 are refused, being rare in
 * a config and easy to misread. */
static int cfg_parse_integer(const char *s, int64_t *out)
{
    const char *p = s + (*s == '-');
    if (!*p || strspn(p, "0123456789") != strlen(p))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* A finite decimal number; no hex, inf or nan that strtod would take. */
static int cfg_parse_number(const char *s, double *out)
{
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int64_t cfg_unit_ms(const char *unit)
{
    static const struct { const char *name; int64_t ms; } units[] = {
        {"", MS_SECOND}, {"ms", 1}, {"s", MS_SECOND}, {"m", MS_MINUTE}, {"h", MS_HOUR}, {"d", MS_DAY}
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(unit, units[i].name))
            return units[i].ms;
    return -1;
}

/* Exact integer arithmetic, so "0.1" is 100 ms and not 99: DIGITS ['.' DIGITS] [UNIT]. A
 * fraction finer than a millisecond is rounded to the nearest one. */
int cfg_parse_duration(const char *s, int64_t *ms)
{
    size_t n_int = strspn(s, "0123456789");
    if (n_int == 0 || n_int > 15)   /* 15 digits of days still fit in int64 ms */
        return -1;
    int64_t whole = strtoll(s, NULL, 10);
    const char *p = s + n_int;
    int64_t frac = 0, frac_div = 1;
    if (*p == '.') {
        size_t n_frac = strspn(++p, "0123456789");
        if (n_frac == 0)
            return -1;
        for (size_t i = 0; i < n_frac; i++, p++)
            if (i < 9) {    /* further digits are far below a millisecond */
                frac = frac * 10 + (*p - '0');
                frac_div *= 10;
            }
    }
    int64_t unit = cfg_unit_ms(p);
    if (unit < 0 || whole > INT64_MAX / unit)
        return -1;
    /* frac < 1e9 and unit <= 8.64e7: the product fits in int64. */
    *ms = whole * unit + (frac * unit + frac_div / 2) / frac_div;
    return 0;
}

const char *cfg_category_name(enum cfg_category cat)
{
    return (unsigned)cat < CFG_N_CATEGORIES ? cfg_category_names[cat] : "unknown";
}

bool cfg_lot_has_groups(const cfg_lot *lot)
{
    for (int c = 0; c < CFG_N_CATEGORIES; c++)
        if (lot->categories[c].set)
            return true;
    return lot->n_zones > 0;
}

const char *cfg_source_name(enum cfg_source source)
{
    switch (source) {
    case CFG_SOURCE_BAYS:  return "bays";
    case CFG_SOURCE_GATES: return "gates";
    case CFG_SOURCE_COUNT: return "count";
    }
    return "unknown";
}

/* ---- typed values: each returns 0, or -1 with a message (without the key name) in MSG ---- */

#define MSG_SIZE 320

static int cfg_parse_string(const cfg_key *k, const char *text, cfg_value *v, char *msg)
{
    if ((k->flags & CFG_F_TOPIC) && strpbrk(text, "+#")) {
        snprintf(msg, MSG_SIZE, "must not contain the MQTT wildcards '+' or '#'");
        return -1;
    }
    if ((k->flags & CFG_F_TOPIC) && text[strlen(text) - 1] == '/') {
        snprintf(msg, MSG_SIZE, "must not end with '/'");
        return -1;
    }
    if (k->imax && strlen(text) > (size_t)k->imax) {
        snprintf(msg, MSG_SIZE, "at most %" PRId64 " bytes, got %zu", k->imax, strlen(text));
        return -1;
    }
    v->s = util_xstrdup(text);
    return 0;
}

static int cfg_parse_int(const cfg_key *k, const char *text, bool plain, cfg_value *v, char *msg)
{
    char q[96];
    if (!plain || cfg_parse_integer(text, &v->i) < 0) {
        snprintf(msg, MSG_SIZE, "expected an integer, got %s%s", cfg_quote(text, q, sizeof q),
                 plain ? "" : " (a quoted string)");
        return -1;
    }
    if (v->i < k->imin || v->i > k->imax) {
        if (k->imax == INT64_MAX)
            snprintf(msg, MSG_SIZE, "must be at least %" PRId64 ", got %" PRId64, k->imin, v->i);
        else
            snprintf(msg, MSG_SIZE, "must be between %" PRId64 " and %" PRId64 ", got %" PRId64,
                     k->imin, k->imax, v->i);
        return -1;
    }
    return 0;
}

static int cfg_parse_bool(const char *text, bool plain, cfg_value *v, char *msg)
{
    char q[96];
    if (plain && (!strcmp(text, "true") || !strcmp(text, "false"))) {
        v->b = !strcmp(text, "true");
        return 0;
    }
    snprintf(msg, MSG_SIZE, "expected true or false, got %s%s", cfg_quote(text, q, sizeof q),
             plain ? "" : " (a quoted string)");
    return -1;
}

static int cfg_check_duration_range(const cfg_key *k, const char *text, int64_t ms, char *msg)
{
    char q[96], lim[32];
    if (ms < k->imin) {
        if (k->imin == 1)
            snprintf(msg, MSG_SIZE, "must be greater than 0, got %s", cfg_quote(text, q, sizeof q));
        else
            snprintf(msg, MSG_SIZE, "must be at least %s, got %s",
                     cfg_format_duration(k->imin, lim, sizeof lim), cfg_quote(text, q, sizeof q));
        return -1;
    }
    if (ms > k->imax) {
        snprintf(msg, MSG_SIZE, "must be at most %s, got %s",
                 cfg_format_duration(k->imax, lim, sizeof lim), cfg_quote(text, q, sizeof q));
        return -1;
    }
    if ((k->flags & CFG_F_WHOLE_SEC) && ms % MS_SECOND) {
        snprintf(msg, MSG_SIZE, "must be a whole number of seconds, got %s",
                 cfg_quote(text, q, sizeof q));
        return -1;
    }
    if ((k->flags & CFG_F_WHOLE_MIN) && ms % MS_MINUTE) {
        snprintf(msg, MSG_SIZE, "must be a whole number of minutes, got %s",
                 cfg_quote(text, q, sizeof q));
        return -1;
    }
    return 0;
}

/* Quoted or not: "30s" is a string in YAML either way. */
static int cfg_parse_duration_value(const cfg_key *k, const char *text, cfg_value *v, char *msg)
{
    char q[96];
    if (cfg_parse_duration(text, &v->i) < 0) {
        if (text[0] == '-')
            snprintf(msg, MSG_SIZE, "must not be negative, got %s", cfg_quote(text, q, sizeof q));
        else
            snprintf(msg, MSG_SIZE,
                     "expected a duration (500ms, 30s, 5m, 1h, 1d or a number of seconds), got %s",
                     cfg_quote(text, q, sizeof q));
        return -1;
    }
    return cfg_check_duration_range(k, text, v->i, msg);
}

static int cfg_parse_double(const cfg_key *k, const char *text, bool plain, cfg_value *v, char *msg)
{
    char q[96];
    if (!plain || cfg_parse_number(text, &v->d) < 0) {
        snprintf(msg, MSG_SIZE, "expected a number, got %s%s", cfg_quote(text, q, sizeof q),
                 plain ? "" : " (a quoted string)");
        return -1;
    }
    bool lo_excl = k->flags & CFG_F_MIN_EXCL, hi_excl = k->flags & CFG_F_MAX_EXCL;
    if (v->d < k->dmin || (lo_excl && v->d == k->dmin) || v->d > k->dmax ||
        (hi_excl && v->d == k->dmax)) {
        snprintf(msg, MSG_SIZE, "must be in %c%.15g, %.15g%c, got %s", lo_excl ? '(' : '[', k->dmin,
                 k->dmax, hi_excl ? ')' : ']', text);
        return -1;
    }
    return 0;
}

static int cfg_parse_enum(const cfg_key *k, const char *text, cfg_value *v, char *msg)
{
    char q[96];
    size_t n = (size_t)snprintf(msg, MSG_SIZE, "expected one of");
    for (const cfg_enum *e = k->enums; e->name; e++) {
        if (!strcmp(text, e->name)) {
            v->i = e->value;
            return 0;
        }
        n += (size_t)snprintf(msg + n, MSG_SIZE - n, "%s %s", e == k->enums ? "" : ",", e->name);
    }
    snprintf(msg + n, MSG_SIZE - n, ", got %s", cfg_quote(text, q, sizeof q));
    return -1;
}

/* "HOST:PORT", with an IPv6 host in brackets ("[::1]:9108") so the port is unambiguous. */
static int cfg_parse_listen(const char *text, cfg_value *v, char *msg)
{
    char q[96];
    const char *colon, *host_end;
    if (text[0] == '[') {
        host_end = strchr(text, ']');
        colon = host_end ? host_end + 1 : NULL;
        if (colon && *colon != ':')
            colon = NULL;
    } else {
        colon = strrchr(text, ':');
        host_end = colon;
        if (colon && memchr(text, ':', (size_t)(colon - text)))
            colon = NULL;       /* a bare IPv6 address: which colon is the port's? */
    }
    int64_t port;
    if (!colon || host_end == text + (text[0] == '[') || strpbrk(text, " \t") ||
        cfg_parse_integer(colon + 1, &port) < 0 || port < 1 || port > 65535) {
        snprintf(msg, MSG_SIZE, "expected HOST:PORT with a port in 1..65535 "
                 "(e.g. 127.0.0.1:9108 or [::1]:9108), got %s", cfg_quote(text, q, sizeof q));
        return -1;
    }
    v->s = util_xstrdup(text);
    return 0;
}

/* A relative name made of safe characters, no "." or ".." component, so it can only name a file
 * under CFG_ZONEINFO. */
static bool cfg_zone_name_safe(const char *name)
{
    if (!*name || name[0] == '/' || strlen(name) > 255 || strstr(name, "..") ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-.") !=
            strlen(name))
        return false;
    for (const char *c = name; *c; c++) {
        bool starts_component = c == name || c[-1] == '/';
        if (starts_component && (*c == '/' || (*c == '.' && (c[1] == '/' || !c[1]))))
            return false;       /* empty or "." component */
    }
    return name[strlen(name) - 1] != '/';
}

/* A regular file starting with the TZif magic, so zone.tab or a directory does not pass. */
static bool cfg_zone_exists(const char *name)
{
    char path[sizeof CFG_ZONEINFO + 256], magic[4];
    snprintf(path, sizeof path, "%s/%s", CFG_ZONEINFO, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return false;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              read(fd, magic, sizeof magic) == (ssize_t)sizeof magic && !memcmp(magic, "TZif", 4);
    close(fd);
    return ok;
}

static int cfg_parse_timezone(const char *text, cfg_value *v, char *msg)
{
    char q[96];
    if (!cfg_zone_name_safe(text)) {
        snprintf(msg, MSG_SIZE, "%s is not a valid time zone name (a relative IANA name such as "
                 "Europe/London)", cfg_quote(text, q, sizeof q));
        return -1;
    }
    if (!cfg_zone_exists(text)) {
        snprintf(msg, MSG_SIZE, "unknown time zone %s (no such zone under %s)",
                 cfg_quote(text, q, sizeof q), CFG_ZONEINFO);
        return -1;
    }
    v->s = util_xstrdup(text);
    return 0;
}

/* SPEC §2: [A-Za-z0-9][A-Za-z0-9_.-]{0,63} */
static bool cfg_id_valid(const char *id)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = strlen(id);
    return n >= 1 && n <= CFG_ID_MAX && strchr(alnum, id[0]) &&
           strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static int cfg_parse_id(const char *text, cfg_value *v, char *msg)
{
    char q[96];
    if (!cfg_id_valid(text)) {
        snprintf(msg, MSG_SIZE, "%s is not a valid id (ids match [A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
                 cfg_quote(text, q, sizeof q));
        return -1;
    }
    v->s = util_xstrdup(text);
    return 0;
}

/* TEXT is a non-null scalar; PLAIN says it was unquoted. */
static int cfg_parse_value(const cfg_key *k, const char *text, bool plain, cfg_value *v, char *msg)
{
    if ((k->flags & CFG_F_NONEMPTY) && !*text) {
        snprintf(msg, MSG_SIZE, "must not be empty%s",
                 (k->flags & CFG_F_NULLABLE) ? " (use ~ for none)" : "");
        return -1;
    }
    switch (k->type) {
    case CFG_T_STRING:   return cfg_parse_string(k, text, v, msg);
    case CFG_T_INT:      return cfg_parse_int(k, text, plain, v, msg);
    case CFG_T_BOOL:     return cfg_parse_bool(text, plain, v, msg);
    case CFG_T_DURATION: return cfg_parse_duration_value(k, text, v, msg);
    case CFG_T_DOUBLE:   return cfg_parse_double(k, text, plain, v, msg);
    case CFG_T_ENUM:     return cfg_parse_enum(k, text, v, msg);
    case CFG_T_LISTEN:   return cfg_parse_listen(text, v, msg);
    case CFG_T_TIMEZONE: return cfg_parse_timezone(text, v, msg);
    case CFG_T_ID:       return cfg_parse_id(text, v, msg);
    default:             break;
    }
    snprintf(msg, MSG_SIZE, "internal error: no scalar parser for this key");
    return -1;
}

static void cfg_store(const cfg_key *k, void *base, const cfg_value *v)
{
    char *field = (char *)base + k->offset;
    switch (k->type) {
    case CFG_T_STRING: case CFG_T_LISTEN: case CFG_T_TIMEZONE: case CFG_T_ID:
        free(*(char **)field);
        *(char **)field = v->s;
        break;
    case CFG_T_INT: case CFG_T_ENUM: case CFG_T_DURATION:
        if (k->size == sizeof(int))
            *(int *)field = (int)v->i;
        else
            *(int64_t *)field = v->i;
        break;
    case CFG_T_BOOL:
        *(bool *)field = v->b;
        break;
    case CFG_T_DOUBLE:
        *(double *)field = v->d;
        break;
    default:
        break;
    }
}

/* ---- walking the document ---- */

static yaml_node_t *cfg_node(cfg_parser *p, int id)
{
    return yaml_document_get_node(p->doc, id);
}

static void cfg_bad_default(const cfg_key *k, const char *msg);

/* ~ on a nullable key means its default: unset (NULL) for the optional paths and names, the
 * documented value for limits.max_lots. */
static void cfg_store_null(const cfg_key *k, void *base)
{
    char msg[MSG_SIZE];
    cfg_value v = {.s = NULL};
    if (k->deflt && cfg_parse_value(k, k->deflt, true, &v, msg) < 0)
        cfg_bad_default(k, msg);
    cfg_store(k, base, &v);
}

/* Stores NODE into K's field of BASE, or reports why not under NAME. Returns false when rejected. */
static bool cfg_set_scalar(cfg_parser *p, const cfg_key *k, const char *name, yaml_node_t *node,
                           void *base)
{
    char msg[MSG_SIZE];
    if (node->type != YAML_SCALAR_NODE) {
        cfg_error_at(p, node, "%s: expected a single value, got %s", name, cfg_node_kind(node));
        return false;
    }
    const char *text = (const char *)node->data.scalar.value;
    if (strlen(text) != node->data.scalar.length) {
        cfg_error_at(p, node, "%s: must not contain a NUL character", name);
        return false;
    }
    if (cfg_is_null(node)) {
        if (k->flags & CFG_F_NULLABLE) {
            cfg_store_null(k, base);
            return true;
        }
        cfg_error_at(p, node, "%s: must not be null", name);
        return false;
    }
    cfg_value v;
    if (cfg_parse_value(k, text, node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, &v, msg) < 0) {
        cfg_error_at(p, node, "%s: %s", name, msg);
        return false;
    }
    cfg_store(k, base, &v);
    return true;
}

static int cfg_int64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* forecast.horizons: each element a duration in K's range; duplicates point at the repeat. */
static bool cfg_set_horizons(cfg_parser *p, const cfg_key *k, yaml_node_t *node)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        cfg_error_at(p, node, "%s: expected a list of durations, got %s", k->name, cfg_node_kind(node));
        return false;
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n == 0) {
        cfg_error_at(p, node, "%s: must not be empty", k->name);
        return false;
    }
    if (n > CFG_MAX_HORIZONS) {
        cfg_error_at(p, node, "%s: at most %d horizons", k->name, CFG_MAX_HORIZONS);
        return false;
    }
    int64_t *ms = util_xcalloc(n, sizeof *ms);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = cfg_node(p, node->data.sequence.items.start[i]);
        char msg[MSG_SIZE], a[32];
        cfg_value v;
        if (item->type != YAML_SCALAR_NODE || cfg_is_null(item)) {
            cfg_error_at(p, item, "%s: expected a duration, got %s", k->name, cfg_node_kind(item));
            ok = false;
        } else if (strlen((const char *)item->data.scalar.value) != item->data.scalar.length) {
            cfg_error_at(p, item, "%s: must not contain a NUL character", k->name);
            ok = false;
        } else if (cfg_parse_duration_value(k, (const char *)item->data.scalar.value, &v, msg) < 0) {
            cfg_error_at(p, item, "%s: %s", k->name, msg);
            ok = false;
        } else {
            ms[i] = v.i;
            for (size_t j = 0; j < i; j++)
                if (ms[j] == v.i) {
                    cfg_error_at(p, item, "%s: duplicate horizon %s",
                                 k->name, cfg_format_duration(v.i, a, sizeof a));
                    ok = false;
                    break;
                }
        }
    }
    if (!ok) {
        free(ms);
        return false;
    }
    qsort(ms, n, sizeof *ms, cfg_int64_cmp);
    free(p->cfg->forecast.horizons_ms);
    p->cfg->forecast.horizons_ms = ms;
    p->cfg->forecast.n_horizons = n;
    return true;
}

static const cfg_key *cfg_find_key(const cfg_key *keys, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

/* The name in KEY, or NULL after reporting a key that is not a plain string. */
static const char *cfg_pair_key(cfg_parser *p, yaml_node_t *key, const char *section)
{
    if (key->type != YAML_SCALAR_NODE) {
        cfg_error_at(p, key, "%s%skeys must be plain names, got %s",
                     section, *section ? ": " : "", cfg_node_kind(key));
        return NULL;
    }
    if (strlen((const char *)key->data.scalar.value) != key->data.scalar.length) {
        cfg_error_at(p, key, "%s%skeys must not contain a NUL character", section, *section ? ": " : "");
        return NULL;
    }
    return (const char *)key->data.scalar.value;
}

static void cfg_report_unknown(cfg_parser *p, yaml_node_t *key, const char *name, const char *section)
{
    char q[96];
    if (*section)
        cfg_error_at(p, key, "unknown key %s in %s", cfg_quote(name, q, sizeof q), section);
    else
        cfg_error_at(p, key, "unknown top-level key %s", cfg_quote(name, q, sizeof q));
}

static void cfg_report_duplicate(cfg_parser *p, yaml_node_t *key, const yaml_node_t *first,
                                 const char *name, const char *section)
{
    char q[96];
    cfg_error_at(p, key, "duplicate key %s%s%s (first at line %zu)", cfg_quote(name, q, sizeof q),
                 *section ? " in " : "", section, first->start_mark.line + 1);
}

static void cfg_walk_mapping(cfg_parser *p, const char *section, yaml_node_t *map);

/* One CORS origin as browsers send it: "*", or scheme://host[:port] with no path, since the
 * Origin header is compared byte for byte. Returns NULL or why not. */
static const char *cfg_origin_problem(const char *o)
{
    if (strcmp(o, "*") == 0)
        return NULL;
    const char *rest = !strncmp(o, "http://", 7)    ? o + 7
                       : !strncmp(o, "https://", 8) ? o + 8 : NULL;
    if (!rest)
        return "expected \"*\" or an origin like https://example.org";
    if (!*rest || strpbrk(rest, "/?# \t\r\n\"\\"))
        return "an origin is scheme://host[:port], without a path or spaces";
    if (strlen(o) > CFG_ORIGIN_MAX)
        return "too long";
    return NULL;
}

static void cfg_free_sentinels(cfg_config *cfg)
{
    for (size_t i = 0; i < cfg->redis.n_sentinels; i++)
        free(cfg->redis.sentinels[i]);
    free(cfg->redis.sentinels);
    cfg->redis.sentinels = NULL;
    cfg->redis.n_sentinels = 0;
}

/* redis.sentinels: a list of HOST:PORT, each as metrics.listen's. */
static bool cfg_set_sentinels(cfg_parser *p, const cfg_key *k, yaml_node_t *node)
{
    if (cfg_is_null(node))
        return true;
    if (node->type != YAML_SEQUENCE_NODE) {
        cfg_error_at(p, node, "%s: expected a list of HOST:PORT, got %s", k->name,
                     cfg_node_kind(node));
        return false;
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n > CFG_MAX_SENTINELS) {
        cfg_error_at(p, node, "%s: at most %d sentinels", k->name, CFG_MAX_SENTINELS);
        return false;
    }
    char **list = util_xcalloc(n + 1, sizeof *list);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = cfg_node(p, node->data.sequence.items.start[i]);
        char msg[MSG_SIZE];
        cfg_value v;
        const char *text = (const char *)item->data.scalar.value;
        if (item->type != YAML_SCALAR_NODE || cfg_is_null(item) ||
            strlen(text) != item->data.scalar.length) {
            cfg_error_at(p, item, "%s: expected HOST:PORT", k->name);
            ok = false;
        } else if (cfg_parse_listen(text, &v, msg) < 0) {
            cfg_error_at(p, item, "%s: %s", k->name, msg);
            ok = false;
        } else {
            list[i] = v.s;
        }
    }
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            free(list[i]);
        free(list);
        return false;
    }
    cfg_free_sentinels(p->cfg);
    p->cfg->redis.sentinels = list;
    p->cfg->redis.n_sentinels = n;
    return true;
}

/* http.cors_origins: a list of origins, each checked by cfg_origin_problem. */
static bool cfg_set_origins(cfg_parser *p, const cfg_key *k, yaml_node_t *node)
{
    if (cfg_is_null(node))
        return true;
    if (node->type != YAML_SEQUENCE_NODE) {
        cfg_error_at(p, node, "%s: expected a list of origins, got %s", k->name,
                     cfg_node_kind(node));
        return false;
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n > CFG_MAX_ORIGINS) {
        cfg_error_at(p, node, "%s: at most %d origins", k->name, CFG_MAX_ORIGINS);
        return false;
    }
    char **list = util_xcalloc(n + 1, sizeof *list);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = cfg_node(p, node->data.sequence.items.start[i]);
        const char *why = NULL, *text = (const char *)item->data.scalar.value;
        if (item->type != YAML_SCALAR_NODE || cfg_is_null(item))
            why = "expected an origin";
        else if (strlen(text) != item->data.scalar.length)
            why = "must not contain a NUL character";
        else
            why = cfg_origin_problem(text);
        if (why) {
            cfg_error_at(p, item, "%s: %s", k->name, why);
            ok = false;
        } else {
            list[i] = util_xstrdup(text);
        }
    }
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            free(list[i]);
        free(list);
        return false;
    }
    cfg_free_origins(p->cfg);
    p->cfg->http.cors_origins = list;
    p->cfg->http.n_cors_origins = n;
    return true;
}

/* One "key: value" of the top level or a section, K being its row. */
static void cfg_walk_value(cfg_parser *p, const cfg_key *k, yaml_node_t *key, yaml_node_t *value)
{
    cfg_seen *seen = &p->seen[k - cfg_keys];
    seen->key = key;
    seen->value = value;
    switch (k->type) {
    case CFG_T_SECTION:
        if (value->type == YAML_MAPPING_NODE)
            cfg_walk_mapping(p, k->name, value);
        else if (!cfg_is_null(value))   /* "mqtt:" alone: all defaults */
            cfg_error_at(p, value, "%s: expected a mapping, got %s", k->name, cfg_node_kind(value));
        break;
    case CFG_T_LOTS:
        if (!strcmp(k->name, "lots"))
            p->lots_key = key;
        break;
    case CFG_T_DURATIONS:
        seen->bad = !cfg_set_horizons(p, k, value);
        break;
    case CFG_T_ORIGINS:
        seen->bad = !cfg_set_origins(p, k, value);
        break;
    case CFG_T_SENTINELS:
        seen->bad = !cfg_set_sentinels(p, k, value);
        break;
    default:
        seen->bad = !cfg_set_scalar(p, k, k->name, value, p->cfg);
        break;
    }
}

/* SECTION is "" for the top level. */
static void cfg_walk_mapping(cfg_parser *p, const char *section, yaml_node_t *map)
{
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = cfg_node(p, pair->key), *value = cfg_node(p, pair->value);
        const char *name = cfg_pair_key(p, key, section);
        if (!name)
            continue;
        char full[256];
        snprintf(full, sizeof full, "%s%s%s", section, *section ? "." : "", name);
        /* A dot in a key would reach into a section from outside it ("tls.ca_file"). */
        const cfg_key *k = strchr(name, '.') ? NULL : cfg_find_key(cfg_keys, N_KEYS, full);
        if (!k)
            cfg_report_unknown(p, key, name, section);
        else if (p->seen[k - cfg_keys].key)
            cfg_report_duplicate(p, key, p->seen[k - cfg_keys].key, name, section);
        else
            cfg_walk_value(p, k, key, value);
    }
}

/* ---- lots ---- */

static const cfg_seen *cfg_seen_key(cfg_parser *p, const char *name)
{
    return &p->seen[cfg_find_key(cfg_keys, N_KEYS, name) - cfg_keys];
}

static const cfg_key *cfg_lot_key(const char *name)
{
    return cfg_find_key(cfg_lot_keys, N_LOT_KEYS, name);
}

static size_t cfg_lot_index(const char *name)
{
    return (size_t)(cfg_lot_key(name) - cfg_lot_keys);
}

/* Reads the keys of one lot mapping into LOT, recording what it saw in SEEN. */
static void cfg_walk_lot(cfg_parser *p, size_t i, yaml_node_t *map, cfg_lot *lot, cfg_seen *seen)
{
    char section[32];
    snprintf(section, sizeof section, "lots[%zu]", i);
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = cfg_node(p, pair->key), *value = cfg_node(p, pair->value);
        const char *name = cfg_pair_key(p, key, section);
        if (!name)
            continue;
        const cfg_key *k = cfg_lot_key(name);
        if (!k) {
            cfg_report_unknown(p, key, name, section);
            continue;
        }
        cfg_seen *s = &seen[k - cfg_lot_keys];
        if (s->key) {
            cfg_report_duplicate(p, key, s->key, name, section);
            continue;
        }
        char full[64];
        snprintf(full, sizeof full, "%s.%s", section, name);
        if (k->type == CFG_T_GROUPS)
            *s = (cfg_seen){key, value, false};
        else
            *s = (cfg_seen){key, value, !cfg_set_scalar(p, k, full, value, lot)};
    }
}

static void cfg_lot_required(cfg_parser *p, size_t i, yaml_node_t *map, const cfg_seen *seen)
{
    for (size_t k = 0; k < N_LOT_KEYS; k++)
        if ((cfg_lot_keys[k].flags & CFG_F_REQUIRED) && !seen[k].key)
            cfg_error_at(p, map, "lots[%zu]: missing required key \"%s\"", i, cfg_lot_keys[k].name);
}

static void cfg_lot_position(cfg_parser *p, size_t i, cfg_lot *lot, const cfg_seen *seen)
{
    const cfg_seen *lat = &seen[cfg_lot_index("lat")], *lon = &seen[cfg_lot_index("lon")];
    if (lat->key && !lon->key)
        cfg_error_at(p, lat->key, "lots[%zu]: lat given without lon (give both or neither)", i);
    else if (lon->key && !lat->key)
        cfg_error_at(p, lon->key, "lots[%zu]: lon given without lat (give both or neither)", i);
    lot->has_position = lat->key && lon->key;
}

/* Per-lot overrides fall back to `defaults`; then hysteresis must stay below almost_full, which
 * is checked here only when this lot set one of them (else the defaults check covers it). */
static void cfg_lot_thresholds(cfg_parser *p, size_t i, cfg_lot *lot, const cfg_seen *seen)
{
    const cfg_seen *af = &seen[cfg_lot_index("almost_full")], *hy = &seen[cfg_lot_index("hysteresis")];
    if (!seen[cfg_lot_index("stale_after")].key)
        lot->stale_after_ms = p->cfg->defaults.stale_after_ms;
    if (!af->key)
        lot->almost_full = p->cfg->defaults.almost_full;
    if (!hy->key)
        lot->hysteresis = p->cfg->defaults.hysteresis;
    /* A rejected value (here or in defaults) was reported already; comparing with it is noise. */
    bool af_bad = af->key ? af->bad : cfg_seen_key(p, "defaults.almost_full")->bad;
    bool hy_bad = hy->key ? hy->bad : cfg_seen_key(p, "defaults.hysteresis")->bad;
    if ((!af->key && !hy->key) || af_bad || hy_bad || lot->hysteresis < lot->almost_full)
        return;
    const cfg_seen *at = hy->key ? hy : af;
    cfg_error_at(p, at->value, "lots[%zu]: hysteresis %g%s must be below almost_full %g%s", i,
                 lot->hysteresis, hy->key ? "" : " (from defaults)",
                 lot->almost_full, af->key ? "" : " (from defaults)");
}

/* A bay's silence only means something where bays report: elsewhere the key is a mistake. */
static void cfg_lot_bay_stale(cfg_parser *p, size_t i, const cfg_lot *lot, const cfg_seen *seen)
{
    const cfg_seen *bs = &seen[cfg_lot_index("bay_stale_after")];
    const cfg_seen *src = &seen[cfg_lot_index("source")];
    if (!bs->key || !src->key || src->bad || lot->source == CFG_SOURCE_BAYS)
        return;
    cfg_error_at(p, bs->key, "lots[%zu]: bay_stale_after needs source bays, not %s", i,
                 cfg_source_name(lot->source));
}

/* ---- zones and categories (SPEC §10) ---- */

/* The SPEC §2 id characters, and for a pattern fnmatch's * ? [ ] ! as well. */
#define CFG_ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

static bool cfg_is_pattern(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* Id characters and * ? [ ] !, with every [ closed: fnmatch would take an unclosed one as a
 * literal "[", which no id holds, so the pattern could never match. */
static bool cfg_pattern_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 2 * CFG_ID_MAX || strspn(s, CFG_ID_CHARS "*?[]!") != n)
        return false;
    for (const char *c = strchr(s, '['); c; c = strchr(c, '[')) {
        const char *close = strchr(c + 1 + (c[1] == '!') + (c[1 + (c[1] == '!')] == ']'), ']');
        if (!close)
            return false;
        c = close + 1;
    }
    return true;
}

static void cfg_free_members(cfg_members *m)
{
    for (size_t i = 0; i < m->n_ids; i++)
        free(m->ids[i]);
    for (size_t i = 0; i < m->n_patterns; i++)
        free(m->patterns[i]);
    free(m->ids);
    free(m->patterns);
    *m = (cfg_members){0};
}

/* One exact id listed in a zone: what the check for an id in two zones compares. */
typedef struct cfg_member_ref {
    const char *id;
    size_t zone;
    yaml_node_t *node;
} cfg_member_ref;

/* One item of a bays/gates list into M (whose arrays have room); false after reporting it. */
static bool cfg_add_member(cfg_parser *p, const char *what, yaml_node_t *item, cfg_members *m)
{
    char q[96];
    const char *text = (const char *)item->data.scalar.value;
    if (item->type != YAML_SCALAR_NODE || cfg_is_null(item) ||
        strlen(text) != item->data.scalar.length) {
        cfg_error_at(p, item, "%s: expected an id or a glob pattern, got %s", what,
                     cfg_node_kind(item));
        return false;
    }
    if (cfg_is_pattern(text) ? !cfg_pattern_valid(text) : !cfg_id_valid(text)) {
        cfg_error_at(p, item, "%s: %s is neither an id ([A-Za-z0-9][A-Za-z0-9_.-]{0,63}) nor a "
                     "glob pattern of id characters and * ? [ ] ! (each [ closed)", what, cfg_quote(text, q, sizeof q));
        return false;
    }
    /* cfg_load_members sized both arrays for the whole list */
    if (cfg_is_pattern(text))
        m->patterns[m->n_patterns++] = util_xstrdup(text);
    else
        m->ids[m->n_ids++] = util_xstrdup(text);
    return true;
}

/* The `bays` or `gates` list NODE (named KEY) of a zone or category of LOT into M. */
static void cfg_load_members(cfg_parser *p, const char *what, const cfg_lot *lot, yaml_node_t *key,
                             yaml_node_t *node, cfg_members *m)
{
    const char *name = (const char *)key->data.scalar.value;
    const char *want = lot->source == CFG_SOURCE_GATES ? "gates" : "bays";
    if (strcmp(name, want) != 0) {
        cfg_error_at(p, key, "%s: a %s lot lists %s here, not %s", what,
                     cfg_source_name(lot->source), want, name);
        return;
    }
    if (node->type != YAML_SEQUENCE_NODE) {
        cfg_error_at(p, node, "%s.%s: expected a list of ids or glob patterns, got %s", what, name,
                     cfg_node_kind(node));
        return;
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n == 0) {
        cfg_error_at(p, node, "%s.%s: must not be empty (the %s in it)", what, name, name);
        return;
    }
    if ((int64_t)n > p->cfg->limits.max_bays_per_lot) {
        cfg_error_at(p, node, "%s.%s: more entries (%zu) than limits.max_bays_per_lot", what, name, n);
        return;
    }
    /* Exact lookups are sized up front; patterns are few. */
    m->ids = util_xcalloc(n + 1, sizeof *m->ids);
    m->patterns = util_xcalloc(n + 1, sizeof *m->patterns);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = cfg_node(p, node->data.sequence.items.start[i]);
        char item_what[96];
        snprintf(item_what, sizeof item_what, "%s.%s[%zu]", what, name, i);
        cfg_add_member(p, item_what, item, m);
    }
}

/* The keys of a zone's or category's mapping MAP (called WHAT in messages): KEYS' rows into BASE,
 * `bays`/`gates` into M. Returns false when a required key is missing. */
static bool cfg_walk_group(cfg_parser *p, const char *what, yaml_node_t *map, const cfg_key *keys,
                           size_t n_keys, void *base, const cfg_lot *lot, cfg_members *m)
{
    cfg_seen seen[4] = {{0}};
    yaml_node_t *members_key = NULL;
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = cfg_node(p, pair->key), *value = cfg_node(p, pair->value);
        const char *name = cfg_pair_key(p, key, what);
        if (!name)
            continue;
        const cfg_key *k = cfg_find_key(keys, n_keys, name);
        bool is_members = !strcmp(name, "bays") || !strcmp(name, "gates");
        if (!k && !is_members) {
            cfg_report_unknown(p, key, name, what);
        } else if (is_members && members_key) {
            cfg_report_duplicate(p, key, members_key, name, what);
        } else if (is_members) {
            members_key = key;
            cfg_load_members(p, what, lot, key, value, m);
        } else if (seen[k - keys].key) {
            cfg_report_duplicate(p, key, seen[k - keys].key, name, what);
        } else {
            char full[128];
            snprintf(full, sizeof full, "%s.%s", what, name);
            seen[k - keys] = (cfg_seen){key, value, !cfg_set_scalar(p, k, full, value, base)};
        }
    }
    bool ok = true;
    for (size_t k = 0; k < n_keys; k++)
        if ((keys[k].flags & CFG_F_REQUIRED) && !seen[k].key) {
            cfg_error_at(p, map, "%s: missing required key \"%s\"", what, keys[k].name);
            ok = false;
        } else if (seen[k].bad) {
            ok = false;
        }
    if (!members_key) {
        const char *want = lot->source == CFG_SOURCE_GATES ? "gates" : "bays";
        cfg_error_at(p, map, "%s: missing required key \"%s\" (the %s in it)", what, want, want);
        ok = false;
    }
    return ok;
}

static int cfg_member_ref_cmp(const void *a, const void *b)
{
    const cfg_member_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c)
        return c;
    return x->zone < y->zone ? -1 : x->zone > y->zone;
}

/* The item ID in the bays/gates list of the zone mapping ZONE, to point an error at; ZONE
 * itself if it is not found. */
static yaml_node_t *cfg_member_node(cfg_parser *p, yaml_node_t *zone, const char *id)
{
    for (yaml_node_pair_t *pair = zone->data.mapping.pairs.start;
         pair < zone->data.mapping.pairs.top; pair++) {
        yaml_node_t *list = cfg_node(p, pair->value);
        if (list->type != YAML_SEQUENCE_NODE)
            continue;
        for (yaml_node_item_t *i = list->data.sequence.items.start;
             i < list->data.sequence.items.top; i++) {
            yaml_node_t *item = cfg_node(p, *i);
            if (item->type == YAML_SCALAR_NODE && !strcmp((const char *)item->data.scalar.value, id))
                return item;
        }
    }
    return zone;
}

/* SPEC §10: a bay (or gate) belongs to at most one zone. An exact id in two zones is an error
 * here; two zones' patterns matching one id can only be seen at run time (lot.c). Sorted, so a
 * long exact list costs O(n log n). */
static void cfg_check_zone_members(cfg_parser *p, const char *what, const cfg_lot *lot,
                                   yaml_node_t *const *zone_nodes)
{
    size_t n = 0;
    for (size_t z = 0; z < lot->n_zones; z++)
        n += lot->zones[z].members.n_ids;
    cfg_member_ref *refs = util_xcalloc(n + 1, sizeof *refs);
    size_t k = 0;
    for (size_t z = 0; z < lot->n_zones; z++)
        for (size_t i = 0; i < lot->zones[z].members.n_ids; i++)
            refs[k++] = (cfg_member_ref){lot->zones[z].members.ids[i], z, zone_nodes[z]};
    qsort(refs, n, sizeof *refs, cfg_member_ref_cmp);
    for (size_t i = 1; i < n; i++) {
        const cfg_member_ref *a = &refs[i - 1], *b = &refs[i];
        if (strcmp(a->id, b->id) != 0 || a->zone == b->zone)
            continue;
        const yaml_node_t *first = cfg_member_node(p, a->node, a->id);
        cfg_error_at(p, cfg_member_node(p, b->node, b->id), "%s[%zu]: \"%s\" is already in zone "
                     "%s (line %zu); a bay or gate belongs to at most one zone", what, b->zone,
                     b->id, lot->zones[a->zone].id ? lot->zones[a->zone].id : "?",
                     first->start_mark.line + 1);
    }
    free(refs);
}

static void cfg_check_zone_ids(cfg_parser *p, const char *what, const cfg_lot *lot,
                               yaml_node_t *const *zone_nodes)
{
    for (size_t z = 1; z < lot->n_zones; z++)
        for (size_t y = 0; y < z && lot->zones[z].id; y++)
            if (lot->zones[y].id && !strcmp(lot->zones[y].id, lot->zones[z].id)) {
                cfg_error_at(p, zone_nodes[z], "%s[%zu].id: duplicate zone id \"%s\" (first at "
                             "line %zu)", what, z, lot->zones[z].id,
                             zone_nodes[y]->start_mark.line + 1);
                break;
            }
}

static void cfg_check_zone_capacity(cfg_parser *p, const char *what, const cfg_lot *lot,
                                    yaml_node_t *node)
{
    int64_t sum = 0;
    for (size_t z = 0; z < lot->n_zones; z++)
        sum += lot->zones[z].capacity;
    if (lot->capacity > 0 && sum > lot->capacity)
        cfg_error_at(p, node, "%s: the zones' capacities add up to %" PRId64 ", above the lot's "
                     "capacity %" PRId64 " (a bay belongs to at most one zone)", what, sum,
                     lot->capacity);
}

/* `zones`: a list of at most CFG_MAX_ZONES mappings. */
static void cfg_load_zones(cfg_parser *p, size_t i, cfg_lot *lot, yaml_node_t *node)
{
    char what[48];
    snprintf(what, sizeof what, "lots[%zu].zones", i);
    if (node->type != YAML_SEQUENCE_NODE) {
        cfg_error_at(p, node, "%s: expected a list of zones, got %s", what, cfg_node_kind(node));
        return;
    }
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n > CFG_MAX_ZONES) {
        cfg_error_at(p, node, "%s: at most %d zones per lot, got %zu", what, CFG_MAX_ZONES, n);
        return;
    }
    lot->zones = util_xcalloc(n + 1, sizeof *lot->zones);
    lot->n_zones = n;
    yaml_node_t **zone_nodes = util_xcalloc(n + 1, sizeof *zone_nodes);
    bool ok = true;
    for (size_t z = 0; z < n; z++) {
        yaml_node_t *item = cfg_node(p, node->data.sequence.items.start[z]);
        char zwhat[80];
        snprintf(zwhat, sizeof zwhat, "%s[%zu]", what, z);
        zone_nodes[z] = item;
        if (item->type != YAML_MAPPING_NODE) {
            cfg_error_at(p, item, "%s: expected a mapping with id, capacity and %s, got %s", zwhat,
                         lot->source == CFG_SOURCE_GATES ? "gates" : "bays", cfg_node_kind(item));
            ok = false;
            continue;
        }
        cfg_zone *zone = &lot->zones[z];
        ok &= cfg_walk_group(p, zwhat, item, cfg_zone_keys, N_ZONE_KEYS, zone, lot, &zone->members);
        if (!zone->name && zone->id)
            zone->name = util_xstrdup(zone->id);
    }
    cfg_check_zone_ids(p, what, lot, zone_nodes);
    cfg_check_zone_members(p, what, lot, zone_nodes);
    if (ok)
        cfg_check_zone_capacity(p, what, lot, node);
    free(zone_nodes);
}

static int cfg_category_index(const char *name)
{
    for (int c = 0; c < CFG_N_CATEGORIES; c++)
        if (!strcmp(name, cfg_category_names[c]))
            return c;
    return -1;
}

/* One entry NAME: VALUE of `categories` (WHAT) at KEY; FIRST remembers each name's key. */
static void cfg_load_category(cfg_parser *p, const char *what, cfg_lot *lot, yaml_node_t *key,
                              yaml_node_t *value, yaml_node_t **first)
{
    char q[96], cwhat[96];
    const char *name = (const char *)key->data.scalar.value;
    int c = cfg_category_index(name);
    if (c < 0) {
        cfg_error_at(p, key, "%s: unknown category %s (one of disabled, ev_charging, family, "
                     "women, carsharing, motorcycle, truck, bus)", what, cfg_quote(name, q, sizeof q));
        return;
    }
    if (first[c]) {
        cfg_report_duplicate(p, key, first[c], name, what);
        return;
    }
    first[c] = key;
    snprintf(cwhat, sizeof cwhat, "%s.%s", what, name);
    if (value->type != YAML_MAPPING_NODE) {
        cfg_error_at(p, value, "%s: expected a mapping with capacity and %s, got %s", cwhat,
                     lot->source == CFG_SOURCE_GATES ? "gates" : "bays", cfg_node_kind(value));
        return;
    }
    cfg_category_def *cat = &lot->categories[c];
    cat->set = true;
    if (cfg_walk_group(p, cwhat, value, cfg_category_keys, N_CAT_KEYS, cat, lot, &cat->members) &&
        lot->capacity > 0 && cat->capacity > lot->capacity)
        cfg_error_at(p, value, "%s: capacity %" PRId64 " is above the lot's capacity %" PRId64,
                     cwhat, cat->capacity, lot->capacity);
}

/* `categories`: a mapping of SPEC §10 category names to {capacity, bays|gates}. */
static void cfg_load_categories(cfg_parser *p, size_t i, cfg_lot *lot, yaml_node_t *node)
{
    char what[48];
    snprintf(what, sizeof what, "lots[%zu].categories", i);
    if (node->type != YAML_MAPPING_NODE) {
        cfg_error_at(p, node, "%s: expected a mapping of category names, got %s", what,
                     cfg_node_kind(node));
        return;
    }
    yaml_node_t *first[CFG_N_CATEGORIES] = {0};
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = cfg_node(p, pair->key);
        if (cfg_pair_key(p, key, what))
            cfg_load_category(p, what, lot, key, cfg_node(p, pair->value), first);
    }
}

/* Zones and categories need the lot's source: a count lot has neither bays nor gates to put in
 * them, a gates lot lists gates, a bays lot bays. */
static void cfg_lot_groups(cfg_parser *p, size_t i, cfg_lot *lot, const cfg_seen *seen)
{
    const cfg_seen *zones = &seen[cfg_lot_index("zones")];
    const cfg_seen *cats = &seen[cfg_lot_index("categories")];
    const cfg_seen *src = &seen[cfg_lot_index("source")];
    if ((!zones->key && !cats->key) || !src->key || src->bad)
        return;
    if (lot->source == CFG_SOURCE_COUNT) {
        const cfg_seen *at = zones->key ? zones : cats;
        cfg_error_at(p, at->key, "lots[%zu]: %s need source bays or gates, not count (a count "
                     "says nothing about where the cars are)", i,
                     zones->key ? "zones" : "categories");
        return;
    }
    if (zones->key && !cfg_is_null(zones->value))
        cfg_load_zones(p, i, lot, zones->value);
    if (cats->key && !cfg_is_null(cats->value))
        cfg_load_categories(p, i, lot, cats->value);
}

static void cfg_load_lot(cfg_parser *p, size_t i, yaml_node_t *map, yaml_node_t **id_node)
{
    cfg_lot *lot = &p->cfg->lots[i];
    cfg_seen seen[N_LOT_KEYS] = {{0}};
    if (map->type != YAML_MAPPING_NODE) {
        cfg_error_at(p, map, "lots[%zu]: expected a mapping with id, capacity and source, got %s",
                     i, cfg_node_kind(map));
        return;
    }
    cfg_walk_lot(p, i, map, lot, seen);
    cfg_lot_required(p, i, map, seen);
    cfg_lot_position(p, i, lot, seen);
    cfg_lot_thresholds(p, i, lot, seen);
    cfg_lot_bay_stale(p, i, lot, seen);
    cfg_lot_groups(p, i, lot, seen);
    if (!lot->name && lot->id)
        lot->name = util_xstrdup(lot->id);
    *id_node = lot->id ? seen[cfg_lot_index("id")].value : NULL;
}

typedef struct cfg_id_ref {
    const char *id;
    size_t index;
} cfg_id_ref;

static int cfg_id_ref_cmp(const void *a, const void *b)
{
    const cfg_id_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Sorting by (id, index) puts each first occurrence before its repeats: O(n log n) for big lists. */
static void cfg_check_duplicate_ids(cfg_parser *p, yaml_node_t **id_nodes)
{
    cfg_config *cfg = p->cfg;
    cfg_id_ref *refs = util_xcalloc(cfg->n_lots, sizeof *refs);
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_lots; i++)
        if (cfg->lots[i].id)
            refs[n++] = (cfg_id_ref){cfg->lots[i].id, i};
    qsort(refs, n, sizeof *refs, cfg_id_ref_cmp);
    for (size_t i = 1, first = 0; i < n; i++) {
        if (strcmp(refs[i].id, refs[first].id)) {
            first = i;
            continue;
        }
        cfg_error_at(p, id_nodes[refs[i].index], "lots[%zu].id: duplicate lot id \"%s\" "
                     "(first at line %zu)", refs[i].index, refs[i].id,
                     id_nodes[refs[first].index]->start_mark.line + 1);
    }
    free(refs);
}

/* How many of SEQ's N lots to load: all, or when there are more than limits.max_lots, an error
 * at the first one too many and only the first max_lots (their errors are still worth showing;
 * the rest would only cost time, on the loop for a reload). */
static size_t cfg_cap_lots(cfg_parser *p, yaml_node_t *seq, size_t n)
{
    int64_t max = p->cfg->limits.max_lots;
    if (cfg_seen_key(p, "limits.max_lots")->bad || (int64_t)n <= max)
        return n;
    cfg_error_at(p, cfg_node(p, seq->data.sequence.items.start[max]),
                 "lots[%" PRId64 "]: more than limits.max_lots (%" PRId64 ") lots (%zu in all); "
                 "raise limits.max_lots to run more", max, max, n);
    return (size_t)max;
}

static void cfg_load_lots(cfg_parser *p, yaml_node_t *root)
{
    if (!p->lots_key) {
        cfg_error_at(p, root, "missing required key \"lots\" (the car parks to serve)");
        return;
    }
    yaml_node_t *seq = cfg_seen_key(p, "lots")->value;
    if (seq->type != YAML_SEQUENCE_NODE) {
        cfg_error_at(p, seq, "lots: expected a list of lots, got %s", cfg_node_kind(seq));
        return;
    }
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n == 0) {
        cfg_error_at(p, seq, "lots: must not be empty (at least one lot is required)");
        return;
    }
    n = cfg_cap_lots(p, seq, n);
    cfg_config *cfg = p->cfg;
    cfg->lots = util_xcalloc(n, sizeof *cfg->lots);
    cfg->n_lots = n;
    yaml_node_t **id_nodes = util_xcalloc(n, sizeof *id_nodes);
    for (size_t i = 0; i < n; i++)
        cfg_load_lot(p, i, cfg_node(p, seq->data.sequence.items.start[i]), &id_nodes[i]);
    cfg_check_duplicate_ids(p, id_nodes);
    free(id_nodes);
}

/* ---- inputs (SPEC §9) ---- */

static void cfg_free_strings(const cfg_key *keys, size_t n, void *base);

/* An input's name: [A-Za-z0-9_-]+, at most CFG_INPUT_NAME_MAX bytes (it names counters). */
static bool cfg_input_name_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= CFG_INPUT_NAME_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* One scalar of a value map as JSON text: a quoted YAML string stays a string; a plain one is a
 * number, true/false, or else a string. Validated by ul_scalar_parse. */
static char *cfg_value_json(const yaml_node_t *node)
{
    const char *text = (const char *)node->data.scalar.value;
    bool plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    double d;
    if (plain && (!strcmp(text, "true") || !strcmp(text, "false") ||
                  cfg_parse_number(text, &d) == 0))
        return util_xstrdup(text);
    json_t *s = json_string(text);
    char *dumped = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    json_decref(s);
    return dumped ? dumped : util_xstrdup("\"\"");
}

/* `occupied.occupied` or `occupied.free` (WHAT): a list of scalars into OUT[*N], each also
 * added to MAP so that one value on both sides is an error here. */
static void cfg_input_values(cfg_parser *p, const char *what, yaml_node_t *node, char **out,
                             size_t *n, ul_value_map *map, bool occupied)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        cfg_error_at(p, node, "%s: expected a list of values, got %s", what, cfg_node_kind(node));
        return;
    }
    for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top; i++) {
        yaml_node_t *item = cfg_node(p, *i);
        char err[UL_ERRBUF_SIZE];
        ul_scalar sc;
        if (item->type != YAML_SCALAR_NODE || cfg_is_null(item)) {
            cfg_error_at(p, item, "%s: expected a string, number or boolean, got %s", what,
                         cfg_node_kind(item));
            continue;
        }
        if (*n >= CFG_INPUT_VALUES_MAX) {
            cfg_error_at(p, item, "%s: at most %d values", what, CFG_INPUT_VALUES_MAX);
            return;
        }
        char *json = cfg_value_json(item);
        if (ul_scalar_parse(json, strlen(json), &sc, err) < 0 || ul_map_add(map, occupied, &sc, err) < 0) {
            cfg_error_at(p, item, "%s: %s", what, err);
            free(json);
            continue;
        }
        out[(*n)++] = json;
    }
}

/* `occupied: {field: PATH, occupied: [...], free: [...]}` of input IN (WHAT). */
static void cfg_input_occupied(cfg_parser *p, const char *what, yaml_node_t *node, cfg_input *in)
{
    if (node->type != YAML_MAPPING_NODE) {
        cfg_error_at(p, node, "%s: expected a mapping with field (and optionally occupied and "
                     "free lists), got %s", what, cfg_node_kind(node));
        return;
    }
    ul_value_map map = {0};
    yaml_node_t *occ = NULL, *fr = NULL, *field = NULL;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = cfg_node(p, pair->key), *value = cfg_node(p, pair->value);
        const char *name = cfg_pair_key(p, key, what);
        char full[320], err[UL_ERRBUF_SIZE];
        if (!name)
            continue;
        snprintf(full, sizeof full, "%s.%s", what, name);
        if (!strcmp(name, "field")) {
            field = value;
            ul_field_path path;
            const char *text = (const char *)value->data.scalar.value;
            if (value->type != YAML_SCALAR_NODE || cfg_is_null(value))
                cfg_error_at(p, value, "%s: expected a path like decoded_payload.occupied", full);
            else if (ul_path_parse(text, &path, err) < 0)
                cfg_error_at(p, value, "%s: %s", full, err);
            else if (!in->field)
                in->field = util_xstrdup(text);
        } else if (!strcmp(name, "occupied") && !occ) {
            occ = value;
            cfg_input_values(p, full, value, in->occupied_values, &in->n_occupied_values, &map, true);
        } else if (!strcmp(name, "free") && !fr) {
            fr = value;
            cfg_input_values(p, full, value, in->free_values, &in->n_free_values, &map, false);
        } else {
            cfg_report_unknown(p, key, name, what);
        }
    }
    if (!field)
        cfg_error_at(p, node, "%s: missing required key \"field\"", what);
    if (!occ != !fr)
        cfg_error_at(p, occ ? occ : fr, "%s: a value map needs both occupied and free lists", what);
}

#define I cfg_input
#define NULLSTR (CFG_F_NULLABLE | CFG_F_NONEMPTY)
static const cfg_enum cfg_input_formats[] = {
    {"ttn-v3", CFG_INPUT_TTN_V3}, {"chirpstack-v4", CFG_INPUT_CHIRPSTACK_V4}, {NULL, 0}
};
_Static_assert(sizeof(enum cfg_input_format) == sizeof(int), "enum cfg_input_format is int-sized");
/* One entry of `inputs`; `mqtt` is a section of its own connection (absent: the main one). */
static const cfg_key cfg_input_keys[] = {
    { .name = "name", .type = CFG_T_STRING, .flags = CFG_F_REQUIRED | CFG_F_NONEMPTY,
      .imax = CFG_INPUT_NAME_MAX, .offset = offsetof(I, name), .size = sizeof(char *) },
    { .name = "format", .type = CFG_T_ENUM, .flags = CFG_F_REQUIRED, .enums = cfg_input_formats,
      .offset = offsetof(I, format), .size = sizeof(int) },
    { .name = "mqtt", .type = CFG_T_SECTION },
    { .name = "mqtt.host", .type = CFG_T_STRING, .flags = CFG_F_NONEMPTY, .offset = offsetof(I, mqtt.host), .size = sizeof(char *) },
    { .name = "mqtt.port", .type = CFG_T_INT, .imin = 1, .imax = 65535, .deflt = "1883", .offset = offsetof(I, mqtt.port), .size = sizeof(int) },
    { .name = "mqtt.client_id", .type = CFG_T_STRING, .flags = CFG_F_NONEMPTY, .offset = offsetof(I, mqtt.client_id), .size = sizeof(char *) },
    { .name = "mqtt.username", .type = CFG_T_STRING, .flags = NULLSTR, .offset = offsetof(I, mqtt.username), .size = sizeof(char *) },
    { .name = "mqtt.password_file", .type = CFG_T_STRING, .flags = NULLSTR, .offset = offsetof(I, mqtt.password_file), .size = sizeof(char *) },
    { .name = "mqtt.tls", .type = CFG_T_SECTION },
    { .name = "mqtt.tls.ca_file", .type = CFG_T_STRING, .flags = NULLSTR, .offset = offsetof(I, mqtt.tls_ca_file), .size = sizeof(char *) },
    { .name = "mqtt.tls.cert_file", .type = CFG_T_STRING, .flags = NULLSTR, .offset = offsetof(I, mqtt.tls_cert_file), .size = sizeof(char *) },
    { .name = "mqtt.tls.key_file", .type = CFG_T_STRING, .flags = NULLSTR, .offset = offsetof(I, mqtt.tls_key_file), .size = sizeof(char *) },
    { .name = "mqtt.keepalive", .type = CFG_T_DURATION, .flags = CFG_F_WHOLE_SEC, .imin = 5 * MS_SECOND,
      .imax = 65535 * MS_SECOND, .deflt = "30s", .offset = offsetof(I, mqtt.keepalive_ms), .size = sizeof(int64_t) },
    { .name = "mqtt.qos", .type = CFG_T_INT, .imin = 0, .imax = 2, .deflt = "1", .offset = offsetof(I, mqtt.qos), .size = sizeof(int) },
    { .name = "mqtt.clean_session", .type = CFG_T_BOOL, .deflt = "false", .offset = offsetof(I, mqtt.clean_session), .size = sizeof(bool) },
    { .name = "topic", .type = CFG_T_STRING, .flags = CFG_F_NONEMPTY, .imax = 512, .offset = offsetof(I, topic), .size = sizeof(char *) },
    { .name = "occupied", .type = CFG_T_GROUPS, .flags = CFG_F_REQUIRED },
    { .name = "devices_file", .type = CFG_T_STRING, .flags = CFG_F_REQUIRED | CFG_F_NONEMPTY, .offset = offsetof(I, devices_file), .size = sizeof(char *) },
    { .name = "max_payload", .type = CFG_T_INT, .imin = 1, .imax = 1048576, .deflt = "65536", .offset = offsetof(I, max_payload), .size = sizeof(int64_t) },
};
#undef NULLSTR
#undef I
#define N_INPUT_KEYS (sizeof cfg_input_keys / sizeof cfg_input_keys[0])

const char *cfg_input_format_name(enum cfg_input_format format)
{
    return format == CFG_INPUT_CHIRPSTACK_V4 ? "chirpstack-v4" : "ttn-v3";
}

static void cfg_input_defaults(cfg_input *in)
{
    char msg[MSG_SIZE];
    for (size_t k = 0; k < N_INPUT_KEYS; k++) {
        cfg_value v;
        if (!cfg_input_keys[k].deflt)
            continue;
        if (cfg_parse_value(&cfg_input_keys[k], cfg_input_keys[k].deflt, true, &v, msg) < 0)
            cfg_bad_default(&cfg_input_keys[k], msg);
        cfg_store(&cfg_input_keys[k], in, &v);
    }
}

/* The keys of MAP (section SECTION of input WHAT, "" at its top) into IN; SEEN per row. */
static void cfg_walk_input(cfg_parser *p, const char *what, const char *section, yaml_node_t *map,
                           cfg_input *in, cfg_seen *seen)
{
    char where[96];
    snprintf(where, sizeof where, "%s%s%s", what, *section ? "." : "", section);
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = cfg_node(p, pair->key), *value = cfg_node(p, pair->value);
        const char *name = cfg_pair_key(p, key, where);
        if (!name)
            continue;
        char full[128], shown[224];
        snprintf(full, sizeof full, "%s%s%s", section, *section ? "." : "", name);
        snprintf(shown, sizeof shown, "%s.%s", what, full);
        const cfg_key *k = strchr(name, '.') ? NULL : cfg_find_key(cfg_input_keys, N_INPUT_KEYS, full);
        if (!k) {
            cfg_report_unknown(p, key, name, where);
            continue;
        }
        cfg_seen *s = &seen[k - cfg_input_keys];
        if (s->key) {
            cfg_report_duplicate(p, key, s->key, name, where);
            continue;
        }
        *s = (cfg_seen){key, value, false};
        if (k->type == CFG_T_SECTION && value->type == YAML_MAPPING_NODE)
            cfg_walk_input(p, what, full, value, in, seen);
        else if (k->type == CFG_T_SECTION && !cfg_is_null(value))
            cfg_error_at(p, value, "%s: expected a mapping, got %s", shown, cfg_node_kind(value));
        else if (k->type == CFG_T_GROUPS)
            cfg_input_occupied(p, shown, value, in);
        else if (k->type != CFG_T_SECTION)
            s->bad = !cfg_set_scalar(p, k, shown, value, in);
    }
}

/* What depends on more than one key of input IN (WHAT) at MAP. */
static void cfg_input_checks(cfg_parser *p, const char *what, yaml_node_t *map, cfg_input *in,
                             const cfg_seen *seen)
{
    for (size_t k = 0; k < N_INPUT_KEYS; k++)
        if ((cfg_input_keys[k].flags & CFG_F_REQUIRED) && !seen[k].key)
            cfg_error_at(p, map, "%s: missing required key \"%s\"", what, cfg_input_keys[k].name);
    const cfg_seen *name = &seen[0];
    if (in->name && !name->bad && !cfg_input_name_valid(in->name))
        cfg_error_at(p, name->value, "%s.name: must match [A-Za-z0-9_-]+", what);
    const cfg_seen *mq = &seen[2];
    in->has_mqtt = mq->key && !cfg_is_null(mq->value);
    if (in->has_mqtt && !in->mqtt.host)
        cfg_error_at(p, mq->value, "%s.mqtt: missing required key \"host\" (the network "
                     "server's broker; leave mqtt out to use the main connection)", what);
    if (in->has_mqtt && !in->mqtt.tls_cert_file != !in->mqtt.tls_key_file)
        cfg_error_at(p, mq->value, "%s.mqtt.tls: cert_file and key_file go together", what);
    if (in->has_mqtt && in->mqtt.password_file && !in->mqtt.username)
        cfg_error_at(p, mq->value, "%s.mqtt.password_file: needs mqtt.username", what);
    if (!in->mqtt.client_id && in->name) {
        char id[CFG_INPUT_NAME_MAX + 8];
        snprintf(id, sizeof id, "parkd-%s", in->name);
        in->mqtt.client_id = util_xstrdup(id);
    }
    if (!in->topic)
        in->topic = util_xstrdup(in->format == CFG_INPUT_CHIRPSTACK_V4
                                     ? "application/+/device/+/event/up" : "v3/+/devices/+/up");
}

static void cfg_load_input(cfg_parser *p, size_t i, yaml_node_t *map)
{
    cfg_input *in = &p->cfg->inputs[i];
    char what[32];
    snprintf(what, sizeof what, "inputs[%zu]", i);
    cfg_input_defaults(in);
    if (map->type != YAML_MAPPING_NODE) {
        cfg_error_at(p, map, "%s: expected a mapping with name, format, occupied and "
                     "devices_file, got %s", what, cfg_node_kind(map));
        return;
    }
    cfg_seen seen[N_INPUT_KEYS] = {{0}};
    cfg_walk_input(p, what, "", map, in, seen);
    cfg_input_checks(p, what, map, in, seen);
}

static void cfg_load_inputs(cfg_parser *p)
{
    const cfg_seen *s = cfg_seen_key(p, "inputs");
    if (!s->key || cfg_is_null(s->value))
        return;
    yaml_node_t *seq = s->value;
    if (seq->type != YAML_SEQUENCE_NODE) {
        cfg_error_at(p, seq, "inputs: expected a list of inputs, got %s", cfg_node_kind(seq));
        return;
    }
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n > CFG_MAX_INPUTS) {
        cfg_error_at(p, seq, "inputs: at most %d inputs, got %zu", CFG_MAX_INPUTS, n);
        return;
    }
    p->cfg->inputs = util_xcalloc(n + 1, sizeof *p->cfg->inputs);
    p->cfg->n_inputs = n;
    for (size_t i = 0; i < n; i++)
        cfg_load_input(p, i, cfg_node(p, seq->data.sequence.items.start[i]));
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < i; j++) {
            const char *a = p->cfg->inputs[i].name, *b = p->cfg->inputs[j].name;
            if (a && b && !strcmp(a, b)) {
                cfg_error_at(p, cfg_node(p, seq->data.sequence.items.start[i]),
                             "inputs[%zu].name: duplicate input name \"%s\"", i, a);
                break;
            }
        }
}

static void cfg_free_input(cfg_input *in)
{
    cfg_free_strings(cfg_input_keys, N_INPUT_KEYS, in);
    free(in->field);
    for (size_t k = 0; k < in->n_occupied_values; k++)
        free(in->occupied_values[k]);
    for (size_t k = 0; k < in->n_free_values; k++)
        free(in->free_values[k]);
}

static bool cfg_str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static bool cfg_conn_differs(const cfg_input *a, const cfg_input *b)
{
    const cfg_mqtt_conn *x = &a->mqtt, *y = &b->mqtt;
    return a->has_mqtt != b->has_mqtt || cfg_str_differs(x->host, y->host) || x->port != y->port ||
           cfg_str_differs(x->client_id, y->client_id) || cfg_str_differs(x->username, y->username) ||
           cfg_str_differs(x->password_file, y->password_file) ||
           cfg_str_differs(x->tls_ca_file, y->tls_ca_file) ||
           cfg_str_differs(x->tls_cert_file, y->tls_cert_file) ||
           cfg_str_differs(x->tls_key_file, y->tls_key_file) || x->keepalive_ms != y->keepalive_ms ||
           x->qos != y->qos || x->clean_session != y->clean_session;
}

bool cfg_inputs_connections_differ(const cfg_config *a, const cfg_config *b)
{
    if (a->n_inputs != b->n_inputs)
        return true;
    for (size_t i = 0; i < a->n_inputs; i++) {
        const cfg_input *x = &a->inputs[i], *y = &b->inputs[i];
        if (cfg_str_differs(x->name, y->name) || x->format != y->format ||
            cfg_str_differs(x->topic, y->topic) || cfg_conn_differs(x, y))
            return true;
    }
    return false;
}

/* ---- checks across keys ---- */

static void cfg_check_defaults(cfg_parser *p)
{
    const cfg_seen *af = cfg_seen_key(p, "defaults.almost_full");
    const cfg_seen *hy = cfg_seen_key(p, "defaults.hysteresis");
    const cfg_config *cfg = p->cfg;
    if (af->bad || hy->bad || cfg->defaults.hysteresis < cfg->defaults.almost_full)
        return;
    /* The built-in pair is valid, so at least one of them was set in the file. */
    cfg_error_at(p, hy->key ? hy->value : af->value,
                 "defaults: hysteresis %g must be below almost_full %g",
                 cfg->defaults.hysteresis, cfg->defaults.almost_full);
}

/* Pairs that libmosquitto only takes together. */
static void cfg_check_mqtt(cfg_parser *p)
{
    const cfg_config *cfg = p->cfg;
    const cfg_seen *cert = cfg_seen_key(p, "mqtt.tls.cert_file");
    const cfg_seen *key = cfg_seen_key(p, "mqtt.tls.key_file");
    const cfg_seen *pw = cfg_seen_key(p, "mqtt.password_file");
    if (!cfg->mqtt.tls_cert_file != !cfg->mqtt.tls_key_file && !cert->bad && !key->bad)
        cfg_error_at(p, cfg->mqtt.tls_cert_file ? cert->value : key->value,
                     "mqtt.tls: cert_file and key_file go together (give both or neither)");
    if (cfg->mqtt.password_file && !cfg->mqtt.username && !cfg_seen_key(p, "mqtt.username")->bad)
        cfg_error_at(p, pw->value, "mqtt.password_file: needs mqtt.username (MQTT sends a "
                     "password only with a user name)");
}

/* Redis keys are built into buffers sized for the longest id and prefix (store.c). */
static void cfg_check_redis(cfg_parser *p)
{
    const cfg_seen *sen = cfg_seen_key(p, "redis.sentinels");
    if (p->cfg->redis.n_sentinels && !p->cfg->redis.master_name && !sen->bad)
        cfg_error_at(p, sen->value, "redis.sentinels: needs redis.master_name (the master they "
                     "monitor)");
    if (p->cfg->redis.n_sentinels && p->cfg->redis.socket && !sen->bad)
        cfg_error_at(p, sen->value, "redis.sentinels: the master is found through them, so "
                     "redis.socket cannot be used with them");
    const cfg_seen *prefix = cfg_seen_key(p, "redis.prefix");
    if (p->cfg->redis.prefix && strlen(p->cfg->redis.prefix) > CFG_REDIS_PREFIX_MAX && !prefix->bad)
        cfg_error_at(p, prefix->value, "redis.prefix: at most %d bytes", CFG_REDIS_PREFIX_MAX);
}

/* The map page hands these URLs to the browser as they are: say at --check time when one
 * cannot work (a WebSocket URL for MQTT, an http(s) URL for tiles). */
static void cfg_check_http(cfg_parser *p)
{
    const cfg_config *cfg = p->cfg;
    const cfg_seen *ws = cfg_seen_key(p, "http.map.mqtt_ws_url");
    const cfg_seen *tile = cfg_seen_key(p, "http.map.tile_url");
    const char *w = cfg->http.map_mqtt_ws_url, *t = cfg->http.map_tile_url;
    if (w && !ws->bad && strncmp(w, "ws://", 5) != 0 && strncmp(w, "wss://", 6) != 0)
        cfg_error_at(p, ws->value, "http.map.mqtt_ws_url: expected a ws:// or wss:// URL");
    if (t && !tile->bad && strncmp(t, "http://", 7) != 0 && strncmp(t, "https://", 8) != 0)
        cfg_error_at(p, tile->value, "http.map.tile_url: expected an http:// or https:// URL");
    if (w && !ws->bad && strpbrk(w, "\"\\<> \t"))
        cfg_error_at(p, ws->value, "http.map.mqtt_ws_url: must not contain quotes, <, > or spaces");
    if (t && !tile->bad && strpbrk(t, "\"\\<> \t"))
        cfg_error_at(p, tile->value, "http.map.tile_url: must not contain quotes, <, > or spaces");
}

/* ---- defaults, file, document ---- */

static void cfg_bad_default(const cfg_key *k, const char *msg)
{
    fprintf(stderr, "parkd: bad built-in default for %s: %s\n", k->name, msg);
    abort();
}

/* K's default is a comma-separated list ("15m,30m,60m"), already ascending. */
static void cfg_default_horizons(cfg_config *cfg, const cfg_key *k)
{
    char msg[MSG_SIZE], *list = util_xstrdup(k->deflt), *save = NULL;
    size_t n = 1;
    for (const char *c = list; *c; c++)
        n += *c == ',';
    cfg->forecast.horizons_ms = util_xcalloc(n, sizeof(int64_t));
    cfg->forecast.n_horizons = 0;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        cfg_value v;
        if (cfg_parse_duration_value(k, t, &v, msg) < 0)
            cfg_bad_default(k, msg);
        cfg->forecast.horizons_ms[cfg->forecast.n_horizons++] = v.i;
    }
    free(list);
}

/* Defaults go through the same parsers as the file (as plain scalars), so a default is always a
 * value the file could say; a table default they refuse aborts on the first test run. */
static void cfg_apply_defaults(cfg_config *cfg)
{
    char msg[MSG_SIZE];
    for (size_t i = 0; i < N_KEYS; i++) {
        const cfg_key *k = &cfg_keys[i];
        cfg_value v;
        if (k->type == CFG_T_DURATIONS) {
            cfg_default_horizons(cfg, k);
        } else if (k->deflt) {
            if (cfg_parse_value(k, k->deflt, true, &v, msg) < 0)
                cfg_bad_default(k, msg);
            cfg_store(k, cfg, &v);
        }
    }
}

/* Reads FD to its end into a malloc'd NUL-terminated buffer. Returns 0 or an errno. */
static int cfg_read_fd(int fd, char **data, size_t *len)
{
    size_t cap = 0, n = 0;
    char *buf = NULL;
    int err = 0;
    for (;;) {
        util_grow((void **)&buf, &cap, n + 4096 + 1, 1);
        ssize_t got = read(fd, buf + n, cap - n - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            err = got < 0 ? errno : 0;
            break;
        }
        n += (size_t)got;
        if (n > CFG_MAX_FILE) {
            err = EFBIG;
            break;
        }
    }
    if (err) {
        free(buf);
        return err;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

/* Reads the whole of PATH, which must be a regular file (util_open_regular: a FIFO must not
 * hang --check or block the loop on SIGHUP). Returns 0, or an errno with *KIND naming what
 * PATH is when it is not a regular file (else NULL). */
static int cfg_read_file(const char *path, char **data, size_t *len, const char **kind)
{
    int fd = util_open_regular(path, kind);
    if (fd < 0)
        return errno;
    int err = cfg_read_fd(fd, data, len);
    close(fd);
    return err;
}

/* "PATH: cannot read: REASON\n", or "PATH: not a regular file (a FIFO)\n": malloc'd. */
static char *cfg_read_error(const char *path, int err, const char *kind)
{
    const char *why = kind ? kind : strerror(err);
    char *text = util_xmalloc(strlen(path) + strlen(why) + 48);
    if (kind)
        sprintf(text, "%s: not a regular file (%s)\n", path, kind);
    else
        sprintf(text, "%s: cannot read: %s\n", path, why);
    return text;
}

/* Line and column (1-based, in bytes) of byte OFFSET of DATA: libyaml gives reader errors (bad
 * UTF-8, control characters) only as an offset. */
static void cfg_offset_position(const char *data, size_t len, size_t offset, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (data[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void cfg_yaml_error(cfg_parser *p, const yaml_parser_t *y, const char *data, size_t len)
{
    size_t line = y->problem_mark.line + 1, col = y->problem_mark.column + 1;
    const char *problem = y->problem ? y->problem : "unknown error";
    if (y->error == YAML_READER_ERROR) {
        cfg_offset_position(data, len, y->problem_offset, &line, &col);
        cfg_error_mark(p, line, col, "YAML error: %s", problem);
    } else if (y->context) {
        cfg_error_mark(p, line, col, "YAML syntax error: %s (%s at line %zu, column %zu)", problem,
                       y->context, y->context_mark.line + 1, y->context_mark.column + 1);
    } else {
        cfg_error_mark(p, line, col, "YAML syntax error: %s", problem);
    }
}

/* A second document in the file would be silently ignored by yaml_parser_load; refuse it. */
static void cfg_check_single_document(cfg_parser *p, yaml_parser_t *y, const char *data, size_t len)
{
    yaml_document_t next;
    if (!yaml_parser_load(y, &next)) {
        cfg_yaml_error(p, y, data, len);
        return;
    }
    yaml_node_t *root = yaml_document_get_root_node(&next);
    if (root)
        cfg_error_at(p, root, "only one YAML document is allowed in a configuration file");
    yaml_document_delete(&next);
}

static void cfg_load_document(cfg_parser *p, yaml_node_t *root)
{
    if (!root) {
        cfg_error_mark(p, 1, 1, "empty configuration (at least \"lots\" is required)");
        return;
    }
    if (root->type != YAML_MAPPING_NODE) {
        cfg_error_at(p, root, "the top level must be a mapping of sections, got %s",
                     cfg_node_kind(root));
        return;
    }
    cfg_walk_mapping(p, "", root);
    p->cfg->ha.enabled = cfg_seen_key(p, "ha")->key != NULL;
    cfg_check_mqtt(p);
    cfg_check_redis(p);
    cfg_check_http(p);
    cfg_check_defaults(p);
    cfg_load_lots(p, root);
    cfg_load_inputs(p);
}

static void cfg_parse_data(cfg_parser *p, const char *data, size_t len)
{
    yaml_parser_t y;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&y)) {
        cfg_error_mark(p, 0, 0, "cannot initialise the YAML parser");
        return;
    }
    yaml_parser_set_input_string(&y, (const unsigned char *)data, len);
    if (!yaml_parser_load(&y, &doc)) {
        cfg_yaml_error(p, &y, data, len);
        yaml_parser_delete(&y);
        return;
    }
    p->doc = &doc;
    cfg_load_document(p, yaml_document_get_root_node(&doc));
    if (yaml_document_get_root_node(&doc))
        cfg_check_single_document(p, &y, data, len);
    p->doc = NULL;
    yaml_document_delete(&doc);
    yaml_parser_delete(&y);
}

int cfg_load(const char *path, cfg_config **out, char **errors)
{
    cfg_parser p = {.path = path};
    char *data = NULL;
    size_t len = 0;
    *out = NULL;
    if (errors)
        *errors = NULL;
    const char *kind = NULL;
    int err = cfg_read_file(path, &data, &len, &kind);
    if (err) {
        if (errors)
            *errors = cfg_read_error(path, err, kind);
        return -1;
    }
    p.cfg = util_xcalloc(1, sizeof *p.cfg);
    p.cfg->path = util_xstrdup(path);
    cfg_apply_defaults(p.cfg);
    cfg_parse_data(&p, data, len);
    free(data);
    if (p.n_errors) {
        if (errors)
            *errors = cfg_format_errors(&p);
        cfg_free_errors(&p);
        cfg_free(p.cfg);
        return -1;
    }
    *out = p.cfg;
    return 0;
}

/* Frees every string field of BASE that KEYS describe. */
static void cfg_free_strings(const cfg_key *keys, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++)
        switch (keys[i].type) {
        case CFG_T_STRING: case CFG_T_LISTEN: case CFG_T_TIMEZONE: case CFG_T_ID:
            free(*(char **)((char *)base + keys[i].offset));
            break;
        default:
            break;
        }
}

void cfg_free(cfg_config *cfg)
{
    if (!cfg)
        return;
    cfg_free_strings(cfg_keys, N_KEYS, cfg);
    for (size_t i = 0; i < cfg->n_lots; i++) {
        cfg_lot *lot = &cfg->lots[i];
        cfg_free_strings(cfg_lot_keys, N_LOT_KEYS, lot);
        for (size_t z = 0; z < lot->n_zones; z++) {
            cfg_free_strings(cfg_zone_keys, N_ZONE_KEYS, &lot->zones[z]);
            cfg_free_members(&lot->zones[z].members);
        }
        free(lot->zones);
        for (int c = 0; c < CFG_N_CATEGORIES; c++)
            cfg_free_members(&lot->categories[c].members);
    }
    free(cfg->lots);
    for (size_t i = 0; i < cfg->n_inputs; i++)
        cfg_free_input(&cfg->inputs[i]);
    free(cfg->inputs);
    free(cfg->forecast.horizons_ms);
    cfg_free_origins(cfg);
    cfg_free_sentinels(cfg);
    free(cfg->path);
    free(cfg);
}

static void cfg_free_origins(cfg_config *cfg)
{
    for (size_t i = 0; i < cfg->http.n_cors_origins; i++)
        free(cfg->http.cors_origins[i]);
    free(cfg->http.cors_origins);
    cfg->http.cors_origins = NULL;
    cfg->http.n_cors_origins = 0;
}

static bool cfg_origins_differ(const cfg_config *a, const cfg_config *b)
{
    if (a->http.n_cors_origins != b->http.n_cors_origins)
        return true;
    for (size_t i = 0; i < a->http.n_cors_origins; i++)
        if (strcmp(a->http.cors_origins[i], b->http.cors_origins[i]) != 0)
            return true;
    return false;
}

/* Linear in the number of lots: meant for start-up and reload, not for every message. */
const cfg_lot *cfg_find_lot(const cfg_config *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_lots; i++)
        if (cfg->lots[i].id && !strcmp(cfg->lots[i].id, id))
            return &cfg->lots[i];
    return NULL;
}

/* ---- reload ---- */

static bool cfg_value_differs(const cfg_key *k, const cfg_config *a, const cfg_config *b)
{
    const char *pa = (const char *)a + k->offset, *pb = (const char *)b + k->offset;
    switch (k->type) {
    case CFG_T_STRING:
    case CFG_T_LISTEN:
    case CFG_T_TIMEZONE:
    case CFG_T_ID: {
        const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
        return (sa == NULL) != (sb == NULL) || (sa && strcmp(sa, sb) != 0);
    }
    case CFG_T_ORIGINS:
        return cfg_origins_differ(a, b);
    case CFG_T_SENTINELS:
        if (a->redis.n_sentinels != b->redis.n_sentinels)
            return true;
        for (size_t i = 0; i < a->redis.n_sentinels; i++)
            if (strcmp(a->redis.sentinels[i], b->redis.sentinels[i]) != 0)
                return true;
        return false;
    case CFG_T_SECTION:
    case CFG_T_DURATIONS:
    case CFG_T_LOTS:
        return false;   /* no value of their own here; horizons and lots apply at once */
    default:
        return memcmp(pa, pb, k->size) != 0;
    }
}

unsigned cfg_reload_effects(const cfg_config *old, const cfg_config *new_cfg,
                            void (*each)(void *ctx, const char *name, unsigned flag), void *ctx)
{
    unsigned effects = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        const cfg_key *k = &cfg_keys[i];
        if (!k->reload || !cfg_value_differs(k, old, new_cfg))
            continue;
        effects |= k->reload;
        if (each)
            each(ctx, k->name, k->reload);
    }
    return effects;
}

void cfg_keep_restart_keys(const cfg_config *old, cfg_config *new_cfg)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const cfg_key *k = &cfg_keys[i];
        if (k->reload != CFG_RELOAD_RESTART)
            continue;
        const char *from = (const char *)old + k->offset;
        char *to = (char *)new_cfg + k->offset;
        switch (k->type) {
        case CFG_T_STRING:
        case CFG_T_LISTEN:
        case CFG_T_TIMEZONE:
        case CFG_T_ID:
            free(*(char **)to);
            *(char **)to = util_xstrdup(*(char *const *)from);
            break;
        case CFG_T_SENTINELS:
            cfg_free_sentinels(new_cfg);
            new_cfg->redis.n_sentinels = old->redis.n_sentinels;
            new_cfg->redis.sentinels = util_xcalloc(old->redis.n_sentinels + 1, sizeof(char *));
            for (size_t j = 0; j < old->redis.n_sentinels; j++)
                new_cfg->redis.sentinels[j] = util_xstrdup(old->redis.sentinels[j]);
            break;
        case CFG_T_ORIGINS:
            cfg_free_origins(new_cfg);
            new_cfg->http.n_cors_origins = old->http.n_cors_origins;
            new_cfg->http.cors_origins = util_xcalloc(old->http.n_cors_origins + 1, sizeof(char *));
            for (size_t j = 0; j < old->http.n_cors_origins; j++)
                new_cfg->http.cors_origins[j] = util_xstrdup(old->http.cors_origins[j]);
            break;
        case CFG_T_SECTION:
        case CFG_T_DURATIONS:
        case CFG_T_LOTS:
            break;
        default:
            memcpy(to, from, k->size);
        }
    }
}

/* ---- memory ---- */

/* What one lot costs a running parkd, as measured by tests/bench/lot-memory.sh: VmRSS of parkd
 * with 1,000 and with 10,000 count lots, each fed 4 readings, the slope between the two
 * (x86-64, glibc malloc). 6,059 bytes a lot with one forecast horizon (15m), 7,737 with three
 * (15m, 30m, 60m: the default), 12,477 with six (15m to 8h): a horizon's part grows with its
 * length (its ring of forecasts waiting to be scored). So: 5,000 bytes and 1,250 per horizon,
 * never below a measured figure and at most 13 % above (the estimate only warns). (Before the
 * model's compact encodings and the 8-day ring, the same runs gave 15,163, 18,712 and 26,794
 * bytes.) */
#define CFG_LOT_BYTES     5000
#define CFG_HORIZON_BYTES 1250

/* CFG_MAX_LOTS_DEFAULT, 20000, is sized for the machine parkd is built and tested on (2 cores,
 * 24 GB, Redis beside it). Memory alone would allow more: 20000 lots are about 170 MiB of
 * parkd's memory by the figures above, and up to some 1 GiB of Redis's for their models (a
 * complete :model hash is about 50 KiB there). What binds first is time on the loop: a SIGHUP
 * reload compared the lot lists in time that grew with the square of the lots (1.9 s at 20000,
 * 10 s at 50000; now 0.2 s at 20000 with an index), parsing the file and rendering the summary
 * and the open-data lists still grow with it, and start-up to ready took 1.2 s at 20000 lots.
 * 20000 is the largest deployment measured end to end here; raise it knowingly. */

uint64_t cfg_lots_memory(const cfg_config *cfg)
{
    uint64_t per_lot = CFG_LOT_BYTES + CFG_HORIZON_BYTES * (uint64_t)cfg->forecast.n_horizons;
    return per_lot * (uint64_t)cfg->n_lots;
}

int cfg_check_memory(const cfg_config *cfg, char **warning)
{
    uint64_t bytes = cfg_lots_memory(cfg);
    *warning = NULL;
    if (bytes <= CFG_MEMORY_WARN_BYTES)
        return 0;
    const char *path = cfg->path ? cfg->path : "parkd";
    size_t size = strlen(path) + 200;
    *warning = util_xmalloc(size);
    snprintf(*warning, size, "%s: warning: %zu lots will take about %" PRIu64 " MiB of memory "
             "(%.1f KiB a lot with %zu forecast horizons; bays not counted)\n", path, cfg->n_lots,
             (bytes + (UINT64_C(1) << 19)) >> 20, (double)bytes / (double)cfg->n_lots / 1024.0,
             cfg->forecast.n_horizons);
    return 1;
}

/* ---- secret files (--check) ---- */

typedef struct cfg_file_rule {
    const char *name;
    size_t offset;          /* of the char * path in cfg_config */
    bool secret;            /* mode and size matter, not just readability */
} cfg_file_rule;

static const cfg_file_rule cfg_file_rules[] = {
    {"mqtt.password_file", offsetof(cfg_config, mqtt.password_file), true},
    {"mqtt.tls.key_file", offsetof(cfg_config, mqtt.tls_key_file), true},
    {"redis.password_file", offsetof(cfg_config, redis.password_file), true},
    {"mqtt.tls.ca_file", offsetof(cfg_config, mqtt.tls_ca_file), false},
    {"mqtt.tls.cert_file", offsetof(cfg_config, mqtt.tls_cert_file), false},
};

/* One file to look at: the key that names it (for the message), its path, and whether it holds
 * a secret. */
typedef struct cfg_file_check {
    char name[64];
    const char *file;
    bool secret;
} cfg_file_check;

/* Appends "CFGPATH: warning: KEY "FILE" MESSAGE\n" to *TEXT (of *LEN bytes, *CAP allocated). */
__attribute__((format(printf, 6, 7)))
static void cfg_warn_file(char **text, size_t *len, size_t *cap, const cfg_config *cfg,
                          const cfg_file_check *c, const char *fmt, ...)
{
    char q[320], msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *path = cfg->path ? cfg->path : "parkd";
    size_t need = strlen(path) + strlen(c->name) + sizeof q + sizeof msg + 32;
    util_grow((void **)text, cap, *len + need, 1);
    *len += (size_t)snprintf(*text + *len, *cap - *len, "%s: warning: %s %s %s\n", path, c->name,
                             cfg_quote(c->file, q, sizeof q), msg);
}

/* Every file CFG names for reading at start: the rules' and each input's connection's. */
static size_t cfg_files_to_check(const cfg_config *cfg, cfg_file_check *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof cfg_file_rules / sizeof cfg_file_rules[0] && n < cap; i++) {
        const cfg_file_rule *r = &cfg_file_rules[i];
        const char *file = *(char *const *)((const char *)cfg + r->offset);
        if (!file)
            continue;
        out[n] = (cfg_file_check){ .file = file, .secret = r->secret };
        snprintf(out[n++].name, sizeof out->name, "%s", r->name);
    }
    for (size_t i = 0; i < cfg->n_inputs; i++) {
        const cfg_mqtt_conn *m = &cfg->inputs[i].mqtt;
        const struct { const char *key, *file; bool secret; } f[] = {
            {"password_file", m->password_file, true}, {"tls.key_file", m->tls_key_file, true},
            {"tls.ca_file", m->tls_ca_file, false}, {"tls.cert_file", m->tls_cert_file, false},
        };
        for (size_t k = 0; k < sizeof f / sizeof f[0] && n < cap; k++) {
            if (!cfg->inputs[i].has_mqtt || !f[k].file)
                continue;
            out[n] = (cfg_file_check){ .file = f[k].file, .secret = f[k].secret };
            snprintf(out[n++].name, sizeof out->name, "inputs[%zu].mqtt.%s", i, f[k].key);
        }
    }
    return n;
}

int cfg_check_secret_files(const cfg_config *cfg, char **warnings)
{
    char *text = NULL;
    size_t len = 0, cap = 0;
    int n = 0;
    *warnings = NULL;
    cfg_file_check files[8 + 4 * CFG_MAX_INPUTS];
    size_t n_files = cfg_files_to_check(cfg, files, sizeof files / sizeof files[0]);
    for (size_t i = 0; i < n_files; i++) {
        const cfg_file_check *r = &files[i];
        const char *file = r->file;
        /* O_NONBLOCK: a FIFO or device named by mistake must not hang --check. */
        int fd = open(file, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            int err = errno;
            cfg_warn_file(&text, &len, &cap, cfg, r, "cannot be read: %s", strerror(err));
            n++;
            if (fd >= 0)
                close(fd);
            continue;
        }
        close(fd);
        if (!S_ISREG(st.st_mode)) {
            cfg_warn_file(&text, &len, &cap, cfg, r, "is not a regular file (%s)",
                          util_file_kind(st.st_mode));
            n++;
            continue;
        }
        if (!r->secret)
            continue;
        if (st.st_size == 0) {
            cfg_warn_file(&text, &len, &cap, cfg, r, "is empty");
            n++;
        }
        if (st.st_mode & (S_IRGRP | S_IROTH)) {
            bool grp = st.st_mode & S_IRGRP, oth = st.st_mode & S_IROTH;
            cfg_warn_file(&text, &len, &cap, cfg, r,
                          "is readable by %s (mode %04o): it holds a secret, make it 0600 or "
                          "0400 and owned by the user parkd runs as",
                          grp && oth ? "group and others" : grp ? "its group" : "others",
                          (unsigned)(st.st_mode & 07777));
            n++;
        }
    }
    *warnings = text;
    return n;
}
