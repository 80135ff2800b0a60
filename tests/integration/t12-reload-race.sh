#!/bin/sh
# t12-reload-race: reloads that add lots while Redis does not answer (issue 10, item 4).
# 1. A lot added back by a reload while Redis is frozen keeps its stored state: it waits for
#    its restore (input paused, RELOADING) instead of starting empty and overwriting Redis.
# 2. A lot being restored is removed again by two SIGHUPs 10 ms apart: the pending restore
#    must not write into the freed lot (run this under check-asan), and the last configuration
#    wins.
# Redis is frozen with SIGSTOP, so parkd's reply timeout (redis.timeout 1s) is what notices.
. "$(dirname "$0")/lib.sh"

A="  - {id: A, capacity: 100, source: count}"
X="  - {id: X, capacity: 50, source: count}"
Y="  - {id: Y, capacity: 60, source: count}"
conf() { write_config "$1" "mqtt.client_id=parkd-t12-$$" "redis.timeout=1s"; }
thaw() { kill -CONT "$REDIS_PID" 2>/dev/null; }
trap '_lib_rc=$?; thaw; _lib_cleanup; exit $_lib_rc' EXIT
in_log() { grep -c -- "$1" "$PARKD_LOG"; }

B=$(($(now) - 600))
conf "$A
$X"
parkd_start
pub "$IN/A/count" "{\"occupied\": 3, \"ts\": $B}"
pub "$IN/X/count" "{\"occupied\": 7, \"ts\": $B}"
check_eventually "X stored with 7 occupied" "hget X occupied" 7
parkd_stop TERM

conf "$A"
parkd_start
pub "$IN/A/count" "{\"occupied\": 4, \"ts\": $((B + 10))}"
check_eventually "A counts without X configured" "hget A occupied" 4

# --- 1. X comes back while Redis is frozen ------------------------------------------------------
kill -STOP "$REDIS_PID"
conf "$A
$X"
kill -HUP "$PARKD_PID"
check_eventually "reload with added X waits for its restore (reloading)" \
    "in_log 'daemon: ready -> reloading'" 1 3
pub "$IN/X/count" "{\"occupied\": 8, \"ts\": $((B + 20))}"       # held: input is paused
sleep 1.5
check "while Redis is frozen: X is not published empty (still the first run's retained 7)" 7 "$(avail_field X occupied)"
check_eventually "the frozen Redis is noticed (reply timeout)" "in_log 'redis: no reply within'" 1 3
thaw
check_eventually "after Redis answers again: reload completes" "in_log 'reload: 2 lots'" 1 10
check_eventually "X restored from Redis, then the held input applied (8, not 1 or 0)" "hget X occupied" 8 5
check_eventually "X's availability is published with its restored and updated state" "avail_field X occupied" 8 3
check "A kept its state" 4 "$(hget A occupied)"

# --- 2. Y added and removed again while its restore hangs -----------------------------------------
kill -STOP "$REDIS_PID"
conf "$A
$X
$Y"
kill -HUP "$PARKD_PID"
check_eventually "reload with added Y waits for its restore" "in_log 'daemon: ready -> reloading'" 2 3
conf "$A
$X"
kill -HUP "$PARKD_PID"
sleep 0.01
kill -HUP "$PARKD_PID"
sleep 0.3
check_ok "parkd alive after two SIGHUPs during a restore" parkd_alive
thaw
check_eventually "the queued reload runs once Y's restore is done: 2 lots" "in_log 'reload: 2 lots'" 2 10
check_eventually "Y removed again (the lot set is A and X)" "rget smembers ${RP}lots | sort | tr '\n' ' '" "A X " 5
pub "$IN/Y/count" '{"occupied": 1}'
pub "$IN/A/count" "{\"occupied\": 5, \"ts\": $((B + 30))}"
check_eventually "A still counts" "hget A occupied" 5
check "Y's input is rejected as an unknown lot" 1 "$(in_log 'rejected input (unknown_lot) on topic \"parking/Y/count\"')"
check_ok "parkd alive" parkd_alive
parkd_stop TERM
check "SIGTERM exit 0 (under ASan: no leak, no use after free)" 0 "$PARKD_RC"
check "no sanitizer report" 0 "$(grep -c 'Sanitizer' "$PARKD_LOG")"
finish
