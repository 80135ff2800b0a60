#include "mqtt.h"

#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define MQ_READ_BURST 1024          /* messages read per wake-up before storing them */
#define MQ_SEND_WINDOW 100          /* our QoS 1 publishes in flight: libmosquitto walks its
                                     * queue on every PUBACK, so a long one costs per ack */
#define MQ_MISC_INTERVAL_MS 1000    /* keepalive and retry bookkeeping */
#define MQ_BACKOFF_MIN_MS 250
#define MQ_BACKOFF_MAX_MS 30000

struct mq_client {
    uv_loop_t *loop;
    mq_settings set;            /* its strings owned (mq_copy_settings) */
    const mq_callbacks *cb;
    void *ctx;
    struct mosquitto *mosq;
    int last_sub_mid;           /* the last SUBSCRIBE's message id: its SUBACK means connected */

    uv_poll_t poll;
    bool poll_open;             /* poll handle initialised and not yet closed */
    int poll_fd;
    int poll_events;
    uv_timer_t misc_timer;
    uv_timer_t reconnect_timer;
    uint64_t backoff_ms;

    bool started;
    bool connecting;            /* a socket exists (connect in progress or connected) */
    bool connected;             /* CONNACK received and subscribed */
    bool announce_connected;    /* on_connected is due once libmosquitto has returned */
    bool input_stopped;
    bool paused;
    bool backpressure;          /* the caller has too much in flight to take more input */
    bool barrier;               /* QoS > 0: acknowledge only stored input (see mqtt.h) */
    bool closing;
    bool ack_wait;              /* closing: reading only the broker's acknowledgements */
    bool in_library;            /* inside a libmosquitto loop call: never re-enter it */
    uint64_t messages_read;
    uint64_t messages_stored;
    uint64_t held_since;        /* loop time unstored input began to hold the barrier, or 0 */
    uint64_t reconnects;
    size_t unacked;

    uv_timer_t close_timer;
    uint64_t close_deadline;
    int handles_to_close;
    void (*close_done)(void *ctx);
    void *close_ctx;
    char socket_error[160];     /* the text of the last socket error, for the log */
};

static void mq_on_poll(uv_poll_t *handle, int status, int events);
static void mq_schedule_reconnect(mq_client *c);
static void mq_watch_library_log(mq_client *c, bool connecting);

static const char *mq_strerror(int rc)
{
    if (rc == MOSQ_ERR_ERRNO)
        return strerror(errno);
    if (rc == MOSQ_ERR_KEEPALIVE)   /* libmosquitto 2.0.11 calls it "Unknown error." */
        return "no answer from the broker within mqtt.keepalive";
    return mosquitto_strerror(rc);
}

/* The poll handle is open and not on its way out: uv_close must run once per handle, and a
 * closing handle must not be started again. */
static bool mq_poll_live(const mq_client *c)
{
    return c->poll_open && !uv_is_closing((const uv_handle_t *)&c->poll);
}

/* What stops a read burst midway: not unstored input, which a burst is meant to gather into
 * one batch (MQ_READ_BURST bounds it), but a pause, backpressure, or a closing client that
 * read a message it must not acknowledge. */
static bool mq_burst_blocked(const mq_client *c)
{
    if (c->ack_wait)
        return c->messages_read > c->messages_stored;   /* see mq_on_message */
    return c->input_stopped || c->paused || c->backpressure;
}

/* Whether to watch for input at all: unstored input also waits for its batch. */
static bool mq_input_blocked(const mq_client *c)
{
    return mq_burst_blocked(c) || (c->barrier && c->messages_read > c->messages_stored);
}

/* At QoS 0 there is nothing to acknowledge and nothing will be redelivered, so the barrier
 * would only slow input down. */
static bool mq_writes_allowed(const mq_client *c)
{
    return !c->barrier || c->messages_read == c->messages_stored;
}

static void mq_on_poll_closed(uv_handle_t *handle)
{
    mq_client *c = handle->data;
    c->poll_open = false;
    if (c->closing) {
        if (--c->handles_to_close == 0 && c->close_done)
            c->close_done(c->close_ctx);
        return;
    }
    mq_schedule_reconnect(c);
}

/* A broker that refuses the client certificate sends a TLS alert and closes; when parkd's
 * CONNECT reaches the closed socket first, the reset discards the unread alert, and all that
 * is left to say is the reset. Say what it most likely means. */
static const char *mq_tls_reset_hint(const mq_client *c, const char *why)
{
    if (!c->set.tls_ca_file || !strstr(why, strerror(ECONNRESET)))
        return "";
    return c->set.tls_cert_file
               ? " (right after the TLS handshake: the broker may have refused the client "
                 "certificate; its log says why)"
               : " (right after the TLS handshake: the broker may require a client "
                 "certificate, and mqtt.tls.cert_file is not set)";
}

/* libmosquitto closes its socket itself on errors, so the poll handle must go at once: a new
 * socket could reuse the fd number, and libuv would then unregister the wrong file. */
static void mq_drop_socket(mq_client *c, const char *why)
{
    if (c->poll_open && uv_is_closing((uv_handle_t *)&c->poll))
        return;     /* already being dropped: its close callback schedules the reconnect */
    bool was_connected = c->connected;
    c->connected = false;
    c->connecting = false;
    mq_watch_library_log(c, true);
    /* Messages read but unacknowledged will be redelivered on the new session; their effects
     * are applied already and are idempotent, so nothing waits for them any more. */
    c->messages_stored = c->messages_read;
    c->held_since = 0;
    c->unacked = 0;
    if (was_connected) {
        log_warning("%s: connection lost: %s", c->set.label, why);
        c->cb->on_disconnected(c->ctx);
    } else {
        log_warning("%s: cannot connect to %s:%d: %s%s", c->set.label, c->set.host, c->set.port,
                    why, mq_tls_reset_hint(c, why));
    }
    if (c->poll_open) {
        uv_close((uv_handle_t *)&c->poll, mq_on_poll_closed);
    } else if (!c->closing) {
        mq_schedule_reconnect(c);
    }
}

static void mq_update_poll(mq_client *c)
{
    if (!mq_poll_live(c) || c->closing)
        return;
    int fd = mosquitto_socket(c->mosq);
    if (fd != c->poll_fd) {
        mq_drop_socket(c, "socket closed");
        return;
    }
    int events = 0;
    if (!mq_input_blocked(c))
        events |= UV_READABLE;
    if (mq_writes_allowed(c) && mosquitto_want_write(c->mosq))
        events |= UV_WRITABLE;
    if (events == c->poll_events)
        return;
    c->poll_events = events;
    int rc = events ? uv_poll_start(&c->poll, events, mq_on_poll) : uv_poll_stop(&c->poll);
    if (rc < 0)
        log_error("%s: cannot watch socket: %s", c->set.label, uv_strerror(rc));
}

/* Writes what libmosquitto has queued, if the storage barrier allows it. Returns false when the
 * connection was dropped. */
static bool mq_flush_writes(mq_client *c)
{
    if (c->in_library || !mq_poll_live(c) || !mq_writes_allowed(c) ||
        !mosquitto_want_write(c->mosq))
        return true;    /* inside the library the poll callback writes once it has returned */
    c->in_library = true;
    int rc = mosquitto_loop_write(c->mosq, 1);
    c->in_library = false;
    if (rc != MOSQ_ERR_SUCCESS) {
        mq_drop_socket(c, mq_strerror(rc));
        return false;
    }
    return true;
}

static bool mq_socket_has_data(int fd)
{
    int avail = 0;
    return ioctl(fd, FIONREAD, &avail) == 0 && avail > 0;
}

/* A broker with Nagle's algorithm on (mosquitto's default: set_tcp_nodelay false) holds the
 * next message for parkd until parkd's kernel acknowledges the broker's last small packet (a
 * PUBACK of an output), which a delayed ACK puts off by up to 40 ms: a lone message between
 * bursts would wait for it. Quick ACKs are not sticky on Linux, so this is asked again after
 * every read. Not a TCP socket (a Unix socket): nothing to do, and the error says so. */
static void mq_ack_quickly(int fd)
{
    int on = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
}

/* One loop_read call may read many packets (libmosquitto sizes it by its queues), so the
 * burst is counted in messages. */
static void mq_read_burst(mq_client *c)
{
    uint64_t first = c->messages_read;
    while (c->messages_read - first < MQ_READ_BURST && !mq_burst_blocked(c)) {
        c->in_library = true;
        int rc = mosquitto_loop_read(c->mosq, 1);
        c->in_library = false;
        if (rc != MOSQ_ERR_SUCCESS) {
            mq_drop_socket(c, rc == MOSQ_ERR_CONN_LOST ? "closed by the broker" : mq_strerror(rc));
            return;
        }
        if (mosquitto_socket(c->mosq) != c->poll_fd) {
            mq_drop_socket(c, "socket closed");
            return;
        }
        if (!mq_socket_has_data(c->poll_fd))
            break;
    }
    mq_ack_quickly(c->poll_fd);
    if (c->barrier && c->messages_read > c->messages_stored && !c->held_since)
        c->held_since = uv_now(c->loop);
}

/* libuv reports any socket error as UV_EBADF; the socket itself knows what happened (a
 * refused connect, a reset). */
static const char *mq_socket_error(mq_client *c, int status)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->poll_fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
        snprintf(c->socket_error, sizeof c->socket_error, "%s%s", strerror(err),
                 util_connect_hint(err));
        return c->socket_error;
    }
    return status == UV_EBADF ? "closed by the broker" : uv_strerror(status);
}

static void mq_on_poll(uv_poll_t *handle, int status, int events)
{
    mq_client *c = handle->data;
    if (status < 0) {
        mq_drop_socket(c, mq_socket_error(c, status));
        return;
    }
    if ((events & UV_READABLE) && !mq_input_blocked(c)) {
        mq_read_burst(c);
        if (!mq_poll_live(c))
            return;
        if (c->announce_connected) {
            /* outside libmosquitto now, so the caller may publish */
            c->announce_connected = false;
            c->cb->on_connected(c->ctx);
            if (!mq_poll_live(c))
                return;
        }
    }
    if (events & UV_WRITABLE) {
        if (!mq_flush_writes(c))
            return;
    }
    mq_update_poll(c);
}

static bool mq_watch_socket(mq_client *c)
{
    int fd = mosquitto_socket(c->mosq);
    if (fd < 0)
        return false;
    int rc = uv_poll_init_socket(c->loop, &c->poll, fd);
    if (rc < 0) {
        log_error("%s: cannot watch socket %d: %s", c->set.label, fd, uv_strerror(rc));
        return false;
    }
    c->poll.data = c;
    c->poll_open = true;
    c->poll_fd = fd;
    c->poll_events = 0;
    mq_update_poll(c);
    return true;
}

static void mq_try_connect(mq_client *c)
{
    int rc;
    if (c->reconnects == 0 && !c->started) {
        c->started = true;
        rc = mosquitto_connect_async(c->mosq, c->set.host, c->set.port,
                                     (int)(c->set.keepalive_ms / 1000));
    } else {
        c->reconnects++;
        rc = mosquitto_reconnect_async(c->mosq);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        int err = errno;    /* before anything else can change it */
        log_warning("%s: cannot connect to %s:%d: %s%s", c->set.label, c->set.host, c->set.port,
                    rc == MOSQ_ERR_ERRNO ? strerror(err) : mosquitto_strerror(rc),
                    rc == MOSQ_ERR_ERRNO ? util_connect_hint(err) : "");
        mq_schedule_reconnect(c);
        return;
    }
    c->connecting = true;
    if (!mq_watch_socket(c))
        mq_drop_socket(c, "no socket");
}

static void mq_on_reconnect_timer(uv_timer_t *timer)
{
    mq_client *c = timer->data;
    if (!c->closing)
        mq_try_connect(c);
}

static void mq_schedule_reconnect(mq_client *c)
{
    if (c->closing)
        return;
    int rc = uv_timer_start(&c->reconnect_timer, mq_on_reconnect_timer, c->backoff_ms, 0);
    if (rc < 0)
        log_error("%s: cannot schedule a reconnect: %s", c->set.label, uv_strerror(rc));
    c->backoff_ms = c->backoff_ms * 2 > MQ_BACKOFF_MAX_MS ? MQ_BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void mq_on_misc_timer(uv_timer_t *timer)
{
    mq_client *c = timer->data;
    if (!mq_poll_live(c))
        return;
    c->in_library = true;
    int rc = mosquitto_loop_misc(c->mosq);
    c->in_library = false;
    if (rc == MOSQ_ERR_KEEPALIVE && c->held_since) {
        /* Nothing is written (not even PINGREQ) or read while input waits for Redis: the
         * cause is there, not at the broker. */
        char why[160];
        snprintf(why, sizeof why, "keepalive lapsed while input waited %.1f s for Redis to "
                 "store it (the broker delivers it again)",
                 (double)(uv_now(c->loop) - c->held_since) / 1000.0);
        mq_drop_socket(c, why);
        return;
    }
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN) {
        mq_drop_socket(c, mq_strerror(rc));
        return;
    }
    if (mq_flush_writes(c))
        mq_update_poll(c);
}

/* libmosquitto callbacks: they run inside loop_read/loop_write, so they only record and queue. */

static void mq_on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    mq_client *c = obj;
    if (rc != 0) {
        log_error("%s: broker refused the connection: %s", c->set.label, mosquitto_connack_string(rc));
        return;     /* the broker closes the socket; the read path reconnects */
    }
    /* The broker answers in order, so once the last SUBACK marks us connected, every
     * subscription is made (the admin one, QoS 1 whatever mqtt.qos: a lost closure is not a
     * glitch, comes first; the input one last). */
    c->last_sub_mid = -1;
    for (size_t i = 0; i < c->set.n_subs; i++) {
        int src = mosquitto_subscribe(mosq, &c->last_sub_mid, c->set.subs[i], c->set.sub_qos[i]);
        if (src != MOSQ_ERR_SUCCESS)
            log_error("%s: cannot subscribe to %s: %s", c->set.label, c->set.subs[i],
                      mq_strerror(src));
    }
}

/* The subscription a SUBACK answers: SUBSCRIBEs go out with consecutive message ids. */
static const char *mq_sub_of(const mq_client *c, int mid)
{
    int first = c->last_sub_mid - (int)c->set.n_subs + 1;
    int i = mid - first;
    return i >= 0 && (size_t)i < c->set.n_subs ? c->set.subs[i] : "?";
}

static void mq_on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted)
{
    mq_client *c = obj;
    const char *topic = mq_sub_of(c, mid);
    if (n < 1 || granted[0] > 2) {
        log_error("%s: broker refused the subscription to %s", c->set.label, topic);
        return;
    }
    if (mid != c->last_sub_mid) {
        log_info("%s: subscribed to %s (QoS %d)", c->set.label, topic, granted[0]);
        return;
    }
    c->connected = true;
    c->backoff_ms = MQ_BACKOFF_MIN_MS;
    mq_watch_library_log(c, false);
    log_info("%s: connected to %s:%d, subscribed to %s (QoS %d)", c->set.label, c->set.host,
             c->set.port, topic, granted[0]);
    if (c->set.status_topic) {
        int prc = mosquitto_publish(mosq, NULL, c->set.status_topic, 6, "online", 1, true);
        if (prc == MOSQ_ERR_SUCCESS)
            c->unacked++;
        else
            log_warning("%s: cannot publish %s: %s", c->set.label, c->set.status_topic,
                        mq_strerror(prc));
    }
    c->announce_connected = true;
}

static void mq_on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m)
{
    mq_client *c = obj;
    c->messages_read++;
    /* Closing: the input is not taken, and since it stays unstored its acknowledgement is
     * never written, so the broker delivers it again to the next session. */
    if (!c->ack_wait)
        c->cb->on_message(c->ctx, m->topic, m->payload, (size_t)m->payloadlen);
}

static void mq_on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    mq_client *c = obj;
    if (c->unacked)
        c->unacked--;
}

static void mq_on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
    (void)mosq; (void)obj; (void)rc;     /* handled where the socket is seen to close */
}

static void mq_on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
    const mq_client *c = obj;
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
        log_warning("%s: %s", c->set.label, str);
}

/* libmosquitto formats a line for every packet once a log callback is set (15 % of the
 * instructions under load), so it is set only while connecting — where its TLS and socket
 * errors matter — and at log level debug. */
static void mq_watch_library_log(mq_client *c, bool connecting)
{
    bool want = connecting || c->set.debug_log;
    mosquitto_log_callback_set(c->mosq, want ? mq_on_log : NULL);
}

static char *mq_error(const mq_client *c, const char *what, const char *detail)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s: %s: %s", c->set.label, what, detail);
    return util_xstrdup(buf);
}

/* libmosquitto answers a missing file with "Invalid function arguments"; say which. It
 * fopen()s the files on the loop, where a FIFO would block: only a regular file passes. */
static int mq_check_tls_file(const mq_client *c, char **err, const char *key, const char *path)
{
    int fd = path ? util_open_regular(path, NULL) : -1;
    if (fd >= 0)
        close(fd);
    if (!path || fd >= 0)
        return 0;
    char buf[600];
    snprintf(buf, sizeof buf, "%s: TLS: cannot read %s.tls.%s %s: %s", c->set.label, c->set.key,
             key, path, strerror(errno));
    *err = util_xstrdup(buf);
    return -1;
}

static int mq_configure_auth(mq_client *c, char **err)
{
    const mq_settings *set = &c->set;
    char *password = NULL;
    if (set->password_file) {
        password = util_read_secret_file(set->password_file);
        if (!password) {
            *err = mq_error(c, set->password_file, strerror(errno));
            return -1;
        }
    }
    int rc = MOSQ_ERR_SUCCESS;
    if (set->username || password)
        rc = mosquitto_username_pw_set(c->mosq, set->username, password);
    if (password) {
        explicit_bzero(password, strlen(password));
        free(password);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        *err = mq_error(c, "username/password", mosquitto_strerror(rc));
        return -1;
    }
    if (set->tls_ca_file || set->tls_cert_file) {
        if (mq_check_tls_file(c, err, "ca_file", set->tls_ca_file) < 0 ||
            mq_check_tls_file(c, err, "cert_file", set->tls_cert_file) < 0 ||
            mq_check_tls_file(c, err, "key_file", set->tls_key_file) < 0)
            return -1;
        rc = mosquitto_tls_set(c->mosq, set->tls_ca_file, NULL, set->tls_cert_file,
                               set->tls_key_file, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            *err = mq_error(c, "TLS files", mq_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static int mq_configure(mq_client *c, char **err)
{
    /* threaded mode: packets are only queued, and written when we call loop_write (see .h) */
    mosquitto_threaded_set(c->mosq, true);
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* Without it, an output written right after a PUBACK waits for the broker's delayed ACK of
     * the PUBACK (Nagle): 40 ms on Linux, on a lone message between bursts. */
    mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_max_inflight_messages_set(c->mosq, MQ_SEND_WINDOW);
    if (c->set.status_topic) {
        int rc = mosquitto_will_set(c->mosq, c->set.status_topic, 7, "offline", 1, true);
        if (rc != MOSQ_ERR_SUCCESS) {
            *err = mq_error(c, "will", mosquitto_strerror(rc));
            return -1;
        }
    }
    mosquitto_connect_callback_set(c->mosq, mq_on_connect);
    mosquitto_subscribe_callback_set(c->mosq, mq_on_subscribe);
    mosquitto_message_callback_set(c->mosq, mq_on_message);
    mosquitto_publish_callback_set(c->mosq, mq_on_publish);
    mosquitto_disconnect_callback_set(c->mosq, mq_on_disconnect);
    mq_watch_library_log(c, true);
    return mq_configure_auth(c, err);
}

static char *mq_dup(const char *s)
{
    return s ? util_xstrdup(s) : NULL;
}

/* The client's own copy of S, so a reload can free the configuration S pointed into. */
static void mq_copy_settings(mq_settings *to, const mq_settings *s)
{
    *to = *s;
    to->label = mq_dup(s->label);
    to->key = mq_dup(s->key);
    to->host = mq_dup(s->host);
    to->client_id = mq_dup(s->client_id);
    to->username = mq_dup(s->username);
    to->password_file = mq_dup(s->password_file);
    to->tls_ca_file = mq_dup(s->tls_ca_file);
    to->tls_cert_file = mq_dup(s->tls_cert_file);
    to->tls_key_file = mq_dup(s->tls_key_file);
    to->status_topic = mq_dup(s->status_topic);
    for (size_t i = 0; i < s->n_subs; i++)
        to->subs[i] = mq_dup(s->subs[i]);
}

static void mq_free_settings(mq_settings *s)
{
    const char *owned[] = { s->label, s->key, s->host, s->client_id, s->username,
                            s->password_file, s->tls_ca_file, s->tls_cert_file, s->tls_key_file,
                            s->status_topic };
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        free((char *)owned[i]);
    for (size_t i = 0; i < s->n_subs; i++)
        free((char *)s->subs[i]);
}

mq_client *mq_new(uv_loop_t *loop, const mq_settings *set, const mq_callbacks *cb, void *ctx,
                  char **err)
{
    mq_client *c = util_xcalloc(1, sizeof *c);
    c->loop = loop;
    mq_copy_settings(&c->set, set);
    c->cb = cb;
    c->ctx = ctx;
    c->poll_fd = -1;
    c->last_sub_mid = -1;
    c->backoff_ms = MQ_BACKOFF_MIN_MS;
    c->barrier = set->qos > 0;
    c->mosq = mosquitto_new(set->client_id, set->clean_session, c);
    if (!c->mosq) {
        *err = mq_error(c, "cannot create client", strerror(errno));
        mq_free_settings(&c->set);
        free(c);
        return NULL;
    }
    if (mq_configure(c, err) < 0) {
        mosquitto_destroy(c->mosq);
        mq_free_settings(&c->set);
        free(c);
        return NULL;
    }
    uv_timer_init(loop, &c->misc_timer);
    uv_timer_init(loop, &c->reconnect_timer);
    uv_timer_init(loop, &c->close_timer);
    c->misc_timer.data = c->reconnect_timer.data = c->close_timer.data = c;
    return c;
}

int mq_start(mq_client *c)
{
    int rc = uv_timer_start(&c->misc_timer, mq_on_misc_timer, MQ_MISC_INTERVAL_MS,
                            MQ_MISC_INTERVAL_MS);
    if (rc < 0)
        return rc;
    mq_try_connect(c);
    return 0;
}

int mq_publish(mq_client *c, const char *topic, const char *payload, size_t len)
{
    if (!c->connected)
        return -ENOTCONN;
    int rc = mosquitto_publish(c->mosq, NULL, topic, (int)len, payload, 1, true);
    if (rc == MOSQ_ERR_NO_CONN)
        return -ENOTCONN;
    if (rc != MOSQ_ERR_SUCCESS) {
        log_warning("%s: cannot publish on %s: %s", c->set.label, topic, mq_strerror(rc));
        return -EIO;
    }
    c->unacked++;
    if (mq_flush_writes(c))
        mq_update_poll(c);
    return 0;
}

uint64_t mq_messages_read(const mq_client *c)
{
    return c->messages_read;
}

void mq_mark_stored(mq_client *c, uint64_t upto)
{
    if (upto > c->messages_stored && upto <= c->messages_read)
        c->messages_stored = upto;
    if (c->messages_stored == c->messages_read)
        c->held_since = 0;
    if (mq_flush_writes(c))
        mq_update_poll(c);
}

void mq_set_paused(mq_client *c, bool paused)
{
    c->paused = paused;
    mq_update_poll(c);
}

void mq_set_backpressure(mq_client *c, bool on)
{
    if (c->backpressure == on)
        return;
    c->backpressure = on;
    mq_update_poll(c);
}

void mq_stop_input(mq_client *c)
{
    c->input_stopped = true;
    mq_update_poll(c);
}

bool mq_is_connected(const mq_client *c)
{
    return c->connected;
}

size_t mq_publishes_unacked(const mq_client *c)
{
    return c->unacked;
}

uint64_t mq_reconnects(const mq_client *c)
{
    return c->reconnects;
}

static void mq_on_handle_closed(uv_handle_t *handle)
{
    mq_client *c = handle->data;
    if (--c->handles_to_close == 0 && c->close_done)
        c->close_done(c->close_ctx);
}

static void mq_finish_close(mq_client *c)
{
    uv_timer_stop(&c->close_timer);
    c->ack_wait = false;
    /* A DISCONNECT would also flush PUBACKs of unstored input; without it the socket just
     * closes (at mq_free) and the broker publishes the will, "offline", by itself. */
    if (mq_poll_live(c) && mosquitto_socket(c->mosq) == c->poll_fd && mq_writes_allowed(c)) {
        int rc = mosquitto_disconnect(c->mosq);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_loop_write(c->mosq, 1);
        if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
            log_warning("%s: cannot disconnect cleanly: %s", c->set.label, mq_strerror(rc));
    }
    c->closing = true;
    c->handles_to_close = 4;
    uv_close((uv_handle_t *)&c->misc_timer, mq_on_handle_closed);
    uv_close((uv_handle_t *)&c->reconnect_timer, mq_on_handle_closed);
    uv_close((uv_handle_t *)&c->close_timer, mq_on_handle_closed);
    if (mq_poll_live(c))
        uv_close((uv_handle_t *)&c->poll, mq_on_poll_closed);
    else if (!c->poll_open)
        c->handles_to_close--;
    /* else a drop is already closing it; mq_on_poll_closed, seeing c->closing, counts it */
}

/* Done when every publish is acknowledged: then the broker has them all, and nothing is left
 * unread in the socket, which a close would turn into a reset (the broker then drops the
 * session as if the client had failed). Input read meanwhile stays unacknowledged. */
static bool mq_close_settled(const mq_client *c)
{
    return !c->connected || !mq_poll_live(c) || !mq_writes_allowed(c) ||
           (c->unacked == 0 && !mosquitto_want_write(c->mosq));
}

static void mq_on_close_tick(uv_timer_t *timer)
{
    mq_client *c = timer->data;
    if (mq_close_settled(c) || uv_now(c->loop) >= c->close_deadline) {
        if (!mq_close_settled(c))
            log_warning("%s: %zu publishes unacknowledged at shutdown", c->set.label, c->unacked);
        mq_finish_close(c);
        return;
    }
    if (mq_flush_writes(c))
        mq_update_poll(c);
}

void mq_close(mq_client *c, uint64_t timeout_ms, void (*done)(void *ctx), void *ctx)
{
    c->close_done = done;
    c->close_ctx = ctx;
    c->input_stopped = true;
    uv_timer_stop(&c->reconnect_timer);
    if (!c->connected || !mq_writes_allowed(c)) {
        mq_finish_close(c);
        return;
    }
    int rc;
    if (c->set.status_topic) {
        rc = mosquitto_publish(c->mosq, NULL, c->set.status_topic, 7, "offline", 1, true);
        if (rc == MOSQ_ERR_SUCCESS)
            c->unacked++;
        else
            log_warning("%s: cannot publish %s: %s", c->set.label, c->set.status_topic,
                        mq_strerror(rc));
    }
    c->ack_wait = true;
    c->close_deadline = uv_now(c->loop) + timeout_ms;
    if (mq_flush_writes(c))
        mq_update_poll(c);
    rc = uv_timer_start(&c->close_timer, mq_on_close_tick, 0, 10);
    if (rc < 0) {
        log_error("%s: cannot time the close: %s", c->set.label, uv_strerror(rc));
        mq_finish_close(c);
    }
}

void mq_free(mq_client *c)
{
    if (!c)
        return;
    mosquitto_destroy(c->mosq);
    mq_free_settings(&c->set);
    free(c);
}

bool mq_topic_matches(const char *filter, const char *topic)
{
    bool result = false;
    return mosquitto_topic_matches_sub(filter, topic, &result) == MOSQ_ERR_SUCCESS && result;
}

void mq_library_init(void)
{
    mosquitto_lib_init();
}

void mq_library_cleanup(void)
{
    mosquitto_lib_cleanup();
}

/* ---- settings ---- */

/* The main connection subscribes to parkd's input patterns only, never to a filter under which
 * its own outputs could fall: the default prefixes nest (parking, parking/out), and every
 * retained output read back would be input to acknowledge, held behind the storage barrier.
 * The admin subscription comes first (QoS 1 whatever mqtt.qos: a lost closure is no glitch),
 * the sensor patterns last (their SUBACK means connected). */
void mq_settings_main(const cfg_config *cfg, mq_settings *out)
{
    enum { MQ_SENSOR_PATTERNS = 3 };
    static const char *const patterns[MQ_SENSOR_PATTERNS] = { "+/count", "+/gate/+", "+/bay/+" };
    static char input_subs[MQ_SENSOR_PATTERNS][CFG_REDIS_PREFIX_MAX + 512], admin_sub[512],
        status[512];
    *out = (mq_settings){ .label = "mqtt", .key = "mqtt", .host = cfg->mqtt.host,
                          .port = cfg->mqtt.port, .client_id = cfg->mqtt.client_id,
                          .username = cfg->mqtt.username, .password_file = cfg->mqtt.password_file,
                          .tls_ca_file = cfg->mqtt.tls_ca_file,
                          .tls_cert_file = cfg->mqtt.tls_cert_file,
                          .tls_key_file = cfg->mqtt.tls_key_file,
                          .keepalive_ms = cfg->mqtt.keepalive_ms, .qos = cfg->mqtt.qos,
                          .clean_session = cfg->mqtt.clean_session,
                          .debug_log = cfg->log_level >= CFG_LOG_DEBUG };
    snprintf(admin_sub, sizeof admin_sub, "%s/+/state", cfg->mqtt.admin_prefix);
    out->sub_qos[out->n_subs] = 1;
    out->subs[out->n_subs++] = admin_sub;
    for (size_t i = 0; i < cfg->n_inputs; i++)
        if (!cfg->inputs[i].has_mqtt) {
            out->sub_qos[out->n_subs] = cfg->mqtt.qos;
            out->subs[out->n_subs++] = cfg->inputs[i].topic;
        }
    for (size_t i = 0; i < MQ_SENSOR_PATTERNS; i++) {
        snprintf(input_subs[i], sizeof input_subs[i], "%s/%s", cfg->mqtt.input_prefix,
                 patterns[i]);
        out->sub_qos[out->n_subs] = cfg->mqtt.qos;
        out->subs[out->n_subs++] = input_subs[i];
    }
    snprintf(status, sizeof status, "%s/status", cfg->mqtt.output_prefix);
    out->status_topic = status;
}

void mq_settings_input(const cfg_config *cfg, size_t input, mq_settings *out)
{
    static char label[CFG_INPUT_NAME_MAX + 16], key[32];
    const cfg_input *in = &cfg->inputs[input];
    const cfg_mqtt_conn *m = &in->mqtt;
    snprintf(label, sizeof label, "input %s", in->name);
    snprintf(key, sizeof key, "inputs[%zu].mqtt", input);
    *out = (mq_settings){ .label = label, .key = key, .host = m->host, .port = m->port,
                          .client_id = m->client_id, .username = m->username,
                          .password_file = m->password_file, .tls_ca_file = m->tls_ca_file,
                          .tls_cert_file = m->tls_cert_file, .tls_key_file = m->tls_key_file,
                          .keepalive_ms = m->keepalive_ms, .qos = m->qos,
                          .clean_session = m->clean_session,
                          .debug_log = cfg->log_level >= CFG_LOG_DEBUG };
    out->sub_qos[0] = m->qos;
    out->subs[0] = in->topic;
    out->n_subs = 1;
}
