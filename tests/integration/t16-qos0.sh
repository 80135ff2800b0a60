#!/bin/sh
# t16-qos0: mqtt.qos 0 with publish.min_interval 0: no acknowledgement barrier, the publishes
# queued from inside libmosquitto's read callback and written only once it has returned. A burst
# of 3000 gate events and 200 bay events arrives whole: Redis and the retained outputs match
# exactly, the subscription is QoS 0. Every change is published while the outputs keep up; past
# the output backlog's bound (200 unacknowledged) a lot's outputs coalesce to its latest state
# (SPEC §4): so G's published counts rise strictly and end at the last one (how many went out
# one by one depends on timing, and is only printed).
. "$(dirname "$0")/lib.sh"

write_config "  - {id: G, capacity: 5000, source: gates}
  - {id: B, capacity: 200, source: bays}" "mqtt.client_id=parkd-t16-$$" "mqtt.qos=0" \
    "publish.min_interval=0" "log.level=info"
parkd_start
check "the input subscriptions are QoS 0" 3 \
    "$(grep -cE 'subscribed to parking/\+/(count|gate/\+|bay/\+) \(QoS 0\)' "$PARKD_LOG")"

mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$OUT/G/availability" >"$T/g.sub" 2>/dev/null &
SUB_PIDS="$SUB_PIDS $!"
G_SUB=$!
sleep 0.5       # subscribed before the burst (the retained "unknown" comes first)
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
sleep 0.5
kill "$G_SUB" 2>/dev/null
"$PY" -c '
import json, sys
occ = [json.loads(l)["occupied"] for l in open(sys.argv[1]) if l.strip()]
occ = [o for o in occ if o is not None]
rising = all(b > a for a, b in zip(occ, occ[1:]))
steps = sum(1 for a, b in zip(occ, occ[1:]) if b == a + 1)
print("published", len(occ), "rising" if rising else "NOT rising", "last", occ[-1] if occ else None,
      "single-steps", steps, file=sys.stderr)
print("%s %s" % ("rising" if rising else "not-rising", occ[-1] if occ else None))' "$T/g.sub" >"$T/g.check" 2>"$T/g.info"
cat "$T/g.info"
check "G's published counts rise strictly and end at 3000 (nothing reordered, the last state out)" \
    "rising 3000" "$(cat "$T/g.check")"
check_ok "parkd alive" parkd_alive
parkd_stop TERM
check "SIGTERM exit 0" 0 "$PARKD_RC"
check "no sanitizer report" 0 "$(grep -c 'Sanitizer' "$PARKD_LOG")"
finish
