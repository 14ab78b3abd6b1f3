#!/usr/bin/env bash
# dsn_faults_test.sh - bounces and DSNs (parsed by Python's email package) end to
# end with dnsmasq and `volley sink` faults; see dsn_faults.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/dsn_faults.py"
