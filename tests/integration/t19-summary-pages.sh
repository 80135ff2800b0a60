#!/bin/sh
# t19-summary-pages: a summary larger than publish.summary_max_bytes is split into pages (SPEC §4
# `<out>/summary`), so that no output can exceed the broker's packet limit and hold up storing
# input. The broker runs with `max_packet_size 65536` (the README's advice): a packet above it
# makes mosquitto drop the client, and with it the acknowledgements of stored input.
#   1. 1,200 lots, default summary_max_bytes (60000): every lot's input is stored and published,
#      the pages reassemble to every lot exactly once with the right totals, each page fits, and
#      parkd never loses its MQTT connection.
#   2. summary_max_bytes 4096 (the minimum), 80 lots: pages and totals; SIGHUP to 40 and then 20
#      lots clears the retained pages no longer used, down to one unsplit page ("pages":1).
MOSQ_EXTRA_CONF="max_packet_size 65536"
. "$(dirname "$0")/lib.sh"

FEED=$PARKD_TOOLS/parkd-feed
TS=$(iso $(($(now) - 60)))

# lots PREFIX N CAPACITY — config lines for lots PREFIX0001…, each a count lot with a name and a
# position, so that a summary entry is of a realistic size (~135 bytes)
lots() {
    awk -v p="$1" -v n="$2" -v c="$3" 'BEGIN { for (i = 1; i <= n; i++)
        printf "  - {id: %s%04d, name: \"Car park %04d, Example Street\", capacity: %d, source: count, lat: %.4f, lon: %.4f}\n",
            p, i, i, c, 52.4 + i / 10000, -1.9 - i / 10000 }'
}
# occupied PREFIX N CAPACITY — "ID OCCUPIED" per lot: what the test sends (i % 97, clamped)
occupied() {
    awk -v p="$1" -v n="$2" -v c="$3" 'BEGIN { for (i = 1; i <= n; i++) {
        o = i % 97; if (o > c) o = c; printf "%s%04d %d\n", p, i, o } }'
}
# feed PREFIX N CAPACITY — one count message per lot, QoS 1, all acknowledged by the broker
feed() {
    { echo "SystemCodeNumber,Capacity,Occupancy,LastUpdated"
      occupied "$1" "$2" "$3" | awk -v c="$3" -v ts="$TS" '{ printf "%s,%d,%d,%s\n", $1, c, $2, ts }'
    } >"$T/feed.csv"
    if "$FEED" --host 127.0.0.1 --port "$MQTT_PORT" --prefix "$IN" --tz UTC "$T/feed.csv" \
        >"$T/feed.out" 2>&1; then
        SENT=$((SENT + $2))
    else
        fail "parkd-feed sends $2 count messages" "rc 0" "$(tail -n 3 "$T/feed.out")"
    fi
}
# stored PREFIX N CAPACITY — how many lots' Redis hash holds the occupied that was sent
stored() {
    occupied "$1" "$2" "$3" | awk -v rp="$RP" '{ print "HGET " rp "lot:" $1 " occupied" }' |
        rget >"$T/stored.out" 2>/dev/null
    occupied "$1" "$2" "$3" | awk '{ print $2 }' | paste -d' ' - "$T/stored.out" |
        awk '$1 == $2 { n++ } END { print n + 0 }'
}
# avail_ok PREFIX N CAPACITY — retained <out>/+/availability messages whose occupied is the one sent
avail_ok() {
    mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t "$OUT/+/availability" -C "$2" -W 3 \
        -F '%t|%p' >"$T/avail.out" 2>/dev/null
    occupied "$1" "$2" "$3" >"$T/expected"
    "$PY" - "$T/avail.out" "$T/expected" "$OUT" <<'EOF'
import json, sys
want = dict(l.split() for l in open(sys.argv[2]))
seen = {}
for line in open(sys.argv[1], encoding="utf-8"):
    topic, _, payload = line.rstrip("\n").partition("|")
    lot = topic[len(sys.argv[3]) + 1:].split("/")[0]
    try:
        seen[lot] = str(json.loads(payload).get("occupied"))
    except ValueError:
        pass
print(sum(1 for k, v in want.items() if seen.get(k) == v))
EOF
}
# pages FILE — every retained message on <out>/summary and <out>/summary/+ as "TOPIC|PAYLOAD"
pages() {
    mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t "$OUT/summary" -t "$OUT/summary/+" -W 3 \
        -F '%t|%p' >"$1" 2>/dev/null
}
# summary_check FILE PREFIX N CAPACITY MAX — reassembles the pages as a client would (page 1's
# "pages":N, then pages 2…N) and prints "name value" lines about the result
summary_check() {
    occupied "$2" "$3" "$4" >"$T/expected"
    "$PY" - "$1" "$T/expected" "$OUT" "$4" "$5" <<'EOF'
import json, sys
path, expected, out, cap, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
want = dict(l.split() for l in open(expected))
msgs = {}
for line in open(path, "rb"):
    topic, _, payload = line.rstrip(b"\n").partition(b"|")
    msgs[topic.decode()] = payload
def page(k):
    raw = msgs.get(out + "/summary" + ("" if k == 1 else "/%d" % k))
    return raw, (json.loads(raw) if raw else None)
raw1, p1 = page(1)
if p1 is None:
    print("pages none"); sys.exit(0)
n = p1.get("pages")
print("pages", n)
lots, biggest, labels, ts_same = [], len(raw1), [], True
lots += p1["lots"]
for k in range(2, (n or 1) + 1):
    raw, p = page(k)
    if p is None:
        labels.append("missing%d" % k); continue
    biggest = max(biggest, len(raw))
    labels.append("ok" if p.get("page") == k and p.get("pages") == n else "bad%d" % k)
    ts_same = ts_same and p.get("ts") == p1.get("ts")
    lots += p["lots"]
ids = [l["lot"] for l in lots]
print("labels", "ok" if all(l == "ok" for l in labels) else ",".join(labels))
print("ts_same", "yes" if ts_same else "no")
print("entries", len(ids))
print("unique", len(set(ids)))
print("right", sum(1 for l in lots if want.get(l["lot"]) is not None and
                   l["free"] == cap - int(want[l["lot"]]) and l["capacity"] == cap))
print("free", p1.get("free"), sum(cap - int(v) for v in want.values()))
print("capacity", p1.get("capacity"), cap * len(want))
print("fits", "yes" if biggest <= limit else "no: %d > %d" % (biggest, limit))
print("extra", len([t for t in msgs if t.startswith(out + "/summary/") and
                    int(t.rsplit("/", 1)[1]) > (n or 1) and msgs[t]]))
EOF
}
# check_within "description" "command" expected SECONDS — check_eventually bounded by wall time
# (the commands here wait seconds themselves, so counting polls would not bound it)
check_within() {
    _end=$(($(now) + $4))
    while :; do
        GOT=$(eval "$2" 2>/dev/null)
        [ "$GOT" = "$3" ] && { pass "$1"; return 0; }
        [ "$(now)" -ge "$_end" ] && { fail "$1" "$3" "$GOT"; return 1; }
        sleep 0.5
    done
}
field() { awk -v k="$2" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$1"; }
# summary_total — page 1's "free" (to wait for the summary to catch up with the input)
summary_total() { jget "$(retained "$OUT/summary" 2)" free; }

# === 1. 1,200 lots behind max_packet_size 65536 ==================================================
N=1200
write_config "$(lots L $N 100)"
parkd_start
feed L $N 100
settle 30
check_within "all $N lots stored: Redis ${RP}lot:<id> occupied is what was sent" "stored L $N 100" "$N" 30
check_within "all $N retained availabilities carry what was sent" "avail_ok L $N 100" "$N" 20
want_free=$(occupied L $N 100 | awk '{ s += 100 - $2 } END { print s }')
check_within "the summary's free total catches up with the input" summary_total "$want_free" 10
pages "$T/big.pages"
summary_check "$T/big.pages" L $N 100 60000 >"$T/big.check"
pn=$(field "$T/big.check" pages)
echo "note: $N lots in ${pn:-no} summary pages"
check "the summary of $N lots is split (3 or more pages of 60000 bytes)" yes \
    "$([ "${pn:-0}" -ge 3 ] 2>/dev/null && echo yes || echo "no: pages $pn")"
check "every page 2…N is there with \"page\":k and \"pages\":N" ok "$(field "$T/big.check" labels)"
check "every page carries page 1's ts" yes "$(field "$T/big.check" ts_same)"
check "the pages hold $N lot entries" "$N" "$(field "$T/big.check" entries)"
check "each lot exactly once" "$N" "$(field "$T/big.check" unique)"
check "each lot's free and capacity are right" "$N" "$(field "$T/big.check" right)"
check "page 1 totals free over all lots" "$want_free $want_free" "$(field "$T/big.check" free)"
check "page 1 totals capacity over all lots" "$((N * 100)) $((N * 100))" "$(field "$T/big.check" capacity)"
check "every page's payload is at most 60000 bytes" yes "$(field "$T/big.check" fits)"
check "no retained page beyond N" 0 "$(field "$T/big.check" extra)"
check "parkd never lost its MQTT connection" 0 "$(grep -c 'mqtt: connection lost' "$PARKD_LOG")"
check "parkd connected once" 1 "$(grep -c 'mqtt: connected to' "$PARKD_LOG")"
check "the broker never dropped parkd for an oversize packet" 0 "$(grep -c 'oversize packet' "$T/mosquitto.log")"
parkd_stop
check "parkd stops cleanly" 0 "$PARKD_RC"

# === 2. summary_max_bytes 4096; SIGHUP to fewer lots clears the pages no longer used =============
OUT=out/small
write_config "$(lots S 80 50)" "publish.summary_max_bytes=4096"
parkd_start
feed S 80 50
settle 10
want_free=$(occupied S 80 50 | awk '{ s += 50 - $2 } END { print s }')
check_within "80 lots: the summary's free total catches up" summary_total "$want_free" 10
pages "$T/s80.pages"
summary_check "$T/s80.pages" S 80 50 4096 >"$T/s80.check"
pn=$(field "$T/s80.check" pages)
check "80 lots in 4096-byte pages: 3 or more pages" yes \
    "$([ "${pn:-0}" -ge 3 ] 2>/dev/null && echo yes || echo "no: pages $pn")"
check "80 lots: every page there and labelled" ok "$(field "$T/s80.check" labels)"
check "80 lots: each lot exactly once, right" "80 80 80" \
    "$(field "$T/s80.check" entries) $(field "$T/s80.check" unique) $(field "$T/s80.check" right)"
check "80 lots: totals" "$want_free $want_free 4000 4000" \
    "$(field "$T/s80.check" free) $(field "$T/s80.check" capacity)"
check "80 lots: every page's payload is at most 4096 bytes" yes "$(field "$T/s80.check" fits)"

# 40 lots: 2 pages; the pages from 3 on are cleared (an empty retained payload)
write_config "$(lots S 40 50)" "publish.summary_max_bytes=4096"
kill -HUP "$PARKD_PID"
check_within "SIGHUP to 40 lots: page 1 says 2 pages" "jget \"\$(retained $OUT/summary 2)\" pages" 2 10
pages "$T/s40.pages"
summary_check "$T/s40.pages" S 40 50 4096 >"$T/s40.check"
check "40 lots: page 2 there and labelled" ok "$(field "$T/s40.check" labels)"
check "40 lots: each lot exactly once, right" "40 40 40" \
    "$(field "$T/s40.check" entries) $(field "$T/s40.check" unique) $(field "$T/s40.check" right)"
want_free=$(occupied S 40 50 | awk '{ s += 50 - $2 } END { print s }')
check "40 lots: totals of the lots still configured" "$want_free $want_free 2000 2000" \
    "$(field "$T/s40.check" free) $(field "$T/s40.check" capacity)"
check "40 lots: the retained pages from 3 on are cleared" 0 "$(field "$T/s40.check" extra)"
check "40 lots: only <out>/summary/2 is retained" "$OUT/summary/2" \
    "$(grep "^$OUT/summary/" "$T/s40.pages" | cut -d'|' -f1 | tr '\n' ' ' | sed 's/ $//')"

# 20 lots: one page, unsplit, "pages":1; no <out>/summary/<k> retained at all
write_config "$(lots S 20 50)" "publish.summary_max_bytes=4096"
kill -HUP "$PARKD_PID"
check_within "SIGHUP to 20 lots: one page (\"pages\":1)" "jget \"\$(retained $OUT/summary 2)\" pages" 1 10
pages "$T/s20.pages"
summary_check "$T/s20.pages" S 20 50 4096 >"$T/s20.check"
check "20 lots: each lot exactly once, right" "20 20 20" \
    "$(field "$T/s20.check" entries) $(field "$T/s20.check" unique) $(field "$T/s20.check" right)"
check "20 lots: no <out>/summary/<k> retained" "" "$(grep "^$OUT/summary/" "$T/s20.pages")"
check "parkd never lost its MQTT connection (small pages)" 0 "$(grep -c 'mqtt: connection lost' "$PARKD_LOG")"
parkd_stop
check "parkd stops cleanly (small pages)" 0 "$PARKD_RC"
finish
