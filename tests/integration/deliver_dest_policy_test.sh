#!/usr/bin/env bash
# deliver_dest_policy_test.sh - issue 9 item 9: the destination policy (--allow-dest);
# see deliver_dest_policy.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/deliver_dest_policy.py"
