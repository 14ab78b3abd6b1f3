#!/usr/bin/env bash
# bench_tls.sh - `scripts/bench.sh tls`: what opportunistic STARTTLS costs end to end.
#
# `volley bench` (N messages of 10 KB, 1 recipient each, queued durably, then
# delivered like `volley run --until-empty` over a static route) into a 1-thread
# `volley sink`, REPS times each, alternating:
#   plain:  the sink offers no STARTTLS (volley's default level `may` stays plaintext);
#   tls:    the sink offers STARTTLS with a self-signed RSA-2048 certificate made by
#           `openssl req` here: every connection does a full TLS handshake (no
#           resumption yet) and the whole dialogue is encrypted both ways.
# Reports medians (min..max) of msg/s and of volley's CPU seconds per 10,000
# messages. The sink shares the machine: its TLS work slows the wall clock too.
# Output: summary on stdout, bench-out/tls.json. Env: N (20000), REPS (5), VOLLEY_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
volley=${VOLLEY_BIN:-build/volley}
n=${N:-20000} reps=${REPS:-5}
[ -x "$volley" ] || { echo "bench_tls: $volley missing (build first)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "bench_tls: openssl CLI missing (scripts/setup.sh)" >&2; exit 1; }
. scripts/bench_lib.sh
bench_init
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench.volley.test" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1

# one_run MODE: prints the bench JSON line
one_run() {
    local args=()
    [ "$1" = tls ] && args=(--tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem")
    bench_sink_start "$tmp/sink.out" "$tmp/sink.err" --threads 1 "${args[@]}"
    local port=$sink_port
    rm -rf "$tmp/q"
    "$volley" bench --data "$tmp/q" --messages "$n" --size 10240 --route "*=127.0.0.1:$port" \
        --quiet 2>/dev/null | grep '^{"bench"'
    bench_sink_stop
}

: >"$tmp/runs"
for r in $(seq "$reps"); do
    for mode in plain tls; do
        echo "$mode $(one_run "$mode")" >>"$tmp/runs"
    done
done
mkdir -p bench-out
python3 - "$tmp/runs" "$n" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    mode, js = line.split(" ", 1)
    runs.setdefault(mode, []).append(json.loads(js))
out = {"bench": "tls", "messages": int(sys.argv[2])}
for mode, rs in runs.items():
    rate = [r["msg_per_s"] for r in rs]
    cpu = [r["cpu_s_per_10k"] for r in rs]
    assert all(r["delivered"] == r["messages"] for r in rs), rs
    out[mode] = {"msg_per_s_median": statistics.median(rate), "msg_per_s_min": min(rate),
                 "msg_per_s_max": max(rate), "cpu_s_per_10k_median": statistics.median(cpu),
                 "cpu_s_per_10k_min": min(cpu), "cpu_s_per_10k_max": max(cpu), "runs": len(rs)}
    print("%-5s %8.0f msg/s (%.0f..%.0f)  %.3f CPU s/10k (%.3f..%.3f)" % (
        mode, statistics.median(rate), min(rate), max(rate), statistics.median(cpu),
        min(cpu), max(cpu)))
json.dump(out, open("bench-out/tls.json", "w"), indent=1)
PY
