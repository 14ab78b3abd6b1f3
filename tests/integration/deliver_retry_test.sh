#!/usr/bin/env bash
# deliver_retry_test.sh - transient failures (452 cap, 451 at the dot, closes, mid-DATA
# disconnects) retried over several runs: exactly once in the end;
# see deliver_retry.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/deliver_retry.py"
