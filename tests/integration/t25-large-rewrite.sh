#!/bin/sh
# t25-large-rewrite: a Redis that lost its data gets every lot back, with every forecast model,
# also when that is a lot: 5,000 lots with data. Written as one transaction (about 50 KB of
# model a lot) it took Redis longer than redis.timeout, the reconnect wrote it all again, and
# parkd never recovered (seen from some 10,000 lots; issue 11, "hold under every fault"). A full
# write now goes out 500 lots to a transaction.
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault-lib.sh"
N=5000

fault_servers
write_config "$(awk -v n=$N 'BEGIN { for (i = 1; i <= n; i++) printf "  - {id: L%04d, capacity: 100, source: count}\n", i }')" \
    "mqtt.client_id=parkd-t25-$$" "log.level=info" "redis.timeout=2s"
parkd_start
# three readings a lot, 15 minutes apart (the forecaster learns from each)
awk -v n=$N 'BEGIN {
    print "SystemCodeNumber,Capacity,Occupancy,LastUpdated"
    for (r = 0; r < 3; r++) for (i = 1; i <= n; i++)
        printf "L%04d,100,%d,2016-10-04 %02d:%02d:00\n", i, (i + r * 7) % 100, 8 + int(r / 4), (r * 15) % 60
}' >"$T/feed.csv"
"$PARKD_TOOLS/parkd-feed" --host 127.0.0.1 --port "$MQTT_PORT" --prefix "$IN" "$T/feed.csv" >"$T/feed.out" 2>&1 ||
    fail "parkd-feed sends $((N * 3)) readings" "exit 0" "$(tail -n 2 "$T/feed.out")"
SENT=$((N * 3))
settle 60
last=$(printf 'L%04d' $N)
check "every lot stored (the last one: $last)" "$(( (N + 14) % 100 ))" "$(hget "$last" occupied)"
models=$(rget --scan --pattern "${RP}lot:*:model" | wc -l)
check "every lot has a model" "$N" "$models"
bytes=$(rget memory usage "${RP}lot:L0001:model")
echo "# a model takes $bytes bytes in Redis; used: $(rget info memory | awk -F: '$1 == "used_memory_human" { print $2 }')"

fault_stop_redis TERM
rm -rf "$T/redis"
fault_start_redis
t0=$(now_ms)
check_eventually "Redis restarted empty: every lot is written back" "hget $last occupied" "$(( (N + 14) % 100 ))" 60
took=$(( $(now_ms) - t0 ))
echo "# rewrite of $N lots with their models: $took ms; Redis used: $(rget info memory | awk -F: '$1 == "used_memory_human" { print $2 }'); a model: $(rget memory usage "${RP}lot:L0001:model") bytes"
check "every model is written back" "$N" "$(rget --scan --pattern "${RP}lot:*:model" | wc -l)"
check "no reply timeout on the way" 0 "$(grep -c 'no reply within' "$PARKD_LOG")"
check "the lot set is whole" "$N" "$(rget scard "${RP}lots")"
pub "$IN/L0001/count" '{"occupied": 55}'
check_eventually "input flows after the rewrite" "hget L0001 occupied" 55 10
finish
