#!/bin/sh
# t15-connect-blocked: a connect refused on this host (EPERM: a firewall, or the unit's
# IPAddressDeny=) is reported as such for the broker and for Redis, not as "Unknown error"
# (issue 10, item 9); parkd keeps retrying and becomes ready once the block is gone.
# The block is an LD_PRELOAD shim (tests/shim/connect-eperm.c) on the server's port.
. "$(dirname "$0")/lib.sh"

SHIM=$PARKD_TOOLS/connect-eperm.so
[ -f "$SHIM" ] || { fail "the connect shim is built" "$SHIM" nothing; finish; }
# an ASan build wants its runtime first; the shim does not mind coming second
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export ASAN_OPTIONS
HINT='Operation not permitted (blocked on this host: a firewall, or IPAddressDeny=/IPAddressAllow= of the unit)'

write_config "  - {id: A, capacity: 10, source: count}" "mqtt.client_id=parkd-t15-$$"
for what in mqtt redis; do
    if [ $what = mqtt ]; then port=$MQTT_PORT; else port=$REDIS_PORT; fi
    log=$T/blocked-$what.log
    EPERM_PORT=$port LD_PRELOAD=$SHIM "$PARKD_BIN" -c "$CFG" 2>"$log" &
    pid=$!
    check_eventually "$what blocked: the log names the cause and the likely block" \
        "grep -c \"$what: cannot connect to 127.0.0.1:$port: $HINT\" '$log' | awk '{ print (\$1 >= 2) }'" 1 5
    check "$what blocked: never 'Unknown error'" 0 "$(grep -ci 'unknown error' "$log")"
    kill -0 "$pid" 2>/dev/null && pass "$what blocked: parkd keeps retrying" || fail "$what blocked: parkd keeps retrying" running exited
    kill -TERM "$pid"; wait "$pid"
    check "$what blocked: SIGTERM exit 0" 0 "$?"
done
parkd_start
check "without the block: ready" online "$(retained "$OUT/status" 2)"
parkd_stop TERM
finish
