#!/bin/sh
# t14-metrics-reload: the metrics thread reads while the loop reloads (issue 10, item 7): /metrics
# is scraped without pause during 20 reloads that change the log level and add and remove a lot,
# while input flows. Every scrape answers 200 with the families it should have, the final
# state is exact, and (under `make check-tsan`) ThreadSanitizer reports no race.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null 2>&1 || { fail "curl is installed" curl nothing; finish; }

MPORT=$(free_port)
URL=http://127.0.0.1:$MPORT/metrics
A="  - {id: A, capacity: 1000, source: gates}"
Z="  - {id: Z, capacity: 10, source: count}"
conf() {   # conf LOTS LEVEL
    write_config "$1" "mqtt.client_id=parkd-t14-$$" "log.level=$2"
    printf 'metrics:\n  listen: "127.0.0.1:%s"\n' "$MPORT" >>"$CFG"
}
conf "$A" info
parkd_start

# the scraper: one line per scrape, "CODE FAMILIES" (number of # TYPE lines)
cat >"$T/scrape.sh" <<EOF
while :; do
    code=\$(curl -s --max-time 2 -o "$T/scrape.body" -w '%{http_code}' "$URL")
    echo "\$code \$(grep -c '^# TYPE ' "$T/scrape.body" 2>/dev/null)"
done
EOF
sh "$T/scrape.sh" >"$T/scrapes" 2>/dev/null &
SUB_PIDS="$SUB_PIDS $!"

seq=0
i=1
while [ $i -le 20 ]; do
    if [ $((i % 2)) = 1 ]; then conf "$A
$Z" debug; else conf "$A" warning; fi
    kill -HUP "$PARKD_PID"
    seq=$((seq + 1)); pub "$IN/A/gate/g1" "{\"event\": \"in\", \"seq\": $seq}"
    seq=$((seq + 1)); pub "$IN/A/gate/g1" "{\"event\": \"in\", \"seq\": $seq}"
    sleep 0.2
    i=$((i + 1))
done
sleep 0.5
kill $(echo "$SUB_PIDS" | awk '{ print $NF }') 2>/dev/null

families=$(curl -s --max-time 2 "$URL" | grep -c '^# TYPE ')
total=$(wc -l <"$T/scrapes" | tr -d ' ')
check "the scraper ran throughout (at least 20 scrapes)" 1 "$(( total >= 20 ))"
check "every scrape during the reloads answered 200" 0 "$(grep -vc '^200 ' "$T/scrapes")"
# lots without data yet have fewer families; once input is in, every scrape has them all
check "once input is in, every scrape has all $families metric families (none half-built)" 0 \
    "$(awk -v n="$families" '$2 == n { seen = 1 } seen && $2 != n' "$T/scrapes" | wc -l | tr -d ' ')"
check_eventually "every car counted across the reloads" "hget A occupied" "$seq"
check "the last configuration runs (A only)" "A" "$(rget smembers "${RP}lots" | tr '\n' ' ' | sed 's/ $//')"
check_ok "parkd alive" parkd_alive
parkd_stop TERM
check "SIGTERM exit 0" 0 "$PARKD_RC"
check "no sanitizer report" 0 "$(grep -c 'Sanitizer' "$PARKD_LOG")"
finish
