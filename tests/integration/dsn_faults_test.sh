#!/usr/bin/env bash
# dsn_faults_test.sh - bounces and DSNs (parsed by Python's email package) end to
# end with dnsmasq and `volley sink` faults; see dsn_faults.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "skip: python3 not installed"; exit 77; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "skip: dnsmasq not installed"; exit 77; }
exec python3 "$(dirname "$0")/dsn_faults.py"
