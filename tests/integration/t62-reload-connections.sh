#!/bin/sh
# t62-reload-connections: SIGHUP with changed broker or Redis settings reconnects. A changed
# redis.db moves the whole state to the new database; a changed mqtt.port moves parkd to another
# broker (the old one gets "offline", the new one "online" and the input); MQTT settings the
# client cannot take reject the whole reload, and the running configuration keeps working.
. "$(dirname "$0")/lib.sh"

# reload — SIGHUP, then waits until the log has one more "reload:" summary or rejection line
reload() {
    _before=$(grep -c 'reload: [0-9]* lots\|reload: configuration rejected' "$PARKD_LOG")
    kill -HUP "$PARKD_PID"
    wait_for "grep -c 'reload: [0-9]* lots\|reload: configuration rejected' '$PARKD_LOG'" \
        $((_before + 1)) 5 || fail "reload is logged" "one more reload line" "$GOT"
}
LOTS="  - {id: A, capacity: 100, source: count}
  - {id: G, capacity: 1000, source: gates}"

write_config "$LOTS"
parkd_start
pub "$IN/A/count" 30
pub "$IN/G/gate/E" in
check_eventually "db 0: input applied" "hget A occupied" 30

# --- redis.db 0 -> 1: reconnect, and db 1 gets every lot in full ----------------------------------
write_config "$LOTS" "redis.db=1"
reload
check "redis change logged" 1 "$(grep -c 'reload: redis settings changed, reconnecting' "$PARKD_LOG")"
check_eventually "db 1 gets the lot state after the reload (A)" "rget -n 1 hget ${RP}lot:A occupied" 30
check_eventually "db 1 gets the lot state after the reload (G)" "rget -n 1 hget ${RP}lot:G occupied" 1
check_eventually "db 1 gets the lot set" "rget -n 1 smembers ${RP}lots | sort | tr '\n' ' '" "A G "
pub "$IN/A/count" 31
check_eventually "input after the redis change goes to db 1" "rget -n 1 hget ${RP}lot:A occupied" 31
check "db 0 is left as it was" 30 "$(hget A occupied)"

# --- mqtt.port -> a second broker ----------------------------------------------------------------
M1_PORT=$MQTT_PORT
M1_PID=$MOSQ_PID
SUB_PIDS="$SUB_PIDS $M1_PID"    # lib's cleanup stops the broker in MOSQ_PID only
start_mosquitto
M2_PORT=$MQTT_PORT
write_config "$LOTS" "redis.db=1"
reload
check "mqtt change logged" 1 "$(grep -c 'reload: mqtt settings changed, reconnecting' "$PARKD_LOG")"
check_eventually "new broker: status online" "retained $OUT/status 1" online 8
check_eventually "old broker: status offline" \
    "mosquitto_sub -h 127.0.0.1 -p $M1_PORT -C 1 -W 1 -t $OUT/status 2>/dev/null" offline 5
check_eventually "new broker: availability published (retained)" "avail_field A occupied" 31 5
pub "$IN/A/count" 32
check_eventually "input on the new broker is applied" "rget -n 1 hget ${RP}lot:A occupied" 32
mosquitto_pub -h 127.0.0.1 -p "$M1_PORT" -q 1 -t "$IN/A/count" -m 77
sleep 1
check "input on the old broker is not taken any more" 32 "$(rget -n 1 hget "${RP}lot:A" occupied)"

# --- MQTT settings the client cannot take: the whole reload is rejected -------------------------
write_config "  - {id: A, capacity: 50, source: count}
  - {id: G, capacity: 1000, source: gates}" "redis.db=1" "mqtt.port=$M1_PORT" \
    "mqtt.tls={ca_file: $T/no-such-ca.pem}"
reload
check_ok "parkd still running after a rejected connection change" parkd_alive
check "rejected mqtt settings: logged with the reason" 1 "$(grep -c 'reload: configuration rejected.*TLS' "$PARKD_LOG")"
check "rejected reload: the lot change is not applied either" 100 "$(rget -n 1 hget "${RP}lot:A" capacity)"
pub "$IN/G/gate/E" in
check_eventually "rejected reload: still taking input on the running broker" "rget -n 1 hget ${RP}lot:G occupied" 2
parkd_stop TERM
check "clean stop: exit 0" 0 "$PARKD_RC"
check_eventually "clean stop: offline on the broker in use" "retained $OUT/status 1" offline 3
finish
