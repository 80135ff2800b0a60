#!/bin/sh
# t09-reload: SIGHUP reloads the configuration (SPEC §7): added lots start, removed lots stop being
# published (their keys stay), changed capacities apply at once; an invalid configuration is
# logged and the old one kept.
. "$(dirname "$0")/lib.sh"

write_config "  - {id: A1, capacity: 100, source: count}
  - {id: R1, capacity: 50, source: count}"
parkd_start
pid=$PARKD_PID

pub "$IN/A1/count" 60
pub "$IN/R1/count" 10
check_eventually "before reload: A1 applied" "hget A1 occupied" 60
check_eventually "before reload: R1 applied" "hget R1 occupied" 10
check_eventually "before reload: R1 published" "avail_field R1 occupied" 10

# A1 shrinks to 50, R1 goes, N1 comes
write_config "  - {id: A1, capacity: 50, source: count}
  - {id: N1, name: New One, capacity: 20, source: count}"
kill -HUP "$PARKD_PID"
check_eventually "reload: added lot's availability published" "avail_field N1 status" unknown
check_eventually "reload: lots set is the new lot ids" "rget smembers ${RP}lots | sort | tr '\n' ' '" "A1 N1 "
check_eventually "reload: changed capacity applies at once (capacity)" "hget A1 capacity" 50
check_eventually "reload: changed capacity applies at once (occupied re-clamped)" "hget A1 occupied" 50
check "reload: changed capacity applies at once (free)" 0 "$(hget A1 free)"
check_eventually "reload: changed capacity applies at once (status full)" "hget A1 status" full
check_eventually "reload: changed capacity published" "avail_field A1 capacity" 50
check "reload: removed lot's keys stay" 10 "$(hget R1 occupied)"
check_ok "reload: same process" kill -0 "$pid"

snap
pub "$IN/R1/count" 20
pub "$IN/N1/count" 5
check_eventually "reload: added lot takes input" "hget N1 occupied" 5
settle
check "reload: input for a removed lot is rejected as unknown" 1 "$(delta rejected_unknown_lot)"
check "reload: removed lot's state unchanged" 10 "$(hget R1 occupied)"
check "reload: removed lot no longer published" 10 "$(avail_field R1 occupied)"
check_eventually "reload: summary lists only the configured lots" \
    "\"$PY\" -c 'import json,sys; print(\" \".join(sorted(l[\"lot\"] for l in json.loads(sys.argv[1])[\"lots\"])))' \"\$(retained $OUT/summary)\"" "A1 N1"

# an invalid configuration is logged and the old one kept
cp "$CFG" "$T/good.yaml"
printf 'lots:\n  - {id: A1, capacity: 50, source: count}\n  - {id: A1, capacity: 9, source: count}\n' >"$CFG"
kill -HUP "$PARKD_PID"
sleep 1
check_ok "invalid reload: parkd keeps running" parkd_alive
check "invalid reload: errors logged with FILE:LINE:COL" yes "$(grep -Eq "$CFG:3:[0-9]+:" "$PARKD_LOG" && echo yes)"
pub "$IN/N1/count" 6
check_eventually "invalid reload: old configuration kept (N1 still taken)" "hget N1 occupied" 6
check "invalid reload: old configuration kept (capacity)" 50 "$(hget A1 capacity)"
check "invalid reload: lots set unchanged" "A1 N1" "$(rget smembers "${RP}lots" | sort | tr '\n' ' ' | sed 's/ $//')"

parkd_stop TERM
check "SIGTERM after reloads: exit 0" 0 "$PARKD_RC"
finish
