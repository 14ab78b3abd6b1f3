#!/usr/bin/env bash
# admin_route_test.sh - operator holds by MX provider group and by egress
# address (issue 15) at a real sink through dnsmasq; see admin_route.py.
set -euo pipefail
for t in python3 dnsmasq; do
    command -v "$t" >/dev/null || { echo "FAIL: $t not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done
exec python3 "$(dirname "$0")/admin_route.py"
