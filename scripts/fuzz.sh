#!/usr/bin/env bash
# fuzz.sh - build the libFuzzer targets (tests/fuzz, clang, ASan+UBSan) and run
# each one for a bounded time on a copy of its seed corpus.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 300 s, all targets)
#   e.g. scripts/fuzz.sh 60 smtp_reply dns_parse
#
# Build tree: build-fuzz/ (FUZZ_BUILD overrides). Each run works in
# build-fuzz/fuzz-run/<target>/: corpus/ (the copy, grown by the run: the repo's
# tests/fuzz/corpus is never modified) and the crash-*/leak-*/timeout-*/oom-*
# inputs libFuzzer writes. Prints per target the executions
# (stat::number_of_executed_units) and the crashes; exits 1 if any target
# crashed. A crash input belongs in tests/fuzz/corpus/<target>/ once fixed: the
# fuzz_replay_<target> tests replay it in every build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

secs=${1:-300}
[ $# -gt 0 ] && shift
case "$secs" in ''|*[!0-9]*) echo "fuzz.sh: SECONDS_PER_TARGET must be a number" >&2; exit 2 ;; esac

all=()
for f in tests/fuzz/*_fuzz.c; do
    b=$(basename "$f" _fuzz.c)
    all+=("$b")
done
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
for t in "${targets[@]}"; do
    [ -f "tests/fuzz/${t}_fuzz.c" ] || { echo "fuzz.sh: no target '$t' (known: ${all[*]})" >&2; exit 2; }
done

for tool in clang clang++ cmake; do
    command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool missing (scripts/setup.sh)" >&2; exit 1; }
done

build=${FUZZ_BUILD:-build-fuzz}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DVOLLEY_SANITIZE=address -DVOLLEY_FUZZ=ON -DVOLLEY_BENCH=OFF -DVOLLEY_WERROR=ON >/dev/null
cmake --build "$build" -j"$jobs" --target fuzz_all >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp}   # third-party leaks only
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
summary=()
for t in "${targets[@]}"; do
    run="$build/fuzz-run/$t"
    rm -rf "$run"
    mkdir -p "$run"
    cp -r "tests/fuzz/corpus/$t" "$run/corpus"
    seeds=$(find "$run/corpus" -type f | wc -l)
    echo "== fuzz $t: ${secs}s, $seeds seed inputs"
    rc=0
    "$build/${t}_fuzz" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$run/" "$run/corpus" >"$run/log" 2>&1 || rc=$?
    execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$run/log" | tail -1)
    crashes=$(find "$run" -maxdepth 1 -type f \
              \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    corpus=$(find "$run/corpus" -type f | wc -l)
    if [ "$rc" != 0 ] || [ "$crashes" != 0 ] || [ -z "$execs" ]; then
        failed=1
        echo "fuzz $t: FAILED (exit $rc, $crashes crash inputs in $run/); log tail:"
        grep -E 'ERROR|invariant|assertion|runtime error|SUMMARY|Test unit written' "$run/log" \
            | tail -8 || true
    fi
    line=$(printf '%-12s executions %10s  crashes %d  corpus %d -> %d' \
           "$t" "${execs:-?}" "$crashes" "$seeds" "$corpus")
    echo "$line"
    summary+=("$line")
done

echo "== fuzz summary (${secs}s per target, $build/fuzz-run)"
printf '%s\n' "${summary[@]}"
if [ "$failed" != 0 ]; then
    echo "fuzz.sh: a target crashed (inputs under $build/fuzz-run/<target>/)" >&2
    exit 1
fi
