#!/usr/bin/env bash
# bench_smoke.sh BENCH_BINARY - run every benchmark of one Google Benchmark binary
# once, briefly, and fail if any of them reported an error (SkipWithError):
# a benchmark that could not run is a failed smoke test, never a pass.
set -euo pipefail
bin=${1:?usage: bench_smoke.sh BENCH_BINARY}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" --benchmark_min_time=0.01 --benchmark_repetitions=1 \
       --benchmark_format=console --benchmark_out="$out" --benchmark_out_format=json
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["benchmarks"]))' "$out")
errors=$(python3 -c '
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("error_occurred"):
        print("%s: %s" % (b["name"], b.get("error_message", "")))' "$out")
if [ -n "$errors" ]; then
    echo "bench_smoke: benchmarks that could not run (SkipWithError):" >&2
    echo "$errors" >&2
    exit 1
fi
[ "$n" -gt 0 ] || { echo "bench_smoke: $bin ran no benchmark" >&2; exit 1; }
echo "bench_smoke: $n benchmarks ran, none with an error"
