#!/usr/bin/env bash
# deliver_limits_test.sh - issue 9 items 7 (a local DNS cap makes work wait) and
# 8 (slow receivers, unreadable replies after the dot); see deliver_limits.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/deliver_limits.py"
