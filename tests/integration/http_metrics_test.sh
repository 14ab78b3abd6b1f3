#!/usr/bin/env bash
# http_metrics_test.sh - GET /metrics (issue 15): after a real delivery run the text
# passes `promtool check metrics` and its counts match the sink and the
# delivery log; a real Prometheus server (started here on loopback, stopped by
# PID) scrapes it and its query API returns the delivered count; see http_metrics.py.
set -euo pipefail
for t in python3 promtool prometheus; do
    command -v "$t" >/dev/null || { echo "FAIL: $t not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done
exec python3 "$(dirname "$0")/http_metrics.py"
