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
#include "redis_uv.h"
#include "sentinel.h"
#include "util.h"

#define STORE_BACKOFF_MIN_MS 250
#define STORE_BACKOFF_MAX_MS 10000
#define STORE_RESEND_MIN_MS 100     /* a batch Redis refused is sent again after this, */
#define STORE_RESEND_MAX_MS 5000    /* doubling up to this while it keeps refusing */
#define STORE_REFUSAL_LOG_MS 30000  /* "still refuses" at most once per this */
#define STORE_CAUSE_MAX 200
#define STORE_WAIT_MS 100           /* one WAIT for replicas at most this long, then again */
#define STORE_SPARE_MAX (1u << 20)  /* a confirmed batch's buffers are kept for the next one */
#define STORE_FIELDS_PER_HSET 256   /* bays per HSET: keeps single commands small */
#define STORE_KEY_MAX (CFG_REDIS_PREFIX_MAX + sizeof "lot:" + PL_ID_MAX + sizeof ":baystate")
#define STORE_NUM_MAX 40            /* a formatted number: %a, an int64, "1:<ts_ms>" */
/* Fields of the lot hash: a zone has 4 (5 with unknown), a category 3 (4); see store_lot_groups. */
#define STORE_GROUP_FIELDS (5 * CFG_MAX_ZONES + 4 * CFG_N_CATEGORIES)
#define STORE_LOT_FIELDS (24 + STORE_GROUP_FIELDS)
#define STORE_ARGS_MAX (2 + 2 * (STORE_LOT_FIELDS > STORE_FIELDS_PER_HSET ? STORE_LOT_FIELDS \
                                                                            : STORE_FIELDS_PER_HSET))
/* "zone:<id>:occupied", "cat:<name>:capacity" */
#define STORE_GROUP_FIELD_MAX (sizeof "zone::occupied" + PL_ID_MAX)

/* Field names of the zones and categories, built where the argv can point at them. */
typedef struct store_group_names {
    char name[STORE_GROUP_FIELDS][STORE_GROUP_FIELD_MAX];
    size_t n;
} store_group_names;

struct store {
    uv_loop_t *loop;
    sentinel *sen;              /* redis.sentinels: where the master is (NULL: host/port) */
    char master_host[256];      /* the master the sentinels named; "" before they answered */
    int master_port;
    store_group_names *group_names;     /* scratch for one lot's write (loop thread only) */
    const cfg_config *cfg;
    const store_callbacks *cb;
    void *ctx;
    redisAsyncContext *ac;      /* NULL while disconnected */
    bool ready;                 /* AUTH/SELECT done */
    bool failing;               /* being dropped (timeout, reload): send nothing more */
    bool closing;
    uv_timer_t reconnect_timer;
    uv_timer_t timeout_timer;   /* checks the oldest reply we wait for */
    uint64_t backoff_ms;
    uint64_t reconnects;
    uint64_t timeouts;
    size_t waiting;             /* replies with a callback of ours outstanding */
    uint64_t progress_ms;       /* loop time of the last reply, or of the wait's start */
    uint64_t connect_ms;        /* loop time the current connection attempt began */
    struct store_batch *open;   /* being built, between store_batch_begin and _commit */
    struct store_batch *head, *tail;    /* committed and not yet confirmed, in order */
    struct store_batch *spare;  /* a confirmed batch's buffers, for the next one */
    struct store_batch *dead;   /* not sent whole; freed once hiredis dropped its callbacks */
    size_t n_batches;           /* head .. tail */
    size_t execs_waiting;       /* EXECs sent whose reply is outstanding */
    bool refusing;              /* Redis refused the head batch: it goes again, nothing new */
    uv_timer_t resend_timer;
    uint64_t resend_backoff_ms;
    uint64_t refusals;          /* EXECs Redis refused, ever */
    uint64_t refusals_now;      /* since it last took a batch */
    int64_t refusing_since_ms;
    char refusal_cause[STORE_CAUSE_MAX];
    log_limit refusal_log;
    log_limit tolerated_log;
    log_limit replica_log;
    bool wait_in_flight;        /* min_replicas_ack: a WAIT is out */
    uint64_t wait_seq;          /* the newest batch executed before that WAIT was sent */
    char run_id[48];            /* this process's run: <started_ms>.<pid> */
    uint64_t next_seq;          /* of the next batch */
    uint64_t confirmed_seq;     /* of the last confirmed batch, 0 before the first */
    struct store_bay_writer *bay_writer;    /* scratch argv space, reused every batch */
    struct store_gate_writer *gate_writer;
    /* SPEC §11 fencing: while FENCE_EPOCH is set, a batch goes out only after WATCH and GET of
     * <prefix>epoch showed it, one batch on the wire at a time (EXEC ends every WATCH) */
    uint64_t fence_epoch;       /* 0: no fencing */
    char leader[96];            /* for the daemon hash: the active instance ("": no ha) */
    int64_t instance_ttl_ms;    /* of <prefix>instance:<id> */
    bool fence_lost;            /* another epoch was seen: nothing is sent any more */
    struct store_batch *on_wire;    /* the fenced batch between its GET and its EXEC reply */
    int handles_open;
    void (*close_done)(void *ctx);
    void *close_ctx;
};

/* An argv under construction; numbers are formatted into its own slots, the key into KEY. */
typedef struct store_args {
    int argc;
    const char *argv[STORE_ARGS_MAX];
    size_t len[STORE_ARGS_MAX];
    char num[STORE_ARGS_MAX][STORE_NUM_MAX];
    char key[STORE_KEY_MAX];
} store_args;

static void store_connect(store *s);

/* ---- keys ----
 * Every key parkd writes or reads, in one place: <prefix><name> or <prefix>lot:<id><suffix>.
 * Ids are at most PL_ID_MAX bytes of [A-Za-z0-9_.-] (payload.c checked them) and the prefix at
 * most CFG_REDIS_PREFIX_MAX (config.c), so a key always fits STORE_KEY_MAX whole. */

enum store_key {
    STORE_KEY_LOTS, STORE_KEY_DAEMON, STORE_KEY_UPDATES, STORE_KEY_WRITTEN,
    STORE_KEY_LEADER, STORE_KEY_EPOCH,
    STORE_KEY_LOT, STORE_KEY_STATE, STORE_KEY_BAYS, STORE_KEY_BAYSTATE, STORE_KEY_GATESEQ,
    STORE_KEY_MODEL, STORE_KEY_FORECAST, STORE_KEY_HISTORY
};

static const char *const store_key_names[] = {
    [STORE_KEY_LOTS] = "lots", [STORE_KEY_DAEMON] = "daemon", [STORE_KEY_UPDATES] = "updates",
    [STORE_KEY_WRITTEN] = "written", [STORE_KEY_LEADER] = "leader", [STORE_KEY_EPOCH] = "epoch",
    [STORE_KEY_LOT] = "", [STORE_KEY_STATE] = ":state", [STORE_KEY_BAYS] = ":bays",
    [STORE_KEY_BAYSTATE] = ":baystate", [STORE_KEY_GATESEQ] = ":gateseq",
    [STORE_KEY_MODEL] = ":model", [STORE_KEY_FORECAST] = ":forecast",
    [STORE_KEY_HISTORY] = ":history",
};

/* Writes key K (of lot LOT_ID for the per-lot keys) into BUF; returns its length. */
static size_t store_key(const store *s, enum store_key k, const char *lot_id, char *buf,
                        size_t size)
{
    /* by hand, not snprintf: three key builds per lot write were a tenth of the CPU per event */
    const char *parts[4] = { s->cfg->redis.prefix, k < STORE_KEY_LOT ? store_key_names[k] : "lot:",
                             k < STORE_KEY_LOT ? "" : lot_id,
                             k < STORE_KEY_LOT ? "" : store_key_names[k] };
    size_t n = 0;
    for (size_t i = 0; i < 4; i++) {
        size_t len = strlen(parts[i]);
        if (n + len >= size)
            abort();    /* the bounds above make this impossible; a torn key must never be used */
        memcpy(buf + n, parts[i], len);
        n += len;
    }
    buf[n] = '\0';
    return n;
}

/* ---- kept batches ---- */

/* A committed batch waits here, its commands kept in the Redis protocol, until Redis has
 * confirmed its EXEC. A batch that Redis refuses while the connection stays up (maxmemory's
 * OOM, a replica's READONLY) is sent again as it was, after a backoff, and so is every batch
 * after it, in order: Redis then holds what it would hold had nothing been refused, and
 * nothing is rebuilt or written in full for it. Only a lost connection fails them (done with
 * ok = false): Redis may have lost what it held, and the caller writes it again. */
typedef struct store_batch {
    struct store_batch *next;
    store *s;
    char *buf;                  /* the commands, back to back */
    size_t len, cap;
    size_t *ends;               /* command i is buf[ends[i - 1] .. ends[i]) */
    size_t n_cmds, cap_ends;
    size_t *tolerated;          /* ascending indexes of commands whose error is no failure */
    size_t n_tolerated, cap_tolerated;
    uint64_t seq;               /* its <prefix>written mark (see store_batch_commit) */
    uint64_t token;
    void (*done)(void *ctx, uint64_t token, bool ok);
    void *ctx;
    bool refused;               /* this round's EXEC was refused */
    bool sent;                  /* fenced: its MULTI...EXEC went out this round */
    bool executed;              /* min_replicas_ack: EXEC ran it on the master */
    bool replicated;            /* min_replicas_ack: WAIT saw it on enough replicas */
    char cause[STORE_CAUSE_MAX];    /* the first error a queued command got this round */
} store_batch;

static store_batch *store_batch_new(store *s)
{
    store_batch *b = s->spare;
    if (b) {
        s->spare = NULL;
    } else {
        b = util_xcalloc(1, sizeof *b);
    }
    b->s = s;
    b->next = NULL;
    b->len = b->n_cmds = b->n_tolerated = 0;
    b->refused = false;
    b->replicated = false;
    b->executed = false;
    b->sent = false;
    b->cause[0] = '\0';
    return b;
}

static void store_batch_free(store_batch *b)
{
    if (!b)
        return;
    free(b->buf);
    free(b->ends);
    free(b->tolerated);
    free(b);
}

/* Keeps B's buffers for the next batch, unless they grew large (a full write at start). */
static void store_batch_recycle(store *s, store_batch *b)
{
    if (s->spare || b->cap > STORE_SPARE_MAX) {
        store_batch_free(b);
        return;
    }
    s->spare = b;
}

/* Room for NEED more bytes at the end of B's buffer. */
static char *store_batch_reserve(store_batch *b, size_t need)
{
    util_grow((void **)&b->buf, &b->cap, b->len + need, 1);
    return b->buf + b->len;
}

static void store_batch_end_command(store_batch *b, size_t len)
{
    b->len += len;
    util_grow((void **)&b->ends, &b->cap_ends, b->n_cmds + 1, sizeof *b->ends);
    b->ends[b->n_cmds++] = b->len;
}

static bool store_batch_tolerates(const store_batch *b, size_t cmd)
{
    for (size_t i = 0; i < b->n_tolerated; i++) {
        if (b->tolerated[i] == cmd)
            return true;
    }
    return false;
}

/* A queued command's reply (+QUEUED, or the error that will abort the EXEC): the error is the
 * cause worth logging, where EXEC itself only says EXECABORT. */
static void store_on_queued(redisAsyncContext *ac, void *r, void *privdata)
{
    store_batch *b = privdata;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR && !b->cause[0])
        snprintf(b->cause, sizeof b->cause, "%s", reply->str);
}

/* ---- replies we wait for: the timeout ---- */

static void store_expect_reply(store *s)
{
    if (s->waiting++ == 0)
        s->progress_ms = uv_now(s->loop);
}

static void store_got_reply(store *s)
{
    s->waiting--;
    s->progress_ms = uv_now(s->loop);
}

/* A Redis that stops answering without closing its socket (SIGSTOP, a stuck host) would hold
 * every batch, and with it all input, for good: past redis.timeout it counts as down. */
static bool store_stalled(const store *s, uint64_t now)
{
    uint64_t timeout = (uint64_t)s->cfg->redis.timeout_ms;
    if (!s->ac)
        return false;
    if (!s->ready)
        return now - s->connect_ms > timeout;
    return s->waiting > 0 && now - s->progress_ms > timeout;
}

static void store_retry_later(store *s);
static void store_fail_batches(store *s);
static void store_keep_batches(store *s);
static void store_check_mark(store *s);
static void store_confirm_head(store *s);
static void store_close_handles(store *s);

static void store_on_timeout_tick(uv_timer_t *timer)
{
    store *s = timer->data;
    if (!store_stalled(s, uv_now(s->loop)))
        return;    /* also while closing: a stalled Redis must not hold the shutdown */
    s->timeouts++;
    log_error("redis: no reply within %" PRId64 " ms; reconnecting", s->cfg->redis.timeout_ms);
    redisAsyncContext *ac = s->ac;
    bool connected = ac->c.flags & REDIS_CONNECTED;
    s->failing = true;  /* so nothing is sent while hiredis fails the callbacks */
    /* Fails every callback with a NULL reply; a connected context also gets the disconnect
     * callback, which schedules the reconnect. */
    redisAsyncFree(ac);
    if (!connected) {
        s->ac = NULL;
        s->failing = false;
        store_keep_batches(s);
        if (s->closing)
            store_close_handles(s);
        else
            store_retry_later(s);
    }
}

static int store_start_timeout_timer(store *s)
{
    uint64_t every = (uint64_t)s->cfg->redis.timeout_ms / 4;
    if (every < 10)
        every = 10;
    return uv_timer_start(&s->timeout_timer, store_on_timeout_tick, every, every);
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
    int rc = uv_timer_start(&s->reconnect_timer, store_on_reconnect_timer, s->backoff_ms, 0);
    if (rc < 0)
        log_error("redis: cannot schedule a reconnect: %s", uv_strerror(rc));
    s->backoff_ms = s->backoff_ms * 2 > STORE_BACKOFF_MAX_MS ? STORE_BACKOFF_MAX_MS
                                                               : s->backoff_ms * 2;
}

static const char *store_endpoint(const store *s, char *buf, size_t size)
{
    if (s->sen)
        snprintf(buf, size, "%s:%d (master %s)", s->master_host[0] ? s->master_host : "?",
                 s->master_port, s->cfg->redis.master_name);
    else if (s->cfg->redis.socket)
        snprintf(buf, size, "%s", s->cfg->redis.socket);
    else
        snprintf(buf, size, "%s:%d", s->cfg->redis.host, s->cfg->redis.port);
    return buf;
}

static void store_on_handshake(redisAsyncContext *ac, void *r, void *privdata)
{
    store *s = privdata;
    redisReply *reply = r;
    store_got_reply(s);
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
        /* The backoff is reset by a confirmed batch, not here: a Redis that answers PING but
         * drops every write would otherwise be retried in a tight loop. */
        log_info("redis: connected to %s, db %d", store_endpoint(s, ep, sizeof ep),
                 s->cfg->redis.db);
        store_check_mark(s);
    }
}

static void store_send_batch(store *s, store_batch *b);
static void store_send_kept(store *s, store_batch *b);
static void store_fence_next(store *s);
static void store_wait_next(store *s);
static bool store_fence_exec_done(store *s, struct store_batch *b, const redisReply *reply);
static void store_batch_instance(store *s, store_args *a);
static void store_keep(store *s, struct store_batch *b, uint64_t token,
                       void (*done)(void *ctx, uint64_t token, bool ok), void *ctx);
static int store_fence_commit(store *s, struct store_batch *b, uint64_t token,
                              void (*done)(void *ctx, uint64_t token, bool ok), void *ctx);

/* Connected: whether Redis still holds all that was confirmed decides what the caller
 * writes (intact: only what changes from now; else everything). */
static void store_set_ready(store *s, bool intact)
{
    s->ready = true;
    if (!intact)
        store_fail_batches(s);
    s->cb->on_connected(s->ctx, intact);
    if (s->fence_epoch)
        store_fence_next(s);    /* the kept batches store_take_mark queued for the fence */
}

/* The mark Redis holds, against this run's: the batches it names and those before it were
 * executed (their EXEC reply was lost with the connection) and count as confirmed; the rest
 * go again, in order. Anything else (no mark, another run's, an older one: Redis lost data,
 * or a replica behind took over) means everything is written again. */
static bool store_take_mark(store *s, const redisReply *reply)
{
    size_t run_len = strlen(s->run_id);
    if (reply->type != REDIS_REPLY_STRING || reply->len <= run_len + 1 ||
        memcmp(reply->str, s->run_id, run_len) != 0 || reply->str[run_len] != ':')
        return false;
    char *end;
    unsigned long long seq = strtoull(reply->str + run_len + 1, &end, 10);
    if (*end || seq < s->confirmed_seq)
        return false;
    if (seq > s->confirmed_seq) {
        bool known = false;
        for (store_batch *b = s->head; b && !known; b = b->next)
            known = b->seq == seq;
        if (!known)
            return false;
    }
    /* the rest first, so that nothing the confirmations' callbacks start can overtake it */
    for (store_batch *b = s->head; b; b = b->next) {
        if (b->seq > seq)
            store_send_kept(s, b);
    }
    s->ready = true;    /* the confirmations' callbacks may look */
    if (s->cfg->redis.min_replicas_ack > 0) {
        /* executed, but on enough replicas? asked before they count as stored */
        for (store_batch *b = s->head; b && b->seq <= seq; b = b->next)
            b->executed = true;
        store_wait_next(s);
        return true;
    }
    while (s->head && s->head->seq <= seq)
        store_confirm_head(s);
    return true;
}

static void store_on_mark(redisAsyncContext *ac, void *r, void *privdata)
{
    store *s = privdata;
    store_got_reply(s);
    if (!r || (ac->c.flags & REDIS_DISCONNECTING))
        return;     /* the disconnect callback keeps the batches for the next try */
    redisReply *reply = r;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_error("redis: setup failed: %s", reply->str);
        redisAsyncDisconnect(ac);
        return;
    }
    size_t kept = s->n_batches;
    bool intact = store_take_mark(s, reply);
    if (intact)
        log_info("redis: holds everything stored before the connection went (%zu of %zu "
                 "batches in flight to send again)", s->n_batches, kept);
    if (!intact && s->confirmed_seq)
        log_warning("redis: does not hold what parkd last stored (restarted without it, or "
                    "another server): writing every lot in full");
    store_set_ready(s, intact);
}

static int store_command(store *s, redisCallbackFn *fn, void *privdata, const char *fmt, ...);

static void store_check_mark(store *s)
{
    if (!s->head && !s->confirmed_seq) {
        store_set_ready(s, false);
        return;
    }
    char key[STORE_KEY_MAX];
    store_key(s, STORE_KEY_WRITTEN, NULL, key, sizeof key);
    if (store_command(s, store_on_mark, s, "GET %s", key) < 0)
        log_error("redis: cannot ask for the write mark");     /* the timeout reconnects */
}

/* A command whose reply we wait for (and time). Returns 0 or -ENOTCONN. */
static int store_command(store *s, redisCallbackFn *fn, void *privdata, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(s->ac, fn, privdata, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK)
        return -ENOTCONN;
    store_expect_reply(s);
    return 0;
}

/* ROLE of the server the sentinels named: anything but a master (a failover in progress, a
 * stale answer) is left, and the sentinels asked again. */
static void store_on_role(redisAsyncContext *ac, void *r, void *privdata)
{
    store *s = privdata;
    redisReply *reply = r;
    store_got_reply(s);
    if (!reply || (ac->c.flags & REDIS_DISCONNECTING))
        return;
    bool master = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                  reply->element[0]->type == REDIS_REPLY_STRING &&
                  strcmp(reply->element[0]->str, "master") == 0;
    if (master)
        return;
    char ep[300];
    log_warning("redis: %s is not a master (yet); asking the sentinels again",
                store_endpoint(s, ep, sizeof ep));
    redisAsyncDisconnect(ac);
    sen_ask(s->sen);
}

static void store_send_handshake(store *s)
{
    const cfg_config *cfg = s->cfg;
    int rc = 0;
    if (cfg->redis.password_file) {
        char *password = util_read_secret_file(cfg->redis.password_file);
        if (!password) {
            log_error("redis: cannot read password file %s: %s", cfg->redis.password_file,
                      strerror(errno));
        } else if (cfg->redis.username) {
            rc |= store_command(s, store_on_handshake, s, "AUTH %s %s", cfg->redis.username,
                                password);
        } else {
            rc |= store_command(s, store_on_handshake, s, "AUTH %s", password);
        }
        if (password) {
            explicit_bzero(password, strlen(password));
            free(password);
        }
    }
    if (cfg->redis.db != 0)
        rc |= store_command(s, store_on_handshake, s, "SELECT %d", cfg->redis.db);
    if (s->sen)     /* a sentinel's answer may be stale: write only to a master */
        rc |= store_command(s, store_on_role, s, "ROLE");
    rc |= store_command(s, store_on_handshake, s, "PING");
    if (rc != 0)
        log_error("redis: cannot send the handshake");   /* the timeout reconnects */
}

/* hiredis gives only the text of a connect's errno: find the one a local block gives. */
static const char *store_connect_hint(const char *errstr)
{
    if (strstr(errstr, strerror(EPERM)))
        return util_connect_hint(EPERM);
    if (strstr(errstr, strerror(EACCES)))
        return util_connect_hint(EACCES);
    return "";
}

static void store_on_connect(const redisAsyncContext *ac, int status)
{
    store *s = ac->data;
    char ep[300];
    if (status != REDIS_OK) {
        log_warning("redis: cannot connect to %s: %s%s", store_endpoint(s, ep, sizeof ep),
                    ac->errstr, store_connect_hint(ac->errstr));
        s->ac = NULL;   /* hiredis frees the context after this callback */
        if (s->sen)
            sen_ask(s->sen);    /* the master may have moved */
        store_retry_later(s);
        return;
    }
    store_send_handshake(s);
}

static void store_on_handle_closed(uv_handle_t *handle)
{
    store *s = handle->data;
    if (--s->handles_open == 0 && s->close_done)
        s->close_done(s->close_ctx);
}

static void store_close_handles(store *s)
{
    uv_close((uv_handle_t *)&s->reconnect_timer, store_on_handle_closed);
    uv_close((uv_handle_t *)&s->timeout_timer, store_on_handle_closed);
    uv_close((uv_handle_t *)&s->resend_timer, store_on_handle_closed);
}

static void store_on_disconnect(const redisAsyncContext *ac, int status)
{
    store *s = ac->data;
    bool was_ready = s->ready;
    s->ac = NULL;       /* freed by hiredis after this callback */
    s->ready = false;
    s->failing = false;
    s->waiting = 0;
    store_keep_batches(s);
    if (s->closing) {
        store_close_handles(s);
        return;
    }
    if (status != REDIS_OK)
        log_warning("redis: connection lost: %s", ac->errstr);
    if (was_ready)
        s->cb->on_disconnected(s->ctx);
    if (s->sen)
        sen_ask(s->sen);        /* the master may have moved */
    store_retry_later(s);
}

/* The sentinels' answer, or a +switch-master: a new address is connected to at once (the
 * batches kept are checked against the mark there, as after any reconnect). */
static void store_on_master(void *ctx, const char *host, int port)
{
    store *s = ctx;
    if (s->closing)
        return;
    bool same = strcmp(host, s->master_host) == 0 && port == s->master_port;
    /* the same address again: the connection there, or the backoff's retry, goes on (an
     * immediate connect to a master that is down, asked again on its failure, would spin) */
    if (same && (s->ac || uv_is_active((uv_handle_t *)&s->reconnect_timer)))
        return;
    if (!same)
        log_info("redis: master %s is at %s:%d", s->cfg->redis.master_name, host, port);
    snprintf(s->master_host, sizeof s->master_host, "%s", host);
    s->master_port = port;
    if (s->ac) {
        store_reconnect(s);
        return;
    }
    uv_timer_stop(&s->reconnect_timer);
    store_connect(s);
}

static void store_connect(store *s)
{
    const cfg_config *cfg = s->cfg;
    char ep[300];
    s->reconnects++;
    s->waiting = 0;
    s->failing = false;
    s->connect_ms = uv_now(s->loop);
    if (s->sen && !s->master_host[0]) {
        sen_ask(s->sen);    /* its answer connects (store_on_master) */
        return;
    }
    s->ac = s->sen ? redisAsyncConnect(s->master_host, s->master_port)
            : cfg->redis.socket ? redisAsyncConnectUnix(cfg->redis.socket)
                                : redisAsyncConnect(cfg->redis.host, cfg->redis.port);
    if (!s->ac || s->ac->err) {
        log_warning("redis: cannot connect to %s: %s%s", store_endpoint(s, ep, sizeof ep),
                    s->ac ? s->ac->errstr : "out of memory",
                    s->ac ? store_connect_hint(s->ac->errstr) : "");
        if (s->ac)
            redisAsyncFree(s->ac);
        s->ac = NULL;
        store_retry_later(s);
        return;
    }
    s->ac->data = s;
    if (redis_uv_attach(s->ac, s->loop) != REDIS_OK) {
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
    s->group_names = util_xmalloc(sizeof *s->group_names);
    s->cfg = cfg;
    s->cb = cb;
    s->ctx = ctx;
    if (cfg->redis.n_sentinels)
        s->sen = sen_new(loop, cfg, store_on_master, s);
    s->backoff_ms = STORE_BACKOFF_MIN_MS;
    s->resend_backoff_ms = STORE_RESEND_MIN_MS;
    snprintf(s->run_id, sizeof s->run_id, "%" PRId64 ".%ld", util_wall_ms(), (long)getpid());
    uv_timer_init(loop, &s->reconnect_timer);
    uv_timer_init(loop, &s->timeout_timer);
    uv_timer_init(loop, &s->resend_timer);
    s->reconnect_timer.data = s->timeout_timer.data = s->resend_timer.data = s;
    s->handles_open = 3;
    return s;
}

void store_set_config(store *s, const cfg_config *cfg)
{
    bool timeout_changed = cfg->redis.timeout_ms != s->cfg->redis.timeout_ms;
    s->cfg = cfg;
    if (s->sen)
        sen_set_config(s->sen, cfg);    /* it kept the old one, which the caller frees */
    if (timeout_changed && uv_is_active((uv_handle_t *)&s->timeout_timer) &&
        store_start_timeout_timer(s) < 0)
        log_error("redis: cannot restart the reply timer");
}

void store_reconnect(store *s)
{
    if (s->ac && (s->ac->c.flags & REDIS_CONNECTED)) {
        s->failing = true;
        redisAsyncDisconnect(s->ac);    /* the disconnect callback schedules the reconnect */
        return;
    }
    if (s->ac) {
        redisAsyncFree(s->ac);
        s->ac = NULL;
    }
    store_keep_batches(s);
    uv_timer_stop(&s->reconnect_timer);
    store_connect(s);
}

int store_start(store *s)
{
    int rc = store_start_timeout_timer(s);
    if (rc < 0)
        return rc;
    if (s->sen && (rc = sen_start(s->sen)) < 0)
        return rc;
    store_connect(s);
    s->reconnects = 0;
    return 0;
}

bool store_is_connected(const store *s)
{
    return s->ac && s->ready && !s->failing;
}

bool store_is_writable(const store *s)
{
    return store_is_connected(s) && !s->refusing;
}

uint64_t store_reconnects(const store *s)
{
    return s->reconnects;
}

uint64_t store_timeouts(const store *s)
{
    return s->timeouts;
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

/* Formats into the argument's own number slot: only for values known to fit it. */
static void store_arg_fmt(store_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void store_arg_fmt(store_args *a, const char *fmt, ...)
{
    char *slot = a->num[a->argc];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(slot, sizeof a->num[0], fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof a->num[0])
        abort();    /* a number that does not fit its slot is a bug, never a torn value */
    store_arg(a, slot, (size_t)n);
}

static void store_arg_i64(store_args *a, int64_t v)
{
    char *slot = a->num[a->argc];
    store_arg(a, slot, util_format_i64(slot, sizeof a->num[0], v));
}

/* A copy of S (which need not outlive the call) in the argument's own number slot. */
static void store_arg_copy(store_args *a, const char *s)
{
    char *slot = a->num[a->argc];
    size_t len = strlen(s);
    if (len >= sizeof a->num[0])
        abort();    /* callers pass numbers and short names only; never a torn value */
    memcpy(slot, s, len + 1);
    store_arg(a, slot, len);
}

static void store_arg_u64(store_args *a, uint64_t v)
{
    char *slot = a->num[a->argc];
    store_arg(a, slot, util_format_u64(slot, sizeof a->num[0], v));
}

/* A display value, as "%.<DECIMALS>f" writes it (util_format_fixed). */
static void store_arg_fixed(store_args *a, double v, int decimals)
{
    char *slot = a->num[a->argc];
    store_arg(a, slot, util_format_fixed(slot, sizeof a->num[0], v, decimals));
}

/* A double exactly, for the restore: hexadecimal ("%a"), which strtod reads back bit for bit
 * and glibc writes in a quarter of the time of "%.17g" (values stored as "%.17g" by earlier
 * versions still restore: strtod reads both). */
static void store_arg_exact(store_args *a, double v)
{
    store_arg_fmt(a, "%a", v);
}

static void store_arg_key(store_args *a, const store *s, enum store_key k, const char *lot_id)
{
    store_arg(a, a->key, store_key(s, k, lot_id, a->key, sizeof a->key));
}

/* One command of the open batch (its reply is part of EXEC's), in the Redis protocol written
 * in one pass into the batch's buffer, which keeps it until Redis confirmed the batch (hiredis
 * copies it into its own output buffer). hiredis's redisFormatCommandArgv grows an sds string
 * argument by argument: with it, make bench on one VM gave 13.9-18.5 ms of CPU per 1,000 QoS 0 events
 * and a QoS 0 ratio to the ceiling of 0.55-0.61 (three runs); with this writer 14.1 ms and
 * 0.63, as before the pipeline redesign (11.9-14.4 ms, 0.62-0.67). */
static void store_send_argv(store *s, int argc, const char **argv, const size_t *len)
{
    store_batch *b = s->open;
    if (!b || !s->ac)
        return;
    size_t total = 16;
    for (int i = 0; i < argc; i++)
        total += len[i] + 24;
    char *start = store_batch_reserve(b, total);
    char *p = start;
    *p++ = '*';
    p = util_put_u64(p, (uint64_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        *p++ = '$';
        p = util_put_u64(p, len[i]);
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, argv[i], len[i]);
        p += len[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    store_batch_end_command(b, (size_t)(p - start));
    if (s->fence_epoch)
        return;     /* sent whole once the fence check passed (store_fence_next) */
    if (redisAsyncFormattedCommand(s->ac, store_on_queued, b, start, (size_t)(p - start)) !=
        REDIS_OK)
        log_warning("redis: command not sent: the connection is closing");
}

static void store_send(store *s, store_args *a)
{
    store_send_argv(s, a->argc, a->argv, a->len);
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

/* A reload (or a restart) that switched bay_stale_after off or removed a zone or category must
 * not leave its fields behind in the hash. The static fields are written exactly then, with all
 * the others, so the hash is deleted first and written whole: one DEL per lot at start and
 * reload only, in the same transaction as the HSET, so a reader never sees it empty. */
static void store_lot_hash_delete(store *s, const lot *l)
{
    store_args a;
    a.argc = 0;
    store_arg_str(&a, "DEL");
    store_arg_key(&a, s, STORE_KEY_LOT, l->id);
    store_send(s, &a);
}


static void store_arg_group_field(store_args *a, store_group_names *names, const char *kind,
                                  const char *id, const char *what)
{
    char *slot = names->name[names->n++];
    int n = snprintf(slot, STORE_GROUP_FIELD_MAX, "%s:%s:%s", kind, id, what);
    store_arg(a, slot, (size_t)n);
}

/* An empty value before the lot has data, as for the lot's own counts. */
static void store_arg_count(store_args *a, const lot *l, int64_t v)
{
    if (l->has_data)
        store_arg_i64(a, v);
    else
        store_arg_str(a, "");
}

/* SPEC §10's zone:<id>:* and cat:<name>:* fields: all of them (ALL, with the static fields),
 * else only those of the zones and categories that changed. An event changes at most one zone
 * and a few categories, and a lot is written about once per event under load: writing every
 * zone each time made the QoS 1 bench with 10 zones and 3 categories 1.9 x as costly. */
/* KIND:ID:free, :capacity, :occupied (and :unknown) of group G of lot L. */
static void store_group_counts(store_args *a, store_group_names *names, const lot *l,
                               const char *kind, const char *id, const lot_group *g)
{
    store_arg_group_field(a, names, kind, id, "free");
    store_arg_count(a, l, lot_group_free(g));
    store_arg_group_field(a, names, kind, id, "capacity");
    store_arg_i64(a, g->capacity);
    store_arg_group_field(a, names, kind, id, "occupied");
    store_arg_count(a, l, lot_group_occupied(g));
    if (lot_tracks_unknown(l)) {
        store_arg_group_field(a, names, kind, id, "unknown");
        store_arg_count(a, l, g->unknown);
    }
}

static void store_lot_groups(store_args *a, store_group_names *names, const lot *l, bool all)
{
    const zn_resolver *r = l->groups;
    for (int z = 0; z < r->n_zones; z++) {
        if (!all && !((l->dirty_zones >> z) & 1u))
            continue;
        store_group_counts(a, names, l, "zone", r->zones[z].id, &l->zones[z]);
        store_arg_group_field(a, names, "zone", r->zones[z].id, "status");
        store_arg_str(a, lot_status_name(l->zones[z].status));
    }
    for (int c = 0; c < CFG_N_CATEGORIES; c++) {
        if (!((r->cats_set >> c) & 1u) || (!all && !((l->dirty_cats >> c) & 1u)))
            continue;
        store_group_counts(a, names, l, "cat", cfg_category_name((enum cfg_category)c), &l->cats[c]);
    }
}

static void store_lot_hash(store *s, const lot *l, bool with_static, int64_t wall_ms)
{
    if (with_static)
        store_lot_hash_delete(s, l);
    store_args a;
    a.argc = 0;
    store_arg_str(&a, "HSET");
    store_arg_key(&a, s, STORE_KEY_LOT, l->id);
    if (with_static)
        store_lot_hash_static(&a, l);
    store_arg_str(&a, "occupied");
    if (l->has_data) store_arg_i64(&a, l->occupied); else store_arg_str(&a, "");
    store_arg_str(&a, "free");
    if (l->has_data) store_arg_i64(&a, lot_free_spaces(l)); else store_arg_str(&a, "");
    if (lot_tracks_unknown(l)) {
        store_arg_str(&a, "unknown");
        if (l->has_data) store_arg_i64(&a, l->unknown); else store_arg_str(&a, "");
    }
    store_arg_str(&a, "free_smoothed");
    if (l->has_data) store_arg_fixed(&a, l->smooth.smoothed, 1); else store_arg_str(&a, "");
    store_arg_str(&a, "occupancy");
    if (l->has_data) store_arg_fixed(&a, lot_occupancy(l), 3); else store_arg_str(&a, "");
    store_arg_str(&a, "trend_per_hour");
    if (l->has_data) store_arg_fixed(&a, sm_trend_per_hour(&l->smooth), 1); else store_arg_str(&a, "");
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
    if (zn_any(l->groups)) {
        s->group_names->n = 0;
        store_lot_groups(&a, s->group_names, l, with_static);
    }
    store_send(s, &a);
}

/* A gates lot's cars per zone and category cannot be recounted from sensors: they are kept as
 * zone:<id>:cars and cat:<name>:cars. A removed zone's field stays, ignored, and counts again
 * if a zone of that id comes back. */
static void store_lot_group_cars(store_args *a, store_group_names *names, const lot *l)
{
    const zn_resolver *r = l->groups;
    for (int z = 0; z < r->n_zones; z++) {
        store_arg_group_field(a, names, "zone", r->zones[z].id, "cars");
        store_arg_i64(a, l->zones[z].raw);
    }
    for (int c = 0; c < CFG_N_CATEGORIES; c++)
        if ((r->cats_set >> c) & 1u) {
            store_arg_group_field(a, names, "cat", cfg_category_name((enum cfg_category)c), "cars");
            store_arg_i64(a, l->cats[c].raw);
        }
}

/* Exact values (store_arg_exact) for the restore, apart from the display hash. RARE
 * (STORE_LOT_STATE_RARE): the fields that change seldom too; else only those an event changes,
 * which is most lot writes under load. */
static void store_lot_state_rare(store_args *a, const lot *l);

static void store_lot_state(store *s, const lot *l, bool rare)
{
    store_args a;
    a.argc = 0;
    store_arg_str(&a, "HSET");
    store_arg_key(&a, s, STORE_KEY_STATE, l->id);
    store_arg_str(&a, "occupied");
    store_arg_i64(&a, l->occupied);
    store_arg_str(&a, "ts_ms");
    store_arg_i64(&a, l->ts_ms);
    store_arg_str(&a, "sm_ts_ms");
    store_arg_i64(&a, l->smooth.ts_ms);
    store_arg_str(&a, "sm_value");
    store_arg_exact(&a, l->smooth.value);
    store_arg_str(&a, "sm_smoothed");
    store_arg_exact(&a, l->smooth.smoothed);
    store_arg_str(&a, "sm_trend");
    store_arg_exact(&a, l->smooth.trend_per_ms);
    if (rare)
        store_lot_state_rare(&a, l);
    if (l->source == CFG_SOURCE_GATES && zn_any(l->groups)) {
        s->group_names->n = 0;
        store_lot_group_cars(&a, s->group_names, l);
    }
    store_send(s, &a);
}

static void store_lot_state_rare(store_args *a, const lot *l)
{
    store_arg_str(a, "has_data");
    store_arg_str(a, l->has_data ? "1" : "0");
    store_arg_str(a, "count_ts_ms");
    store_arg_i64(a, l->count_ts_ms);
    store_arg_str(a, "count_value");
    store_arg_i64(a, l->count_value);
    store_arg_str(a, "count_free");
    store_arg_str(a, l->count_is_free ? "1" : "0");
    store_arg_str(a, "status");
    store_arg_str(a, lot_status_name(l->status));
    store_arg_str(a, "sm_started");
    store_arg_str(a, l->smooth.started ? "1" : "0");
    /* an operator's closure (SPEC §10) survives restarts: the retained message may not come */
    store_arg_str(a, "closed");
    store_arg_str(a, l->closed ? "1" : "0");
    store_arg_str(a, "closed_reason");
    store_arg_str(a, l->closed_reason);
    store_arg_str(a, "closed_until_ms");
    store_arg_i64(a, l->has_closed_until ? l->closed_until_ms : -1);
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
    store_arg_key(&w->pub, w->s, STORE_KEY_BAYS, w->l->id);
    w->state.argc = 0;
    store_arg_str(&w->state, "HSET");
    store_arg_key(&w->state, w->s, STORE_KEY_BAYSTATE, w->l->id);
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
    char *slot = w->state.num[w->state.argc];     /* "<0|1>:<ts_ms>" */
    slot[0] = b->occupied ? '1' : '0';
    slot[1] = ':';
    store_arg(&w->state, slot, 2 + util_format_i64(slot + 2, sizeof w->state.num[0] - 2, b->ts_ms));
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
    store_arg_key(&w->a, w->s, STORE_KEY_GATESEQ, l->id);
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
    store_lot_hash(s, l, what & STORE_LOT_STATIC, wall_ms);
    store_lot_state(s, l, what & (STORE_LOT_STATE_RARE | STORE_LOT_STATIC | STORE_LOT_ALL_SENSORS));
    store_lot_bays(s, l, what & STORE_LOT_ALL_SENSORS);
    store_lot_gates(s, l, what & STORE_LOT_ALL_SENSORS);
}

void store_batch_lot_ids(store *s, lot *const *lots, size_t n)
{
    store_args *a = util_xmalloc(sizeof *a);
    a->argc = 0;
    store_arg_str(a, "DEL");
    store_arg_key(a, s, STORE_KEY_LOTS, NULL);
    store_send(s, a);
    for (size_t i = 0; i < n;) {
        a->argc = 0;
        store_arg_str(a, "SADD");
        store_arg_key(a, s, STORE_KEY_LOTS, NULL);
        for (; i < n && a->argc < STORE_ARGS_MAX; i++)
            store_arg_str(a, lots[i]->id);
        store_send(s, a);
    }
    free(a);
}

void store_batch_history(store *s, const char *lot_id, const hist_entry *e)
{
    store_args a;
    a.argc = 0;
    store_arg_str(&a, "XADD");
    store_arg_key(&a, s, STORE_KEY_HISTORY, lot_id);
    store_arg_str(&a, "MAXLEN");
    store_arg_str(&a, "~");
    store_arg_i64(&a, s->cfg->history.max_len);
    store_arg_fmt(&a, "%" PRId64 "-%" PRIu64, e->ms, e->seq);
    if (s->open) {
        /* one message's history entry may fail (an id behind the stream's top) without
         * failing what the batch stores */
        store_batch *b = s->open;
        util_grow((void **)&b->tolerated, &b->cap_tolerated, b->n_tolerated + 1,
                  sizeof *b->tolerated);
        b->tolerated[b->n_tolerated++] = b->n_cmds;
    }
    store_arg_str(&a, "occupied");
    store_arg_i64(&a, e->occupied);
    store_arg_str(&a, "free");
    store_arg_i64(&a, e->free);
    store_arg_str(&a, "free_smoothed");
    store_arg_fixed(&a, e->free_smoothed, 1);
    if (e->has_unknown) {
        store_arg_str(&a, "unknown");
        store_arg_i64(&a, e->unknown);
    }
    for (size_t i = 0; i < e->n_groups; i++) {
        store_arg_str(&a, e->groups[i].field);
        store_arg_i64(&a, e->groups[i].free);
    }
    store_send(s, &a);
}

void store_batch_model_clear(store *s, const char *lot_id)
{
    store_args a;
    a.argc = 0;
    store_arg_str(&a, "DEL");
    store_arg_key(&a, s, STORE_KEY_MODEL, lot_id);
    store_send(s, &a);
}

/* Model fields are long (profiles, error rings), so this argv points at the caller's strings. */
void store_batch_model(store *s, const char *lot_id, size_t n, const char *const *fields,
                       const char *const *values)
{
    if (!n)
        return;
    size_t argc = 2 + 2 * n;
    const char **argv = util_xcalloc(argc, sizeof *argv);
    size_t *len = util_xcalloc(argc, sizeof *len);
    char key[STORE_KEY_MAX];
    argv[0] = "HSET";
    len[0] = 4;
    argv[1] = key;
    len[1] = store_key(s, STORE_KEY_MODEL, lot_id, key, sizeof key);
    for (size_t i = 0; i < n; i++) {
        argv[2 + 2 * i] = fields[i];
        len[2 + 2 * i] = strlen(fields[i]);
        argv[3 + 2 * i] = values[i];
        len[3 + 2 * i] = strlen(values[i]);
    }
    store_send_argv(s, (int)argc, argv, len);
    free(argv);
    free(len);
}

static void store_forecast_field(void *ctx, const char *field, const char *value)
{
    store_args *a = ctx;
    if (a->argc + 2 > STORE_ARGS_MAX)
        abort();    /* FC_MAX_HORIZONS * 4 + 1 fields always fit */
    store_arg_copy(a, field);
    store_arg_copy(a, value);
}

void store_batch_forecast(store *s, const char *lot_id, const fc_forecast *f)
{
    store_args *a = util_xmalloc(sizeof *a);
    a->argc = 0;
    store_arg_str(a, "DEL");
    store_arg_key(a, s, STORE_KEY_FORECAST, lot_id);
    store_send(s, a);
    a->argc = 0;
    store_arg_str(a, "HSET");
    store_arg_key(a, s, STORE_KEY_FORECAST, lot_id);
    fc_forecast_fields(f, store_forecast_field, a);
    store_send(s, a);
    free(a);
}

void store_batch_update(store *s, const char *json, size_t len)
{
    store_args a;
    a.argc = 0;
    store_arg_str(&a, "PUBLISH");
    store_arg_key(&a, s, STORE_KEY_UPDATES, NULL);
    store_arg(&a, json, len);
    store_send(s, &a);
}

void store_batch_daemon(store *s, int64_t started_ms, const store_counters *c,
                        const store_counters *more)
{
    store_args *a = util_xmalloc(sizeof *a);
    a->argc = 0;
    store_arg_str(a, "HSET");
    store_arg_key(a, s, STORE_KEY_DAEMON, NULL);
    store_arg_str(a, "version");
    store_arg_str(a, PARKD_VERSION);
    store_arg_str(a, "pid");
    store_arg_i64(a, (int64_t)getpid());
    store_arg_str(a, "started_ms");
    store_arg_i64(a, started_ms);
    for (size_t i = 0; i < c->n && a->argc + 2 <= STORE_ARGS_MAX; i++) {
        store_arg_str(a, c->names[i]);
        store_arg_u64(a, c->values[i]);
    }
    if (s->leader[0]) {
        store_arg_str(a, "leader");
        store_arg_str(a, s->leader);
        store_arg_str(a, "epoch");
        store_arg_fmt(a, "%" PRIu64, s->fence_epoch);
    }
    for (size_t i = 0; more && i < more->n && a->argc + 2 <= STORE_ARGS_MAX; i++) {
        store_arg_str(a, more->names[i]);
        store_arg_u64(a, more->values[i]);
    }
    store_send(s, a);
    if (s->leader[0])
        store_batch_instance(s, a);
    free(a);
}

int store_batch_begin(store *s)
{
    if (!store_is_writable(s))
        return -ENOTCONN;
    if (s->open)
        abort();    /* two owners of one batch: the bug this API exists to prevent */
    if (!s->fence_epoch && redisAsyncCommand(s->ac, NULL, NULL, "MULTI") != REDIS_OK)
        return -ENOTCONN;
    s->open = store_batch_new(s);
    return 0;
}

bool store_batch_is_open(const store *s)
{
    return s->open != NULL;
}

/* NULL when the transaction did what it must, else why not. An error of a tolerated command
 * (a history entry) is logged, rate-limited, and does not fail it: the other commands of the
 * transaction ran, and one message's history entry must not hold up storing the rest. */
static const char *store_exec_refusal(store *s, const store_batch *b, const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR)
        return b->cause[0] ? b->cause : reply->str;
    if (reply->type != REDIS_REPLY_ARRAY)
        return "transaction aborted";
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ERROR)
            continue;
        if (!store_batch_tolerates(b, i))
            return e->str;
        unsigned long suppressed;
        if (log_limit_pass(&s->tolerated_log, 10000, 5, &suppressed))
            log_warning("redis: a history entry was not written: %s (%lu similar suppressed)",
                        e->str, suppressed);
    }
    return NULL;
}

static void store_on_resend_timer(uv_timer_t *timer)
{
    store *s = timer->data;
    if (!store_is_connected(s) || s->closing)
        return;     /* the disconnect failed the batches */
    for (store_batch *b = s->head; b; b = b->next)
        store_send_kept(s, b);
}

/* Every batch has its reply for this round and the head was refused: all go again, in order,
 * after a backoff that only a confirmed batch resets. */
static void store_schedule_resend(store *s)
{
    int rc = uv_timer_start(&s->resend_timer, store_on_resend_timer, s->resend_backoff_ms, 0);
    if (rc < 0)
        log_error("redis: cannot schedule sending the refused batch again: %s", uv_strerror(rc));
    s->resend_backoff_ms = s->resend_backoff_ms * 2 > STORE_RESEND_MAX_MS
                               ? STORE_RESEND_MAX_MS
                               : s->resend_backoff_ms * 2;
}

/* The cause once when Redis starts refusing, or when the cause changes; then at most every
 * STORE_REFUSAL_LOG_MS, with how long it has lasted. */
static void store_note_refusal(store *s, const char *cause)
{
    s->refusals++;
    s->refusals_now++;
    unsigned long suppressed;
    if (!s->refusing || strcmp(cause, s->refusal_cause) != 0) {
        if (!s->refusing)
            s->refusing_since_ms = util_wall_ms();
        s->refusing = true;
        snprintf(s->refusal_cause, sizeof s->refusal_cause, "%s", cause);
        s->refusal_log.window_start_ms = util_wall_ms();
        log_error("redis: refuses writes: %s; the input stays unacknowledged, and the batch is "
                  "sent again with backoff (up to %d s)", cause, STORE_RESEND_MAX_MS / 1000);
    } else if (log_limit_pass(&s->refusal_log, STORE_REFUSAL_LOG_MS, 1, &suppressed)) {
        log_warning("redis: still refuses writes: %s (%" PRIu64 " attempts in %.0f s)", cause,
                    s->refusals_now, (double)(util_wall_ms() - s->refusing_since_ms) / 1000.0);
    }
}

static void store_confirm_head(store *s)
{
    store_batch *b = s->head;
    s->head = b->next;
    if (!s->head)
        s->tail = NULL;
    s->n_batches--;
    if (s->refusing) {
        log_info("redis: takes writes again, after %" PRIu64 " refused attempts in %.1f s",
                 s->refusals_now, (double)(util_wall_ms() - s->refusing_since_ms) / 1000.0);
        s->refusing = false;
    }
    s->refusals_now = 0;
    s->resend_backoff_ms = STORE_RESEND_MIN_MS;
    s->backoff_ms = STORE_BACKOFF_MIN_MS;   /* a connection that stores is a good one */
    s->confirmed_seq = b->seq;
    b->done(b->ctx, b->token, true);
    store_batch_recycle(s, b);
}

static void store_wait_replicas(store *s, store_batch *b);
static void store_wait_next(store *s);

static void store_on_exec(redisAsyncContext *ac, void *r, void *privdata)
{
    store_batch *b = privdata;
    store *s = b->s;
    store_got_reply(s);
    s->execs_waiting--;
    if (!r)
        return;     /* the connection went: store_fail_batches fails every batch */
    if (s->fence_epoch && store_fence_exec_done(s, b, r))
        return;
    const char *refusal = store_exec_refusal(s, b, r);
    if (refusal) {
        b->refused = true;
        store_note_refusal(s, refusal);
    } else if (s->cfg->redis.min_replicas_ack > 0) {
        store_wait_replicas(s, b);  /* executed on the master; confirmed once replicated */
    } else if (b == s->head) {
        store_confirm_head(s);
    }
    /* else an earlier batch was refused: this one goes again after it, so they stay in order */
    if (s->head && s->head->refused && s->execs_waiting == 0 && !s->closing)
        store_schedule_resend(s);
    else if (s->fence_epoch)
        store_fence_next(s);
}

/* MULTI, B's commands as they were built, EXEC. */
static void store_send_batch(store *s, store_batch *b)
{
    b->refused = false;
    b->cause[0] = '\0';
    int rc = redisAsyncCommand(s->ac, NULL, NULL, "MULTI");
    size_t from = 0;
    for (size_t i = 0; i < b->n_cmds && rc == REDIS_OK; i++) {
        rc = redisAsyncFormattedCommand(s->ac, store_on_queued, b, b->buf + from,
                                        b->ends[i] - from);
        from = b->ends[i];
    }
    if (rc == REDIS_OK && store_command(s, store_on_exec, b, "EXEC") == 0) {
        s->execs_waiting++;
        return;
    }
    log_warning("redis: a batch was not sent: the connection is closing");
}

/* The batch's last command: SET <prefix>written <run>:<seq>. Inside the transaction, so a
 * Redis that holds a batch's mark holds everything of it and of the batches before it (AOF
 * and RDB keep whole transactions, in order): after a reconnect, the mark says whether Redis
 * still has all that was confirmed, and which batches in flight it executed. */
static void store_batch_mark(store *s, store_batch *b)
{
    store_args a;
    a.argc = 0;
    store_arg_str(&a, "SET");
    store_arg_key(&a, s, STORE_KEY_WRITTEN, NULL);
    store_arg_fmt(&a, "%s:%" PRIu64, s->run_id, b->seq);
    store_send(s, &a);
}

/* What no connection outlives: the open batch, those not sent whole, the refusal round. */
static void store_drop_round(store *s)
{
    store_batch_free(s->open);
    s->open = NULL;
    while (s->dead) {
        store_batch *b = s->dead;
        s->dead = b->next;
        store_batch_free(b);
    }
    s->execs_waiting = 0;
    s->on_wire = NULL;
    s->wait_in_flight = false;
    s->refusing = false;
    s->refusals_now = 0;
    uv_timer_stop(&s->resend_timer);
}

/* The connection is gone, but Redis may still hold everything (a timeout, a network blip, a
 * restart with persistence): the batches stay, to be checked against the mark once connected
 * again. Without a confirmed batch there is nothing to check against, so they fail. */
static void store_keep_batches(store *s)
{
    if (s->closing || s->confirmed_seq == 0)
        store_fail_batches(s);
    else
        store_drop_round(s);
}

/* Every kept batch fails (done with ok = false), in order: the caller writes all again. */
static void store_fail_batches(store *s)
{
    store_drop_round(s);
    while (s->head) {
        store_batch *b = s->head;
        s->head = b->next;
        s->n_batches--;
        b->done(b->ctx, b->token, false);
        store_batch_free(b);
    }
    s->tail = NULL;
    s->resend_backoff_ms = STORE_RESEND_MIN_MS;
}

int store_batch_commit(store *s, uint64_t token, void (*done)(void *ctx, uint64_t token, bool ok),
                       void *ctx)
{
    store_batch *b = s->open;
    if (!b)
        abort();
    b->seq = ++s->next_seq;
    store_batch_mark(s, b);
    s->open = NULL;
    if (s->fence_epoch)
        return store_fence_commit(s, b, token, done, ctx);
    if (!store_is_connected(s) || store_command(s, store_on_exec, b, "EXEC") < 0) {
        /* hiredis may still call back for the commands it took: keep B until it cannot */
        b->next = s->dead;
        s->dead = b;
        return -ENOTCONN;
    }
    store_keep(s, b, token, done, ctx);
    s->execs_waiting++;
    return 0;
}


/* ---- replicas (SPEC §11 redis.min_replicas_ack) ---- */

/* WAIT N: Redis answers once N replicas have every write of this connection so far, or after
 * the timeout with how many have. Until N do, a batch is not confirmed, so its input is not
 * acknowledged: an acknowledged car survives the master's loss. One WAIT at a time covers
 * every batch executed before it was sent (s->wait_seq), and is asked again until enough
 * replicas answer: one loop, however many batches wait, so the lease's renewals queued
 * behind it wait at most one WAIT. */
static void store_on_wait(redisAsyncContext *ac, void *r, void *privdata)
{
    store *s = privdata;
    store_got_reply(s);
    s->wait_in_flight = false;
    redisReply *reply = r;
    if (!reply)
        return;     /* the connection went: the batches are kept, checked against the mark */
    long long got = reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (got < s->cfg->redis.min_replicas_ack) {
        unsigned long suppressed;
        if (log_limit_pass(&s->replica_log, 30000, 1, &suppressed))
            log_warning("redis: %lld of %d replicas have the last batch; its input waits "
                        "(redis.min_replicas_ack)", got < 0 ? 0 : got,
                        s->cfg->redis.min_replicas_ack);
    } else {
        for (store_batch *b = s->head; b; b = b->next)
            if (b->executed && b->seq <= s->wait_seq)
                b->replicated = true;
        while (s->head && s->head->replicated)
            store_confirm_head(s);
    }
    store_wait_next(s);
}

/* A WAIT for the batches executed and not yet seen on enough replicas, if none is out. */
static void store_wait_next(store *s)
{
    if (s->wait_in_flight || !store_is_connected(s))
        return;
    uint64_t newest = 0;
    for (store_batch *b = s->head; b; b = b->next)
        if (b->executed && !b->replicated)
            newest = b->seq;
    if (!newest)
        return;
    s->wait_seq = newest;
    /* WAIT blocks the connection until it answers: briefly, so that the lease's renewals
     * and the other batches queued behind it go on */
    if (store_command(s, store_on_wait, s, "WAIT %d %d", s->cfg->redis.min_replicas_ack,
                      STORE_WAIT_MS) == 0)
        s->wait_in_flight = true;
}

static void store_wait_replicas(store *s, store_batch *b)
{
    b->executed = true;
    store_wait_next(s);
}

/* ---- fencing (SPEC §11) ---- */

/* A kept batch goes again: at once without fencing; fenced, it waits its turn through the
 * fence check. */
static void store_send_kept(store *s, store_batch *b)
{
    if (!s->fence_epoch) {
        store_send_batch(s, b);
        return;
    }
    b->sent = false;
    store_fence_next(s);
}

/* Another instance holds a newer epoch: this one must not write a byte more. Every batch is
 * dropped (not failed: nothing is to be written again) and the owner told once. */
static void store_fence_lose(store *s, const char *why)
{
    if (s->fence_lost)
        return;
    s->fence_lost = true;
    log_error("redis: fenced: %s; this instance writes nothing more", why);
    if (s->cb->on_fenced)
        s->cb->on_fenced(s->ctx);
}

static void store_on_fence_check(redisAsyncContext *ac, void *r, void *privdata)
{
    store_batch *b = privdata;
    store *s = b->s;
    store_got_reply(s);
    redisReply *reply = r;
    if (!reply || s->on_wire != b)
        return;     /* the connection went: the batch is kept and checked again */
    char want[32];
    snprintf(want, sizeof want, "%" PRIu64, s->fence_epoch);
    if (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, want) != 0) {
        redisAsyncCommand(s->ac, NULL, NULL, "UNWATCH");
        char why[96];
        snprintf(why, sizeof why, "the epoch is %s, not %s",
                 reply->type == REDIS_REPLY_STRING ? reply->str : "unset", want);
        store_fence_lose(s, why);
        return;
    }
    b->sent = true;
    store_send_batch(s, b);     /* MULTI ... EXEC: aborted if the epoch moves meanwhile */
}

/* The next batch that has not gone out, if none is on the wire: WATCH and GET the epoch. */
static void store_fence_next(store *s)
{
    if (s->on_wire || s->fence_lost || !store_is_connected(s) || s->closing)
        return;
    store_batch *b = s->head;
    while (b && b->sent)
        b = b->next;
    if (!b)
        return;
    char key[STORE_KEY_MAX];
    store_key(s, STORE_KEY_EPOCH, NULL, key, sizeof key);
    s->on_wire = b;
    if (redisAsyncCommand(s->ac, NULL, NULL, "WATCH %s", key) != REDIS_OK ||
        store_command(s, store_on_fence_check, b, "GET %s", key) < 0)
        s->on_wire = NULL;      /* the connection is going: the reconnect sends it again */
}

/* The EXEC of a fenced batch: a nil reply is the WATCH that saw the epoch move. Returns true
 * when that ended it here; else the usual confirmation follows. */
static bool store_fence_exec_done(store *s, store_batch *b, const redisReply *reply)
{
    if (s->on_wire == b)
        s->on_wire = NULL;
    if (reply->type != REDIS_REPLY_NIL)
        return false;
    store_fence_lose(s, "the epoch changed before the transaction ran");
    return true;
}

/* B joins the kept batches, to be confirmed in order with DONE(CTX, TOKEN, ok). */
static void store_keep(store *s, store_batch *b, uint64_t token,
                       void (*done)(void *ctx, uint64_t token, bool ok), void *ctx)
{
    b->token = token;
    b->done = done;
    b->ctx = ctx;
    b->sent = false;
    if (s->tail)
        s->tail->next = b;
    else
        s->head = b;
    s->tail = b;
    s->n_batches++;
}

static int store_fence_commit(store *s, store_batch *b, uint64_t token,
                              void (*done)(void *ctx, uint64_t token, bool ok), void *ctx)
{
    if (s->fence_lost || !store_is_connected(s)) {
        b->next = s->dead;
        s->dead = b;
        return -ENOTCONN;
    }
    store_keep(s, b, token, done, ctx);
    store_fence_next(s);
    return 0;
}

void store_set_leader(store *s, const char *leader, int64_t instance_ttl_ms)
{
    snprintf(s->leader, sizeof s->leader, "%s", leader ? leader : "");
    s->instance_ttl_ms = instance_ttl_ms;
}

void store_set_fence(store *s, uint64_t epoch)
{
    s->fence_epoch = epoch;
    s->fence_lost = false;
}

bool store_is_fenced(const store *s)
{
    return s->fence_lost;
}

/* ---- the lease (SPEC §11) ---- */

/* KEYS: leader, epoch; ARGV: instance, epoch held (0: none), lease ms. Renews the lease when
 * it is this instance's at that epoch, takes it with a new epoch when nobody holds it; returns
 * the epoch held, or 0 with the holder as the second element. One script: atomic. */
static const char store_lease_script[] =
    "local cur = redis.call('GET', KEYS[1]) "
    "if ARGV[2] ~= '0' then "
    "  if cur == ARGV[1] .. ':' .. ARGV[2] then "
    "    redis.call('PEXPIRE', KEYS[1], ARGV[3]) return {tonumber(ARGV[2]), cur} end "
    "  return {0, cur or ''} end "
    "if cur then return {0, cur} end "
    "local e = redis.call('INCR', KEYS[2]) "
    "local v = ARGV[1] .. ':' .. e "
    "redis.call('SET', KEYS[1], v, 'PX', ARGV[3]) "
    "return {e, v}";

typedef struct store_lease_req {
    store *s;
    void (*done)(void *ctx, uint64_t epoch, const char *holder);
    void *ctx;
} store_lease_req;

static void store_on_lease(redisAsyncContext *ac, void *r, void *privdata)
{
    store_lease_req *req = privdata;
    store *s = req->s;
    store_got_reply(s);
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_warning("redis: lease: %s", reply->str);
        req->done(req->ctx, UINT64_MAX, NULL);      /* no answer: unknown */
    } else {
        const redisReply *h = reply->element[1];
        req->done(req->ctx, (uint64_t)reply->element[0]->integer,
                  h->type == REDIS_REPLY_STRING ? h->str : "");
    }
    free(req);
}

int store_lease(store *s, const char *instance, uint64_t epoch, int64_t lease_ms,
                void (*done)(void *ctx, uint64_t epoch, const char *holder), void *ctx)
{
    if (!store_is_connected(s))
        return -ENOTCONN;
    char leader[STORE_KEY_MAX], ep[STORE_KEY_MAX], e[24], ms[24];
    store_key(s, STORE_KEY_LEADER, NULL, leader, sizeof leader);
    store_key(s, STORE_KEY_EPOCH, NULL, ep, sizeof ep);
    snprintf(e, sizeof e, "%" PRIu64, epoch);
    snprintf(ms, sizeof ms, "%" PRId64, lease_ms);
    store_lease_req *req = util_xmalloc(sizeof *req);
    *req = (store_lease_req){ s, done, ctx };
    if (store_command(s, store_on_lease, req, "EVAL %s 2 %s %s %s %s %s", store_lease_script,
                      leader, ep, instance, e, ms) < 0) {
        free(req);
        return -ENOTCONN;
    }
    return 0;
}

/* Gives the lease up if INSTANCE holds it at EPOCH (a clean stop): a standby takes it at its
 * next try instead of after the lease. Fire and forget. */
int store_lease_release(store *s, const char *instance, uint64_t epoch)
{
    if (!store_is_connected(s))
        return -ENOTCONN;
    char leader[STORE_KEY_MAX], value[160];
    store_key(s, STORE_KEY_LEADER, NULL, leader, sizeof leader);
    snprintf(value, sizeof value, "%s:%" PRIu64, instance, epoch);
    return redisAsyncCommand(s->ac, NULL, NULL,
                             "EVAL %s 1 %s %s",
                             "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                             "return redis.call('DEL', KEYS[1]) end return 0",
                             leader, value) == REDIS_OK ? 0 : -ENOTCONN;
}

/* The active's own <prefix>instance:<id>, in its (fenced) batch: an active writes nothing
 * outside batches, so a fenced one writes nothing at all. A ARGV scratch. */
static void store_batch_instance(store *s, store_args *a)
{
    char key[STORE_KEY_MAX + 80];
    int n = snprintf(key, sizeof key, "%sinstance:%s", s->cfg->redis.prefix, s->leader);
    a->argc = 0;
    store_arg_str(a, "HSET");
    store_arg(a, key, (size_t)n);
    store_arg_str(a, "role");
    store_arg_str(a, "active");
    store_arg_str(a, "pid");
    store_arg_i64(a, (int64_t)getpid());
    store_arg_str(a, "epoch");
    store_arg_fmt(a, "%" PRIu64, s->fence_epoch);
    store_arg_str(a, "updated_ms");
    store_arg_i64(a, util_wall_ms());
    store_send(s, a);
    a->argc = 0;
    store_arg_str(a, "PEXPIRE");
    store_arg(a, key, (size_t)n);
    store_arg_i64(a, s->instance_ttl_ms);
    store_send(s, a);
}

/* <prefix>instance:<id>: a standby's own, refreshed by it, gone TTL_MS after it stops. */
int store_instance(store *s, const char *instance, const char *role, uint64_t epoch,
                   int64_t ttl_ms)
{
    if (!store_is_connected(s))
        return -ENOTCONN;
    char key[STORE_KEY_MAX + 80];
    snprintf(key, sizeof key, "%sinstance:%s", s->cfg->redis.prefix, instance);
    int rc = redisAsyncCommand(s->ac, NULL, NULL, "HSET %s role %s pid %d epoch %" PRIu64
                               " updated_ms %" PRId64, key, role, (int)getpid(), epoch,
                               util_wall_ms());
    if (rc == REDIS_OK)
        rc = redisAsyncCommand(s->ac, NULL, NULL, "PEXPIRE %s %" PRId64, key, ttl_ms);
    return rc == REDIS_OK ? 0 : -ENOTCONN;
}

size_t store_batches_in_flight(const store *s)
{
    return s->n_batches;
}

uint64_t store_refusals(const store *s)
{
    return s->refusals;
}

bool store_is_refusing(const store *s)
{
    return s->refusing;
}

/* ---- restore ---- */

typedef struct store_restore_job {
    store *s;
    size_t pending;
    bool failed;
    store_model_fn model;
    void (*done)(void *ctx, int status);
    void *ctx;
} store_restore_job;

enum store_restore_what { STORE_R_STATE, STORE_R_BAYS, STORE_R_GATES, STORE_R_MODEL };

typedef struct store_restore_req {
    store_restore_job *job;
    lot *l;
    enum store_restore_what what;
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

/* A closure is kept also for a lot that never had data, so it is restored first. */
static void store_restore_closure(lot *l, const redisReply *r)
{
    if (store_hash_i64(r, "closed", 0) != 1)
        return;
    const char *reason = store_hash_get(r, "closed_reason");
    int64_t until = store_hash_i64(r, "closed_until_ms", -1);
    lot_restore_closure(l, reason ? reason : "", until >= 0, until);
}

/* zone:<id>:cars and cat:<name>:cars of a gates lot (store_lot_group_cars). */
static void store_restore_group_cars(lot *l, const redisReply *r)
{
    if (l->source != CFG_SOURCE_GATES || !zn_any(l->groups))
        return;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        int64_t cars;
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            !store_parse_i64(v->str, &cars) || f->len < 6 ||
            strcmp(f->str + f->len - 5, ":cars") != 0)
            continue;
        char id[STORE_GROUP_FIELD_MAX];
        bool zone = strncmp(f->str, "zone:", 5) == 0, cat = strncmp(f->str, "cat:", 4) == 0;
        size_t skip = zone ? 5 : 4, n = f->len - skip - 5;
        if ((!zone && !cat) || f->len < skip + 5 || n >= sizeof id)
            continue;
        memcpy(id, f->str + skip, n);
        id[n] = '\0';
        if (zone)
            lot_restore_zone(l, id, cars);
        for (int c = 0; cat && c < CFG_N_CATEGORIES; c++)
            if (!strcmp(id, cfg_category_name((enum cfg_category)c)))
                lot_restore_category(l, (enum cfg_category)c, cars);
    }
}

static void store_restore_state(lot *l, const redisReply *r)
{
    store_restore_closure(l, r);
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
    lot_restore_count(l, store_hash_i64(r, "count_value", -1),
                      store_hash_i64(r, "count_free", 0) == 1);
    store_restore_group_cars(l, r);
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

static void store_restore_model(const store_restore_job *job, lot *l, const redisReply *r)
{
    size_t n = r->elements / 2;
    const char **fields = util_xcalloc(n + 1, sizeof *fields);
    const char **values = util_xcalloc(n + 1, sizeof *values);
    for (size_t i = 0; i < n; i++) {
        fields[i] = r->element[2 * i]->str;
        values[i] = r->element[2 * i + 1]->str;
    }
    job->model(job->ctx, l, n, fields, values);
    free(fields);
    free(values);
}

static void store_on_restore_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    store_restore_req *req = privdata;
    store_restore_job *job = req->job;
    redisReply *reply = r;
    store_got_reply(job->s);
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_error("redis: restore of lot %s failed: %s", req->l->id, reply->str);
        job->failed = true;
    } else if (!job->failed) {
        switch (req->what) {
        case STORE_R_STATE: store_restore_state(req->l, reply); break;
        case STORE_R_BAYS: store_restore_bays(req->l, reply); break;
        case STORE_R_GATES: store_restore_gates(req->l, reply); break;
        case STORE_R_MODEL: store_restore_model(job, req->l, reply); break;
        }
    }
    free(req);
    if (--job->pending == 0) {
        job->done(job->ctx, job->failed ? -EIO : 0);
        free(job);
    }
}

int store_restore(store *s, lot *const *lots, size_t n, store_model_fn model,
                  void (*done)(void *ctx, int status), void *ctx)
{
    static const enum store_key keys[] = { STORE_KEY_STATE, STORE_KEY_BAYSTATE, STORE_KEY_GATESEQ,
                                           STORE_KEY_MODEL };
    if (!store_is_connected(s) || s->open)
        return -ENOTCONN;
    store_restore_job *job = util_xcalloc(1, sizeof *job);
    *job = (store_restore_job){ s, 1, false, model, done, ctx };   /* held while sending */
    for (size_t i = 0; i < n; i++) {
        for (int what = STORE_R_STATE; what <= STORE_R_MODEL; what++) {
            store_restore_req *req = util_xmalloc(sizeof *req);
            *req = (store_restore_req){ job, lots[i], (enum store_restore_what)what };
            char key[STORE_KEY_MAX];
            size_t len = store_key(s, keys[what], lots[i]->id, key, sizeof key);
            if (store_command(s, store_on_restore_reply, req, "HGETALL %b", key, len) < 0) {
                free(req);
                job->failed = true;
                continue;
            }
            job->pending++;
        }
    }
    if (--job->pending == 0) {
        done(ctx, job->failed ? -EIO : 0);
        free(job);
    }
    return 0;
}

/* ---- shutdown ---- */

/* The close's deadline: Redis did not answer in time, so the replies in flight are given up
 * (the input they hold is unacknowledged and comes again). */
static void store_on_close_deadline(uv_timer_t *timer)
{
    store *s = timer->data;
    if (!s->ac)
        return;
    log_warning("redis: no answer before the shutdown deadline; closing without it");
    redisAsyncContext *ac = s->ac;
    bool connected = ac->c.flags & REDIS_CONNECTED;
    s->failing = true;
    redisAsyncFree(ac);     /* a connected context's disconnect callback closes the handles */
    if (!connected) {
        s->ac = NULL;
        store_fail_batches(s);
        store_close_handles(s);
    }
}

static void store_on_sentinel_closed(void *ctx)
{
    store *s = ctx;
    if (--s->handles_open == 0 && s->close_done)
        s->close_done(s->close_ctx);
}

void store_close(store *s, uint64_t timeout_ms, void (*done)(void *ctx), void *ctx)
{
    s->closing = true;
    s->close_done = done;
    s->close_ctx = ctx;
    if (s->sen) {
        s->handles_open++;
        sen_close(s->sen, store_on_sentinel_closed, s);
    }
    uv_timer_stop(&s->reconnect_timer);
    uv_timer_stop(&s->resend_timer);
    if (s->ac && (s->ac->c.flags & REDIS_CONNECTED)) {
        /* hiredis waits for the replies in flight, for at most TIMEOUT_MS (the timer is
         * armed first: the disconnect may complete, and close the handles, right away) */
        if (uv_timer_start(&s->reconnect_timer, store_on_close_deadline, timeout_ms, 0) < 0)
            log_error("redis: cannot time the close");
        redisAsyncDisconnect(s->ac);    /* the disconnect callback closes the handles */
        return;
    }
    if (s->ac) {
        /* still connecting: hiredis calls no disconnect callback for such a context */
        redisAsyncFree(s->ac);
        s->ac = NULL;
    }
    store_fail_batches(s);
    store_close_handles(s);
}

void store_free(store *s)
{
    if (!s)
        return;
    store_fail_batches(s);
    store_batch_free(s->spare);
    free(s->bay_writer);
    free(s->gate_writer);
    free(s->group_names);
    sen_free(s->sen);
    free(s);
}
