#!/bin/sh
# t96-replicas: redis.min_replicas_ack (SPEC §11, issue 14): a batch counts as stored only once
# WAIT saw it on that many replicas, so input is acknowledged, and more input read, only then.
# With the one replica frozen, a bay message reaches the master but its PUBACK is held and
# parkd reads nothing more; the replica back, everything flows. kill -9 of parkd while held:
# the unacknowledged message comes again and is applied once.
. "$(dirname "$0")/lib.sh"

REPL_PORT=$(free_port)
redis-server --port "$REPL_PORT" --bind 127.0.0.1 --dir "$T" --save '' --appendonly no \
    --replicaof 127.0.0.1 "$REDIS_PORT" --logfile "$T/replica.log" >/dev/null 2>&1 &
REPL_PID=$!
trap '_rc=$?; kill -CONT $REPL_PID 2>/dev/null; kill $REPL_PID 2>/dev/null; _lib_cleanup; exit $_rc' EXIT
LOGS="$LOGS $T/replica.log"
wait_for "redis-cli -h 127.0.0.1 -p $REPL_PORT info replication | grep -c 'master_link_status:up'" 1 10
write_config "  - {id: R1, capacity: 10, source: bays}" "redis.min_replicas_ack=1"
parkd_start
B=$(now)
bay() { pub "$IN/R1/bay/$1" "{\"occupied\": $2, \"ts\": $3}"; }
bay r1 true "$B"
check_eventually "with the replica up, input is stored" "hget R1 occupied" 1
check_eventually "and on the replica" "redis-cli -h 127.0.0.1 -p $REPL_PORT hget ${RP}lot:R1 occupied" 1

kill -STOP "$REPL_PID"
bay r2 true $((B + 1))
check_eventually "the master has the next message's effect" "hget R1 occupied" 2
bay r3 true $((B + 2))
sleep 1.5
check "but parkd reads nothing more while the replica has not confirmed it" 2 "$(hget R1 occupied)"
check "the log says why input waits" yes "$(grep -q 'replicas have the last batch' "$PARKD_LOG" && echo yes)"
kill -CONT "$REPL_PID"
check_eventually "the replica back, the held input flows" "hget R1 occupied" 3

kill -STOP "$REPL_PID"
bay r4 true $((B + 3))
check_eventually "r4 on the master" "hget R1 occupied" 4
kill -KILL "$PARKD_PID"; wait "$PARKD_PID" 2>/dev/null; PARKD_PID=
kill -CONT "$REPL_PID"
fault_free_restart() {
    "$PARKD_BIN" -c "$CFG" 2>"$T/parkd.r.log" >/dev/null &
    PARKD_PID=$!
    LOGS="$LOGS $T/parkd.r.log"
}
fault_free_restart
bay r5 true $((B + 4))
check_eventually "after kill -9 with r4 unacknowledged: r4 once, r5 too" "hget R1 occupied" 5
check "r4's bay once" 1 "$(bayget R1 r4)"
parkd_stop
check "parkd stops cleanly" 0 "$PARKD_RC"
finish
