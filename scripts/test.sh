#!/usr/bin/env bash
# test.sh - the README's test command (and all that CI runs):
#   1. install dependencies (setup.sh)
#   2. release build (RelWithDebInfo, -Werror) and the whole ctest suite
#   3. clang Release build (-Werror): the project builds warning-free with clang too
#   4. ASan+UBSan build: the unit tests, then the integration tests with the
#      sanitized volley binary (engine, sink and queue paths under real traffic)
#   5. bounded fuzzing: every libFuzzer target of tests/fuzz for FUZZ_SECONDS
#      (default 20) seconds each (scripts/fuzz.sh; executions per target printed)
# A test that cannot run because a tool is missing fails; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

scripts/setup.sh

# Every ctest run's summary goes to $counts too, for the closing line.
counts=$(mktemp)
trap 'rm -f "$counts"' EXIT
run_ctest() {   # run_ctest DIR ARGS...: ctest in DIR; its output also to $counts
    local dir=$1
    shift
    (cd "$dir" && ctest --output-on-failure -j"$jobs" "$@") | tee -a "$counts"
}

echo "== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVOLLEY_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
echo "== ctest (all)"
run_ctest build --timeout 600

echo "== clang Release build"
CC=clang CXX=clang++ cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Release -DVOLLEY_WERROR=ON \
    -DVOLLEY_BENCH=OFF >/dev/null
cmake --build build-clang -j"$jobs"

echo "== sanitizer build (ASan+UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVOLLEY_SANITIZE=address -DVOLLEY_BENCH=OFF \
    -DVOLLEY_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp   # third-party leaks only (libconfig)
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== ctest (unit, sanitizers)"
run_ctest build-asan -L unit --timeout 600
echo "== ctest (integration, sanitizers)"
run_ctest build-asan -L integration --timeout 900
echo "== fuzz (bounded)"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
echo "== all tests passed ($root)"
# One plain closing line over the three ctest runs (a failure has exited above).
total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$counts" |
        awk '{n += $1} END {print n + 0}')
echo "ctest: $total passed, 0 failed"
