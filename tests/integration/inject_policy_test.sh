#!/usr/bin/env bash
# inject_policy_test.sh - the SMTP intake's relay policy, limits, deadlines,
# smuggling and vanished clients; see inject_policy.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/inject_policy.py"
