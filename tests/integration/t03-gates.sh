#!/bin/sh
# t03-gates: gate lots (SPEC §3 gate rules), with a multi-level input prefix and a custom
# redis.prefix (SPEC §5: every key under the prefix).
IN=city/parking
RP=gp:
. "$(dirname "$0")/lib.sh"

write_config "  - {id: G1, name: Gate Lot, capacity: 50, source: gates}
  - {id: G2, capacity: 10, source: gates}"
parkd_start

B=$(($(now) - 600))
gate() { pub "$IN/G1/gate/$1" "$2"; }
U64MAX=18446744073709551615

snap
gate g1 in
check_eventually "bare in: +1" "hget G1 occupied" 1
gate g1 in
check_eventually "bare in again: +1" "hget G1 occupied" 2
gate g1 out
check_eventually "bare out: -1" "hget G1 occupied" 1
check "lot hash source" gates "$(hget G1 source)"
gate g1 '{"event": "in", "count": 5}'
check_eventually "JSON in with count 5" "hget G1 occupied" 6
gate g1 "{\"event\": \"in\", \"count\": 3, \"seq\": 1, \"ts\": $B}"
check_eventually "JSON in with count and seq" "hget G1 occupied" 9
gate g1 "{\"event\": \"in\", \"count\": 3, \"seq\": 1, \"ts\": $B}"
settle
check "duplicate seq (redelivery) ignored" 9 "$(hget G1 occupied)"
gate g1 '{"event": "out", "count": 2, "seq": 2}'
check_eventually "JSON out with count and next seq" "hget G1 occupied" 7
gate g1 '{"event": "out", "count": 1, "seq": 1}'
settle
check "seq below the last applied seq ignored" 7 "$(hget G1 occupied)"
gate g2 '{"event": "in", "seq": 1}'
check_eventually "seqs are per gate; count defaults to 1" "hget G1 occupied" 8

gate g3 '{"event": "in", "seq": 18446744073709550592}'
check_eventually "seq near 2^64 applied" "hget G1 occupied" 9
gate g3 '{"event": "in", "seq": 18446744073709550593}'
check_eventually "seq compared as unsigned 64-bit (2^64-1023 > 2^64-1024)" "hget G1 occupied" 10
gate g3 "{\"event\": \"in\", \"seq\": $U64MAX}"
check_eventually "seq 2^64-1 accepted" "hget G1 occupied" 11
gate g3 "{\"event\": \"in\", \"seq\": $U64MAX}"
gate g3 '{"event": "in", "seq": 18446744073709551614}'
settle
check "seq 2^64-1 repeated and 2^64-2 are duplicates" 11 "$(hget G1 occupied)"
check "counter ignored_duplicate (+4)" 4 "$(delta ignored_duplicate)"

gate g1 '{"event": "out"}'
check_eventually "event without seq on a gate that had seqs still applies" "hget G1 occupied" 10

snap
gate g1 '{"event": "out", "count": 40}'
check_eventually "out below zero clamps to 0" "hget G1 occupied" 0
check "out below zero: free = capacity" 50 "$(hget G1 free)"
gate g1 '{"event": "in", "count": 60}'
check_eventually "in above capacity clamps to capacity" "hget G1 occupied" 50
check_eventually "in above capacity: status full" "hget G1 status" full
settle
check "each clamp counted as anomaly_clamped (+2)" 2 "$(delta anomaly_clamped)"

pub "$IN/G1/count" '{"occupied": 30}'
check_eventually "count message recalibrates a gates lot" "hget G1 occupied" 30
gate g1 in
check_eventually "gates count on from the recalibrated value" "hget G1 occupied" 31
pub "$IN/G1/count" '{"free": 10}'
check_eventually "free count recalibrates a gates lot" "hget G1 occupied" 40
check_eventually "recalibration logged with the size of the correction (-20)" \
    "grep -iE 'recalib|correct|drift' '$PARKD_LOG' | grep G1 | grep -Eq '(^|[^0-9.])-?20([^0-9.]|\$)' && echo yes" yes 2
check_eventually "recalibration logged with the size of the correction (+9)" \
    "grep -iE 'recalib|correct|drift' '$PARKD_LOG' | grep G1 | grep -Eq '(^|[^0-9.])\\+?9([^0-9.]|\$)' && echo yes" yes 2

gate g4 "{\"event\": \"out\", \"count\": 2, \"ts\": $((B - 3600))}"
check_eventually "gate event with an old ts still applies (no ordering without seq)" "hget G1 occupied" 38
snap
pub "$IN/G1/count" "{\"occupied\": 5, \"ts\": $((B - 100))}"
settle
check "count older than the last recalibration ignored" 38 "$(hget G1 occupied)"
check "older count counted as ignored_old" 1 "$(delta ignored_old)"

snap
pub "$IN/G2/gate/a" out
check_eventually "out on an empty lot: lot has data, occupied 0" "hget G2 status" open
check "out on an empty lot: occupied 0" 0 "$(hget G2 occupied)"
settle
check "out on an empty lot counted as anomaly_clamped" 1 "$(delta anomaly_clamped)"
pub "$IN/G2/gate/a" in
check_eventually "in after clamped out counts from 0" "hget G2 occupied" 1
check_eventually "availability under the output prefix" "avail_field G1 occupied" 38

outside=$(rget keys '*' | grep -v '^gp:' | tr '\n' ' ')
check "every Redis key is under redis.prefix" "" "$outside"
check "lot hash under the custom prefix" 1 "$(rget exists gp:lot:G1)"
check "daemon hash under the custom prefix" 1 "$(rget exists gp:daemon)"

check_ok "parkd still running" parkd_alive
finish
