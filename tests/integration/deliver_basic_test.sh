#!/usr/bin/env bash
# deliver_basic_test.sh - delivery end to end over loopback with dnsmasq and
# `volley sink`: exactly once, pipelining/lockstep, connection reuse, domains and
# shards; see deliver_basic.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "skip: python3 not installed"; exit 77; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "skip: dnsmasq not installed"; exit 77; }
exec python3 "$(dirname "$0")/deliver_basic.py"
