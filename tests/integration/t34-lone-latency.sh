#!/bin/sh
# t34-lone-latency: lone messages, as a city sends them (2-5 a second), each in Redis and in its
# retained output within 50 ms — with parkd's default prefixes (`parking` in, `parking/out` out,
# which nest: parkd must not read its own outputs), for every kind of input: count, bay, gate,
# a closure, a ChirpStack uplink on the main connection and a The Things Stack uplink on the
# network server's own broker. Messages that change nothing (a duplicate, a rejected one) come
# between them: they must not hold the input that follows. Then the same with high availability
# (fenced writes, the lease), redis.min_replicas_ack 1 (a WAIT per batch, a real replica) and
# after a SIGHUP reload that added a lot. 50 ms is generous (a test, not a
# benchmark: make bench measures the same at 1, 10 and 100 events/s).
OUT=parking/out
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lw-lib.sh"

LONE=$PARKD_TOOLS/lone
[ -x "$LONE" ] || { fail "the lone tool is built" "$LONE" nothing; finish; }
BOUND_MS=${LONE_BOUND_MS:-50}

ns_start
echo "dev1,P2,t1" >"$TTS_DEV"
echo "0101010101010101,P1,c1" >"$CS_DEV"
lw_config
# more lots of every source, beside lw_config's P1 and P2 (bays)
sed -i 's/^lots:$/lots:\
  - {id: C1, capacity: 100, source: count}\
  - {id: B1, capacity: 10, source: bays}\
  - {id: G1, capacity: 50, source: gates}/' "$CFG"
parkd_start
lw_wait_subscribed

check_ok "parkd does not subscribe to a filter that matches its own outputs ($OUT/...)" \
    sh -c "! grep -E 'parkd-it-$$ [0-9] parking/#\$' '$MAIN_MOSQ_LOG'"

B=$(( $(now) - 600 ))
ts() { echo $((B + $1)); }
cs() { "$PY" "$LW" cs 0101010101010101 "$1" "{\"status\":$2}" "$(( $(ts "$1") * 1000 ))"; }
ttn() { "$PY" "$LW" ttn dev1 0004A30B001C0531 "$1" "{\"occupied\":$2}" "$(( $(ts "$1") * 1000 ))"; }
# one line each: CONN LOT EXPECT TOPIC PAYLOAD (tests/tools/lone.c); "-": changes nothing
# core I LOT COUNT GATE — round I's changes of a count lot to COUNT, of bay B1, of gate lot G1
# (to GATE cars, with a redelivery of that gate event after it) and of P2 by a TTS uplink
core() {
    o=$(($1 % 2))
    echo "m $2 occupied=$3 parking/$2/count {\"occupied\":$3,\"ts\":$(ts "$1")}"
    echo "m B1 occupied=$o parking/B1/bay/s1 {\"occupied\":$o,\"ts\":$(ts "$1")}"
    echo "m G1 occupied=$4 parking/G1/gate/g1 {\"event\":\"in\",\"seq\":$1,\"ts\":$(ts "$1")}"
    echo "m G1 - parking/G1/gate/g1 {\"event\":\"in\",\"seq\":$1,\"ts\":$(ts "$1")}"
    echo "n P2 occupied=$o $(ttn_topic dev1) $(ttn "$1" $o)"
}
{
    i=1
    while [ $i -le 4 ]; do
        o=$((i % 2))
        core $i C1 $((10 * i)) $i
        echo "m C1 - parking/C1/count {\"occupied\":$((10 * i)),\"ts\":$(ts $i)}"
        echo "m B1 - parking/B1/bay/s1 {\"occupied\":\"perhaps\"}"
        echo "m P1 occupied=$o $(cs_topic 0101010101010101) $(cs $i $o)"
        echo "m P1 - $(cs_topic 0101010101010101) $(cs $i $o)"
        echo "n P2 - $(ttn_topic dev1) $(ttn $i $o)"
        if [ $o = 1 ]; then
            echo "m C1 status=closed parking/admin/C1/state {\"state\":\"closed\",\"reason\":\"works\"}"
        else
            echo "m C1 status=open parking/admin/C1/state {\"state\":\"open\"}"
        fi
        echo "m X9 - parking/X9/count 3"
        i=$((i + 1))
    done
} >"$T/script"

"$LONE" -p "$MQTT_PORT" -r "$REDIS_PORT" -R "$RP" -o "$OUT" -P "$NS_PORT" -u "$NS_PUB_USER" \
    -w "$NS_PUB_PW" -i 200 -j 500 -t 3000 <"$T/script" >"$T/lone.out" 2>"$T/lone.err"
rc=$?
cat "$T/lone.out"
check "every message reaches Redis and the retained output (no time-out)" "0" "$rc$(cat "$T/lone.err")"
slow_of() {     # slow_of PATTERN FIELD — the lines of PATTERN whose FIELD is above the bound
    awk -v b="$BOUND_MS" -v f="$2" "/$1/"' { for (k = 1; k <= NF; k++) if (index($k, f "=") == 1) {
        split($k, a, "="); if (a[2] + 0 > b || a[2] + 0 < 0) print } }' "$T/lone.out" | tr '\n' '|'
}
for kind in "parking\/C1\/count:count" "parking\/B1\/bay:bay" "parking\/G1\/gate:gate" \
    "parking\/admin:closure" "application\/:ChirpStack uplink (main connection)" \
    "v3\/:TTS uplink (own connection)"; do
    pat=${kind%%:*}
    name=${kind#*:}
    n=$(grep -c "$(echo "$pat" | tr -d '\\').*redis_ms" "$T/lone.out")
    check "$name: $n lone messages measured" yes "$([ "$n" -ge 2 ] && echo yes || echo "no ($n)")"
    check "$name: each in Redis within $BOUND_MS ms" "" "$(slow_of "$pat" redis_ms)"
    check "$name: each in the retained output within $BOUND_MS ms" "" "$(slow_of "$pat" mqtt_ms)"
done
want=$((IN0 + $(grep -c '^[mn] ' "$T/script")))
check_eventually "every message counted as input, none of parkd's own outputs" \
    'echo $(dget messages_in)' "$want"

# --- the same with the fenced writes of high availability, WAIT for a replica, after a reload ---
parkd_stop
REPL_PORT=$(free_port)
redis-server --port "$REPL_PORT" --bind 127.0.0.1 --dir "$T" --save '' --appendonly no \
    --replicaof 127.0.0.1 "$REDIS_PORT" --logfile "$T/replica.log" >/dev/null 2>&1 &
REPL_PID=$!
trap '_rc=$?; kill $REPL_PID 2>/dev/null; _lw_cleanup; exit $_rc' EXIT
wait_for "redis-cli -h 127.0.0.1 -p $REPL_PORT info replication | grep -c 'master_link_status:up'" 1 10
printf 'ha: {instance: lone-a, lease: 3s}\n' >>"$CFG"
sed -i 's/^  prefix: \(.*\)$/  prefix: \1\n  min_replicas_ack: 1/' "$CFG"
parkd_start
check_eventually "the instance holds the lease" "rget hget ${RP}instance:lone-a role" active
sed -i 's/^lots:$/lots:\
  - {id: C2, capacity: 100, source: count}/' "$CFG"
kill -HUP "$PARKD_PID"
check_eventually "a reload adds lot C2" "rget sismember ${RP}lots C2" 1
{
    i=11
    while [ $i -le 14 ]; do
        core $i C2 $i $((i - 6))
        i=$((i + 1))
    done
} >"$T/script-ha"     # G1 counted 4 cars above: 5..8 now
"$LONE" -p "$MQTT_PORT" -r "$REDIS_PORT" -R "$RP" -o "$OUT" -P "$NS_PORT" -u "$NS_PUB_USER" \
    -w "$NS_PUB_PW" -i 200 -j 500 -t 3000 <"$T/script-ha" >"$T/lone-ha.out" 2>"$T/lone-ha.err"
rc=$?
cat "$T/lone-ha.out"
check "HA, min_replicas_ack 1, after a reload: no time-out" "0" "$rc$(cat "$T/lone-ha.err")"
cp "$T/lone-ha.out" "$T/lone.out"
for kind in "parking\/C2\/count:count" "parking\/B1\/bay:bay" "parking\/G1\/gate:gate" \
    "v3\/:TTS uplink (own connection)"; do
    pat=${kind%%:*}
    name="HA, WAIT, reloaded: ${kind#*:}"
    check "$name: each in Redis within $BOUND_MS ms" "" "$(slow_of "$pat" redis_ms)"
    check "$name: each in the retained output within $BOUND_MS ms" "" "$(slow_of "$pat" mqtt_ms)"
done
check "the replica has the last count" 14 "$(redis-cli -h 127.0.0.1 -p "$REPL_PORT" hget "${RP}lot:C2" occupied)"
finish
