#!/bin/sh
# t11-sigterm-flush: SIGTERM flushes what min_interval held back (SPEC §7, issue 10 item 2).
# With publish.min_interval 30s, each lot's first change is published at once and the next ones
# are held; a SIGTERM must still write and publish the latest: the retained availability and
# forecast and the :forecast hash show the last event, the status is "offline" from parkd itself
# (a clean DISCONNECT, not the will), and the broker never logs an unclean disconnect.
# Repeated RUNS times (default 20), each a fresh start.
. "$(dirname "$0")/lib.sh"

RUNS=${T11_RUNS:-20}
LOTS="  - {id: A, capacity: 100, source: count}
  - {id: B, capacity: 200, source: count}
  - {id: C, capacity: 300, source: count}"
write_config "$LOTS" "mqtt.client_id=parkd-t11-$$" "publish.min_interval=30s" "log.level=info"

B=$(($(now) - 3600))
ok_avail=0; ok_fc=0; ok_hash=0; ok_exit=0; ok_offline=0
bad_runs=
run=1
while [ $run -le $RUNS ]; do
    parkd_start
    base=$((B + run * 60))
    for l in A B C; do
        pub "$IN/$l/count" "{\"occupied\": $run, \"ts\": $base}"              # published at once
    done
    for l in A B C; do
        pub "$IN/$l/count" "{\"occupied\": $((run + 10)), \"ts\": $((base + 20))}"   # held
    done
    settle
    want_ts=$(iso $((base + 20)))
    parkd_stop TERM
    [ "$PARKD_RC" = 0 ] && ok_exit=$((ok_exit + 1))
    [ "$(retained "$OUT/status" 2)" = offline ] && ok_offline=$((ok_offline + 1))
    good=1
    for l in A B C; do
        a=$(avail "$l")
        if [ "$(jget "$a" occupied) $(jget "$a" ts)" = "$((run + 10)) $want_ts" ]; then :; else good=0; fi
        f=$(retained "$OUT/$l/forecast" 2)
        [ "$(jget "$f" ts)" = "$want_ts" ] || good=0
        [ "$(rget hget "${RP}lot:$l:forecast" ts)" = "$want_ts" ] || good=0
    done
    if [ $good = 1 ]; then ok_avail=$((ok_avail + 1)); else bad_runs="$bad_runs $run(avail=$(avail_field A occupied)/$(avail_field A ts) fc=$(jget "$(retained "$OUT/A/forecast" 2)" ts) hash=$(rget hget "${RP}lot:A:forecast" ts))"; fi
    run=$((run + 1))
done
check "SIGTERM exits 0 in every run" "$RUNS" "$ok_exit"
check "status offline after every stop" "$RUNS" "$ok_offline"
check "after every stop: retained availability, retained forecast and the :forecast hash show the held last event" \
    "$RUNS" "$ok_avail"
[ -n "$bad_runs" ] && echo "runs that missed it:$bad_runs"

# the broker's view of every stop: a DISCONNECT parkd sent, never a dropped connection
mlog=$T/mosquitto.log
check "broker logged $RUNS clean disconnects of parkd" "$RUNS" "$(grep -c "Client parkd-t11-$$ disconnected\.$" "$mlog")"
check "broker never dropped parkd (out of memory, closed socket, timeout)" 0 \
    "$(grep "parkd-t11-$$" "$mlog" | grep -Eci 'out of memory|closed its connection|exceeded timeout|socket error')"
finish
