#!/bin/sh
# run-all.sh - the whole test suite: build, unit and integration tests, then
# the same again built with AddressSanitizer and UndefinedBehaviorSanitizer.
#
# Integration tests start a private Postfix, rsyslog and smtpguard on
# loopback and need root (for Postfix) and the packages of
# contrib/install-deps.sh --test. Last, the integration suite runs once more
# with every smtpguard under valgrind's memcheck: an error or a definite
# leak fails the test that stops it.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

run_suite() {
    dir=$1; shift
    echo "=== $dir: configure and build"
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
    echo "=== $dir: tests"
    (cd "$dir" && ctest --output-on-failure --timeout 600)
}

run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
# Check's fork mode hides leaks from LeakSanitizer: run unforked.
CK_FORK=no ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DSG_SANITIZE=ON
echo "=== build: integration tests under valgrind memcheck"
(cd build && SGITEST_VALGRIND=1 SG_CRASH_CYCLES=20 \
    ctest -L integration --output-on-failure --timeout 900)
echo "=== all tests passed"
