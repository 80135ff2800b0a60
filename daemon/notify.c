#include "notify.h"

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "log.h"

static uint64_t notify_watchdog_usec;
static char notify_last_status[256];

void notify_init(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0)
        notify_watchdog_usec = usec;
}

static void notify_send(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0)
        log_debug("sd_notify(%s): %s", state, strerror(-rc));
}

void notify_ready(void)
{
    notify_send("READY=1");
}

void notify_reloading(void)
{
    struct timespec ts;
    char buf[64];
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* MONOTONIC_USEC lets newer systemd match the reload to this signal */
    snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    notify_send(buf);
}

void notify_stopping(void)
{
    notify_send("STOPPING=1");
}

void notify_status(const char *text)
{
    if (strcmp(text, notify_last_status) == 0)
        return;
    snprintf(notify_last_status, sizeof notify_last_status, "%s", text);
    char buf[300];
    snprintf(buf, sizeof buf, "STATUS=%s", notify_last_status);
    notify_send(buf);
}

void notify_watchdog(void)
{
    if (notify_watchdog_usec)
        notify_send("WATCHDOG=1");
}

uint64_t notify_watchdog_interval_ms(void)
{
    return notify_watchdog_usec / 2000;
}
