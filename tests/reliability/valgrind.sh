#!/bin/sh
# make valgrind: every program given, under memcheck with a full leak check;
# a definite or indirect leak or any memory error fails it. Programs under
# the reliability directory get the fault shim preloaded (disarmed unless
# they arm it), so they do not re-exec themselves out of valgrind's sight.
# Forked children stay under valgrind and are checked at their exit too.
# usage: valgrind.sh SHIM PROGRAM...
set -u
shim=$1
shift
passed=0 failed=0
for p in "$@"; do
    args= preload= vgopts=
    case $p in
    */reliability/soak) args="--runs 300" ;;
    # Two threads, one flipping a path as fast as it can: fair scheduling,
    # or memcheck lets the flipper starve the script for many minutes.
    */reliability/confine) args="--loops 10" vgopts=--fair-sched=yes ;;
    esac
    case $p in
    */reliability/*) preload=$shim ;;
    esac
    log="$p.valgrind.log"
    start=$(date +%s)
    # shellcheck disable=SC2086
    LD_PRELOAD=$preload valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=1 --suppressions=tests/reliability/valgrind.supp $vgopts \
        "$p" $args >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "valgrind $(basename "$p"): clean (${took} s)"
    else
        failed=$((failed + 1))
        echo "valgrind $(basename "$p"): FAILED (exit $rc, ${took} s); $log:"
        grep -v '^\[ \|^$' "$log" | tail -n 40
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
