#!/usr/bin/env bash
# inject_kill9_test.sh - every message whose 250 went out survives SIGKILL of
# `volley run --listen` (20 kills at random moments); see inject_kill9.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/inject_kill9.py"
