/* input: uplinks to bay events, per input (see input.h). */
#include "input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *const inp_counter_names[INP_C_COUNT] = {
    [INP_C_UPLINKS] = "uplinks", [INP_C_APPLIED] = "applied", [INP_C_UNCHANGED] = "unchanged",
    [INP_C_IGNORED_OLD] = "ignored_old", [INP_C_DUPLICATE] = "duplicate",
    [INP_C_NOT_UPLINK] = "not_uplink",
    [INP_C_REJECTED_UNKNOWN_DEVICE] = "rejected_unknown_device",
    [INP_C_REJECTED_MALFORMED] = "rejected_malformed",
    [INP_C_REJECTED_NO_FIELD] = "rejected_no_field",
    [INP_C_REJECTED_UNMAPPED_VALUE] = "rejected_unmapped_value",
    [INP_C_REJECTED_OVERSIZE] = "rejected_oversize",
    [INP_C_REJECTED_UNKNOWN_LOT] = "rejected_unknown_lot",
    [INP_C_REJECTED_FUTURE] = "rejected_future",
    [INP_C_REJECTED_WRONG_KIND] = "rejected_wrong_kind",
    [INP_C_REJECTED_TOO_MANY_BAYS] = "rejected_too_many_bays",
    [INP_C_REJECTED_AMBIGUOUS_ZONE] = "rejected_ambiguous_zone",
};

/* The last uplink applied from one device, for the duplicate check. */
typedef struct inp_last {
    uint32_t f_cnt;
    int64_t ts_ms;
    char key[];                 /* the devices file's key, the map's key */
} inp_last;

/* ---- loading ---- */

/* The value map of CFG (config.c checked every value, so a failure here is a bug). */
static void inp_build_values(const cfg_input *cfg, ul_value_map *values)
{
    char err[UL_ERRBUF_SIZE];
    memset(values, 0, sizeof *values);
    for (size_t k = 0; k < cfg->n_occupied_values + cfg->n_free_values; k++) {
        bool occupied = k < cfg->n_occupied_values;
        const char *text = occupied ? cfg->occupied_values[k]
                                    : cfg->free_values[k - cfg->n_occupied_values];
        ul_scalar sc;
        if (ul_scalar_parse(text, strlen(text), &sc, err) < 0 ||
            ul_map_add(values, occupied, &sc, err) < 0)
            abort();
    }
}

static int inp_load_one(inp_input *in, const cfg_input *cfg, char **errors)
{
    char err[UL_ERRBUF_SIZE];
    snprintf(in->name, sizeof in->name, "%s", cfg->name);
    in->format = cfg->format == CFG_INPUT_CHIRPSTACK_V4 ? UL_CHIRPSTACK_V4 : UL_TTN_V3;
    if (ul_path_parse(cfg->field, &in->path, err) < 0)
        abort();                /* config.c checked it */
    inp_build_values(cfg, &in->values);
    in->max_payload = cfg->max_payload;
    in->own_connection = cfg->has_mqtt;
    in->topic = util_xstrdup(cfg->topic);
    in->last = map_new();
    return dev_load(cfg->devices_file, &in->devices, errors);
}

inp_set *inp_load(const cfg_config *cfg, char **errors)
{
    inp_set *s = util_xcalloc(1, sizeof *s);
    s->inputs = util_xcalloc(cfg->n_inputs + 1, sizeof *s->inputs);
    s->n = cfg->n_inputs;
    *errors = NULL;
    for (size_t i = 0; i < s->n; i++) {
        char *err = NULL;
        if (inp_load_one(&s->inputs[i], &cfg->inputs[i], &err) == 0)
            continue;
        /* every file's errors, not just the first file's */
        size_t have = *errors ? strlen(*errors) : 0;
        *errors = util_xrealloc(*errors, have + strlen(err) + 1);
        strcpy(*errors + have, err);
        free(err);
    }
    if (*errors) {
        inp_free(s);
        return NULL;
    }
    return s;
}

static void inp_free_last(void *ctx, void *value)
{
    free(value);
}

static void inp_free_input(inp_input *in)
{
    if (in->last) {
        map_foreach(in->last, inp_free_last, NULL);
        map_free(in->last);
    }
    dev_free(in->devices);
    free(in->topic);
}

void inp_free(inp_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        inp_free_input(&s->inputs[i]);
    free(s->inputs);
    free(s);
}

void inp_carry(inp_set *new_set, inp_set *old)
{
    for (size_t i = 0; i < new_set->n; i++) {
        inp_input *to = &new_set->inputs[i];
        for (size_t j = 0; j < old->n; j++) {
            inp_input *from = &old->inputs[j];
            if (strcmp(from->name, to->name) != 0 || !from->last)
                continue;
            memcpy(to->counters, from->counters, sizeof to->counters);
            map_foreach(to->last, inp_free_last, NULL);
            map_free(to->last);
            to->last = from->last;
            from->last = NULL;
            break;
        }
    }
}

/* ---- one uplink ---- */

static enum inp_counter inp_counter_for_parse(enum ul_result r)
{
    switch (r) {
    case UL_NOT_UPLINK:     return INP_C_NOT_UPLINK;
    case UL_NO_FIELD:       return INP_C_REJECTED_NO_FIELD;
    case UL_UNMAPPED_VALUE: return INP_C_REJECTED_UNMAPPED_VALUE;
    default:                return INP_C_REJECTED_MALFORMED;
    }
}

enum inp_counter inp_counter_for_reject(enum pl_reject reason)
{
    switch (reason) {
    case PL_UNKNOWN_LOT:    return INP_C_REJECTED_UNKNOWN_LOT;
    case PL_FUTURE:         return INP_C_REJECTED_FUTURE;
    case PL_WRONG_KIND:     return INP_C_REJECTED_WRONG_KIND;
    case PL_TOO_MANY_BAYS:  return INP_C_REJECTED_TOO_MANY_BAYS;
    case PL_AMBIGUOUS_ZONE: return INP_C_REJECTED_AMBIGUOUS_ZONE;
    case PL_OVERSIZE:       return INP_C_REJECTED_OVERSIZE;
    default:                return INP_C_REJECTED_MALFORMED;
    }
}

/* Whether DEVICE's uplink U (at TS_MS) repeats the last one applied; remembers it if not. One
 * uplink heard twice (two gateways, a redelivery) has one frame counter and one network-server
 * time; a rejoin's restarted counter at another time is another uplink. */
static bool inp_is_duplicate(inp_input *in, const char *device, const ul_uplink *u, int64_t ts_ms)
{
    size_t len = strlen(device);
    inp_last *last = map_get(in->last, device, len);
    if (!last) {
        last = util_xmalloc(sizeof *last + len + 1);
        memcpy(last->key, device, len + 1);
        map_put(in->last, last->key, len, last);
    } else if (last->f_cnt == u->f_cnt && last->ts_ms == ts_ms) {
        return true;
    }
    last->f_cnt = u->f_cnt;
    last->ts_ms = ts_ms;
    return false;
}

static bool inp_skip(inp_input *in, enum inp_counter c, enum inp_counter *why)
{
    in->counters[c]++;
    *why = c;
    return false;
}

bool inp_take(inp_set *s, size_t i, const char *topic, const void *payload, size_t len,
              int64_t wall_ms, inp_event *out, enum inp_counter *why)
{
    inp_input *in = &s->inputs[i];
    in->counters[INP_C_UPLINKS]++;
    if ((int64_t)len > in->max_payload)
        return inp_skip(in, INP_C_REJECTED_OVERSIZE, why);
    ul_uplink u;
    enum ul_result r = ul_parse(in->format, topic, payload, len, &in->path, &in->values, &u);
    if (r != UL_OK && r != UL_NO_FIELD && r != UL_UNMAPPED_VALUE)
        return inp_skip(in, inp_counter_for_parse(r), why);
    const dev_entry *dev = dev_find(in->devices, u.device_id[0] ? u.device_id : NULL,
                                    u.has_dev_eui ? u.dev_eui : NULL);
    if (!dev)
        return inp_skip(in, INP_C_REJECTED_UNKNOWN_DEVICE, why);
    if (r != UL_OK)
        return inp_skip(in, inp_counter_for_parse(r), why);
    int64_t ts_ms = u.has_time ? u.time_ms : wall_ms;
    if (inp_is_duplicate(in, dev->device, &u, ts_ms))
        return inp_skip(in, INP_C_DUPLICATE, why);
    memset(out, 0, sizeof *out);
    out->topic.kind = PL_KIND_BAY;
    snprintf(out->topic.lot, sizeof out->topic.lot, "%s", dev->lot);
    snprintf(out->topic.sensor, sizeof out->topic.sensor, "%s", dev->bay);
    out->ev.kind = PL_KIND_BAY;
    out->ev.occupied = u.occupied;
    out->ev.has_ts = u.has_time;
    out->ev.ts_ms = u.time_ms;
    out->device = dev->device;
    return true;
}

void inp_count(inp_set *s, size_t i, enum inp_counter c)
{
    s->inputs[i].counters[c]++;
}
