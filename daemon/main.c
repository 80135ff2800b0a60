/* parkd: the command line, and the process around the daemon (daemon.h): configuration,
 * logging, time zone and library setup before the loop, teardown after it. */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "config.h"
#include "daemon.h"
#include "input.h"
#include "log.h"
#include "mqtt.h"
#include "notify.h"
#include "util.h"

#define EXIT_USAGE 64
#define EXIT_CONFIG 78

/* ---- main ---- */

static void parkd_usage(FILE *out)
{
    fprintf(out,
            "usage: parkd -c FILE [--check]\n"
            "       parkd --version | --help\n"
            "Real-time parking availability: MQTT sensor input, occupancy in Redis,\n"
            "availability and forecasts on retained MQTT topics.\n"
            "  -c, --config FILE  configuration (YAML)\n"
            "  --check            validate the configuration, print \"FILE: ok\" or the errors\n"
            "  --version          print the version\n"
            "  --help             this text\n"
            "Signals: HUP reloads the configuration; TERM/INT stop cleanly.\n"
            "Exit status: 0 ok, 78 configuration error, 1 other fatal error.\n");
}

typedef struct parkd_args {
    const char *config;
    bool check;
} parkd_args;

/* Returns -1 to go on, else an exit status. */
static int parkd_parse_args(int argc, char **argv, parkd_args *a)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'k' },
        { "version", no_argument, NULL, 'V' },      { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 'k': a->check = true; break;
        case 'V': printf("parkd %s\n", PARKD_VERSION); return 0;
        case 'h': parkd_usage(stdout); return 0;
        default: parkd_usage(stderr); return EXIT_USAGE;
        }
    }
    if (!a->config || optind != argc) {
        parkd_usage(stderr);
        return EXIT_USAGE;
    }
    return -1;
}

/* Shows WARNINGS (and frees them): on stderr for --check, else as log lines. */
static void parkd_warn(const parkd_args *a, const cfg_config *cfg, char *warnings)
{
    if (a->check) {
        fputs(warnings, stderr);
    } else {
        log_init(cfg->log_level);
        log_warning("%s", warnings);
    }
    free(warnings);
}

/* The configuration's errors (or the devices files', SPEC §9): on stderr for --check, else
 * as log lines (under systemd each one a journal entry of priority error). */
static void parkd_reject(const parkd_args *a, char *errors)
{
    if (a->check) {
        fputs(errors, stderr);
    } else {
        log_init(CFG_LOG_INFO);
        log_error("%s", errors);
        log_error("configuration rejected: not starting");
    }
    free(errors);
}

static int parkd_load_config(const parkd_args *a, cfg_config **cfg, inp_set **inputs)
{
    char *errors = NULL;
    if (cfg_load(a->config, cfg, &errors) < 0) {
        parkd_reject(a, errors);
        return EXIT_CONFIG;
    }
    if (!(*inputs = inp_load(*cfg, &errors))) {
        parkd_reject(a, errors);
        cfg_free(*cfg);
        return EXIT_CONFIG;
    }
    char *warnings = NULL;
    if (cfg_check_secret_files(*cfg, &warnings) > 0)
        parkd_warn(a, *cfg, warnings);
    if (cfg_check_memory(*cfg, &warnings) > 0)
        parkd_warn(a, *cfg, warnings);
    if (a->check) {
        printf("%s: ok\n", a->config);
        inp_free(*inputs);
        cfg_free(*cfg);
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    parkd_args args = { 0 };
    int rc = parkd_parse_args(argc, argv, &args);
    if (rc >= 0)
        return rc;
    cfg_config *cfg = NULL;
    inp_set *inputs = NULL;
    rc = parkd_load_config(&args, &cfg, &inputs);
    if (rc >= 0)
        return rc;
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("parkd: ignoring SIGPIPE");
        inp_free(inputs);
        cfg_free(cfg);
        return 1;
    }
    log_init(cfg->log_level);
    /* Before any thread: setenv is not thread-safe, and the metrics thread formats times. A
     * changed timezone therefore takes a restart (its reload column says so). */
    util_set_timezone(cfg->timezone);
    notify_init();
    mq_library_init();
    uv_loop_t *loop = uv_default_loop();
    parkd *d = daemon_new(loop, args.config, cfg, inputs);
    if (daemon_start(d) < 0)
        log_error("cannot start; stopping");
    rc = uv_run(loop, UV_RUN_DEFAULT);
    (void)rc;   /* non-zero only when uv_stop was called, which nothing does */
    int code = daemon_exit_code(d);
    daemon_free(d);
    rc = uv_loop_close(loop);
    if (rc < 0)
        log_warning("loop closed with handles open: %s", uv_strerror(rc));
    mq_library_cleanup();
    log_info("stopped");
    return code;
}
