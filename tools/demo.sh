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

section "2. preview: what the upgrade would change, before anything is touched"
# dry_run + rehearse: every migration runs on a copy-on-write view of the
# home; the changes it reports are exact (the fixture harness proves it).
(cd "$home" && find . -exec ls -ld --time-style=+%s.%N {} + | sort) > "$build/demo/tree.before"
"$build/migrate-demo" --migrations migrations --home "$home" --dry-run --rehearse 1.0.0 -
(cd "$home" && find . -exec ls -ld --time-style=+%s.%N {} + | sort) > "$build/demo/tree.after-preview"
if cmp -s "$build/demo/tree.before" "$build/demo/tree.after-preview" &&
   cmp -s "$build/demo/config.before.yml" "$home/$config"; then
    echo "The home is untouched: no file, mode or mtime changed, no state or lock file made."
else
    echo "the preview changed the home:" >&2
    diff "$build/demo/tree.before" "$build/demo/tree.after-preview" >&2 || true
    exit 1
fi

section "3. upgrade it from 1.0.0 to the newest version, rehearsed first"
# The progress lines come from the event callback as each migration runs;
# the report at the end is migrate_report_json(), what an executor would log.
"$build/migrate-demo" --migrations migrations --home "$home" --rehearse --json 1.0.0 -

section "4. what the upgrade changed: only the entries the migrations meant to touch"
files
echo "Every comment, blank line and untouched entry of the user's files is as it was:"
diff -u --label "~/$config (1.0.0)" --label "~/$config (now)" \
    "$build/demo/config.before.yml" "$home/$config" || true
diff -u --label "~/$env (1.0.0)" --label "~/$env (now)" \
    "$build/demo/env.before" "$home/$env" || true

section "5. the same upgrade again: all recorded, no script runs"
"$build/migrate-demo" --migrations migrations --home "$home" 1.0.0 -

section "6. the fixture that proves it (make test runs them all)"
echo "tests/fixtures/demo: before/, after/, case.json; the harness runs it,"
echo "again with the state kept, again without it, as a dry run, as a preview"
echo "(whose changes, applied to before/, must give after/) and rehearsed:"
"$build/migrate-fixture" tests/fixtures/demo
echo
echo "Next: migrations/README.md says how to write a migration and its fixture."
