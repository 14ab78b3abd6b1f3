#!/usr/bin/env bash
# bench.sh - benchmarks. Usage: scripts/bench.sh [SUITE...]
#   micro    every Google Benchmark binary in build/ (medians of 5 repetitions, JSON in bench-out/)
#   smtp     bench/smtp_bench.cc only
#   sink     volley sink vs Postfix smtp-sink under smtp-source (scripts/bench_sink.sh)
#   deliver  volley (durable queue -> sink) vs smtp-source into the same sink (scripts/bench_deliver.sh)
#   tls      volley bench into a sink without and with STARTTLS (scripts/bench_tls.sh)
#   intake   `volley run --listen` under smtp-source: msg/s, messages per fsync, latency
#            of the 250 and of delivery (scripts/bench_intake.sh)
#   http     the HTTP API (`volley run --http`): 1-recipient personalised 5 KB requests under
#            wrk (durable msg/s), one 10,000-recipient request (rcpts/s), the same load over
#            SMTP for comparison (scripts/bench_http.sh)
#   metrics  `volley bench` with the metrics registry on and off (VOLLEY_METRICS=off),
#            alternating, medians and the on/off ratio (scripts/bench_metrics.sh)
#   queue    the queue with full durability: enqueue/lease/complete (medians of 5) and the
#            1M-recipient restart (VOLLEY_BENCH_BIG=1), JSON in bench-out/queue_bench.json
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
        smtp)   # SMTP client hot paths only (reply parser, EHLO, DATA encoder, client)
            build/smtp_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
                --benchmark_out=bench-out/smtp_bench.json --benchmark_out_format=json ;;
        sink)
            scripts/bench_sink.sh ;;
        deliver)
            scripts/bench_deliver.sh ;;
        tls)
            VOLLEY_BIN=build/volley scripts/bench_tls.sh ;;
        intake)
            VOLLEY_BIN=build/volley scripts/bench_intake.sh ;;
        http)
            VOLLEY_BIN=build/volley scripts/bench_http.sh ;;
        metrics)
            VOLLEY_BIN=build/volley scripts/bench_metrics.sh ;;
        queue)
            VOLLEY_BENCH_BIG=1 build/queue_bench --benchmark_repetitions=5 \
                --benchmark_report_aggregates_only=true \
                --benchmark_out=bench-out/queue_bench.json --benchmark_out_format=json ;;
        *) echo "bench.sh: unknown suite '$s'" >&2; exit 2 ;;
    esac
done
