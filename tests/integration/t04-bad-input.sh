#!/bin/sh
# t04-bad-input: rejected input mixed with a good sequence (SPEC §2, §3 "Rejected input"). The
# good sequence alone is replayed on reference lots R*; the mixed lots must end in the same state,
# each rejection must be counted under its reason, and parkd must keep running.
. "$(dirname "$0")/lib.sh"

write_config "  - {id: X1, capacity: 100, source: count}
  - {id: Y1, capacity: 10, source: bays}
  - {id: Z1, capacity: 50, source: gates}
  - {id: RX1, capacity: 100, source: count}
  - {id: RY1, capacity: 10, source: bays}
  - {id: RZ1, capacity: 50, source: gates}
  - {id: W1, capacity: 10, source: count}"
parkd_start
snap

B=$(($(now) - 600))
NOW=$(now)

# good P N — the N-th message of the good sequence for lot P (X, Y or Z), on lot ${R}P1
good() {
    case "$1$2" in
        X1) pub "$IN/${R}X1/count" "{\"occupied\": 10, \"ts\": $B}" ;;
        X2) pub "$IN/${R}X1/count" "{\"occupied\": 20, \"ts\": $((B + 10))}" ;;
        X3) pub "$IN/${R}X1/count" "{\"occupied\": 35, \"ts\": $((B + 20))}" ;;
        Y1) pub "$IN/${R}Y1/bay/b1" "{\"occupied\": true, \"ts\": $B}" ;;
        Y2) pub "$IN/${R}Y1/bay/b2" "{\"occupied\": true, \"ts\": $((B + 1))}" ;;
        Y3) pub "$IN/${R}Y1/bay/b1" "{\"occupied\": false, \"ts\": $((B + 2))}" ;;
        Y4) pub "$IN/${R}Y1/bay/b3" "{\"occupied\": true, \"ts\": $((B + 3))}" ;;
        Z1) pub "$IN/${R}Z1/gate/g1" '{"event": "in", "count": 5, "seq": 1}' ;;
        Z2) pub "$IN/${R}Z1/gate/g1" '{"event": "out", "count": 2, "seq": 2}' ;;
        Z3) pub "$IN/${R}Z1/gate/g1" '{"event": "in", "seq": 3}' ;;
    esac
}

# the reference: the good sequence alone
R=R
for s in X1 Y1 Z1 X2 Y2 Z2 X3 Y3 Z3 Y4; do good "${s%?}" "${s#?}"; done
R=

E_malformed=0 E_oversize=0 E_unknown_lot=0 E_bad_id=0 E_wrong_kind=0 E_future=0 E_bad_topic=0
# bad REASON TOPIC PAYLOAD — one rejected message
bad() {
    eval "E_$1=\$((E_$1 + 1))"
    pub "$2" "$3"
}
# unheard TOPIC PAYLOAD — a topic outside parkd's input patterns: parkd does not subscribe to it,
# so it is neither input nor counted (SPEC §3, "Subscriptions and latency")
unheard() {
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$1" -m "$2" || fail "mosquitto_pub to $1" "rc 0" "rc $?"
}

# payload files of exact sizes: valid JSON padded with an ignored extra key
mkpad() {   # mkpad FILE SIZE OCCUPIED TS
    "$PY" -c '
import sys
path, size, occ, ts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
head = "{\"occupied\": %s, \"ts\": %s, \"pad\": \"" % (occ, ts)
body = head + "x" * (size - len(head) - 2) + "\"}"
assert len(body) == size
open(path, "w").write(body)' "$1" "$2" "$3" "$4"
}
mkpad "$T/p1024" 1024 35 $((B + 20))
mkpad "$T/p1025" 1025 99 $((B + 30))
"$PY" -c 'import sys; open(sys.argv[1], "w").write("{\"occupied\": true, \"ts\": %s, \"pad\": \"%s\"}" % (sys.argv[2], "y" * 2000))' "$T/p2000" $((B + 50))
printf '1\000' >"$T/nul"
A64=$(printf 'A%.0s' $(seq 64))
A65=$(printf 'A%.0s' $(seq 65))

good X 1
bad malformed "$IN/X1/count" 'abc'
bad malformed "$IN/X1/count" '{"occupied": -5}'
bad unknown_lot "$IN/NOPE/count" 5
unheard "$IN" 5
good Y 1
bad malformed "$IN/X1/count" '{"free": -1}'
bad malformed "$IN/X1/count" '{"occupied": "ten"}'
bad bad_id "$IN/../count" 5
bad bad_id "$IN/./count" 5
bad wrong_kind "$IN/X1/bay/b1" 1
bad future "$IN/X1/count" "{\"occupied\": 77, \"ts\": $((NOW + 3600))}"
good Z 1
bad malformed "$IN/X1/count" '{'
E_malformed=$((E_malformed + 1)); pub_empty "$IN/X1/count"
bad malformed "$IN/X1/count" '-3'
bad malformed "$IN/X1/count" '12abc'
bad malformed "$IN/X1/count" "{\"ts\": $B}"
bad malformed "$IN/X1/count" '[1]'
bad malformed "$IN/X1/count" '{"occupied": 10, "ts": "yesterday"}'
unheard "$IN/X1" 5
unheard "$IN/X1/counts" 5
unheard "$IN/X1/count/extra" 5
good X 2
bad malformed "$IN/Y1/bay/b1" maybe
bad malformed "$IN/Y1/bay/b1" 2
bad malformed "$IN/Y1/bay/b1" '{"occupied": "yes"}'
bad malformed "$IN/Y1/bay/b1" "{\"ts\": $B}"
E_malformed=$((E_malformed + 1)); pub_file "$IN/Y1/bay/b4" "$T/nul"
bad bad_id "$IN/Y1/bay/.b" 1
bad bad_id "$IN/Y1/bay/b%1" 1
bad bad_id "$IN/Y1/bay/$A65" 1
bad bad_id "$IN/$A65/count" 5
bad unknown_lot "$IN/$A64/count" 5
bad bad_id "$IN/-X/count" 5
bad bad_id "$IN/X 1/count" 5
unheard "$IN/Y1/bay" 1
unheard "$IN/Y1/bay/b1/x" 1
bad future "$IN/Y1/bay/b1" "{\"occupied\": true, \"ts\": $((NOW + 3600))}"
bad wrong_kind "$IN/Y1/count" 5
bad wrong_kind "$IN/Y1/gate/g1" in
good Y 2
bad malformed "$IN/Z1/gate/g1" sideways
bad malformed "$IN/Z1/gate/g1" '{"event": "in", "count": 0}'
bad malformed "$IN/Z1/gate/g1" '{"event": "in", "count": -1}'
bad malformed "$IN/Z1/gate/g1" '{"event": "in", "seq": 18446744073709551616}'
bad malformed "$IN/Z1/gate/g1" '{"event": "in", "seq": -1}'
bad malformed "$IN/Z1/gate/g1" '{"event": "up"}'
bad malformed "$IN/Z1/gate/g1" '{"count": 2}'
bad bad_id "$IN/Z1/gate/g:1" in
unheard "$IN/Z1/gates/g1" in
unheard "$IN/Z1/gate" in
bad wrong_kind "$IN/X1/gate/g1" in
bad wrong_kind "$IN/Z1/bay/b1" 1
bad unknown_lot "$IN/nope2/bay/b1" 1
bad unknown_lot "$IN/Unknown.Lot/gate/g1" in
bad future "$IN/Z1/gate/g1" "{\"event\": \"in\", \"count\": 9, \"ts\": $((NOW + 3600))}"
good Z 2
E_oversize=$((E_oversize + 1)); pub_file "$IN/X1/count" "$T/p1025"
E_oversize=$((E_oversize + 1)); pub_file "$IN/Y1/bay/b1" "$T/p2000"
bad future "$IN/X1/count" "{\"occupied\": 78, \"ts\": \"$(iso $((NOW + 3600)))\"}"
pub_file "$IN/X1/count" "$T/p1024"          # good X 3, exactly max_payload bytes
good Y 3
good Z 3
good Y 4
pub "$IN/W1/count" "{\"occupied\": 3, \"ts\": $(($(now) + 60))}"   # within max_future: accepted

settle 10

# --- final state equals the good sequence's ---------------------------------------------------
check "1024-byte payload accepted; 1025-byte rejected (X1 occupied)" 35 "$(hget X1 occupied)"
for f in occupied free status ts; do
    check "count lot after bad input: $f as with the good sequence alone" "$(hget RX1 $f)" "$(hget X1 $f)"
done
check "count lot: expected ts" "$(iso $((B + 20)))" "$(hget X1 ts)"
check "bay lot after bad input: occupied" 2 "$(hget Y1 occupied)"
for f in occupied free status ts; do
    check "bay lot after bad input: $f as with the good sequence alone" "$(hget RY1 $f)" "$(hget Y1 $f)"
done
check "bay lot after bad input: bays hash as with the good sequence alone" \
    "$(rget hgetall "${RP}lot:RY1:bays" | paste - - | sort | tr '\n\t' '  ')" \
    "$(rget hgetall "${RP}lot:Y1:bays" | paste - - | sort | tr '\n\t' '  ')"
check "gate lot after bad input: occupied" 4 "$(hget Z1 occupied)"
for f in occupied free status; do
    check "gate lot after bad input: $f as with the good sequence alone" "$(hget RZ1 $f)" "$(hget Z1 $f)"
done
check "ts 60 s ahead (within max_future) accepted" 3 "$(hget W1 occupied)"

# --- counters ------------------------------------------------------------------------------------
check "messages_in counts every message" "$SENT" "$(delta messages_in)"
check "applied counts the good messages" 21 "$(delta applied)"
for r in malformed oversize unknown_lot bad_id wrong_kind future bad_topic; do
    eval "exp=\$E_$r"
    check "rejected_$r counted" "$exp" "$(delta rejected_$r)"
done
total=0
for c in applied unchanged ignored_old ignored_duplicate rejected_bad_topic rejected_bad_id \
         rejected_unknown_lot rejected_malformed rejected_oversize rejected_wrong_kind \
         rejected_future rejected_too_many_bays; do
    total=$((total + $(delta $c)))
done
check "every message has exactly one outcome (sum of outcome counters = messages_in)" "$(delta messages_in)" "$total"

# --- nothing derived from rejected ids ------------------------------------------------------------
leaked=$(rget keys '*' | grep -E 'NOPE|nope2|Unknown|\.\.|AAAA|-X|X 1' | tr '\n' ' ')
check "no Redis key for unknown lots or bad ids" "" "$leaked"
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t "$OUT/#" -W 2 -v 2>/dev/null | cut -d' ' -f1 >"$T/outtopics"
leaked=$(grep -vE "^$OUT/(status|summary|(X1|Y1|Z1|RX1|RY1|RZ1|W1)/(availability|forecast))\$" "$T/outtopics" | tr '\n' ' ')
check "no output topic for unknown lots or bad ids" "" "$leaked"
check "lots set unchanged" "RX1 RY1 RZ1 W1 X1 Y1 Z1" "$(rget smembers "${RP}lots" | sort | tr '\n' ' ' | sed 's/ $//')"
check "malformed bay payload created no bay" "" "$(bayget Y1 b4)"

# --- logged with reason and topic ------------------------------------------------------------------
check "rejection logged with reason and topic (unknown lot NOPE)" yes \
    "$(grep -i 'unknown' "$PARKD_LOG" | grep -q "$IN/NOPE/count" && echo yes)"
check "rejection logged with reason and topic (malformed on X1)" yes \
    "$(grep -i 'malformed' "$PARKD_LOG" | grep -q "$IN/X1/count" && echo yes)"

check_ok "parkd still running after bad input" parkd_alive
pub "$IN/X1/count" 36
check_eventually "parkd still applies input after bad input" "hget X1 occupied" 36
finish
