/* config: loads and validates parkd's YAML configuration (SPEC §6) into a cfg_config. */
#ifndef PARKD_CONFIG_H
#define PARKD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_MAX_HORIZONS 32        /* forecast.horizons entries */
#define CFG_MAX_ORIGINS 64         /* http.cors_origins entries */
#define CFG_MAX_SENTINELS 16       /* redis.sentinels entries */
#define CFG_ORIGIN_MAX 256         /* bytes of one origin */
#define CFG_REDIS_PREFIX_MAX 128   /* bytes of redis.prefix */
/* Bytes of a lot's name: with the id's 64 this bounds the size of every output of a lot (the
 * availability JSON, a summary entry), whatever the name holds. */
#define CFG_NAME_MAX 256
/* The smallest publish.summary_max_bytes: a page must hold the totals and at least one lot of
 * the largest size the limits allow (a 256-byte name escaped as \u00XX throughout makes a
 * summary entry ~1.8 KB); 4096 holds that twice over. */
#define CFG_SUMMARY_MIN_BYTES 4096
#define CFG_MAX_LOTS_DEFAULT 20000 /* limits.max_lots; config.c says why this many */

/* What a reload that changes a key does (the "on reload" column of config.c's table). Keys
 * without one apply at once. */
#define CFG_RELOAD_MQTT 1u         /* reconnect to the broker with the new settings */
#define CFG_RELOAD_REDIS 2u        /* reconnect to Redis (which rewrites the full state) */
#define CFG_RELOAD_RESTART 4u      /* read at start only: the running value stays */

enum cfg_source { CFG_SOURCE_BAYS, CFG_SOURCE_GATES, CFG_SOURCE_COUNT };

/* SPEC §10's categories of reserved bays, in the order outputs list them. */
enum cfg_category {
    CFG_CAT_DISABLED, CFG_CAT_EV_CHARGING, CFG_CAT_FAMILY, CFG_CAT_WOMEN, CFG_CAT_CARSHARING,
    CFG_CAT_MOTORCYCLE, CFG_CAT_TRUCK, CFG_CAT_BUS, CFG_N_CATEGORIES
};

/* Per lot: zones, with a name of at most CFG_ZONE_NAME_MAX bytes. Together with the id's 64
 * bytes they bound a lot's availability JSON (output.h's OUT_JSON_MAX). */
#define CFG_MAX_ZONES 64
#define CFG_ZONE_NAME_MAX 64

/* The bays (of a bays lot) or gates (of a gates lot) of a zone or category: exact ids and glob
 * patterns (fnmatch(3), no flags), as the file lists them. */
typedef struct cfg_members {
    char **ids;               /* each a valid SPEC §2 id */
    size_t n_ids;
    char **patterns;          /* each holds at least one of * ? [ */
    size_t n_patterns;
} cfg_members;

typedef struct cfg_zone {
    char *id;                 /* SPEC §2 id, unique in its lot */
    char *name;               /* defaults to id */
    int64_t capacity;         /* >= 1; the zones' capacities add up to at most the lot's */
    cfg_members members;
} cfg_zone;

typedef struct cfg_category_def {
    bool set;                 /* listed under `categories` */
    int64_t capacity;         /* >= 1, at most the lot's */
    cfg_members members;
} cfg_category_def;

/* Syslog priorities, so a level is also the journal's <N> prefix. */
enum cfg_log_level { CFG_LOG_ERROR = 3, CFG_LOG_WARNING = 4, CFG_LOG_INFO = 6, CFG_LOG_DEBUG = 7 };

typedef struct cfg_lot {
    char *id;                 /* matches the SPEC §2 id rule */
    char *name;               /* defaults to id */
    int64_t capacity;         /* >= 1 */
    enum cfg_source source;
    bool has_position;        /* lat and lon given (both or neither) */
    double lat, lon;
    int64_t stale_after_ms;   /* per lot, else defaults.stale_after */
    int64_t bay_stale_after_ms; /* bays lots only; 0: off */
    double almost_full;       /* in (0, 1] */
    double hysteresis;        /* in [0, almost_full) */
    cfg_zone *zones;          /* bays and gates lots only; in the file's order */
    size_t n_zones;           /* at most CFG_MAX_ZONES */
    cfg_category_def categories[CFG_N_CATEGORIES];
} cfg_lot;

/* SPEC §9: uplinks from a LoRaWAN network server's MQTT integration. */
enum cfg_input_format { CFG_INPUT_TTN_V3, CFG_INPUT_CHIRPSTACK_V4 };

#define CFG_MAX_INPUTS 16          /* inputs entries: each may hold an MQTT connection */
#define CFG_INPUT_NAME_MAX 32      /* bytes of an input's name */
#define CFG_INPUT_VALUES_MAX 8     /* values on each side of an input's value map */

/* One MQTT connection of an input, with the main connection's meaning for each field. */
typedef struct cfg_mqtt_conn {
    char *host;
    int port;
    char *client_id;          /* default parkd-<input name> */
    char *username, *password_file;
    char *tls_ca_file, *tls_cert_file, *tls_key_file;
    int64_t keepalive_ms;
    int qos;
    bool clean_session;
} cfg_mqtt_conn;

typedef struct cfg_input {
    char *name;               /* [A-Za-z0-9_-]+, unique */
    enum cfg_input_format format;
    bool has_mqtt;            /* its own connection; else the main one carries its topic */
    cfg_mqtt_conn mqtt;
    char *topic;              /* MQTT topic filter; default per format */
    char *field;              /* path of the occupied value (uplink_message / object relative) */
    char *occupied_values[CFG_INPUT_VALUES_MAX];   /* JSON scalar texts; none: the defaults */
    size_t n_occupied_values;
    char *free_values[CFG_INPUT_VALUES_MAX];
    size_t n_free_values;
    char *devices_file;       /* device,lot,bay lines (devices.h) */
    int64_t max_payload;      /* bytes; network servers' uplinks are larger than parkd's own */
} cfg_input;

typedef struct cfg_config {
    char *path;
    struct {
        char *host;
        int port;
        char *client_id;
        char *username;        /* NULL when unset */
        char *password_file;   /* NULL when unset */
        char *tls_ca_file, *tls_cert_file, *tls_key_file; /* NULL when unset */
        int64_t keepalive_ms;
        int qos;               /* 0, 1 or 2 */
        bool clean_session;
        char *input_prefix;
        char *output_prefix;
        char *admin_prefix;    /* <admin>/<lot>/state: operators' closures (SPEC §10) */
    } mqtt;
    struct {
        char *host;
        int port;
        char *socket;          /* NULL when unset; wins over host/port */
        char *username;
        char *password_file;
        int db;
        char *prefix;          /* at most CFG_REDIS_PREFIX_MAX bytes */
        int64_t timeout_ms;    /* a reply slower than this: Redis counts as down */
        int min_replicas_ack;  /* SPEC §11: a batch counts as stored once WAIT saw it on this
                                * many replicas (0: once the master executed it) */
        char **sentinels;      /* "HOST:PORT" of Redis Sentinels; none: host/port directly */
        size_t n_sentinels;
        char *master_name;     /* the master the sentinels monitor (required with them) */
    } redis;
    struct {
        int64_t min_interval_ms;
        int64_t heartbeat_ms;
        double deadband;
        int64_t summary_interval_ms;
        int64_t summary_max_bytes;  /* a larger summary is split into pages (SPEC §4) */
    } publish;
    struct { int64_t tau_ms; } smoothing;
    struct {
        int64_t *horizons_ms;  /* ascending, unique, each > 0 */
        size_t n_horizons;
    } forecast;
    struct { int64_t interval_ms; int64_t max_len; } history;
    struct {
        int64_t max_payload;
        int64_t max_future_ms;
        int64_t max_bays_per_lot;
        int64_t max_lots;      /* more lots is a configuration error */
    } limits;
    enum cfg_log_level log_level;
    struct { char *listen; } metrics;   /* "HOST:PORT" or NULL */
    struct {
        char *listen;          /* "HOST:PORT" or NULL: no HTTP API */
        char **cors_origins;   /* origins given Access-Control-Allow-Origin ("*": any) */
        size_t n_cors_origins;
        int max_connections;   /* open connections at once; more are refused */
        char *map_mqtt_ws_url; /* for the map page's /config.json; NULL when unset */
        char *map_tile_url;
    } http;
    char *timezone;                     /* NULL: the system's */
    struct {
        bool enabled;          /* the ha section is there (SPEC §11: off when absent) */
        char *instance;        /* NULL: hostname-pid, chosen at start */
        int64_t lease_ms;
    } ha;
    struct { int64_t stale_after_ms; double almost_full; double hysteresis; } defaults;
    cfg_lot *lots;
    size_t n_lots;
    cfg_input *inputs;
    size_t n_inputs;
} cfg_config;

/* Reads and validates PATH. On success returns 0 and sets *out (caller frees it with cfg_free).
 * On failure returns -1, sets *out to NULL and *errors to a malloc'd text of one line per error,
 * each "PATH:LINE:COL: message\n" (caller frees); as many errors as can be found are reported. */
int cfg_load(const char *path, cfg_config **out, char **errors);

/* Frees a config from cfg_load; NULL is fine. */
void cfg_free(cfg_config *cfg);

/* The lot with this id, or NULL. The pointer lives as long as CFG. */
const cfg_lot *cfg_find_lot(const cfg_config *cfg, const char *id);

/* Parses "500ms", "30s", "5m", "1h", "1d" or a bare number of seconds (fractions allowed) into
 * milliseconds. Returns 0, or -1 when S is not a non-negative duration. */
int cfg_parse_duration(const char *s, int64_t *ms);

/* Looks at the files CFG reads at start-up without opening them for long: each secret file
 * (mqtt.password_file, redis.password_file, mqtt.tls.key_file, and each input connection's)
 * must be a non-empty regular file
 * readable by this process and by neither group nor others; the other *_file paths
 * (mqtt.tls.ca_file, mqtt.tls.cert_file) must be readable. Nothing is read from the files, so no
 * secret can end up in a warning. Returns the number of warnings; when there are any, *WARNINGS
 * is a malloc'd text of lines "PATH: warning: message\n" (PATH being CFG's file; caller frees),
 * else NULL. Meant for --check and start-up: the result describes this process's user, which
 * for a --check run by hand may differ from the service's. */
int cfg_check_secret_files(const cfg_config *cfg, char **warnings);

/* About how many bytes of memory a running parkd takes for CFG's lots and horizons (measured;
 * config.c says how), bays and gates not counted. */
uint64_t cfg_lots_memory(const cfg_config *cfg);

/* Above this, --check and start-up warn how much memory the lots will take: about 13,000 lots
 * with three horizons. Below, memory is a small part of any machine parkd runs on, and saying
 * so for every --check would be noise. */
#define CFG_MEMORY_WARN_BYTES (UINT64_C(256) << 20)

/* When cfg_lots_memory(CFG) is above CFG_MEMORY_WARN_BYTES, sets *WARNING to a malloc'd line
 * "PATH: warning: N lots will take about X MB of memory (...)\n" and returns 1; else sets it
 * to NULL and returns 0. */
int cfg_check_memory(const cfg_config *cfg, char **warning);

/* Compares OLD and NEW key by key (not the lots). Returns the OR of the CFG_RELOAD_* flags
 * of the keys that differ, and calls EACH(CTX, name, flag) for each of those (EACH may be
 * NULL). */
unsigned cfg_reload_effects(const cfg_config *old, const cfg_config *new_cfg,
                            void (*each)(void *ctx, const char *name, unsigned flag), void *ctx);

/* Sets NEW_CFG's start-only keys (CFG_RELOAD_RESTART) back to OLD's values, so a reloaded
 * configuration describes what keeps running. */
void cfg_keep_restart_keys(const cfg_config *old, cfg_config *new_cfg);

/* "disabled", "ev_charging", ...: the SPEC §10 name of CAT. */
const char *cfg_category_name(enum cfg_category cat);

/* Whether LOT has any zone or category. */
bool cfg_lot_has_groups(const cfg_lot *lot);

/* "ttn-v3", "chirpstack-v4". */
const char *cfg_input_format_name(enum cfg_input_format format);

/* Whether the inputs of A and B need other MQTT connections (or subscriptions): names, formats,
 * topics or connection settings differ. Field paths, value maps and devices files apply
 * without one. */
bool cfg_inputs_connections_differ(const cfg_config *a, const cfg_config *b);

/* "bays", "gates", "count". */
const char *cfg_source_name(enum cfg_source source);

#endif
