#!/bin/sh
# t65-systemd-unit: systemd/parkd.service passes `systemd-analyze verify` and rates "OK" or better
# (exposure <= 2.0) in `systemd-analyze security --offline=yes`; see scripts/check-unit.sh. No
# servers, no systemd as PID 1 needed.
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"

out=$(BUILD=$BUILD sh "$PARKD_TOP/scripts/check-unit.sh" 2>&1)
rc=$?
printf '%s\n' "$out"     # its own PASS:/FAIL: lines
PASSES=$((PASSES + $(printf '%s\n' "$out" | grep -c '^PASS: ')))
FAILS=$((FAILS + $(printf '%s\n' "$out" | grep -c '^FAIL: ')))
if [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep -q '^FAIL: '; then
    fail "scripts/check-unit.sh succeeds" "exit 0" "exit $rc"
fi

unit=$PARKD_TOP/systemd/parkd.service
# the settings the issue asks for by name, so that a later edit cannot drop one silently
for kv in Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' WatchdogSec=30s Restart=on-failure \
    RestartPreventExitStatus=78 DynamicUser=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
    PrivateDevices=yes NoNewPrivileges=yes CapabilityBoundingSet= \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' SystemCallFilter=@system-service \
    MemoryDenyWriteExecute=yes; do
    check "unit sets $kv" 1 "$(grep -cxF -- "$kv" "$unit")"
done
check "unit orders after network-online, mosquitto and redis" 1 \
    "$(grep -c '^After=network-online.target mosquitto.service redis-server.service' "$unit")"
check "unit does not Require= the servers" 0 "$(grep -c '^Requires=' "$unit")"
check "unit starts parkd -c @SYSCONFDIR@/parkd/parkd.yaml" 1 \
    "$(grep -cxF 'ExecStart=@SBINDIR@/parkd -c @SYSCONFDIR@/parkd/parkd.yaml' "$unit")"
finish
