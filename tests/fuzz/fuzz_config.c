/* fuzz_config: libFuzzer target for cfg_load (SPEC §6).
 *
 * cfg_load reads a path, so each input is written to one file per process (in /dev/shm when it
 * exists, to keep the disk out of the loop) and loaded. Besides sanitizer reports it aborts
 * when cfg_load breaks its contract: a result that is neither a config nor errors, an error line
 * without the "PATH:" prefix, or an accepted config whose values lie outside what the key table
 * allows (SPEC §2 ids, capacities, ascending horizons, hysteresis below almost_full). An
 * accepted config also goes through cfg_check_secret_files when every file it names is a relative
 * path without "..", so that a fuzzed path stays inside the working directory (tests/fuzz/run.sh
 * runs from the source tree) and never opens a device, which can have side effects. The
 * directory is not changed: libFuzzer reads its corpus by relative paths. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void die(const char *what)
{
    fprintf(stderr, "fuzz_config: %s (input in %s)\n", what, path);
    abort();
}

static void cleanup(void)
{
    if (path[0])
        unlink(path);
}

static void set_up(void)
{
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/parkd-fuzz-config.%ld.yaml", dir, (long)getpid());
    atexit(cleanup);
}

/* Every *_file of C is relative and free of "..", so it names nothing outside the working
 * directory. */
static int files_contained(const cfg_config *c)
{
    const char *files[] = {c->mqtt.password_file, c->mqtt.tls_ca_file, c->mqtt.tls_cert_file,
                           c->mqtt.tls_key_file, c->redis.password_file};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i] && (files[i][0] == '/' || strstr(files[i], "..")))
            return 0;
    return 1;
}

static int id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return 0;
    }
    return 1;
}

static void check_config(const cfg_config *c)
{
    if (!c->mqtt.host || !*c->mqtt.host || !c->mqtt.client_id || !c->mqtt.input_prefix ||
        !c->mqtt.output_prefix || !c->redis.host || !c->redis.prefix)
        die("a required string is unset");
    if (strpbrk(c->mqtt.input_prefix, "+#") || strpbrk(c->mqtt.output_prefix, "+#"))
        die("a topic prefix holds a wildcard");
    if (c->mqtt.port < 1 || c->mqtt.port > 65535 || c->redis.port < 1 || c->redis.port > 65535)
        die("port out of range");
    if (c->mqtt.qos < 0 || c->mqtt.qos > 2 || c->redis.db < 0 || c->redis.db > 15)
        die("qos or db out of range");
    if (!c->mqtt.tls_cert_file != !c->mqtt.tls_key_file)
        die("TLS cert without key");
    if (c->mqtt.password_file && !c->mqtt.username)
        die("mqtt password without a user name");
    if (c->limits.max_payload < 1 || c->limits.max_bays_per_lot < 1 || c->limits.max_future_ms < 0)
        die("limits out of range");
    if (c->forecast.n_horizons < 1 || !c->forecast.horizons_ms)
        die("no horizons");
    for (size_t i = 0; i < c->forecast.n_horizons; i++)
        if (c->forecast.horizons_ms[i] <= 0 || c->forecast.horizons_ms[i] % 60000 ||
            (i && c->forecast.horizons_ms[i] <= c->forecast.horizons_ms[i - 1]))
            die("horizons not whole minutes, ascending and unique");
    if (c->n_lots < 1 || !c->lots)
        die("no lots");
    for (size_t i = 0; i < c->n_lots; i++) {
        const cfg_lot *l = &c->lots[i];
        if (!id_ok(l->id) || !l->name || !*l->name)
            die("lot id or name invalid");
        if (l->capacity < 1 || l->stale_after_ms < 1)
            die("lot capacity or stale_after out of range");
        if (!(l->almost_full > 0 && l->almost_full <= 1) || !(l->hysteresis >= 0) ||
            !(l->hysteresis < l->almost_full))
            die("lot thresholds out of range");
        if (cfg_find_lot(c, l->id) != &c->lots[i])
            die("duplicate lot id accepted");
    }
}

static void check_errors(const char *errors)
{
    size_t plen = strlen(path);
    if (!errors || !*errors)
        die("failed without errors");
    for (const char *s = errors; *s;) {
        const char *nl = strchr(s, '\n');
        if (!nl)
            die("error text does not end with a newline");
        if (strncmp(s, path, plen) != 0 || s[plen] != ':')
            die("error line without the PATH: prefix");
        s = nl + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0])
        set_up();
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        die("cannot write the input file");
    cfg_config *cfg = (cfg_config *)1;
    char *errors = (char *)1;
    int rc = cfg_load(path, &cfg, &errors);
    if (rc == 0) {
        if (!cfg || errors)
            die("success with no config or with errors");
        check_config(cfg);
        if (files_contained(cfg)) {
            char *warnings;
            int n = cfg_check_secret_files(cfg, &warnings);
            if ((n > 0) != (warnings != NULL))
                die("cfg_check_secret_files count and text disagree");
            free(warnings);
        }
        cfg_free(cfg);
    } else {
        if (rc != -1 || cfg)
            die("failure with a config");
        check_errors(errors);
        free(errors);
    }
    return 0;
}
