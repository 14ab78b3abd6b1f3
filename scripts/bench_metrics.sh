#!/usr/bin/env bash
# bench_metrics.sh - `scripts/bench.sh metrics`: what the metrics registry
# (engine/metrics, issue 15) costs delivery.
#
# `volley bench` (N messages of 10 KB, 1 recipient each over 100 domains,
# queued durably, then delivered like `volley run --until-empty` over a static
# route) into a 1-thread `volley sink`, REPS times each, alternating:
#   on:   the default: every outcome counted per shard, by domain and source,
#         commit histograms, connection and TLS counters;
#   off:  VOLLEY_METRICS=off (met_init makes nothing: one branch per update).
# Reports the medians (min..max) of msg/s, of volley's CPU s per 10,000
# messages, and the ratio on/off of the median rates (target >= 0.97).
# Output: summary on stdout, bench-out/metrics.json. Env: N (20000), REPS (5), VOLLEY_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
volley=${VOLLEY_BIN:-build/volley}
n=${N:-20000} reps=${REPS:-5}
. scripts/bench_lib.sh
bench_need "build first" "$volley"
bench_init

# one_run on|off: prints the bench JSON line
one_run() {
    bench_sink_start "$tmp/sink.out" "$tmp/sink.err" --threads 1
    rm -rf "$tmp/q"
    VOLLEY_METRICS="$1" "$volley" bench --data "$tmp/q" --messages "$n" --size 10240 \
        --route "*=127.0.0.1:$sink_port" --quiet 2>/dev/null | grep '^{"bench"'
    bench_sink_stop
}

: >"$tmp/runs"
# A run that did not deliver everything is run again, up to 2 times, and said.
for r in $(seq "$reps"); do
    for mode in on off; do
        for try in 1 2 3; do
            line=$(one_run "$mode")
            if python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(r["delivered"] != r["messages"])' "$line"; then
                break
            fi
            echo "bench_metrics: $mode run $r try $try did not deliver everything, run again: $line" >&2
        done
        echo "$mode $line" >>"$tmp/runs"
    done
done
mkdir -p bench-out
python3 - "$tmp/runs" "$n" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    mode, js = line.split(" ", 1)
    runs.setdefault(mode, []).append(json.loads(js))
out = {"bench": "metrics", "messages": int(sys.argv[2])}
for mode in ("on", "off"):
    rs = runs[mode]
    rate = [r["msg_per_s"] for r in rs]
    cpu = [r["cpu_s_per_10k"] for r in rs]
    if not all(r["delivered"] == r["messages"] for r in rs):
        sys.exit("bench_metrics: not everything delivered: %r" % rs)
    out[mode] = {"msg_per_s_median": statistics.median(rate), "msg_per_s_min": min(rate),
                 "msg_per_s_max": max(rate), "cpu_s_per_10k_median": statistics.median(cpu),
                 "cpu_s_per_10k_min": min(cpu), "cpu_s_per_10k_max": max(cpu), "runs": len(rs)}
    print("metrics %-3s %8.0f msg/s (%.0f..%.0f)  %.3f CPU s/10k (%.3f..%.3f)" % (
        mode, statistics.median(rate), min(rate), max(rate), statistics.median(cpu),
        min(cpu), max(cpu)))
ratio = out["on"]["msg_per_s_median"] / out["off"]["msg_per_s_median"]
out["ratio_on_off"] = ratio
print("ratio on/off of the median rates: %.3f (target >= 0.97)" % ratio)
json.dump(out, open("bench-out/metrics.json", "w"), indent=1)
PY
