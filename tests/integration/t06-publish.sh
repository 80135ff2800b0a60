#!/bin/sh
# t06-publish: publishing rules (SPEC §4 "Publishing", `<out>/status`), shutdown (SPEC §7 SIGTERM),
# the MQTT will, and the default topic prefixes.
. "$(dirname "$0")/lib.sh"

LOTS="  - {id: P1, capacity: 100, source: count}
  - {id: P2, capacity: 100, source: count}
  - {id: P3, capacity: 100, source: count}
  - {id: P4, capacity: 100, source: count}"

# live NAME — "TIME OCCUPIED" for every non-retained message recorded by sub_start NAME (messages
# without data, "occupied":null, are left out)
live() {
    awk -F'|' '$2 == "0" && match($0, /"occupied": *[0-9]+/) {
        v = substr($0, RSTART, RLENGTH); sub(/.*: */, "", v); print $1, v }' "$(sub_file "$1")"
}
# live_time NAME VALUE — arrival time of the first live message with occupied VALUE
live_time() { live "$1" | awk -v v="$2" '$2 == v { print $1; exit }'; }
# live_count NAME FROM TO — live messages that arrived in [FROM, TO]
live_count() { live "$1" | awk -v a="$2" -v b="$3" '$1 >= a && $1 <= b { n++ } END { print n + 0 }'; }
fsub() { awk "BEGIN { printf \"%.3f\", $1 - $2 }"; }
fle() { awk "BEGIN { exit !($1 <= $2) }"; }
status_msg() {   # retain flag and payload of <out>/status
    mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -C 1 -W 5 -t "$OUT/status" -F '%r|%p' 2>/dev/null
}

# === run 1: min_interval 2s ======================================================================
write_config "$LOTS" "publish.min_interval=2s"
parkd_start
check "status topic: online, retained" "1|online" "$(status_msg)"
sub_start a1 "$OUT/P1/availability"
sub_start a2 "$OUT/P2/availability"
wait_for "grep -c . '$(sub_file a1)'" 1 5 >/dev/null
sleep 2     # the startup publishes are now older than min_interval

# Three quick changes right after a publish. The scenario is void (and retried) when this host is
# too slow to send them within 1 s of seeing the publish.
valid=
for attempt in 1 2 3; do
    v0=$((attempt * 10)); v1=$((v0 + 1)); v2=$((v0 + 2)); v3=$((v0 + 3))
    s0=$(date +%s.%N)
    pub "$IN/P1/count" "$v0"
    wait_for "[ -n \"\$(live_time a1 $v0)\" ] && echo yes" yes 4.5 >/dev/null
    t0=$(live_time a1 "$v0")
    if [ -z "$t0" ]; then
        fail "min_interval 2s: a change is published" "a live message with occupied $v0" "$(live a1 | tr '\n' ';')"
        break
    fi
    s1=$(date +%s.%N)
    pub "$IN/P1/count" "$v1"
    sp2=$(date +%s.%N)
    pub "$IN/P2/count" $((15 + attempt))
    pub "$IN/P1/count" "$v2"
    pub "$IN/P1/count" "$v3"
    if fle "$(fsub "$(date +%s.%N)" "$t0")" 1.0; then valid=1; break; fi
    echo "note: host too slow for the min_interval scenario (attempt $attempt), retrying"
    sleep 2.5
done
if [ -n "$valid" ]; then
    pass "min_interval 2s: a change after a quiet interval is published"
    wait_for "[ -n \"\$(live_time a1 $v3)\" ] && echo yes" yes 4 >/dev/null
    t3=$(live_time a1 "$v3")
    t15=$(live_time a2 $((15 + attempt)))
    if [ -n "$t15" ] && fle "$(fsub "$t15" "$sp2")" 1.0; then
        pass "min_interval is per lot: another lot's change published at once"
    else
        fail "min_interval is per lot: another lot's change published at once" "within 1 s" "${t15:+$(fsub "$t15" "$sp2") s}${t15:-no message}"
    fi
    if [ -z "$t3" ]; then
        fail "min_interval 2s: last of three quick changes published (delayed, not dropped)" "occupied $v3" "$(live a1 | tr '\n' ';')"
    else
        pass "min_interval 2s: last of three quick changes published (delayed, not dropped)"
        # its publish is >= 2 s after the previous publish, which was after we sent $v0
        d=$(fsub "$t3" "$s0")
        if fle 1.9 "$d"; then pass "min_interval 2s: next publish not before the interval ends"; else
            fail "min_interval 2s: next publish not before the interval ends" ">= 1.9 s after sending the previous change" "$d s"; fi
        # the previous publish was seen before we sent $v1, so the interval ends < 2 s after that
        d=$(fsub "$t3" "$s1")
        if fle "$d" 3.0; then pass "min_interval 2s: delayed change published when the interval ends"; else
            fail "min_interval 2s: delayed change published when the interval ends" "<= 3.0 s after sending it" "$d s"; fi
        end=$(awk "BEGIN { printf \"%.6f\", $t3 + 1.5 }")
        while fle "$(date +%s.%N)" "$end"; do sleep 0.2; done
        check "min_interval 2s: one publish for three changes inside the interval" "1" \
            "$(live_count a1 "$(awk "BEGIN { printf \"%.6f\", $t0 + 0.000001 }")" "$end")"
    fi
    check "min_interval 2s: the intermediate values are not published" "" \
        "$(live a1 | awk -v a="$v1" -v b="$v2" '$2 == a || $2 == b' | tr '\n' ';')"
else
    fail "min_interval 2s: scenario ran" "three changes sent within 1 s of a publish" "host too slow 3 times"
fi
check "published counter moves" yes "$([ "$(dget published)" -gt 0 ] 2>/dev/null && echo yes)"

# a change pending inside the interval is flushed on SIGTERM
pub "$IN/P1/count" 50
wait_for "[ -n \"\$(live_time a1 50)\" ] && echo yes" yes 4 >/dev/null
pub "$IN/P1/count" 60
sleep 0.5
parkd_stop TERM
check "SIGTERM: parkd exits 0" 0 "$PARKD_RC"
check "SIGTERM: final state in Redis" 60 "$(hget P1 occupied)"
check "SIGTERM: change pending in min_interval published before exit" 60 "$(avail_field P1 occupied)"
check "SIGTERM: status offline, retained" "1|offline" "$(status_msg)"
sub_stop a1
sub_stop a2

# === run 2: min_interval 0, deadband 5, heartbeat 5m ===============================================
write_config "$LOTS" "publish.deadband=5"
parkd_start
check "restart: status online again" "1|online" "$(status_msg)"
sub_start a3 "$OUT/P3/availability"
wait_for "grep -c . '$(sub_file a3)'" 1 5 >/dev/null
pub "$IN/P3/count" 10
pub "$IN/P3/count" 20
pub "$IN/P3/count" 30
pub "$IN/P3/count" 40
pub "$IN/P3/count" 50
wait_for "live a3 | awk '{ printf \"%s \", \$2 }'" "10 20 30 40 50 " 4 >/dev/null
check "min_interval 0: every change published, in order" "10 20 30 40 50 " "$GOT"
pub "$IN/P3/count" 52
settle
sleep 1
check "deadband 5: change of 2 free applied in Redis" 52 "$(hget P3 occupied)"
check "deadband 5: change of 2 free not published" "" "$(live_time a3 52)"
pub "$IN/P3/count" 58
check_eventually "deadband 5: larger change published" "[ -n \"\$(live_time a3 58)\" ] && echo yes" yes 2
pub "$IN/P3/count" 87
check_eventually "deadband 5: change of 29 published" "[ -n \"\$(live_time a3 87)\" ] && echo yes" yes 2
pub "$IN/P3/count" 89
settle
sleep 0.5
check "deadband 5: change of 2 free (same status) not published" "" "$(live_time a3 89)"
pub "$IN/P3/count" 90
check_eventually "status change is published even inside the deadband" "[ -n \"\$(live_time a3 90)\" ] && echo yes" yes 2
check_eventually "published status is almost_full" "avail_field P3 status" almost_full
parkd_stop TERM
check "SIGTERM (run 2): exit 0" 0 "$PARKD_RC"
sub_stop a3

# === run 3: heartbeat 2s, deadband 5 ===============================================================
write_config "$LOTS" "publish.deadband=5" "publish.heartbeat=2s"
parkd_start
sub_start a4 "$OUT/P3/availability"
wait_for "grep -c . '$(sub_file a4)'" 1 5 >/dev/null
pub "$IN/P3/count" 80
check_eventually "run 3: change published" "[ -n \"\$(live_time a4 80)\" ] && echo yes" yes 2
pub "$IN/P3/count" 82
check_eventually "change inside the deadband is published by the heartbeat" "[ -n \"\$(live_time a4 82)\" ] && echo yes" yes 4.5
t82=$(live_time a4 82)
[ -n "$t82" ] || t82=$(date +%s.%N)
end=$(awk "BEGIN { printf \"%.3f\", $t82 + 5.2 }")
while fle "$(date +%s.%N)" "$end"; do sleep 0.2; done
n=$(live_count a4 "$(awk "BEGIN { printf \"%.6f\", $t82 + 0.000001 }")" "$end")
if [ "$n" -ge 2 ] && [ "$n" -le 3 ]; then pass "heartbeat 2s: unchanged state republished every heartbeat"; else
    fail "heartbeat 2s: unchanged state republished every heartbeat" "2..3 messages in 5.2 s" "$n"; fi
kill -KILL "$PARKD_PID"
wait "$PARKD_PID" 2>/dev/null
PARKD_PID=
check_eventually "killed parkd: the MQTT will sets status offline" "status_msg" "1|offline" 5
sub_stop a4

# === run 4: default prefixes (parking, parking/out) ==================================================
IN=parking
OUT=parking/out
write_config "$LOTS" "mqtt.input_prefix=-" "mqtt.output_prefix=-"
parkd_start
check "default output prefix: parking/out/status online" "1|online" "$(status_msg)"
snap
pub parking/P4/count 7
check_eventually "default input prefix parking/, output parking/out/" "avail_field P4 occupied" 7
sleep 2.5   # summaries (summary_interval 1s) and availability land in parking/# too
rej=0
for r in bad_topic bad_id unknown_lot malformed oversize wrong_kind future too_many_bays; do
    rej=$((rej + $(delta rejected_$r)))
done
check "default prefixes: parkd's own output is not counted as rejected input" 0 "$rej"
parkd_stop TERM
check "SIGTERM (run 4): exit 0" 0 "$PARKD_RC"
finish
