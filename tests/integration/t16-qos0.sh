#!/bin/sh
# t16-qos0: mqtt.qos 0 with publish.min_interval 0 (issue 10, item 6): no acknowledgement
# barrier, every change published, the publishes queued from inside libmosquitto's read
# callback and written only once it has returned. A burst of 3000 gate events and 200 bay
# events arrives whole: Redis and the retained outputs match exactly, the subscription is QoS 0.
. "$(dirname "$0")/lib.sh"

write_config "  - {id: G, capacity: 5000, source: gates}
  - {id: B, capacity: 200, source: bays}" "mqtt.client_id=parkd-t16-$$" "mqtt.qos=0" \
    "publish.min_interval=0" "log.level=info"
parkd_start
check "the input subscriptions are QoS 0" 3 \
    "$(grep -cE 'subscribed to parking/\+/(count|gate/\+|bay/\+) \(QoS 0\)' "$PARKD_LOG")"

i=0; while [ $i -lt 3000 ]; do echo in; i=$((i + 1)); done >"$T/gates"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$IN/G/gate/g1" -l <"$T/gates" ||
    fail "mosquitto_pub -l of the gate events" "rc 0" "rc $?"
B=$(($(now) - 600))
i=0; pids=
while [ $i -lt 200 ]; do        # 50 publishers at a time, so that the bay events come in bursts
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$IN/B/bay/b$i" -m "{\"occupied\": true, \"ts\": $((B + i))}" &
    pids="$pids $!"
    i=$((i + 1))
    if [ $((i % 50)) = 0 ]; then wait $pids; pids=; fi
done
check_eventually "all 3000 gate events counted" "hget G occupied" 3000 10
check_eventually "all 200 bays occupied" "hget B occupied" 200 10
check_eventually "retained availability of G follows (2000 free)" "avail_field G free" 2000 5
check_eventually "retained availability of B: full" "avail_field B status" full 5
check "the :bays hash has the 200 bays" 200 "$(rget hlen "${RP}lot:B:bays")"
check_ok "parkd alive" parkd_alive
parkd_stop TERM
check "SIGTERM exit 0" 0 "$PARKD_RC"
check "no sanitizer report" 0 "$(grep -c 'Sanitizer' "$PARKD_LOG")"
finish
