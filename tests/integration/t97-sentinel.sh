#!/bin/sh
# t97-sentinel: Redis Sentinel (SPEC §11, issue 14) with redis.min_replicas_ack: 1 and three
# parkd (one active, two standby). A master and a replica (both with AOF), three sentinels;
# every parkd finds the master through them. kill -9 of the master mid-stream: Sentinel
# promotes the replica, the active follows (+switch-master), and input waits until the new
# master has a replica again (the old one, restarted, is made one by Sentinel); then kill -9 of
# the active: a standby takes over on the new master. Every event is in the final state.
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"
FG_ARGS="-s 97 -n 4000"
. "$(dirname "$0")/fault-lib.sh"

fault_start_mosquitto
LOGS="$LOGS $T/mosquitto.log"
M_PORT=$(free_port); R_PORT=$(free_port)
start_node() {     # start_node NAME PORT [replicaof PORT]
    mkdir -p "$T/$1"
    redis-server --port "$2" --bind 127.0.0.1 --dir "$T/$1" --save '' --appendonly yes \
        --appendfsync always --logfile "$T/$1.log" ${3:+--replicaof 127.0.0.1 $3} \
        --replica-announce-ip 127.0.0.1 >/dev/null 2>&1 &
    eval "PID_$1=\$!"
    LOGS="$LOGS $T/$1.log"
    wait_for "redis-cli -h 127.0.0.1 -p $2 ping" PONG 5 >/dev/null
}
start_node m "$M_PORT"
start_node r "$R_PORT" "$M_PORT"
wait_for "redis-cli -h 127.0.0.1 -p $R_PORT info replication | grep -c 'master_link_status:up'" 1 10
S_PIDS=
SENTINELS=
for i in 1 2 3; do
    p=$(free_port)
    cat >"$T/sentinel$i.conf" <<EOC
port $p
bind 127.0.0.1
dir $T
logfile $T/sentinel$i.log
sentinel announce-ip 127.0.0.1
sentinel monitor mymaster 127.0.0.1 $M_PORT 2
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 4000
sentinel parallel-syncs mymaster 1
EOC
    redis-server "$T/sentinel$i.conf" --sentinel >/dev/null 2>&1 &
    S_PIDS="$S_PIDS $!"
    LOGS="$LOGS $T/sentinel$i.log"
    SENTINELS="$SENTINELS${SENTINELS:+, }\"127.0.0.1:$p\""
    S_LAST=$p
done
trap '_rc=$?; for p in $S_PIDS $PID_m $PID_r; do kill "$p" 2>/dev/null; done; _fault_cleanup; exit $_rc' EXIT
wait_for "redis-cli -h 127.0.0.1 -p $S_LAST sentinel replicas mymaster | grep -c $R_PORT" 1 10 >/dev/null
REDIS_PORT=$M_PORT      # lib.sh's rget, until the failover
write_config "$("$FG" $FG_ARGS lots)" "mqtt.client_id=parkd-fault-$$" "log.level=info" \
    "redis.host=127.0.0.1" "redis.port=1" "redis.sentinels=[$SENTINELS]" \
    "redis.master_name=mymaster" "redis.min_replicas_ack=1" "ha={instance: A, lease: 2s}"
parkd_start
PID_A=$PARKD_PID
for n in B C; do
    sed "s/instance: A/instance: $n/" "$CFG" >"$T/parkd-$n.yaml"
    "$PARKD_BIN" -c "$T/parkd-$n.yaml" 2>"$T/parkd-$n.log" >/dev/null &
    eval "PID_$n=\$!"
    LOGS="$LOGS $T/parkd-$n.log"
done
role() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" hget "${RP}instance:$1" role; }
check_eventually "B is a standby" "role B" standby
check_eventually "C is a standby" "role C" standby
check "parkd found the master through the sentinels" yes \
    "$(grep -q "master mymaster is at 127.0.0.1:$M_PORT" "$PARKD_LOG" && echo yes)"
# a reload of the active first: its sentinels and lease must not keep the configuration the
# reload replaced (a standby ignores a reload until it is ready)
kill -HUP "$PID_A"
check_eventually "the active reloaded before the failover" "grep -c 'reload: [0-9]* lots' '$PARKD_LOG'" 1
fault_truth "$T/truth"
fault_publish_bg -r 800 --mark-at 1500
fault_wait_line "mark 1500"
before=$(redis-cli -h 127.0.0.1 -p "$M_PORT" get "${RP}leader")
kill -KILL "$PID_m"; wait "$PID_m" 2>/dev/null
t0=$(now_ms)
# Nobody can renew the lease while there is no master: the active steps down (exit 75, as
# systemd's Restart= would, it is started again here) and whoever takes the lease on the new
# master goes on.
leader_on_r() { redis-cli -h 127.0.0.1 -p "$R_PORT" get "${RP}leader"; }
# a new epoch: the replicated key of the old leader may still be there for a moment
wait_for "leader_on_r | grep -E '^[ABC]:' | grep -vx '$before' >/dev/null && redis-cli -h 127.0.0.1 -p $R_PORT role | head -n 1" master 20 >/dev/null
t1=$(now_ms)
echo "# failover: a master again and the lease held on it $((t1 - t0)) ms after the master's kill -9 ($(leader_on_r))"
check_match "after the failover, an instance holds the lease on the promoted replica" '^[ABC]:[0-9]+$' "$(leader_on_r)"
REDIS_PORT=$R_PORT
active=$(leader_on_r); active=${active%%:*}
alog=$PARKD_LOG; [ "$active" = A ] || alog=$T/parkd-$active.log
check "the active found the new master through the sentinels" yes \
    "$(grep -qE "master mymaster is at 127.0.0.1:$R_PORT|moved from 127.0.0.1:$M_PORT to 127.0.0.1:$R_PORT" "$alog" && echo yes)"
if ! kill -0 "$PID_A" 2>/dev/null; then
    wait "$PID_A"
    check "A, active when the master went, stepped down (exit 75)" 75 "$?"
    "$PARKD_BIN" -c "$CFG" 2>"$T/parkd-A.2.log" >/dev/null &
    PID_A=$!
    LOGS="$LOGS $T/parkd-A.2.log"
fi
wait_for "grep -c 'replicas have the last batch' '$alog'" 1 10 >/dev/null
check "with no replica left, input waits (min_replicas_ack)" yes \
    "$(grep -q 'replicas have the last batch' "$alog" && echo yes)"
start_node m "$M_PORT"      # Sentinel makes the old master a replica of the new one
wait_for "redis-cli -h 127.0.0.1 -p $M_PORT info replication | grep -c 'master_link_status:up'" 1 20 >/dev/null
check "the old master is a replica now" 1 \
    "$(redis-cli -h 127.0.0.1 -p $M_PORT info replication | grep -c "master_port:$R_PORT")"
eval "victim=\$PID_$active"
kill -KILL "$victim"; wait "$victim" 2>/dev/null
PARKD_PID=
wait_for "leader_on_r | grep -qE '^[ABC]:' && leader_on_r | grep -qv '^$active:' && echo yes" yes 10 >/dev/null
check_match "after kill -9 of the active ($active), another instance holds the lease" '^[ABC]:[0-9]+$' "$(leader_on_r | grep -v "^$active:")"
fault_publish_wait "publisher sent 4000 events and had every PUBACK"
fault_compare "after the failover and the takeover" "$T/truth" 40
for n in A B C; do
    [ "$n" = "$active" ] && continue
    eval "kill -TERM \$PID_$n; wait \$PID_$n"
    check "$n stops cleanly" 0 "$?"
done
finish
