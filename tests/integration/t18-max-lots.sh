#!/bin/sh
# t18-max-lots: limits.max_lots bounds the lots of a configuration (SPEC §6, issue "Hold under
# every fault", item 7): more is a configuration error naming the first lot too many, at start,
# in --check and on SIGHUP (the running configuration kept); exactly max_lots is fine; --check
# warns how much memory a big configuration will take. Small max_lots keep it fast.
. "$(dirname "$0")/lib.sh"

# lots N [FIRST=0] — N count lots L<FIRST>.. as write_config's LOTS, one a line
lots() {
    awk -v n="$1" -v f="${2:-0}" 'BEGIN {
        for (i = f; i < f + n; i++) printf "  - {id: L%d, capacity: 100, source: count}\n", i }'
}
# line_of ID — the line of $CFG where lot ID is
line_of() { grep -n "id: $1," "$CFG" | cut -d: -f1; }

# run_timed ARGS... — parkd with ARGS under a 20 s timeout; exit status in RC, output in OUTPUT
run_timed() {
    timeout -k 1 20 "$PARKD_BIN" "$@" >"$T/run.out" 2>&1
    RC=$?
    OUTPUT=$(cat "$T/run.out")
}

# --- one lot too many: start and --check name FILE:LINE:COL of it ---------------------------
write_config "$(lots 4)" "limits.max_lots=3"
LINE=$(line_of L3)
run_timed -c "$CFG" --check
check "4 lots, max_lots 3: --check exits 78" 78 "$RC"
check_match "4 lots, max_lots 3: --check names the 4th lot's line and column" \
    "$CFG:$LINE:5: lots\\[3\\]: more than limits\\.max_lots \\(3\\) lots \\(4 in all\\).*" "$OUTPUT"
run_timed -c "$CFG"
check "4 lots, max_lots 3: start exits 78" 78 "$RC"
check_ok "4 lots, max_lots 3: start logs FILE:LINE:COL" grep -q "$CFG:$LINE:5: lots\\[3\\]: more than limits.max_lots (3)" "$T/run.out"

# --- exactly max_lots is accepted; ~ is the default --------------------------------------------
write_config "$(lots 3)" "limits.max_lots=3"
run_timed -c "$CFG" --check
check "3 lots, max_lots 3: --check exits 0" 0 "$RC"
check "3 lots, max_lots 3: --check prints FILE: ok and no warning" "$CFG: ok" "$OUTPUT"
write_config "$(lots 3)" "limits.max_lots=~"
run_timed -c "$CFG" --check
check "max_lots ~ (the default): --check exits 0" 0 "$RC"

# --- SIGHUP to a too-big configuration keeps the running one ----------------------------------
write_config "$(lots 3)" "limits.max_lots=3"
parkd_start
pub "$IN/L0/count" 10
check_eventually "at max_lots: parkd runs and applies input" "hget L0 occupied" 10
cp "$CFG" "$T/good.yaml"
write_config "$(lots 5)" "limits.max_lots=3"
LINE=$(line_of L3)
kill -HUP "$PARKD_PID"
check_eventually "SIGHUP to 5 lots over max_lots 3: rejected and logged" \
    "grep -c 'reload: configuration rejected' '$PARKD_LOG'" 1
check_ok "SIGHUP to 5 lots: the log names FILE:LINE:COL of the first lot too many" \
    grep -q "$CFG:$LINE:5: lots\\[3\\]: more than limits.max_lots (3) lots (5 in all)" "$PARKD_LOG"
check_ok "SIGHUP to 5 lots: parkd keeps running" parkd_alive
check "SIGHUP to 5 lots: the lots set is unchanged" "L0 L1 L2" \
    "$(rget smembers "${RP}lots" | sort | tr '\n' ' ' | sed 's/ $//')"
snap
pub "$IN/L3/count" 7
pub "$IN/L0/count" 11
check_eventually "SIGHUP to 5 lots: a configured lot still takes input" "hget L0 occupied" 11
settle
check "SIGHUP to 5 lots: a lot beyond the limit was not added (unknown_lot)" 1 "$(delta rejected_unknown_lot)"

# raising max_lots with the lots: that reload applies
write_config "$(lots 5)" "limits.max_lots=5"
kill -HUP "$PARKD_PID"
check_eventually "SIGHUP to 5 lots with max_lots 5: applies" \
    "rget smembers ${RP}lots | sort | tr '\n' ' '" "L0 L1 L2 L3 L4 "
parkd_stop TERM
check "SIGTERM after the reloads: exit 0" 0 "$PARKD_RC"

# --- the memory warning of --check ------------------------------------------------------------
# 32000 lots (above the default max_lots) at the default three horizons take over 256 MiB
write_config "$(lots 32000)" "limits.max_lots=40000"
run_timed -c "$CFG" --check
check "32000 lots: --check exits 0 (a warning)" 0 "$RC"
check "32000 lots: --check still prints FILE: ok" "$CFG: ok" "$(printf '%s\n' "$OUTPUT" | grep ': ok$')"
check_match "32000 lots: --check warns how much memory they will take" \
    "$CFG: warning: 32000 lots will take about [0-9]+ MiB of memory \\(.* 3 forecast horizons.*\\)" \
    "$(printf '%s\n' "$OUTPUT" | grep 'will take')"
MIB=$(printf '%s\n' "$OUTPUT" | sed -n 's/.* will take about \([0-9]*\) MiB.*/\1/p')
check_ok "32000 lots: the estimate is plausible (200..400 MiB, got $MIB)" test "${MIB:-0}" -ge 200 -a "${MIB:-0}" -le 400
write_config "$(lots 100)"
run_timed -c "$CFG" --check
check "100 lots: no memory warning" "$CFG: ok" "$OUTPUT"

# --- the default bound holds for a runaway file ---------------------------------------------------
write_config "$(lots 20001)"
LINE=$(line_of L20000)
run_timed -c "$CFG" --check
check "20001 lots at the default max_lots: --check exits 78" 78 "$RC"
check_ok "20001 lots: the error names the 20001st lot" \
    grep -q "^$CFG:$LINE:5: lots\\[20000\\]: more than limits.max_lots (20000)" "$T/run.out"

finish
