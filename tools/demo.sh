#!/bin/sh
# make demo: the repository's real migrations, run by a small host program
# (tools/demo.c) against a throw-away home seeded from the fixture
# tests/fixtures/demo/before, then proven by the fixture harness.
set -eu
build=${1:-build}
home="$build/demo/home"
rm -rf "$build/demo"
mkdir -p "$home"
# Absolute: the library refuses a relative home (it would depend on the
# working directory).
home=$(cd "$home" && pwd)
cp -R tests/fixtures/demo/before/. "$home/"
config=.teleclaude/config.yml
env=.teleclaude/.env
cp "$home/$config" "$build/demo/config.before.yml"
cp "$home/$env" "$build/demo/env.before"

section() { printf '\n==== %s\n' "$1"; }
files() { (cd "$home" && find . -type f | sed 's|^\./|  ~/|' | sort); }

section "1. a home left by version 1.0.0 ($home)"
files
printf -- '--- ~/%s\n' "$config"
cat "$home/$config"

section "2. upgrade it from 1.0.0 to the newest version"
# The progress lines come from the event callback as each migration runs;
# the report at the end is migrate_report_json(), what an executor would log.
"$build/migrate-demo" --migrations migrations --home "$home" --json 1.0.0 -

section "3. what the upgrade changed: only the entries the migrations meant to touch"
files
echo "Every comment, blank line and untouched entry of the user's files is as it was:"
diff -u --label "~/$config (1.0.0)" --label "~/$config (now)" \
    "$build/demo/config.before.yml" "$home/$config" || true
diff -u --label "~/$env (1.0.0)" --label "~/$env (now)" \
    "$build/demo/env.before" "$home/$env" || true

section "4. the same upgrade again: all recorded, no script runs"
"$build/migrate-demo" --migrations migrations --home "$home" 1.0.0 -

section "5. the fixture that proves it (make test runs them all)"
echo "tests/fixtures/demo: before/, after/, case.json; the harness runs it,"
echo "again with the state kept, again without it, and as a dry run:"
"$build/migrate-fixture" tests/fixtures/demo
echo
echo "Next: migrations/README.md says how to write a migration and its fixture."
