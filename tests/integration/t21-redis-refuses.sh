#!/bin/sh
# t21-redis-refuses: a Redis that stays connected but refuses writes, twice while 12,000 QoS 1
# bay and gate events flow: `maxmemory` far below its use with `noeviction` for 10 s (every
# write gets OOM), then `REPLICAOF` a dead port for 10 s (a read-only replica: READONLY). parkd
# must back off for real (not retry in a tight loop), say the cause (not only EXECABORT) once
# and then rate-limited, send again only the batch Redis refused (not its whole state), keep its
# CPU and RSS bounded, and end exactly at the ground truth (issue 11, item 3).
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"
FG_ARGS="-s 21 -n 12000"
. "$(dirname "$0")/fault-lib.sh"

HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PARKD_PID/stat"; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$PARKD_PID/status"; }
log_lines() { wc -l <"$PARKD_LOG"; }
DEAD_PORT=$(free_port)
heal() { rget config set maxmemory 0 >/dev/null 2>&1; rget replicaof no one >/dev/null 2>&1; }
trap '_lib_rc=$?; heal; _fault_cleanup; exit $_lib_rc' EXIT

fault_servers
# info level: the refusal lines are what is counted, not per-batch debug lines. 2,000 more lots
# without input make the full state (with every lot's forecast model) large, so that rewriting
# it on every retry would show in CPU and RSS.
EXTRA=$(awk 'BEGIN { for (i = 1; i <= 2000; i++) printf "  - {id: X%04d, capacity: 100, source: count}\n", i }')
write_config "$("$FG" $FG_ARGS lots)
$EXTRA" "mqtt.client_id=parkd-fault-$$" "log.level=info"
parkd_start
fault_truth "$T/truth"

# episode NAME — 10 s of refusal (begun by the caller); checks the bounds over it
episode() {
    _name=$1
    _l0=$(log_lines); _c0=$(cpu_ticks); _r0=$(rss_kb); _rmax=$_r0
    _i=0
    while [ $_i -lt 20 ]; do
        sleep 0.5
        _r=$(rss_kb); [ "$_r" -gt "$_rmax" ] && _rmax=$_r
        _i=$((_i + 1))
    done
    _lines=$(($(log_lines) - _l0))
    _cpu_ms=$(( ($(cpu_ticks) - _c0) * 1000 / HZ ))
    echo "# $_name: $_lines log lines, ${_cpu_ms} ms CPU, RSS ${_r0} -> max ${_rmax} kB in 10 s"
    check "$_name: parkd is alive" yes "$(parkd_alive && echo yes)"
    check "$_name: at most 5 log lines in 10 s (got $_lines)" yes "$([ "$_lines" -le 5 ] && echo yes)"
    check "$_name: under 1 s of CPU in 10 s (got $_cpu_ms ms)" yes "$([ "$_cpu_ms" -lt 1000 ] && echo yes)"
    check "$_name: RSS grows by under 16 MB (got $((_rmax - _r0)) kB)" yes \
        "$([ $((_rmax - _r0)) -lt 16384 ] && echo yes)"
}

fault_publish_bg -r 1000 --mark-at 3000 --mark-at 8000

# --- maxmemory with noeviction -----------------------------------------------------------------
fault_wait_line "mark 3000" || finish
used=$(rget info memory | awk -F: '$1 == "used_memory" { print $2 + 0 }')
limit=1048576
[ "$used" -gt $((limit + 65536)) ] || limit=$((used / 2))
rget config set maxmemory-policy noeviction >/dev/null
rget config set maxmemory "$limit" >/dev/null
check "maxmemory $limit is below Redis's use ($used bytes)" yes "$([ "$used" -gt "$limit" ] && echo yes)"
episode "maxmemory"
rget config set maxmemory 0 >/dev/null
check_eventually "the cause is logged: OOM" "grep -c 'redis: refuses writes: OOM' '$PARKD_LOG'" 1 5
check_eventually "the recovery is logged" "grep -c 'redis: takes writes again' '$PARKD_LOG'" 1 10

# --- a replica of a dead master ----------------------------------------------------------------
fault_wait_line "mark 8000" 60 || finish
rget replicaof 127.0.0.1 "$DEAD_PORT" >/dev/null
episode "replicaof"
rget replicaof no one >/dev/null
check_eventually "the cause is logged: READONLY" "grep -c 'redis: refuses writes: READONLY' '$PARKD_LOG'" 1 5
check_eventually "the recovery is logged again" "grep -c 'redis: takes writes again' '$PARKD_LOG'" 2 10

fault_publish_wait "publisher sent 12000 events and had every PUBACK"
fault_compare t21 "$T/truth" 30
check "no reconnect to Redis for a refusal" 0 "$(grep -c 'redis: connection lost\|reconnecting' "$PARKD_LOG")"
check "parkd:daemon counts the refusals" yes "$([ "$(fault_counter redis_refusals)" -ge 2 ] && echo yes)"
check "EXECABORT is not what the log says" 0 "$(grep -c 'EXECABORT' "$PARKD_LOG")"
check "no 'Unknown error.' in the log" 0 "$(grep -c 'Unknown error' "$PARKD_LOG")"
# input held for Redis stops the broker's keepalive (nothing is read or written meanwhile): when
# the connection lapses, the log says why
lapses=$(grep -c 'mqtt: connection lost' "$PARKD_LOG")
check "every MQTT connection loss names Redis as the cause ($lapses)" "$lapses" \
    "$(grep 'mqtt: connection lost' "$PARKD_LOG" | grep -c 'waited .* for Redis')"
finish
