#!/usr/bin/env bash
# config_live_test.sh - SIGHUP applies a new config to a running engine: see config_live.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/config_live.py"
