#!/bin/sh
# t10-long-ids: ids as long as SPEC §2 allows (64 characters) for lots, bays and gates. Every
# Redis key is exactly <prefix>lot:<id>[:<suffix>] with no stray bytes, the restore keys are
# found again after kill -9, so the restarted parkd keeps counting exactly (issue 10, item 1).
# A 65-character id is refused: in the configuration (exit 78) and in a topic (rejected, no key).
. "$(dirname "$0")/lib.sh"

# 64 characters each, using every kind of character an id may hold
pad() { printf '%s' "$1"; printf '%*s' $((64 - ${#1})) '' | tr ' ' 'x'; }
LG=$(pad "G.gate-lot_")
LB=$(pad "B.bay-lot_")
LC=$(pad "C.count-lot_")
BAY=$(pad "bay-")
GATE=$(pad "gate.")
check "the ids are 64 characters" "64 64 64 64 64" "${#LG} ${#LB} ${#LC} ${#BAY} ${#GATE}"

write_config "  - {id: $LG, capacity: 50, source: gates}
  - {id: $LB, capacity: 10, source: bays}
  - {id: $LC, capacity: 100, source: count}" "mqtt.client_id=parkd-t10-$$"
parkd_start

B=$(($(now) - 600))
for s in 1 2 3; do pub "$IN/$LG/gate/$GATE" "{\"event\": \"in\", \"seq\": $s, \"ts\": $((B + s))}"; done
pub "$IN/$LB/bay/$BAY" "{\"occupied\": true, \"ts\": $((B + 10))}"
pub "$IN/$LC/count" "{\"occupied\": 40, \"ts\": $((B + 20))}"
settle
check_eventually "gates lot with a 64-char id and gate id counts" "hget $LG occupied" 3
check_eventually "bays lot with a 64-char id and bay id counts" "hget $LB occupied" 1
check_eventually "count lot with a 64-char id counts" "hget $LC occupied" 40
check "the bay is stored under its full id" 1 "$(bayget "$LB" "$BAY")"
check "the lot hash name is exact (capacity field there)" 50 "$(rget hget "${RP}lot:$LG" capacity)"

# Every key parkd wrote: the prefix, then lots, daemon, or lot:<one of our ids>[:suffix]
keys=$(rget --scan --pattern '*' | sort)
bad=$(printf '%s\n' "$keys" | grep -Ev "^parkd:(lots|daemon|written|lot:($LG|$LB|$LC)(:[a-z]+)?)$" | tr '\n' ' ')
check "every Redis key is <prefix>lot:<full id>[:suffix] (no torn or padded names)" "" "$bad"
bytes=$(printf '%s\n' "$keys" | LC_ALL=C grep -c '[^A-Za-z0-9_.:-]')
check "no key holds a byte outside the id alphabet" 0 "$bytes"
for k in "" :state :bays :baystate; do
    check "key lot:<bay lot>$k exists" 1 "$(rget exists "${RP}lot:$LB$k")"
done
check "key lot:<gate lot>:gateseq exists" 1 "$(rget exists "${RP}lot:$LG:gateseq")"
check "the gate seq is stored under the full gate id" 3 "$(rget hget "${RP}lot:$LG:gateseq" "$GATE")"
check "the lot set holds the three full ids" "$LB $LC $LG" "$(rget smembers "${RP}lots" | sort | tr '\n' ' ' | sed 's/ $//')"
check "retained availability on the full-id topic" 47 "$(avail_field "$LG" free)"

# kill -9, then input queued for the session: what the restored state must judge
parkd_stop KILL
pub "$IN/$LG/gate/$GATE" "{\"event\": \"in\", \"seq\": 2, \"ts\": $((B + 2))}"     # a duplicate
pub "$IN/$LG/gate/$GATE" "{\"event\": \"in\", \"seq\": 4, \"ts\": $((B + 30))}"
pub "$IN/$LB/bay/$BAY" "{\"occupied\": false, \"ts\": $B}"                        # older
pub "$IN/$LC/count" "{\"occupied\": 10, \"ts\": $B}"                              # older
pub "$IN/$LC/count" "{\"occupied\": 45, \"ts\": $((B + 40))}"
parkd_start
check_eventually "after kill -9: the newer count applies" "hget $LC occupied" 45
check_eventually "after kill -9: the gate seq was restored (duplicate ignored, seq 4 counted)" "hget $LG occupied" 4
check "after kill -9: the bay's event time was restored (older state ignored)" 1 "$(hget "$LB" occupied)"
check "after kill -9: the bay's stored state kept" 1 "$(bayget "$LB" "$BAY")"
check_eventually "after kill -9: ignored_duplicate and ignored_old counted" \
    "echo \$(dget ignored_duplicate) \$(dget ignored_old)" "1 2" 3
IN0=$(($(dget messages_in) - SENT))     # the queued input, counted after parkd_start's IN0

# 65 characters: refused in the configuration and in a topic
L65=${LC}y
snap
pub "$IN/$L65/count" '{"occupied": 1}'
pub "$IN/$LB/bay/${BAY}y" '{"occupied": true}'
settle
check "65-char lot and bay ids in topics are rejected as bad ids" 2 "$(delta rejected_bad_id)"
check "no key was made for the 65-char ids" 0 "$(rget --scan --pattern "*${L65}*" | wc -l)"
check "the bay lot did not take the 65-char bay" "" "$(bayget "$LB" "${BAY}y")"
parkd_stop TERM
check "SIGTERM exit 0" 0 "$PARKD_RC"

printf 'mqtt: {host: 127.0.0.1}\nredis: {host: 127.0.0.1}\nlots:\n  - {id: %s, capacity: 5, source: count}\n' "$L65" >"$T/long.yaml"
"$PARKD_BIN" --check -c "$T/long.yaml" >"$T/long.out" 2>&1
check "a 65-char lot id in the configuration: --check exits 78" 78 "$?"
check "and says which id is wrong" 1 "$(grep -c 'is not a valid id' "$T/long.out")"
finish
