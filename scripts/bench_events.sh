#!/usr/bin/env bash
# bench_events.sh - `scripts/bench.sh events`: delivery throughput with webhook +
# RabbitMQ delivery events on vs off in one run, and the outbox's drain rate
# (scripts/bench_events.py; env N (60000), REPS (8), S, VOLLEY_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/bench_events.py
