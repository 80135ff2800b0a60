#!/bin/sh
# t22-hung-redis-stop: SIGTERM while Redis is frozen (SIGSTOP: the socket stays open, nothing
# answers) must end parkd within the documented 5 s (plus the time to notice), not when Redis
# wakes; the input parkd could not store is unacknowledged, so after Redis and parkd are back it
# is redelivered and the state is exact (issue 11, item 4).
. "$(dirname "$0")/lib.sh"
thaw() { kill -CONT "$REDIS_PID" 2>/dev/null; }
trap '_lib_rc=$?; thaw; _lib_cleanup; exit $_lib_rc' EXIT

write_config "  - {id: G, capacity: 500, source: gates}" "mqtt.client_id=parkd-t22-$$"
gates() {   # gates FROM TO — "in" events with seq FROM..TO
    _s=$1
    while [ "$_s" -le "$2" ]; do echo "{\"event\": \"in\", \"seq\": $_s}"; _s=$((_s + 1)); done |
        mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$IN/G/gate/g1" -l ||
        fail "mosquitto_pub -l" "rc 0" "rc $?"
}

for round in 1 2; do
    parkd_start
    gates $((round * 100 + 1)) $((round * 100 + 5))
    check_eventually "round $round: 5 more cars stored before the freeze" "hget G occupied" $((round * 5 + (round - 1) * 10))
    kill -STOP "$REDIS_PID"
    gates $((round * 100 + 6)) $((round * 100 + 15))     # read, not storable
    sleep 1
    t0=$(now_ms)
    kill -TERM "$PARKD_PID"
    i=0
    while parkd_alive && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
    took=$(( $(now_ms) - t0 ))
    if parkd_alive; then
        fail "round $round: SIGTERM with Redis frozen ends parkd within 6 s" "exited" "still running after 15 s"
        kill -KILL "$PARKD_PID"
    else
        wait "$PARKD_PID"; rc=$?
        check "round $round: SIGTERM with Redis frozen ends parkd within 6 s (took $took ms)" yes \
            "$([ "$took" -le 6000 ] && echo yes)"
        echo "# round $round: exit status $rc"
    fi
    PARKD_PID=
    check "round $round: the log says what was not stored" 1 \
        "$(grep -c 'shutdown: redis did not take every pending write in time' "$PARKD_LOG")"
    thaw
done

# both rounds' frozen input comes again to the next run and is stored once
parkd_start
check_eventually "after Redis and parkd are back: every car exactly once (30)" "hget G occupied" 30 10
check "the gate seq is the last one sent" 215 "$(rget hget "${RP}lot:G:gateseq" g1)"
parkd_stop TERM
check "a normal SIGTERM exits 0" 0 "$PARKD_RC"
finish
