/* redis_uv: hiredis async on a libuv loop: the one attach function of the event glue.
 * Our own adapter rather than hiredis's adapters/libuv.h: the one of hiredis 0.14 (Debian 12)
 * drops poll errors, and libuv reports a refused connect as one (UV_EBADF, with the watcher
 * stopped), so a connect to a Redis that is down never completed nor failed. Here an error is
 * handed to hiredis as the events it waits for, so it reads the socket error itself (as hiredis
 * >= 1.0 does). */
#ifndef PARKD_REDIS_UV_H
#define PARKD_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* Attaches AC to LOOP; hiredis owns the glue from then on and frees it when AC goes (its
 * cleanup hook closes the poll handle). Returns REDIS_OK, or REDIS_ERR when AC is already
 * attached or the poll handle cannot be made (AC is then untouched). */
int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
