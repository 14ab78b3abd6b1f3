#!/usr/bin/env bash
# commit_fail_test.sh - issue 9 item 2: failing commits (a full tmpfs made by
# the test) neither re-send mail nor lose it; give-up exits 1. See commit_fail.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v mount >/dev/null || { echo "FAIL: mount not installed" >&2; exit 1; }
exec python3 "$(dirname "$0")/commit_fail.py"
