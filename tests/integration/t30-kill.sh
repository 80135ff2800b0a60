#!/bin/sh
# t30-kill: kill -9 parkd three times while 20,000 QoS 1 bay and gate events flow, restarting it
# each time; once the stream is in, Redis (lot hash, :bays, :gateseq) and the retained
# availability equal the ground truth exactly: nothing lost, nothing counted twice (SPEC §5,
# issue 3). The third kill hits the narrowest window on purpose: Redis is frozen (SIGSTOP) so
# that parkd has a batch in flight, parkd is killed, and Redis, resumed, still executes the
# batch of the dead client; its messages were never acknowledged, so the broker re-delivers them
# to the restarted parkd, whose restored state already holds their effect.
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"
FG_ARGS="-s 30 -n 20000"
. "$(dirname "$0")/fault-lib.sh"

fault_servers
fault_config
parkd_start
fault_truth "$T/truth"

fault_publish_bg -r 2000 --mark-at 5000 --mark-at 10000 --mark-at 15000
for k in 5000 10000 15000; do
    fault_wait_line "mark $k" || break
    # a varying moment after the mark, so that over runs the kill lands anywhere in a batch
    sleep "0.$(awk -v s="$k$$" 'BEGIN { srand(s); printf "%d", 1 + rand() * 8 }')"
    what="kill -9 of parkd while the stream flows (after event $k)"
    if [ "$k" = 15000 ]; then
        what="kill -9 of parkd with a batch in flight, which Redis executes afterwards (after event $k)"
        kill -STOP "$REDIS_PID"
        sleep 0.3       # parkd reads, sends its MULTI/EXEC, and waits for Redis
    fi
    if fault_publisher_running; then
        pass "$what"
    else
        fail "$what" "publisher running" "it had finished"
    fi
    parkd_kill
    [ "$k" = 15000 ] && kill -CONT "$REDIS_PID"
    sleep 1             # the broker queues what comes meanwhile for parkd's session
    fault_parkd_restart
done
fault_publish_wait "publisher sent 20000 events and had every PUBACK"
fault_compare t30 "$T/truth" 20
check_ok "parkd still running" parkd_alive
finish
