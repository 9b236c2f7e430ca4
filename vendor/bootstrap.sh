#!/bin/sh
# Brings in the dependencies of one role listed in vendor/deps.txt (lib, test
# or dev). On Debian as root it installs what is missing with apt-get; anywhere
# else it stops and prints the exact command to run. With "--flags FILE" (lib
# role) it also writes the compiler and linker flags pkg-config reports to
# FILE, a makefile fragment the top-level Makefile includes.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
role=${1:?usage: bootstrap.sh lib|test|dev [--flags FILE]}
flags_out=
[ "${2:-}" = "--flags" ] && flags_out=${3:?--flags needs a file}

missing=
while read -r r pkg pc _ver; do
    case "$r" in ''|'#'*) continue ;; esac
    [ "$r" = "$role" ] || continue
    if [ "$pc" != "-" ]; then
        if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$pc"; then continue; fi
    else
        if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then continue; fi
    fi
    missing="$missing $pkg"
done < "$here/deps.txt"

if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "vendor/bootstrap.sh: installing$missing" >&2
        export DEBIAN_FRONTEND=noninteractive
        # A fresh machine has no package lists yet; refresh them only when the
        # first attempt cannot find a package.
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing >/dev/null ||
            { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null; }
    elif command -v apt-get >/dev/null 2>&1; then
        echo "missing$missing; run: sudo apt-get install -y$missing" >&2
        exit 1
    else
        echo "missing$missing (Debian names); install Lua 5.4, cJSON, libyaml and cmocka development files so that 'pkg-config lua5.4 libcjson yaml-0.1 cmocka' succeeds" >&2
        exit 1
    fi
fi

if [ -n "$flags_out" ]; then
    mkdir -p "$(dirname "$flags_out")"
    {
        echo "# written by vendor/bootstrap.sh; delete to re-detect"
        echo "DEP_CFLAGS := $(pkg-config --cflags lua5.4 libcjson yaml-0.1)"
        echo "DEP_LIBS := $(pkg-config --libs lua5.4 libcjson yaml-0.1)"
    } > "$flags_out.tmp"
    mv "$flags_out.tmp" "$flags_out"
fi
