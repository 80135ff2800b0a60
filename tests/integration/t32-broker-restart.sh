#!/bin/sh
# t32-broker-restart: restart mosquitto (persistence on, same port) twice while 20,000 QoS 1 bay
# and gate events flow. The broker saves parkd's session (subscription, queued and in-flight
# messages) and the retained topics; the publisher re-sends what was not acknowledged; parkd
# reconnects and re-subscribes, and the final Redis state and retained availability equal the
# ground truth exactly (issue 3, "broker outage").
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"
FG_ARGS="-s 32 -n 20000"
. "$(dirname "$0")/fault-lib.sh"

fault_servers
fault_config
parkd_start
fault_truth "$T/truth"

fault_publish_bg -r 2000 --mark-at 6000 --mark-at 13000
for k in 6000 13000; do
    fault_wait_line "mark $k" || break
    sleep "0.$(awk -v s="$k$$" 'BEGIN { srand(s); printf "%d", 1 + rand() * 8 }')"
    if fault_publisher_running; then
        pass "mosquitto restarted while the stream flows (after event $k)"
    else
        fail "mosquitto restarted while the stream flows (after event $k)" "publisher running" "it had finished"
    fi
    fault_stop_mosquitto TERM
    sleep 1
    fault_start_mosquitto
done
fault_publish_wait "publisher sent 20000 events and had every PUBACK"
fault_compare t32 "$T/truth" 20
check_ok "parkd kept running through the broker restarts" parkd_alive
n=$(grep -c 'mqtt: connected' "$PARKD_LOG")
if [ "$n" -ge 3 ]; then pass "parkd reconnected and re-subscribed after each restart ($n connections)"; else
    fail "parkd reconnected and re-subscribed after each restart" ">= 3 'mqtt: connected' log lines" "$n"; fi
check_eventually "$OUT/status is online again (retained)" "retained $OUT/status 1" online
finish
