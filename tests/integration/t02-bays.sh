#!/bin/sh
# t02-bays: bay lots (SPEC §3 bay rules, §5 :bays hash).
. "$(dirname "$0")/lib.sh"

write_config "  - {id: B1, name: Bay Lot, capacity: 10, source: bays}
  - {id: B2, capacity: 2, source: bays}
  - {id: K1, capacity: 10, source: count}" \
    "limits.max_bays_per_lot=6"
parkd_start

B=$(($(now) - 600))
bay() { pub "$IN/B1/bay/$1" "$2"; }

# --- every accepted form ------------------------------------------------------------------------
bay b1 "{\"occupied\": true, \"ts\": $B}"
check_eventually "JSON occupied:true counts the bay" "hget B1 occupied" 1
check_eventually "bays hash: occupied bay is 1" "bayget B1 b1" 1
bay b2 "{\"occupied\": 1, \"ts\": $B}"
check_eventually "JSON occupied:1 counts the bay" "hget B1 occupied" 2
bay b3 "{\"occupied\": false, \"ts\": $B}"
check_eventually "JSON occupied:false: bays hash 0" "bayget B1 b3" 0
bay b4 "{\"occupied\": 0, \"ts\": \"$(iso $B)\"}"
check_eventually "JSON occupied:0 with ISO ts: bays hash 0" "bayget B1 b4" 0
check "free bays do not count" 2 "$(hget B1 occupied)"
check "free = capacity - occupied bays" 8 "$(hget B1 free)"
check "lot hash source" bays "$(hget B1 source)"

bay b5 1
check_eventually "bare 1 occupies" "hget B1 occupied" 3
check "bare 1: bays hash 1" 1 "$(bayget B1 b5)"
bay b5 0
check_eventually "bare 0 frees" "hget B1 occupied" 2
check "bare 0: bays hash 0" 0 "$(bayget B1 b5)"
bay b6 true
check_eventually "bare true occupies" "hget B1 occupied" 3
bay b6 false
check_eventually "bare false frees" "hget B1 occupied" 2
check "bare false: bays hash 0" 0 "$(bayget B1 b6)"
bay b3 occupied
check_eventually "bare 'occupied' occupies" "hget B1 occupied" 3
check "bare 'occupied': bays hash 1" 1 "$(bayget B1 b3)"
bay b3 free
check_eventually "bare 'free' frees" "hget B1 occupied" 2
check "bare 'free': bays hash 0" 0 "$(bayget B1 b3)"

# --- repeat and out-of-order -------------------------------------------------------------------
snap
bay b1 "{\"occupied\": true, \"ts\": $((B + 10))}"
settle
check "repeat of the same state changes nothing" 2 "$(hget B1 occupied)"
check "repeat counted as unchanged" 1 "$(delta unchanged)"
check "repeat is not counted as applied" 0 "$(delta applied)"

snap
bay b1 "{\"occupied\": false, \"ts\": $((B - 5))}"
settle
check "older bay state is ignored (occupied)" 2 "$(hget B1 occupied)"
check "older bay state is ignored (bays hash)" 1 "$(bayget B1 b1)"
check "older bay state counted as ignored_old" 1 "$(delta ignored_old)"

bay b1 "{\"occupied\": false, \"ts\": $((B + 20))}"
check_eventually "newer bay state applies" "hget B1 occupied" 1
check "newer bay state: bays hash 0" 0 "$(bayget B1 b1)"
bay b2 "{\"occupied\": false, \"ts\": \"$(iso $((B + 20)))\"}"
check_eventually "last occupied bay freed: occupied 0" "hget B1 occupied" 0
bay b4 "{\"occupied\": true, \"ts\": $((B + 30))}"
check_eventually "bay occupied again" "hget B1 occupied" 1

sum=$(rget hgetall "${RP}lot:B1:bays" | awk 'NR % 2 == 0 { s += $0 } END { print s + 0 }')
check "occupied = number of occupied bays in the bays hash" "$sum" "$(hget B1 occupied)"
check "bays hash holds every bay" "b1 b2 b3 b4 b5 b6" "$(rget hkeys "${RP}lot:B1:bays" | sort | tr '\n' ' ' | sed 's/ $//')"
check_eventually "availability occupied for a bay lot" "avail_field B1 occupied" 1
check_eventually "availability free for a bay lot" "avail_field B1 free" 9

# --- limits.max_bays_per_lot ----------------------------------------------------------------------
snap
bay b7 1
settle
check "a bay beyond max_bays_per_lot is rejected (occupied)" 1 "$(hget B1 occupied)"
check "a bay beyond max_bays_per_lot is not stored" "" "$(bayget B1 b7)"
check "rejected_too_many_bays counted" 1 "$(delta rejected_too_many_bays)"
bay b6 1
check_eventually "known bays still accepted at the limit" "hget B1 occupied" 2

# --- more occupied bays than capacity -----------------------------------------------------------
snap
pub "$IN/B2/bay/x1" 1
pub "$IN/B2/bay/x2" 1
check_eventually "B2 two bays occupied" "hget B2 occupied" 2
pub "$IN/B2/bay/x3" 1
settle
check "occupied bays above capacity: clamped to capacity" 2 "$(hget B2 occupied)"
check "occupied bays above capacity: free 0" 0 "$(hget B2 free)"
check "occupied bays above capacity: the bay state is still recorded" 1 "$(bayget B2 x3)"
check "occupied bays above capacity: anomaly_clamped +1" 1 "$(delta anomaly_clamped)"
check_eventually "occupied bays at capacity: status full" "hget B2 status" full
pub "$IN/B2/bay/x1" 0
pub "$IN/B2/bay/x2" 0
check_eventually "clamp is not sticky: 3 occupied - 2 freed = 1" "hget B2 occupied" 1

# --- wrong kind ---------------------------------------------------------------------------------
snap
pub "$IN/K1/bay/k1" 1
pub "$IN/B1/count" 5
pub "$IN/B1/gate/g1" in
settle
check "wrong kind rejected and counted (bay to count lot, count and gate to bay lot)" 3 "$(delta rejected_wrong_kind)"
check "wrong kind changes no state (bay lot)" 2 "$(hget B1 occupied)"
check "wrong kind changes no state (count lot)" "" "$(hget K1 occupied)"
check "wrong kind creates no bays hash" 0 "$(rget exists "${RP}lot:K1:bays")"

check_ok "parkd still running" parkd_alive
finish
