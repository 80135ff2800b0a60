#!/bin/sh
# t76-limits-bays: a flood of random bay (and gate) ids cannot grow parkd's memory or Redis past
# limits.max_bays_per_lot (issue 7, SPEC §3 rejected input). Bays beyond the cap are rejected as
# too_many_bays and counted; the bays already known keep working; the cap holds across a
# restart; gates have the same cap.
. "$(dirname "$0")/sec-lib.sh"

CAP=50
sec_start_redis
sec_start_mosquitto "allow_anonymous true"
write_config "  - {id: B1, capacity: 1000, source: bays}
  - {id: G1, capacity: 1000, source: gates}" "limits.max_bays_per_lot=$CAP"
parkd_start
snap

# --- the first CAP bays are taken, then the cap holds --------------------------------------------
flood "$IN/B1/bay/known%d" "$CAP" 1
settle
check_eventually "the first $CAP bays are stored" "rget hlen ${RP}lot:B1:bays" "$CAP"
check "no bay rejected below the cap" 0 "$(delta rejected_too_many_bays)"

flood "$IN/B1/bay/r%r" 2000 1
settle 40
check "a flood of 2000 random bay ids: Redis :bays stays at the cap" "$CAP" "$(rget hlen "${RP}lot:B1:bays")"
check "a flood of 2000 random bay ids: rejected_too_many_bays counts each" 2000 "$(delta rejected_too_many_bays)"
check "the flood did not move the lot (occupied = known occupied bays)" "$CAP" "$(hget B1 occupied)"
check "no flooded id reached Redis" 0 "$(rget hkeys "${RP}lot:B1:bays" | grep -vc '^known')"
check "the restore state stays at the cap too (:baystate)" "$CAP" "$(rget hlen "${RP}lot:B1:baystate")"
check_ok "rejections are logged with the reason" log_has "too_many_bays"
check_ok "rejection logging is rate-limited (far fewer lines than rejections)" \
    test "$(grep -c too_many_bays "$PARKD_LOG")" -lt 100

# --- known bays keep working ------------------------------------------------------------------------
pub "$IN/B1/bay/known7" "{\"occupied\": false, \"ts\": $(now)}"
check_eventually "a known bay still changes state at the cap" "bayget B1 known7" 0
check_eventually "and the lot follows it" "hget B1 occupied" $((CAP - 1))

# --- gates have the same cap ---------------------------------------------------------------------
snap
flood "$IN/G1/gate/g%d" $((CAP + 25)) in
settle 30
check "gates beyond the cap are rejected as too_many_bays" 25 "$(delta rejected_too_many_bays)"
check_eventually "only the first $CAP gates counted cars" "hget G1 occupied" "$CAP"

# --- the cap holds across a restart -----------------------------------------------------------------
parkd_stop
check "parkd exits 0" 0 "$PARKD_RC"
parkd_start
snap
flood "$IN/B1/bay/after%r" 100 1
settle 30
check "after a restart the restored bays count toward the cap" 100 "$(delta rejected_too_many_bays)"
check "after a restart Redis :bays is still at the cap" "$CAP" "$(rget hlen "${RP}lot:B1:bays")"
check_ok "parkd is alive after the floods" parkd_alive

finish
