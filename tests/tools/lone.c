/* lone: how long a lone input message takes to reach Redis and the retained output, at the rate
 * a city sends them (a few a second), message by message.
 *
 *   lone -p MQTT_PORT -r REDIS_PORT [options] <SCRIPT
 *
 * SCRIPT has one message a line: "CONN LOT EXPECT TOPIC PAYLOAD..." where CONN is m (the main
 * broker) or n (the network server's broker, -P), LOT the lot the message moves and EXPECT what
 * the lot shows afterwards, FIELD=VALUE (occupied=5, status=closed), or "-" for a message that
 * changes nothing (a duplicate, a rejected one). Messages go out one at a time, QoS 1, spaced by a uniform random gap in [-i, -j] ms.
 * After a message that changes something, lone waits (at most -t ms) until both
 *   - Redis holds it: the availability JSON of that lot with FIELD = VALUE arrives on the
 *     <prefix>updates channel (parkd PUBLISHes it inside the MULTI/EXEC that writes the lot), and
 *     the lot hash's FIELD then reads VALUE;
 *   - the retained output has it: <out>/<lot>/availability arrives with FIELD = VALUE.
 * A message that changes nothing is not waited for: the one after it shows whether it held
 * parkd's input (a held input delays the next message).
 *
 * Prints one line per message, "msg N TOPIC redis_ms=R mqtt_ms=M" (or "... timeout"), and at the
 * end "messages=N timeouts=N max_redis_ms=R max_mqtt_ms=M". Exit 0 when no message timed out,
 * 1 otherwise, 2 on a usage or connection error.
 *
 * Options: -h HOST [127.0.0.1] -P NS_PORT -u NS_USER -w NS_PASSWORD -R REDIS_PREFIX [parkd:]
 * -o OUTPUT_PREFIX [parking/out] -i MIN_GAP_MS [200] -j MAX_GAP_MS [500] -t TIMEOUT_MS [3000]
 * -s SEED [1]. */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LONE_LINE_MAX 8192

typedef struct lone_opts {
    const char *host, *ns_user, *ns_password, *redis_prefix, *out_prefix;
    int mqtt_port, ns_port, redis_port;
    long gap_min_ms, gap_max_ms, timeout_ms;
    unsigned seed;
} lone_opts;

/* What the observers look for, and when they saw it. Guarded by lock. */
typedef struct lone_wait {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    char lot[128], field[64], value[128];
    bool active;
    uint64_t sent_ns;
    uint64_t redis_ns, mqtt_ns;     /* 0: not yet */
} lone_wait;

static lone_opts opts = { "127.0.0.1", NULL, NULL, "parkd:", "parking/out", 0, 0, 0,
                          200, 500, 3000, 1 };
static lone_wait w = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };
static volatile int mqtt_subscribed;
static atomic_uint publishes_acked;     /* PUBACKs of our QoS 1 publishes, both brokers */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A JSON scalar as the text a Redis hash field would hold. */
static void lone_scalar(const json_t *v, char *out, size_t size)
{
    if (json_is_string(v))
        snprintf(out, size, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, size, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v))
        snprintf(out, size, "%s", json_is_true(v) ? "true" : "false");
    else
        out[0] = '\0';
}

/* An observer saw availability JSON: the moment counts (once, in SLOT) when it shows what the
 * current message waits for. */
static void lone_seen(uint64_t *slot, const char *json, size_t len)
{
    uint64_t t = now_ns();
    json_t *v = json_loadb(json, len, 0, NULL);
    if (!v)
        return;
    pthread_mutex_lock(&w.lock);
    const json_t *lot = json_object_get(v, "lot");
    char value[128];
    lone_scalar(json_object_get(v, w.field), value, sizeof value);
    if (w.active && *slot == 0 && json_is_string(lot) &&
        strcmp(json_string_value(lot), w.lot) == 0 && strcmp(value, w.value) == 0) {
        *slot = t;
        pthread_cond_broadcast(&w.changed);
    }
    pthread_mutex_unlock(&w.lock);
    json_decref(v);
}

static void lone_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    if (msg->payloadlen > 0)
        lone_seen(&w.mqtt_ns, msg->payload, (size_t)msg->payloadlen);
}

static void lone_on_publish(struct mosquitto *m, void *obj, int mid)
{
    atomic_fetch_add(&publishes_acked, 1);
}

static void lone_on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
    mqtt_subscribed = 1;
}

static void lone_on_connect(struct mosquitto *m, void *obj, int rc)
{
    char topic[512];
    snprintf(topic, sizeof topic, "%s/+/availability", opts.out_prefix);
    if (rc == 0 && obj)     /* obj marks the main connection, the one that observes */
        mosquitto_subscribe(m, NULL, topic, 1);
}

/* The Redis observer: SUBSCRIBE <prefix>updates on its own connection. */
static void *lone_redis_thread(void *arg)
{
    redisContext *c = arg;
    for (;;) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r)
            return NULL;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[2]->type == REDIS_REPLY_STRING)
            lone_seen(&w.redis_ns, r->element[2]->str, r->element[2]->len);
        freeReplyObject(r);
    }
}

static struct mosquitto *lone_connect(int port, const char *user, const char *password,
                                      bool observe)
{
    char id[64];
    snprintf(id, sizeof id, "lone-%d-%d", (int)getpid(), port);
    struct mosquitto *m = mosquitto_new(id, true, observe ? &opts : NULL);
    if (!m)
        return NULL;
    if (user && mosquitto_username_pw_set(m, user, password) != MOSQ_ERR_SUCCESS)
        return NULL;
    mosquitto_connect_callback_set(m, lone_on_connect);
    mosquitto_message_callback_set(m, lone_on_message);
    mosquitto_subscribe_callback_set(m, lone_on_subscribe);
    mosquitto_publish_callback_set(m, lone_on_publish);
    if (mosquitto_connect(m, opts.host, port, 30) != MOSQ_ERR_SUCCESS ||
        mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "lone: cannot connect to the broker on port %d\n", port);
        return NULL;
    }
    return m;
}

static double lone_ms(uint64_t from, uint64_t to)
{
    return (double)(to - from) / 1e6;
}

/* The lot hash's field, read once the update arrived: the state itself is in Redis. */
static bool lone_hash_holds(redisContext *c, const char *lot, const char *field,
                            const char *value)
{
    redisReply *r = redisCommand(c, "HGET %slot:%s %s", opts.redis_prefix, lot, field);
    bool ok = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, value) == 0;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Sends one message and, when it changes something, waits for both observers. Returns whether
 * it arrived in time; R_MS and M_MS get the latencies (-1: not measured). */
static bool lone_one(struct mosquitto *m, redisContext *rc, const char *lot, const char *expect,
                     const char *topic, const char *payload, double *r_ms, double *m_ms)
{
    *r_ms = *m_ms = -1;
    const char *eq = strchr(expect, '=');
    size_t field_len = eq ? (size_t)(eq - expect) : 0;
    pthread_mutex_lock(&w.lock);
    snprintf(w.lot, sizeof w.lot, "%s", lot);
    snprintf(w.field, sizeof w.field, "%.*s", (int)field_len, expect);
    snprintf(w.value, sizeof w.value, "%s", eq ? eq + 1 : "");
    w.redis_ns = w.mqtt_ns = 0;
    w.active = eq != NULL;
    w.sent_ns = now_ns();
    pthread_mutex_unlock(&w.lock);
    if (mosquitto_publish(m, NULL, topic, (int)strlen(payload), payload, 1, false) !=
        MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "lone: cannot publish on %s\n", topic);
        return false;
    }
    if (!eq)
        return true;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += opts.timeout_ms / 1000;
    deadline.tv_nsec += (opts.timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w.lock);
    int err = 0;
    while ((!w.redis_ns || !w.mqtt_ns) && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&w.changed, &w.lock, &deadline);
    bool ok = w.redis_ns && w.mqtt_ns;
    if (w.redis_ns)
        *r_ms = lone_ms(w.sent_ns, w.redis_ns);
    if (w.mqtt_ns)
        *m_ms = lone_ms(w.sent_ns, w.mqtt_ns);
    w.active = false;
    pthread_mutex_unlock(&w.lock);
    if (ok && !lone_hash_holds(rc, lot, w.field, w.value)) {
        fprintf(stderr, "lone: the update for %s arrived but the lot hash does not read %s\n",
                lot, expect);
        return false;
    }
    return ok;
}

static void lone_usage(void)
{
    fprintf(stderr, "usage: lone -p MQTT_PORT -r REDIS_PORT [-h HOST] [-P NS_PORT -u USER -w "
                    "PASSWORD] [-R PREFIX] [-o OUT_PREFIX] [-i MIN_MS] [-j MAX_MS] [-t TIMEOUT_MS] "
                    "[-s SEED] <SCRIPT\n");
    exit(2);
}

static void lone_options(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "h:p:P:u:w:r:R:o:i:j:t:s:")) != -1) {
        switch (c) {
        case 'h': opts.host = optarg; break;
        case 'p': opts.mqtt_port = atoi(optarg); break;
        case 'P': opts.ns_port = atoi(optarg); break;
        case 'u': opts.ns_user = optarg; break;
        case 'w': opts.ns_password = optarg; break;
        case 'r': opts.redis_port = atoi(optarg); break;
        case 'R': opts.redis_prefix = optarg; break;
        case 'o': opts.out_prefix = optarg; break;
        case 'i': opts.gap_min_ms = atol(optarg); break;
        case 'j': opts.gap_max_ms = atol(optarg); break;
        case 't': opts.timeout_ms = atol(optarg); break;
        case 's': opts.seed = (unsigned)atol(optarg); break;
        default: lone_usage();
        }
    }
    if (!opts.mqtt_port || !opts.redis_port || opts.gap_max_ms < opts.gap_min_ms)
        lone_usage();
}

/* The Redis observer's connection, subscribed before any message goes out. */
static redisContext *lone_redis_subscribe(void)
{
    redisContext *c = redisConnect(opts.host, opts.redis_port);
    if (!c || c->err)
        return NULL;
    redisReply *r = redisCommand(c, "SUBSCRIBE %supdates", opts.redis_prefix);
    if (!r)
        return NULL;
    freeReplyObject(r);
    return c;
}

/* Splits "CONN LOT EXPECT TOPIC PAYLOAD..." in place; false on a malformed line. */
static bool lone_split(char *line, char **conn, char **lot, char **expect, char **topic,
                       char **payload)
{
    line[strcspn(line, "\n")] = '\0';
    char *save = NULL;
    *conn = strtok_r(line, " ", &save);
    *lot = strtok_r(NULL, " ", &save);
    *expect = strtok_r(NULL, " ", &save);
    *topic = strtok_r(NULL, " ", &save);
    *payload = save ? save : (char *)"";
    return *conn && *lot && *expect && *topic;
}

int main(int argc, char **argv)
{
    lone_options(argc, argv);
    srand(opts.seed);
    mosquitto_lib_init();
    redisContext *sub = lone_redis_subscribe(), *rc = redisConnect(opts.host, opts.redis_port);
    if (!sub || !rc || rc->err) {
        fprintf(stderr, "lone: cannot connect to Redis on port %d\n", opts.redis_port);
        return 2;
    }
    pthread_t redis_thread;
    pthread_create(&redis_thread, NULL, lone_redis_thread, sub);
    struct mosquitto *main_m = lone_connect(opts.mqtt_port, NULL, NULL, true);
    struct mosquitto *ns_m = opts.ns_port ? lone_connect(opts.ns_port, opts.ns_user,
                                                         opts.ns_password, false)
                                          : NULL;
    if (!main_m || (opts.ns_port && !ns_m))
        return 2;
    for (int i = 0; i < 500 && !mqtt_subscribed; i++)
        usleep(10000);
    usleep(300000);     /* the retained outputs of the subscription arrive before anything */
    char line[LONE_LINE_MAX];
    unsigned n = 0, timeouts = 0;
    double max_r = 0, max_m = 0;
    while (fgets(line, sizeof line, stdin)) {
        char *conn, *lot, *expect, *topic, *payload;
        if (line[0] == '#' || line[0] == '\n' ||
            !lone_split(line, &conn, &lot, &expect, &topic, &payload))
            continue;
        long gap = opts.gap_min_ms + (opts.gap_max_ms > opts.gap_min_ms
                                          ? rand() % (opts.gap_max_ms - opts.gap_min_ms + 1) : 0);
        usleep((useconds_t)gap * 1000);
        struct mosquitto *m = conn[0] == 'n' ? ns_m : main_m;
        if (!m) {
            fprintf(stderr, "lone: line %u needs the network server's broker (-P)\n", n + 1);
            return 2;
        }
        double r_ms, m_ms;
        bool ok = lone_one(m, rc, lot, expect, topic, payload, &r_ms, &m_ms);
        n++;
        if (!strchr(expect, '=')) {
            printf("msg %u %s changes nothing\n", n, topic);
            continue;
        }
        printf("msg %u %s redis_ms=%.3f mqtt_ms=%.3f%s\n", n, topic, r_ms, m_ms,
               ok ? "" : " timeout");
        timeouts += !ok;
        if (r_ms > max_r)
            max_r = r_ms;
        if (m_ms > max_m)
            max_m = m_ms;
        fflush(stdout);
    }
    /* the last messages may change nothing and were not waited for: they must still leave */
    for (long i = 0; i < opts.timeout_ms / 10 && atomic_load(&publishes_acked) < n; i++)
        usleep(10000);
    if (atomic_load(&publishes_acked) < n) {
        fprintf(stderr, "lone: the broker acknowledged %u of %u messages\n",
                atomic_load(&publishes_acked), n);
        timeouts++;
    }
    printf("messages=%u timeouts=%u max_redis_ms=%.3f max_mqtt_ms=%.3f\n", n, timeouts, max_r,
           max_m);
    /* everything freed, so that a sanitizer build finds nothing to report */
    shutdown(sub->fd, SHUT_RDWR);       /* ends the observer's blocking read */
    pthread_join(redis_thread, NULL);
    redisFree(sub);
    redisFree(rc);
    for (int i = 0; i < 2; i++) {
        struct mosquitto *m = i ? ns_m : main_m;
        if (!m)
            continue;
        mosquitto_disconnect(m);
        mosquitto_loop_stop(m, false);
        mosquitto_destroy(m);
    }
    mosquitto_lib_cleanup();
    return timeouts ? 1 : 0;
}
