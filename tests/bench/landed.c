/* landed: waits until Redis holds the final state of the bench pattern (pattern.h), and checks
 * it. Polls the sentinel bay every millisecond; once it is there, every earlier event is applied
 * too, so that moment is when the load landed. Then compares every lot's occupied and every
 * bay's state with what the N events leave, so a dropped message shows.
 *
 * Prints key=value lines: landed_ns, lots_bad, bays_bad. Exit 0 when the state landed and is
 * exact, 1 otherwise. */
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pattern.h"

#define LD_PIPELINE 200

typedef struct ld_opts {
    const char *host;
    int port;
    const char *prefix;
    uint64_t n;
    uint32_t lots, bays;
    int timeout_s;
} ld_opts;

static redisReply *ld_command(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) {
        fprintf(stderr, "landed: redis: %s\n", c->errstr);
        exit(1);
    }
    return r;
}

static redisReply *ld_reply(redisContext *c)
{
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK || !r) {
        fprintf(stderr, "landed: redis: %s\n", c->errstr);
        exit(1);
    }
    return r;
}

/* Waits for the sentinel; 0 and *AT once it is there, -1 on timeout. */
static int ld_wait_sentinel(redisContext *c, const ld_opts *o, uint64_t *at)
{
    uint64_t deadline = bp_now_ns() + (uint64_t)o->timeout_s * 1000000000u;
    for (;;) {
        redisReply *r = ld_command(c, "HEXISTS %slot:%s:bays %s", o->prefix, BP_END_LOT,
                                   BP_END_BAY);
        bool there = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
        uint64_t now = bp_now_ns();
        if (there) {
            *at = now;
            return 0;
        }
        if (now > deadline)
            return -1;
        usleep(1000);
    }
}

static uint64_t ld_check_lots(redisContext *c, const ld_opts *o)
{
    uint64_t bad = 0;
    for (uint32_t first = 0; first < o->lots; first += LD_PIPELINE) {
        uint32_t end = first + LD_PIPELINE < o->lots ? first + LD_PIPELINE : o->lots;
        for (uint32_t l = first; l < end; l++) {
            char id[BP_ID_MAX];
            bp_lot_id(id, sizeof id, l);
            redisAppendCommand(c, "HGET %slot:%s occupied", o->prefix, id);
        }
        for (uint32_t l = first; l < end; l++) {
            redisReply *r = ld_reply(c);
            uint32_t want = bp_lot_final(o->n, o->lots, o->bays, l);
            bool has_events = bp_lot_events(o->n, o->lots, l) > 0;
            bool ok = has_events ? r->type == REDIS_REPLY_STRING &&
                                       strtoul(r->str, NULL, 10) == want && r->str[0] != '\0'
                                 : true;
            if (!ok && bad++ < 5)
                fprintf(stderr, "landed: lot %u occupied %s, expected %u\n", l,
                        r->type == REDIS_REPLY_STRING ? r->str : "(none)", want);
            freeReplyObject(r);
        }
    }
    return bad;
}

static uint64_t ld_check_bays(redisContext *c, const ld_opts *o)
{
    uint64_t bad = 0;
    char *seen = malloc(o->bays);
    if (!seen)
        exit(1);
    for (uint32_t l = 0; l < o->lots; l++) {
        char id[BP_ID_MAX];
        bp_lot_id(id, sizeof id, l);
        redisReply *r = ld_command(c, "HGETALL %slot:%s:bays", o->prefix, id);
        memset(seen, 0, o->bays);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
            const char *bay = r->element[i]->str;
            unsigned long b = bay[0] == 'b' ? strtoul(bay + 1, NULL, 10) : o->bays;
            int want = b < o->bays ? bp_bay_final(o->n, o->lots, o->bays, l, (uint32_t)b) : -1;
            if (b < o->bays)
                seen[b] = 1;
            if (want < 0 || atoi(r->element[i + 1]->str) != want) {
                if (bad++ < 5)
                    fprintf(stderr, "landed: lot %u bay %s = %s, expected %d\n", l, bay,
                            r->element[i + 1]->str, want);
            }
        }
        for (uint32_t b = 0; b < o->bays; b++) {
            if (!seen[b] && bp_bay_final(o->n, o->lots, o->bays, l, b) >= 0 && bad++ < 5)
                fprintf(stderr, "landed: lot %u bay %u missing\n", l, b);
        }
        freeReplyObject(r);
    }
    free(seen);
    return bad;
}

int main(int argc, char **argv)
{
    ld_opts o = { "127.0.0.1", 6379, "parkd:", 100000, 100, 100, 120 };
    bool check_only = false;
    int c;
    while ((c = getopt(argc, argv, "h:p:P:n:L:B:t:c")) != -1) {
        switch (c) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = atoi(optarg); break;
        case 'P': o.prefix = optarg; break;
        case 'n': o.n = strtoull(optarg, NULL, 10); break;
        case 'L': o.lots = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'B': o.bays = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 't': o.timeout_s = atoi(optarg); break;
        case 'c': check_only = true; break;
        default:
            fprintf(stderr, "usage: landed [-h HOST] [-p PORT] [-P PREFIX] [-n EVENTS] [-L LOTS]"
                            " [-B BAYS] [-t TIMEOUT_S] [-c]\n");
            return 2;
        }
    }
    if (o.lots == 0 || o.bays == 0)
        return 2;
    redisContext *rc = redisConnect(o.host, o.port);
    if (!rc || rc->err) {
        fprintf(stderr, "landed: connect: %s\n", rc ? rc->errstr : "out of memory");
        return 1;
    }
    uint64_t at = 0;
    if (!check_only && ld_wait_sentinel(rc, &o, &at) < 0) {
        fprintf(stderr, "landed: the sentinel did not arrive within %d s\n", o.timeout_s);
        printf("landed_ns=0\n");
        return 1;
    }
    uint64_t lots_bad = ld_check_lots(rc, &o);
    uint64_t bays_bad = ld_check_bays(rc, &o);
    printf("landed_ns=%" PRIu64 "\nlots_bad=%" PRIu64 "\nbays_bad=%" PRIu64 "\n", at, lots_bad,
           bays_bad);
    redisFree(rc);
    return lots_bad || bays_bad ? 1 : 0;
}
