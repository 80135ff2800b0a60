#!/bin/sh
# t29-zone-config: zone and category configuration (SPEC §10). Every config error of zones and
# categories makes `parkd --check` exit 78 naming FILE:LINE:COL of the offending node; a valid
# configuration passes. At run time a bay matching the patterns of two zones is rejected
# (ambiguous_zone), counted, logged once and never applied, while an exact id beats a pattern; a
# zone with more occupied bays than its capacity clamps. A SIGHUP reload that moves an occupied bay
# to another zone moves the zone counts by one and leaves the lot's alone; a reload that removes a
# zone removes it from the availability and the lot hash; an invalid reload keeps the zones.
. "$(dirname "$0")/lib.sh"

# --- config errors ---------------------------------------------------------------------------------
# bad NAME LINE WORD DESCRIPTION — $T/NAME.yaml is rejected with exit 78 and an error line
# "FILE:LINE:COL: ..." (containing WORD when given)
bad() {
    _f=$T/$1.yaml
    timeout 10 "$PARKD_BIN" -c "$_f" --check >"$T/out" 2>&1
    check "--check $4: exit 78" 78 "$?"
    _re="^$_f:$2:[0-9]+: "
    [ -n "$3" ] && _re="$_re.*$3"
    if grep -Eiq -- "$_re" "$T/out"; then pass "--check $4: error names $1.yaml:$2${3:+ and $3}"; else
        fail "--check $4: error names the file, line $2 and column${3:+ and $3}" "a line matching $_re" "$(cat "$T/out")"; fi
}

cat >"$T/dupbay.yaml" <<'EOF'
lots:
  - id: A
    capacity: 20
    source: bays
    zones:
      - {id: Z1, capacity: 10, bays: ["x-01", "x-02"]}
      - {id: Z2, capacity: 10, bays: ["y-*", "x-02"]}
EOF
bad dupbay 7 x-02 "an exact bay id in two zones"

cat >"$T/vip.yaml" <<'EOF'
lots:
  - id: A
    capacity: 20
    source: bays
    categories:
      disabled: {capacity: 2, bays: [a1]}
      vip: {capacity: 2, bays: [a2]}
EOF
bad vip 7 vip "an unknown category name (vip)"

cat >"$T/countzones.yaml" <<'EOF'
lots:
  - {id: B, capacity: 10, source: bays}
  - id: A
    capacity: 20
    source: count
    zones: [{id: Z1, capacity: 10, bays: ["a*"]}]
EOF
bad countzones 6 count "zones on a count lot"

cat >"$T/countcats.yaml" <<'EOF'
lots:
  - {id: B, capacity: 10, source: bays}
  - id: A
    capacity: 20
    source: count
    categories: {disabled: {capacity: 2, bays: [a1]}}
EOF
bad countcats 6 count "categories on a count lot"

cat >"$T/zonesum.yaml" <<'EOF'
lots:
  - id: A
    capacity: 20
    source: bays
    zones: [{id: Z1, capacity: 12, bays: ["a*"]}, {id: Z2, capacity: 9, bays: ["b*"]}]
EOF
bad zonesum 5 capacit "zone capacities (12 + 9) above the lot's 20"

cat >"$T/catcap.yaml" <<'EOF'
lots:
  - id: A
    capacity: 20
    source: bays
    categories:
      ev_charging: {capacity: 21, bays: ["e*"]}
EOF
bad catcap 6 capacit "a category capacity (21) above the lot's 20"

cat >"$T/gatesinbays.yaml" <<'EOF'
lots:
  - id: A
    capacity: 20
    source: bays
    zones:
      - {id: Z1, capacity: 10, bays: ["a*"]}
      - {id: Z2, capacity: 10, gates: [g1]}
EOF
bad gatesinbays 7 "" "gates: in a zone of a bays lot"

cat >"$T/baysingates.yaml" <<'EOF'
lots:
  - id: G
    capacity: 20
    source: gates
    zones:
      - {id: N, capacity: 10, gates: [g1]}
      - {id: S, capacity: 10, bays: ["s*"]}
EOF
bad baysingates 7 "" "bays: in a zone of a gates lot"

cat >"$T/dupzone.yaml" <<'EOF'
lots:
  - id: A
    capacity: 20
    source: bays
    zones:
      - {id: Z1, capacity: 5, bays: ["a*"]}
      - {id: Z1, capacity: 5, bays: ["b*"]}
EOF
bad dupzone 7 Z1 "a duplicate zone id"

cat >"$T/good.yaml" <<'EOF'
lots:
  - id: Z1
    capacity: 30
    source: bays
    bay_stale_after: 1h
    zones:
      - {id: L1, name: Level 1, capacity: 10, bays: ["L1-*"]}
      - {id: L2, capacity: 10, bays: ["L2-*"]}
      - {id: L3, capacity: 10, bays: ["L3-01", "L3-02", "L3-0[3-9]", "L3-10"]}
    categories:
      disabled: {capacity: 2, bays: ["L1-01", "L2-01"]}
      ev_charging: {capacity: 3, bays: ["L3-0[1-3]"]}
  - {id: G1, capacity: 20, source: gates, zones: [{id: N, capacity: 12, gates: [gn]}, {id: S, capacity: 8, gates: [gs]}]}
EOF
timeout 10 "$PARKD_BIN" -c "$T/good.yaml" --check >"$T/out" 2>&1
check "--check on a valid zones and categories config: exit 0" 0 "$?"
check "--check on a valid zones and categories config prints FILE: ok" "$T/good.yaml: ok" "$(cat "$T/out")"

# --- run time ---------------------------------------------------------------------------------
Z1_HEAD="  - id: Z1
    capacity: 30
    source: bays
    zones:
      - {id: L1, name: Level 1, capacity: 10, bays: [\"L1-*\"]}"
Z1_CATS="    categories:
      disabled: {capacity: 2, bays: [\"L1-01\", \"L2-01\"]}"
OTHERS="  - id: AM
    capacity: 20
    source: bays
    zones:
      - {id: ZA, capacity: 10, bays: [\"A*\", \"A11\"]}
      - {id: ZB, capacity: 10, bays: [\"*1\"]}
  - id: CL
    capacity: 10
    source: bays
    zones:
      - {id: Q, capacity: 2, bays: [\"q*\"]}
      - {id: R, capacity: 8, bays: [\"r*\"]}
  - id: HY
    capacity: 20
    source: bays
    almost_full: 0.8
    hysteresis: 0.2
    zones:
      - {id: H, capacity: 10, bays: [\"h*\"]}
      - {id: K, capacity: 10, bays: [\"k*\"]}"
write_config "$Z1_HEAD
      - {id: L2, capacity: 10, bays: [\"L2-*\"]}
      - {id: L3, capacity: 10, bays: [\"L3-*\"]}
$Z1_CATS
$OTHERS"
parkd_start

bay() { pub "$IN/$1/bay/$2" "$3"; }

# --- an ambiguous bay: rejected, counted, logged once, never applied ---------------------------
snap
bay AM A1 1
bay AM A1 1
bay AM A1 0
bay AM A2 1          # only A*: zone ZA
bay AM B1 1          # only *1: zone ZB
bay AM A11 1         # A* and *1, but listed exactly in ZA: zone ZA
settle
am() { rget hmget "${RP}lot:AM" zone:ZA:occupied zone:ZB:occupied occupied free | tr '\n' ' ' | sed 's/ $//'; }
check_eventually "ambiguous A1 not applied; A2 and A11 in ZA, B1 in ZB (ZA 2, ZB 1, lot 3, free 17)" am "2 1 3 17"
check_eventually "rejected_ambiguous_zone counts each of the three A1 messages" "delta rejected_ambiguous_zone" 3
check "the ambiguous bay is never in :bays" 0 "$(rget hexists "${RP}lot:AM:bays" A1)"
check "the other bays are in :bays" "1 1 1" "$(bayget AM A2) $(bayget AM B1) $(bayget AM A11)"
check "the ambiguous bay is logged once" 1 "$(grep -i 'ambiguous' "$PARKD_LOG" | grep -Ec 'A1([^0-9]|$)')"
check_eventually "availability of AM: ZA 2, ZB 1" \
    "_a=\$(avail AM); echo \$(jget \"\$_a\" zones.0.occupied) \$(jget \"\$_a\" zones.1.occupied) \$(jget \"\$_a\" occupied)" "2 1 3"

# --- a reload that changes AM's zones: A1 is still ambiguous, the others keep their zones ---------
# (the daemon forgets which bays it refused and resolves them again: exercises that bookkeeping)
OTHERS=$(printf '%s\n' "$OTHERS" | sed 's/bays: \["\*1"\]}/bays: ["*1", "C9"]}/')
write_config "$Z1_HEAD
      - {id: L2, capacity: 10, bays: [\"L2-*\"]}
      - {id: L3, capacity: 10, bays: [\"L3-*\"]}
$Z1_CATS
$OTHERS"
kill -HUP "$PARKD_PID"
bay AM C9 1
check_eventually "reload changing AM's zones: ZA 2, ZB 2 (C9 listed exactly), lot 4" am "2 2 4 16"
snap
bay AM A1 1
settle
check_eventually "after the reload A1 is still rejected as ambiguous" "delta rejected_ambiguous_zone" 1
check "after the reload A1 is still not in :bays" 0 "$(rget hexists "${RP}lot:AM:bays" A1)"

# --- a zone with more occupied bays than its capacity clamps ------------------------------------
bay CL q1 1
bay CL q2 1
bay CL q3 1
bay CL r1 1
cl() { rget hmget "${RP}lot:CL" zone:Q:occupied zone:Q:free zone:Q:status zone:R:occupied zone:R:free occupied free | tr '\n' ' ' | sed 's/ $//'; }
check_eventually "zone Q (capacity 2) with 3 occupied bays: occupied 2, free 0, full; the lot counts 4" cl "2 0 full 1 7 4 6"

# --- zone status: the lot's almost_full (0.8) and hysteresis (0.2) on the zone's numbers --------
hy() { echo "$(hget HY zone:H:occupied) $(hget HY zone:H:status) $(avail_field HY zones.0.status)"; }
for i in 1 2 3 4 5 6 7; do bay HY "h$i" 1; done
check_eventually "zone H 7 of 10: open" hy "7 open open"
bay HY h8 1
check_eventually "zone H 8 of 10 (occupancy 0.8): almost_full" hy "8 almost_full almost_full"
bay HY h8 0
check_eventually "zone H back to 7 (0.7 >= 0.8 - 0.2): still almost_full" hy "7 almost_full almost_full"
bay HY h7 0
bay HY h6 0
check_eventually "zone H 5 (0.5 < 0.6): open" hy "5 open open"
for i in 6 7 8 9 10; do bay HY "h$i" 1; done
check_eventually "zone H 10 of 10: full" hy "10 full full"
bay HY h10 0
check_eventually "zone H 9 (free 1 >= max(1, round(10 x 0.01))): leaves full for almost_full" hy "9 almost_full almost_full"
check "zone K without data on a lot with data: open, 0 occupied" "0 10 open" \
    "$(hget HY zone:K:occupied) $(hget HY zone:K:free) $(hget HY zone:K:status)"

# --- a closed lot's zones show closed -------------------------------------------------------------
ADMIN=parking/admin
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -r -t "$ADMIN/HY/state" -m '{"state":"closed"}' ||
    fail "retained closure of HY" "rc 0" "rc $?"
SENT=$((SENT + 1))
hyc() { _a=$(avail HY); echo "$(jget "$_a" status) $(jget "$_a" zones.0.status) $(jget "$_a" zones.1.status) $(hget HY zone:H:status) $(hget HY zone:K:status)"; }
check_eventually "closed lot: its zones closed in the availability and the hash" hyc "closed closed closed closed closed"
check "closed lot: zone counts still there" "9 1" "$(avail_field HY zones.0.occupied) $(avail_field HY zones.0.free)"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -r -t "$ADMIN/HY/state" -m '{"state":"open"}' ||
    fail "retained opening of HY" "rc 0" "rc $?"
SENT=$((SENT + 1))
check_eventually "reopened lot: zone statuses from the counts again" hyc "open almost_full open almost_full open"

# --- reload: bay L1-05 (occupied) moves from zone L1 to L2 -------------------------------------
for b in L1-01 L1-02 L1-03 L1-04 L1-05 L2-01 L3-01; do bay Z1 "$b" 1; done
bay Z1 L1-06 0
bay Z1 L2-02 0
z1() { rget hmget "${RP}lot:Z1" zone:L1:occupied zone:L1:free zone:L2:occupied zone:L2:free zone:L3:occupied cat:disabled:occupied occupied free | tr '\n' ' ' | sed 's/ $//'; }
z1a() {
    "$PY" -c '
import json, sys
try:
    a = json.loads(sys.argv[1])
    out = []
    for z in a["zones"]:
        out += [z["id"], z["occupied"], z["free"]]
    print(" ".join(str(x) for x in out + ["lot", a["occupied"], a["free"]]))
except Exception as e:
    print("<bad availability: %r>" % e)' "$(avail Z1)"
}
check_eventually "before the reload: L1 5 (5 free), L2 1 (9), L3 1, disabled 2, lot 7 (23 free)" z1 "5 5 1 9 1 2 7 23"
check_eventually "before the reload: availability" z1a "L1 5 5 L2 1 9 L3 1 9 lot 7 23"

write_config "$Z1_HEAD
      - {id: L2, capacity: 10, bays: [\"L2-*\", \"L1-05\"]}
      - {id: L3, capacity: 10, bays: [\"L3-*\"]}
$Z1_CATS
$OTHERS"
kill -HUP "$PARKD_PID"
check_eventually "reload moving L1-05 to L2 (exact id beats L1-*): L1 4, L2 2, the lot still 7" z1 "4 6 2 8 1 2 7 23"
check_eventually "reload moving L1-05: the availability too" z1a "L1 4 6 L2 2 8 L3 1 9 lot 7 23"
check "reload moving L1-05: the bay's state is kept" 1 "$(bayget Z1 L1-05)"
bay Z1 L1-05 0
check_eventually "after the reload L1-05 counts in L2 (L1 4, L2 1, lot 6)" z1 "4 6 1 9 1 2 6 24"
bay Z1 L1-05 1
check_eventually "L1-05 occupied again: L2 2, lot 7" z1 "4 6 2 8 1 2 7 23"

# --- an invalid reload keeps the zones ------------------------------------------------------------
cp "$CFG" "$T/valid.yaml"
printf '      vip: {capacity: 1, bays: ["L1-09"]}\n' >"$T/vip-line"
sed "/^      disabled:/r $T/vip-line" "$T/valid.yaml" >"$CFG"
kill -HUP "$PARKD_PID"
check_eventually "an invalid reload (category vip) is logged with FILE:LINE:COL" \
    "grep -Ec '$CFG:[0-9]+:[0-9]+:.*vip' '$PARKD_LOG'" 1
sleep 0.5
check "an invalid reload (category vip) keeps the old zones" "4 6 2 8 1 2 7 23" "$(z1)"
check_ok "parkd survives the invalid reload" parkd_alive

# --- reload: zone L3 removed -----------------------------------------------------------------------
write_config "$Z1_HEAD
      - {id: L2, capacity: 10, bays: [\"L2-*\", \"L1-05\"]}
$Z1_CATS
$OTHERS"
kill -HUP "$PARKD_PID"
check_eventually "reload removing zone L3: gone from the availability" z1a "L1 4 6 L2 2 8 lot 7 23"
check_eventually "reload removing zone L3: zone:L3:free gone from the lot hash" "rget hexists ${RP}lot:Z1 zone:L3:free" 0
check "reload removing zone L3: zone:L3:capacity, occupied and status gone as well" "0 0 0" \
    "$(rget hexists "${RP}lot:Z1" zone:L3:capacity) $(rget hexists "${RP}lot:Z1" zone:L3:occupied) $(rget hexists "${RP}lot:Z1" zone:L3:status)"
check "reload removing zone L3: L1, L2 and the lot unchanged" "4 6 2 8 7 23" \
    "$(rget hmget "${RP}lot:Z1" zone:L1:occupied zone:L1:free zone:L2:occupied zone:L2:free occupied free | tr '\n' ' ' | sed 's/ $//')"
bay Z1 L3-02 1
check_eventually "a bay in no zone counts in the lot only (lot 8, L1 4, L2 2)" z1a "L1 4 6 L2 2 8 lot 8 22"


# --- reload: a zone capacity below its occupied bays clamps at once -------------------------------
write_config "  - id: Z1
    capacity: 30
    source: bays
    zones:
      - {id: L1, name: Level 1, capacity: 3, bays: [\"L1-*\"]}
      - {id: L2, capacity: 10, bays: [\"L2-*\", \"L1-05\"]}
$Z1_CATS
$OTHERS"
kill -HUP "$PARKD_PID"
check_eventually "reload lowering L1 to capacity 3 with 4 occupied: occupied 3, free 0, full" \
    "echo \$(hget Z1 zone:L1:capacity) \$(hget Z1 zone:L1:occupied) \$(hget Z1 zone:L1:free) \$(hget Z1 zone:L1:status)" "3 3 0 full"
check_eventually "reload lowering L1: the availability too, the lot unchanged" z1a "L1 3 0 L2 2 8 lot 8 22"

check_ok "parkd still running" parkd_alive
parkd_stop
check "parkd exits 0 on SIGTERM" 0 "$PARKD_RC"
finish
