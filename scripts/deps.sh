#!/bin/sh
# Installs the Debian 12 packages that parkd's build, tests, demo and benchmarks need.
# Silent and quick when everything is already installed (only dpkg-query runs); otherwise
# one `apt-get update` and one `apt-get install`. Needs root only when something is missing.
set -u

PKGS="build-essential pkg-config libuv1-dev libmosquitto-dev libhiredis-dev libyaml-dev
libsystemd-dev libjansson-dev libmicrohttpd-dev libcmocka-dev mosquitto mosquitto-clients
redis-server redis-tools valgrind curl openssl procps python3 python3-jsonschema systemd wrk
clang-14 libclang-rt-14-dev
debhelper lintian debootstrap debian-archive-keyring systemd-container"
# python3: JSON checks in tests/integration; python3-jsonschema: the FIWARE schema checks of
# t80; wrk: the HTTP benchmark of `make bench`; systemd: systemd-analyze for the unit checks;
# clang-14 + libclang-rt-14-dev: libFuzzer for `make fuzz`; debhelper + lintian: `make deb`;
# debootstrap, debian-archive-keyring, systemd-container (systemd-nspawn): `make check-systemd`

# The live map: nodejs (and npm, see missing_pkgs) for `make web`, chromium for its browser
# test (t81, driven by playwright-core from web/node_modules).
PKGS="$PKGS nodejs chromium"

# Prints the packages of $PKGS that are not fully installed, space-separated. Debian's nodejs
# comes without npm (its own package); other builds of the nodejs package bring npm with them and
# conflict with Debian's: so the npm package is wanted only when there is no npm command.
missing_pkgs() {
    {
        for p in $PKGS; do
            s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
            [ "$s" = "install ok installed" ] || printf '%s\n' "$p"
        done
        command -v npm >/dev/null 2>&1 || printf '%s\n' npm
    } | tr '\n' ' ' | sed 's/ $//'
}

missing=$(missing_pkgs)
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing Debian packages: $missing" >&2
    echo "deps.sh: run as root, or: sudo apt-get install --no-install-recommends $missing" >&2
    exit 1
fi

echo "deps.sh: installing $missing" >&2

# Without systemd as PID 1 (a container), invoke-rc.d would try the SysV scripts of mosquitto
# and redis-server, which can fail and fail the install. Our tests start their own servers,
# so deny service starts for the duration of the install unless a policy already exists.
policy=/usr/sbin/policy-rc.d
added_policy=
if [ ! -d /run/systemd/system ] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && added_policy=1
fi
# shellcheck disable=SC2317  # called from the trap
cleanup() { if [ -n "$added_policy" ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
    echo "deps.sh: warning: apt-get update failed; trying the install with the current lists" >&2
fi
# shellcheck disable=SC2086  # word splitting of the package list is intended
if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null; then
    echo "deps.sh: apt-get install failed for: $missing" >&2
    exit 1
fi

still=$(missing_pkgs)
if [ -n "$still" ]; then
    echo "deps.sh: still not installed after apt-get: $still" >&2
    exit 1
fi
echo "deps.sh: done" >&2
exit 0
