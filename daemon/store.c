#include "store.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "payload.h"
#include "util.h"

#define STORE_BACKOFF_MIN_MS 250
#define STORE_BACKOFF_MAX_MS 10000
#define STORE_FIELDS_PER_HSET 256   /* bays per HSET: keeps single commands small */
#define STORE_KEY_MAX 256

struct store {
    uv_loop_t *loop;
    const cfg_config *cfg;
    const store_callbacks *cb;
    void *ctx;
    redisAsyncContext *ac;      /* NULL while disconnected */
    bool ready;                 /* AUTH/SELECT done */
    bool closing;
    uv_timer_t reconnect_timer;
    uint64_t backoff_ms;
    uint64_t reconnects;
    bool batch_open;
    size_t batch_commands;
    struct store_bay_writer *bay_writer;    /* scratch argv space, reused every batch */
    struct store_gate_writer *gate_writer;
    size_t in_flight;
    void (*close_done)(void *ctx);
    void *close_ctx;
};

/* An argv under construction; numbers are formatted into its own slots. */
typedef struct store_args {
    int argc;
    const char *argv[2 + 2 * STORE_FIELDS_PER_HSET];
    size_t len[2 + 2 * STORE_FIELDS_PER_HSET];
    char num[2 + 2 * STORE_FIELDS_PER_HSET][40];
} store_args;

static void store_connect(store *s);

/* ---- hiredis on libuv ----
 * Our own copy of the hiredis libuv adapter: the one of hiredis 0.14 (Debian 12) drops poll
 * errors, and libuv reports a refused connect as one (UV_EBADF, with the watcher stopped), so a
 * connect to a Redis that is down never completed nor failed and parkd never retried. Here an
 * error is handed to hiredis as the events it waits for, so it reads the socket error itself
 * (as hiredis >= 1.0 does). */

typedef struct store_uv {
    redisAsyncContext *ac;      /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    int events;
} store_uv;

static void store_uv_on_poll(uv_poll_t *handle, int status, int events)
{
    store_uv *p = handle->data;
    int ev = status < 0 ? p->events : events;
    if (p->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void store_uv_update(store_uv *p, int add, int del)
{
    p->events = (p->events | add) & ~del;
    if (p->events)
        uv_poll_start(&p->poll, p->events, store_uv_on_poll);
    else
        uv_poll_stop(&p->poll);
}

static void store_uv_add_read(void *data) { store_uv_update(data, UV_READABLE, 0); }
static void store_uv_del_read(void *data) { store_uv_update(data, 0, UV_READABLE); }
static void store_uv_add_write(void *data) { store_uv_update(data, UV_WRITABLE, 0); }
static void store_uv_del_write(void *data) { store_uv_update(data, 0, UV_WRITABLE); }

static void store_uv_on_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void store_uv_cleanup(void *data)
{
    store_uv *p = data;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, store_uv_on_closed);
}

static int store_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data)
        return REDIS_ERR;
    store_uv *p = util_xcalloc(1, sizeof *p);
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    p->poll.data = p;
    p->ac = ac;
    ac->ev.data = p;
    ac->ev.addRead = store_uv_add_read;
    ac->ev.delRead = store_uv_del_read;
    ac->ev.addWrite = store_uv_add_write;
    ac->ev.delWrite = store_uv_del_write;
    ac->ev.cleanup = store_uv_cleanup;
    return REDIS_OK;
}

/* ---- connection ---- */

static void store_on_reconnect_timer(uv_timer_t *timer)
{
    store *s = timer->data;
    if (!s->closing && !s->ac)
        store_connect(s);
}

static void store_retry_later(store *s)
{
    if (s->closing)
        return;
    uv_timer_start(&s->reconnect_timer, store_on_reconnect_timer, s->backoff_ms, 0);
    s->backoff_ms = s->backoff_ms * 2 > STORE_BACKOFF_MAX_MS ? STORE_BACKOFF_MAX_MS
                                                               : s->backoff_ms * 2;
}

static const char *store_endpoint(const store *s, char *buf, size_t size)
{
    if (s->cfg->redis.socket)
        snprintf(buf, size, "%s", s->cfg->redis.socket);
    else
        snprintf(buf, size, "%s:%d", s->cfg->redis.host, s->cfg->redis.port);
    return buf;
}

static void store_on_handshake(redisAsyncContext *ac, void *r, void *privdata)
{
    store *s = privdata;
    redisReply *reply = r;
    if (!reply)
        return;     /* disconnected meanwhile; the disconnect callback handles it */
    if (ac->c.flags & REDIS_DISCONNECTING)
        return;     /* an earlier step (AUTH) failed and was logged; PING's NOAUTH is noise */
    if (reply->type == REDIS_REPLY_ERROR) {
        log_error("redis: setup failed: %s", reply->str);
        redisAsyncDisconnect(ac);
        return;
    }
    if (reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0) {
        char ep[300];
        s->ready = true;
        s->backoff_ms = STORE_BACKOFF_MIN_MS;
        log_info("redis: connected to %s, db %d", store_endpoint(s, ep, sizeof ep),
                 s->cfg->redis.db);
        s->cb->on_connected(s->ctx);
    }
}

static void store_send_handshake(store *s)
{
    const cfg_config *cfg = s->cfg;
    if (cfg->redis.password_file) {
        char *password = util_read_secret_file(cfg->redis.password_file);
        if (!password) {
            log_error("redis: cannot read password file %s: %s", cfg->redis.password_file,
                      strerror(errno));
        } else if (cfg->redis.username) {
            redisAsyncCommand(s->ac, store_on_handshake, s, "AUTH %s %s", cfg->redis.username,
                              password);
        } else {
            redisAsyncCommand(s->ac, store_on_handshake, s, "AUTH %s", password);
        }
        if (password) {
            explicit_bzero(password, strlen(password));
            free(password);
        }
    }
    if (cfg->redis.db != 0)
        redisAsyncCommand(s->ac, store_on_handshake, s, "SELECT %d", cfg->redis.db);
    redisAsyncCommand(s->ac, store_on_handshake, s, "PING");
}

static void store_on_connect(const redisAsyncContext *ac, int status)
{
    store *s = ac->data;
    char ep[300];
    if (status != REDIS_OK) {
        log_warning("redis: cannot connect to %s: %s", store_endpoint(s, ep, sizeof ep),
                    ac->errstr);
        s->ac = NULL;   /* hiredis frees the context after this callback */
        store_retry_later(s);
        return;
    }
    store_send_handshake(s);
}

static void store_on_timer_closed(uv_handle_t *handle);

static void store_on_disconnect(const redisAsyncContext *ac, int status)
{
    store *s = ac->data;
    bool was_ready = s->ready;
    s->ac = NULL;       /* freed by hiredis after this callback */
    s->ready = false;
    s->batch_open = false;
    if (s->closing) {
        uv_close((uv_handle_t *)&s->reconnect_timer, store_on_timer_closed);
        return;
    }
    if (status != REDIS_OK)
        log_warning("redis: connection lost: %s", ac->errstr);
    if (was_ready)
        s->cb->on_disconnected(s->ctx);
    store_retry_later(s);
}

static void store_connect(store *s)
{
    const cfg_config *cfg = s->cfg;
    char ep[300];
    s->reconnects++;
    s->ac = cfg->redis.socket ? redisAsyncConnectUnix(cfg->redis.socket)
                              : redisAsyncConnect(cfg->redis.host, cfg->redis.port);
    if (!s->ac || s->ac->err) {
        log_warning("redis: cannot connect to %s: %s", store_endpoint(s, ep, sizeof ep),
                    s->ac ? s->ac->errstr : "out of memory");
        if (s->ac)
            redisAsyncFree(s->ac);
        s->ac = NULL;
        store_retry_later(s);
        return;
    }
    s->ac->data = s;
    if (store_uv_attach(s->ac, s->loop) != REDIS_OK) {
        log_error("redis: cannot attach to the event loop");
        redisAsyncFree(s->ac);
        s->ac = NULL;
        store_retry_later(s);
        return;
    }
    redisAsyncSetConnectCallback(s->ac, store_on_connect);
    redisAsyncSetDisconnectCallback(s->ac, store_on_disconnect);
}

store *store_new(uv_loop_t *loop, const cfg_config *cfg, const store_callbacks *cb, void *ctx)
{
    store *s = util_xcalloc(1, sizeof *s);
    s->loop = loop;
    s->cfg = cfg;
    s->cb = cb;
    s->ctx = ctx;
    s->backoff_ms = STORE_BACKOFF_MIN_MS;
    uv_timer_init(loop, &s->reconnect_timer);
    s->reconnect_timer.data = s;
    return s;
}

void store_set_config(store *s, const cfg_config *cfg)
{
    s->cfg = cfg;
}

void store_reconnect(store *s)
{
    if (s->ac && (s->ac->c.flags & REDIS_CONNECTED)) {
        redisAsyncDisconnect(s->ac);    /* the disconnect callback schedules the reconnect */
        return;
    }
    if (s->ac) {
        redisAsyncFree(s->ac);
        s->ac = NULL;
    }
    uv_timer_stop(&s->reconnect_timer);
    store_connect(s);
}

int store_start(store *s)
{
    store_connect(s);
    s->reconnects = 0;
    return 0;
}

bool store_is_connected(const store *s)
{
    return s->ac && s->ready;
}

uint64_t store_reconnects(const store *s)
{
    return s->reconnects;
}

const char *store_prefix(const store *s)
{
    return s->cfg->redis.prefix;
}

/* ---- argv building ---- */

static void store_arg(store_args *a, const char *s, size_t len)
{
    a->argv[a->argc] = s;
    a->len[a->argc] = len;
    a->argc++;
}

static void store_arg_str(store_args *a, const char *s)
{
    store_arg(a, s, strlen(s));
}

static void store_arg_fmt(store_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void store_arg_fmt(store_args *a, const char *fmt, ...)
{
    char *slot = a->num[a->argc];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(slot, sizeof a->num[0], fmt, ap);
    va_end(ap);
    store_arg(a, slot, n < 0 ? 0 : (size_t)n);
}

static void store_arg_i64(store_args *a, int64_t v)
{
    store_arg_fmt(a, "%" PRId64, v);
}

static void store_arg_key(store_args *a, const store *s, const char *lot_id, const char *suffix)
{
    store_arg_fmt(a, "%slot:%s%s", s->cfg->redis.prefix, lot_id, suffix);
}

static char *store_put_uint(char *p, size_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* The Redis protocol written in one pass into one buffer: hiredis's own argv formatting grows
 * a string argument by argument, which was an eighth of parkd's CPU under load. */
static void store_send_argv(store *s, int argc, const char **argv, const size_t *len)
{
    size_t total = 16;
    for (int i = 0; i < argc; i++)
        total += len[i] + 24;
    char stack[8192];
    char *buf = total <= sizeof stack ? stack : util_xmalloc(total);
    char *p = buf;
    *p++ = '*';
    p = store_put_uint(p, (size_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        *p++ = '$';
        p = store_put_uint(p, len[i]);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, argv[i], len[i]);
        p += len[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    redisAsyncFormattedCommand(s->ac, NULL, NULL, buf, (size_t)(p - buf));
    if (buf != stack)
        free(buf);
}

static void store_send(store *s, store_args *a)
{
    if (!s->ac)
        return;
    if (!s->batch_open) {
        redisAsyncCommand(s->ac, NULL, NULL, "MULTI");
        s->batch_open = true;
    }
    store_send_argv(s, a->argc, a->argv, a->len);
    s->batch_commands++;
}

/* ---- lot writes ---- */

/* Configuration fields change only on start and reload; the rest with every input. Both go in
 * one HSET when both are due, and inside the batch's MULTI either way. */
static void store_lot_hash_static(store_args *a, const lot *l)
{
    store_arg_str(a, "name");
    store_arg_str(a, l->name);
    store_arg_str(a, "capacity");
    store_arg_i64(a, l->capacity);
    store_arg_str(a, "source");
    store_arg_str(a, cfg_source_name(l->source));
    store_arg_str(a, "lat");
    if (l->has_position) store_arg_fmt(a, "%.6f", l->lat); else store_arg_str(a, "");
    store_arg_str(a, "lon");
    if (l->has_position) store_arg_fmt(a, "%.6f", l->lon); else store_arg_str(a, "");
}

static void store_lot_hash(store *s, const lot *l, bool with_static, int64_t wall_ms)
{
    store_args a;
    a.argc = 0;
    store_arg_str(&a, "HSET");
    store_arg_key(&a, s, l->id, "");
    if (with_static)
        store_lot_hash_static(&a, l);
    store_arg_str(&a, "occupied");
    if (l->has_data) store_arg_i64(&a, l->occupied); else store_arg_str(&a, "");
    store_arg_str(&a, "free");
    if (l->has_data) store_arg_i64(&a, lot_free_spaces(l)); else store_arg_str(&a, "");
    store_arg_str(&a, "free_smoothed");
    if (l->has_data) store_arg_fmt(&a, "%.1f", l->smooth.smoothed); else store_arg_str(&a, "");
    store_arg_str(&a, "occupancy");
    if (l->has_data) store_arg_fmt(&a, "%.3f", lot_occupancy(l)); else store_arg_str(&a, "");
    store_arg_str(&a, "trend_per_hour");
    if (l->has_data) store_arg_fmt(&a, "%.1f", sm_trend_per_hour(&l->smooth)); else store_arg_str(&a, "");
    store_arg_str(&a, "status");
    store_arg_str(&a, lot_status_name(l->status));
    store_arg_str(&a, "stale");
    store_arg_str(&a, l->stale ? "1" : "0");
    store_arg_str(&a, "ts");
    if (l->has_data) {
        char *slot = a.num[a.argc];
        store_arg(&a, slot, pl_format_time(l->ts_ms, slot, sizeof a.num[0]));
    } else {
        store_arg_str(&a, "");
    }
    store_arg_str(&a, "updated_ms");
    store_arg_i64(&a, wall_ms);
    store_send(s, &a);
}

/* Exact values (%.17g round-trips a double) for the restore, apart from the display hash. */
static void store_lot_state(store *s, const lot *l)
{
    store_args a;
    a.argc = 0;
    store_arg_str(&a, "HSET");
    store_arg_key(&a, s, l->id, ":state");
    store_arg_str(&a, "has_data");
    store_arg_str(&a, l->has_data ? "1" : "0");
    store_arg_str(&a, "occupied");
    store_arg_i64(&a, l->occupied);
    store_arg_str(&a, "ts_ms");
    store_arg_i64(&a, l->ts_ms);
    store_arg_str(&a, "count_ts_ms");
    store_arg_i64(&a, l->count_ts_ms);
    store_arg_str(&a, "status");
    store_arg_str(&a, lot_status_name(l->status));
    store_arg_str(&a, "sm_started");
    store_arg_str(&a, l->smooth.started ? "1" : "0");
    store_arg_str(&a, "sm_ts_ms");
    store_arg_i64(&a, l->smooth.ts_ms);
    store_arg_str(&a, "sm_value");
    store_arg_fmt(&a, "%.17g", l->smooth.value);
    store_arg_str(&a, "sm_smoothed");
    store_arg_fmt(&a, "%.17g", l->smooth.smoothed);
    store_arg_str(&a, "sm_trend");
    store_arg_fmt(&a, "%.17g", l->smooth.trend_per_ms);
    store_send(s, &a);
}

typedef struct store_bay_writer {
    store *s;
    const lot *l;
    store_args pub;     /* :bays, bay -> 1/0 (SPEC) */
    store_args state;   /* :baystate, bay -> "1:<ts_ms>" (restore) */
} store_bay_writer;

static void store_bay_writer_reset(store_bay_writer *w)
{
    w->pub.argc = 0;
    store_arg_str(&w->pub, "HSET");
    store_arg_key(&w->pub, w->s, w->l->id, ":bays");
    w->state.argc = 0;
    store_arg_str(&w->state, "HSET");
    store_arg_key(&w->state, w->s, w->l->id, ":baystate");
}

static void store_bay_writer_flush(store_bay_writer *w)
{
    if (w->pub.argc > 2) {
        store_send(w->s, &w->pub);
        store_send(w->s, &w->state);
    }
    store_bay_writer_reset(w);
}

static void store_bay_writer_add(void *ctx, void *value)
{
    store_bay_writer *w = ctx;
    const lot_bay *b = value;
    store_arg_str(&w->pub, b->id);
    store_arg_str(&w->pub, b->occupied ? "1" : "0");
    store_arg_str(&w->state, b->id);
    store_arg_fmt(&w->state, "%d:%" PRId64, b->occupied ? 1 : 0, b->ts_ms);
    if (w->pub.argc >= 2 + 2 * STORE_FIELDS_PER_HSET)
        store_bay_writer_flush(w);
}

static void store_lot_bays(store *s, const lot *l, bool full)
{
    if (!s->bay_writer)
        s->bay_writer = util_xmalloc(sizeof *s->bay_writer);
    store_bay_writer *w = s->bay_writer;
    w->s = s;
    w->l = l;
    store_bay_writer_reset(w);
    if (full) {
        map_foreach(l->bays, store_bay_writer_add, w);
    } else {
        for (size_t i = 0; i < l->n_dirty_bays; i++)
            store_bay_writer_add(w, l->dirty_bays[i]);
    }
    store_bay_writer_flush(w);
}

typedef struct store_gate_writer {
    store *s;
    store_args a;
} store_gate_writer;

static void store_gate_writer_flush(store_gate_writer *w, const lot *l)
{
    if (w->a.argc > 2)
        store_send(w->s, &w->a);
    w->a.argc = 0;
    store_arg_str(&w->a, "HSET");
    store_arg_key(&w->a, w->s, l->id, ":gateseq");
}

static void store_gate_writer_add(store_gate_writer *w, const lot *l, const lot_gate *g)
{
    if (!g->has_seq)
        return;     /* nothing to restore: seq-less events cannot be deduplicated anyway */
    store_arg_str(&w->a, g->id);
    store_arg_fmt(&w->a, "%" PRIu64, g->seq);
    if (w->a.argc >= 2 + 2 * STORE_FIELDS_PER_HSET)
        store_gate_writer_flush(w, l);
}

typedef struct store_gate_full {
    store_gate_writer *w;
    const lot *l;
} store_gate_full;

static void store_gate_full_add(void *ctx, void *value)
{
    store_gate_full *f = ctx;
    store_gate_writer_add(f->w, f->l, value);
}

static void store_lot_gates(store *s, const lot *l, bool full)
{
    if (!s->gate_writer)
        s->gate_writer = util_xmalloc(sizeof *s->gate_writer);
    store_gate_writer *w = s->gate_writer;
    w->s = s;
    w->a.argc = 0;
    store_gate_writer_flush(w, l);
    if (full) {
        store_gate_full f = { w, l };
        map_foreach(l->gates, store_gate_full_add, &f);
    } else {
        for (size_t i = 0; i < l->n_dirty_gates; i++)
            store_gate_writer_add(w, l, l->dirty_gates[i]);
    }
    store_gate_writer_flush(w, l);
}

void store_batch_lot(store *s, const lot *l, unsigned what, int64_t wall_ms)
{
    if (!s->ac)
        return;
    store_lot_hash(s, l, what & STORE_LOT_STATIC, wall_ms);
    store_lot_state(s, l);
    store_lot_bays(s, l, what & STORE_LOT_ALL_SENSORS);
    store_lot_gates(s, l, what & STORE_LOT_ALL_SENSORS);
}

void store_batch_lot_ids(store *s, lot *const *lots, size_t n)
{
    store_args a;
    a.argc = 0;
    store_arg_str(&a, "DEL");
    store_arg_fmt(&a, "%slots", s->cfg->redis.prefix);
    store_send(s, &a);
    for (size_t i = 0; i < n;) {
        a.argc = 0;
        store_arg_str(&a, "SADD");
        store_arg_fmt(&a, "%slots", s->cfg->redis.prefix);
        for (; i < n && a.argc < 2 + STORE_FIELDS_PER_HSET; i++)
            store_arg_str(&a, lots[i]->id);
        store_send(s, &a);
    }
}

void store_batch_update(store *s, const char *json, size_t len)
{
    store_args a;
    a.argc = 0;
    store_arg_str(&a, "PUBLISH");
    store_arg_fmt(&a, "%supdates", s->cfg->redis.prefix);
    store_arg(&a, json, len);
    store_send(s, &a);
}

void store_batch_command(store *s, int argc, const char **argv, const size_t *lens)
{
    if (!s->ac)
        return;
    if (!s->batch_open) {
        redisAsyncCommand(s->ac, NULL, NULL, "MULTI");
        s->batch_open = true;
    }
    store_send_argv(s, argc, argv, lens);
    s->batch_commands++;
}

bool store_batch_open(const store *s)
{
    return s->batch_open;
}

typedef struct store_batch_done {
    store *s;
    uint64_t token;
    void (*done)(void *ctx, uint64_t token, bool ok);
    void *ctx;
} store_batch_done;

static bool store_exec_ok(const redisReply *reply)
{
    if (!reply)
        return false;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_error("redis: transaction failed: %s", reply->str);
        return false;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        log_error("redis: transaction aborted");
        return false;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type == REDIS_REPLY_ERROR) {
            log_error("redis: command %zu of a transaction failed: %s", i,
                      reply->element[i]->str);
            return false;
        }
    }
    return true;
}

static void store_on_exec(redisAsyncContext *ac, void *r, void *privdata)
{
    store_batch_done *b = privdata;
    store *s = b->s;
    s->in_flight--;
    b->done(b->ctx, b->token, store_exec_ok(r));
    free(b);
}

int store_batch_commit(store *s, uint64_t token, void (*done)(void *ctx, uint64_t token, bool ok),
                       void *ctx)
{
    if (!s->ac || !s->ready) {
        s->batch_open = false;
        return -ENOTCONN;
    }
    if (!s->batch_open)
        return -ENODATA;
    store_batch_done *b = util_xmalloc(sizeof *b);
    *b = (store_batch_done){ s, token, done, ctx };
    s->batch_open = false;
    s->batch_commands = 0;
    s->in_flight++;
    if (redisAsyncCommand(s->ac, store_on_exec, b, "EXEC") != REDIS_OK) {
        s->in_flight--;
        free(b);
        return -ENOTCONN;
    }
    return 0;
}

size_t store_batches_in_flight(const store *s)
{
    return s->in_flight;
}

void store_write_daemon(store *s, int64_t started_ms, const store_counters *c)
{
    if (!store_is_connected(s) || s->batch_open)
        return;
    store_args *a = util_xmalloc(sizeof *a);
    a->argc = 0;
    store_arg_str(a, "HSET");
    store_arg_fmt(a, "%sdaemon", s->cfg->redis.prefix);
    store_arg_str(a, "version");
    store_arg_str(a, PARKD_VERSION);
    store_arg_str(a, "pid");
    store_arg_i64(a, (int64_t)getpid());
    store_arg_str(a, "started_ms");
    store_arg_i64(a, started_ms);
    for (size_t i = 0; i < c->n && a->argc + 2 <= (int)(sizeof a->argv / sizeof a->argv[0]); i++) {
        store_arg_str(a, c->names[i]);
        store_arg_fmt(a, "%" PRIu64, c->values[i]);
    }
    redisAsyncCommandArgv(s->ac, NULL, NULL, a->argc, a->argv, a->len);
    free(a);
}

/* ---- restore ---- */

typedef struct store_restore_job {
    store *s;
    size_t pending;
    bool failed;
    void (*done)(void *ctx, int status);
    void *ctx;
} store_restore_job;

typedef struct store_restore_req {
    store_restore_job *job;
    lot *l;
    int what;   /* 0 state, 1 bays, 2 gates */
} store_restore_req;

static bool store_parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return false;
    *out = v;
    return true;
}

static const char *store_hash_get(const redisReply *r, const char *field)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (strcmp(r->element[i]->str, field) == 0)
            return r->element[i + 1]->str;
    }
    return NULL;
}

static int64_t store_hash_i64(const redisReply *r, const char *field, int64_t dflt)
{
    const char *v = store_hash_get(r, field);
    int64_t out;
    return v && store_parse_i64(v, &out) ? out : dflt;
}

static double store_hash_double(const redisReply *r, const char *field)
{
    const char *v = store_hash_get(r, field);
    double d = v ? strtod(v, NULL) : 0.0;
    return isfinite(d) ? d : 0.0;
}

static void store_restore_state(lot *l, const redisReply *r)
{
    const char *has_data = store_hash_get(r, "has_data");
    if (!has_data || strcmp(has_data, "1") != 0)
        return;
    enum lot_status status = LOT_STATUS_UNKNOWN;
    const char *st = store_hash_get(r, "status");
    if (st)
        lot_status_parse(st, &status);
    sm_state sm = {
        .started = store_hash_i64(r, "sm_started", 0) == 1,
        .ts_ms = store_hash_i64(r, "sm_ts_ms", 0),
        .value = store_hash_double(r, "sm_value"),
        .smoothed = store_hash_double(r, "sm_smoothed"),
        .trend_per_ms = store_hash_double(r, "sm_trend"),
    };
    lot_restore_state(l, store_hash_i64(r, "occupied", 0), store_hash_i64(r, "ts_ms", INT64_MIN),
                      store_hash_i64(r, "count_ts_ms", INT64_MIN), status, &sm);
}

static void store_restore_bays(lot *l, const redisReply *r)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *id = r->element[i]->str;
        const char *v = r->element[i + 1]->str;
        int64_t ts;
        if (!pl_valid_id(id, strlen(id)) || (v[0] != '0' && v[0] != '1') || v[1] != ':' ||
            !store_parse_i64(v + 2, &ts)) {
            log_warning("redis: ignoring bad bay state %s=%s of lot %s", id, v, l->id);
            continue;
        }
        lot_restore_bay(l, id, v[0] == '1', ts);
    }
}

static void store_restore_gates(lot *l, const redisReply *r)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *id = r->element[i]->str;
        const char *v = r->element[i + 1]->str;
        char *end;
        errno = 0;
        unsigned long long seq = strtoull(v, &end, 10);
        if (!pl_valid_id(id, strlen(id)) || errno || end == v || *end || v[0] == '-') {
            log_warning("redis: ignoring bad gate seq %s=%s of lot %s", id, v, l->id);
            continue;
        }
        lot_restore_gate(l, id, (uint64_t)seq);
    }
}

static void store_on_restore_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    store_restore_req *req = privdata;
    store_restore_job *job = req->job;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_error("redis: restore of lot %s failed: %s", req->l->id, reply->str);
        job->failed = true;
    } else if (req->what == 0) {
        store_restore_state(req->l, reply);
    } else if (req->what == 1) {
        store_restore_bays(req->l, reply);
    } else {
        store_restore_gates(req->l, reply);
    }
    free(req);
    if (--job->pending == 0) {
        job->done(job->ctx, job->failed ? -EIO : 0);
        free(job);
    }
}

int store_restore(store *s, lot *const *lots, size_t n, void (*done)(void *ctx, int status),
                  void *ctx)
{
    static const char *const suffixes[] = { ":state", ":baystate", ":gateseq" };
    if (!store_is_connected(s))
        return -ENOTCONN;
    store_restore_job *job = util_xcalloc(1, sizeof *job);
    job->s = s;
    job->done = done;
    job->ctx = ctx;
    job->pending = 1;   /* held until every request is sent */
    for (size_t i = 0; i < n; i++) {
        for (int what = 0; what < 3; what++) {
            store_restore_req *req = util_xmalloc(sizeof *req);
            *req = (store_restore_req){ job, lots[i], what };
            char key[STORE_KEY_MAX];
            snprintf(key, sizeof key, "%slot:%s%s", s->cfg->redis.prefix, lots[i]->id,
                     suffixes[what]);
            job->pending++;
            redisAsyncCommand(s->ac, store_on_restore_reply, req, "HGETALL %s", key);
        }
    }
    if (--job->pending == 0) {
        done(ctx, job->failed ? -EIO : 0);
        free(job);
    }
    return 0;
}

/* ---- generic reads ---- */

typedef struct store_hgetall_req {
    void (*cb)(void *ctx, int status, size_t n, const char *const *fields,
               const char *const *values);
    void *ctx;
} store_hgetall_req;

static void store_on_hgetall(redisAsyncContext *ac, void *r, void *privdata)
{
    store_hgetall_req *req = privdata;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        req->cb(req->ctx, -EIO, 0, NULL, NULL);
        free(req);
        return;
    }
    size_t n = reply->elements / 2;
    const char **fields = util_xcalloc(n + 1, sizeof *fields);
    const char **values = util_xcalloc(n + 1, sizeof *values);
    for (size_t i = 0; i < n; i++) {
        fields[i] = reply->element[2 * i]->str;
        values[i] = reply->element[2 * i + 1]->str;
    }
    req->cb(req->ctx, 0, n, fields, values);
    free(fields);
    free(values);
    free(req);
}

int store_hgetall(store *s, const char *key,
                  void (*cb)(void *ctx, int status, size_t n, const char *const *fields,
                             const char *const *values),
                  void *ctx)
{
    if (!store_is_connected(s) || s->batch_open)
        return -ENOTCONN;
    store_hgetall_req *req = util_xmalloc(sizeof *req);
    req->cb = cb;
    req->ctx = ctx;
    if (redisAsyncCommand(s->ac, store_on_hgetall, req, "HGETALL %s", key) != REDIS_OK) {
        free(req);
        return -ENOTCONN;
    }
    return 0;
}

/* ---- shutdown ---- */

static void store_on_timer_closed(uv_handle_t *handle)
{
    store *s = handle->data;
    if (s->close_done)
        s->close_done(s->close_ctx);
}

void store_close(store *s, void (*done)(void *ctx), void *ctx)
{
    s->closing = true;
    s->close_done = done;
    s->close_ctx = ctx;
    uv_timer_stop(&s->reconnect_timer);
    if (s->ac && (s->ac->c.flags & REDIS_CONNECTED)) {
        redisAsyncDisconnect(s->ac);    /* the disconnect callback closes the timer */
        return;
    }
    if (s->ac) {
        /* still connecting: hiredis calls no disconnect callback for such a context */
        redisAsyncFree(s->ac);
        s->ac = NULL;
    }
    uv_close((uv_handle_t *)&s->reconnect_timer, store_on_timer_closed);
}

void store_free(store *s)
{
    if (!s)
        return;
    free(s->bay_writer);
    free(s->gate_writer);
    free(s);
}
