#!/usr/bin/env bash
# shaping_test.sh - destination shaping end to end: see shaping.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/shaping.py"
