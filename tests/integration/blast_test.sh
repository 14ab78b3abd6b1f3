#!/usr/bin/env bash
# blast_test.sh - `volley blast` against real receivers on loopback; see blast.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/blast.py"
