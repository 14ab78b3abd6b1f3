#!/usr/bin/env bash
# events_metrics_test.sh - bounce categories counted in GET /metrics
# (volley_bounces_total{category,kind}), checked against the delivery log and by
# promtool; see events_metrics.py.
set -euo pipefail
for t in python3 promtool; do
    command -v "$t" >/dev/null || { echo "FAIL: $t not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done
exec python3 "$(dirname "$0")/events_metrics.py"
