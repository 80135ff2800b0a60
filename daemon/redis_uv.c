#include "redis_uv.h"

#include <stdlib.h>

#include "util.h"

typedef struct redis_uv {
    redisAsyncContext *ac;      /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    int events;
} redis_uv;

static void redis_uv_on_poll(uv_poll_t *handle, int status, int events)
{
    redis_uv *p = handle->data;
    int ev = status < 0 ? p->events : events;
    if (p->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

/* A failed uv_poll_start leaves the watcher stopped; hiredis then notices nothing, but the
 * store's reply timeout does, so there is no silent hang. */
static void redis_uv_update(redis_uv *p, int add, int del)
{
    p->events = (p->events | add) & ~del;
    if (p->events)
        (void)uv_poll_start(&p->poll, p->events, redis_uv_on_poll);
    else
        (void)uv_poll_stop(&p->poll);
}

static void redis_uv_add_read(void *data) { redis_uv_update(data, UV_READABLE, 0); }
static void redis_uv_del_read(void *data) { redis_uv_update(data, 0, UV_READABLE); }
static void redis_uv_add_write(void *data) { redis_uv_update(data, UV_WRITABLE, 0); }
static void redis_uv_del_write(void *data) { redis_uv_update(data, 0, UV_WRITABLE); }

static void redis_uv_on_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void redis_uv_cleanup(void *data)
{
    redis_uv *p = data;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, redis_uv_on_closed);
}

int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data)
        return REDIS_ERR;
    redis_uv *p = util_xcalloc(1, sizeof *p);
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    p->poll.data = p;
    p->ac = ac;
    ac->ev.data = p;
    ac->ev.addRead = redis_uv_add_read;
    ac->ev.delRead = redis_uv_del_read;
    ac->ev.addWrite = redis_uv_add_write;
    ac->ev.delWrite = redis_uv_del_write;
    ac->ev.cleanup = redis_uv_cleanup;
    return REDIS_OK;
}
