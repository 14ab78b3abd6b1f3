#!/usr/bin/env bash
# deliver_basic_test.sh - delivery end to end over loopback with dnsmasq and
# `volley sink`: exactly once, pipelining/lockstep, connection reuse, domains and
# shards; see deliver_basic.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/deliver_basic.py"
