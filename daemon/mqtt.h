/* mqtt: parkd's MQTT client. libmosquitto driven by the libuv loop through its socket: a uv_poll
 * on mosquitto_socket(), write interest from mosquitto_want_write(), a timer for
 * mosquitto_loop_misc(); no libmosquitto thread. Reconnects with backoff and re-subscribes.
 *
 * Acknowledge only what is stored: the client runs libmosquitto in "threaded" mode so that every
 * outgoing packet (QoS 1 PUBACKs included) is only queued, and it writes the queue only once the
 * caller has marked every message read so far as stored (mq_mark_stored). While input is
 * unstored it also stops reading, so unstored input is bounded by one read burst. At QoS 0
 * (nothing to acknowledge, nothing redelivered) this barrier is off. */
#ifndef PARKD_MQTT_H
#define PARKD_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"

typedef struct mq_client mq_client;

#define MQ_MAX_SUBS (4 + CFG_MAX_INPUTS)   /* admin, the inputs it carries, count, gate, bay */

/* One connection: where, who, what to subscribe to, and whether it is parkd's own (it then
 * announces <out>/status "online" and has the will "offline"). mq_new copies everything. */
typedef struct mq_settings {
    const char *label;          /* log prefix: "mqtt", "input tts" */
    const char *key;            /* config path of the section, for error messages: "mqtt" */
    const char *host;
    int port;
    const char *client_id;
    const char *username, *password_file;
    const char *tls_ca_file, *tls_cert_file, *tls_key_file;
    int64_t keepalive_ms;
    int qos;
    bool clean_session;
    const char *subs[MQ_MAX_SUBS];  /* topic filters; the last one's SUBACK means connected */
    int sub_qos[MQ_MAX_SUBS];
    size_t n_subs;
    const char *status_topic;   /* NULL: none (a network server's broker) */
    bool debug_log;             /* libmosquitto's own log lines at log level debug */
} mq_settings;

/* The settings of CFG's main connection: its input and admin subscriptions, and the topic of
 * each input that has no connection of its own. Strings point into CFG. */
void mq_settings_main(const cfg_config *cfg, mq_settings *out);
/* The settings of input INPUT's own connection (CFG->inputs[INPUT].has_mqtt). */
void mq_settings_input(const cfg_config *cfg, size_t input, mq_settings *out);

typedef struct mq_callbacks {
    /* A message arrived; TOPIC and PAYLOAD are valid during the call only. May call
     * mq_publish (it only queues: input just read is unstored, so nothing is written) and
     * mq_messages_read, no other mq_* function. */
    void (*on_message)(void *ctx, const char *topic, const void *payload, size_t len);
    /* Connected and subscribed (after every reconnect too). */
    void (*on_connected)(void *ctx);
    /* The connection was lost (a reconnect is scheduled). */
    void (*on_disconnected)(void *ctx);
} mq_callbacks;

/* A client with settings S (copied); CB must outlive the client. Reads the password file.
 * Returns NULL and sets *err (malloc'd, caller frees) on a bad setting (unreadable password
 * file, TLS files rejected by libmosquitto). */
mq_client *mq_new(uv_loop_t *loop, const mq_settings *s, const mq_callbacks *cb, void *ctx,
                  char **err);

/* Starts connecting; failures are retried with backoff, so this only fails (negative errno) if
 * the loop cannot take the timer. */
int mq_start(mq_client *c);

/* Publishes PAYLOAD retained at QoS 1 on TOPIC. Returns 0, or -ENOTCONN when not connected
 * (the caller republishes on the next on_connected), or -EIO. */
int mq_publish(mq_client *c, const char *topic, const char *payload, size_t len);

/* Number of MQTT messages delivered to on_message since the start. */
uint64_t mq_messages_read(const mq_client *c);

/* Every message up to number UPTO (as counted by mq_messages_read) has its effect stored:
 * queued packets may be written and reading resumes. */
void mq_mark_stored(mq_client *c, uint64_t upto);

/* Pauses or resumes reading input (e.g. while a reload restores added lots). */
void mq_set_paused(mq_client *c, bool paused);

/* Stops or resumes reading while the caller has too much in flight (QoS 0, where the
 * storage barrier does not hold input back). */
void mq_set_backpressure(mq_client *c, bool on);

/* Stops reading input for good (shutdown). */
void mq_stop_input(mq_client *c);

bool mq_is_connected(const mq_client *c);

/* QoS 1 publishes not yet acknowledged by the broker. */
size_t mq_publishes_unacked(const mq_client *c);

/* Number of reconnects so far (for metrics and status). */
uint64_t mq_reconnects(const mq_client *c);

/* Graceful end: publishes <out>/status "offline", writes everything queued (for at most
 * TIMEOUT_MS), disconnects and closes all handles, then calls DONE(CTX). With unstored input it
 * sends nothing (that would acknowledge it) and lets the broker publish the will instead.
 * The client may then be freed with mq_free. */
void mq_close(mq_client *c, uint64_t timeout_ms, void (*done)(void *ctx), void *ctx);
void mq_free(mq_client *c);

/* Whether TOPIC matches the subscription FILTER (MQTT's + and # wildcards). */
bool mq_topic_matches(const char *filter, const char *topic);

/* Global libmosquitto init/cleanup, once per process. */
void mq_library_init(void);
void mq_library_cleanup(void);

#endif
