#!/usr/bin/env bash
# sink_faults_test.sh - `volley sink` options and fault rules end to end; see sink_faults.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/sink_faults.py"
