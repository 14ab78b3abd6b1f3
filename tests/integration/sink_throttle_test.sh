#!/usr/bin/env bash
# sink_throttle_test.sh - `volley sink --model FILE`: see sink_throttle.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/sink_throttle.py"
