#!/bin/sh
# t64-metrics: the Prometheus endpoint (metrics.listen). curl gets parseable text exposition
# format 0.0.4 whose counters and gauges follow the input; 404 elsewhere, 405 for other methods;
# bound to the configured address only; Redis up/down and reconnects show.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null 2>&1 || { fail "curl is installed" curl nothing; finish; }

# prom.py check|get KEY... — reads the exposition text on stdin. check: prints "ok" or the first
# problem (line syntax, TYPE once per family and before its samples, histogram buckets
# cumulative with +Inf = _count). get: prints each KEY's value (name{labels sorted by name}), or
# <missing>.
cat >"$T/prom.py" <<'EOF'
import re, sys
text = sys.stdin.read()
sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
label_re = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"\s*(?:,|$)')
num_re = re.compile(r'^(NaN|[+-]Inf|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$')
samples, types, problems, order = {}, {}, [], []
def fail(msg):
    problems.append(msg)
if not text.endswith("\n"):
    fail("text does not end with a newline")
for line in text.splitlines():
    if line.startswith("# HELP "):
        continue
    if line.startswith("# TYPE "):
        parts = line.split(" ")
        if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
            fail("bad TYPE line: " + line)
        elif parts[2] in types:
            fail("second TYPE for " + parts[2])
        else:
            types[parts[2]] = parts[3]
        continue
    if line.startswith("#") or not line.strip():
        continue
    m = sample_re.match(line)
    if not m or not num_re.match(m.group(3)):
        fail("bad sample line: " + line); continue
    name, labels = m.group(1), {}
    body = m.group(2) or ""
    pos = 0
    while pos < len(body):
        lm = label_re.match(body, pos)
        if not lm:
            fail("bad labels: " + line); break
        labels[lm.group(1)] = lm.group(2)
        pos = lm.end()
    family = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            family = name[: -len(suffix)]
    if family not in types:
        fail("sample before (or without) its TYPE: " + line)
    key = name + ("{" + ",".join('%s="%s"' % (k, labels[k]) for k in sorted(labels)) + "}" if labels else "")
    if key in samples:
        fail("duplicate sample: " + key)
    samples[key] = float(m.group(3))
    order.append((family, name, labels, float(m.group(3))))
for fam, t in types.items():
    if t != "histogram":
        continue
    buckets = [(l["le"], v) for f, n, l, v in order if n == fam + "_bucket"]
    les = [float(le) for le, v in buckets]
    if les != sorted(les) or not buckets or buckets[-1][0] != "+Inf":
        fail(fam + ": buckets not ascending or no +Inf")
    if any(b[1] > c[1] for b, c in zip(buckets, buckets[1:])):
        fail(fam + ": buckets not cumulative")
    if buckets and samples.get(fam + "_count") != buckets[-1][1]:
        fail(fam + ": +Inf bucket differs from _count")
if sys.argv[1] == "check":
    print(problems[0] if problems else "ok")
else:
    for k in sys.argv[2:]:
        v = samples.get(k)
        print("<missing>" if v is None else ("%d" % v if v == int(v) else repr(v)))
EOF

MPORT=$(free_port)
URL=http://127.0.0.1:$MPORT/metrics
scrape() { curl -s --max-time 3 "$URL"; }
# metric KEY — its current value, e.g. metric 'parkd_up{service="redis"}'
metric() { scrape | "$PY" "$T/prom.py" get "$1"; }
# minus A B — A - B for integers, else "<A - B>" (so a missing value fails a check, not the script)
minus() {
    case "$1$2" in *[!0-9-]*|'') echo "<$1 - $2>" ;; *) echo $(($1 - $2)) ;; esac
}

write_config "  - {id: A, name: Alpha \"Quoted\", capacity: 100, source: count}
  - {id: B, capacity: 50, source: bays}"
printf 'metrics:\n  listen: "127.0.0.1:%s"\n' "$MPORT" >>"$CFG"
parkd_start
check "startup logs the endpoint" 1 "$(grep -c "metrics: serving http://127.0.0.1:$MPORT/metrics" "$PARKD_LOG")"

# --- HTTP ---------------------------------------------------------------------------------------
code=$(curl -s --max-time 3 -o "$T/m1" -D "$T/h1" -w '%{http_code}' "$URL")
check "GET /metrics: 200" 200 "$code"
check_match "GET /metrics: Content-Type text/plain; version=0.0.4" \
    'text/plain; version=0\.0\.4(; charset=utf-8)?' "$(sed -n 's/^[Cc]ontent-[Tt]ype: *//p' "$T/h1" | tr -d '\r')"
check "GET /metrics: parseable exposition format" ok "$("$PY" "$T/prom.py" check <"$T/m1")"
check "GET /: 404" 404 "$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/")"
check "GET /metricsx: 404" 404 "$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' "${URL}x")"
check "POST /metrics: 405" 405 "$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' -X POST -d x "$URL")"
check "HEAD /metrics: 200" 200 "$(curl -s --max-time 3 -o /dev/null -w '%{http_code}' -I "$URL")"
if curl -s --max-time 2 -o /dev/null "http://127.0.0.2:$MPORT/metrics"; then
    fail "bound to 127.0.0.1 only (127.0.0.2 refused)" "connection refused" "an answer"
else
    pass "bound to 127.0.0.1 only (127.0.0.2 refused)"
fi

# --- values at rest -------------------------------------------------------------------------------
check_eventually "parkd_up{service=redis} 1" "metric 'parkd_up{service=\"redis\"}'" 1 3
check_eventually "parkd_up{service=mqtt} 1" "metric 'parkd_up{service=\"mqtt\"}'" 1 3
check "parkd_lots 2" 2 "$(metric parkd_lots)"
check "parkd_lot_capacity of A" 100 "$(metric 'parkd_lot_capacity{lot="A"}')"
check "lot name label escaped" 1 "$(metric 'parkd_lot_info{lot="A",name="Alpha \"Quoted\"",source="count"}')"
check "status unknown before data" 1 "$(metric 'parkd_lot_status{lot="A",status="unknown"}')"
check "no free value before data" "<missing>" "$(metric 'parkd_lot_free{lot="A"}')"

# --- counters move with input ------------------------------------------------------------------
settle
scrape >"$T/before"
val0() { "$PY" "$T/prom.py" get "$1" <"$T/before"; }
rcv0=$(val0 parkd_messages_received_total)
app0=$(val0 'parkd_messages_total{result="applied"}')
old0=$(val0 'parkd_messages_total{result="ignored_old"}')
rej0=$(val0 'parkd_messages_total{result="rejected"}')
mal0=$(val0 'parkd_rejected_total{reason="malformed"}')
unk0=$(val0 'parkd_rejected_total{reason="unknown_lot"}')
kc0=$(val0 'parkd_input_messages_total{kind="count"}')
kb0=$(val0 'parkd_input_messages_total{kind="bay"}')
pubd0=$(val0 parkd_published_total)
bat0=$(val0 parkd_redis_batches_total)
lat0=$(val0 parkd_input_to_redis_seconds_count)
n=$(now)
pub "$IN/A/count" "{\"occupied\": 30, \"ts\": $((n - 20))}"
pub "$IN/A/count" "{\"occupied\": 40, \"ts\": $((n - 10))}"
pub "$IN/A/count" "{\"occupied\": 10, \"ts\": $((n - 30))}"    # older: ignored
pub "$IN/A/count" "many"                                       # malformed
pub "$IN/ZZ/count" 5                                           # unknown lot
pub "$IN/B/bay/b1" 1
settle
check_eventually "parkd_messages_received_total +6" "minus \"\$(metric parkd_messages_received_total)\" $rcv0" 6 3
scrape >"$T/after"
check "after input: still parseable" ok "$("$PY" "$T/prom.py" check <"$T/after")"
val1() { "$PY" "$T/prom.py" get "$1" <"$T/after"; }
check "parkd_messages_total{result=applied} +3" 3 "$(minus "$(val1 'parkd_messages_total{result="applied"}')" "$app0")"
check "parkd_messages_total{result=ignored_old} +1" 1 "$(minus "$(val1 'parkd_messages_total{result="ignored_old"}')" "$old0")"
check "parkd_messages_total{result=rejected} +2" 2 "$(minus "$(val1 'parkd_messages_total{result="rejected"}')" "$rej0")"
check "parkd_rejected_total{reason=malformed} +1" 1 "$(minus "$(val1 'parkd_rejected_total{reason="malformed"}')" "$mal0")"
check "parkd_rejected_total{reason=unknown_lot} +1" 1 "$(minus "$(val1 'parkd_rejected_total{reason="unknown_lot"}')" "$unk0")"
check "parkd_input_messages_total{kind=count} +5 (valid topics)" 5 "$(minus "$(val1 'parkd_input_messages_total{kind="count"}')" "$kc0")"
check "parkd_input_messages_total{kind=bay} +1" 1 "$(minus "$(val1 'parkd_input_messages_total{kind="bay"}')" "$kb0")"
check "parkd_start_time_seconds is the start time" yes \
    "$(near "$(val1 parkd_start_time_seconds)" "$(dget started_ms | awk '{printf "%.3f", $1 / 1000}')" 0.01 && echo yes || echo no)"
check "parkd_redis_batches_total moved" yes "$([ "$(val1 parkd_redis_batches_total)" -gt "$bat0" ] && echo yes)"
check "parkd_input_to_redis_seconds_count moved" yes "$([ "$(val1 parkd_input_to_redis_seconds_count)" -gt "$lat0" ] && echo yes)"
check_eventually "parkd_published_total moved" \
    "[ \$(metric parkd_published_total) -gt $pubd0 ] && echo yes" yes 3
check "per-lot free" 60 "$(val1 'parkd_lot_free{lot="A"}')"
check "per-lot occupied" 40 "$(val1 'parkd_lot_occupied{lot="A"}')"
check_near "per-lot occupancy" 0.4 "$(val1 'parkd_lot_occupancy{lot="A"}')" 0.0001
check "per-lot status open" 1 "$(val1 'parkd_lot_status{lot="A",status="open"}')"
check "per-lot status unknown cleared" 0 "$(val1 'parkd_lot_status{lot="A",status="unknown"}')"
check "bays lot free" 49 "$(val1 'parkd_lot_free{lot="B"}')"
check "Redis counters agree: applied" "$(dget applied)" "$(val1 'parkd_messages_total{result="applied"}')"

# --- Redis goes away and comes back: up 0, then 1 with a reconnect ---------------------------------
rc0=$(metric 'parkd_reconnects_total{service="redis"}')
kill "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
check_eventually "Redis down: parkd_up{service=redis} 0" "metric 'parkd_up{service=\"redis\"}'" 0 4
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T" --save '' --appendonly no \
    --logfile "$T/redis.log" --daemonize no >/dev/null 2>&1 &
REDIS_PID=$!
check_eventually "Redis back: parkd_up{service=redis} 1" "metric 'parkd_up{service=\"redis\"}'" 1 15
check "Redis back: parkd_reconnects_total{service=redis} moved" yes \
    "$([ "$(metric 'parkd_reconnects_total{service="redis"}')" -gt "$rc0" ] && echo yes)"
check_ok "parkd still running" parkd_alive
parkd_stop TERM
check "clean stop with the endpoint running: exit 0" 0 "$PARKD_RC"
if curl -s --max-time 2 -o /dev/null "$URL"; then
    fail "endpoint gone after stop" "connection refused" "an answer"
else
    pass "endpoint gone after stop"
fi
finish
