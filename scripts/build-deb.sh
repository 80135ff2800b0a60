#!/bin/sh
# Builds the Debian package parkd from this tree with `dpkg-buildpackage -us -uc -b`, in a
# scratch copy of the tracked files (plus build/web when `make web` made it), so that the build
# never touches this clone's build directories or writes into its parent directory.
#
#   sh scripts/build-deb.sh OUTDIR                  parkd_<version>_<arch>.deb and .buildinfo/.changes into OUTDIR
#   sh scripts/build-deb.sh --version V OUTDIR      the same with a changelog entry for version V on
#                                                   top (tests/systemd: an upgrade from N to N+1)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
version=
if [ "${1:-}" = --version ]; then version=$2; shift 2; fi
out=${1:?usage: build-deb.sh [--version V] OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 1
for c in dpkg-buildpackage dh; do
    command -v "$c" >/dev/null 2>&1 || { echo "build-deb.sh: $c is missing (sh scripts/deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/parkd-deb.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
src=$work/parkd
mkdir -p "$src"
# Tracked files as they are in the working tree (uncommitted edits included), no build output.
(cd "$top" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src" 2>/dev/null) ||
    { echo "build-deb.sh: copying the tree failed" >&2; exit 1; }
[ -d "$top/debian" ] || { echo "build-deb.sh: no debian/ directory" >&2; exit 1; }
if [ -f "$top/build/web/index.html" ]; then
    mkdir -p "$src/build" && cp -R "$top/build/web" "$src/build/web"
else
    echo "build-deb.sh: no build/web (make web): the package has no map files" >&2
fi
if [ -n "$version" ]; then
    {
        printf 'parkd (%s) bookworm; urgency=medium\n\n  * Rebuild as %s.\n\n' "$version" "$version"
        printf ' -- %s  %s\n\n' "$(sed -n 's/^Maintainer: //p' "$src/debian/control")" "$(date -R)"
        cat "$src/debian/changelog"
    } >"$work/changelog" && mv "$work/changelog" "$src/debian/changelog"
fi
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; echo "build-deb.sh: dpkg-buildpackage failed" >&2; exit 1; }
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/ || exit 1
ls "$work"/*.deb | sed 's|.*/|build-deb.sh: |'
