#!/bin/sh
# Install every Debian package that building and testing heaptrace needs.
# Does nothing (and needs no root) when they are all present already.
set -eu

PKGS="build-essential pkg-config libunwind-dev libdwarf-dev libelf-dev libzstd-dev
zlib1g-dev check golang-go clang libclang-rt-14-dev sqlite3 python3 git heaptrack
redis-server redis-tools"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
