/* sentinel: where the Redis master is, from Redis Sentinel (SPEC §11 redis.sentinels,
 * redis.master_name). Asks the sentinels in turn (SENTINEL get-master-addr-by-name) whenever
 * the store needs to know, and keeps a subscription to +switch-master on one of them, so a
 * failover is followed within a round trip of the sentinels' announcement. AUTH with
 * redis.username / redis.password_file, as for Redis. Loop thread only. */
#ifndef PARKD_SENTINEL_H
#define PARKD_SENTINEL_H

#include <uv.h>

#include "config.h"

typedef struct sentinel sentinel;

/* ON_MASTER(CTX, host, port) runs with each answer (the same master again too) and with each
 * +switch-master for the master; HOST is valid during the call. CFG outlives it (sen_set_config swaps it). */
sentinel *sen_new(uv_loop_t *loop, const cfg_config *cfg,
                  void (*on_master)(void *ctx, const char *host, int port), void *ctx);
/* The running configuration after a reload (the old one is freed; the sentinel keys apply at
 * start only, so what they say does not change). */
void sen_set_config(sentinel *s, const cfg_config *cfg);

/* Subscribes to +switch-master and asks for the master. Returns 0 or a negative errno. */
int sen_start(sentinel *s);

/* Asks the sentinels for the master now (a lost or refused connection: it may have moved). */
void sen_ask(sentinel *s);

/* Closes its connections and timer, then DONE(CTX). */
void sen_close(sentinel *s, void (*done)(void *ctx), void *ctx);
void sen_free(sentinel *s);

#endif
