#!/bin/sh
# t73-redis-requirepass: Redis AUTH with the password read from redis.password_file, against a
# redis-server with requirepass (issue 7). parkd connects with the right password and is
# refused, with a clear log line, with a wrong one or none; the password is in no log, argv or
# environment.
. "$(dirname "$0")/sec-lib.sh"

GOOD="rpw-good-$$-Hq3wR9"
BAD="rpw-bad-$$-Pv6nL1"
REDIS_AUTH=$GOOD
sec_start_redis --requirepass "$GOOD"
sec_start_mosquitto "allow_anonymous true"
LOTS="  - {id: C1, capacity: 100, source: count}"

# --- the right password ----------------------------------------------------------------------
PWF=$(sec_secret_file redis.pw "$GOOD")
write_config "$LOTS" "redis.password_file=$PWF"
parkd_start
pass "right password: parkd becomes ready ($OUT/status online)"
check_count_reaches_redis "right password" C1
check_ok "right password: log says connected" log_has "redis: connected to 127.0.0.1:$REDIS_PORT"
check_no_secret "right password: the password is in no log, argv or environment" "$GOOD"
parkd_stop_checked "right password"

# --- a wrong password ------------------------------------------------------------------------
PWF=$(sec_secret_file redis.pw "$BAD")
write_config "$LOTS" "redis.password_file=$PWF"
parkd_start_refused "wrong password" "redis: .*WRONGPASS"
check_no_secret "wrong password: the wrong password is in no log, argv or environment" "$BAD"
check_no_secret "wrong password: the right password is in no log either" "$GOOD"
parkd_stop_checked "wrong password"

# --- no password -----------------------------------------------------------------------------
write_config "$LOTS"
parkd_start_refused "no password" "redis: .*NOAUTH"
parkd_stop_checked "no password"

# --- an unreadable password file: logged with the file's name, never its content ------------
write_config "$LOTS" "redis.password_file=$T/no-such.pw"
parkd_start_refused "missing password file" "redis: .*$T/no-such\\.pw: No such file or directory"
parkd_stop_checked "missing password file"

# --- a password with spaces and quotes is one AUTH argument ------------------------------------
ODD="two words \"and\" 'quotes' $$"
rget config set requirepass "$ODD" >/dev/null
REDIS_AUTH=$ODD
PWF=$(sec_secret_file redis.pw "$ODD")
write_config "$LOTS" "redis.password_file=$PWF"
parkd_start
pass "password with spaces and quotes: parkd becomes ready"
check_no_secret "password with spaces and quotes: not in any log" "$ODD"
parkd_stop_checked "password with spaces and quotes"

finish
