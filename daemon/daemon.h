/* daemon: parkd's lifecycle as one explicit state machine, and what it tells systemd.
 *
 *   CONNECTING --redis up--> RESTORING --lots restored--> STARTING --mqtt subscribed and the
 *   daemon hash stored--> READY <--> RELOADING (added lots restoring) ; any --TERM--> DRAINING
 *
 * It owns the modules' wiring (store, forecaster, pipeline, MQTT client, metrics thread), the
 * signal, tick and watchdog handles, the startup chain (nothing is read from MQTT before every
 * lot is restored), reload (reload.h's plan, carried out with input paused while added lots are
 * restored), the shutdown drain, STATUS and the metrics snapshot. */
#ifndef PARKD_DAEMON_H
#define PARKD_DAEMON_H

#include <uv.h>

#include "config.h"
#include "input.h"

enum daemon_state {
    DAEMON_CONNECTING,      /* waiting for Redis */
    DAEMON_RESTORING,       /* reading every lot's state */
    DAEMON_STARTING,        /* restored; MQTT connecting, identity being stored */
    DAEMON_READY,
    DAEMON_RELOADING,       /* a reload's added lots are being restored; input paused */
    DAEMON_DRAINING,        /* stopping: writing and publishing what is pending */
    DAEMON_STOPPED,
    DAEMON_STANDBY          /* SPEC §11: another instance holds the lease; Redis only */
};

typedef struct parkd parkd;

/* A daemon for CFG and its INPUTS (inp_load; it takes ownership of both) read from CONFIG_PATH
 * (kept for reloads) on LOOP.
 * The process time zone must already be set (util_set_timezone). Never NULL: exits 1 when
 * the loop cannot take the signal handles (no file descriptors left). */
parkd *daemon_new(uv_loop_t *loop, const char *config_path, cfg_config *cfg, inp_set *inputs);

/* Starts connecting, the timers, the signal handlers and the metrics thread. Returns 0, or a
 * negative errno (the daemon is then stopping: run the loop to let it close). */
int daemon_start(parkd *d);

enum daemon_state daemon_state(const parkd *d);
const char *daemon_state_name(enum daemon_state s);

/* The exit status once the loop has ended: 0, 1 (fatal) or 78 (configuration). */
int daemon_exit_code(const parkd *d);

/* After the loop ended: frees everything (modules in reverse order of creation). */
void daemon_free(parkd *d);

#endif
