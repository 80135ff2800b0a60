/* notify: the systemd notification protocol (sd_notify), a no-op outside systemd. */
#ifndef PARKD_NOTIFY_H
#define PARKD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Reads NOTIFY_SOCKET / WATCHDOG_USEC once. */
void notify_init(void);
void notify_ready(void);
void notify_reloading(void);
void notify_stopping(void);
/* STATUS=<text>, sent only when the text changed. */
void notify_status(const char *text);
/* WATCHDOG=1 when the service has a watchdog. */
void notify_watchdog(void);
/* The interval at which notify_watchdog must be called (half the watchdog timeout), or 0. */
uint64_t notify_watchdog_interval_ms(void);

#endif
