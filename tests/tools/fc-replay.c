/* fc-replay: feeds recorded counts to a running parkd one message at a time, in lock step, and
 * records every forecast parkd publishes. Used by scripts/forecast-eval.
 *
 * Lock step matters: parkd learns once per loop turn, so a burst of messages for one lot that
 * lands in a single turn would be learned (and published) as one. After each message this tool
 * waits until parkd has stored its effect (the `ts` of the lot's SPEC §5 hash <prefix>lot:<id>
 * is the message's event time) before it sends the next, which is how the messages of a live
 * car park arrive: one reading at a time.
 *
 *   fc-replay --mqtt HOST:PORT --redis HOST:PORT [--prefix parkd:] [--in parking]
 *             [--out parking/out] [--timeout SECONDS] EVENTS RECORD
 *
 * EVENTS has one "lot ts_ms occupied" line per message, in feed order, each lot's ts_ms
 * strictly increasing in whole seconds (parkd's `ts` has whole seconds). RECORD receives each <out>/<lot>/forecast payload on a line of its own.
 * Exit status 0 when every message was taken, 1 on any error. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <mosquitto.h>

typedef struct replay_opts {
    char mqtt_host[256];
    int mqtt_port;
    char redis_host[256];
    int redis_port;
    const char *prefix, *in, *out;
    double timeout;
    const char *events, *record;
} replay_opts;

typedef struct replay_state {
    FILE *record;
    unsigned long forecasts;
    double last_message;        /* monotonic time of the last forecast received */
    bool online;                /* <out>/status said online: parkd has restored and subscribed */
    char status_topic[512];
} replay_state;

static volatile sig_atomic_t replay_stop;

static void replay_on_signal(int sig)
{
    replay_stop = sig;
}

static double replay_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void replay_usage(FILE *f)
{
    fputs("usage: fc-replay --mqtt HOST:PORT --redis HOST:PORT [--prefix parkd:] [--in parking]\n"
          "                 [--out parking/out] [--timeout SECONDS] EVENTS RECORD\n", f);
}

static int replay_hostport(const char *s, char *host, size_t size, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= size)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

static int replay_parse_args(int argc, char **argv, replay_opts *o)
{
    static const struct option longopts[] = {
        { "mqtt", required_argument, NULL, 'm' },   { "redis", required_argument, NULL, 'r' },
        { "prefix", required_argument, NULL, 'p' }, { "in", required_argument, NULL, 'i' },
        { "out", required_argument, NULL, 'o' },    { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
    };
    int c;
    bool mqtt = false, redis = false;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': mqtt = replay_hostport(optarg, o->mqtt_host, sizeof o->mqtt_host,
                                         &o->mqtt_port) == 0; break;
        case 'r': redis = replay_hostport(optarg, o->redis_host, sizeof o->redis_host,
                                          &o->redis_port) == 0; break;
        case 'p': o->prefix = optarg; break;
        case 'i': o->in = optarg; break;
        case 'o': o->out = optarg; break;
        case 't': o->timeout = atof(optarg); break;
        case 'h': replay_usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (!mqtt || !redis || argc - optind != 2 || o->timeout <= 0)
        return -1;
    o->events = argv[optind];
    o->record = argv[optind + 1];
    return 0;
}

static void replay_on_message(struct mosquitto *m, void *ctx, const struct mosquitto_message *msg)
{
    replay_state *st = ctx;
    (void)m;
    if (strcmp(msg->topic, st->status_topic) == 0) {
        st->online = msg->payloadlen == 6 && memcmp(msg->payload, "online", 6) == 0;
        return;
    }
    fwrite(msg->payload, 1, (size_t)msg->payloadlen, st->record);
    fputc('\n', st->record);
    st->forecasts++;
    st->last_message = replay_now();
}

/* Runs the MQTT client for up to MS milliseconds. */
static int replay_loop(struct mosquitto *m, int ms)
{
    int rc = mosquitto_loop(m, ms, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "fc-replay: mqtt: %s\n", mosquitto_strerror(rc));
        return -1;
    }
    return 0;
}

static struct mosquitto *replay_connect_mqtt(const replay_opts *o, replay_state *st)
{
    char id[64], topic[512];
    snprintf(id, sizeof id, "fc-replay-%ld", (long)getpid());
    struct mosquitto *m = mosquitto_new(id, true, st);
    if (!m)
        return NULL;
    mosquitto_message_callback_set(m, replay_on_message);
    /* one small message per round trip: Nagle would hold each for the last one's ACK */
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    if (mosquitto_connect(m, o->mqtt_host, o->mqtt_port, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "fc-replay: cannot connect to mqtt %s:%d\n", o->mqtt_host, o->mqtt_port);
        mosquitto_destroy(m);
        return NULL;
    }
    snprintf(topic, sizeof topic, "%s/+/forecast", o->out);
    snprintf(st->status_topic, sizeof st->status_topic, "%s/status", o->out);
    mosquitto_subscribe(m, NULL, topic, 1);
    mosquitto_subscribe(m, NULL, st->status_topic, 1);
    return m;
}

/* Waits for parkd's retained "online" (it has restored its state and subscribed). */
static int replay_wait_online(struct mosquitto *m, replay_state *st, double timeout)
{
    double end = replay_now() + timeout;
    while (!st->online) {
        if (replay_stop || replay_now() > end || replay_loop(m, 50) < 0) {
            fprintf(stderr, "fc-replay: parkd did not come online\n");
            return -1;
        }
    }
    return 0;
}

/* True once parkd has stored the count of LOT with event time TS_MS. */
static int replay_taken(redisContext *r, const char *prefix, const char *lot, int64_t ts_ms)
{
    char want[40];
    time_t secs = (time_t)(ts_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
    redisReply *reply = redisCommand(r, "HGET %slot:%s ts", prefix, lot);
    if (!reply) {
        fprintf(stderr, "fc-replay: redis: %s\n", r->errstr);
        return -1;
    }
    int taken = reply->type == REDIS_REPLY_STRING && strcmp(reply->str, want) == 0;
    freeReplyObject(reply);
    return taken;
}

static int replay_one(struct mosquitto *m, redisContext *r, const replay_opts *o,
                      const char *lot, int64_t ts_ms, long occupied)
{
    char topic[512], payload[128];
    snprintf(topic, sizeof topic, "%s/%s/count", o->in, lot);
    int n = snprintf(payload, sizeof payload, "{\"occupied\":%ld,\"ts\":%" PRId64 ".%03d}",
                     occupied, ts_ms / 1000, (int)(ts_ms % 1000));
    if (mosquitto_publish(m, NULL, topic, n, payload, 1, false) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "fc-replay: publish failed\n");
        return -1;
    }
    double end = replay_now() + o->timeout;
    for (;;) {
        if (replay_loop(m, 0) < 0)
            return -1;
        int taken = replay_taken(r, o->prefix, lot, ts_ms);
        if (taken)
            return taken < 0 ? -1 : 0;
        if (replay_stop || replay_now() > end) {
            fprintf(stderr, "fc-replay: parkd did not take %s at %" PRId64 "\n", lot, ts_ms);
            return -1;
        }
        usleep(100);
    }
}

/* After the last message: lets the last forecasts arrive (quiet for a second). */
static void replay_drain(struct mosquitto *m, replay_state *st)
{
    double start = replay_now();
    st->last_message = start;
    while (!replay_stop && replay_now() - st->last_message < 1.0 && replay_now() - start < 30.0)
        if (replay_loop(m, 50) < 0)
            return;
}

static int replay_feed(struct mosquitto *m, redisContext *r, const replay_opts *o, FILE *events)
{
    char lot[128];
    long long ts;
    long occupied;
    unsigned long fed = 0;
    double start = replay_now();
    int rc;
    while ((rc = fscanf(events, "%127s %lld %ld", lot, &ts, &occupied)) == 3) {
        if (replay_one(m, r, o, lot, (int64_t)ts, occupied) < 0)
            return -1;
        if (++fed % 5000 == 0)
            fprintf(stderr, "fc-replay: %lu messages (%.0f/s)\n", fed,
                    (double)fed / (replay_now() - start + 1e-9));
    }
    if (rc != EOF) {
        fprintf(stderr, "fc-replay: %s: bad line after %lu messages\n", o->events, fed);
        return -1;
    }
    fprintf(stderr, "fc-replay: %lu messages fed in %.1f s\n", fed, replay_now() - start);
    return 0;
}

int main(int argc, char **argv)
{
    replay_opts o = { .prefix = "parkd:", .in = "parking", .out = "parking/out", .timeout = 10 };
    replay_state st = { 0 };
    int status = 1;
    if (replay_parse_args(argc, argv, &o) < 0) {
        replay_usage(stderr);
        return 1;
    }
    signal(SIGINT, replay_on_signal);
    signal(SIGTERM, replay_on_signal);
    FILE *events = fopen(o.events, "r");
    st.record = fopen(o.record, "w");
    if (!events || !st.record) {
        fprintf(stderr, "fc-replay: %s: %s\n", events ? o.record : o.events, strerror(errno));
        goto out_files;
    }
    mosquitto_lib_init();
    struct mosquitto *m = replay_connect_mqtt(&o, &st);
    redisContext *r = redisConnect(o.redis_host, o.redis_port);
    if (!m || !r || r->err) {
        fprintf(stderr, "fc-replay: cannot connect (%s)\n", r && r->err ? r->errstr : "mqtt");
        goto out_clients;
    }
    if (replay_wait_online(m, &st, o.timeout) == 0 && replay_feed(m, r, &o, events) == 0)
        status = 0;
    replay_drain(m, &st);
    fprintf(stderr, "fc-replay: %lu forecasts recorded\n", st.forecasts);
out_clients:
    if (r)
        redisFree(r);
    if (m) {
        mosquitto_disconnect(m);
        mosquitto_destroy(m);
    }
    mosquitto_lib_cleanup();
out_files:
    if (events)
        fclose(events);
    if (st.record && fclose(st.record) != 0)
        status = 1;
    return replay_stop ? 128 + replay_stop : status;
}
