#!/bin/sh
# make demo: the repository's real migrations, run by a small host program
# against a throw-away home seeded from tests/fixtures/demo/before.
set -eu
build=${1:-build}
home="$build/demo/home"
rm -rf "$build/demo"
mkdir -p "$home"
cp -R tests/fixtures/demo/before/. "$home/"

section() { printf '\n==== %s\n' "$1"; }

section "the home before the upgrade ($home)"
(cd "$home" && find . -type f | sort)
printf -- '--- .teleclaude/config.json\n'
cat "$home/.teleclaude/config.json"

section "upgrade from 1.0.0 to the newest version"
"$build/migrate-demo" --migrations migrations --home "$home" --json 1.0.0 -

section "the home after the upgrade"
(cd "$home" && find . -type f | sort)
printf -- '--- .teleclaude/config.json\n'
cat "$home/.teleclaude/config.json"

section "the same upgrade again: everything is recorded, no script runs"
"$build/migrate-demo" --migrations migrations --home "$home" 1.0.0 -
