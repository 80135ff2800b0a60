/* faultgen: the input stream of parkd's fault tests, and its ground truth.
 *
 * A seeded, deterministic stream of N events over a few lots: "bays" lots get bay events, "gates"
 * lots get gate events with a seq. The stream holds what QoS 1 and real sensors produce: repeats
 * of a bay's last state, bay events older than the bay's last one (to be ignored), and gate
 * events re-sent with an earlier seq (duplicates, to be ignored).
 *
 *   faultgen [options] lots        the `lots:` entries of a parkd configuration for the stream
 *   faultgen [options] events      the events, one "INDEX TOPIC PAYLOAD" line each
 *   faultgen [options] truth       the state after events [0, --to), computed here by the SPEC §3
 *                                  rules (not by parkd): lines "lot L occupied N", "lot L free N",
 *                                  "lot L ts ISO", "bay L B 0|1", "gateseq L G SEQ"; lines
 *                                  starting with '#' are comments (counts, clamps)
 *   faultgen [options] publish     publishes events [--from, --to) at QoS 1 and waits for every
 *                                  PUBACK; survives broker restarts (libmosquitto keeps the
 *                                  unacknowledged messages and re-sends them on reconnect)
 *
 * The stream depends only on the generation options (-s -n --bay-lots --bays --gate-lots --gates
 * --gate-share --base-ts), so slices published by separate runs are one stream, and `truth`
 * with the same options describes it.
 *
 * Generation keeps the truth independent of the reorderings QoS 1 can cause (a redelivery after
 * later messages): a bay's new events have strictly increasing whole-second times, its "old"
 * events times that are never whole seconds, so no two events of one bay share a time with
 * different states; and a gates lot never comes within a margin of 0 (or of its capacity), so
 * no clamp can depend on the order of events of different gates. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FG_TOPIC_MAX 128
#define FG_PAYLOAD_MAX 128
#define FG_MARKS_MAX 16
#define FG_GATE_MARGIN 100      /* a gates lot stays this far from 0 and from its capacity */
#define FG_GATE_CAPACITY 1000000

enum fg_kind { FG_BAY, FG_GATE };

typedef struct fg_event {
    enum fg_kind kind;
    int lot;                /* index into fg_stream.lots */
    int sensor;             /* bay or gate index within the lot */
    bool occupied;          /* bay */
    bool in;                /* gate */
    uint32_t count;         /* gate */
    uint64_t seq;           /* gate */
    int64_t ts_ms;
    char topic[FG_TOPIC_MAX];
    char payload[FG_PAYLOAD_MAX];
    int payload_len;
} fg_event;

typedef struct fg_lot {
    char id[16];
    enum fg_kind source;
    int sensors;            /* bays or gates */
    int64_t capacity;
} fg_lot;

typedef struct fg_opts {
    const char *mode;
    const char *host;
    int port;
    const char *prefix;
    const char *client_id;
    uint64_t seed;
    long n;
    int bay_lots, bays, gate_lots, gates;
    int gate_share;         /* percent of events that are gate events */
    int64_t base_ts;        /* seconds */
    long from, to;
    double rate;            /* events/s; 0: as fast as the window allows */
    int window;             /* unacknowledged publishes at most */
    int timeout_s;          /* for the PUBACKs at the end and for each pause */
    long pause_at[FG_MARKS_MAX];
    int n_pause;
    long mark_at[FG_MARKS_MAX];
    int n_mark;
    bool quiet;
} fg_opts;

typedef struct fg_stream {
    fg_lot *lots;
    int n_lots;
    fg_event *ev;
    long n;
} fg_stream;

/* ---- deterministic randomness (splitmix64) ---- */

static uint64_t fg_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t fg_below(uint64_t *s, uint64_t n)
{
    return n ? fg_rand(s) % n : 0;
}

static void *fg_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "faultgen: out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- generation ---- */

typedef struct fg_gen_bay {
    bool seen;
    bool occupied;          /* of the newest event */
    int64_t ts_ms;          /* newest event time (whole seconds) */
    long last;              /* index of the newest event */
} fg_gen_bay;

typedef struct fg_gen_gate {
    uint64_t seq;
    long *sent;             /* indexes of this gate's events, for duplicates */
    size_t n_sent;
} fg_gen_gate;

static void fg_format_ts(char *buf, size_t size, int64_t ts_ms)
{
    snprintf(buf, size, "%" PRId64 ".%03d", ts_ms / 1000, (int)(ts_ms % 1000));
}

static void fg_render(fg_event *e, const fg_opts *o, const fg_lot *l, uint64_t *rs)
{
    char ts[32];
    fg_format_ts(ts, sizeof ts, e->ts_ms);
    if (e->kind == FG_BAY) {
        snprintf(e->topic, sizeof e->topic, "%s/%s/bay/b%03d", o->prefix, l->id, e->sensor);
        /* both boolean spellings the SPEC allows */
        const char *v = fg_below(rs, 2) ? (e->occupied ? "true" : "false") : (e->occupied ? "1" : "0");
        e->payload_len = snprintf(e->payload, sizeof e->payload, "{\"occupied\":%s,\"ts\":%s}", v, ts);
    } else {
        snprintf(e->topic, sizeof e->topic, "%s/%s/gate/g%d", o->prefix, l->id, e->sensor);
        e->payload_len = snprintf(e->payload, sizeof e->payload,
                                  "{\"event\":\"%s\",\"count\":%" PRIu32 ",\"seq\":%" PRIu64
                                  ",\"ts\":%s}",
                                  e->in ? "in" : "out", e->count, e->seq, ts);
    }
}

/* A bay lot's events go to a window of bays that slides across the lot during the stream, so
 * every bay's last event comes at a different point of it: an event lost anywhere is likely to
 * be some bay's final state. */
static int fg_pick_bay(uint64_t *rs, const fg_lot *l, long i, long n)
{
    int w = l->sensors / 40 > 0 ? l->sensors / 40 : 1;
    int span = l->sensors - w;
    int first = n > 0 ? (int)((double)i / (double)n * (span + 1)) : 0;
    if (first > span)
        first = span;
    return first + (int)fg_below(rs, (uint64_t)w);
}

static void fg_gen_bay_event(fg_event *e, fg_gen_bay *b, uint64_t *rs, int64_t base_ms, long i)
{
    uint64_t r = fg_below(rs, 100);
    if (b->seen && r < 4) {
        /* an exact repeat of the newest event: a redelivery as the sensor would make it */
        e->occupied = b->occupied;
        e->ts_ms = b->ts_ms;
        return;
    }
    if (b->seen && r < 12) {
        /* older than the newest: must be ignored; never a whole second */
        int64_t ts = b->ts_ms - 1 - (int64_t)fg_below(rs, 20000);
        if (ts % 1000 == 0)
            ts -= 1;
        e->occupied = fg_below(rs, 2);
        e->ts_ms = ts;
        return;
    }
    int64_t start = b->seen ? b->ts_ms : base_ms + 1000 * (int64_t)fg_below(rs, 300);
    e->ts_ms = start + 1000 * (1 + (int64_t)fg_below(rs, 10));
    e->occupied = fg_below(rs, 2);     /* half the time a repeat of the state at a newer time */
    b->seen = true;
    b->occupied = e->occupied;
    b->ts_ms = e->ts_ms;
    b->last = i;
}

static void fg_gen_gate_event(fg_event *e, fg_stream *s, fg_gen_gate *g, int64_t *occ,
                              int64_t *clock_ms, uint64_t *rs, long i)
{
    if (g->n_sent > 0 && fg_below(rs, 100) < 6) {
        /* re-sent with an earlier seq: a duplicate */
        const fg_event *d = &s->ev[g->sent[fg_below(rs, g->n_sent)]];
        e->in = d->in;
        e->count = d->count;
        e->seq = d->seq;
        e->ts_ms = d->ts_ms;
        return;
    }
    e->count = 1 + (uint32_t)(fg_below(rs, 8) == 0 ? fg_below(rs, 5) : 0);
    if (*occ < FG_GATE_MARGIN + (int64_t)e->count)
        e->in = true;
    else if (*occ > FG_GATE_CAPACITY - FG_GATE_MARGIN - (int64_t)e->count)
        e->in = false;
    else
        e->in = fg_below(rs, 2);
    *occ += e->in ? (int64_t)e->count : -(int64_t)e->count;
    e->seq = ++g->seq;
    *clock_ms += 100 * (1 + (int64_t)fg_below(rs, 5));
    e->ts_ms = *clock_ms;
    g->sent = realloc(g->sent, (g->n_sent + 1) * sizeof *g->sent);
    if (!g->sent) {
        fprintf(stderr, "faultgen: out of memory\n");
        exit(1);
    }
    g->sent[g->n_sent++] = i;
}

static void fg_generate(fg_stream *s, const fg_opts *o)
{
    s->n_lots = o->bay_lots + o->gate_lots;
    s->lots = fg_xcalloc((size_t)s->n_lots, sizeof *s->lots);
    for (int i = 0; i < s->n_lots; i++) {
        fg_lot *l = &s->lots[i];
        bool bays = i < o->bay_lots;
        snprintf(l->id, sizeof l->id, bays ? "FB%d" : "FG%d", bays ? i : i - o->bay_lots);
        l->source = bays ? FG_BAY : FG_GATE;
        l->sensors = bays ? o->bays : o->gates;
        /* a bays lot holds all its bays, so occupied is never clamped */
        l->capacity = bays ? o->bays : FG_GATE_CAPACITY;
    }
    fg_gen_bay *bays = fg_xcalloc((size_t)(o->bay_lots * o->bays), sizeof *bays);
    fg_gen_gate *gates = fg_xcalloc((size_t)(o->gate_lots * o->gates), sizeof *gates);
    int64_t *occ = fg_xcalloc((size_t)o->gate_lots, sizeof *occ);
    int64_t *clock = fg_xcalloc((size_t)o->gate_lots, sizeof *clock);
    int64_t base_ms = o->base_ts * 1000;
    for (int g = 0; g < o->gate_lots; g++)
        clock[g] = base_ms;
    uint64_t rs = o->seed;
    s->n = o->n;
    s->ev = fg_xcalloc((size_t)s->n, sizeof *s->ev);
    for (long i = 0; i < s->n; i++) {
        fg_event *e = &s->ev[i];
        bool gate = o->bay_lots == 0 ||
                    (o->gate_lots > 0 && fg_below(&rs, 100) < (uint64_t)o->gate_share);
        if (gate) {
            int g = (int)fg_below(&rs, (uint64_t)o->gate_lots);
            e->kind = FG_GATE;
            e->lot = o->bay_lots + g;
            e->sensor = (int)fg_below(&rs, (uint64_t)o->gates);
            fg_gen_gate_event(e, s, &gates[g * o->gates + e->sensor], &occ[g], &clock[g], &rs, i);
        } else {
            int b = (int)fg_below(&rs, (uint64_t)o->bay_lots);
            e->kind = FG_BAY;
            e->lot = b;
            e->sensor = fg_pick_bay(&rs, &s->lots[b], i, s->n);
            fg_gen_bay_event(e, &bays[b * o->bays + e->sensor], &rs, base_ms, i);
        }
        fg_render(e, o, &s->lots[e->lot], &rs);
    }
    for (int g = 0; g < o->gate_lots * o->gates; g++)
        free(gates[g].sent);
    free(gates);
    free(bays);
    free(occ);
    free(clock);
}

/* ---- ground truth: SPEC §3, applied here in stream order ---- */

typedef struct fg_truth_bay {
    bool seen, occupied;
    int64_t ts_ms;
} fg_truth_bay;

typedef struct fg_truth_lot {
    bool has_data;
    int64_t occupied;
    int64_t ts_ms;
    fg_truth_bay *bays;
    bool *gate_has_seq;
    uint64_t *gate_seq;
    long applied, unchanged, ignored_old, ignored_duplicate, clamps;
} fg_truth_lot;

static int64_t fg_clamp(int64_t v, int64_t capacity, long *clamps)
{
    if (v < 0 || v > capacity) {
        (*clamps)++;
        return v < 0 ? 0 : capacity;
    }
    return v;
}

static void fg_truth_apply(fg_truth_lot *t, const fg_lot *l, const fg_event *e)
{
    if (e->kind == FG_BAY) {
        fg_truth_bay *b = &t->bays[e->sensor];
        if (b->seen && e->ts_ms < b->ts_ms) {
            t->ignored_old++;       /* older than the bay's last applied state */
            return;
        }
        if (b->seen && b->occupied == e->occupied) {
            t->unchanged++;         /* a repeat changes nothing but the lot's newest time */
            if (e->ts_ms > b->ts_ms)
                b->ts_ms = e->ts_ms;
        } else {
            t->applied++;
            b->seen = true;
            b->occupied = e->occupied;
            b->ts_ms = e->ts_ms;
            int64_t n = 0;
            for (int i = 0; i < l->sensors; i++)
                n += t->bays[i].seen && t->bays[i].occupied;
            t->occupied = fg_clamp(n, l->capacity, &t->clamps);
        }
    } else {
        if (t->gate_has_seq[e->sensor] && e->seq <= t->gate_seq[e->sensor]) {
            t->ignored_duplicate++;
            return;
        }
        t->applied++;
        t->gate_has_seq[e->sensor] = true;
        t->gate_seq[e->sensor] = e->seq;
        int64_t v = t->occupied + (e->in ? (int64_t)e->count : -(int64_t)e->count);
        t->occupied = fg_clamp(v, l->capacity, &t->clamps);
    }
    t->has_data = true;
    if (e->ts_ms > t->ts_ms)
        t->ts_ms = e->ts_ms;
}

static void fg_iso(char *buf, size_t size, int64_t ts_ms)
{
    time_t secs = (time_t)(ts_ms >= 0 ? ts_ms / 1000 : (ts_ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int fg_truth(const fg_stream *s, const fg_opts *o)
{
    fg_truth_lot *t = fg_xcalloc((size_t)s->n_lots, sizeof *t);
    for (int i = 0; i < s->n_lots; i++) {
        t[i].ts_ms = INT64_MIN;
        t[i].bays = fg_xcalloc((size_t)s->lots[i].sensors, sizeof *t[i].bays);
        t[i].gate_has_seq = fg_xcalloc((size_t)s->lots[i].sensors, sizeof *t[i].gate_has_seq);
        t[i].gate_seq = fg_xcalloc((size_t)s->lots[i].sensors, sizeof *t[i].gate_seq);
    }
    for (long i = 0; i < o->to; i++)
        fg_truth_apply(&t[s->ev[i].lot], &s->lots[s->ev[i].lot], &s->ev[i]);
    printf("# faultgen truth after events [0, %ld) of seed %" PRIu64 "\n", o->to, o->seed);
    for (int i = 0; i < s->n_lots; i++) {
        const fg_lot *l = &s->lots[i];
        printf("# lot %s applied %ld unchanged %ld ignored_old %ld ignored_duplicate %ld "
               "clamps %ld\n", l->id, t[i].applied, t[i].unchanged, t[i].ignored_old,
               t[i].ignored_duplicate, t[i].clamps);
        if (!t[i].has_data)
            continue;
        char iso[40];
        fg_iso(iso, sizeof iso, t[i].ts_ms);
        printf("lot %s occupied %" PRId64 "\n", l->id, t[i].occupied);
        printf("lot %s free %" PRId64 "\n", l->id, l->capacity - t[i].occupied);
        printf("lot %s ts %s\n", l->id, iso);
        for (int j = 0; j < l->sensors; j++) {
            if (l->source == FG_BAY && t[i].bays[j].seen)
                printf("bay %s b%03d %d\n", l->id, j, t[i].bays[j].occupied ? 1 : 0);
            if (l->source == FG_GATE && t[i].gate_has_seq[j])
                printf("gateseq %s g%d %" PRIu64 "\n", l->id, j, t[i].gate_seq[j]);
        }
    }
    for (int i = 0; i < s->n_lots; i++) {
        free(t[i].bays);
        free(t[i].gate_has_seq);
        free(t[i].gate_seq);
    }
    free(t);
    return 0;
}

/* ---- publishing ---- */

typedef struct fg_pub {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    long acked;             /* PUBACKs received */
    int connects;
    bool connected;
} fg_pub;

static volatile sig_atomic_t fg_resume;

static void fg_on_usr1(int sig)
{
    (void)sig;
    fg_resume = 1;
}

static double fg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fg_on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    fg_pub *p = obj;
    pthread_mutex_lock(&p->mu);
    if (rc == 0) {
        p->connects++;
        p->connected = true;
    }
    pthread_mutex_unlock(&p->mu);
    if (rc != 0)
        fprintf(stderr, "faultgen: connection refused: %s\n", mosquitto_connack_string(rc));
    else if (p->connects > 1)
        fprintf(stderr, "faultgen: reconnected (%d)\n", p->connects - 1);
}

static void fg_on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    fg_pub *p = obj;
    pthread_mutex_lock(&p->mu);
    p->connected = false;
    pthread_mutex_unlock(&p->mu);
    if (rc != 0)
        fprintf(stderr, "faultgen: connection lost (%s); reconnecting\n", mosquitto_strerror(rc));
}

static void fg_on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    fg_pub *p = obj;
    pthread_mutex_lock(&p->mu);
    p->acked++;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

/* Waits until at most MAX_OUT of PUBLISHED are unacknowledged, or DEADLINE (monotonic seconds,
 * 0: none) has passed; -1 on timeout. */
static int fg_wait_acks(fg_pub *p, long published, long max_out, double deadline)
{
    pthread_mutex_lock(&p->mu);
    while (published - p->acked > max_out) {
        if (deadline > 0 && fg_now() > deadline) {
            pthread_mutex_unlock(&p->mu);
            return -1;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cond, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static bool fg_listed(const long *list, int n, long i)
{
    for (int k = 0; k < n; k++) {
        if (list[k] == i)
            return true;
    }
    return false;
}

/* The pause: every event before it is acknowledged; then "paused K" on stdout, and on until
 * SIGUSR1 or a line on standard input (an empty or closed stdin only waits for the signal). */
static int fg_pause(fg_pub *p, long published, long i, const fg_opts *o)
{
    if (fg_wait_acks(p, published, 0, fg_now() + o->timeout_s) < 0) {
        fprintf(stderr, "faultgen: pause at %ld: PUBACKs missing after %d s\n", i, o->timeout_s);
        return -1;
    }
    printf("paused %ld\n", i);
    fflush(stdout);
    bool stdin_open = true;
    while (!fg_resume) {
        if (!stdin_open) {
            usleep(20000);
            continue;
        }
        struct pollfd pfd = { .fd = 0, .events = POLLIN };
        int rc = poll(&pfd, 1, 20);
        if (rc > 0) {
            char line[256];
            if (fgets(line, sizeof line, stdin))
                break;
            stdin_open = false;
        } else if (rc < 0 && errno != EINTR) {
            stdin_open = false;
        }
    }
    fg_resume = 0;
    printf("resumed %ld\n", i);
    fflush(stdout);
    return 0;
}

static int fg_connect(struct mosquitto *mosq, const fg_opts *o)
{
    double deadline = fg_now() + o->timeout_s;
    for (;;) {
        int rc = mosquitto_connect_async(mosq, o->host, o->port, 10);
        if (rc == MOSQ_ERR_SUCCESS)
            return 0;
        if (fg_now() > deadline) {
            fprintf(stderr, "faultgen: cannot connect to %s:%d: %s\n", o->host, o->port,
                    rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
            return -1;
        }
        usleep(200000);
    }
}

static int fg_publish(const fg_stream *s, const fg_opts *o)
{
    fg_pub p = { .acked = 0 };
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cond, NULL);
    signal(SIGUSR1, fg_on_usr1);
    char id[64];
    if (!o->client_id)
        snprintf(id, sizeof id, "faultgen-%d", (int)getpid());
    struct mosquitto *mosq = mosquitto_new(o->client_id ? o->client_id : id, true, &p);
    if (!mosq) {
        fprintf(stderr, "faultgen: mosquitto_new: %s\n", strerror(errno));
        return 1;
    }
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(mosq, (unsigned)o->window);
    mosquitto_reconnect_delay_set(mosq, 1, 1, false);
    mosquitto_connect_callback_set(mosq, fg_on_connect);
    mosquitto_disconnect_callback_set(mosq, fg_on_disconnect);
    mosquitto_publish_callback_set(mosq, fg_on_publish);
    int status = 1;
    if (fg_connect(mosq, o) < 0)
        goto out;
    int rc = mosquitto_loop_start(mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "faultgen: loop_start: %s\n", mosquitto_strerror(rc));
        goto out;
    }
    double t0 = fg_now();
    long published = 0;
    for (long i = o->from; i < o->to; i++) {
        if (fg_listed(o->pause_at, o->n_pause, i)) {
            if (fg_pause(&p, published, i, o) < 0)
                goto stop;
            t0 = fg_now() - (o->rate > 0 ? (double)(i - o->from) / o->rate : 0);
        }
        if (fg_listed(o->mark_at, o->n_mark, i)) {
            printf("mark %ld\n", i);
            fflush(stdout);
        }
        if (o->rate > 0) {
            double due = t0 + (double)(i - o->from) / o->rate;
            double wait = due - fg_now();
            if (wait > 0)
                usleep((useconds_t)(wait * 1e6));
        }
        if (fg_wait_acks(&p, published, o->window - 1, fg_now() + o->timeout_s) < 0) {
            fprintf(stderr, "faultgen: no PUBACK for %d s at event %ld\n", o->timeout_s, i);
            goto stop;
        }
        const fg_event *e = &s->ev[i];
        /* While disconnected, libmosquitto 2.0 queues a QoS 1 message and still answers
         * MOSQ_ERR_NO_CONN; it sends it after the reconnect. Publishing it again would send
         * it twice. */
        rc = mosquitto_publish(mosq, NULL, e->topic, e->payload_len, e->payload, 1, false);
        if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN) {
            fprintf(stderr, "faultgen: publish %ld: %s\n", i, mosquitto_strerror(rc));
            goto stop;
        }
        published++;
    }
    if (fg_wait_acks(&p, published, 0, fg_now() + o->timeout_s) < 0) {
        fprintf(stderr, "faultgen: %ld of %ld PUBACKs after %d s\n", p.acked, published,
                o->timeout_s);
        goto stop;
    }
    double dt = fg_now() - t0;
    if (!o->quiet)
        printf("done %ld..%ld published %ld acked %ld reconnects %d seconds %.2f rate %.0f/s\n",
               o->from, o->to, published, p.acked, p.connects > 0 ? p.connects - 1 : 0, dt,
               dt > 0 ? (double)published / dt : 0.0);
    fflush(stdout);
    status = 0;
stop:
    mosquitto_disconnect(mosq);
    mosquitto_loop_stop(mosq, status != 0);
out:
    mosquitto_destroy(mosq);
    pthread_cond_destroy(&p.cond);
    pthread_mutex_destroy(&p.mu);
    return status;
}

/* ---- main ---- */

static void fg_usage(FILE *out)
{
    fprintf(out,
            "usage: faultgen [options] lots|events|truth|publish\n"
            "stream:  -s SEED (1)  -n EVENTS (20000)  --bay-lots N (2)  --bays N (200)\n"
            "         --gate-lots N (2)  --gates N (4)  --gate-share PERCENT (40)\n"
            "         --base-ts EPOCH_SECONDS (1700000000)  -t PREFIX (parking)\n"
            "slice:   --from I (0)  --to J (EVENTS): events [I, J); truth uses [0, J)\n"
            "publish: -h HOST (127.0.0.1)  -p PORT (1883)  -i CLIENT_ID (faultgen-PID)\n"
            "         -r RATE events/s (0: as fast as the window allows)  -w WINDOW (100)\n"
            "         --pause-at K: once events before K are acknowledged print \"paused K\"\n"
            "           and wait for SIGUSR1 or a line on stdin (repeatable)\n"
            "         --mark-at K: print \"mark K\" when event K is about to go (repeatable)\n"
            "         --timeout S (120): for PUBACKs and pauses; -q: no summary line\n");
}

static long fg_long(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0) {
        fprintf(stderr, "faultgen: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

static void fg_parse(int argc, char **argv, fg_opts *o)
{
    enum { O_BAY_LOTS = 256, O_BAYS, O_GATE_LOTS, O_GATES, O_GATE_SHARE, O_BASE_TS, O_FROM, O_TO,
           O_PAUSE, O_MARK, O_TIMEOUT, O_HELP };
    static const struct option opts[] = {
        { "bay-lots", required_argument, NULL, O_BAY_LOTS },
        { "bays", required_argument, NULL, O_BAYS },
        { "gate-lots", required_argument, NULL, O_GATE_LOTS },
        { "gates", required_argument, NULL, O_GATES },
        { "gate-share", required_argument, NULL, O_GATE_SHARE },
        { "base-ts", required_argument, NULL, O_BASE_TS },
        { "from", required_argument, NULL, O_FROM },
        { "to", required_argument, NULL, O_TO },
        { "pause-at", required_argument, NULL, O_PAUSE },
        { "mark-at", required_argument, NULL, O_MARK },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    *o = (fg_opts){ .host = "127.0.0.1", .port = 1883, .prefix = "parking", .seed = 1,
                    .n = 20000, .bay_lots = 2, .bays = 200, .gate_lots = 2, .gates = 4,
                    .gate_share = 40, .base_ts = 1700000000, .from = 0, .to = -1, .window = 100,
                    .timeout_s = 120 };
    int c;
    while ((c = getopt_long(argc, argv, "h:p:t:i:s:n:r:w:q", opts, NULL)) != -1) {
        switch (c) {
        case 'h': o->host = optarg; break;
        case 'p': o->port = (int)fg_long(optarg, "port"); break;
        case 't': o->prefix = optarg; break;
        case 'i': o->client_id = optarg; break;
        case 's': o->seed = strtoull(optarg, NULL, 10); break;
        case 'n': o->n = fg_long(optarg, "event count"); break;
        case 'r': o->rate = strtod(optarg, NULL); break;
        case 'w': o->window = (int)fg_long(optarg, "window"); break;
        case 'q': o->quiet = true; break;
        case O_BAY_LOTS: o->bay_lots = (int)fg_long(optarg, "--bay-lots"); break;
        case O_BAYS: o->bays = (int)fg_long(optarg, "--bays"); break;
        case O_GATE_LOTS: o->gate_lots = (int)fg_long(optarg, "--gate-lots"); break;
        case O_GATES: o->gates = (int)fg_long(optarg, "--gates"); break;
        case O_GATE_SHARE: o->gate_share = (int)fg_long(optarg, "--gate-share"); break;
        case O_BASE_TS: o->base_ts = fg_long(optarg, "--base-ts"); break;
        case O_FROM: o->from = fg_long(optarg, "--from"); break;
        case O_TO: o->to = fg_long(optarg, "--to"); break;
        case O_PAUSE:
        case O_MARK:
            if ((c == O_PAUSE ? o->n_pause : o->n_mark) >= FG_MARKS_MAX) {
                fprintf(stderr, "faultgen: at most %d of each of --pause-at, --mark-at\n",
                        FG_MARKS_MAX);
                exit(2);
            }
            if (c == O_PAUSE)
                o->pause_at[o->n_pause++] = fg_long(optarg, "--pause-at");
            else
                o->mark_at[o->n_mark++] = fg_long(optarg, "--mark-at");
            break;
        case O_TIMEOUT: o->timeout_s = (int)fg_long(optarg, "--timeout"); break;
        case O_HELP: fg_usage(stdout); exit(0);
        default: fg_usage(stderr); exit(2);
        }
    }
    if (optind + 1 != argc) {
        fg_usage(stderr);
        exit(2);
    }
    o->mode = argv[optind];
    if (o->to < 0 || o->to > o->n)
        o->to = o->n;
    if (o->from > o->to || o->window < 1 || o->bay_lots + o->gate_lots < 1 ||
        (o->bay_lots && o->bays < 1) || (o->gate_lots && o->gates < 1) || o->bays > 1000 ||
        o->gate_share > 100 || o->timeout_s < 1) {
        fprintf(stderr, "faultgen: inconsistent options\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    fg_opts o;
    fg_parse(argc, argv, &o);
    fg_stream s = { 0 };
    fg_generate(&s, &o);
    int rc = 0;
    if (strcmp(o.mode, "lots") == 0) {
        for (int i = 0; i < s.n_lots; i++)
            printf("  - {id: %s, capacity: %" PRId64 ", source: %s}\n", s.lots[i].id,
                   s.lots[i].capacity, s.lots[i].source == FG_BAY ? "bays" : "gates");
    } else if (strcmp(o.mode, "events") == 0) {
        for (long i = o.from; i < o.to; i++)
            printf("%ld %s %s\n", i, s.ev[i].topic, s.ev[i].payload);
    } else if (strcmp(o.mode, "truth") == 0) {
        rc = fg_truth(&s, &o);
    } else if (strcmp(o.mode, "publish") == 0) {
        mosquitto_lib_init();
        rc = fg_publish(&s, &o);
        mosquitto_lib_cleanup();
    } else {
        fg_usage(stderr);
        rc = 2;
    }
    free(s.ev);
    free(s.lots);
    return rc;
}
