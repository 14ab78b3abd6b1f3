#!/usr/bin/env bash
# deliver_failures_test.sh - delivery failures end to end (dnsmasq, `volley sink`):
# SIZE 5.3.4, partial 550, 421 banner -> second MX, null MX, NXDOMAIN, DSNs;
# see deliver_failures.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/deliver_failures.py"
