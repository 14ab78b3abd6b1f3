#!/usr/bin/env bash
# bench.sh - benchmarks. Usage: scripts/bench.sh [SUITE...]
#   micro    every Google Benchmark binary in build/ (medians of 5 repetitions, JSON in bench-out/)
#   smtp     bench/smtp_bench.cc only
#   sink     volley sink vs Postfix smtp-sink under smtp-source (scripts/bench_sink.sh)
#   deliver  volley (durable queue -> sink) vs smtp-source into the same sink (scripts/bench_deliver.sh)
#   tls      volley bench into a sink without and with STARTTLS (scripts/bench_tls.sh)
#   intake   smtp-source into `volley run --listen --hold` (durable), `volley sink` and a
#            private Postfix (hold queue): msg/s, CPU/msg, ratios; inject -> remote 250
#            latency, 1 and 100 clients, with its breakdown (scripts/bench_intake.sh)
#   blast    volley blast vs Postfix smtp-source at full speed into volley sink and smtp-sink:
#            msg/s and sender CPU per message (scripts/bench_blast.sh)
#   http     the HTTP API (`volley run --http`): 1-recipient personalised 5 KB requests under
#            wrk (durable msg/s), one 10,000-recipient request (rcpts/s), the same load over
#            SMTP for comparison (scripts/bench_http.sh)
#   shaping  adaptive vs fixed-rate shaping against 5 modelled providers (volley sink
#            --model), 100,000 recipients; achieved rate vs limit, deferred share
#            (scripts/bench_shaping.sh; ~15 min)
#   dkim     DKIM signatures/s (RSA-2048, Ed25519, 10 KB) next to `openssl speed` in the
#            same run, and a signed vs unsigned shared-body campaign end to end
#            (scripts/bench_dkim.sh; bench-out/dkim.json)
#   events   delivery with webhook + RabbitMQ events on vs off (ratio), and the events/s
#            the outbox sustains (scripts/bench_events.sh, issue 16)
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
        blast)
            VOLLEY_BIN=build/volley scripts/bench_blast.sh ;;
        http)
            VOLLEY_BIN=build/volley scripts/bench_http.sh ;;
        shaping)
            VOLLEY_BIN=build/volley scripts/bench_shaping.sh ;;
        dkim)
            VOLLEY_BIN=build/volley scripts/bench_dkim.sh ;;
        events)
            VOLLEY_BIN=build/volley scripts/bench_events.sh ;;
        metrics)
            VOLLEY_BIN=build/volley scripts/bench_metrics.sh ;;
        queue)
            VOLLEY_BENCH_BIG=1 build/queue_bench --benchmark_repetitions=5 \
                --benchmark_report_aggregates_only=true \
                --benchmark_out=bench-out/queue_bench.json --benchmark_out_format=json ;;
        *) echo "bench.sh: unknown suite '$s'" >&2; exit 2 ;;
    esac
done
