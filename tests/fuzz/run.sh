#!/bin/sh
# make fuzz: runs each libFuzzer target for a bounded time from its seed
# corpus (tests/fuzz/<target>/, read only) and a working corpus under the
# build directory; prints one line per target and fails on any crash, leak,
# hang or broken invariant, leaving the reproducer in <build>/artifacts/.
# usage: run.sh BUILD_DIR SECONDS TARGET...
set -u
build=$1 seconds=$2
shift 2
status=0
for t in "$@"; do
    corpus="$build/corpus/$t"
    mkdir -p "$corpus" "$build/artifacts"
    log="$build/$t.log"
    dict=
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    # shellcheck disable=SC2086
    "$build/fuzz_$t" $dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
        "$corpus" "tests/fuzz/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    if [ "$rc" -ne 0 ]; then
        echo "fuzz $t: FAILED (exit $rc); reproducer and log:"
        ls "$build/artifacts/$t-"* 2>/dev/null
        tail -n 60 "$log"
        status=1
    else
        echo "fuzz $t: ${runs:-?} executions in $seconds s, coverage ${cov:-?} edges, corpus $(ls "$corpus" | wc -l) + $(ls "tests/fuzz/$t" | wc -l) seeds"
    fi
done
exit $status
