#!/usr/bin/env bash
# bench_shaping.sh - `scripts/bench.sh shaping`: adaptive vs fixed-rate shaping
# against 5 modelled providers (volley sink --model) on 127.0.0.2-6; see
# scripts/bench_shaping.py for what is measured. Bounded: REPS x 2 modes x
# RUN_S seconds (defaults 3 x 2 x 120 s, plus enqueueing). Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "bench_shaping: python3 missing (scripts/setup.sh)" >&2; exit 1; }
command -v dnsmasq >/dev/null || { echo "bench_shaping: dnsmasq missing (scripts/setup.sh)" >&2; exit 1; }
exec python3 scripts/bench_shaping.py
