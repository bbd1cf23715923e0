#!/bin/sh
# run-fuzz.sh - build the libFuzzer harnesses with clang and run each for
# SECONDS on a copy of its committed corpus (the seeds and the regression
# cases); print the executions per harness. A crash stops with the input
# left in the work directory (replay it with BUILD/tests/fuzz/fuzz-NAME).
#
#   tests/fuzz/run-fuzz.sh [SECONDS] [BUILD_DIR] [NAME...]
#                          (default 20 s, build-fuzz, every harness)
#
# Longer runs: tests/fuzz/run-fuzz.sh 3600, or one harness:
# tests/fuzz/run-fuzz.sh 3600 build-fuzz milter; new interesting inputs
# stay in BUILD_DIR/fuzz-corpus/NAME for the next run. FUZZ_WORKERS=N
# runs N fuzzers of each harness at once on its one corpus directory
# (they pick up each other's finds) and adds up their executions; each
# writes BUILD_DIR/fuzz-NAME.K.log. tests/fuzz/NAME.dict, when there is
# one, is the harness's dictionary (-dict). Needs clang and
# libclang-rt-14-dev (contrib/install-deps.sh --test).
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-20}
build=${2:-build-fuzz}
[ $# -gt 2 ] && shift 2 || set -- mailaddr addr dns spf setting logline helo milter
jobs=$(nproc 2>/dev/null || echo 2)
workers=${FUZZ_WORKERS:-1}
case $workers in
''|*[!0-9]*|0) echo "run-fuzz: FUZZ_WORKERS must be a positive number" >&2
    exit 2 ;;
esac
CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSG_FUZZ=ON >/dev/null
cmake --build "$build" -j "$jobs" >/dev/null
# The harnesses of CMakeLists.txt's SG_FUZZERS (or those named), SECONDS
# each.
for f in "$@"; do
    [ -x "$build/tests/fuzz/fuzz-$f" ] || {
        echo "run-fuzz: no harness $f (see SG_FUZZERS in tests/fuzz/CMakeLists.txt)" >&2
        exit 2
    }
    work="$build/fuzz-corpus/$f"
    mkdir -p "$work"
    cp tests/fuzz/corpus/$f/* tests/fuzz/regress/$f/* "$work"/
    # A dictionary of the harness's words when there is one (NAME.dict).
    dict=
    [ -f "tests/fuzz/$f.dict" ] && dict="-dict=tests/fuzz/$f.dict"
    # One fuzzer per worker, all on the same corpus directory.
    k=1
    while [ "$k" -le "$workers" ]; do
        "$build/tests/fuzz/fuzz-$f" -max_total_time="$secs" \
            -max_len=8192 -print_final_stats=1 $dict \
            -artifact_prefix="$build/" "$work" \
            >"$build/fuzz-$f.$k.log" 2>&1 &
        eval "pid$k=\$!"
        k=$((k + 1))
    done
    failed=0 execs=0 rate=0 k=1
    while [ "$k" -le "$workers" ]; do
        eval "wait \$pid$k" || {
            tail -40 "$build/fuzz-$f.$k.log"
            failed=1
        }
        log="$build/fuzz-$f.$k.log"
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        r=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        execs=$((execs + ${n:-0})) rate=$((rate + ${r:-0}))
        k=$((k + 1))
    done
    [ "$failed" = 0 ] || {
        echo "run-fuzz: fuzz-$f FAILED (input saved under $build/)" >&2
        exit 1
    }
    echo "run-fuzz: fuzz-$f: $execs executions in ${secs} s ($rate/s," \
        "$workers worker(s))"
done
