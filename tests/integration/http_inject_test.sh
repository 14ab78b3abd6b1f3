#!/usr/bin/env bash
# http_inject_test.sh - `volley run --http`: the HTTP API (access, stats, InjectV1
# builder and raw content, merge fields, MIME checked with Python's email
# package, every 400, durability of the 200); see http_inject.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/http_inject.py"
