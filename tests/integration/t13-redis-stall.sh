#!/bin/sh
# t13-redis-stall: a Redis that stops answering for 15 s without closing its socket (SIGSTOP;
# a stuck host) is noticed by the reply timeout (redis.timeout), reported (log, metrics, parkd:daemon
# redis_timeouts), and once it answers again parkd recovers by itself: input sent during the
# stall is stored exactly once, nothing is lost (issue 10, item 5).
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null 2>&1 || { fail "curl is installed" curl nothing; finish; }

MPORT=$(free_port)
up() { curl -s --max-time 2 "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "parkd_up{service=\"redis\"}" { print $2 }'; }
thaw() { kill -CONT "$REDIS_PID" 2>/dev/null; }
trap '_lib_rc=$?; thaw; _lib_cleanup; exit $_lib_rc' EXIT

write_config "  - {id: G, capacity: 500, source: gates}
  - {id: C, capacity: 100, source: count}" "mqtt.client_id=parkd-t13-$$" "redis.timeout=1s"
printf 'metrics:\n  listen: "127.0.0.1:%s"\n' "$MPORT" >>"$CFG"
parkd_start
check_eventually "metrics: redis up" up 1 3

for s in 1 2 3 4 5; do pub "$IN/G/gate/g1" "{\"event\": \"in\", \"seq\": $s}"; done
check_eventually "before the stall: 5 cars in" "hget G occupied" 5

kill -STOP "$REDIS_PID"
stopped_at=$(now_ms)
for s in 6 7 8 9 10 11 12 13 14 15; do pub "$IN/G/gate/g1" "{\"event\": \"in\", \"seq\": $s}"; done
pub "$IN/C/count" '{"occupied": 42}'
check_eventually "the stall is logged within redis.timeout (+1 s)" \
    "grep -c 'redis: no reply within 1000 ms; reconnecting' '$PARKD_LOG' | awk '{ print (\$1 > 0) }'" 1 2.5
noticed_at=$(now_ms)
check "noticed within 2.5 s of the stall" 1 "$(( noticed_at - stopped_at <= 2500 ))"
check_eventually "metrics: redis down while it does not answer" up 0 3
# 15 s in all: many timeouts and reconnect attempts into a frozen Redis
left=$(( (stopped_at + 15000 - $(now_ms)) / 1000 ))
[ "$left" -gt 0 ] && sleep "$left"
check_ok "parkd alive through the stall" parkd_alive

thaw
check_eventually "after the stall: redis up again" up 1 10
check_eventually "every car sent during the stall is stored: 15" "hget G occupied" 15 10
check_eventually "the count sent during the stall is stored" "hget C occupied" 42 5
check "the gate seq is 15" 15 "$(rget hget "${RP}lot:G:gateseq" g1)"
check_eventually "parkd:daemon counts the timeouts (redis_timeouts >= 1)" \
    "[ \"\$(dget redis_timeouts)\" -ge 1 ] 2>/dev/null && echo yes" yes 3
check_eventually "retained availability follows: 485 free" "avail_field G free" 485 3

# input after the recovery flows as before
for s in 16 17; do pub "$IN/G/gate/g1" "{\"event\": \"out\", \"seq\": $s}"; done
check_eventually "after the recovery: input flows (13 occupied)" "hget G occupied" 13
parkd_stop TERM
check "SIGTERM exit 0" 0 "$PARKD_RC"
finish
