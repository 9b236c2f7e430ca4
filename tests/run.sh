#!/bin/sh
# Runs every cmocka test binary given, shows each one's output, and ends with
# the one summary line CI reads: "N passed, N failed". A binary that dies
# before cmocka prints its summary counts as one failure under its own name.
passed=0
failed=0
broken=
for t in "$@"; do
    out=$("$t" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    if [ -z "$p" ] && [ -z "$f" ]; then
        broken="$broken $(basename "$t")(exit $rc)"
        failed=$((failed + 1))
        continue
    fi
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ "$rc" -ne 0 ] && [ -z "$f" ]; then
        broken="$broken $(basename "$t")(exit $rc)"
        failed=$((failed + 1))
    fi
done
[ -n "$broken" ] && echo "died or failed outside a test:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
