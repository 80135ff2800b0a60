#!/bin/sh
# t74-redis-acl: Redis ACL user (redis.username + redis.password_file) limited to the parkd:
# prefix — keys ~parkd:* and pub/sub channels &parkd:* (parkd:updates), no @dangerous commands —
# as the README's security section recommends (issue 7). parkd works within it (Redis's ACL LOG
# shows no denied command), the user really is confined, and a wrong password is refused with a
# clear log line that does not hold the password.
. "$(dirname "$0")/sec-lib.sh"

ADMIN="admin-$$-Wd5sE1"
GOOD="acl-good-$$-Tx7bN4"
BAD="acl-bad-$$-Ku2mC8"
cat >"$T/users.acl" <<ACL
user default on >$ADMIN ~* &* +@all
user parkd on >$GOOD resetkeys ~parkd:* resetchannels &parkd:* +@all -@dangerous
ACL
REDIS_AUTH=$ADMIN
sec_start_redis --aclfile "$T/users.acl"
sec_start_mosquitto "allow_anonymous true"
LOTS="  - {id: C1, capacity: 100, source: count}
  - {id: B1, capacity: 10, source: bays}"
rget set other:key untouched >/dev/null

# --- the ACL user with the right password ------------------------------------------------------
PWF=$(sec_secret_file redis.pw "$GOOD")
write_config "$LOTS" "redis.username=parkd" "redis.password_file=$PWF"
rget acl log reset >/dev/null
rget subscribe "${RP}updates" >"$T/updates.sub" 2>/dev/null &
SUB_PIDS="$SUB_PIDS $!"
parkd_start
pass "ACL user: parkd becomes ready ($OUT/status online)"
check_count_reaches_redis "ACL user" C1
pub "$IN/B1/bay/b1" 1
check_eventually "ACL user: a bay state reaches Redis" "bayget B1 b1" 1
check_eventually "ACL user: the daemon hash is written" 'dget messages_in | grep -q . && echo yes' yes
check_eventually "ACL user: availability is published on ${RP}updates" \
    "grep -c '\"lot\":\"C1\"' '$T/updates.sub' | grep -q '^[1-9]' && echo yes" yes
check "ACL user: Redis denied parkd no command, key or channel (ACL LOG empty)" "" "$(rget acl log)"
check "ACL user: no Redis errors in parkd's log" "" "$(grep -E 'redis: .*(NOPERM|failed|error)' "$PARKD_LOG")"
check_no_secret "ACL user: the password is in no log, argv or environment" "$GOOD"
parkd_stop_checked "ACL user"

# --- the user is really confined to the prefix ---------------------------------------------------
_cli_parkd() { REDISCLI_AUTH=$GOOD redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --user parkd --no-auth-warning "$@"; }
check_match "ACL user: cannot read a key outside parkd:" "NOPERM.*" "$(_cli_parkd get other:key 2>&1)"
check_match "ACL user: cannot run a dangerous command (FLUSHALL)" "NOPERM.*" "$(_cli_parkd flushall 2>&1)"
check_match "ACL user: cannot publish outside parkd:" "NOPERM.*" "$(_cli_parkd publish other:chan x 2>&1)"
check "other keys untouched" untouched "$(rget get other:key)"

# --- a wrong password ------------------------------------------------------------------------
PWF=$(sec_secret_file redis.pw "$BAD")
write_config "$LOTS" "redis.username=parkd" "redis.password_file=$PWF"
parkd_start_refused "ACL user, wrong password" "redis: .*WRONGPASS"
check_no_secret "ACL user, wrong password: the wrong password is in no log, argv or environment" "$BAD"
check_no_secret "ACL user, wrong password: the right password is in no log either" "$GOOD"
parkd_stop_checked "ACL user, wrong password"

# --- the right password for another user name ---------------------------------------------------
PWF=$(sec_secret_file redis.pw "$GOOD")
write_config "$LOTS" "redis.username=nobody" "redis.password_file=$PWF"
parkd_start_refused "unknown ACL user" "redis: .*WRONGPASS"
parkd_stop_checked "unknown ACL user"

finish
