/* latency: publish -> Redis state and publish -> retained output, for a load of the bench
 * pattern (pattern.h) sent by loadgen -T TIMES_FILE.
 *
 * Two observers run side by side: an MQTT subscriber to <out>/+/availability, and a Redis
 * subscriber to <prefix>updates. parkd PUBLISHes the availability JSON inside the same
 * MULTI/EXEC as the lot's state, so its arrival is the moment the state is in Redis. Each
 * message names a lot and its occupied; in the pattern, that pair names the event that caused it
 * (the triangle wave repeats only every 2 x B events of a lot), and loadgen's file gives that
 * event's send time. Both stop at the sentinel lot's output.
 *
 * Prints "subscribed" once both subscriptions are in place, and at the end key=value lines per
 * observer (redis_*, mqtt_*): n, unmatched, p50_ms, p99_ms, max_ms. Exit 0, or 1 when an
 * observer saw nothing. With -D FILE, every sample also goes to FILE as "redis|mqtt SENT_NS
 * LATENCY_NS" lines, to see when the slow ones happen. */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pattern.h"

typedef struct lat_obs {
    uint32_t lot;
    uint32_t occupied;
    uint64_t at_ns;
} lat_obs;

typedef struct lat_log {
    pthread_mutex_t lock;
    lat_obs *v;
    size_t n, cap;
    atomic_bool done;       /* the sentinel lot's output arrived */
} lat_log;

typedef struct lat_opts {
    const char *mqtt_host, *redis_host;
    int mqtt_port, redis_port;
    const char *out_prefix, *redis_prefix;
    const char *times_path;
    const char *dump_path;
    uint64_t n;
    uint32_t lots, bays;
    int timeout_s;
} lat_opts;

static lat_opts opts = { "127.0.0.1", "127.0.0.1", 1883, 6379, "parking/out", "parkd:", NULL,
                         NULL, 100000, 100, 100, 120 };
static FILE *dump;
static lat_log mqtt_log = { .lock = PTHREAD_MUTEX_INITIALIZER };
static lat_log redis_log = { .lock = PTHREAD_MUTEX_INITIALIZER };
static atomic_int subscriptions;

/* Records one availability JSON received at AT_NS; the sentinel lot ends the log. */
static void lat_record(lat_log *log, const char *json, size_t len, uint64_t at_ns)
{
    char buf[2048];
    if (len >= sizeof buf)
        return;
    memcpy(buf, json, len);
    buf[len] = '\0';
    const char *lot = strstr(buf, "\"lot\":\"");
    const char *occ = strstr(buf, "\"occupied\":");
    if (!lot)
        return;
    lot += 7;
    const char *q = strchr(lot, '"');
    if (!q)
        return;
    if (!occ)
        return;
    occ += 11;
    if (*occ < '0' || *occ > '9')
        return;     /* null: no data yet (the outputs made at startup) */
    if ((size_t)(q - lot) == strlen(BP_END_LOT) && memcmp(lot, BP_END_LOT, (size_t)(q - lot)) == 0) {
        atomic_store(&log->done, true);     /* the sentinel's bay is occupied */
        return;
    }
    long l = bp_parse_lot(lot, (size_t)(q - lot));
    if (l < 0)
        return;
    lat_obs o = { (uint32_t)l, (uint32_t)strtoul(occ, NULL, 10), at_ns };
    pthread_mutex_lock(&log->lock);
    if (log->n == log->cap) {
        size_t cap = log->cap ? log->cap * 2 : 65536;
        lat_obs *v = realloc(log->v, cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&log->lock);
            return;
        }
        log->v = v;
        log->cap = cap;
    }
    log->v[log->n++] = o;
    pthread_mutex_unlock(&log->lock);
}

/* ---- Redis observer (its own thread, blocking hiredis) ---- */

static void *lat_redis_main(void *arg)
{
    redisContext *c = redisConnect(opts.redis_host, opts.redis_port);
    if (!c || c->err) {
        fprintf(stderr, "latency: redis connect: %s\n", c ? c->errstr : "out of memory");
        exit(1);
    }
    redisReply *r = redisCommand(c, "SUBSCRIBE %supdates", opts.redis_prefix);
    if (!r) {
        fprintf(stderr, "latency: redis subscribe: %s\n", c->errstr);
        exit(1);
    }
    freeReplyObject(r);
    atomic_fetch_add(&subscriptions, 1);
    while (!atomic_load(&redis_log.done)) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK || !reply) {
            fprintf(stderr, "latency: redis: %s\n", c->errstr);
            break;
        }
        uint64_t now = bp_now_ns();
        redisReply *m = reply;
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
            m->element[2]->type == REDIS_REPLY_STRING)
            lat_record(&redis_log, m->element[2]->str, m->element[2]->len, now);
        freeReplyObject(reply);
    }
    redisFree(c);
    return NULL;
}

/* ---- MQTT observer (main thread) ---- */

static void lat_on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    if (rc != 0) {
        fprintf(stderr, "latency: connect refused: %s\n", mosquitto_connack_string(rc));
        exit(1);
    }
    char filter[512];
    snprintf(filter, sizeof filter, "%s/+/availability", opts.out_prefix);
    mosquitto_subscribe(mosq, NULL, filter, 1);
}

static void lat_on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted)
{
    atomic_fetch_add(&subscriptions, 1);
}

static void lat_on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m)
{
    if (m->retain)
        return;     /* an earlier state, replayed by the broker on subscribing */
    lat_record(&mqtt_log, m->payload, (size_t)m->payloadlen, bp_now_ns());
}

/* ---- matching ---- */

static uint64_t *lat_load_times(void)
{
    uint64_t deadline = bp_now_ns() + 30000000000u;
    struct stat st;
    while (stat(opts.times_path, &st) != 0) {
        if (bp_now_ns() > deadline) {
            fprintf(stderr, "latency: no %s\n", opts.times_path);
            exit(1);
        }
        usleep(10000);
    }
    uint64_t *t = malloc(opts.n * sizeof *t);
    FILE *f = fopen(opts.times_path, "rb");
    if (!t || !f || fread(t, sizeof *t, opts.n, f) != opts.n) {
        fprintf(stderr, "latency: %s: short or unreadable\n", opts.times_path);
        exit(1);
    }
    fclose(f);
    return t;
}

/* The send time of the newest event sent before O that leaves its lot at O's occupied; 0 if
 * none. */
static uint64_t lat_match(const lat_obs *o, const uint64_t *times)
{
    uint64_t best = 0;
    uint32_t b = opts.bays, v = o->occupied;
    if (o->lot >= opts.lots || v > b)
        return 0;
    for (uint64_t r = 0;; r++) {
        bool up = r % 2 == 0;
        if ((up && v == 0) || (!up && v == b))
            continue;
        uint64_t k = r * b + (up ? v - 1 : b - 1 - v);
        uint64_t i = k * opts.lots + o->lot;
        if (i >= opts.n || times[i] > o->at_ns)
            break;
        best = times[i];
    }
    return best;
}

static int lat_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool lat_report(const char *name, lat_log *log, const uint64_t *times)
{
    pthread_mutex_lock(&log->lock);
    uint64_t *lat = malloc((log->n ? log->n : 1) * sizeof *lat);
    size_t n = 0, unmatched = 0;
    for (size_t i = 0; lat && i < log->n; i++) {
        uint64_t sent = lat_match(&log->v[i], times);
        if (sent && dump)
            fprintf(dump, "%s %" PRIu64 " %" PRIu64 "\n", name, sent, log->v[i].at_ns - sent);
        if (sent)
            lat[n++] = log->v[i].at_ns - sent;
        else
            unmatched++;
    }
    pthread_mutex_unlock(&log->lock);
    qsort(lat, n, sizeof *lat, lat_cmp);
    double p50 = n ? (double)lat[(n - 1) / 2] / 1e6 : 0;
    double p99 = n ? (double)lat[(size_t)((double)n * 0.99 + 0.999999) - 1] / 1e6 : 0;
    double max = n ? (double)lat[n - 1] / 1e6 : 0;
    printf("%s_n=%zu\n%s_unmatched=%zu\n%s_p50_ms=%.3f\n%s_p99_ms=%.3f\n%s_max_ms=%.3f\n", name, n,
           name, unmatched, name, p50, name, p99, name, max);
    free(lat);
    return n > 0;
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "h:p:r:R:o:P:T:D:n:L:B:t:")) != -1) {
        switch (c) {
        case 'h': opts.mqtt_host = optarg; break;
        case 'p': opts.mqtt_port = atoi(optarg); break;
        case 'r': opts.redis_host = optarg; break;
        case 'R': opts.redis_port = atoi(optarg); break;
        case 'o': opts.out_prefix = optarg; break;
        case 'P': opts.redis_prefix = optarg; break;
        case 'T': opts.times_path = optarg; break;
        case 'D': opts.dump_path = optarg; break;
        case 'n': opts.n = strtoull(optarg, NULL, 10); break;
        case 'L': opts.lots = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'B': opts.bays = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 't': opts.timeout_s = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: latency -T TIMES_FILE [-D DUMP_FILE] [-h MQTT_HOST] [-p MQTT_PORT]"
                            " [-r REDIS_HOST] [-R REDIS_PORT] [-o OUT_PREFIX] [-P REDIS_PREFIX]"
                            " [-n EVENTS] [-L LOTS] [-B BAYS] [-t TIMEOUT_S]\n");
            return 2;
        }
    }
    if (!opts.times_path || opts.lots == 0 || opts.bays == 0 || opts.n == 0)
        return 2;
    pthread_t redis_thread;
    if (pthread_create(&redis_thread, NULL, lat_redis_main, NULL) != 0)
        return 1;

    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof id, "bench-latency-%d", (int)getpid());
    struct mosquitto *mosq = mosquitto_new(id, true, NULL);
    if (!mosq)
        return 1;
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);     /* no Nagle delay in what we time */
    mosquitto_connect_callback_set(mosq, lat_on_connect);
    mosquitto_subscribe_callback_set(mosq, lat_on_subscribe);
    mosquitto_message_callback_set(mosq, lat_on_message);
    int rc = mosquitto_connect(mosq, opts.mqtt_host, opts.mqtt_port, 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "latency: connect: %s\n",
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return 1;
    }
    bool announced = false;
    uint64_t deadline = bp_now_ns() + (uint64_t)opts.timeout_s * 1000000000u;
    while (!(atomic_load(&mqtt_log.done) && atomic_load(&redis_log.done))) {
        rc = mosquitto_loop(mosq, 50, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "latency: %s\n", mosquitto_strerror(rc));
            break;
        }
        if (!announced && atomic_load(&subscriptions) == 2) {
            announced = true;
            printf("subscribed\n");
            fflush(stdout);
        }
        if (bp_now_ns() > deadline) {
            fprintf(stderr, "latency: no sentinel output within %d s (mqtt %d, redis %d)\n",
                    opts.timeout_s, (int)atomic_load(&mqtt_log.done),
                    (int)atomic_load(&redis_log.done));
            break;
        }
    }
    mosquitto_disconnect(mosq);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();

    uint64_t *times = lat_load_times();
    if (opts.dump_path && !(dump = fopen(opts.dump_path, "w")))
        fprintf(stderr, "latency: %s: %s\n", opts.dump_path, strerror(errno));
    bool ok = lat_report("redis", &redis_log, times);
    ok = lat_report("mqtt", &mqtt_log, times) && ok;
    if (dump)
        fclose(dump);
    fflush(stdout);
    _exit(ok ? 0 : 1);     /* the Redis thread may still be blocked in a read */
}
