/* sink: the ceiling. A bare libmosquitto subscriber that only counts messages, until the bench
 * pattern's sentinel (pattern.h) arrives: what the broker can deliver on this machine, with no
 * work done per message.
 *
 * With -R HOST:PORT it keeps its count in the Redis hash field -K KEY "count" (every 2 ms), for
 * loadgen's flow control, as parkd keeps messages_in in parkd:daemon.
 *
 * Prints "subscribed" once the broker granted the subscription (the caller starts the load
 * then), and at the end key=value lines: count, first_ns, last_ns. Exit 0 when the sentinel
 * arrived, 1 on an error or when nothing came for -W seconds. */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pattern.h"

typedef struct sink {
    const char *filter;
    int qos;
    char end_topic[256];
    bool done;
    uint64_t count;
    uint64_t first_ns, last_ns;
    redisContext *progress;
    const char *progress_key;
    uint64_t progress_ns;
} sink;

static void sink_report(sink *s)
{
    redisReply *r = redisCommand(s->progress, "HSET %s count %llu", s->progress_key,
                                 (unsigned long long)s->count);
    if (!r) {
        fprintf(stderr, "sink: redis: %s\n", s->progress->errstr);
        exit(1);
    }
    freeReplyObject(r);
}

static void sink_on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    sink *s = obj;
    if (rc != 0) {
        fprintf(stderr, "sink: connect refused: %s\n", mosquitto_connack_string(rc));
        exit(1);
    }
    mosquitto_subscribe(mosq, NULL, s->filter, s->qos);
}

static void sink_on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted)
{
    printf("subscribed\n");
    fflush(stdout);
}

static void sink_on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m)
{
    sink *s = obj;
    if (m->retain)
        return;     /* left by an earlier run, not part of this load */
    uint64_t now = bp_now_ns();
    if (s->count++ == 0)
        s->first_ns = now;
    s->last_ns = now;
    if (strcmp(m->topic, s->end_topic) == 0)
        s->done = true;
    if (s->progress && now - s->progress_ns >= 2000000u) {
        s->progress_ns = now;
        sink_report(s);
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *prefix = "parking";
    const char *redis = NULL;
    int port = 1883, idle_s = 30;
    sink s = { .filter = NULL, .qos = 1, .progress_key = "bench:sink" };
    int c;
    while ((c = getopt(argc, argv, "h:p:q:t:W:R:K:")) != -1) {
        switch (c) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'q': s.qos = atoi(optarg); break;
        case 't': prefix = optarg; break;
        case 'W': idle_s = atoi(optarg); break;
        case 'R': redis = optarg; break;
        case 'K': s.progress_key = optarg; break;
        default:
            fprintf(stderr, "usage: sink [-h HOST] [-p PORT] [-q QOS] [-t PREFIX] [-W IDLE_S]"
                            " [-R REDIS_HOST:PORT [-K KEY]]\n");
            return 2;
        }
    }
    char filter[256];
    snprintf(filter, sizeof filter, "%s/#", prefix);     /* as parkd subscribes */
    s.filter = filter;
    snprintf(s.end_topic, sizeof s.end_topic, "%s/%s/bay/%s", prefix, BP_END_LOT, BP_END_BAY);

    if (redis) {
        char host_r[256];
        snprintf(host_r, sizeof host_r, "%s", redis);
        char *colon = strrchr(host_r, ':');
        int port_r = 6379;
        if (colon) {
            *colon = '\0';
            port_r = atoi(colon + 1);
        }
        s.progress = redisConnect(host_r, port_r);
        if (!s.progress || s.progress->err) {
            fprintf(stderr, "sink: redis %s: %s\n", redis,
                    s.progress ? s.progress->errstr : "out of memory");
            return 1;
        }
        sink_report(&s);
    }

    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof id, "bench-sink-%d", (int)getpid());
    struct mosquitto *mosq = mosquitto_new(id, true, &s);
    if (!mosq)
        return 1;
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);     /* no Nagle delay in what we time */
    mosquitto_connect_callback_set(mosq, sink_on_connect);
    mosquitto_subscribe_callback_set(mosq, sink_on_subscribe);
    mosquitto_message_callback_set(mosq, sink_on_message);
    int rc = mosquitto_connect(mosq, host, port, 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "sink: connect to %s:%d: %s\n", host, port,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return 1;
    }
    uint64_t last_seen = bp_now_ns(), seen = 0;
    while (!s.done) {
        rc = mosquitto_loop(mosq, 100, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "sink: %s\n", mosquitto_strerror(rc));
            break;
        }
        uint64_t now = bp_now_ns();
        if (s.count != seen) {
            seen = s.count;
            last_seen = now;
        } else if (now - last_seen > (uint64_t)idle_s * 1000000000u) {
            fprintf(stderr, "sink: nothing for %d s, %" PRIu64 " messages so far\n", idle_s,
                    s.count);
            break;
        }
    }
    if (s.progress) {
        sink_report(&s);
        redisFree(s.progress);
    }
    printf("count=%" PRIu64 "\nfirst_ns=%" PRIu64 "\nlast_ns=%" PRIu64 "\n", s.count, s.first_ns,
           s.last_ns);
    mosquitto_disconnect(mosq);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    return s.done ? 0 : 1;
}
