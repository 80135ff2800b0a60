#!/bin/sh
# t26-unknown-bays: bay_stale_after (SPEC §10, issue 16 item 3). A bay silent longer than it on
# the event clock counts as unknown, neither free nor occupied: free = capacity - occupied -
# unknown in the lot hash and the retained availability; its next message brings it back; a
# kill -9 and restart recomputes the same counts from the restored bay times; lots without it
# carry no "unknown"; on count and gates lots the key is a config error.
. "$(dirname "$0")/lib.sh"

write_config "  - {id: U1, capacity: 10, source: bays, bay_stale_after: 1h}
  - {id: U2, capacity: 5, source: bays, bay_stale_after: 1h}
  - {id: P1, capacity: 10, source: bays}"
parkd_start

B=$(($(now) - 3 * 3600))
bay() { pub "$IN/$1/bay/$2" "{\"occupied\": $3, \"ts\": $4}"; }
counts() { echo "$(hget U1 occupied) $(hget U1 unknown) $(hget U1 free)"; }
avail_counts() { _a=$(avail U1); echo "$(jget "$_a" occupied) $(jget "$_a" unknown) $(jget "$_a" free)"; }

# --- bays go unknown when the event clock passes their ts + 1h ------------------------------
bay U1 u1 true $B
bay U1 u2 false $B
bay U1 u3 true $((B + 1800))
bay P1 p1 true $B
settle
check_eventually "three fresh bays: occupied unknown free" counts "2 0 8"
check_eventually "retained availability: unknown 0" avail_counts "2 0 8"
check_eventually "P1 availability is there" "avail_field P1 free" 9
check "a lot without bay_stale_after has no unknown in its availability" no \
    "$(avail P1 | grep -q '"unknown"' && echo yes || echo no)"
check "a lot without bay_stale_after has no unknown in its hash" 0 "$(rget hexists "${RP}lot:P1" unknown)"

# an event on another lot moves the event clock past u1's and u2's ts + 1h
bay U2 v1 true $((B + 3601))
check_eventually "u1 and u2 unknown: occupied 1, unknown 2, free 7" counts "1 2 7"
check_eventually "retained availability agrees" avail_counts "1 2 7"
check "an unknown bay keeps its last state in :bays" 1 "$(bayget U1 u1)"
check "status follows free" open "$(hget U1 status)"

# --- a heartbeat repeating the state brings a bay back ---------------------------------------
bay U1 u1 true $((B + 3700))
check_eventually "heartbeat: u1 known again, occupied 2, unknown 1" counts "2 1 7"
check_eventually "retained availability after the heartbeat" avail_counts "2 1 7"

# the event clock moves on through a lot without the feature: u3 (B+1800) expires, u1 not
bay P1 p1 false $((B + 5401))
check_eventually "u3 unknown too: occupied 1, unknown 2, free 7" counts "1 2 7"
check_eventually "P1 itself is unaffected" "hget P1 free" 10

entries=$(rget xrange "${RP}lot:U1:history" - + | grep -c '^unknown$')
check "history entries of U1 carry unknown" yes "$([ "${entries:-0}" -ge 1 ] && echo yes)"
entries=$(rget xrange "${RP}lot:P1:history" - + | grep -c '^unknown$')
check "history entries of P1 do not" 0 "${entries:-0}"

# --- kill -9 and restart: unknown recomputed from the restored bay times ----------------------
N=$(now)
bay U1 u4 true $((N - 600))
bay U1 u5 false $((N - 600))
bay P1 p1 false $N      # the event clock reaches now: u1 (B+3700) expires as well
check_eventually "before the kill: occupied 1 (u4), unknown 3, free 6" counts "1 3 6"
check_eventually "before the kill: retained availability" avail_counts "1 3 6"
settle
kill -KILL "$PARKD_PID" 2>/dev/null
wait "$PARKD_PID" 2>/dev/null
PARKD_PID=
rget hset "${RP}lot:U1" unknown 99 >/dev/null    # prove the restarted daemon rewrites it
parkd_start
check_eventually "after the restart: the same counts" counts "1 3 6"
check_eventually "after the restart: the same retained availability" avail_counts "1 3 6"
bay U1 u2 false $(now)
check_eventually "after the restart a bay comes back: occupied 1, unknown 2, free 7" counts "1 2 7"

# --- reload applies at once: off counts every bay by its last state, on expires them again ----
write_config "  - {id: U1, capacity: 10, source: bays}
  - {id: U2, capacity: 5, source: bays, bay_stale_after: 1h}
  - {id: P1, capacity: 10, source: bays}"
kill -HUP "$PARKD_PID"
check_eventually "reload without bay_stale_after: u1, u3, u4 occupied, free 7" \
    "echo \$(hget U1 occupied) \$(hget U1 free)" "3 7"
check_eventually "reload without bay_stale_after: no unknown in the hash" \
    "rget hexists ${RP}lot:U1 unknown" 0
check_eventually "reload without bay_stale_after: no unknown in the availability" \
    "avail U1 | grep -c unknown" 0
write_config "  - {id: U1, capacity: 10, source: bays, bay_stale_after: 1h}
  - {id: U2, capacity: 5, source: bays, bay_stale_after: 1h}
  - {id: P1, capacity: 10, source: bays}"
kill -HUP "$PARKD_PID"
check_eventually "reload with bay_stale_after again: the same counts as before" counts "1 2 7"
check_eventually "reload with bay_stale_after again: retained availability" avail_counts "1 2 7"

# --- config errors: FILE:LINE:COL and exit 78 -----------------------------------------------------
bad() {   # bad NAME SOURCE
    _f=$T/$1.yaml
    printf 'lots:\n  - {id: A1, capacity: 10, source: bays, bay_stale_after: 1h}\n  - {id: A2, capacity: 10, source: %s, bay_stale_after: 1h}\n' "$2" >"$_f"
    timeout 10 "$PARKD_BIN" -c "$_f" --check >"$T/out" 2>&1
    check "bay_stale_after on a $2 lot: exit 78" 78 "$?"
    check_match "bay_stale_after on a $2 lot: error names file:line:col" \
        "$_f:3:[0-9]+: .*bay_stale_after.*" "$(head -1 "$T/out")"
}
bad count count
bad gates gates

check_ok "parkd still running" parkd_alive
finish
