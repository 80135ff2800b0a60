#!/bin/sh
# t36-restore-fields: what a lot write carries into the :state hash (the restore state) when an
# event changed only part of it. The fields that change seldom — whether the lot has data, the
# identity of its last count, its status, an operator's closure — are written when they
# change, not with every event; each must still survive a kill -9 that comes right after the
# message that changed it, while the retained closure is not there to come back.
. "$(dirname "$0")/lib.sh"

write_config "  - {id: C, capacity: 100, source: count}
  - {id: K, capacity: 100, source: count}"
parkd_start
B=$(( $(now) - 3600 ))
kill9_restart() {
    kill -KILL "$PARKD_PID"; wait "$PARKD_PID" 2>/dev/null; PARKD_PID=
    parkd_start
}

# --- has_data and the last count: the lot's first data came after the start's full write -------
pub "$IN/C/count" "{\"occupied\": 40, \"ts\": $B}"
check_eventually "the first count is stored" "hget C occupied" 40
kill9_restart
check "after kill -9: C still has data (status open, not unknown)" open "$(hget C status)"
check "after kill -9: the availability shows its count" 40 "$(avail_field C occupied)"
snap
pub "$IN/C/count" "{\"occupied\": 40, \"ts\": $B}"
settle
check "the same count again is a redelivery, unchanged, not applied (its identity was restored)" \
    "1 0" "$(delta unchanged) $(delta applied)"

# --- a closure, sent without retain: only parkd's :state remembers it ------------------------------
pub "$IN/K/count" "{\"occupied\": 5, \"ts\": $B}"
check_eventually "K has data" "hget K occupied" 5
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "parking/admin/K/state" \
    -m '{"state": "closed", "reason": "resurfacing"}' || fail "closure published" "rc 0" "rc $?"
check_eventually "K closed" "hget K status" closed
kill9_restart
check "after kill -9: K still closed" closed "$(hget K status)"
check "after kill -9: the reason too" resurfacing "$(avail_field K closed_reason)"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "parking/admin/K/state" \
    -m '{"state": "closed", "reason": "drainage"}' || fail "closure published" "rc 0" "rc $?"
check_eventually "a new reason while closed" "avail_field K closed_reason" drainage
kill9_restart
check "after kill -9: the new reason (it changed while the lot stayed closed)" drainage \
    "$(avail_field K closed_reason)"
finish
