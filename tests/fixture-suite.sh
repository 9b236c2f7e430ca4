#!/bin/sh
# The fixture suite of `make test` (mk/fixture.mk copies it next to the
# harness it tests, $BUILD/tests/fixture-suite; it runs from the repository
# root):
# - every fixture under tests/fixtures passes;
# - every migration under migrations/ ends applied in one of them;
# - the harness rejects every fixture under tests/fixtures-must-fail, and
#   its output holds each line of that fixture's must_fail.txt.
# Ends with the one line tests/run.sh reads: "N passed, N failed".
harness=$(dirname "$0")/../migrate-fixture
passed=0
failed=0

out=$("$harness" --require-coverage migrations tests/fixtures/*/ 2>&1)
rc=$?
# The harness's own summary counts fixtures only: relabel it so it is not
# taken for this suite's total.
printf '%s\n' "$out" | sed 's/^\([0-9]* passed, [0-9]* failed\)$/fixtures: \1/'
summary=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
if [ -z "$summary" ]; then
    echo "FAIL the harness died (exit $rc) before its summary"
    failed=$((failed + 1))
else
    passed=$((passed + ${summary%% passed*}))
    f=${summary#*passed, }
    failed=$((failed + ${f%% failed}))
fi
# Coverage: one test, failed by any "FAIL coverage" line.
if printf '%s\n' "$out" | grep -q '^FAIL coverage'; then
    failed=$((failed + 1))
elif [ -n "$summary" ]; then
    passed=$((passed + 1))
fi

for dir in tests/fixtures-must-fail/*/; do
    name=$(basename "$dir")
    out=$("$harness" "$dir" 2>&1)
    rc=$?
    missing=
    while IFS= read -r want; do
        [ -z "$want" ] && continue
        printf '%s\n' "$out" | grep -qF -- "$want" || missing="$want"
    done < "$dir/must_fail.txt"
    if [ "$rc" -eq 1 ] && [ -z "$missing" ]; then
        echo "PASS must-fail $name (the harness rejects it, saying why)"
        passed=$((passed + 1))
    else
        echo "FAIL must-fail $name: the harness exited $rc${missing:+ without saying \"$missing\"}:"
        printf '%s\n' "$out" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
