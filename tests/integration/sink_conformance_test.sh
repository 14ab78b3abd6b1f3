#!/usr/bin/env bash
# sink_conformance_test.sh - golden transcripts replayed against `volley sink`
# (lockstep and pipelined); see sink_conformance.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/sink_conformance.py"
