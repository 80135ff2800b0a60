#!/bin/sh
# t28-zones: zones and categories (SPEC §10) under a realistic stream. A bays lot Z1 with three
# zones of ten bays (glob patterns and exact ids) and two categories takes ~600 random bay events
# with explicit ts — duplicates (the same message twice), reordered ones (older ts, ignored per
# SPEC §3) and equal-ts ones (the later arrival wins) — published fast, with a kill -9 of parkd in
# the middle of the stream and a restart. The final per-zone and per-category counts in the
# retained availability and the lot hash equal a reference model (zones-model.py) exactly, and
# EVERY availability message of Z1 seen during the run is consistent: zone sums equal the lot's,
# each zone and category within its capacity. A gates lot with two zones counts per gate, a count
# recalibrates the lot only, and a zone clamps at its capacity. A bays lot with bay_stale_after
# shows per-zone unknown bays on the event clock.
. "$(dirname "$0")/lib.sh"

MODEL="$PARKD_TOP/tests/integration/zones-model.py"
SEED=${T28_SEED:-2826}
NEV=600
B0=$(($(now) - 4 * 3600))
echo "t28: seed $SEED, $NEV events from ts $B0 (T28_SEED=$SEED reproduces the stream)"
echo "t28: stream $("$PY" "$MODEL" gen "$SEED" "$B0" "$NEV" "$T/events")"

write_config "  - id: Z1
    capacity: 30
    source: bays
    zones:
      - {id: L1, name: Level 1, capacity: 10, bays: [\"L1-*\"]}
      - {id: L2, capacity: 10, bays: [\"L2-*\"]}
      - {id: L3, capacity: 10, bays: [\"L3-01\", \"L3-02\", \"L3-0[3-9]\", \"L3-10\"]}
    categories:
      disabled: {capacity: 2, bays: [\"L1-01\", \"L2-01\"]}
      ev_charging: {capacity: 3, bays: [\"L3-0[1-3]\"]}
  - {id: G1, capacity: 20, source: gates, zones: [{id: N, capacity: 12, gates: [gn]}, {id: S, capacity: 8, gates: [gs]}]}
  - id: Z2
    capacity: 10
    source: bays
    bay_stale_after: 1h
    zones:
      - {id: A, capacity: 5, bays: [\"a*\"]}
      - {id: B, capacity: 5, bays: [\"b*\"]}
    categories:
      disabled: {capacity: 2, bays: [a1, b1]}
  - {id: P1, capacity: 10, source: bays}"

sub_start z1 "$OUT/Z1/availability"
parkd_start

# --- before any data: zones without counts ---------------------------------------------------
check_eventually "before any data: zone L1 status unknown" "avail_field Z1 zones.0.status" unknown
check "before any data: zone L1 occupied null" null "$(avail_field Z1 zones.0.occupied)"
check "before any data: zone L3 free null" null "$(avail_field Z1 zones.2.free)"
check "zone names: given, else the id" "Level 1 L2 L3" \
    "$(avail_field Z1 zones.0.name) $(avail_field Z1 zones.1.name) $(avail_field Z1 zones.2.name)"

# --- the stream, with a kill -9 in the middle ---------------------------------------------------
: >"$T/mark"
"$PY" "$MODEL" publish "$T/events" 127.0.0.1 "$MQTT_PORT" "$IN" 0 400 "$T/mark" 200 >"$T/pub1.out" 2>&1 &
PUB=$!
if wait_for "grep -c mark '$T/mark'" 1 20; then
    if kill -0 "$PUB" 2>/dev/null; then
        pass "kill -9 of parkd while the stream flows (after event 200 of 400)"
    else
        fail "kill -9 of parkd while the stream flows" "publisher running" "it had finished"
    fi
else
    fail "publisher reached event 200" "a mark" "none: $(cat "$T/pub1.out")"
fi
kill -KILL "$PARKD_PID" 2>/dev/null
wait "$PARKD_PID" 2>/dev/null
PARKD_PID=
wait "$PUB"
check "events [0, 400) published and acknowledged" 0 "$?"
# prove that the restarted daemon recomputes the zone fields rather than keeping stale ones
rget hset "${RP}lot:Z1" zone:L1:free 99 cat:disabled:free 99 >/dev/null
sleep 0.5
parkd_start
"$PY" "$MODEL" publish "$T/events" 127.0.0.1 "$MQTT_PORT" "$IN" 400 "$NEV" "$T/mark" 0 >"$T/pub2.out" 2>&1
check "events [400, $NEV) published and acknowledged after the restart" 0 "$?"

"$PY" "$MODEL" model "$T/events" >"$T/expect"

# "zone occupied/free/capacity/status ... category occupied/free/capacity ... lot occupied/free"
FIELDS="zone:L1:occupied zone:L1:free zone:L1:capacity zone:L1:status zone:L2:occupied zone:L2:free
zone:L2:capacity zone:L2:status zone:L3:occupied zone:L3:free zone:L3:capacity zone:L3:status
cat:disabled:occupied cat:disabled:free cat:disabled:capacity cat:ev_charging:occupied
cat:ev_charging:free cat:ev_charging:capacity occupied free"
expect_str() {
    "$PY" -c '
import json, sys
m = json.load(open(sys.argv[1]))
out = []
for z in ("L1", "L2", "L3"):
    v = m["zones"][z]
    out += [v["occupied"], v["free"], v["capacity"], v["status"]]
for c in ("disabled", "ev_charging"):
    v = m["cats"][c]
    out += [v["occupied"], v["free"], v["capacity"]]
out += [m["occupied"], m["free"]]
print(" ".join(str(x) for x in out))' "$T/expect"
}
# shellcheck disable=SC2086
hash_str() { rget hmget "${RP}lot:Z1" $FIELDS | tr '\n' ' ' | sed 's/ $//'; }
avail_str() {
    "$PY" -c '
import json, sys
try:
    a = json.loads(sys.argv[1])
    out = []
    for z in a["zones"]:
        out += [z["occupied"], z["free"], z["capacity"], z["status"]]
    for c in ("disabled", "ev_charging"):
        v = a["categories"][c]
        out += [v["occupied"], v["free"], v["capacity"]]
    out += [a["occupied"], a["free"]]
    print(" ".join(str(x) for x in out))
except Exception as e:
    print("<bad availability: %r>" % e)' "$(avail Z1)"
}
EXP=$(expect_str)
echo "t28: expected (zones L1 L2 L3 occ/free/cap/status, categories, lot occ/free): $EXP"
check_eventually "lot hash: every zone and category count equals the model" hash_str "$EXP" 15
check_eventually "retained availability: every zone and category count equals the model" avail_str "$EXP" 5
check "lot Z1 occupied equals the model" "$(jget "$(cat "$T/expect")" occupied)" "$(hget Z1 occupied)"
bays_str() { rget hgetall "${RP}lot:Z1:bays" | paste - - | LC_ALL=C sort | tr '\t\n' '= ' | sed 's/ $//'; }
exp_bays=$("$PY" -c 'import json, sys
m = json.load(open(sys.argv[1]))
print(" ".join("%s=%d" % kv for kv in sorted(m["bays"].items())))' "$T/expect")
check "every bay's state equals the model (latest ts wins, equal ts: later arrival)" "$exp_bays" "$(bays_str)"
check "a lot without bay_stale_after has no unknown in its hash" 0 "$(rget hexists "${RP}lot:Z1" unknown)"
check "zones and categories are not in the availability as unknown" 0 "$(avail Z1 | grep -c '"unknown":')"

# --- history entries carry zone and category free ---------------------------------------------
hist_check() {
    rget xrange "${RP}lot:Z1:history" - + | "$PY" -c '
import re, sys
entries = []
for line in sys.stdin.read().split("\n"):
    if re.fullmatch(r"[0-9]+-[0-9]+", line):
        entries.append([])
    elif entries:
        entries[-1].append(line)
bad = []
for e in entries:
    d = dict(zip(e[0::2], e[1::2]))
    need = ["zone:L1:free", "zone:L2:free", "zone:L3:free", "cat:disabled:free", "cat:ev_charging:free"]
    if any(k not in d for k in need):
        bad.append("missing fields: %s" % sorted(d))
        continue
    if sum(int(d[k]) for k in need[:3]) != int(d["free"]):
        bad.append("zone free sum != free: %s" % d)
    if not (0 <= int(d["cat:disabled:free"]) <= 2 and 0 <= int(d["cat:ev_charging:free"]) <= 3):
        bad.append("category free out of range: %s" % d)
print("%d entries ok" % len(entries) if entries and not bad else "%d entries: %s" % (len(entries), bad[:3]))'
}
H=$(hist_check)
check_match "every Z1 history entry has zone:<id>:free and cat:<name>:free, zone free adding up to free" \
    "[1-9][0-9]* entries ok" "$H"

# --- the summary: categories, no zones ------------------------------------------------------------
sum_str() {
    "$PY" -c '
import json, sys
try:
    s = json.loads(sys.argv[1])
    e = [l for l in s["lots"] if l["lot"] == "Z1"][0]
    c = e["categories"]
    print("zones" in e, c["disabled"]["capacity"], c["disabled"]["free"],
          c["ev_charging"]["capacity"], c["ev_charging"]["free"])
except Exception as ex:
    print("<bad summary: %r>" % ex)' "$(retained "$OUT/summary")"
}
exp_sum=$("$PY" -c 'import json, sys
m = json.load(open(sys.argv[1]))["cats"]
print(False, m["disabled"]["capacity"], m["disabled"]["free"], m["ev_charging"]["capacity"], m["ev_charging"]["free"])' "$T/expect")
check_eventually "summary: Z1 carries categories (capacity, free) and no zones" sum_str "$exp_sum" 5

# --- gates lot: each gate moves its zone -------------------------------------------------------
TG=$((B0 + 1000))
gate() { pub "$IN/G1/gate/$1" "{\"event\": \"$2\", \"count\": $3, \"seq\": $4, \"ts\": $5}"; }
gate gn in 1 1 $TG
gate gs in 1 1 $((TG + 1))
gate gn in 1 2 $((TG + 2))
gate gn in 3 3 $((TG + 3))
gate gs in 1 2 $((TG + 4))
gate gn in 1 2 $((TG + 5))      # duplicate seq: ignored
gate gs in 1 2 $((TG + 5))      # duplicate seq: ignored
gate gn out 1 4 $((TG + 6))
gate gs out 1 3 $((TG + 7))
gate gs in 1 4 $((TG + 8))
gate gs out 1 1 $((TG + 9))     # an old seq: ignored
gate gs out 1 3 $((TG + 9))     # the same message twice: ignored
settle
g_hash() { rget hmget "${RP}lot:G1" zone:N:occupied zone:N:free zone:S:occupied zone:S:free occupied free | tr '\n' ' ' | sed 's/ $//'; }
g_avail() { _a=$(avail G1); echo "$(jget "$_a" zones.0.id) $(jget "$_a" zones.0.occupied) $(jget "$_a" zones.0.free) $(jget "$_a" zones.1.id) $(jget "$_a" zones.1.occupied) $(jget "$_a" zones.1.free) $(jget "$_a" occupied)"; }
check_eventually "gates: N 4 (8 free), S 2 (6 free), lot 6 = N + S (14 free) in the hash" g_hash "4 8 2 6 6 14"
check_eventually "gates: the retained availability agrees" g_avail "N 4 8 S 2 6 6"
check "gates: zone capacities in the hash" "12 8" "$(hget G1 zone:N:capacity) $(hget G1 zone:S:capacity)"
pub "$IN/G1/count" "{\"occupied\": 9, \"ts\": $((TG + 20))}"
check_eventually "gates: a count recalibrates the lot only (lot 9, zones still 4 and 2)" g_hash "4 8 2 6 9 11"
gate gn in 10 5 $((TG + 21))
check_eventually "gates: zone N clamps at its capacity 12 (lot 19)" g_hash "12 0 2 6 19 1"
check "gates: zone N full" full "$(hget G1 zone:N:status)"
gate gs out 5 5 $((TG + 22))
check_eventually "gates: zone S clamps at 0 (lot 14)" g_hash "12 0 0 8 14 6"
check_eventually "gates: the retained availability agrees after the clamps" g_avail "N 12 0 S 0 8 14"

# --- unknown bays inside zones, on the event clock ---------------------------------------------
TU=$((B0 + 2000))
bay() { pub "$IN/$1/bay/$2" "{\"occupied\": $3, \"ts\": $4}"; }
u_hash() { rget hmget "${RP}lot:Z2" zone:A:occupied zone:A:free zone:B:occupied zone:B:free cat:disabled:occupied cat:disabled:free occupied unknown free | tr '\n' ' ' | sed 's/ $//'; }
u_avail() {
    "$PY" -c '
import json, sys
try:
    a = json.loads(sys.argv[1])
    out = []
    for z in a["zones"]:
        out += [z["id"], z["occupied"], z["unknown"], z["free"]]
    c = a["categories"]["disabled"]
    out += ["disabled", c["occupied"], c["unknown"], c["free"], "lot", a["occupied"], a["unknown"], a["free"]]
    print(" ".join(str(x) for x in out))
except Exception as e:
    print("<bad availability: %r>" % e)' "$(avail Z2)"
}
bay Z2 a1 true $TU
bay Z2 a2 false $TU
bay Z2 b1 true $TU
bay Z2 b2 true $((TU + 1800))
check_eventually "unknown: all fresh (hash: A 1/4, B 2/3, disabled 2/0, lot 3 occupied 0 unknown 7 free)" \
    u_hash "1 4 2 3 2 0 3 0 7"
check_eventually "unknown: all fresh (availability)" u_avail "A 1 0 4 B 2 0 3 disabled 2 0 0 lot 3 0 7"
# an event on another lot moves the event clock past a1's, a2's and b1's ts + 1h
bay P1 p1 true $((TU + 3601))
check_eventually "unknown: a1 a2 b1 unknown (hash: A 0 occupied 3 free, B 1/3, disabled 0/0, lot 1 3 6)" \
    u_hash "0 3 1 3 0 0 1 3 6"
check_eventually "unknown: zone and category unknown in the availability" u_avail \
    "A 0 2 3 B 1 1 3 disabled 0 2 0 lot 1 3 6"
bay Z2 a1 true $((TU + 3700))
check_eventually "unknown: a1 back (availability A 1 1 3, lot 2 2 6)" u_avail \
    "A 1 1 3 B 1 1 3 disabled 1 1 0 lot 2 2 6"
bay Z2 a2 false $((TU + 3700))
check_eventually "unknown: a2 back free (hash A 1/4, lot 2 1 7)" u_hash "1 4 1 3 1 0 2 1 7"
check_eventually "unknown: a2 back free (availability)" u_avail "A 1 0 4 B 1 1 3 disabled 1 1 0 lot 2 1 7"

# --- kill -9 and restart: the zone counts of every lot survive ---------------------------------
settle
G_BEFORE=$(g_hash)
U_BEFORE=$(u_avail)
kill -KILL "$PARKD_PID" 2>/dev/null
wait "$PARKD_PID" 2>/dev/null
PARKD_PID=
rget hset "${RP}lot:Z2" zone:A:free 99 >/dev/null     # bays zones are recomputed from the bays
parkd_start
check_eventually "after a kill -9 and restart: gates zones restored ($G_BEFORE)" g_hash "$G_BEFORE"
check_eventually "after a kill -9 and restart: gates zones in the availability" g_avail "N 12 0 S 0 8 14"
check_eventually "after a kill -9 and restart: Z2 zone unknown and free ($U_BEFORE)" u_avail "$U_BEFORE"
check_eventually "after a kill -9 and restart: Z2 hash recomputed" u_hash "1 4 1 3 1 0 2 1 7"
check_eventually "after a kill -9 and restart: Z1 zones and categories still equal the model" hash_str "$EXP"
gate gs in 2 6 $((TU + 3800))
check_eventually "after the restart a gate event moves its zone (S 2, lot 16)" g_hash "12 0 2 6 16 4"

# --- zone free never below 0: occupied + unknown above the zone's capacity ---------------------
for b in a3 a4 a5 a6; do bay Z2 "$b" true $((TU + 7000)); done
bay P1 p1 false $((TU + 7301))     # a1 and a2 (TU + 3700) go unknown, a3..a6 stay known
za() { _a=$(avail Z2); echo "$(jget "$_a" zones.0.occupied) $(jget "$_a" zones.0.free) $(hget Z2 zone:A:occupied) $(hget Z2 zone:A:free) $(jget "$_a" occupied) $(jget "$_a" unknown) $(jget "$_a" free)"; }
check_eventually "zone A (capacity 5): 4 occupied + 2 unknown gives free 0, not -1 (lot 4 4 2)" za "4 0 4 0 4 4 2"
zu=$(avail_field Z2 zones.0.unknown)
check "zone A unknown within [0, capacity]" yes "$([ "${zu:-x}" -ge 0 ] 2>/dev/null && [ "$zu" -le 5 ] && echo yes)"

# --- every availability message of Z1 during the whole run ------------------------------------
sleep 0.5
sub_stop z1
R=$("$PY" "$MODEL" check "$(sub_file z1)")
echo "t28: availability messages of Z1: $R"
check_match "every Z1 availability message: zone sums = lot, counts within capacities" "checked [0-9]+" "$R"
n=$(echo "$R" | sed -n 's/^checked \([0-9]*\)$/\1/p')
check "the subscriber saw the stream (>= 100 availability messages of Z1)" yes "$([ "${n:-0}" -ge 100 ] && echo yes)"

check_ok "parkd still running" parkd_alive
parkd_stop
check "parkd exits 0 on SIGTERM" 0 "$PARKD_RC"
finish
