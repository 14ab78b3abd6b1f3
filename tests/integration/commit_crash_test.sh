#!/usr/bin/env bash
# commit_crash_test.sh - kill -9 `volley run` while outcomes are committed:
# exactly one DSN per failed recipient, no re-send after a commit; see commit_crash.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/commit_crash.py"
