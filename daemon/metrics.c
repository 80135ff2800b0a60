/* Placeholder until the HTTP endpoint lands: the endpoint reports itself unsupported. */
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>

#include "util.h"

static const double metrics_bounds[METRICS_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
};

const double *metrics_latency_bounds(void)
{
    return metrics_bounds;
}

int metrics_start(const char *listen, metrics **out, char **err)
{
    (void)listen;
    *out = NULL;
    *err = util_xstrdup("metrics: endpoint not available in this build");
    return -ENOTSUP;
}

void metrics_update(metrics *m, const metrics_snapshot *snap)
{
    (void)m; (void)snap;
}

char *metrics_render(const metrics_snapshot *snap, size_t *len)
{
    (void)snap;
    *len = 0;
    return util_xstrdup("");
}

void metrics_stop(metrics *m)
{
    (void)m;
}
