#!/bin/sh
# t95-ha: two parkd with one configuration and ha (SPEC §11, issue 14), against a durable Redis
# and a persistent mosquitto. A is active, B a ready standby (READY=1, Redis only). kill -9 of
# A mid-stream: B takes the lease, restores, connects with the shared client id and is handed
# A's unacknowledged messages; the takeover time is printed. Then A comes back as standby, B is
# SIGSTOPped past its lease, A takes over, B is resumed: every command B sends Redis after the
# takeover is audited with MONITOR (only reads: the fence's WATCH/GET and the lease script,
# which changes nothing for a non-holder), B steps down (exit 75), and the final state equals
# the ground truth exactly.
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"
FG_ARGS="-s 95 -n 6000"
. "$(dirname "$0")/fault-lib.sh"
LEASE_MS=3000

fault_servers
write_config "$("$FG" $FG_ARGS lots)
  - {id: X1, capacity: 20, source: bays}" "mqtt.client_id=parkd-fault-$$" "log.level=info" \
    "ha={instance: A, lease: 3s}"
CFG_A=$CFG
CFG_B=$T/parkd-b.yaml
sed 's/instance: A/instance: B/' "$CFG_A" >"$CFG_B"
role() { rget hget "${RP}instance:$1" role; }
leader() { rget get "${RP}leader"; }

start_b() {
    "$PARKD_BIN" -c "$CFG_B" 2>"$T/parkd-b.$1.log" >/dev/null &
    PID_B=$!
    LOGS="$LOGS $T/parkd-b.$1.log"
}

parkd_start                         # A: takes the lease at once, nobody else is there
PID_A=$PARKD_PID
check_match "A holds the lease" '^A:[0-9]+$' "$(leader)"
check "the daemon hash names the leader" A "$(dget leader)"
start_b 1
check_eventually "B is a standby" "role B" standby
check "B says it is a ready standby" yes "$(grep -q 'ready as standby' "$T/parkd-b.1.log" && echo yes)"
check_eventually "A is active" "role A" active
check "the daemon hash is still A's (a standby writes none)" "$PID_A" "$(dget pid)"

fault_truth "$T/truth"
fault_publish_bg -r 1000 --mark-at 2000 --mark-at 4000

# --- kill -9 of the active mid-stream ------------------------------------------------------------
fault_wait_line "mark 2000"
t0=$(now_ms)
kill -KILL "$PID_A"; wait "$PID_A" 2>/dev/null
PARKD_PID=
wait_for "leader | grep -q '^B:' && echo yes" yes 10
t1=$(now_ms)
wait_for "[ \"\$(dget pid)\" = $PID_B ] && echo yes" yes 10
t2=$(now_ms)
echo "# takeover after kill -9: lease taken after $((t1 - t0)) ms, B restored and storing after $((t2 - t0)) ms (lease $LEASE_MS ms)"
check "B holds the lease within lease + 1 s" yes "$([ $((t1 - t0)) -le $((LEASE_MS + 1000)) ] && echo yes)"
check "B is active and stores within lease + 3 s" yes "$([ $((t2 - t0)) -le $((LEASE_MS + 3000)) ] && echo yes)"
check_match "the epoch moved on" '^B:[0-9]+$' "$(leader)"
check "the daemon hash names B" B "$(dget leader)"

# A comes back: a standby now
"$PARKD_BIN" -c "$CFG_A" 2>"$T/parkd-a.2.log" >/dev/null &
PID_A=$!
LOGS="$LOGS $T/parkd-a.2.log"
check_eventually "A, restarted, is a standby" "role A" standby

# --- SIGSTOP the active past its lease; the standby takes over; the old one wakes ---------------
fault_wait_line "mark 4000"
b_ports=$(ss -tnp 2>/dev/null | awk -v p="pid=$PID_B," -v r=":$REDIS_PORT" 'index($0, p) && $5 ~ r"$" { n = split($4, a, ":"); print a[n] }' | tr '\n' ' ')
check "B's Redis connection is found" yes "$([ -n "$b_ports" ] && echo yes)"
kill -STOP "$PID_B"
wait_for "leader | grep -q '^A:' && echo yes" yes 10
check_match "A takes the lease from the stopped B" '^A:[0-9]+$' "$(leader)"
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" monitor >"$T/monitor.out" 2>/dev/null &
MON_PID=$!
sleep 0.3
kill -CONT "$PID_B"
_i=0
while kill -0 "$PID_B" 2>/dev/null && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
if kill -0 "$PID_B" 2>/dev/null; then
    fail "B steps down after it is resumed" "exit 75" "still running"
    kill -KILL "$PID_B"
fi
wait "$PID_B"
check "B steps down with exit 75" 75 "$?"
sleep 0.3
kill "$MON_PID" 2>/dev/null; wait "$MON_PID" 2>/dev/null
b_cmds=$(for p in $b_ports; do grep "127.0.0.1:$p\]" "$T/monitor.out"; done |
         sed -n 's/.*\] "\([A-Za-z]*\)".*/\1/p' | tr 'a-z' 'A-Z' | sort | uniq -c | tr '\n' ' ')
echo "# B's commands after the takeover: ${b_cmds:-none}"
bad=$(printf '%s\n' "$b_cmds" | tr ' ' '\n' | grep -E '^[A-Z]+$' | grep -vxE 'WATCH|GET|UNWATCH|EVAL|PING' | tr '\n' ' ')
check "B writes nothing after the takeover (only WATCH/GET/UNWATCH/EVAL/PING)" "" "$bad"
check "B's log says why it stepped down" yes "$(grep -q 'lease lost' "$T"/parkd-b.1.log && echo yes)"
check_match "A still holds the lease" '^A:[0-9]+$' "$(leader)"

fault_publish_wait "publisher sent 6000 events and had every PUBACK"
fault_compare "after two takeovers" "$T/truth" 30
check_eventually "A is active" "role A" active

# --- the fence: another epoch while A still believes it holds the lease ------------------------
# A's renewals are made to fail (ACL: no EVAL), so only the fence can stop it before its lease
# runs out: another holder appears at a newer epoch, and A, with batches to write, must not.
a_ports=$(ss -tnp 2>/dev/null | awk -v p="pid=$PID_A," -v r=":$REDIS_PORT" 'index($0, p) && $5 ~ r"$" { n = split($4, a, ":"); print a[n] }' | tr '\n' ' ')
rget acl setuser default -eval >/dev/null
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" monitor >"$T/monitor2.out" 2>/dev/null &
MON_PID=$!
sleep 0.2
e=$(rget incr "${RP}epoch")
rget set "${RP}leader" "Z:$e" px 60000 >/dev/null
for i in 1 2 3 4 5 6 7 8 9 10; do pub "$IN/X1/bay/x$i" "{\"occupied\": true, \"ts\": $(now)}"; done
_i=0
while kill -0 "$PID_A" 2>/dev/null && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
wait "$PID_A"
check "A steps down when a batch meets another epoch (exit 75)" 75 "$?"
sleep 0.3
kill "$MON_PID" 2>/dev/null; wait "$MON_PID" 2>/dev/null
from=$(grep -n '"incr" "'"${RP}"'epoch"' "$T/monitor2.out" | head -n 1 | cut -d: -f1)
a_cmds=$(tail -n +"${from:-1}" "$T/monitor2.out" | { for p in $a_ports; do grep "127.0.0.1:$p\]"; done; } |
         sed -n 's/.*\] "\([A-Za-z]*\)".*/\1/p' | tr 'a-z' 'A-Z' | sort | uniq -c | tr '\n' ' ')
echo "# A's commands after the epoch moved: ${a_cmds:-none}"
check "A's log says the fence stopped it" yes "$(grep -q 'fenced' "$T"/parkd-a.2.log && echo yes)"
bad=$(printf '%s\n' "$a_cmds" | tr ' ' '\n' | grep -E '^[A-Z]+$' | grep -vxE 'WATCH|GET|UNWATCH|EVAL|PING' | tr '\n' ' ')
check "A writes nothing after the epoch moved (only WATCH/GET/UNWATCH/EVAL/PING)" "" "$bad"
check "A asked for the epoch before writing (the fence ran)" yes \
    "$(printf '%s' "$a_cmds" | grep -q 'WATCH' && echo yes)"
check "X1 is not stored by the fenced A" "" "$(hget X1 occupied)"
rget acl setuser default +eval >/dev/null
rget del "${RP}leader" >/dev/null
start_b 2
check_eventually "B takes over and applies the ten bays A never stored (redelivered)" "hget X1 occupied" 10 15
check_eventually "B is active" "role B" active

# --- every instance stopped, started again the other way round; a clean stop hands over at once --
"$PARKD_BIN" -c "$CFG_A" 2>"$T/parkd-a.3.log" >/dev/null &
PID_A=$!
LOGS="$LOGS $T/parkd-a.3.log"
check_eventually "A is a standby beside B" "role A" standby
t0=$(now_ms)
kill -TERM "$PID_B"; wait "$PID_B"
check "B stops cleanly" 0 "$?"
wait_for "leader | grep -q '^A:' && echo yes" yes 10
t1=$(now_ms)
echo "# handover after a clean stop of the active: $((t1 - t0)) ms (lease $LEASE_MS ms)"
check "B gave the lease up: A has it well within the lease" yes "$([ $((t1 - t0)) -lt $LEASE_MS ] && echo yes)"
kill -TERM "$PID_A"; wait "$PID_A"
check "A stops cleanly" 0 "$?"
start_b 3
check_eventually "B, started first, is active" "role B" active
"$PARKD_BIN" -c "$CFG_A" 2>"$T/parkd-a.4.log" >/dev/null &
PID_A=$!
LOGS="$LOGS $T/parkd-a.4.log"
check_eventually "A, started second, is a standby" "role A" standby
fault_compare "after every instance restarted in the other order" "$T/truth" 20
check "X1 kept its ten bays" 10 "$(hget X1 occupied)"
kill -TERM "$PID_A"; wait "$PID_A"
kill -TERM "$PID_B"; wait "$PID_B"
check "both stop cleanly" 0 "$?"
finish
