#!/usr/bin/env bash
# sink_conformance_test.sh - golden transcripts replayed against `volley sink`
# (lockstep and pipelined); see sink_conformance.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "skip: python3 not installed"; exit 77; }
exec python3 "$(dirname "$0")/sink_conformance.py"
