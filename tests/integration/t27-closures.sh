#!/bin/sh
# t27-closures: operator closures (SPEC §10, issue 16 item 4). A retained {"state":"closed"} on
# <admin>/<lot>/state makes the lot's status closed in Redis and the retained availability, with
# counts still applied underneath and no forecast published; the closure survives kill -9 and a
# restart (the retained message redelivered changes nothing); `until` on the event clock and an
# explicit open reopen it; a malformed admin payload is rejected and counted.
. "$(dirname "$0")/lib.sh"

ADMIN=parking/admin
write_config "  - {id: K1, capacity: 100, source: count}
  - {id: K2, capacity: 10, source: count}" "forecast.horizons=[10m]"
parkd_start

N=$(now)
pub "$IN/K1/count" "{\"occupied\": 10, \"ts\": $((N - 60))}"
check_eventually "K1 open before the closure" "hget K1 status" open
check_eventually "a forecast published while open" \
    "retained $OUT/K1/forecast 2 | grep -c horizons" 1
settle
H0=$(rget xlen "${RP}lot:K1:history")

# --- a retained closure -------------------------------------------------------------------
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -r -t "$ADMIN/K1/state" \
    -m '{"state":"closed","reason":"works \"east\""}' || fail "retained closure" "rc 0" "rc $?"
SENT=$((SENT + 1))
check_eventually "closed in the lot hash" "hget K1 status" closed
check_eventually "closed in the retained availability" "avail_field K1 status" closed
check "the reason in the availability" 'works "east"' "$(avail_field K1 closed_reason)"
check_eventually "a history entry at the change" "rget xlen ${RP}lot:K1:history" $((H0 + 1))
check "the closure in the :state hash" 1 "$(rget hget "${RP}lot:K1:state" closed)"

sub_start fc "$OUT/K1/forecast"
sleep 1     # the retained forecast from before the closure arrives first
pub "$IN/K1/count" "{\"occupied\": 40, \"ts\": $((N - 50))}"
check_eventually "counts applied underneath" "hget K1 occupied" 40
check_eventually "the availability carries the new count" "avail_field K1 free" 60
check "still closed" closed "$(avail_field K1 status)"
settle
sleep 1
sub_stop fc
old=$(grep -c '^[0-9.]*|1|' "$(sub_file fc)")
check "the subscriber got the retained forecast from before the closure" 1 "${old:-0}"
live=$(grep -c '^[0-9.]*|0|' "$(sub_file fc)")
check "no forecast published while closed" 0 "${live:-0}"

# --- kill -9 and restart: still closed; the redelivered retained closure changes nothing -------
settle
kill -KILL "$PARKD_PID" 2>/dev/null
wait "$PARKD_PID" 2>/dev/null
PARKD_PID=
rget hset "${RP}lot:K1" status open >/dev/null     # prove the restarted daemon rewrites it
parkd_start
check_eventually "after the restart: still closed" "hget K1 status" closed
check_eventually "after the restart: the retained availability still closed" \
    "avail_field K1 status" closed
check "after the restart: occupied kept" 40 "$(hget K1 occupied)"

# --- an explicit open reopens, status recomputed from the counts --------------------------------
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -r -t "$ADMIN/K1/state" -m '{"state":"open"}' ||
    fail "retained open" "rc 0" "rc $?"
SENT=$((SENT + 1))
check_eventually "open again" "hget K1 status" open
check_eventually "the availability open again" "avail_field K1 status" open
check "no closed_reason once open" "" "$(avail K1 | grep -o closed_reason)"
check "the :state hash says open" 0 "$(rget hget "${RP}lot:K1:state" closed)"

# --- until on the event clock -------------------------------------------------------------------
N=$(now)
pub "$ADMIN/K1/state" "{\"state\":\"closed\",\"until\":$((N + 60))}"
check_eventually "closed until a minute ahead" "hget K1 status" closed
check_eventually "closed_until in the availability" "avail_field K1 closed_until" "$(iso $((N + 60)))"
# a later event (within limits.max_future) moves the event clock past until
pub "$IN/K2/count" "{\"occupied\": 1, \"ts\": $((N + 61))}"
check_eventually "until passed on the event clock: open" "hget K1 status" open
pub "$ADMIN/K1/state" "{\"state\":\"closed\",\"until\":$((N - 10))}"
settle
check "an until already past at arrival means open" open "$(hget K1 status)"

# --- malformed admin payloads are rejected and counted, with no state change -------------------
snap
pub "$ADMIN/K1/state" '{"state":"shut"}'
pub "$ADMIN/K1/state" 'closed'
pub "$ADMIN/K1/state" '{"state":"closed","reason":5}'
pub "$ADMIN/NOPE/state" '{"state":"closed"}'
settle
check "malformed admin payloads counted" 3 "$(delta rejected_malformed)"
check "an unknown lot's closure counted" 1 "$(delta rejected_unknown_lot)"
check "no state change from rejected input" open "$(hget K1 status)"

mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -r -n -t "$ADMIN/K1/state" 2>/dev/null
check_ok "parkd still running" parkd_alive
finish
