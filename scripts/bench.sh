#!/usr/bin/env bash
# bench.sh - benchmarks. Usage: scripts/bench.sh [SUITE...]
#   micro    every Google Benchmark binary in build/ (medians of 5 repetitions, JSON in bench-out/)
#   queue    the queue with full durability: enqueue/lease/complete (medians of 5) and the
#            1M-recipient restart (VOLLEY_BENCH_BIG=1), JSON in bench-out/queue_bench.json
# Further suites (sink, deliver, queue) are added by the issues that need them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
mkdir -p bench-out
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(micro)
for s in "${suites[@]}"; do
    case "$s" in
        micro)
            for b in build/*_bench; do
                [ -x "$b" ] || continue
                n=$(basename "$b")
                "$b" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
                     --benchmark_out="bench-out/$n.json" --benchmark_out_format=json
            done ;;
        queue)
            VOLLEY_BENCH_BIG=1 build/queue_bench --benchmark_repetitions=5 \
                --benchmark_report_aggregates_only=true \
                --benchmark_out=bench-out/queue_bench.json --benchmark_out_format=json ;;
        *) echo "bench.sh: unknown suite '$s'" >&2; exit 2 ;;
    esac
done
