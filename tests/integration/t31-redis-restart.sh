#!/bin/sh
# t31-redis-restart: restart redis-server (appendonly yes, appendfsync always; same port) twice
# while 20,000 QoS 1 bay and gate events flow — once stopped cleanly, once killed with -9. parkd
# keeps running, holds back its PUBACKs while Redis is away (the broker keeps the input),
# rewrites its state when Redis is back, and the final Redis state and retained availability
# equal the ground truth exactly (issue 3, "Redis outage").
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"
FG_ARGS="-s 31 -n 20000"
. "$(dirname "$0")/fault-lib.sh"

fault_servers
fault_config
parkd_start
fault_truth "$T/truth"

fault_publish_bg -r 2000 --mark-at 6000 --mark-at 13000
for step in 6000:TERM 13000:KILL; do
    k=${step%:*}; sig=${step#*:}
    fault_wait_line "mark $k" || break
    sleep "0.$(awk -v s="$k$$" 'BEGIN { srand(s); printf "%d", 1 + rand() * 8 }')"
    if fault_publisher_running; then
        pass "redis-server stopped with SIG$sig while the stream flows (after event $k)"
    else
        fail "redis-server stopped with SIG$sig while the stream flows (after event $k)" "publisher running" "it had finished"
    fi
    fault_stop_redis "$sig"
    sleep 1
    fault_start_redis
done
fault_publish_wait "publisher sent 20000 events and had every PUBACK"
fault_compare t31 "$T/truth" 20
check_ok "parkd kept running through the Redis restarts" parkd_alive
check "parkd saw Redis go away (log)" yes "$(grep -q 'redis: connection lost' "$PARKD_LOG" && echo yes)"
finish
