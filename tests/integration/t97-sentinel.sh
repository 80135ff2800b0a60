#!/bin/sh
# t97-sentinel: Redis Sentinel (SPEC §11, issue 14) with redis.min_replicas_ack: 1. A master
# and a replica (both with AOF), three sentinels; parkd finds the master through them. kill -9
# of the master mid-stream: Sentinel promotes the replica, parkd follows (+switch-master), and
# input waits until the new master has a replica again (the old one, restarted, is made one by
# Sentinel); every event is in the final state, exactly.
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
    "redis.master_name=mymaster" "redis.min_replicas_ack=1"
parkd_start
check "parkd found the master through the sentinels" yes \
    "$(grep -q "master mymaster is at 127.0.0.1:$M_PORT" "$PARKD_LOG" && echo yes)"
fault_truth "$T/truth"
fault_publish_bg -r 800 --mark-at 1500
fault_wait_line "mark 1500"
kill -KILL "$PID_m"; wait "$PID_m" 2>/dev/null
t0=$(now_ms)
wait_for "grep -c 'moved from 127.0.0.1:$M_PORT to 127.0.0.1:$R_PORT' '$PARKD_LOG'" 1 20 >/dev/null
t1=$(now_ms)
check "parkd follows +switch-master to the promoted replica" yes \
    "$(grep -q "moved from 127.0.0.1:$M_PORT to 127.0.0.1:$R_PORT" "$PARKD_LOG" && echo yes)"
echo "# failover seen by parkd $((t1 - t0)) ms after the master's kill -9"
REDIS_PORT=$R_PORT
sleep 1
check "with no replica left, input waits (min_replicas_ack)" yes \
    "$(grep -q 'replicas have the last batch' "$PARKD_LOG" && echo yes)"
start_node m "$M_PORT"      # Sentinel makes the old master a replica of the new one
wait_for "redis-cli -h 127.0.0.1 -p $M_PORT info replication | grep -c 'master_link_status:up'" 1 20 >/dev/null
check "the old master is a replica now" 1 \
    "$(redis-cli -h 127.0.0.1 -p $M_PORT info replication | grep -c "master_port:$R_PORT")"
fault_publish_wait "publisher sent 4000 events and had every PUBACK"
fault_compare "after the failover" "$T/truth" 40
parkd_stop
check "parkd stops cleanly" 0 "$PARKD_RC"
finish
