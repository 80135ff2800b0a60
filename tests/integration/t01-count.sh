#!/bin/sh
# t01-count: count lots (SPEC §3 count rules, §4 availability/summary/forecast, §5 Redis keys).
. "$(dirname "$0")/lib.sh"

write_config "  - {id: C1, name: Broad Street, capacity: 100, source: count, lat: 52.4781, lon: -1.9086}
  - {id: C2, name: Moor Street, capacity: 50, source: count}
  - {id: C3, capacity: 40, source: count, stale_after: 60s}" \
    "forecast.horizons=[10m, 20m]" "history.interval=1m"
parkd_start

# --- before any data -------------------------------------------------------------------------
check "$RP""lots holds the configured lot ids" "C1 C2 C3" "$(rget smembers "${RP}lots" | sort | tr '\n' ' ' | sed 's/ $//')"
a=$(avail C1)
check_json_field "availability before data: status unknown" "$a" status unknown
check_json_field "availability before data: lot" "$a" lot C1
check_json_field "availability before data: capacity" "$a" capacity 100
for f in occupied free free_smoothed occupancy trend_per_hour ts; do
    check_json_field "availability before data: $f is null" "$a" "$f" null
done
check_json_field "every lot's availability is published at startup (C2)" "$(avail C2)" status unknown
check_json_field "every lot's availability is published at startup (C3)" "$(avail C3)" status unknown
check_eventually "lot hash before data: status unknown" "hget C1 status" unknown
check "lot hash before data: occupied empty" "" "$(hget C1 occupied)"

snap
B=$(($(now) - 600))
T_IN="$IN/C1/count"

# --- absolute counts, all accepted forms -------------------------------------------------------
pub "$T_IN" "{\"occupied\": 10, \"ts\": $B}"
check_eventually "JSON occupied count applied (occupied)" "hget C1 occupied" 10
check_eventually "JSON occupied count applied (free)" "hget C1 free" 90
check "lot hash ts is the event time (epoch seconds ts)" "$(iso $B)" "$(hget C1 ts)"
check_eventually "status open after first count" "hget C1 status" open

pub "$T_IN" "{\"free\": 70, \"ts\": $((B + 10))}"
check_eventually "JSON free count: occupied = capacity - free" "hget C1 occupied" 30
check "JSON free count: free" 70 "$(hget C1 free)"

pub "$T_IN" "{\"occupied\": 5, \"ts\": $((B + 5))}"
settle
check "older count is ignored (occupied unchanged)" 30 "$(hget C1 occupied)"
check "older count is ignored (ts unchanged)" "$(iso $((B + 10)))" "$(hget C1 ts)"

pub "$T_IN" "{\"occupied\": 40, \"ts\": \"$(iso $((B + 20)))\"}"
check_eventually "ISO-8601 Z ts accepted" "hget C1 occupied" 40
check "ISO-8601 Z ts stored as event time" "$(iso $((B + 20)))" "$(hget C1 ts)"

pub "$T_IN" "{\"occupied\": 45, \"ts\": \"$(iso_offset $((B + 30)) 1)\"}"
check_eventually "RFC-3339 ts with +01:00 offset accepted" "hget C1 occupied" 45
check "RFC-3339 offset converted to UTC" "$(iso $((B + 30)))" "$(hget C1 ts)"

pub "$T_IN" "{\"occupied\": 46, \"ts\": $((B + 40)).25}"
check_eventually "fractional epoch ts accepted" "hget C1 occupied" 46
check "fractional ts stored in whole seconds" "$(iso $((B + 40)))" "$(hget C1 ts)"

pub "$T_IN" "{\"occupied\": 50, \"capacity\": 120, \"ts\": $((B + 50))}"
check_eventually "count with mismatching capacity still applied" "hget C1 occupied" 50
check "mismatching capacity: configured capacity stands (free)" 50 "$(hget C1 free)"
check "mismatching capacity: configured capacity stands (capacity)" 100 "$(hget C1 capacity)"

pub "$T_IN" "{\"occupied\": 130, \"ts\": $((B + 60))}"
check_eventually "count above capacity clamps occupied to capacity" "hget C1 occupied" 100
check "count above capacity: free 0" 0 "$(hget C1 free)"
check_eventually "count above capacity: status full" "hget C1 status" full

pub "$T_IN" "{\"free\": 150, \"ts\": $((B + 70))}"
check_eventually "free above capacity clamps occupied to 0" "hget C1 occupied" 0
check "free above capacity: free = capacity" 100 "$(hget C1 free)"

t_bare=$(now)
pub "$T_IN" "60"
check_eventually "bare integer = occupied" "hget C1 occupied" 60
ts=$(hget C1 ts)
check_match "bare count: ts is ISO-8601 UTC" '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z' "$ts"
check_near "bare count without ts uses the receive time" "$t_bare" "$(date -u -d "$ts" +%s 2>/dev/null)" 5

pub "$T_IN" "{\"occupied\": 70, \"ts\": $((B + 80))}"
settle
check "count older than a receive-time count is ignored" 60 "$(hget C1 occupied)"

check "counter messages_in (+11)" 11 "$(delta messages_in)"
check "counter applied (+9)" 9 "$(delta applied)"
check "counter ignored_old (+2)" 2 "$(delta ignored_old)"
check "counter anomaly_clamped (+2)" 2 "$(delta anomaly_clamped)"
check "counter anomaly_capacity (+1)" 1 "$(delta anomaly_capacity)"
check "an applied capacity mismatch is logged as an anomaly" 1 \
    "$(grep -c 'anomaly (capacity_mismatch) on topic' "$PARKD_LOG")"
check "and not as rejected input" 0 "$(grep -c 'rejected input (capacity' "$PARKD_LOG")"

# --- Redis lot hash (SPEC §5) -----------------------------------------------------------------
keys=$(rget hkeys "${RP}lot:C1" | sort | tr '\n' ' ')
missing=
for f in name capacity occupied free free_smoothed occupancy trend_per_hour status stale ts source lat lon updated_ms; do
    case " $keys" in *" $f "*) ;; *) missing="$missing $f" ;; esac
done
check "lot hash has every SPEC §5 field" "" "$missing"
check "lot hash name" "Broad Street" "$(hget C1 name)"
check "lot hash capacity" 100 "$(hget C1 capacity)"
check "lot hash free" 40 "$(hget C1 free)"
check "lot hash occupancy (3 decimals)" 0.600 "$(hget C1 occupancy)"
check "lot hash status" open "$(hget C1 status)"
check "lot hash stale" 0 "$(hget C1 stale)"
check "lot hash source" count "$(hget C1 source)"
check_near "lot hash lat" 52.4781 "$(hget C1 lat)" 0.00001
check_near "lot hash lon" -1.9086 "$(hget C1 lon)" 0.00001
fs=$(hget C1 free_smoothed)
check_match "lot hash free_smoothed has 1 decimal" '-?[0-9]+\.[0-9]' "$fs"
if near "$fs" 50 50; then pass "free_smoothed within [0, capacity]"; else fail "free_smoothed within [0, capacity]" "0..100" "$fs"; fi
check_match "lot hash trend_per_hour has 1 decimal" '-?[0-9]+\.[0-9]' "$(hget C1 trend_per_hour)"
check_near "lot hash updated_ms is the wall time of the write" "$(now_ms)" "$(hget C1 updated_ms)" 15000

# --- availability JSON (SPEC §4) --------------------------------------------------------------
check_eventually "availability republished with the new count" "avail_field C1 occupied" 60
a=$(avail C1)
missing=
for f in lot name ts capacity occupied free free_smoothed occupancy trend_per_hour status stale; do
    [ "$(jtype "$a" "$f")" = missing ] && missing="$missing $f"
done
check "availability has every SPEC §4 field" "" "$missing"
check_json_field "availability lot" "$a" lot C1
check_json_field "availability name" "$a" name "Broad Street"
check_json_field "availability ts equals the lot hash ts" "$a" ts "$(hget C1 ts)"
check_json_field "availability capacity" "$a" capacity 100
check_json_field "availability occupied" "$a" occupied 60
check_json_field "availability free" "$a" free 40
check_json_field "availability status" "$a" status open
check_json_field "availability stale is boolean false" "$a" stale false
check "availability occupied is an integer" int "$(jtype "$a" occupied)"
check "availability free is an integer" int "$(jtype "$a" free)"
check_near "availability occupancy" 0.6 "$(jget "$a" occupancy)" 0.0005
check_near "availability free_smoothed equals the hash's" "$(hget C1 free_smoothed)" "$(jget "$a" free_smoothed)" 0.051
check_near "availability trend_per_hour equals the hash's" "$(hget C1 trend_per_hour)" "$(jget "$a" trend_per_hour)" 0.051

# --- other lots: no position, default name, staleness -----------------------------------------
pub "$IN/C2/count" "5"
check_eventually "second lot applied" "hget C2 occupied" 5
check "lot hash lat empty when not configured" "" "$(hget C2 lat)"
check "lot hash lon empty when not configured" "" "$(hget C2 lon)"
check "lot hash name is the configured name" "Moor Street" "$(hget C2 name)"

n=$(now)
pub "$IN/C3/count" "{\"occupied\": 1, \"ts\": $((n - 120))}"
check_eventually "lot with input older than its stale_after (60s) is stale in Redis" "hget C3 stale" 1
check_eventually "stale lot: availability stale true" "avail_field C3 stale" true
check "lot without a name: name is the id" C3 "$(hget C3 name)"
check "other lot with fresh input is not stale" 0 "$(hget C1 stale)"
pub "$IN/C3/count" "{\"occupied\": 2, \"ts\": $(now)}"
check_eventually "fresh input clears stale (Redis)" "hget C3 stale" 0
check_eventually "fresh input clears stale (availability)" "avail_field C3 stale" false

# --- parkd:updates pub/sub channel --------------------------------------------------------------
rget subscribe "${RP}updates" >"$T/updates.out" 2>&1 &
upid=$!
SUB_PIDS="$SUB_PIDS $upid"
wait_for "grep -c . '$T/updates.out'" 3 3 >/dev/null
pub "$IN/C2/count" "7"
check_eventually "availability JSON on $RP""updates on publish" \
    "grep '\"C2\"' '$T/updates.out' | grep -E '\"occupied\": *7[,}]' >/dev/null && echo yes" yes
kill $upid 2>/dev/null

# --- summary (SPEC §4): 40 + 43 + 38 free of 190 -------------------------------------------------
check_eventually "summary free is the total of the lots' free" "jget \"\$(retained $OUT/summary)\" free" 121
s=$(retained "$OUT/summary")
check_json_field "summary capacity total" "$s" capacity 190
check "summary has one entry per lot" 3 "$(jget "$s" lots | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null)"
c1=$("$PY" -c '
import json, sys
d = json.loads(sys.argv[1])
print(json.dumps([l for l in d["lots"] if l.get("lot") == "C1"][0]))' "$s" 2>/dev/null)
check "summary entry has lot name free capacity status stale lat lon" "capacity free lat lon lot name stale status" "$(jkeys "$c1")"
check_json_field "summary entry name" "$c1" name "Broad Street"
check_json_field "summary entry free" "$c1" free 40
check_json_field "summary entry capacity" "$c1" capacity 100
check_json_field "summary entry status" "$c1" status open
check_json_field "summary entry stale" "$c1" stale false
check_near "summary entry lat" 52.4781 "$(jget "$c1" lat)" 0.00001
check_near "summary entry lon" -1.9086 "$(jget "$c1" lon)" 0.00001
check "summary ts present" yes "$([ "$(jtype "$s" ts)" != missing ] && echo yes)"

# --- forecast (SPEC §4, §5) ---------------------------------------------------------------------
f=$(retained "$OUT/C1/forecast")
check_json_field "forecast lot" "$f" lot C1
check "forecast has one horizon per configured horizon" "10 20" \
    "$("$PY" -c 'import json,sys; print(" ".join(str(h["minutes"]) for h in json.loads(sys.argv[1])["horizons"]))' "$f" 2>/dev/null)"
check "forecast free/low/high ordered and within [0, capacity]" ok "$("$PY" -c '
import json, sys
d = json.loads(sys.argv[1])
bad = [h for h in d["horizons"] if not (0 <= h["low"] <= h["free"] <= h["high"] <= 100)]
print("ok" if not bad and "mae" in d["horizons"][0] and "full_at" in d else bad or "missing mae/full_at")' "$f" 2>&1)"
fk=$(rget hkeys "${RP}lot:C1:forecast" | sort | tr '\n' ' ')
check "forecast hash has ts and per-horizon free/low/high" "10 10:high 10:low 20 20:high 20:low ts" \
    "$(printf '%s\n' $fk | grep -v ':mae$' | sort | tr '\n' ' ' | sed 's/ $//')"

# --- history stream (SPEC §5): entry ids are event times in ms ----------------------------------
ids=$(rget xrange "${RP}lot:C1:history" - + | grep -E '^[0-9]+-[0-9]+$' | cut -d- -f1)
check "history stream has entries" yes "$([ -n "$ids" ] && echo yes)"
valid="$((B * 1000)) $(((B + 10) * 1000)) $(((B + 20) * 1000)) $(((B + 30) * 1000)) $(((B + 40) * 1000 + 250)) $(((B + 50) * 1000)) $(((B + 60) * 1000)) $(((B + 70) * 1000))"
bad=
for id in $ids; do
    case " $valid " in *" $id "*) continue ;; esac
    if [ "$id" -ge $(((t_bare - 2) * 1000)) ] && [ "$id" -le $(($(now) * 1000 + 1000)) ]; then continue; fi
    bad="$bad $id"
done
check "history entry ids are applied event times (ms)" "" "$bad"
in_first_min=0
for id in $ids; do
    [ "$id" -ge $((B * 1000)) ] && [ "$id" -lt $(((B + 60) * 1000)) ] && in_first_min=$((in_first_min + 1))
done
if [ "$in_first_min" -le 2 ]; then pass "history: at most one entry per interval (6 counts in one minute)"; else
    fail "history: at most one entry per interval (6 counts in one minute)" "<= 2 entries" "$in_first_min"; fi
hf=$(rget xrange "${RP}lot:C1:history" - + | sed -n '2,$p' | grep -E '^(occupied|free|free_smoothed)$' | sort -u | tr '\n' ' ')
check "history entries have occupied free free_smoothed" "free free_smoothed occupied " "$hf"

check_ok "parkd still running" parkd_alive
finish
