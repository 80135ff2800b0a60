#!/bin/sh
# t20-count-redelivery: a count redelivered after gate events must not take back the cars the
# gates counted since (SPEC §3: the same ts and value as the last applied count is a
# redelivery, no change). QoS 1 redelivers a message whose PUBACK was lost (a broker restart, a
# reconnect); here the same count is sent again on purpose: from parkd's side the two are the
# same message. Also across a broker restart and across kill -9 of parkd (the identity of the
# last count is restored). Issue 11 item 1.
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault-lib.sh"

fault_servers
write_config "  - {id: G1, capacity: 200, source: gates}" "mqtt.client_id=parkd-t20-$$"
parkd_start

T0=$(($(now) - 3600))
count_msg() { printf '{"occupied": %d, "ts": %d}' "$1" "$2"; }
# gates FROM TO TS — gate "in" events with seq FROM..TO, one second apart from TS
gates() {
    _s=$1
    while [ "$_s" -le "$2" ]; do
        printf '{"event": "in", "seq": %d, "ts": %d}\n' "$_s" $(($3 + _s))
        _s=$((_s + 1))
    done | mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$IN/G1/gate/e1" -l ||
        fail "mosquitto_pub -l of gate events" "rc 0" "rc $?"
    SENT=$((SENT + $2 - $1 + 1))
}

# --- the issue's sequence ------------------------------------------------------------------------
pub "$IN/G1/count" "$(count_msg 50 "$T0")"
gates 1 20 "$T0"
settle
check "count 50, then 20 cars in: 70" 70 "$(hget G1 occupied)"
snap
pub "$IN/G1/count" "$(count_msg 50 "$T0")"
settle
check "the same count again (a redelivery) changes nothing" 70 "$(hget G1 occupied)"
check "the redelivery is not a recalibration" 0 "$(delta recalibrations)"
check "the redelivery counts as unchanged" 1 "$(delta unchanged)"
if grep -q 'recalibrated by -20' "$PARKD_LOG"; then
    fail "no recalibration logged for the redelivery" "no 'recalibrated by -20'" "$(grep recalibrated "$PARKD_LOG" | tail -n 1)"
else
    pass "no recalibration logged for the redelivery"
fi
pub "$IN/G1/count" "$(count_msg 60 "$T0")"
settle
check "a different value at the same ts is a correction, applied" 60 "$(hget G1 occupied)"

# --- an older count is ignored, and said so with its lag ----------------------------------------
pub "$IN/G1/count" "$(count_msg 10 $((T0 - 3600)))"
settle
check "a count an hour older than the last applied one is ignored" 60 "$(hget G1 occupied)"
check_eventually "the ignored older event is logged with its lag" \
    "grep -c 'lot G1: ignored an event 3600.0 s older than the last applied one' '$PARKD_LOG'" 1 3

# --- across a broker restart ---------------------------------------------------------------------
T1=$((T0 + 600))
pub "$IN/G1/count" "$(count_msg 30 "$T1")"
gates 21 30 "$T1"
settle
check "count 30, then 10 cars in: 40" 40 "$(hget G1 occupied)"
fault_stop_mosquitto TERM
fault_start_mosquitto
wait_for "grep -c 'mqtt: connected' '$PARKD_LOG'" 2 15 >/dev/null
check "parkd reconnected after the broker restart" 2 "$(grep -c 'mqtt: connected' "$PARKD_LOG")"
pub "$IN/G1/count" "$(count_msg 30 "$T1")"
gates 25 25 "$T1"
gates 31 40 "$T1"
settle
check "after the broker restart: the redelivered count and a repeated seq change nothing, 10 more cars" \
    50 "$(hget G1 occupied)"

# --- across kill -9 of parkd ---------------------------------------------------------------------
parkd_kill
fault_parkd_restart
wait_for "dget pid" "$PARKD_PID" 5 >/dev/null
IN0=$(dget messages_in); IN0=${IN0:-0}; SENT=0
pub "$IN/G1/count" "$(count_msg 30 "$T1")"
settle
check "after kill -9 and restore: the count redelivered once more changes nothing" 50 "$(hget G1 occupied)"
check_eventually "the retained availability agrees" "avail_field G1 occupied" 50
finish
