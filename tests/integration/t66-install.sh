#!/bin/sh
# t66-install: `make install` (PREFIX, DESTDIR, SYSCONFDIR) puts the binary, the unit with its
# paths substituted, the example configuration and both man pages in place; a second install
# keeps an edited configuration; `make uninstall` removes everything but the configuration.
# Uses the binary already built ($BUILD): `make -o all` does not rebuild.
NO_SERVERS=1
. "$(dirname "$0")/lib.sh"

[ -x "$PARKD_BIN" ] || { fail "parkd binary exists" "$PARKD_BIN" "nothing (build first)"; finish; }
mk() { make -s -C "$PARKD_TOP" -o all BUILD="$BUILD" "$@" >"$T/make.out" 2>&1; }

R=$T/root
check_ok "make install PREFIX=/usr DESTDIR=..." mk install PREFIX=/usr DESTDIR="$R"
check "binary installed, mode 0755" 755 "$(stat -c %a "$R/usr/sbin/parkd" 2>&1)"
check "installed binary runs" "$("$PARKD_BIN" --version)" "$("$R/usr/sbin/parkd" --version 2>&1)"
u=$R/usr/lib/systemd/system/parkd.service
check "unit installed, mode 0644" 644 "$(stat -c %a "$u" 2>&1)"
check "unit: ExecStart substituted" "ExecStart=/usr/sbin/parkd -c /etc/parkd/parkd.yaml" "$(grep '^ExecStart=' "$u")"
check "unit: no @PLACEHOLDER@ left" 0 "$(grep -c '@[A-Z_]*@' "$u")"
check "example configuration installed" 644 "$(stat -c %a "$R/etc/parkd/parkd.yaml" 2>&1)"
check "installed configuration is valid" "$R/etc/parkd/parkd.yaml: ok" \
    "$("$PARKD_BIN" -c "$R/etc/parkd/parkd.yaml" --check 2>&1)"
check "parkd(8) installed" 644 "$(stat -c %a "$R/usr/share/man/man8/parkd.8" 2>&1)"
check "parkd.yaml(5) installed" 644 "$(stat -c %a "$R/usr/share/man/man5/parkd.yaml.5" 2>&1)"
if command -v man >/dev/null 2>&1; then
    check "parkd(8) renders with a NAME section" 1 \
        "$(MANWIDTH=80 man -l "$R/usr/share/man/man8/parkd.8" 2>/dev/null | grep -c '^NAME')"
    check "parkd.yaml(5) renders with a NAME section" 1 \
        "$(MANWIDTH=80 man -l "$R/usr/share/man/man5/parkd.yaml.5" 2>/dev/null | grep -c '^NAME')"
fi

echo "# edited by the operator" >>"$R/etc/parkd/parkd.yaml"
check_ok "second make install" mk install PREFIX=/usr DESTDIR="$R"
check "an edited configuration is kept by a new install" 1 "$(grep -c '^# edited by the operator' "$R/etc/parkd/parkd.yaml")"

check_ok "make uninstall" mk uninstall PREFIX=/usr DESTDIR="$R"
check "uninstall removes the binary" no "$([ -e "$R/usr/sbin/parkd" ] && echo yes || echo no)"
check "uninstall removes the unit" no "$([ -e "$u" ] && echo yes || echo no)"
check "uninstall removes the man pages" "" "$(find "$R/usr/share/man" -type f 2>/dev/null)"
check "uninstall keeps the configuration" yes "$([ -f "$R/etc/parkd/parkd.yaml" ] && echo yes || echo no)"

R2=$T/root2
check_ok "make install with PREFIX=/opt/parkd SYSCONFDIR=/opt/parkd/etc" \
    mk install PREFIX=/opt/parkd SYSCONFDIR=/opt/parkd/etc DESTDIR="$R2"
check "unit follows PREFIX and SYSCONFDIR" "ExecStart=/opt/parkd/sbin/parkd -c /opt/parkd/etc/parkd/parkd.yaml" \
    "$(grep '^ExecStart=' "$R2/opt/parkd/lib/systemd/system/parkd.service" 2>&1)"
finish
