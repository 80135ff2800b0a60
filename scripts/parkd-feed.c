/* parkd-feed: replays a car-park occupancy CSV onto MQTT as parkd `count` messages.
 *
 * Reads every row of the CSV, converts its local time stamp to UTC (across DST changes), sorts
 * the rows by time (stable) and publishes each as
 *     <prefix>/<lot>/count   {"occupied": N, "ts": "YYYY-MM-DDTHH:MM:SSZ"}
 * paced by a message rate or a speed-up of real time. It uses a plain blocking libmosquitto
 * loop (this is a tool, not the daemon) and waits for every publish to be acknowledged before
 * it prints its summary. Exit status: 0 done, 1 error, 128+signal when interrupted. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#define FEED_ID_MAX 64          /* parkd ids are [A-Za-z0-9][A-Za-z0-9_.-]{0,63} */
#define FEED_MAX_WARNINGS 10    /* per-row warnings printed before they are only counted */

struct feed_opts {
    const char *host;
    int port;
    const char *prefix;
    int qos;
    double rate;               /* messages per second, 0 = as fast as possible */
    double speedup;            /* > 0: replay at this multiple of real time */
    const char *tz;
    long limit;                /* < 0: no limit */
    double days_from_end;      /* <= 0: everything */
    const char *id_col, *count_col, *capacity_col, *time_col;
    bool with_capacity;
    bool skip_bad;
    bool verbose;
    long progress_every;
    int inflight;              /* most unacknowledged publishes at once */
    double ack_timeout;        /* seconds to wait for the last acknowledgements */
    double reconnect_timeout;  /* seconds to keep trying after a lost connection */
    const char *client_id;
    bool dry_run;
    const char *csv;
};

struct feed_row {
    time_t t;                  /* event time, seconds since the epoch (UTC) */
    size_t seq;                /* input order, makes the sort stable */
    long occupied;
    long capacity;             /* -1 when not read */
    size_t lot;                /* index into feed_data.lots */
};

struct feed_data {
    struct feed_row *rows;
    size_t n, cap;
    char **lots;               /* mapped lot ids, owned */
    size_t nlots, lots_cap;
    size_t bad_rows;           /* unparseable rows, skipped */
    size_t bad_ids;            /* ids that cannot become valid parkd ids, skipped */
    size_t negative;           /* rows with a negative count, left out under --skip-bad */
};

struct feed_conn {
    struct mosquitto *mosq;
    bool connected;
    int connack_rc;            /* -1 until a CONNACK arrived */
    unsigned long sent;        /* publishes handed to libmosquitto */
    unsigned long acked;       /* on_publish callbacks */
};

static volatile sig_atomic_t feed_signal;

static void feed_on_signal(int sig)
{
    feed_signal = sig;
}

static void die_oom(void)
{
    fputs("parkd-feed: out of memory\n", stderr);
    exit(1);
}

static void *xrealloc(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        die_oom();
    p = realloc(p, n * size > 0 ? n * size : 1);
    if (!p)
        die_oom();
    return p;
}

static void warn_row(const char *file, unsigned long line, size_t *count, const char *fmt, ...)
{
    va_list ap;

    if (++*count > FEED_MAX_WARNINGS)
        return;
    fprintf(stderr, "parkd-feed: %s:%lu: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(*count == FEED_MAX_WARNINGS ? " (further such rows not shown)\n" : "\n", stderr);
}

static double now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void format_utc(time_t t, char *buf, size_t len)
{
    struct tm tm;

    if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, len, "%lld", (long long)t);
}

/* ---- CSV -------------------------------------------------------------------------------- */

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Splits a CSV line in place into fields (RFC 4180 quoting, no embedded newlines), storing up
 * to max pointers into line. Returns the number of fields, or -1 on a quoting error. */
static int csv_split(char *line, char **fields, int max)
{
    char *p = line;
    int n = 0;

    for (;;) {
        char *start = p, *out = p, sep;

        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0')
                    return -1;
                if (*p == '"') {
                    if (p[1] != '"') {
                        p++;
                        break;
                    }
                    p++;
                }
                *out++ = *p++;
            }
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p != ',' && *p != '\0')
                return -1;
        } else {
            while (*p != ',' && *p != '\0')
                p++;
            out = p;
        }
        sep = *p;
        *out = '\0';
        if (n < max)
            fields[n] = trim(start);
        if (n == INT_MAX)
            return -1;
        n++;
        if (sep == '\0')
            return n;
        p++;
    }
}

static int parse_long(const char *s, long *v)
{
    char *end;

    errno = 0;
    *v = strtol(s, &end, 10);
    return (end == s || *end != '\0' || errno) ? -1 : 0;
}

static int parse_digits(const char **p, int k, int *v)
{
    int x = 0;

    for (int i = 0; i < k; i++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        x = x * 10 + (*(*p)++ - '0');
    }
    *v = x;
    return 0;
}

/* Parses "YYYY-MM-DD[ T]HH:MM[:SS][.fff][Z]" as local time of the current TZ (or UTC with a
 * trailing Z) into seconds since the epoch; fractions of a second are dropped. mktime with
 * tm_isdst = -1 picks the zone's offset for that date, so BST and GMT dates both come out right. */
static int parse_time(const char *s, time_t *out)
{
    struct tm tm = { 0 };
    int Y, M, D, h, m, sec = 0;
    bool utc = false;
    time_t t;

    if (parse_digits(&s, 4, &Y) || *s++ != '-' || parse_digits(&s, 2, &M) || *s++ != '-' ||
        parse_digits(&s, 2, &D) || (*s != ' ' && *s != 'T') || !*s++ ||
        parse_digits(&s, 2, &h) || *s++ != ':' || parse_digits(&s, 2, &m))
        return -1;
    if (*s == ':') {
        s++;
        if (parse_digits(&s, 2, &sec))
            return -1;
        if (*s == '.') {
            s++;
            if (!isdigit((unsigned char)*s))
                return -1;
            while (isdigit((unsigned char)*s))
                s++;
        }
    }
    if (*s == 'Z') {
        utc = true;
        s++;
    }
    if (*s != '\0' || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;

    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    t = utc ? timegm(&tm) : mktime(&tm);
    if (t == (time_t)-1 || tm.tm_mday != D || tm.tm_mon != M - 1)
        return -1;      /* out of range, or a day that does not exist (2016-02-30) */
    *out = t;
    return 0;
}

/* Maps a source id to a parkd id: every character outside [A-Za-z0-9_.-] becomes '_'.
 * Returns -1 if the result still is not a valid id (empty, too long, bad first character). */
static int map_id(const char *src, char *dst, size_t len)
{
    size_t n = strlen(src);

    if (n == 0 || n > FEED_ID_MAX || n >= len)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (isascii(c) && (isalnum(c) || c == '_' || c == '.' || c == '-')) ? (char)c : '_';
    }
    dst[n] = '\0';
    return isalnum((unsigned char)dst[0]) ? 0 : -1;
}

/* Returns the index of lot id in d->lots, adding a copy if it is new. A linear scan: replay
 * files have tens to hundreds of lots, and rows of one lot tend to come together. */
static size_t intern_lot(struct feed_data *d, const char *id)
{
    static size_t last;

    if (last < d->nlots && strcmp(d->lots[last], id) == 0)
        return last;
    for (size_t i = 0; i < d->nlots; i++)
        if (strcmp(d->lots[i], id) == 0)
            return last = i;
    if (d->nlots == d->lots_cap) {
        d->lots_cap = d->lots_cap ? 2 * d->lots_cap : 64;
        d->lots = xrealloc(d->lots, d->lots_cap, sizeof *d->lots);
    }
    d->lots[d->nlots] = strdup(id);
    if (!d->lots[d->nlots])
        die_oom();
    return last = d->nlots++;
}

static int find_col(char **names, int n, const char *want, const char *file, const char *opt)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], want) == 0)
            return i;
    fprintf(stderr, "parkd-feed: %s: no column \"%s\" (%s) in the header; columns are:", file,
            want, opt);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "%s \"%s\"", i ? "," : "", names[i]);
    fputc('\n', stderr);
    return -1;
}

/* Reads the whole CSV into d. Returns 0, or -1 after printing why. */
static int read_csv(const struct feed_opts *o, struct feed_data *d)
{
    FILE *f = NULL;
    char *line = NULL, **fields = NULL;
    size_t linecap = 0;
    ssize_t len;
    unsigned long lineno = 0;
    int ncols, col_id, col_count, col_time, col_cap = -1, need, rc = -1;
    size_t warned = 0;

    f = strcmp(o->csv, "-") == 0 ? stdin : fopen(o->csv, "r");
    if (!f) {
        fprintf(stderr, "parkd-feed: cannot open %s: %s\n", o->csv, strerror(errno));
        return -1;
    }

    /* header */
    do {
        errno = 0;
        len = getline(&line, &linecap, f);
        lineno++;
        if (len < 0) {
            if (errno)
                fprintf(stderr, "parkd-feed: cannot read %s: %s\n", o->csv, strerror(errno));
            else
                fprintf(stderr, "parkd-feed: %s: empty file, no header line\n", o->csv);
            goto out;
        }
        line[strcspn(line, "\r\n")] = '\0';
    } while (*trim(line) == '\0');
    if (strncmp(line, "\xEF\xBB\xBF", 3) == 0)         /* UTF-8 byte order mark */
        memmove(line, line + 3, strlen(line + 3) + 1);
    {
        /* count the columns on a copy, since splitting cuts the line */
        char *copy = strdup(line);

        if (!copy)
            die_oom();
        ncols = csv_split(copy, NULL, 0);
        free(copy);
    }
    if (ncols < 1) {
        fprintf(stderr, "parkd-feed: %s:%lu: bad header line\n", o->csv, lineno);
        goto out;
    }
    fields = xrealloc(NULL, (size_t)ncols, sizeof *fields);
    csv_split(line, fields, ncols);
    if ((col_id = find_col(fields, ncols, o->id_col, o->csv, "--id-col")) < 0 ||
        (col_count = find_col(fields, ncols, o->count_col, o->csv, "--count-col")) < 0 ||
        (col_time = find_col(fields, ncols, o->time_col, o->csv, "--time-col")) < 0 ||
        (o->with_capacity &&
         (col_cap = find_col(fields, ncols, o->capacity_col, o->csv, "--capacity-col")) < 0))
        goto out;
    need = col_id;
    if (col_count > need)
        need = col_count;
    if (col_time > need)
        need = col_time;
    if (col_cap > need)
        need = col_cap;

    /* rows */
    for (;;) {
        char id[FEED_ID_MAX + 1];
        struct feed_row r;
        int n;

        errno = 0;
        len = getline(&line, &linecap, f);
        if (len < 0) {
            if (ferror(f)) {
                fprintf(stderr, "parkd-feed: cannot read %s: %s\n", o->csv, strerror(errno));
                goto out;
            }
            break;
        }
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (*trim(line) == '\0')
            continue;
        n = csv_split(line, fields, ncols);
        if (n <= need) {
            warn_row(o->csv, lineno, &warned, n < 0 ? "bad quoting, row skipped" :
                     "only %d fields, row skipped", n);
            d->bad_rows++;
            continue;
        }
        if (map_id(fields[col_id], id, sizeof id)) {
            warn_row(o->csv, lineno, &warned, "id \"%s\" cannot be a parkd id, row skipped",
                     fields[col_id]);
            d->bad_ids++;
            continue;
        }
        if (parse_long(fields[col_count], &r.occupied)) {
            warn_row(o->csv, lineno, &warned, "%s \"%s\" is not an integer, row skipped",
                     o->count_col, fields[col_count]);
            d->bad_rows++;
            continue;
        }
        if (parse_time(fields[col_time], &r.t)) {
            warn_row(o->csv, lineno, &warned, "%s \"%s\" is not a time, row skipped",
                     o->time_col, fields[col_time]);
            d->bad_rows++;
            continue;
        }
        r.capacity = -1;
        if (col_cap >= 0 && (parse_long(fields[col_cap], &r.capacity) || r.capacity < 0)) {
            warn_row(o->csv, lineno, &warned, "%s \"%s\" is not a capacity, row skipped",
                     o->capacity_col, fields[col_cap]);
            d->bad_rows++;
            continue;
        }
        if (r.occupied < 0 && o->skip_bad) {
            d->negative++;
            continue;
        }
        r.seq = d->n;
        r.lot = intern_lot(d, id);
        if (d->n == d->cap) {
            d->cap = d->cap ? 2 * d->cap : 4096;
            d->rows = xrealloc(d->rows, d->cap, sizeof *d->rows);
        }
        d->rows[d->n++] = r;
    }
    rc = 0;
out:
    free(fields);
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

static int row_cmp(const void *a, const void *b)
{
    const struct feed_row *x = a, *y = b;

    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static size_t count_negative(const struct feed_data *d, size_t first, size_t last)
{
    size_t n = 0;

    for (size_t i = first; i < last; i++)
        n += d->rows[i].occupied < 0;
    return n;
}

static void free_data(struct feed_data *d)
{
    for (size_t i = 0; i < d->nlots; i++)
        free(d->lots[i]);
    free(d->lots);
    free(d->rows);
}

/* ---- MQTT ------------------------------------------------------------------------------- */

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    struct feed_conn *c = obj;

    (void)mosq;
    c->connack_rc = rc;
    c->connected = rc == 0;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    struct feed_conn *c = obj;

    (void)mosq;
    (void)rc;
    c->connected = false;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    struct feed_conn *c = obj;

    (void)mosq;
    (void)mid;
    c->acked++;
}

/* Runs the network loop for up to timeout seconds, reconnecting after a lost connection for
 * up to o->reconnect_timeout. Returns 0, or -1 after printing why the connection is gone. */
static int conn_run(struct feed_conn *c, const struct feed_opts *o, double timeout)
{
    int rc, ms = (int)(timeout * 1000.0);
    double give_up;

    rc = mosquitto_loop(c->mosq, ms < 0 ? 0 : ms, 1);
    if (rc == MOSQ_ERR_SUCCESS && (c->connected || c->connack_rc < 0))
        return 0;
    if (c->connack_rc > 0) {
        fprintf(stderr, "parkd-feed: broker %s:%d refused the connection: %s\n", o->host,
                o->port, mosquitto_connack_string(c->connack_rc));
        return -1;
    }
    fprintf(stderr, "parkd-feed: lost the connection to %s:%d (%s), reconnecting\n", o->host,
            o->port, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    give_up = now_mono() + o->reconnect_timeout;
    while (!feed_signal && now_mono() < give_up) {
        c->connack_rc = -1;
        if (mosquitto_reconnect(c->mosq) == MOSQ_ERR_SUCCESS) {
            double t = now_mono() + 5.0;

            while (c->connack_rc < 0 && !feed_signal && now_mono() < t &&
                   mosquitto_loop(c->mosq, 100, 1) == MOSQ_ERR_SUCCESS)
                ;
            if (c->connected) {
                fprintf(stderr, "parkd-feed: reconnected\n");
                return 0;
            }
        }
        usleep(500 * 1000);
    }
    fprintf(stderr, "parkd-feed: could not reconnect to %s:%d\n", o->host, o->port);
    return -1;
}

static int conn_open(struct feed_conn *c, const struct feed_opts *o)
{
    char id[64];
    double deadline;
    int rc;

    if (o->client_id)
        snprintf(id, sizeof id, "%s", o->client_id);
    else
        snprintf(id, sizeof id, "parkd-feed-%ld", (long)getpid());
    c->connack_rc = -1;
    c->mosq = mosquitto_new(id, true, c);
    if (!c->mosq) {
        fprintf(stderr, "parkd-feed: mosquitto_new: %s\n", strerror(errno));
        return -1;
    }
    mosquitto_connect_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
    mosquitto_publish_callback_set(c->mosq, on_publish);
    mosquitto_max_inflight_messages_set(c->mosq, (unsigned)o->inflight);

    rc = mosquitto_connect(c->mosq, o->host, o->port, 30);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "parkd-feed: cannot connect to %s:%d: %s\n", o->host, o->port,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        return -1;
    }
    deadline = now_mono() + 10.0;
    while (c->connack_rc < 0 && !feed_signal) {
        if (now_mono() > deadline) {
            fprintf(stderr, "parkd-feed: no CONNACK from %s:%d within 10 s\n", o->host, o->port);
            return -1;
        }
        rc = mosquitto_loop(c->mosq, 100, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "parkd-feed: connecting to %s:%d: %s\n", o->host, o->port,
                    rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
            return -1;
        }
    }
    if (c->connack_rc > 0) {
        fprintf(stderr, "parkd-feed: broker %s:%d refused the connection: %s\n", o->host,
                o->port, mosquitto_connack_string(c->connack_rc));
        return -1;
    }
    return feed_signal ? -1 : 0;
}

/* ---- replay ----------------------------------------------------------------------------- */

static int format_message(const struct feed_opts *o, const struct feed_data *d,
                          const struct feed_row *r, char *topic, size_t tlen,
                          char *payload, size_t plen)
{
    char ts[32];
    int n;

    format_utc(r->t, ts, sizeof ts);
    n = snprintf(topic, tlen, "%s/%s/count", o->prefix, d->lots[r->lot]);
    if (n < 0 || (size_t)n >= tlen)
        return -1;
    if (o->with_capacity)
        n = snprintf(payload, plen, "{\"occupied\": %ld, \"capacity\": %ld, \"ts\": \"%s\"}",
                     r->occupied, r->capacity, ts);
    else
        n = snprintf(payload, plen, "{\"occupied\": %ld, \"ts\": \"%s\"}", r->occupied, ts);
    return (n < 0 || (size_t)n >= plen) ? -1 : n;
}

/* Publishes rows [first, last) paced per the options. Returns 0, or -1 on a fatal error. */
static int replay(const struct feed_opts *o, const struct feed_data *d, struct feed_conn *c,
                  size_t first, size_t last, double *t_start)
{
    char topic[512], payload[256];
    double start = now_mono();

    *t_start = start;
    for (size_t i = first; i < last && !feed_signal; i++) {
        const struct feed_row *r = &d->rows[i];
        double due = start;
        int len, rc;

        if (o->speedup > 0)
            due += (double)(r->t - d->rows[first].t) / o->speedup;
        else if (o->rate > 0)
            due += (double)(i - first) / o->rate;

        /* wait until the row is due and the window of unacknowledged publishes has room */
        for (;;) {
            double now = now_mono(), wait = due - now;
            bool window_full = o->qos > 0 && c->sent - c->acked >= (unsigned long)o->inflight;

            if (feed_signal)
                return 0;
            if (wait <= 0 && !window_full && c->connected)
                break;
            if (window_full || !c->connected || wait > 0.1)
                wait = 0.1;
            if (wait < 0)
                wait = 0;
            if (conn_run(c, o, wait))
                return -1;
        }

        len = format_message(o, d, r, topic, sizeof topic, payload, sizeof payload);
        if (len < 0) {
            fprintf(stderr, "parkd-feed: topic or payload too long for %s\n", d->lots[r->lot]);
            return -1;
        }
        rc = mosquitto_publish(c->mosq, NULL, topic, len, payload, o->qos, false);
        if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) {
            c->connected = false;
            i--;                                 /* try this row again once reconnected */
            continue;
        }
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "parkd-feed: publish %s: %s\n", topic, mosquitto_strerror(rc));
            return -1;
        }
        c->sent++;
        /* read acknowledgements without blocking, so the window keeps moving */
        if (conn_run(c, o, 0))
            return -1;

        if (o->verbose && c->sent % (unsigned long)o->progress_every == 0) {
            char ts[32];
            double el = now_mono() - start;

            format_utc(r->t, ts, sizeof ts);
            printf("parkd-feed: %lu/%zu rows sent, event time %s, %.1f s, %.0f msgs/s\n",
                   c->sent, last - first, ts, el, el > 0 ? (double)c->sent / el : 0.0);
            fflush(stdout);
        }
    }
    return 0;
}

/* Waits until every publish is acknowledged. Returns 0, or -1 on timeout or a lost broker. */
static int wait_acks(const struct feed_opts *o, struct feed_conn *c, double timeout)
{
    double deadline = now_mono() + timeout;

    while (c->acked < c->sent) {
        if (now_mono() > deadline) {
            fprintf(stderr, "parkd-feed: %lu of %lu publishes not acknowledged after %.0f s\n",
                    c->sent - c->acked, c->sent, timeout);
            return -1;
        }
        if (conn_run(c, o, 0.1))
            return -1;
    }
    return 0;
}

/* ---- options ---------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fputs("usage: parkd-feed [options] CSV\n"
          "Replays a car-park occupancy CSV (\"-\" = stdin) to MQTT as parkd count messages:\n"
          "  <prefix>/<lot>/count  {\"occupied\": N, \"ts\": \"YYYY-MM-DDTHH:MM:SSZ\"}\n"
          "rows sorted by time; lot ids with characters outside [A-Za-z0-9_.-] mapped to '_'.\n"
          "\n"
          "  --host H              broker host (127.0.0.1)\n"
          "  --port P              broker port (1883)\n"
          "  --prefix P            topic prefix (parking)\n"
          "  --qos Q               0, 1 or 2 (1)\n"
          "  --rate N              messages per second, 0 = as fast as possible (0)\n"
          "  --speedup X           replay at X times real time instead of --rate\n"
          "  --tz ZONE             time zone of the CSV times (Europe/London)\n"
          "  --limit N             send at most N rows\n"
          "  --days-from-end D     only the rows of the last D days of the file\n"
          "  --id-col NAME         column of the lot id (SystemCodeNumber)\n"
          "  --count-col NAME      column of the occupied count (Occupancy)\n"
          "  --capacity-col NAME   column of the capacity (Capacity)\n"
          "  --time-col NAME       column of the local time (LastUpdated)\n"
          "  --with-capacity       also send \"capacity\" from --capacity-col\n"
          "  --skip-bad            do not send rows with a negative count\n"
          "  --inflight N          most unacknowledged publishes at once (100)\n"
          "  --ack-timeout S       seconds to wait for the last acknowledgements (30)\n"
          "  --reconnect-timeout S seconds to retry after losing the broker (10)\n"
          "  --client-id ID        MQTT client id (parkd-feed-<pid>)\n"
          "  --dry-run             print \"topic payload\" lines instead of publishing\n"
          "  --verbose             print progress every --progress-every rows (1000)\n"
          "  --help\n", out);
}

static int opt_long(const char *name, const char *s, long lo, long hi, long *v)
{
    if (parse_long(s, v) || *v < lo || *v > hi) {
        fprintf(stderr, "parkd-feed: %s: \"%s\" is not an integer in [%ld, %ld]\n", name, s, lo,
                hi);
        return -1;
    }
    return 0;
}

static int opt_double(const char *name, const char *s, double lo, double *v)
{
    char *end;

    errno = 0;
    *v = strtod(s, &end);
    if (end == s || *end || errno || !(*v >= lo) || *v > 1e12) {
        fprintf(stderr, "parkd-feed: %s: \"%s\" is not a number >= %g\n", name, s, lo);
        return -1;
    }
    return 0;
}

/* Fails on a zone name that is neither in the zone database nor a POSIX TZ rule, since glibc
 * silently treats an unknown name as UTC and every time stamp would be shifted. */
static int check_tz(const char *tz)
{
    const char *dir = getenv("TZDIR");
    char path[4096];

    if (*tz == '\0' || strstr(tz, ".."))
        goto bad;
    if (*tz == ':')
        tz++;
    if (*tz == '/')
        snprintf(path, sizeof path, "%s", tz);
    else
        snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    if (access(path, R_OK) == 0)
        return 0;
    if (strpbrk(tz, "0123456789"))   /* a POSIX rule such as GMT0BST,M3.5.0/1,M10.5.0 */
        return 0;
bad:
    fprintf(stderr, "parkd-feed: --tz: unknown time zone \"%s\"\n", tz);
    return -1;
}

static int parse_opts(int argc, char **argv, struct feed_opts *o)
{
    enum { O_HOST = 256, O_PORT, O_PREFIX, O_QOS, O_RATE, O_SPEEDUP, O_TZ, O_LIMIT, O_DAYS,
           O_IDCOL, O_COUNTCOL, O_CAPCOL, O_TIMECOL, O_WITHCAP, O_SKIPBAD, O_INFLIGHT,
           O_ACKTO, O_RECONN, O_CLIENTID, O_DRYRUN, O_VERBOSE, O_PROGRESS, O_HELP };
    static const struct option longopts[] = {
        { "host", required_argument, NULL, O_HOST },
        { "port", required_argument, NULL, O_PORT },
        { "prefix", required_argument, NULL, O_PREFIX },
        { "qos", required_argument, NULL, O_QOS },
        { "rate", required_argument, NULL, O_RATE },
        { "speedup", required_argument, NULL, O_SPEEDUP },
        { "tz", required_argument, NULL, O_TZ },
        { "limit", required_argument, NULL, O_LIMIT },
        { "days-from-end", required_argument, NULL, O_DAYS },
        { "id-col", required_argument, NULL, O_IDCOL },
        { "count-col", required_argument, NULL, O_COUNTCOL },
        { "capacity-col", required_argument, NULL, O_CAPCOL },
        { "time-col", required_argument, NULL, O_TIMECOL },
        { "with-capacity", no_argument, NULL, O_WITHCAP },
        { "skip-bad", no_argument, NULL, O_SKIPBAD },
        { "inflight", required_argument, NULL, O_INFLIGHT },
        { "ack-timeout", required_argument, NULL, O_ACKTO },
        { "reconnect-timeout", required_argument, NULL, O_RECONN },
        { "client-id", required_argument, NULL, O_CLIENTID },
        { "dry-run", no_argument, NULL, O_DRYRUN },
        { "verbose", no_argument, NULL, O_VERBOSE },
        { "progress-every", required_argument, NULL, O_PROGRESS },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    bool have_rate = false;
    long v;
    int ch;

    *o = (struct feed_opts){
        .host = "127.0.0.1", .port = 1883, .prefix = "parking", .qos = 1, .tz = "Europe/London",
        .limit = -1, .id_col = "SystemCodeNumber", .count_col = "Occupancy",
        .capacity_col = "Capacity", .time_col = "LastUpdated", .progress_every = 1000,
        .inflight = 100, .ack_timeout = 30, .reconnect_timeout = 10,
    };
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_HOST: o->host = optarg; break;
        case O_PORT:
            if (opt_long("--port", optarg, 1, 65535, &v))
                return -1;
            o->port = (int)v;
            break;
        case O_PREFIX: o->prefix = optarg; break;
        case O_QOS:
            if (opt_long("--qos", optarg, 0, 2, &v))
                return -1;
            o->qos = (int)v;
            break;
        case O_RATE:
            if (opt_double("--rate", optarg, 0, &o->rate))
                return -1;
            have_rate = true;
            break;
        case O_SPEEDUP:
            if (opt_double("--speedup", optarg, 0, &o->speedup))
                return -1;
            if (o->speedup <= 0) {
                fputs("parkd-feed: --speedup must be > 0\n", stderr);
                return -1;
            }
            break;
        case O_TZ: o->tz = optarg; break;
        case O_LIMIT:
            if (opt_long("--limit", optarg, 0, LONG_MAX, &o->limit))
                return -1;
            break;
        case O_DAYS:
            if (opt_double("--days-from-end", optarg, 0, &o->days_from_end))
                return -1;
            break;
        case O_IDCOL: o->id_col = optarg; break;
        case O_COUNTCOL: o->count_col = optarg; break;
        case O_CAPCOL: o->capacity_col = optarg; break;
        case O_TIMECOL: o->time_col = optarg; break;
        case O_WITHCAP: o->with_capacity = true; break;
        case O_SKIPBAD: o->skip_bad = true; break;
        case O_INFLIGHT:
            if (opt_long("--inflight", optarg, 1, 65535, &v))
                return -1;
            o->inflight = (int)v;
            break;
        case O_ACKTO:
            if (opt_double("--ack-timeout", optarg, 0, &o->ack_timeout))
                return -1;
            break;
        case O_RECONN:
            if (opt_double("--reconnect-timeout", optarg, 0, &o->reconnect_timeout))
                return -1;
            break;
        case O_CLIENTID: o->client_id = optarg; break;
        case O_DRYRUN: o->dry_run = true; break;
        case O_VERBOSE: o->verbose = true; break;
        case O_PROGRESS:
            if (opt_long("--progress-every", optarg, 1, LONG_MAX, &o->progress_every))
                return -1;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc - 1) {
        fputs(optind < argc ? "parkd-feed: exactly one CSV file, please\n" :
              "parkd-feed: no CSV file given\n", stderr);
        usage(stderr);
        return -1;
    }
    o->csv = argv[optind];
    if (have_rate && o->speedup > 0) {
        fputs("parkd-feed: --rate and --speedup exclude each other\n", stderr);
        return -1;
    }
    if (*o->prefix == '\0' || strpbrk(o->prefix, "+#")) {
        fputs("parkd-feed: --prefix must be non-empty and without + or #\n", stderr);
        return -1;
    }
    return check_tz(o->tz);
}

int main(int argc, char **argv)
{
    struct feed_opts o;
    struct feed_data d = { 0 };
    struct feed_conn c = { 0 };
    struct sigaction sa;
    size_t first = 0, last, negative;
    double t_start = 0, elapsed;
    char t0[32] = "-", t1[32] = "-";
    int rc = 1;

    if (parse_opts(argc, argv, &o))
        return 1;
    if (setenv("TZ", o.tz, 1)) {
        fprintf(stderr, "parkd-feed: setenv TZ: %s\n", strerror(errno));
        return 1;
    }
    tzset();

    if (read_csv(&o, &d))
        goto out;
    qsort(d.rows, d.n, sizeof *d.rows, row_cmp);
    last = d.n;
    if (o.days_from_end > 0 && d.n > 0) {
        double cut = (double)d.rows[d.n - 1].t - o.days_from_end * 86400.0;

        while (first < last && (double)d.rows[first].t < cut)
            first++;
    }
    if (o.limit >= 0 && (size_t)o.limit < last - first)
        last = first + (size_t)o.limit;
    if (first < last) {
        format_utc(d.rows[first].t, t0, sizeof t0);
        format_utc(d.rows[last - 1].t, t1, sizeof t1);
    }

    if (o.dry_run) {
        char topic[512], payload[256];

        for (size_t i = first; i < last; i++) {
            if (format_message(&o, &d, &d.rows[i], topic, sizeof topic, payload,
                               sizeof payload) < 0) {
                fprintf(stderr, "parkd-feed: topic or payload too long\n");
                goto out;
            }
            printf("%s %s\n", topic, payload);
        }
        fprintf(stderr, "parkd-feed: dry run, %zu rows from %zu lots, %s .. %s\n", last - first,
                d.nlots, t0, t1);
        rc = fflush(stdout) ? 1 : 0;
        goto out;
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = feed_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    mosquitto_lib_init();
    if (conn_open(&c, &o))
        goto out_mosq;
    if (o.verbose)
        printf("parkd-feed: connected to %s:%d, sending %zu rows (%s .. %s)\n", o.host, o.port,
               last - first, t0, t1);
    if (replay(&o, &d, &c, first, last, &t_start))
        goto out_mosq;
    if (wait_acks(&o, &c, feed_signal ? 2.0 : o.ack_timeout))
        goto out_mosq;
    elapsed = now_mono() - t_start;
    if (c.sent < last - first) {                /* interrupted: report what was sent */
        last = first + c.sent;
        if (c.sent)
            format_utc(d.rows[last - 1].t, t1, sizeof t1);
    }
    printf("parkd-feed: %s%lu rows sent to %s:%d (qos %d) from %zu lots, %s .. %s, "
           "in %.1f s = %.0f msgs/s", feed_signal ? "interrupted: " : "", c.sent, o.host, o.port,
           o.qos, d.nlots, t0, t1, elapsed, elapsed > 0 ? (double)c.sent / elapsed : 0.0);
    if (o.skip_bad && d.negative)
        printf("; %zu rows with negative counts skipped", d.negative);
    else if (!o.skip_bad && (negative = count_negative(&d, first, last)))
        printf("; %zu of them with negative counts", negative);
    if (d.bad_rows || d.bad_ids)
        printf("; %zu unreadable rows and %zu bad ids skipped", d.bad_rows, d.bad_ids);
    printf("\n");
    fflush(stdout);
    mosquitto_disconnect(c.mosq);
    mosquitto_loop(c.mosq, 100, 1);   /* let the DISCONNECT go out */
    rc = feed_signal ? 128 + feed_signal : 0;
out_mosq:
    if (c.mosq)
        mosquitto_destroy(c.mosq);
    mosquitto_lib_cleanup();
out:
    free_data(&d);
    return rc;
}
