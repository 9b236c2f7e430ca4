#!/bin/sh
# Runs every test program given, shows each one's output, and ends with the
# one summary line CI reads: "N passed, N failed". A program reports through
# cmocka's summary lines or, if it is not a cmocka binary, through its own
# last "N passed, N failed" line. One that dies before reporting counts as
# one failure under its own name.
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
        plain=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
        p=$(printf '%s' "$plain" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
        f=$(printf '%s' "$plain" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')
    fi
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
