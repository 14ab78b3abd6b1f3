#!/usr/bin/env bash
# bounce_category_test.sh - bounce categories in the delivery log and DSNs, user
# rules, bad rules files (dnsmasq, `volley sink`); see bounce_category.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/bounce_category.py"
