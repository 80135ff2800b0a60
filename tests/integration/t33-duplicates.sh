#!/bin/sh
# t33-duplicates: QoS 1 delivers at least once, so parkd must be idempotent (SPEC §3, issue 3).
#  1. events [0, 10000) as fast as they go: exact;
#  2. the same 10000 events again: the same final state, and not one of them applied;
#  3. events [10000, 20000) while Redis is frozen (SIGSTOP) long enough for the MQTT keepalive
#     to drop parkd's connection: the broker re-delivers (DUP) what parkd had read but not
#     acknowledged, to a parkd that has applied it already in memory; after SIGCONT: exact.
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"
FG_ARGS="-s 33 -n 20000"
. "$(dirname "$0")/fault-lib.sh"

fault_servers
fault_config
parkd_start
fault_truth "$T/truth.10000" --to 10000
fault_truth "$T/truth"

# counters are written every second: wait for a value that has stopped moving
settled_counter() {
    _a=$(fault_counter "$1"); sleep 1.2; _b=$(fault_counter "$1")
    while [ "$_a" != "$_b" ]; do _a=$_b; sleep 1.2; _b=$(fault_counter "$1"); done
    echo "$_b"
}

# --- 1 -----------------------------------------------------------------------------------------
fault_publish "first pass of events [0, 10000)" --to 10000
fault_compare "t33 first pass" "$T/truth.10000" 20
in1=$(settled_counter messages_in)
applied1=$(fault_counter applied)

# --- 2 -----------------------------------------------------------------------------------------
fault_publish "second pass of the same events [0, 10000)" --to 10000
if wait_for '[ "$(fault_counter messages_in)" -ge '"$((in1 + 10000))"' ] && echo yes' yes 40; then
    pass "parkd read all 10000 events of the second pass"
else
    fail "parkd read all 10000 events of the second pass" "messages_in >= $((in1 + 10000))" "$(fault_counter messages_in)"
fi
sleep 1.2
check "second pass: no event applied (counter applied unchanged)" "$applied1" "$(fault_counter applied)"
fault_compare "t33 second pass" "$T/truth.10000" 10

# --- 3 -----------------------------------------------------------------------------------------
in2=$(settled_counter messages_in)
lost0=$(grep -c 'mqtt: connection lost' "$PARKD_LOG")
fault_publish_bg -r 2000 --from 10000 --to 20000 --mark-at 12000
fault_wait_line "mark 12000"
kill -STOP "$REDIS_PID"
# keepalive is 5 s: the broker drops the silent client after 7.5 s, or the client itself
# gives up after 10 s
if wait_for '[ "$(grep -c "mqtt: connection lost" "$PARKD_LOG")" -gt '"$lost0"' ] && echo yes' yes 20; then
    pass "with Redis frozen, parkd's MQTT connection was dropped (unacknowledged input)"
else
    fail "with Redis frozen, parkd's MQTT connection was dropped (unacknowledged input)" "a 'connection lost' line" "none"
fi
sleep 2                 # parkd reconnects and the broker re-delivers
kill -CONT "$REDIS_PID"
fault_publish_wait "events [10000, 20000) published and acknowledged"
fault_compare "t33 re-delivery" "$T/truth" 20
in3=$(settled_counter messages_in)
redelivered=$((in3 - in2 - 10000))
if [ "$redelivered" -gt 0 ]; then
    pass "the broker re-delivered $redelivered messages that parkd had read already"
else
    fail "the broker re-delivered messages that parkd had read already" "> 0" "$redelivered"
fi
check_ok "parkd still running" parkd_alive
finish
