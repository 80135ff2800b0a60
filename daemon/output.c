#include "output.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"
#include "util.h"

#define OUT_TOPIC_MAX 512

char *out_name_json(const char *name)
{
    json_t *s = json_string(name);
    char *dumped = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    char *out = util_xstrdup(dumped ? dumped : "null");
    free(dumped);
    json_decref(s);
    return out;
}

static int out_fmt_double(char *buf, size_t size, const char *fmt, double v)
{
    if (!isfinite(v))
        return snprintf(buf, size, "null");
    return snprintf(buf, size, fmt, v);
}

size_t out_format_availability(const lot *l, const char *name_json, char *buf, size_t size)
{
    if (!name_json)
        name_json = "null";
    char ts[40] = "null", occupied[32] = "null", free_s[32] = "null", smoothed[40] = "null",
         occupancy[40] = "null", trend[40] = "null";
    if (l->has_data) {
        ts[0] = '"';
        size_t n = pl_format_time(l->ts_ms, ts + 1, sizeof ts - 2);
        ts[n + 1] = '"';
        ts[n + 2] = '\0';
        snprintf(occupied, sizeof occupied, "%" PRId64, l->occupied);
        snprintf(free_s, sizeof free_s, "%" PRId64, lot_free_spaces(l));
        out_fmt_double(smoothed, sizeof smoothed, "%.1f", l->smooth.smoothed);
        out_fmt_double(occupancy, sizeof occupancy, "%.3f", lot_occupancy(l));
        out_fmt_double(trend, sizeof trend, "%.1f", sm_trend_per_hour(&l->smooth));
    }
    int n = snprintf(buf, size,
                     "{\"lot\":\"%s\",\"name\":%s,\"ts\":%s,\"capacity\":%" PRId64
                     ",\"occupied\":%s,\"free\":%s,\"free_smoothed\":%s,\"occupancy\":%s,"
                     "\"trend_per_hour\":%s,\"status\":\"%s\",\"stale\":%s}",
                     l->id, name_json, ts, l->capacity, occupied, free_s, smoothed, occupancy,
                     trend, lot_status_name(l->status), l->stale ? "true" : "false");
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

static void out_summary_lot(const lot *l, json_t *arr, int64_t *free_total,
                            int64_t *cap_total, int64_t *newest)
{
    json_t *o = json_object();
    json_object_set_new(o, "lot", json_string(l->id));
    json_object_set_new(o, "name", json_string(l->name));
    json_object_set_new(o, "free", l->has_data ? json_integer(lot_free_spaces(l)) : json_null());
    json_object_set_new(o, "capacity", json_integer(l->capacity));
    json_object_set_new(o, "status", json_string(lot_status_name(l->status)));
    json_object_set_new(o, "stale", json_boolean(l->stale));
    json_object_set_new(o, "lat", l->has_position ? json_real(l->lat) : json_null());
    json_object_set_new(o, "lon", l->has_position ? json_real(l->lon) : json_null());
    json_array_append_new(arr, o);
    if (l->has_data) {
        *free_total += lot_free_spaces(l);
        *cap_total += l->capacity;
        if (l->ts_ms > *newest)
            *newest = l->ts_ms;
    }
}

char *out_format_summary(lot *const *lots, size_t n)
{
    json_t *root = json_object();
    json_t *arr = json_array();
    int64_t free_total = 0, cap_total = 0, newest = INT64_MIN;
    for (size_t i = 0; i < n; i++)
        out_summary_lot(lots[i], arr, &free_total, &cap_total, &newest);
    char ts[40];
    if (newest != INT64_MIN) {
        pl_format_time(newest, ts, sizeof ts);
        json_object_set_new(root, "ts", json_string(ts));
    } else {
        json_object_set_new(root, "ts", json_null());
    }
    json_object_set_new(root, "lots", arr);
    json_object_set_new(root, "free", json_integer(free_total));
    json_object_set_new(root, "capacity", json_integer(cap_total));
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(root);
    return text;
}

int out_publish_lot(mq_client *mq, const cfg_config *cfg, const char *lot_id, const char *kind,
                    const char *json, size_t len)
{
    char topic[OUT_TOPIC_MAX];
    int n = snprintf(topic, sizeof topic, "%s/%s/%s", cfg->mqtt.output_prefix, lot_id, kind);
    if (n < 0 || (size_t)n >= sizeof topic)
        return -EIO;
    return mq ? mq_publish(mq, topic, json, len) : -ENOTCONN;
}

int out_publish_summary(mq_client *mq, const cfg_config *cfg, const char *json)
{
    char topic[OUT_TOPIC_MAX];
    int n = snprintf(topic, sizeof topic, "%s/summary", cfg->mqtt.output_prefix);
    if (n < 0 || (size_t)n >= sizeof topic)
        return -EIO;
    return mq ? mq_publish(mq, topic, json, strlen(json)) : -ENOTCONN;
}
