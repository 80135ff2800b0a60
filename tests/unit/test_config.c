/* Unit tests of config: every key, defaults, durations, and each kind of error with its exact
 * "PATH:LINE:COL:" position. Each test writes its YAML to a mkstemp file in /tmp. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

#define MS_MIN  (60 * 1000)
#define MS_HOUR (60 * MS_MIN)

/* One lot, valid, for tests about other sections. */
#define LOTS "lots:\n  - {id: L1, capacity: 10, source: count}\n"
/* The same in block style, so a test can append keys to the lot (from line 5 on, column 5). */
#define LOT_BLOCK "lots:\n  - id: L1\n    capacity: 10\n    source: count\n"

typedef struct loaded {
    char path[64];
    int rc;
    cfg_config *cfg;
    char *errors;
} loaded;

static void load_text(loaded *l, const char *text)
{
    strcpy(l->path, "/tmp/parkd-test-config-XXXXXX");
    int fd = mkstemp(l->path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    l->rc = cfg_load(l->path, &l->cfg, &l->errors);
    unlink(l->path);
}

static void unload(loaded *l)
{
    cfg_free(l->cfg);
    free(l->errors);
}

/* Loads TEXT, which must be valid; the caller cfg_free()s the result. */
static cfg_config *load_ok(const char *text)
{
    loaded l;
    load_text(&l, text);
    if (l.rc != 0)
        fail_msg("expected a valid config, got:\n%s", l.errors);
    assert_null(l.errors);
    assert_non_null(l.cfg);
    return l.cfg;
}

/* Loads TEXT, which must be invalid. */
static void load_bad(loaded *l, const char *text)
{
    load_text(l, text);
    if (l->rc != -1)
        fail_msg("expected errors for:\n%s", text);
    assert_null(l->cfg);
    assert_non_null(l->errors);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Some line of L's errors starts with "PATH:LINE:COL: " and contains NEEDLE. */
static void assert_error(const loaded *l, int line, int col, const char *needle)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s:%d:%d: ", l->path, line, col);
    for (const char *s = l->errors; *s;) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        char *one = strndup(s, len);
        bool match = !strncmp(one, prefix, strlen(prefix)) && strstr(one, needle);
        free(one);
        if (match)
            return;
        s += len + (nl != NULL);
    }
    fail_msg("no error \"%s...%s\" in:\n%s", prefix, needle, l->errors);
}

/* TEXT has exactly one error, at LINE:COL, containing NEEDLE. */
static void expect_one_error(const char *text, int line, int col, const char *needle)
{
    loaded l;
    load_bad(&l, text);
    assert_error(&l, line, col, needle);
    if (count_lines(l.errors) != 1)
        fail_msg("expected one error, got:\n%s", l.errors);
    unload(&l);
}

/* ---- valid configurations ---- */

static const char full_yaml[] =
    "mqtt:\n"
    "  host: broker.example\n"
    "  port: 8883\n"
    "  client_id: parkd-test\n"
    "  username: parkd\n"
    "  password_file: /etc/parkd/mqtt.pw\n"
    "  tls: {ca_file: /etc/ssl/ca.pem, cert_file: /etc/ssl/c.pem, key_file: \"/etc/ssl/c.key\"}\n"
    "  keepalive: 1m\n"
    "  qos: 2\n"
    "  clean_session: true\n"
    "  input_prefix: city/parking\n"
    "  output_prefix: 'city/parking/out'\n"
    "redis:\n"
    "  host: redis.example\n"
    "  port: 6380\n"
    "  socket: /run/redis/redis.sock\n"
    "  username: default\n"
    "  password_file: /etc/parkd/redis.pw\n"
    "  db: 15\n"
    "  prefix: \"p:\"\n"
    "publish: {min_interval: 0, heartbeat: 1h, deadband: 2.5, summary_interval: 500ms,\n"
    "          summary_max_bytes: 4096}\n"
    "smoothing: {tau: 90s}\n"
    "forecast: {horizons: [1h, 15m, 2h, 30m]}\n"
    "history: {interval: 30s, max_len: 5000}\n"
    "limits: {max_payload: 1048576, max_future: 0, max_bays_per_lot: 1}\n"
    "log: {level: debug}\n"
    "metrics: {listen: \"[::1]:9108\"}\n"
    "timezone: Europe/London\n"
    "defaults: {stale_after: 2h, almost_full: 0.8, hysteresis: 0}\n"
    "lots:\n"
    "  - {id: BHMBCCMKT01, name: Broad Street, capacity: 577, source: count, lat: 52.4781, lon: -1.9086}\n"
    "  - id: gates.1\n"
    "    capacity: 10000000\n"
    "    source: gates\n"
    "    stale_after: 10m\n"
    "    almost_full: 1\n"
    "    hysteresis: 0.5\n"
    "  - {id: b-2, capacity: 1, source: bays, lat: -90, lon: 180}\n";

static void test_full_config(void **state)
{
    if (access("/usr/share/zoneinfo/Europe/London", R_OK) != 0)
        skip();
    cfg_config *c = load_ok(full_yaml);
    assert_string_equal(c->mqtt.host, "broker.example");
    assert_int_equal(c->mqtt.port, 8883);
    assert_string_equal(c->mqtt.client_id, "parkd-test");
    assert_string_equal(c->mqtt.username, "parkd");
    assert_string_equal(c->mqtt.password_file, "/etc/parkd/mqtt.pw");
    assert_string_equal(c->mqtt.tls_ca_file, "/etc/ssl/ca.pem");
    assert_string_equal(c->mqtt.tls_cert_file, "/etc/ssl/c.pem");
    assert_string_equal(c->mqtt.tls_key_file, "/etc/ssl/c.key");
    assert_int_equal(c->mqtt.keepalive_ms, 60000);
    assert_int_equal(c->mqtt.qos, 2);
    assert_true(c->mqtt.clean_session);
    assert_string_equal(c->mqtt.input_prefix, "city/parking");
    assert_string_equal(c->mqtt.output_prefix, "city/parking/out");
    assert_string_equal(c->redis.host, "redis.example");
    assert_int_equal(c->redis.port, 6380);
    assert_string_equal(c->redis.socket, "/run/redis/redis.sock");
    assert_string_equal(c->redis.username, "default");
    assert_string_equal(c->redis.password_file, "/etc/parkd/redis.pw");
    assert_int_equal(c->redis.db, 15);
    assert_string_equal(c->redis.prefix, "p:");
    assert_int_equal(c->publish.min_interval_ms, 0);
    assert_int_equal(c->publish.heartbeat_ms, MS_HOUR);
    assert_true(c->publish.deadband == 2.5);
    assert_int_equal(c->publish.summary_interval_ms, 500);
    assert_int_equal(c->publish.summary_max_bytes, 4096);
    assert_int_equal(c->smoothing.tau_ms, 90000);
    assert_int_equal(c->forecast.n_horizons, 4);
    assert_int_equal(c->forecast.horizons_ms[0], 15 * MS_MIN);   /* sorted ascending */
    assert_int_equal(c->forecast.horizons_ms[1], 30 * MS_MIN);
    assert_int_equal(c->forecast.horizons_ms[2], 60 * MS_MIN);
    assert_int_equal(c->forecast.horizons_ms[3], 120 * MS_MIN);
    assert_int_equal(c->history.interval_ms, 30000);
    assert_int_equal(c->history.max_len, 5000);
    assert_int_equal(c->limits.max_payload, 1048576);
    assert_int_equal(c->limits.max_future_ms, 0);
    assert_int_equal(c->limits.max_bays_per_lot, 1);
    assert_int_equal(c->log_level, CFG_LOG_DEBUG);
    assert_string_equal(c->metrics.listen, "[::1]:9108");
    assert_string_equal(c->timezone, "Europe/London");
    assert_int_equal(c->defaults.stale_after_ms, 2 * MS_HOUR);
    assert_true(c->defaults.almost_full == 0.8);
    assert_true(c->defaults.hysteresis == 0);

    assert_int_equal(c->n_lots, 3);
    const cfg_lot *a = &c->lots[0], *g = &c->lots[1], *b = &c->lots[2];
    assert_string_equal(a->id, "BHMBCCMKT01");
    assert_string_equal(a->name, "Broad Street");
    assert_int_equal(a->capacity, 577);
    assert_int_equal(a->source, CFG_SOURCE_COUNT);
    assert_true(a->has_position);
    assert_true(a->lat == 52.4781 && a->lon == -1.9086);
    assert_string_equal(g->id, "gates.1");
    assert_string_equal(g->name, "gates.1");
    assert_int_equal(g->capacity, 10000000);
    assert_int_equal(g->source, CFG_SOURCE_GATES);
    assert_false(g->has_position);
    assert_int_equal(b->source, CFG_SOURCE_BAYS);
    assert_true(b->has_position && b->lat == -90 && b->lon == 180);
    cfg_free(c);
}

static void test_minimal_defaults(void **state)
{
    cfg_config *c = load_ok(LOTS);
    assert_string_equal(c->mqtt.host, "127.0.0.1");
    assert_int_equal(c->mqtt.port, 1883);
    assert_string_equal(c->mqtt.client_id, "parkd");
    assert_null(c->mqtt.username);
    assert_null(c->mqtt.password_file);
    assert_null(c->mqtt.tls_ca_file);
    assert_null(c->mqtt.tls_cert_file);
    assert_null(c->mqtt.tls_key_file);
    assert_int_equal(c->mqtt.keepalive_ms, 30000);
    assert_int_equal(c->mqtt.qos, 1);
    assert_false(c->mqtt.clean_session);
    assert_string_equal(c->mqtt.input_prefix, "parking");
    assert_string_equal(c->mqtt.output_prefix, "parking/out");
    assert_string_equal(c->redis.host, "127.0.0.1");
    assert_int_equal(c->redis.port, 6379);
    assert_null(c->redis.socket);
    assert_null(c->redis.username);
    assert_null(c->redis.password_file);
    assert_int_equal(c->redis.db, 0);
    assert_string_equal(c->redis.prefix, "parkd:");
    assert_int_equal(c->publish.min_interval_ms, 2000);
    assert_int_equal(c->publish.heartbeat_ms, 5 * MS_MIN);
    assert_true(c->publish.deadband == 1);
    assert_int_equal(c->publish.summary_interval_ms, 10000);
    assert_int_equal(c->publish.summary_max_bytes, 60000);
    assert_int_equal(c->smoothing.tau_ms, 5 * MS_MIN);
    assert_int_equal(c->forecast.n_horizons, 3);
    assert_int_equal(c->forecast.horizons_ms[0], 15 * MS_MIN);
    assert_int_equal(c->forecast.horizons_ms[1], 30 * MS_MIN);
    assert_int_equal(c->forecast.horizons_ms[2], 60 * MS_MIN);
    assert_int_equal(c->history.interval_ms, MS_MIN);
    assert_int_equal(c->history.max_len, 100000);
    assert_int_equal(c->limits.max_payload, 1024);
    assert_int_equal(c->limits.max_future_ms, 5 * MS_MIN);
    assert_int_equal(c->limits.max_bays_per_lot, 10000);
    assert_int_equal(c->limits.max_lots, CFG_MAX_LOTS_DEFAULT);
    assert_int_equal(c->log_level, CFG_LOG_INFO);
    assert_null(c->metrics.listen);
    assert_null(c->timezone);
    assert_int_equal(c->defaults.stale_after_ms, MS_HOUR);
    assert_true(c->defaults.almost_full == 0.9);
    assert_true(c->defaults.hysteresis == 0.05);
    assert_int_equal(c->n_lots, 1);
    assert_string_equal(c->lots[0].id, "L1");
    assert_string_equal(c->lots[0].name, "L1");
    assert_int_equal(c->lots[0].capacity, 10);
    assert_int_equal(c->lots[0].source, CFG_SOURCE_COUNT);
    assert_false(c->lots[0].has_position);
    assert_int_equal(c->lots[0].stale_after_ms, MS_HOUR);
    assert_true(c->lots[0].almost_full == 0.9);
    assert_true(c->lots[0].hysteresis == 0.05);
    assert_int_equal(strncmp(c->path, "/tmp/parkd-test-config-", 23), 0);
    cfg_free(c);
}

/* Sections given as empty or null mean all defaults; nullable keys take ~, null and nothing. */
static void test_empty_sections_and_nulls(void **state)
{
    cfg_config *c = load_ok("mqtt:\nredis: ~\nlog: {}\nmetrics: {listen: null}\ntimezone:\n"
                            "publish: {}\n" LOTS);
    assert_int_equal(c->mqtt.port, 1883);
    assert_int_equal(c->redis.port, 6379);
    assert_int_equal(c->log_level, CFG_LOG_INFO);
    assert_null(c->metrics.listen);
    assert_null(c->timezone);
    cfg_free(c);

    c = load_ok("mqtt: {username: ~, password_file: Null, tls: {ca_file: NULL}}\n"
                "redis: {socket: ~}\n" LOTS);
    assert_null(c->mqtt.username);
    assert_null(c->mqtt.password_file);
    assert_null(c->mqtt.tls_ca_file);
    assert_null(c->redis.socket);
    cfg_free(c);
}

/* ---- durations ---- */

static void test_parse_duration(void **state)
{
    static const struct { const char *s; int64_t ms; } good[] = {
        {"500ms", 500}, {"30s", 30000}, {"5m", 300000}, {"1h", 3600000}, {"1d", 86400000},
        {"0", 0}, {"2", 2000}, {"0.5", 500}, {"1.5", 1500}, {"0.1", 100}, {"1.5h", 5400000},
        {"0ms", 0}, {"0.25m", 15000}, {"1.0005", 1001}, {"007s", 7000}, {"90s", 90000},
    };
    static const char *bad[] = {
        "", "-1", "-5s", "abc", "5x", "s", "1.", ".5", "1e3", " 5s", "5s ", "5 s", "+5", "5S",
        "1h30m", "0x10", "inf", "nan", "1..5", "99999999999999999999d", "999999999999999d",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        if (cfg_parse_duration(good[i].s, &ms) != 0 || ms != good[i].ms)
            fail_msg("\"%s\": expected %lld ms, got %lld", good[i].s, (long long)good[i].ms,
                     (long long)ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 0;
        if (cfg_parse_duration(bad[i], &ms) == 0)
            fail_msg("\"%s\" accepted as %lld ms", bad[i], (long long)ms);
    }
}

static void test_durations_in_yaml(void **state)
{
    cfg_config *c = load_ok("mqtt: {keepalive: 5}\n"
                            "publish: {min_interval: 0.5, heartbeat: \"1.5\", summary_interval: 2m}\n"
                            "smoothing: {tau: 500ms}\n"
                            "forecast: {horizons: [0.5h, 1d, 60]}\n"
                            "history: {interval: 1d}\n"
                            "limits: {max_future: 0ms}\n"
                            "defaults: {stale_after: 1.5h}\n" LOTS);
    assert_int_equal(c->mqtt.keepalive_ms, 5000);
    assert_int_equal(c->publish.min_interval_ms, 500);
    assert_int_equal(c->publish.heartbeat_ms, 1500);
    assert_int_equal(c->publish.summary_interval_ms, 2 * MS_MIN);
    assert_int_equal(c->smoothing.tau_ms, 500);
    assert_int_equal(c->forecast.n_horizons, 3);
    assert_int_equal(c->forecast.horizons_ms[0], MS_MIN);
    assert_int_equal(c->forecast.horizons_ms[1], 30 * MS_MIN);
    assert_int_equal(c->forecast.horizons_ms[2], 24 * MS_HOUR);
    assert_int_equal(c->history.interval_ms, 24 * MS_HOUR);
    assert_int_equal(c->limits.max_future_ms, 0);
    assert_int_equal(c->lots[0].stale_after_ms, 90 * MS_MIN);
    cfg_free(c);
}

static void test_duration_errors(void **state)
{
    expect_one_error("publish: {heartbeat: -5s}\n" LOTS, 1, 22,
                     "publish.heartbeat: must not be negative, got \"-5s\"");
    expect_one_error("publish: {heartbeat: soon}\n" LOTS, 1, 22,
                     "publish.heartbeat: expected a duration (500ms, 30s, 5m, 1h, 1d or a number of "
                     "seconds), got \"soon\"");
    expect_one_error("publish: {heartbeat: 0}\n" LOTS, 1, 22, "publish.heartbeat: must be greater than 0");
    expect_one_error("publish: {summary_interval: 0s}\n" LOTS, 1, 29,
                     "publish.summary_interval: must be greater than 0");
    expect_one_error("smoothing: {tau: 0ms}\n" LOTS, 1, 18, "smoothing.tau: must be greater than 0");
    expect_one_error("history: {interval: 0}\n" LOTS, 1, 21, "history.interval: must be greater than 0");
    expect_one_error("defaults: {stale_after: 0}\n" LOTS, 1, 25, "defaults.stale_after: must be greater than 0");
    expect_one_error("mqtt: {keepalive: 4s}\n" LOTS, 1, 19, "mqtt.keepalive: must be at least 5s, got \"4s\"");
    expect_one_error("mqtt: {keepalive: 30.5s}\n" LOTS, 1, 19,
                     "mqtt.keepalive: must be a whole number of seconds");
    expect_one_error("mqtt: {keepalive: 1d}\n" LOTS, 1, 19, "mqtt.keepalive: must be at most 65535s");
    expect_one_error("publish: {min_interval: 400d}\n" LOTS, 1, 25,
                     "publish.min_interval: must be at most 365d");
    expect_one_error("publish: {min_interval: [1s]}\n" LOTS, 1, 25,
                     "publish.min_interval: expected a single value, got a list");
    expect_one_error(LOT_BLOCK "    stale_after: 0\n", 5, 18, "lots[0].stale_after: must be greater than 0");
}

static void test_horizons(void **state)
{
    expect_one_error("forecast: {horizons: []}\n" LOTS, 1, 22, "forecast.horizons: must not be empty");
    expect_one_error("forecast: {horizons: ~}\n" LOTS, 1, 22,
                     "forecast.horizons: expected a list of durations, got null");
    expect_one_error("forecast: {horizons: 15m}\n" LOTS, 1, 22,
                     "forecast.horizons: expected a list of durations, got a scalar");
    expect_one_error("forecast: {horizons: [15m, 0]}\n" LOTS, 1, 28,
                     "forecast.horizons: must be at least 1m, got \"0\"");
    expect_one_error("forecast: {horizons: [30m, 15m, 0.5h]}\n" LOTS, 1, 33,
                     "forecast.horizons: duplicate horizon 30m");
    expect_one_error("forecast: {horizons: [15m, 90s]}\n" LOTS, 1, 28,
                     "forecast.horizons: must be a whole number of minutes, got \"90s\"");
    expect_one_error("forecast:\n  horizons:\n    - 15m\n    - -1m\n" LOTS, 4, 7,
                     "forecast.horizons: must not be negative");
    expect_one_error("forecast: {horizons: [15m, \"1m\\0\"]}\n" LOTS, 1, 28,
                     "forecast.horizons: must not contain a NUL character");
    expect_one_error("forecast: {horizons: [15m, [1]]}\n" LOTS, 1, 28,
                     "forecast.horizons: expected a duration, got a list");
}

/* ---- errors ---- */

static void test_cannot_read(void **state)
{
    cfg_config *c = (cfg_config *)1;
    char *errors = NULL;
    assert_int_equal(cfg_load("/nonexistent/parkd.yaml", &c, &errors), -1);
    assert_null(c);
    assert_string_equal(errors, "/nonexistent/parkd.yaml: cannot read: No such file or directory\n");
    free(errors);
    assert_int_equal(cfg_load("/tmp", &c, &errors), -1);
    assert_string_equal(errors, "/tmp: not a regular file (a directory)\n");
    free(errors);
    assert_int_equal(cfg_load("/dev/null", &c, &errors), -1);
    assert_string_equal(errors, "/dev/null: not a regular file (a character device)\n");
    free(errors);
    assert_int_equal(cfg_load("/nonexistent", &c, NULL), -1);   /* errors may be NULL */
}

/* A FIFO as the configuration or a password file is refused at once: opening one for reading
 * blocks until a writer comes. The alarm turns a regression into a failure instead of a hang. */
static void test_fifo_files(void **state)
{
    char dir[] = "/tmp/parkd-test-fifo-XXXXXX", fifo[96], pw[96];
    assert_non_null(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/parkd.yaml", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(5);
    cfg_config *c = NULL;
    char *errors = NULL, expect[160];
    assert_int_equal(cfg_load(fifo, &c, &errors), -1);
    assert_null(c);
    snprintf(expect, sizeof expect, "%s: not a regular file (a FIFO)\n", fifo);
    assert_string_equal(errors, expect);
    free(errors);

    errno = 0;
    assert_null(util_read_secret_file(fifo));
    assert_int_equal(errno, EINVAL);
    assert_null(util_read_secret_file("/dev/zero"));   /* would never end */
    assert_int_equal(errno, EINVAL);
    assert_null(util_read_secret_file(dir));
    assert_int_equal(errno, EISDIR);
    const char *kind = NULL;
    assert_int_equal(util_open_regular(fifo, &kind), -1);
    assert_string_equal(kind, "a FIFO");
    alarm(0);

    /* a regular password file: its first line, without the newline */
    snprintf(pw, sizeof pw, "%s/pw", dir);
    FILE *f = fopen(pw, "w");
    assert_non_null(f);
    fputs("s3cret\r\nsecond line\n", f);
    fclose(f);
    char *secret = util_read_secret_file(pw);
    assert_string_equal(secret, "s3cret");
    free(secret);
    f = fopen(pw, "w");
    assert_non_null(f);
    fclose(f);
    errno = 0;
    assert_null(util_read_secret_file(pw));     /* empty */
    assert_int_equal(errno, EINVAL);
    unlink(pw);
    unlink(fifo);
    assert_int_equal(rmdir(dir), 0);
}

static void test_syntax_errors(void **state)
{
    expect_one_error("mqtt: {port: 1883\n" LOTS, 2, 5, "YAML syntax error: did not find expected ',' or '}'");
    expect_one_error("mqtt:\n  port: 1883\n host: x\n" LOTS, 3, 2, "YAML syntax error:");
    expect_one_error("mqtt: \"unterminated\n", 2, 1, "YAML syntax error: found unexpected end of stream");
    expect_one_error("mqtt: {port: *nowhere}\n" LOTS, 1, 14, "YAML syntax error: found undefined alias");
    expect_one_error("mqtt:\n  host: \x01\n", 2, 9, "YAML error: control characters are not allowed");
    expect_one_error(LOTS "---\nmqtt: {}\n", 4, 1, "only one YAML document is allowed");
    expect_one_error("", 1, 1, "empty configuration");
    expect_one_error("# nothing but a comment\n", 1, 1, "empty configuration");
    expect_one_error("- a\n- b\n", 1, 1, "the top level must be a mapping");
}

static void test_unknown_keys(void **state)
{
    expect_one_error("mqtt:\n  prot: 1883\n" LOTS, 2, 3, "unknown key \"prot\" in mqtt");
    expect_one_error("mqtt: {tls: {ca: x}}\n" LOTS, 1, 14, "unknown key \"ca\" in mqtt.tls");
    expect_one_error("mqtt: {tls.ca_file: x}\n" LOTS, 1, 8, "unknown key \"tls.ca_file\" in mqtt");
    expect_one_error("mqtt: {password: hunter2}\n" LOTS, 1, 8, "unknown key \"password\" in mqtt");
    expect_one_error("loglevel: debug\n" LOTS, 1, 1, "unknown top-level key \"loglevel\"");
    expect_one_error(LOT_BLOCK "    capcity: 5\n", 5, 5, "unknown key \"capcity\" in lots[0]");
    expect_one_error("redis: {[a]: 1}\n" LOTS, 1, 9, "redis: keys must be plain names, got a list");
    expect_one_error("redis: {\"port\\0x\": 1}\n" LOTS, 1, 9, "redis: keys must not contain a NUL character");

    /* A secret put where it does not belong is never echoed. */
    loaded l;
    load_bad(&l, "mqtt: {password: hunter2}\n" LOTS);
    assert_null(strstr(l.errors, "hunter2"));
    unload(&l);
}

static void test_wrong_types(void **state)
{
    expect_one_error("mqtt:\n  port: abc\n" LOTS, 2, 9, "mqtt.port: expected an integer, got \"abc\"");
    expect_one_error("mqtt: {port: \"1883\"}\n" LOTS, 1, 14,
                     "mqtt.port: expected an integer, got \"1883\" (a quoted string)");
    expect_one_error("mqtt: {port: 1883.0}\n" LOTS, 1, 14, "mqtt.port: expected an integer, got \"1883.0\"");
    expect_one_error("mqtt: {port: 0x50}\n" LOTS, 1, 14, "mqtt.port: expected an integer");
    expect_one_error("mqtt: {clean_session: yes}\n" LOTS, 1, 23,
                     "mqtt.clean_session: expected true or false, got \"yes\"");
    expect_one_error("mqtt: {clean_session: \"true\"}\n" LOTS, 1, 23,
                     "mqtt.clean_session: expected true or false, got \"true\" (a quoted string)");
    expect_one_error("mqtt: {clean_session: True}\n" LOTS, 1, 23, "expected true or false");
    expect_one_error("mqtt: 1883\n" LOTS, 1, 7, "mqtt: expected a mapping, got a scalar");
    expect_one_error("mqtt: [a]\n" LOTS, 1, 7, "mqtt: expected a mapping, got a list");
    expect_one_error("mqtt: {host: {a: b}}\n" LOTS, 1, 14, "mqtt.host: expected a single value, got a mapping");
    expect_one_error("mqtt: {host: ~}\n" LOTS, 1, 14, "mqtt.host: must not be null");
    expect_one_error("mqtt:\n  host:\n" LOTS, 2, 8, "mqtt.host: must not be null");
    expect_one_error("mqtt: {host: \"\"}\n" LOTS, 1, 14, "mqtt.host: must not be empty");
    expect_one_error("mqtt: {username: ''}\n" LOTS, 1, 18, "mqtt.username: must not be empty (use ~ for none)");
    expect_one_error("mqtt: {host: \"a\\0b\"}\n" LOTS, 1, 14, "mqtt.host: must not contain a NUL character");
    expect_one_error("publish: {deadband: lots}\n" LOTS, 1, 21, "publish.deadband: expected a number, got \"lots\"");
    expect_one_error("publish: {deadband: .nan}\n" LOTS, 1, 21, "publish.deadband: expected a number");
    expect_one_error("log: {level: verbose}\n" LOTS, 1, 14,
                     "log.level: expected one of error, warning, info, debug, got \"verbose\"");
    expect_one_error("log: {level: ~}\n" LOTS, 1, 14, "log.level: must not be null");
    expect_one_error("lots:\n  - id: L1\n    source: count\n    capacity: 1.5\n", 4, 15,
                     "lots[0].capacity: expected an integer, got \"1.5\"");
    expect_one_error("lots:\n  - {id: A, capacity: ten, source: count}\n", 2, 23,
                     "lots[0].capacity: expected an integer, got \"ten\"");
}

static void test_out_of_range(void **state)
{
    expect_one_error("mqtt: {port: 0}\n" LOTS, 1, 14, "mqtt.port: must be between 1 and 65535, got 0");
    expect_one_error("redis: {port: 65536}\n" LOTS, 1, 15, "redis.port: must be between 1 and 65535, got 65536");
    expect_one_error("mqtt: {qos: 3}\n" LOTS, 1, 13, "mqtt.qos: must be between 0 and 2, got 3");
    expect_one_error("mqtt: {qos: -1}\n" LOTS, 1, 13, "mqtt.qos: must be between 0 and 2, got -1");
    expect_one_error("redis: {db: 16}\n" LOTS, 1, 13, "redis.db: must be between 0 and 15, got 16");
    expect_one_error("publish: {deadband: -1}\n" LOTS, 1, 21, "publish.deadband: must be in [0, 10000000], got -1");
    expect_one_error("limits: {max_payload: 1048577}\n" LOTS, 1, 23,
                     "limits.max_payload: must be between 1 and 1048576, got 1048577");
    expect_one_error("limits: {max_payload: 0}\n" LOTS, 1, 23, "limits.max_payload: must be between 1 and");
    expect_one_error("limits: {max_bays_per_lot: 0}\n" LOTS, 1, 28, "limits.max_bays_per_lot: must be between 1 and");
    expect_one_error("history: {max_len: 0}\n" LOTS, 1, 20, "history.max_len: must be between 1 and");
    expect_one_error("defaults: {almost_full: 0}\n" LOTS, 1, 25, "defaults.almost_full: must be in (0, 1], got 0");
    expect_one_error("defaults: {almost_full: 1.01}\n" LOTS, 1, 25, "defaults.almost_full: must be in (0, 1]");
    expect_one_error("defaults: {hysteresis: -0.1}\n" LOTS, 1, 24, "defaults.hysteresis: must be in [0, 1), got -0.1");
    expect_one_error("defaults: {almost_full: 0.5, hysteresis: 0.5}\n" LOTS, 1, 42,
                     "defaults: hysteresis 0.5 must be below almost_full 0.5");
    /* Only almost_full set: the error points at it. */
    expect_one_error("defaults: {almost_full: 0.04}\n" LOTS, 1, 25,
                     "defaults: hysteresis 0.05 must be below almost_full 0.04");
    expect_one_error("lots:\n  - {id: A, capacity: 0, source: count}\n", 2, 23,
                     "lots[0].capacity: must be between 1 and 10000000, got 0");
    expect_one_error("lots:\n  - {id: A, capacity: 10000001, source: count}\n", 2, 23,
                     "lots[0].capacity: must be between 1 and 10000000");
    expect_one_error(LOT_BLOCK "    lat: 90.5\n    lon: 0\n", 5, 10, "lots[0].lat: must be in [-90, 90], got 90.5");
    expect_one_error("publish: {summary_max_bytes: 4095}\n" LOTS, 1, 30,
                     "publish.summary_max_bytes: must be between 4096 and 268435455, got 4095");
    expect_one_error(LOT_BLOCK "    lat: 0\n    lon: -180.01\n", 6, 10, "lots[0].lon: must be in [-180, 180]");
}

/* A name is bounded (CFG_NAME_MAX) so that every output of a lot has a bounded size. */
static void test_name_length(void **state)
{
    char name[CFG_NAME_MAX + 2], text[CFG_NAME_MAX + 128];
    memset(name, 'n', sizeof name - 1);
    name[CFG_NAME_MAX] = '\0';
    snprintf(text, sizeof text, "lots:\n  - {id: A, capacity: 1, source: count, name: %s}\n", name);
    cfg_config *c = load_ok(text);
    assert_int_equal(strlen(c->lots[0].name), CFG_NAME_MAX);
    cfg_free(c);
    name[CFG_NAME_MAX] = 'n';
    name[CFG_NAME_MAX + 1] = '\0';
    snprintf(text, sizeof text, "lots:\n  - {id: A, capacity: 1, source: count, name: %s}\n", name);
    expect_one_error(text, 2, 47, "lots[0].name: at most 256 bytes, got 257");
}

static void test_duplicate_keys(void **state)
{
    expect_one_error("mqtt:\n  port: 1\n  host: h\n  port: 2\n" LOTS, 4, 3,
                     "duplicate key \"port\" in mqtt (first at line 2)");
    expect_one_error("log: {level: info}\n" LOTS "log: {level: debug}\n", 4, 1,
                     "duplicate key \"log\" (first at line 1)");
    expect_one_error("lots:\n  - {id: A, capacity: 1, source: count, capacity: 2}\n", 2, 41,
                     "duplicate key \"capacity\" in lots[0] (first at line 2)");
}

static void test_duplicate_lot_id(void **state)
{
    loaded l;
    load_bad(&l, "lots:\n"
                 "  - {id: A, capacity: 1, source: count}\n"
                 "  - {id: B, capacity: 1, source: count}\n"
                 "  - id: A\n"
                 "    capacity: 2\n"
                 "    source: bays\n"
                 "  - {id: A, capacity: 1, source: count}\n");
    assert_error(&l, 4, 9, "lots[2].id: duplicate lot id \"A\" (first at line 2)");
    assert_error(&l, 7, 10, "lots[3].id: duplicate lot id \"A\" (first at line 2)");
    assert_int_equal(count_lines(l.errors), 2);
    unload(&l);
}


/* SPEC §10: zones and categories, and every mistake in them at its line and column. */
static void test_zones_and_categories(void **state)
{
    cfg_config *cfg = load_ok("lots:\n"
        "  - id: P1\n"
        "    capacity: 30\n"
        "    source: bays\n"
        "    zones:\n"
        "      - {id: L1, name: Level 1, capacity: 10, bays: [\"L1-*\", L0-01]}\n"
        "      - {id: L2, capacity: 20, bays: [\"L2-?\"]}\n"
        "    categories:\n"
        "      disabled: {capacity: 2, bays: [L1-01]}\n"
        "      bus: {capacity: 1, bays: [\"B[0-9]\"]}\n"
        "  - {id: G1, capacity: 5, source: gates, zones: [{id: N, capacity: 5, gates: [g1]}]}\n");
    const cfg_lot *p1 = &cfg->lots[0];
    assert_int_equal(p1->n_zones, 2);
    assert_string_equal(p1->zones[0].name, "Level 1");
    assert_string_equal(p1->zones[1].name, "L2");
    assert_int_equal(p1->zones[0].members.n_patterns, 1);
    assert_string_equal(p1->zones[0].members.ids[0], "L0-01");
    assert_true(p1->categories[CFG_CAT_DISABLED].set);
    assert_true(p1->categories[CFG_CAT_BUS].set);
    assert_false(p1->categories[CFG_CAT_TRUCK].set);
    assert_true(cfg_lot_has_groups(p1));
    assert_string_equal(cfg->lots[1].zones[0].members.ids[0], "g1");
    cfg_free(cfg);
    const char *head = "lots:\n  - id: P1\n    capacity: 30\n    source: bays\n";
    char text[1024];
    snprintf(text, sizeof text, "%s    zones:\n      - {id: A, capacity: 5, bays: [a1, a2]}\n"
             "      - {id: B, capacity: 5, bays: [b1, a2]}\n", head);
    expect_one_error(text, 7, 41, "\"a2\" is already in zone A (line 6)");
    snprintf(text, sizeof text, "%s    categories:\n      vip: {capacity: 1, bays: [v]}\n", head);
    expect_one_error(text, 6, 7, "unknown category \"vip\"");
    expect_one_error("lots:\n  - {id: C, capacity: 5, source: count, zones: []}\n", 2, 41,
                     "zones need source bays or gates, not count");
    expect_one_error("lots:\n  - {id: C, capacity: 5, source: count, categories: {}}\n", 2, 41,
                     "categories need source bays or gates, not count");
    snprintf(text, sizeof text, "%s    zones:\n      - {id: A, capacity: 20, bays: [a]}\n"
             "      - {id: B, capacity: 11, bays: [b]}\n", head);
    expect_one_error(text, 6, 7, "the zones' capacities add up to 31, above the lot's capacity 30");
    snprintf(text, sizeof text, "%s    categories:\n      truck: {capacity: 31, bays: [t]}\n", head);
    expect_one_error(text, 6, 14, "capacity 31 is above the lot's capacity 30");
    snprintf(text, sizeof text, "%s    zones:\n      - {id: A, capacity: 2, gates: [g]}\n", head);
    expect_one_error(text, 6, 30, "a bays lot lists bays here, not gates");
    expect_one_error("lots:\n  - {id: G, capacity: 5, source: gates, zones: [{id: A, capacity: 2, "
                     "bays: [b]}]}\n", 2, 70, "a gates lot lists gates here, not bays");
    snprintf(text, sizeof text, "%s    zones:\n      - {id: A, capacity: 2, bays: [a]}\n"
             "      - {id: A, capacity: 2, bays: [b]}\n", head);
    expect_one_error(text, 7, 9, "duplicate zone id \"A\" (first at line 6)");
    snprintf(text, sizeof text, "%s    zones:\n      - {id: A, capacity: 2, bays: [\"a/b\"]}\n", head);
    expect_one_error(text, 6, 37, "is neither an id");
    snprintf(text, sizeof text, "%s    zones:\n      - {id: A, capacity: 2, bays: [\"a[b\"]}\n", head);
    expect_one_error(text, 6, 37, "each [ closed");
    snprintf(text, sizeof text, "%s    zones:\n      - {id: A, capacity: 2, bays: []}\n", head);
    expect_one_error(text, 6, 36, "must not be empty");
    snprintf(text, sizeof text, "%s    zones:\n      - {id: A, capacity: 2}\n", head);
    expect_one_error(text, 6, 9, "missing required key \"bays\"");
}


/* SPEC §9: inputs, their defaults, and their mistakes at their line and column. */
static void test_inputs(void **state)
{
    cfg_config *cfg = load_ok("lots:\n  - {id: P1, capacity: 5, source: bays}\n"
        "inputs:\n"
        "  - name: tts\n"
        "    format: ttn-v3\n"
        "    mqtt: {host: eu1.example, port: 8883, username: app@ttn, tls: {ca_file: /x}}\n"
        "    occupied: {field: decoded_payload.occupied}\n"
        "    devices_file: /etc/parkd/tts.csv\n"
        "  - name: cs\n"
        "    format: chirpstack-v4\n"
        "    occupied: {field: status, occupied: [occupied, 1], free: [\"free\", 0]}\n"
        "    devices_file: /etc/parkd/cs.csv\n");
    assert_int_equal(cfg->n_inputs, 2);
    const cfg_input *tts = &cfg->inputs[0], *cs = &cfg->inputs[1];
    assert_true(tts->has_mqtt);
    assert_string_equal(tts->mqtt.client_id, "parkd-tts");
    assert_int_equal(tts->mqtt.port, 8883);
    assert_int_equal(tts->mqtt.qos, 1);
    assert_false(tts->mqtt.clean_session);
    assert_string_equal(tts->topic, "v3/+/devices/+/up");
    assert_int_equal(tts->max_payload, 65536);
    assert_false(cs->has_mqtt);
    assert_string_equal(cs->topic, "application/+/device/+/event/up");
    assert_int_equal(cs->n_occupied_values, 2);
    assert_string_equal(cs->occupied_values[0], "\"occupied\"");
    assert_string_equal(cs->occupied_values[1], "1");
    assert_string_equal(cs->free_values[0], "\"free\"");
    assert_false(cfg_inputs_connections_differ(cfg, cfg));
    cfg_free(cfg);
    const char *head = "lots:\n  - {id: P1, capacity: 5, source: bays}\ninputs:\n";
    char text[1024];
    snprintf(text, sizeof text, "%s  - {name: a, format: lora, occupied: {field: x}, "
             "devices_file: d}\n", head);
    expect_one_error(text, 4, 23, "expected one of ttn-v3, chirpstack-v4");
    snprintf(text, sizeof text, "%s  - {name: \"a b\", format: ttn-v3, occupied: {field: x}, "
             "devices_file: d}\n", head);
    expect_one_error(text, 4, 12, "must match [A-Za-z0-9_-]+");
    snprintf(text, sizeof text, "%s  - {name: a, format: ttn-v3, occupied: {field: \"a..b\"}, "
             "devices_file: d}\n", head);
    expect_one_error(text, 4, 49, "empty segment");
    snprintf(text, sizeof text, "%s  - {name: a, format: ttn-v3, devices_file: d, "
             "occupied: {field: x, occupied: [1], free: [1]}}\n", head);
    expect_one_error(text, 4, 91, "listed twice");
    snprintf(text, sizeof text, "%s  - {name: a, format: ttn-v3, occupied: {field: x}, "
             "devices_file: d, mqtt: {port: 1}}\n", head);
    expect_one_error(text, 4, 76, "missing required key \"host\"");
    snprintf(text, sizeof text, "%s  - {name: a, format: ttn-v3, occupied: {field: x}}\n", head);
    expect_one_error(text, 4, 5, "missing required key \"devices_file\"");
    snprintf(text, sizeof text, "%s  - {name: a, format: ttn-v3, occupied: {field: x}, "
             "devices_file: d}\n  - {name: a, format: ttn-v3, occupied: {field: x}, "
             "devices_file: d}\n", head);
    expect_one_error(text, 5, 5, "duplicate input name \"a\"");
}


/* SPEC §11: ha, sentinels, min_replicas_ack. */
static void test_ha(void **state)
{
    cfg_config *cfg = load_ok("lots:\n  - {id: P1, capacity: 5, source: bays}\n");
    assert_false(cfg->ha.enabled);
    assert_int_equal(cfg->redis.n_sentinels, 0);
    assert_int_equal(cfg->redis.min_replicas_ack, 0);
    cfg_free(cfg);
    cfg = load_ok("ha: {instance: p-1, lease: 3s}\n"
                  "redis: {sentinels: [\"10.0.0.1:26379\", \"[::1]:26380\"], master_name: pk,\n"
                  "        min_replicas_ack: 1}\n"
                  "lots:\n  - {id: P1, capacity: 5, source: bays}\n");
    assert_true(cfg->ha.enabled);
    assert_string_equal(cfg->ha.instance, "p-1");
    assert_int_equal(cfg->ha.lease_ms, 3000);
    assert_int_equal(cfg->redis.n_sentinels, 2);
    assert_string_equal(cfg->redis.sentinels[1], "[::1]:26380");
    assert_string_equal(cfg->redis.master_name, "pk");
    assert_int_equal(cfg->redis.min_replicas_ack, 1);
    cfg_free(cfg);
    cfg = load_ok("ha:\nlots:\n  - {id: P1, capacity: 5, source: bays}\n");
    assert_true(cfg->ha.enabled);
    assert_null(cfg->ha.instance);
    assert_int_equal(cfg->ha.lease_ms, 5000);
    cfg_free(cfg);
    expect_one_error("redis: {sentinels: [\"h:1\"]}\nlots:\n  - {id: P1, capacity: 5, source: bays}\n",
                     1, 20, "needs redis.master_name");
    expect_one_error("ha: {lease: 500ms}\nlots:\n  - {id: P1, capacity: 5, source: bays}\n", 1, 13,
                     "must be at least 1s");
    expect_one_error("ha: {instance: \"a b\"}\nlots:\n  - {id: P1, capacity: 5, source: bays}\n", 1, 16,
                     "not a valid id");
}

static void test_missing_required(void **state)
{
    expect_one_error("mqtt: {port: 1883}\n", 1, 1, "missing required key \"lots\"");
    expect_one_error("\n\nmqtt: {port: 1883}\n", 3, 1, "missing required key \"lots\"");
    expect_one_error("lots:\n  - {capacity: 1, source: count}\n", 2, 5, "lots[0]: missing required key \"id\"");
    expect_one_error("lots:\n  - {id: A, source: count}\n", 2, 5, "lots[0]: missing required key \"capacity\"");
    expect_one_error("lots:\n  - name: x\n    id: A\n    capacity: 3\n", 2, 5,
                     "lots[0]: missing required key \"source\"");
    expect_one_error("lots:\n  - {id: A, capacity: 1, source: count}\n  - x\n", 3, 5,
                     "lots[1]: expected a mapping with id, capacity and source, got a scalar");
}

static void test_empty_lots(void **state)
{
    expect_one_error("lots: []\n", 1, 7, "lots: must not be empty");
    expect_one_error("lots:\n", 1, 6, "lots: expected a list of lots, got null");
    expect_one_error("lots: ~\n", 1, 7, "lots: expected a list of lots, got null");
    expect_one_error("lots: {id: A}\n", 1, 7, "lots: expected a list of lots, got a mapping");
}

static void test_bad_id_and_source(void **state)
{
    static const char *bad_ids[] = {
        "\"NIA North\"", "Others/1", ".hidden", "\"..\"", "_x", "-x", "\"\"", "a+b", "caf\xc3\xa9",
        "a1234567890123456789012345678901234567890123456789012345678901234", /* 65 characters */
    };
    char yaml[256];
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        snprintf(yaml, sizeof yaml, "lots:\n  - {id: %s, capacity: 1, source: count}\n", bad_ids[i]);
        expect_one_error(yaml, 2, 10, "is not a valid id (ids match [A-Za-z0-9][A-Za-z0-9_.-]{0,63})");
    }
    expect_one_error("lots:\n  - {id: \"NIA North\", capacity: 1, source: count}\n", 2, 10,
                     "lots[0].id: \"NIA North\" is not a valid id");
    /* 64 characters, digits first, dots and dashes: all fine. */
    cfg_config *c = load_ok("lots:\n  - {id: 0123456789012345678901234567890123456789012345678901234567890123, "
                            "capacity: 1, source: count}\n  - {id: 1.a-b_c, capacity: 1, source: count}\n");
    assert_int_equal(strlen(c->lots[0].id), 64);
    assert_string_equal(c->lots[1].id, "1.a-b_c");
    cfg_free(c);

    expect_one_error("lots:\n  - {id: A, capacity: 1, source: sensors}\n", 2, 34,
                     "lots[0].source: expected one of bays, gates, count, got \"sensors\"");
    expect_one_error("lots:\n  - {id: A, capacity: 1, source: Count}\n", 2, 34, "lots[0].source: expected one of");
}

static void test_lat_lon(void **state)
{
    expect_one_error(LOT_BLOCK "    lat: 52.4\n", 5, 5, "lots[0]: lat given without lon (give both or neither)");
    expect_one_error(LOT_BLOCK "    lon: -1.9\n", 5, 5, "lots[0]: lon given without lat (give both or neither)");
    expect_one_error(LOT_BLOCK "    lat: north\n    lon: 1\n", 5, 10, "lots[0].lat: expected a number, got \"north\"");
    cfg_config *c = load_ok(LOT_BLOCK "    lat: 0\n    lon: 0\n");
    assert_true(c->lots[0].has_position);
    cfg_free(c);
}

static void test_timezone(void **state)
{
    if (access("/usr/share/zoneinfo/Europe/London", R_OK) != 0)
        skip();
    cfg_config *c = load_ok("timezone: \"America/Argentina/Buenos_Aires\"\n" LOTS);
    assert_string_equal(c->timezone, "America/Argentina/Buenos_Aires");
    cfg_free(c);
    c = load_ok("timezone: UTC\n" LOTS);
    assert_string_equal(c->timezone, "UTC");
    cfg_free(c);

    expect_one_error("timezone: Mars/Olympus_Mons\n" LOTS, 1, 11,
                     "timezone: unknown time zone \"Mars/Olympus_Mons\" (no such zone under /usr/share/zoneinfo)");
    expect_one_error("timezone: Europe\n" LOTS, 1, 11, "timezone: unknown time zone \"Europe\"");
    expect_one_error("timezone: zone.tab\n" LOTS, 1, 11, "timezone: unknown time zone \"zone.tab\"");
    expect_one_error("timezone: ../../../etc/passwd\n" LOTS, 1, 11,
                     "timezone: \"../../../etc/passwd\" is not a valid time zone name");
    expect_one_error("timezone: Europe/../Europe/London\n" LOTS, 1, 11, "is not a valid time zone name");
    expect_one_error("timezone: /usr/share/zoneinfo/UTC\n" LOTS, 1, 11, "is not a valid time zone name");
    expect_one_error("timezone: ./UTC\n" LOTS, 1, 11, "is not a valid time zone name");
    expect_one_error("timezone: Europe//London\n" LOTS, 1, 11, "is not a valid time zone name");
    expect_one_error("timezone: \"Europe/London \"\n" LOTS, 1, 11, "is not a valid time zone name");
    expect_one_error("timezone: \"\"\n" LOTS, 1, 11, "timezone: must not be empty (use ~ for none)");
}

static void test_metrics_listen(void **state)
{
    static const char *good[] = {"127.0.0.1:9108", "localhost:1", "\"[::1]:65535\"", "\"0.0.0.0:9108\""};
    static const char *bad[] = {"localhost", "\":9108\"", "\"host:\"", "\"host:0\"", "\"host:65536\"",
                                "\"::1:9108\"", "\"[::1]9108\"", "\"[]:9108\"", "\"a b:1\"", "\"h:1x\""};
    char yaml[128];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(yaml, sizeof yaml, "metrics: {listen: %s}\n" LOTS, good[i]);
        cfg_config *c = load_ok(yaml);
        assert_non_null(c->metrics.listen);
        cfg_free(c);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(yaml, sizeof yaml, "metrics: {listen: %s}\n" LOTS, bad[i]);
        expect_one_error(yaml, 1, 19, "metrics.listen: expected HOST:PORT");
    }
}

static void test_http_section(void **state)
{
    cfg_config *c = load_ok("lots: [{id: A, capacity: 1, source: count}]\n");
    assert_null(c->http.listen);
    assert_int_equal(c->http.max_connections, 256);
    assert_int_equal(c->http.n_cors_origins, 0);
    assert_null(c->http.map_mqtt_ws_url);
    cfg_free(c);
    c = load_ok("http: {listen: 127.0.0.1:8080, cors_origins: [\"*\", \"https://a.example:8443\"],\n"
                "       max_connections: 4, map: {mqtt_ws_url: \"wss://b/mqtt\", tile_url: ~}}\n" LOTS);
    assert_string_equal(c->http.listen, "127.0.0.1:8080");
    assert_int_equal(c->http.n_cors_origins, 2);
    assert_string_equal(c->http.cors_origins[1], "https://a.example:8443");
    assert_int_equal(c->http.max_connections, 4);
    assert_string_equal(c->http.map_mqtt_ws_url, "wss://b/mqtt");
    /* every http key is read at start only, the origins list too */
    cfg_config *d = load_ok("http: {cors_origins: [\"https://c.example\"]}\n" LOTS);
    assert_int_equal(cfg_reload_effects(c, d, NULL, NULL), CFG_RELOAD_RESTART);
    cfg_keep_restart_keys(c, d);
    assert_int_equal(d->http.n_cors_origins, 2);
    assert_string_equal(d->http.listen, "127.0.0.1:8080");
    assert_int_equal(cfg_reload_effects(c, d, NULL, NULL), 0);
    cfg_free(d);
    cfg_free(c);
    expect_one_error("http: {cors_origins: [\"ftp://x\"]}\n" LOTS, 1, 23, "http.cors_origins: expected");
    expect_one_error("http: {cors_origins: [\"https://x/\"]}\n" LOTS, 1, 23, "without a path");
    expect_one_error("http: {cors_origins: https://x}\n" LOTS, 1, 22, "expected a list of origins");
    expect_one_error("http: {max_connections: 0}\n" LOTS, 1, 25, "http.max_connections: must be");
    expect_one_error("http: {map: {mqtt_ws_url: \"http://x\"}}\n" LOTS, 1, 27, "ws:// or wss://");
    expect_one_error("http: {map: {tile_url: \"x\"}}\n" LOTS, 1, 24, "http:// or https://");
    expect_one_error("http: {map: {zoom: 3}}\n" LOTS, 1, 14, "unknown key");
}

static void test_mqtt_rules(void **state)
{
    expect_one_error("mqtt: {tls: {cert_file: /c.pem}}\n" LOTS, 1, 25,
                     "mqtt.tls: cert_file and key_file go together");
    expect_one_error("mqtt: {tls: {key_file: /c.key}}\n" LOTS, 1, 24,
                     "mqtt.tls: cert_file and key_file go together");
    expect_one_error("mqtt: {password_file: /etc/parkd/pw}\n" LOTS, 1, 23,
                     "mqtt.password_file: needs mqtt.username");
    expect_one_error("mqtt: {password_file: /etc/parkd/pw, username: \"\"}\n" LOTS, 1, 48,
                     "mqtt.username: must not be empty");
    expect_one_error("mqtt: {input_prefix: parking/+}\n" LOTS, 1, 22,
                     "mqtt.input_prefix: must not contain the MQTT wildcards");
    expect_one_error("mqtt: {output_prefix: \"out/#\"}\n" LOTS, 1, 23,
                     "mqtt.output_prefix: must not contain the MQTT wildcards");
    expect_one_error("mqtt: {output_prefix: out/}\n" LOTS, 1, 23, "mqtt.output_prefix: must not end with '/'");
    /* A redis password without a user name is the default user's: fine. */
    cfg_config *c = load_ok("redis: {password_file: /etc/parkd/redis.pw, prefix: \"\"}\n" LOTS);
    assert_string_equal(c->redis.password_file, "/etc/parkd/redis.pw");
    assert_string_equal(c->redis.prefix, "");
    cfg_free(c);
}

static void test_multiple_errors(void **state)
{
    loaded l;
    load_bad(&l, "mqtt:\n"
                 "  port: abc\n"
                 "  qos: 5\n"
                 "  bogus: 1\n"
                 "log: {level: loud}\n"
                 "lots:\n"
                 "  - {id: A, capacity: 0, source: count}\n"
                 "  - {id: \"b c\", capacity: 1, source: pigeons}\n"
                 "  - {id: A, capacity: 1, source: count}\n"
                 "defaults: {almost_full: 2}\n");
    assert_error(&l, 2, 9, "mqtt.port: expected an integer");
    assert_error(&l, 3, 8, "mqtt.qos: must be between 0 and 2");
    assert_error(&l, 4, 3, "unknown key \"bogus\" in mqtt");
    assert_error(&l, 5, 14, "log.level: expected one of");
    assert_error(&l, 7, 23, "lots[0].capacity: must be between 1");
    assert_error(&l, 8, 10, "lots[1].id: \"b c\" is not a valid id");
    assert_error(&l, 8, 38, "lots[1].source: expected one of");
    assert_error(&l, 9, 10, "lots[2].id: duplicate lot id \"A\" (first at line 7)");
    assert_error(&l, 10, 25, "defaults.almost_full: must be in (0, 1]");
    assert_int_equal(count_lines(l.errors), 9);
    /* In file order, whatever order they were found in. */
    char prefix[80];
    snprintf(prefix, sizeof prefix, "%s:2:9: ", l.path);
    assert_int_equal(strncmp(l.errors, prefix, strlen(prefix)), 0);
    snprintf(prefix, sizeof prefix, "%s:10:25: ", l.path);
    assert_non_null(strstr(l.errors, prefix));
    assert_null(strstr(strstr(l.errors, prefix), "lots["));
    unload(&l);
}

static void test_many_errors_capped(void **state)
{
    char *yaml = malloc(200 * 40 + 64), *at = yaml;
    at += sprintf(at, "lots:\n");
    for (int i = 0; i < 150; i++)
        at += sprintf(at, "  - {id: L%d, capacity: 0, source: count}\n", i);
    loaded l;
    load_bad(&l, yaml);
    assert_int_equal(count_lines(l.errors), 101);
    char last[96];
    snprintf(last, sizeof last, "%s: 50 more errors not shown\n", l.path);
    assert_string_equal(l.errors + strlen(l.errors) - strlen(last), last);
    unload(&l);
    free(yaml);
}

static void test_per_lot_overrides(void **state)
{
    cfg_config *c = load_ok("lots:\n"
                            "  - {id: plain, capacity: 100, source: count}\n"
                            "  - {id: own, capacity: 100, source: bays, stale_after: 10m, almost_full: 0.5,"
                            " hysteresis: 0.1}\n"
                            "  - {id: half, capacity: 100, source: gates, almost_full: 0.95}\n"
                            "defaults: {stale_after: 30m, almost_full: 0.8, hysteresis: 0.02}\n");
    const cfg_lot *plain = cfg_find_lot(c, "plain"), *own = cfg_find_lot(c, "own");
    const cfg_lot *half = cfg_find_lot(c, "half");
    assert_non_null(plain);
    assert_int_equal(plain->stale_after_ms, 30 * MS_MIN);
    assert_true(plain->almost_full == 0.8 && plain->hysteresis == 0.02);
    assert_int_equal(own->stale_after_ms, 10 * MS_MIN);
    assert_true(own->almost_full == 0.5 && own->hysteresis == 0.1);
    assert_int_equal(half->stale_after_ms, 30 * MS_MIN);
    assert_true(half->almost_full == 0.95 && half->hysteresis == 0.02);
    cfg_free(c);

    /* The lot's own almost_full against the inherited hysteresis. */
    expect_one_error("lots:\n  - {id: A, capacity: 1, source: count, almost_full: 0.04}\n", 2, 54,
                     "lots[0]: hysteresis 0.05 (from defaults) must be below almost_full 0.04");
    expect_one_error("lots:\n  - {id: A, capacity: 1, source: count, hysteresis: 0.9}\n", 2, 53,
                     "lots[0]: hysteresis 0.9 must be below almost_full 0.9 (from defaults)");
    expect_one_error("lots:\n  - {id: A, capacity: 1, source: count, almost_full: 0}\n", 2, 54,
                     "lots[0].almost_full: must be in (0, 1]");
}

/* bay_stale_after: per bays lot, off by default, an error on lots without bays. */
static void test_bay_stale_after(void **state)
{
    cfg_config *c = load_ok("lots:\n"
                            "  - {id: on, capacity: 10, source: bays, bay_stale_after: 25h}\n"
                            "  - {id: off, capacity: 10, source: bays}\n");
    assert_int_equal(cfg_find_lot(c, "on")->bay_stale_after_ms, 25 * 60 * MS_MIN);
    assert_int_equal(cfg_find_lot(c, "off")->bay_stale_after_ms, 0);
    cfg_free(c);
    expect_one_error("lots:\n  - {id: A, capacity: 1, source: count, bay_stale_after: 1h}\n", 2, 41,
                     "lots[0]: bay_stale_after needs source bays, not count");
    expect_one_error("lots:\n  - {id: A, capacity: 1, source: gates, bay_stale_after: 1h}\n", 2, 41,
                     "lots[0]: bay_stale_after needs source bays, not gates");
    expect_one_error("lots:\n  - {id: A, capacity: 1, source: bays, bay_stale_after: 0s}\n", 2, 57,
                     "lots[0].bay_stale_after");
}

static void test_find_lot_and_source_name(void **state)
{
    cfg_config *c = load_ok("lots:\n  - {id: a, capacity: 1, source: bays}\n  - {id: b, capacity: 2, source: gates}\n");
    assert_ptr_equal(cfg_find_lot(c, "b"), &c->lots[1]);
    assert_null(cfg_find_lot(c, "B"));
    assert_null(cfg_find_lot(c, ""));
    cfg_free(c);
    assert_string_equal(cfg_source_name(CFG_SOURCE_BAYS), "bays");
    assert_string_equal(cfg_source_name(CFG_SOURCE_GATES), "gates");
    assert_string_equal(cfg_source_name(CFG_SOURCE_COUNT), "count");
    cfg_free(NULL);
}

/* Anchors and aliases are plain YAML and work; merge keys ("<<") are not supported. */
static void test_yaml_features(void **state)
{
    cfg_config *c = load_ok("defaults: {almost_full: &af 0.7}\n"
                            "lots:\n  - {id: a, capacity: 1, source: count, almost_full: *af}\n");
    assert_true(c->lots[0].almost_full == 0.7);
    cfg_free(c);
    expect_one_error("<<: {log: {level: debug}}\n" LOTS, 1, 1, "unknown top-level key \"<<\"");
}

/* The shipped examples, found from PARKD_TOP (set by tests/run.sh) or else the current
 * directory; skipped only when neither is a source tree. */
static cfg_config *load_shipped(const char *name)
{
    const char *top = getenv("PARKD_TOP");
    char path[4096];
    snprintf(path, sizeof path, "%s/config/%s", top ? top : ".", name);
    if (!top && access(path, R_OK) != 0)
        skip();
    cfg_config *c = NULL;
    char *errors = NULL;
    if (cfg_load(path, &c, &errors) != 0)
        fail_msg("%s", errors);
    return c;
}

static void assert_same_string(const char *a, const char *b)
{
    if (a || b)
        assert_true(a && b && !strcmp(a, b));
}

/* parkd.yaml says each value in it is the built-in default, except timezone. */
static void assert_same_settings(const cfg_config *a, const cfg_config *b)
{
    assert_same_string(a->mqtt.host, b->mqtt.host);
    assert_int_equal(a->mqtt.port, b->mqtt.port);
    assert_same_string(a->mqtt.client_id, b->mqtt.client_id);
    assert_same_string(a->mqtt.username, b->mqtt.username);
    assert_same_string(a->mqtt.password_file, b->mqtt.password_file);
    assert_same_string(a->mqtt.tls_ca_file, b->mqtt.tls_ca_file);
    assert_same_string(a->mqtt.tls_cert_file, b->mqtt.tls_cert_file);
    assert_same_string(a->mqtt.tls_key_file, b->mqtt.tls_key_file);
    assert_int_equal(a->mqtt.keepalive_ms, b->mqtt.keepalive_ms);
    assert_int_equal(a->mqtt.qos, b->mqtt.qos);
    assert_int_equal(a->mqtt.clean_session, b->mqtt.clean_session);
    assert_same_string(a->mqtt.input_prefix, b->mqtt.input_prefix);
    assert_same_string(a->mqtt.output_prefix, b->mqtt.output_prefix);
    assert_same_string(a->redis.host, b->redis.host);
    assert_int_equal(a->redis.port, b->redis.port);
    assert_same_string(a->redis.socket, b->redis.socket);
    assert_same_string(a->redis.username, b->redis.username);
    assert_same_string(a->redis.password_file, b->redis.password_file);
    assert_int_equal(a->redis.db, b->redis.db);
    assert_same_string(a->redis.prefix, b->redis.prefix);
    assert_int_equal(a->publish.min_interval_ms, b->publish.min_interval_ms);
    assert_int_equal(a->publish.heartbeat_ms, b->publish.heartbeat_ms);
    assert_true(a->publish.deadband == b->publish.deadband);
    assert_int_equal(a->publish.summary_interval_ms, b->publish.summary_interval_ms);
    assert_int_equal(a->publish.summary_max_bytes, b->publish.summary_max_bytes);
    assert_int_equal(a->smoothing.tau_ms, b->smoothing.tau_ms);
    assert_int_equal(a->forecast.n_horizons, b->forecast.n_horizons);
    for (size_t i = 0; i < a->forecast.n_horizons; i++)
        assert_int_equal(a->forecast.horizons_ms[i], b->forecast.horizons_ms[i]);
    assert_int_equal(a->history.interval_ms, b->history.interval_ms);
    assert_int_equal(a->history.max_len, b->history.max_len);
    assert_int_equal(a->limits.max_payload, b->limits.max_payload);
    assert_int_equal(a->limits.max_future_ms, b->limits.max_future_ms);
    assert_int_equal(a->limits.max_bays_per_lot, b->limits.max_bays_per_lot);
    assert_int_equal(a->limits.max_lots, b->limits.max_lots);
    assert_int_equal(a->log_level, b->log_level);
    assert_same_string(a->metrics.listen, b->metrics.listen);
    assert_int_equal(a->defaults.stale_after_ms, b->defaults.stale_after_ms);
    assert_true(a->defaults.almost_full == b->defaults.almost_full);
    assert_true(a->defaults.hysteresis == b->defaults.hysteresis);
}

static void test_shipped_configs(void **state)
{
    cfg_config *min = load_shipped("minimal.yaml");
    cfg_config *full = load_shipped("parkd.yaml");
    assert_int_equal(min->n_lots, 1);
    assert_null(min->timezone);
    assert_same_settings(min, full);
    assert_string_equal(full->timezone, "Europe/London");
    assert_int_equal(full->n_lots, 30);
    const cfg_lot *bs = cfg_find_lot(full, "BHMBCCMKT01");
    assert_non_null(bs);
    assert_string_equal(bs->name, "Broad Street");
    assert_int_equal(bs->capacity, 577);
    assert_false(bs->has_position);     /* no coordinates without a source for them */
    const cfg_lot *nia = cfg_find_lot(full, "NIA_North");
    assert_non_null(nia);
    assert_string_equal(nia->name, "NIA_North");
    assert_int_equal(nia->capacity, 480);
    assert_false(nia->has_position);
    assert_non_null(cfg_find_lot(full, "Others-CCCPS133"));
    for (size_t i = 0; i < full->n_lots; i++)
        assert_int_equal(full->lots[i].source, CFG_SOURCE_COUNT);
    cfg_free(min);
    cfg_free(full);
}

/* ---- limits.max_lots and the memory estimate ---- */

/* "limits: {max_lots: MAX}" and N lots L0..L(N-1), one a line from line 3 (column 5). */
static char *lots_yaml(const char *max, int n)
{
    size_t size = 64 + (size_t)n * 64;
    char *text = malloc(size);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, size, "limits: {max_lots: %s}\nlots:\n", max);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, size - len,
                                "  - {id: L%d, capacity: 10, source: count}\n", i);
    return text;
}

static void test_max_lots(void **state)
{
    /* exactly max_lots is fine; ~ is the documented default */
    char *text = lots_yaml("3", 3);
    cfg_config *c = load_ok(text);
    assert_int_equal(c->limits.max_lots, 3);
    assert_int_equal(c->n_lots, 3);
    cfg_free(c);
    free(text);
    text = lots_yaml("~", 3);
    c = load_ok(text);
    assert_int_equal(c->limits.max_lots, CFG_MAX_LOTS_DEFAULT);
    cfg_free(c);
    free(text);

    /* one more: an error at the first lot too many (line 6), and only that one */
    text = lots_yaml("3", 5);
    expect_one_error(text, 6, 5, "lots[3]: more than limits.max_lots (3) lots (5 in all)");
    free(text);

    /* errors in the lots within the limit are still shown; those beyond it are not looked at */
    loaded l;
    load_bad(&l, "limits: {max_lots: 1}\nlots:\n  - {id: A, capacity: 0, source: count}\n"
                 "  - {id: B, capacity: 0, source: count}\n");
    assert_error(&l, 3, 23, "lots[0].capacity");
    assert_error(&l, 4, 5, "more than limits.max_lots (1)");
    assert_int_equal(count_lines(l.errors), 2);
    unload(&l);

    /* a bad max_lots is its own error, without a second one about the count */
    text = lots_yaml("0", 2);
    expect_one_error(text, 1, 20, "limits.max_lots: must be between 1 and");
    free(text);
}

static void test_memory_estimate(void **state)
{
    char *text = lots_yaml("~", 10), *w;
    cfg_config *c = load_ok(text);
    free(text);
    assert_true(cfg_lots_memory(c) > 10 * 4000 && cfg_lots_memory(c) < 10 * 40000);
    assert_int_equal(cfg_check_memory(c, &w), 0);     /* small: nothing to say */
    assert_null(w);
    cfg_free(c);

    text = lots_yaml("~", CFG_MAX_LOTS_DEFAULT);
    c = load_ok(text);
    free(text);
    uint64_t per_lot = cfg_lots_memory(c) / c->n_lots;
    if (cfg_lots_memory(c) > CFG_MEMORY_WARN_BYTES) {
        assert_int_equal(cfg_check_memory(c, &w), 1);
        char expect[128];
        snprintf(expect, sizeof expect, ": warning: %d lots will take about ",
                 CFG_MAX_LOTS_DEFAULT);
        assert_non_null(strstr(w, expect));
        assert_int_equal(strncmp(w, c->path, strlen(c->path)), 0);
        assert_non_null(strstr(w, " MiB of memory"));
        assert_int_equal(count_lines(w), 1);
        free(w);
    }
    /* more horizons, more memory */
    c->forecast.n_horizons++;
    assert_true(cfg_lots_memory(c) / c->n_lots > per_lot);
    c->forecast.n_horizons--;
    cfg_free(c);
}

/* ---- cfg_check_secret_files (--check warnings) ---- */

/* Writes TEXT to DIR/NAME with MODE; returns the path (static buffer of the caller). */
static void make_file(char *path, size_t size, const char *dir, const char *name, const char *text,
                      mode_t mode)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static int count_warnings(const cfg_config *c, char **text)
{
    int n = cfg_check_secret_files(c, text);
    assert_true((n > 0) == (*text != NULL));
    if (*text)
        assert_int_equal(count_lines(*text), (size_t)n);
    return n;
}

static void test_secret_files(void **state)
{
    char dir[] = "/tmp/parkd-test-secrets-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char mpw[128], rpw[128], key[128], crt[128], empty[128], yaml[1024], *w;
    make_file(mpw, sizeof mpw, dir, "mqtt.pw", "top-secret-mqtt\n", 0600);
    make_file(rpw, sizeof rpw, dir, "redis.pw", "top-secret-redis\n", 0400);
    make_file(key, sizeof key, dir, "client.key", "-----BEGIN PRIVATE KEY-----\nsecretkey\n", 0600);
    make_file(crt, sizeof crt, dir, "client.crt", "cert\n", 0644);
    make_file(empty, sizeof empty, dir, "empty.pw", "", 0600);

    /* private secrets, a world-readable certificate: nothing to say */
    snprintf(yaml, sizeof yaml, "mqtt: {username: u, password_file: %s, tls: {ca_file: %s, "
             "cert_file: %s, key_file: %s}}\nredis: {password_file: %s}\n" LOTS,
             mpw, crt, crt, key, rpw);
    cfg_config *c = load_ok(yaml);
    assert_int_equal(count_warnings(c, &w), 0);
    assert_null(w);

    /* group- and world-readable secrets, each named with its key, file and mode */
    assert_int_equal(chmod(mpw, 0644), 0);
    assert_int_equal(chmod(key, 0640), 0);
    assert_int_equal(chmod(rpw, 0604), 0);
    assert_int_equal(count_warnings(c, &w), 3);
    assert_non_null(strstr(w, "mqtt.password_file \""));
    assert_non_null(strstr(w, "is readable by group and others (mode 0644)"));
    assert_non_null(strstr(w, "mqtt.tls.key_file \""));
    assert_non_null(strstr(w, "is readable by its group (mode 0640)"));
    assert_non_null(strstr(w, "redis.password_file \""));
    assert_non_null(strstr(w, "is readable by others (mode 0604)"));
    assert_int_equal(strncmp(w, c->path, strlen(c->path)), 0);
    assert_null(strstr(w, "top-secret"));     /* nothing is read from the files */
    assert_null(strstr(w, "secretkey"));
    free(w);
    cfg_free(c);

    /* missing, empty, a directory */
    snprintf(yaml, sizeof yaml, "mqtt: {username: u, password_file: %s/missing.pw, "
             "tls: {ca_file: %s}}\nredis: {password_file: %s}\n" LOTS, dir, dir, empty);
    c = load_ok(yaml);
    assert_int_equal(count_warnings(c, &w), 3);
    assert_non_null(strstr(w, "missing.pw\" cannot be read: No such file or directory"));
    assert_non_null(strstr(w, "empty.pw\" is empty"));
    assert_non_null(strstr(w, "mqtt.tls.ca_file"));
    assert_non_null(strstr(w, "is not a regular file"));
    free(w);
    cfg_free(c);

    /* unreadable (not testable as root, who reads everything) */
    if (geteuid() != 0) {
        assert_int_equal(chmod(rpw, 0), 0);
        snprintf(yaml, sizeof yaml, "redis: {password_file: %s}\n" LOTS, rpw);
        c = load_ok(yaml);
        assert_int_equal(count_warnings(c, &w), 1);
        assert_non_null(strstr(w, "cannot be read: Permission denied"));
        free(w);
        cfg_free(c);
    }

    /* no *_file at all */
    c = load_ok(LOTS);
    assert_int_equal(count_warnings(c, &w), 0);
    cfg_free(c);

    unlink(mpw); unlink(rpw); unlink(key); unlink(crt); unlink(empty);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_empty_sections_and_nulls),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_durations_in_yaml),
        cmocka_unit_test(test_duration_errors),
        cmocka_unit_test(test_horizons),
        cmocka_unit_test(test_cannot_read),
        cmocka_unit_test(test_fifo_files),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_name_length),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_duplicate_lot_id),
        cmocka_unit_test(test_zones_and_categories),
        cmocka_unit_test(test_inputs),
        cmocka_unit_test(test_ha),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_empty_lots),
        cmocka_unit_test(test_bad_id_and_source),
        cmocka_unit_test(test_lat_lon),
        cmocka_unit_test(test_timezone),
        cmocka_unit_test(test_metrics_listen),
        cmocka_unit_test(test_http_section),
        cmocka_unit_test(test_mqtt_rules),
        cmocka_unit_test(test_multiple_errors),
        cmocka_unit_test(test_many_errors_capped),
        cmocka_unit_test(test_per_lot_overrides),
        cmocka_unit_test(test_bay_stale_after),
        cmocka_unit_test(test_find_lot_and_source_name),
        cmocka_unit_test(test_yaml_features),
        cmocka_unit_test(test_shipped_configs),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_max_lots),
        cmocka_unit_test(test_memory_estimate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
