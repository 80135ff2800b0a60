#!/bin/sh
# t75-redis-socket: Redis over a Unix socket (redis.socket, which wins over host/port), alone and
# with a password (issue 7). The server listens on no TCP port at all, so only the socket can
# work; a wrong socket path is refused with a log line naming it.
. "$(dirname "$0")/sec-lib.sh"

SOCK=$T/redis.sock
GOOD="sock-good-$$-Fy5pQ3"
REDIS_CLI_OPTS="-s $SOCK"
sec_start_redis --port 0 --unixsocket "$SOCK" --unixsocketperm 700
sec_start_mosquitto "allow_anonymous true"
LOTS="  - {id: C1, capacity: 100, source: count}"
check "redis listens on no TCP port" "" "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)"

# --- the socket, no password -------------------------------------------------------------------
write_config "$LOTS" "redis.socket=$SOCK"
parkd_start
pass "socket: parkd becomes ready ($OUT/status online)"
check_count_reaches_redis "socket" C1
check_ok "socket: log says connected to the socket" log_has "redis: connected to $SOCK"
parkd_stop_checked "socket"

# --- the socket with a password -------------------------------------------------------------------
rget config set requirepass "$GOOD" >/dev/null
REDIS_AUTH=$GOOD
PWF=$(sec_secret_file redis.pw "$GOOD")
write_config "$LOTS" "redis.socket=$SOCK" "redis.password_file=$PWF"
parkd_start
pass "socket with password: parkd becomes ready"
pub "$IN/C1/count" "{\"occupied\": 9, \"ts\": $(now)}"
check_eventually "socket with password: a count message reaches Redis" "hget C1 occupied" 9 10
check_no_secret "socket with password: the password is in no log, argv or environment" "$GOOD"
parkd_stop_checked "socket with password"

# --- a socket path where nothing listens ---------------------------------------------------------
write_config "$LOTS" "redis.socket=$T/nothing.sock"
parkd_start_refused "missing socket" "redis: cannot connect to $T/nothing\\.sock: .*No such file or directory"
parkd_stop_checked "missing socket"

finish
