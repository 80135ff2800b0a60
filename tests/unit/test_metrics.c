/* Unit tests for metrics: the exposition text (families, labels, escaping, histogram) checked
 * line by line against the Prometheus text format 0.0.4, and the HTTP endpoint on a loopback
 * port (GET /metrics, 404, 405, 503 before the first snapshot, bad listen addresses). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"
#include "metrics.h"

static char id_a[] = "BHMBCCMKT01", name_a[] = "Broad \"Street\" \\ car\npark";
static char id_b[] = "B-2.x", name_b[] = "Moor Street";

static lot *make_lot(char *id, char *name, int64_t capacity)
{
    cfg_lot cfg = { .id = id, .name = name, .capacity = capacity, .source = CFG_SOURCE_COUNT,
                    .stale_after_ms = 3600000, .almost_full = 0.9, .hysteresis = 0.05 };
    return lot_new(&cfg, 300000);
}

static char *render(const metrics_snapshot *s)
{
    size_t len;
    char *text = metrics_render(s, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* True when TEXT holds LINE as a whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    }
    return false;
}

#define assert_line(text, line)                                        \
    do {                                                               \
        if (!has_line((text), (line)))                                 \
            fail_msg("missing line: %s\n--- in:\n%s", (line), (text)); \
    } while (0)

static int count_lines_starting(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; *p;) {
        if (strncmp(p, prefix, len) == 0)
            n++;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return n;
}

/* Checks TEXT against the text format: every line a HELP, a TYPE or a sample; the text ends
 * with a newline; each family has one TYPE, before its samples, and its samples are contiguous;
 * histogram samples use the _bucket/_sum/_count suffixes. */
static void assert_valid_exposition(const char *text)
{
    regex_t help, type, sample;
    assert_int_equal(regcomp(&help, "^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* [^\n]*$", REG_EXTENDED), 0);
    assert_int_equal(regcomp(&type, "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) "
                                    "(counter|gauge|histogram|summary|untyped)$",
                             REG_EXTENDED), 0);
    assert_int_equal(regcomp(&sample,
                             "^([a-zA-Z_:][a-zA-Z0-9_:]*)"
                             "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\[\\\\\"n])*\""
                             "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\[\\\\\"n])*\")*\\})? "
                             "(NaN|[+-]Inf|[+-]?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?)$",
                             REG_EXTENDED), 0);
    assert_true(text[0] != '\0');
    assert_true(text[strlen(text) - 1] == '\n');
    char *copy = strdup(text);
    char families[200][96];
    size_t n_families = 0;
    char current[96] = "", current_type[16] = "";
    for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        regmatch_t m[2];
        if (regexec(&help, line, 0, NULL, 0) == 0)
            continue;
        if (regexec(&type, line, 2, m, 0) == 0) {
            char name[96];
            snprintf(name, sizeof name, "%.*s", (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
            for (size_t i = 0; i < n_families; i++) {
                if (strcmp(families[i], name) == 0)
                    fail_msg("family %s has two TYPE lines", name);
            }
            assert_true(n_families < 200);
            snprintf(families[n_families++], sizeof families[0], "%s", name);
            snprintf(current, sizeof current, "%s", name);
            snprintf(current_type, sizeof current_type, "%s", strrchr(line, ' ') + 1);
            continue;
        }
        if (regexec(&sample, line, 2, m, 0) != 0)
            fail_msg("not a valid exposition line: %s", line);
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
        bool ok = strcmp(name, current) == 0;
        if (strcmp(current_type, "histogram") == 0) {
            size_t n = strlen(current);
            ok = strncmp(name, current, n) == 0 &&
                 (strcmp(name + n, "_bucket") == 0 || strcmp(name + n, "_sum") == 0 ||
                  strcmp(name + n, "_count") == 0);
        }
        if (!ok)
            fail_msg("sample %s outside its family (current family %s)", line, current);
    }
    free(copy);
    regfree(&help);
    regfree(&type);
    regfree(&sample);
}

static void test_render_minimal(void **state)
{
    metrics_snapshot s = { 0 };
    char *text = render(&s);
    assert_valid_exposition(text);
    assert_line(text, "# TYPE parkd_build_info gauge");
    assert_line(text, "parkd_up{service=\"mqtt\"} 0");
    assert_line(text, "parkd_up{service=\"redis\"} 0");
    assert_line(text, "parkd_reconnects_total{service=\"mqtt\"} 0");
    assert_line(text, "parkd_lots 0");
    assert_line(text, "# TYPE parkd_input_to_redis_seconds histogram");
    assert_line(text, "parkd_input_to_redis_seconds_bucket{le=\"+Inf\"} 0");
    assert_line(text, "parkd_input_to_redis_seconds_sum 0");
    assert_line(text, "parkd_input_to_redis_seconds_count 0");
    assert_null(strstr(text, "parkd_start_time_seconds"));   /* started_ms 0: not shown */
    assert_null(strstr(text, "parkd_lot_"));
    free(text);
}

static void test_render_counters(void **state)
{
    static const char *const names[] = {
        "messages_in", "applied", "unchanged", "ignored_old", "ignored_duplicate",
        "rejected_bad_topic", "rejected_malformed", "anomaly_clamped",
        "anomaly_capacity", "input_bay", "input_count", "recalibrations", "published",
        "redis_batches", "odd-name.x",
    };
    static const uint64_t values[] = {
        20, 9, 2, 1, 3, 2, 3, 4, 1, 5, 10, 6, 18446744073709551615u, 12, 7,
    };
    metrics_snapshot s = { .counter_names = names, .counters = values,
                           .n_counters = sizeof values / sizeof values[0],
                           .mqtt_up = true, .redis_up = false,
                           .mqtt_reconnects = 3, .redis_reconnects = 11,
                           .started_ms = 1475567982500 };
    char *text = render(&s);
    assert_valid_exposition(text);
    assert_line(text, "parkd_up{service=\"mqtt\"} 1");
    assert_line(text, "parkd_up{service=\"redis\"} 0");
    assert_line(text, "parkd_reconnects_total{service=\"mqtt\"} 3");
    assert_line(text, "parkd_reconnects_total{service=\"redis\"} 11");
    assert_line(text, "parkd_start_time_seconds 1475567982.5");

    assert_line(text, "# TYPE parkd_messages_received_total counter");
    assert_line(text, "parkd_messages_received_total 20");
    assert_line(text, "# TYPE parkd_messages_total counter");
    assert_line(text, "parkd_messages_total{result=\"applied\"} 9");
    assert_line(text, "parkd_messages_total{result=\"unchanged\"} 2");
    assert_line(text, "parkd_messages_total{result=\"ignored_old\"} 1");
    assert_line(text, "parkd_messages_total{result=\"ignored_duplicate\"} 3");
    assert_line(text, "parkd_messages_total{result=\"rejected\"} 5");   /* 2 + 3 */
    assert_line(text, "parkd_rejected_total{reason=\"bad_topic\"} 2");
    assert_line(text, "parkd_rejected_total{reason=\"malformed\"} 3");
    assert_line(text, "parkd_anomalies_total{kind=\"clamped\"} 4");
    assert_line(text, "parkd_anomalies_total{kind=\"capacity\"} 1");
    assert_line(text, "parkd_input_messages_total{kind=\"bay\"} 5");
    assert_line(text, "parkd_input_messages_total{kind=\"count\"} 10");
    assert_line(text, "# TYPE parkd_published_total counter");
    assert_line(text, "parkd_published_total 18446744073709551615");
    assert_line(text, "parkd_recalibrations_total 6");
    assert_line(text, "parkd_redis_batches_total 12");
    assert_line(text, "parkd_odd_name_x_total 7");      /* sanitised into a metric name */
    free(text);
}

static void test_render_lots(void **state)
{
    lot *a = make_lot(id_a, name_a, 577), *b = make_lot(id_b, name_b, 40);
    a->has_data = true;
    a->occupied = 61;
    a->ts_ms = 1475567982000;
    a->status = LOT_STATUS_OPEN;
    a->smooth.started = true;
    a->smooth.smoothed = 514.25;
    b->stale = true;                 /* no data: only capacity, stale, status and info */
    lot *lots[] = { a, b };
    metrics_snapshot s = { .lots = lots, .n_lots = 2 };
    char *text = render(&s);
    assert_valid_exposition(text);
    assert_line(text, "parkd_lots 2");
    assert_line(text, "parkd_lot_info{lot=\"BHMBCCMKT01\","
                      "name=\"Broad \\\"Street\\\" \\\\ car\\npark\",source=\"count\"} 1");
    assert_line(text, "parkd_lot_info{lot=\"B-2.x\",name=\"Moor Street\",source=\"count\"} 1");
    assert_line(text, "parkd_lot_capacity{lot=\"BHMBCCMKT01\"} 577");
    assert_line(text, "parkd_lot_capacity{lot=\"B-2.x\"} 40");
    assert_line(text, "parkd_lot_occupied{lot=\"BHMBCCMKT01\"} 61");
    assert_line(text, "parkd_lot_free{lot=\"BHMBCCMKT01\"} 516");
    assert_line(text, "parkd_lot_free_smoothed{lot=\"BHMBCCMKT01\"} 514.25");
    assert_line(text, "parkd_lot_last_event_timestamp_seconds{lot=\"BHMBCCMKT01\"} 1475567982");
    assert_line(text, "parkd_lot_stale{lot=\"BHMBCCMKT01\"} 0");
    assert_line(text, "parkd_lot_stale{lot=\"B-2.x\"} 1");
    assert_line(text, "parkd_lot_status{lot=\"BHMBCCMKT01\",status=\"open\"} 1");
    assert_line(text, "parkd_lot_status{lot=\"BHMBCCMKT01\",status=\"unknown\"} 0");
    assert_line(text, "parkd_lot_status{lot=\"BHMBCCMKT01\",status=\"full\"} 0");
    assert_line(text, "parkd_lot_status{lot=\"B-2.x\",status=\"unknown\"} 1");
    assert_line(text, "parkd_lot_status{lot=\"BHMBCCMKT01\",status=\"closed\"} 0");
    assert_int_equal(count_lines_starting(text, "parkd_lot_status{"), 10);  /* 5 statuses a lot */
    /* occupancy 61/577, written so that it reads back exactly */
    const char *occ = strstr(text, "\nparkd_lot_occupancy{lot=\"BHMBCCMKT01\"} ");
    assert_non_null(occ);
    assert_true(strtod(strchr(occ, '}') + 2, NULL) == 61.0 / 577.0);
    /* a lot without data has no value that would pretend it has */
    assert_null(strstr(text, "parkd_lot_free{lot=\"B-2.x\"}"));
    assert_null(strstr(text, "parkd_lot_occupied{lot=\"B-2.x\"}"));
    assert_null(strstr(text, "parkd_lot_occupancy{lot=\"B-2.x\"}"));
    free(text);
    lot_free(a);
    lot_free(b);
}

static void test_render_histogram(void **state)
{
    const double *bounds = metrics_latency_bounds();
    for (int i = 1; i < METRICS_LATENCY_BUCKETS; i++)
        assert_true(bounds[i - 1] < bounds[i]);
    uint64_t counts[METRICS_LATENCY_BUCKETS];
    for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++)
        counts[i] = 10 + (uint64_t)i;  /* cumulative: never decreasing */
    metrics_snapshot s = { .latency_bounds = bounds, .latency_counts = counts,
                           .latency_count = 30, .latency_sum_seconds = 0.125 };
    char *text = render(&s);
    assert_valid_exposition(text);
    assert_line(text, "parkd_input_to_redis_seconds_bucket{le=\"0.0005\"} 10");
    assert_line(text, "parkd_input_to_redis_seconds_bucket{le=\"0.001\"} 11");
    assert_line(text, "parkd_input_to_redis_seconds_bucket{le=\"0.0025\"} 12");
    assert_line(text, "parkd_input_to_redis_seconds_bucket{le=\"1\"} 20");
    assert_line(text, "parkd_input_to_redis_seconds_bucket{le=\"5\"} 21");
    assert_line(text, "parkd_input_to_redis_seconds_bucket{le=\"+Inf\"} 30");
    assert_line(text, "parkd_input_to_redis_seconds_sum 0.125");
    assert_line(text, "parkd_input_to_redis_seconds_count 30");
    assert_int_equal(count_lines_starting(text, "parkd_input_to_redis_seconds_bucket{"),
                     METRICS_LATENCY_BUCKETS + 1);
    /* the buckets come in ascending order, +Inf last */
    const char *first = strstr(text, "le=\"0.0005\""), *inf = strstr(text, "le=\"+Inf\"");
    const char *five = strstr(text, "le=\"5\"");
    assert_true(first && five && inf && first < five && five < inf);
    free(text);
}

/* ---- the HTTP endpoint ---- */

/* One HTTP/1.1 request to 127.0.0.1:PORT; returns the status code, *body the malloc'd body. */
static int http(int port, const char *method, const char *path, char **body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[256];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     "Content-Length: 0\r\n\r\n", method, path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t len = 0, cap = 65536;
    char *resp = malloc(cap);
    ssize_t r;
    while ((r = read(fd, resp + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (cap - len < 1024)
            resp = realloc(resp, cap *= 2);
    }
    close(fd);
    resp[len] = '\0';
    int status = 0;
    assert_int_equal(sscanf(resp, "HTTP/1.%*d %d", &status), 1);
    char *sep = strstr(resp, "\r\n\r\n");
    assert_non_null(sep);
    *sep = '\0';
    if (body)
        *body = strdup(sep + 4);
    if (status == 200 && strcmp(method, "GET") == 0)
        assert_non_null(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4"));
    if (status == 405)
        assert_non_null(strstr(resp, "\r\nAllow: GET, HEAD"));
    free(resp);
    return status;
}

/* A server on a free loopback port. */
static int metrics_start(const char *listen, http_server **out, char **err)
{
    http_options o = { .listen = listen, .name = "metrics", .max_connections = 16 };
    return http_start(&o, out, err);
}

/* What the loop does each second: render, hand the text over. */
static void metrics_update(http_server *m, const metrics_snapshot *s)
{
    size_t len;
    char *text = metrics_render(s, &len);
    http_set_metrics(m, text, len);
    free(text);
}

static http_server *start_server(void)
{
    http_server *m = NULL;
    char *err = NULL;
    int rc = metrics_start("127.0.0.1:0", &m, &err);
    if (rc != 0)
        fail_msg("metrics_start: %s", err ? err : "?");
    assert_null(err);
    assert_true(http_port(m) > 0);
    return m;
}

static void test_http_endpoint(void **state)
{
    http_server *m = start_server();
    int port = http_port(m);
    char *body = NULL;
    assert_int_equal(http(port, "GET", "/metrics", NULL), 503);   /* no snapshot yet */

    static const char *const names[] = { "messages_in" };
    uint64_t values[] = { 1 };
    metrics_snapshot s = { .counter_names = names, .counters = values, .n_counters = 1 };
    metrics_update(m, &s);
    assert_int_equal(http(port, "GET", "/metrics", &body), 200);
    size_t len;
    char *expect = metrics_render(&s, &len);
    assert_string_equal(body, expect);
    free(body);
    free(expect);

    values[0] = 42;         /* the next update replaces the text */
    metrics_update(m, &s);
    assert_int_equal(http(port, "GET", "/metrics", &body), 200);
    assert_true(has_line(body, "parkd_messages_received_total 42"));
    free(body);

    assert_int_equal(http(port, "HEAD", "/metrics", NULL), 200);
    assert_int_equal(http(port, "GET", "/", NULL), 404);
    assert_int_equal(http(port, "GET", "/metrics/x", NULL), 404);
    assert_int_equal(http(port, "POST", "/metrics", NULL), 405);
    assert_int_equal(http(port, "DELETE", "/metrics", NULL), 405);
    http_stop(m);
}

static void test_listen_errors(void **state)
{
    http_server *m = start_server();
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", http_port(m));
    static const char *const bad[] = {
        "no-port", "127.0.0.1:", ":9108", "[::1]9108", "[::1", "127.0.0.1:65536",
        "127.0.0.1:-1", "127.0.0.1:9x", "host.invalid:9108", NULL,
    };
    for (const char *const *b = bad; *b; b++) {
        http_server *x = NULL;
        char *err = NULL;
        int rc = metrics_start(*b, &x, &err);
        if (rc == 0)
            fail_msg("metrics_start(%s) succeeded", *b);
        assert_true(rc < 0);
        assert_null(x);
        assert_non_null(err);
        assert_non_null(strstr(err, *b));   /* the message names the address */
        free(err);
    }
    /* the port is taken: the message says why */
    http_server *x = NULL;
    char *err = NULL;
    assert_true(metrics_start(addr, &x, &err) < 0);
    assert_null(x);
    assert_non_null(err);
    assert_non_null(strstr(err, addr));
    free(err);
    http_stop(m);
    http_stop(NULL);
}

/* Bound to the address given only: a server on [::1] is not reachable on 127.0.0.1. */
static void test_listen_ipv6(void **state)
{
    http_server *m = NULL;
    char *err = NULL;
    int rc = metrics_start("[::1]:0", &m, &err);
    if (rc != 0) {
        free(err);
        skip();     /* no IPv6 loopback here */
    }
    int port = http_port(m);
    assert_true(port > 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_not_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
                                .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    assert_int_equal(connect(fd, (struct sockaddr *)&sa6, sizeof sa6), 0);
    close(fd);
    http_stop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_minimal),
        cmocka_unit_test(test_render_counters),
        cmocka_unit_test(test_render_lots),
        cmocka_unit_test(test_render_histogram),
        cmocka_unit_test(test_http_endpoint),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_listen_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
