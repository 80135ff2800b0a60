/* loadgen: publishes the bench pattern (pattern.h) of N bay events over L lots x B bays, then
 * the sentinel, at a target rate or as fast as the broker takes them, at QoS 0 or 1.
 *
 * Each payload is {"occupied":true|false,"ts":<send time, s.ms>}, so the event time is the send
 * time; with -T the exact send times (CLOCK_REALTIME ns, one uint64 per event) are written to a
 * file for the latency program. At most -w messages are outstanding (published but not yet
 * written, at QoS 0, or not yet acknowledged, at QoS 1), so the generator follows the broker's
 * pace instead of piling messages up in libmosquitto's queue.
 *
 * With -r, the events are paced: event i is due at i / RATE s after the first, or, with -j J
 * (0 < J < 1), after a sum of intervals each drawn uniformly from (1 - J .. 1 + J) / RATE s (the
 * same mean rate, but no fixed phase against the consumer's own timers). The draws come from a
 * fixed seed, so two runs send on the same schedule. Between due times the generator sleeps in
 * the client's loop, so a slow rate costs it next to nothing.
 *
 * With -F HOST:PORT, the generator also stays at most -Q messages ahead of the consumer, whose
 * progress it reads from Redis: a broker drops messages for a subscriber that is more than
 * max_queued_messages behind, so an open-loop generator faster than the consumer would measure
 * the drops, not the consumer; closed-loop, the rate is the consumer's sustained rate. Progress
 * is either a counter (-K KEY -f FIELD: the sink's count), or, with -S PREFIX, parkd's own
 * state: every event flips its bay's state in PREFIX lot:<lot>:bays, and parkd applies events in
 * order, so "event j is applied" is one HGET, and a few of them, pipelined, bisect the events
 * in flight (this needs -Q < L x B, so that no bay is written twice within the lead).
 *
 * Prints key=value lines: start_ns (first publish), end_ns (last one written or acknowledged),
 * sent, rate. Exit 0, or 1 on an error. */
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

typedef struct lg_opts {
    const char *host;
    int port;
    int qos;
    uint64_t n;
    uint32_t lots, bays;
    double rate;            /* events/s; 0: as fast as possible */
    double jitter;          /* with rate: each interval uniform in (1 -+ jitter) / rate */
    int window;
    const char *prefix;
    const char *times_path;
    const char *client_id;
    const char *flow_host;  /* NULL: open loop */
    int flow_port;
    const char *flow_key, *flow_field;
    const char *state_prefix;   /* probe parkd's bay states instead of a counter */
    uint64_t lead;
} lg_opts;

typedef struct lg_state {
    bool connected;
    uint64_t done;          /* publishes written (QoS 0) or acknowledged (QoS 1) */
    redisContext *flow;
    uint64_t consumed_base; /* the consumer's count before the load */
    uint64_t consumed;      /* since then, as last read */
    uint64_t flow_read_ns;
    uint64_t flow_wait_ns;  /* time spent ahead of the consumer */
    double due_ns;          /* with a rate: when the next event is due, from the first one */
    uint64_t rng;           /* xorshift64 state for the jitter */
} lg_state;

/* The next draw, uniform in [0, 1). */
static double lg_uniform(lg_state *st)
{
    st->rng ^= st->rng << 13;
    st->rng ^= st->rng >> 7;
    st->rng ^= st->rng << 17;
    return (double)(st->rng >> 11) / 9007199254740992.0;   /* 2^53 */
}

/* Event SENT has gone: when the next one is due. */
static void lg_next_due(const lg_opts *o, lg_state *st, uint64_t sent)
{
    if (o->rate <= 0)
        return;
    if (o->jitter > 0)
        st->due_ns += 1e9 / o->rate * (1.0 - o->jitter + 2.0 * o->jitter * lg_uniform(st));
    else
        st->due_ns = (double)(sent + 1) * 1e9 / o->rate;    /* no rounding drift */
}

/* The consumer's count, or -1 when it cannot be read (0 while the field is absent). */
static int64_t lg_read_counter(const lg_opts *o, lg_state *st)
{
    redisReply *r = redisCommand(st->flow, "HGET %s %s", o->flow_key, o->flow_field);
    if (!r) {
        fprintf(stderr, "loadgen: redis: %s\n", st->flow->errstr);
        return -1;
    }
    int64_t v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

#define LG_PROBES 8

/* The number of events parkd has applied, found by probing bay states between what is known
 * applied and SENT; -1 on a Redis error. */
static int64_t lg_probe_state(const lg_opts *o, lg_state *st, uint64_t sent)
{
    uint64_t lo = st->consumed, span = sent - lo;
    uint64_t at[LG_PROBES];
    int n = 0;
    for (int k = 1; k <= LG_PROBES; k++) {
        uint64_t j = lo + span * (uint64_t)k / LG_PROBES;   /* "the first j events applied" */
        if (j == 0 || (n && at[n - 1] == j))
            continue;
        bp_event e = bp_event_at(j - 1, o->lots, o->bays);
        char lot[BP_ID_MAX], bay[BP_ID_MAX];
        bp_lot_id(lot, sizeof lot, e.lot);
        bp_bay_id(bay, sizeof bay, e.bay);
        redisAppendCommand(st->flow, "HGET %slot:%s:bays %s", o->state_prefix, lot, bay);
        at[n++] = j;
    }
    uint64_t applied = lo;
    for (int k = 0; k < n; k++) {
        void *reply = NULL;
        if (redisGetReply(st->flow, &reply) != REDIS_OK || !reply) {
            fprintf(stderr, "loadgen: redis: %s\n", st->flow->errstr);
            return -1;
        }
        redisReply *r = reply;
        bp_event e = bp_event_at(at[k] - 1, o->lots, o->bays);
        if (r->type == REDIS_REPLY_STRING && r->str[0] == (e.occupied ? '1' : '0'))
            applied = at[k];
        freeReplyObject(r);
    }
    return (int64_t)applied;
}

static int lg_flow_open(const lg_opts *o, lg_state *st)
{
    if (!o->flow_host)
        return 0;
    if (o->state_prefix && o->lead >= (uint64_t)o->lots * o->bays) {
        fprintf(stderr, "loadgen: -Q must be below lots x bays with -S\n");
        return -1;
    }
    st->flow = redisConnect(o->flow_host, o->flow_port);
    if (!st->flow || st->flow->err) {
        fprintf(stderr, "loadgen: redis %s:%d: %s\n", o->flow_host, o->flow_port,
                st->flow ? st->flow->errstr : "out of memory");
        return -1;
    }
    if (o->state_prefix)
        return 0;
    int64_t v = lg_read_counter(o, st);
    if (v < 0)
        return -1;
    st->consumed_base = (uint64_t)v;
    return 0;
}

/* Whether SENT is too far ahead of the consumer; re-reads its progress at most every 2 ms. */
static bool lg_too_far_ahead(const lg_opts *o, lg_state *st, uint64_t sent)
{
    if (!st->flow || sent < st->consumed + o->lead)
        return false;
    uint64_t now = bp_now_ns();
    if (now - st->flow_read_ns < 2000000u)
        return true;
    st->flow_read_ns = now;
    int64_t v = o->state_prefix ? lg_probe_state(o, st, sent) : lg_read_counter(o, st);
    if (v < 0)
        exit(1);
    if (o->state_prefix)
        st->consumed = (uint64_t)v;
    else
        st->consumed = (uint64_t)v > st->consumed_base ? (uint64_t)v - st->consumed_base : 0;
    return sent >= st->consumed + o->lead;
}

static void lg_on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    lg_state *st = obj;
    if (rc != 0) {
        fprintf(stderr, "loadgen: connect refused: %s\n", mosquitto_connack_string(rc));
        exit(1);
    }
    st->connected = true;
}

static void lg_on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    lg_state *st = obj;
    st->done++;
}

static void lg_usage(void)
{
    fprintf(stderr,
            "usage: loadgen [-h HOST] [-p PORT] [-q 0|1] [-n EVENTS] [-L LOTS] [-B BAYS]\n"
            "               [-r RATE [-j JITTER]] [-w WINDOW] [-t PREFIX] [-T TIMES_FILE] [-i CLIENT_ID]\n"
            "               [-F REDIS_HOST:PORT (-K KEY -f FIELD | -S PREFIX) -Q LEAD]\n");
    exit(2);
}

static void lg_parse(int argc, char **argv, lg_opts *o)
{
    *o = (lg_opts){ "127.0.0.1", 1883, 1, 100000, 100, 100, 0, 0, 1000, "parking", NULL, NULL,
                    NULL, 6379, "bench:sink", "count", NULL, 50000 };
    int c;
    char *colon;
    while ((c = getopt(argc, argv, "h:p:q:n:L:B:r:j:w:t:T:i:F:K:f:S:Q:")) != -1) {
        switch (c) {
        case 'h': o->host = optarg; break;
        case 'p': o->port = atoi(optarg); break;
        case 'q': o->qos = atoi(optarg); break;
        case 'n': o->n = strtoull(optarg, NULL, 10); break;
        case 'L': o->lots = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'B': o->bays = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'r': o->rate = strtod(optarg, NULL); break;
        case 'j': o->jitter = strtod(optarg, NULL); break;
        case 'w': o->window = atoi(optarg); break;
        case 't': o->prefix = optarg; break;
        case 'T': o->times_path = optarg; break;
        case 'i': o->client_id = optarg; break;
        case 'F':
            o->flow_host = optarg;
            colon = strrchr(optarg, ':');
            if (colon) {
                *colon = '\0';
                o->flow_port = atoi(colon + 1);
            }
            break;
        case 'K': o->flow_key = optarg; break;
        case 'f': o->flow_field = optarg; break;
        case 'S': o->state_prefix = optarg; break;
        case 'Q': o->lead = strtoull(optarg, NULL, 10); break;
        default: lg_usage();
        }
    }
    if (optind != argc || o->lots == 0 || o->bays == 0 || o->window < 1 || o->qos < 0 ||
        o->qos > 1 || o->rate < 0 || !(o->jitter >= 0 && o->jitter < 1))
        lg_usage();
}

/* One topic per lot and bay, made once: the generator should cost the broker's side of the
 * machine as little as it can. */
static char **lg_topics(const lg_opts *o)
{
    char **t = calloc((size_t)o->lots * o->bays, sizeof *t);
    if (!t)
        return NULL;
    for (uint32_t l = 0; l < o->lots; l++) {
        char lot[BP_ID_MAX];
        bp_lot_id(lot, sizeof lot, l);
        for (uint32_t b = 0; b < o->bays; b++) {
            char bay[BP_ID_MAX], buf[256];
            bp_bay_id(bay, sizeof bay, b);
            snprintf(buf, sizeof buf, "%s/%s/bay/%s", o->prefix, lot, bay);
            t[(size_t)l * o->bays + b] = strdup(buf);
            if (!t[(size_t)l * o->bays + b])
                return NULL;
        }
    }
    return t;
}

/* Runs the client until fewer than the window are outstanding, the consumer is close enough
 * behind and, when paced, the next event is due. */
static int lg_wait_turn(struct mosquitto *mosq, const lg_opts *o, lg_state *st, uint64_t sent,
                        uint64_t t0)
{
    for (;;) {
        bool window_full = sent - st->done >= (uint64_t)o->window;
        if (!window_full && lg_too_far_ahead(o, st, sent)) {
            uint64_t t = bp_now_ns();
            int rc = mosquitto_loop(mosq, 1, 1);
            st->flow_wait_ns += bp_now_ns() - t;
            if (rc != MOSQ_ERR_SUCCESS) {
                fprintf(stderr, "loadgen: %s\n", mosquitto_strerror(rc));
                return -1;
            }
            continue;
        }
        bool early = false;
        int wait_ms = 10;
        if (o->rate > 0) {
            uint64_t due_ns = t0 + (uint64_t)st->due_ns, now = bp_now_ns();
            early = now < due_ns;
            /* sleep until it is due (the loop returns sooner on an acknowledgement), in steps
             * of at most 1 s so the client's keepalive still runs */
            if (early && !window_full) {
                uint64_t left_ms = (due_ns - now) / 1000000u;
                wait_ms = left_ms < 1 ? 1 : left_ms > 1000 ? 1000 : (int)left_ms;
            }
        }
        if (!window_full && !early)
            return 0;
        int rc = mosquitto_loop(mosq, wait_ms, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "loadgen: %s\n", mosquitto_strerror(rc));
            return -1;
        }
    }
}

static int lg_publish(struct mosquitto *mosq, const lg_opts *o, const char *topic, bool occupied,
                      uint64_t now_ns)
{
    char payload[96];
    uint64_t ms = now_ns / 1000000u;
    int len = snprintf(payload, sizeof payload, "{\"occupied\":%s,\"ts\":%" PRIu64 ".%03u}",
                       occupied ? "true" : "false", ms / 1000u, (unsigned)(ms % 1000u));
    int rc = mosquitto_publish(mosq, NULL, topic, len, payload, o->qos, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "loadgen: publish: %s\n", mosquitto_strerror(rc));
        return -1;
    }
    return 0;
}

static int lg_connect(struct mosquitto *mosq, const lg_opts *o, lg_state *st)
{
    int rc = mosquitto_connect(mosq, o->host, o->port, 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "loadgen: connect to %s:%d: %s\n", o->host, o->port,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return -1;
    }
    while (!st->connected) {
        rc = mosquitto_loop(mosq, 100, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "loadgen: %s\n", mosquitto_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static int lg_run(struct mosquitto *mosq, const lg_opts *o, lg_state *st, char **topics,
                  uint64_t *times)
{
    char end_topic[256];
    snprintf(end_topic, sizeof end_topic, "%s/%s/bay/%s", o->prefix, BP_END_LOT, BP_END_BAY);
    uint64_t t0 = bp_now_ns();
    for (uint64_t i = 0; i <= o->n; i++) {
        if (lg_wait_turn(mosq, o, st, i, t0) < 0)
            return -1;
        uint64_t now = bp_now_ns();
        int rc;
        if (i == o->n) {
            rc = lg_publish(mosq, o, end_topic, true, now);
        } else {
            bp_event e = bp_event_at(i, o->lots, o->bays);
            if (times)
                times[i] = now;
            rc = lg_publish(mosq, o, topics[(size_t)e.lot * o->bays + e.bay], e.occupied, now);
        }
        if (rc < 0)
            return -1;
        lg_next_due(o, st, i);
    }
    while (st->done < o->n + 1) {
        int rc = mosquitto_loop(mosq, 10, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "loadgen: %s\n", mosquitto_strerror(rc));
            return -1;
        }
    }
    uint64_t t1 = bp_now_ns();
    printf("start_ns=%" PRIu64 "\nend_ns=%" PRIu64 "\nsent=%" PRIu64 "\nrate=%.0f\n"
           "flow_wait_ms=%.0f\n", t0, t1, o->n + 1, (double)(o->n + 1) * 1e9 / (double)(t1 - t0),
           (double)st->flow_wait_ns / 1e6);
    return 0;
}

/* Written aside and renamed, so a reader waiting for the file never sees half of it. */
static int lg_write_times(const char *path, const uint64_t *times, uint64_t n)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(times, sizeof *times, n, f) != n || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    lg_opts o;
    lg_parse(argc, argv, &o);
    char **topics = lg_topics(&o);
    uint64_t *times = o.times_path ? calloc(o.n ? o.n : 1, sizeof *times) : NULL;
    if (!topics || (o.times_path && !times)) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    mosquitto_lib_init();
    lg_state st = { .rng = 0x9e3779b97f4a7c15u };
    char id[64];
    if (!o.client_id) {
        snprintf(id, sizeof id, "bench-loadgen-%d", (int)getpid());
        o.client_id = id;
    }
    struct mosquitto *mosq = mosquitto_new(o.client_id, true, &st);
    if (!mosq) {
        fprintf(stderr, "loadgen: mosquitto_new: %s\n", strerror(errno));
        return 1;
    }
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);     /* no Nagle delay in what we time */
    /* our own window paces QoS 1; libmosquitto's must not be the smaller one */
    mosquitto_max_inflight_messages_set(mosq, (unsigned)o.window + 1);
    mosquitto_connect_callback_set(mosq, lg_on_connect);
    mosquitto_publish_callback_set(mosq, lg_on_publish);
    int rc = lg_flow_open(&o, &st) == 0 && lg_connect(mosq, &o, &st) == 0 &&
             lg_run(mosq, &o, &st, topics, times) == 0 ? 0 : 1;
    mosquitto_disconnect(mosq);
    mosquitto_loop(mosq, 10, 1);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    if (rc == 0 && times && lg_write_times(o.times_path, times, o.n) < 0)
        rc = 1;
    return rc;
}
