#!/usr/bin/env bash
# retry_faults_test.sh - retries, host backoff and ambiguous deliveries end to
# end with dnsmasq and `volley sink` faults; see retry_faults.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "skip: python3 not installed"; exit 77; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "skip: dnsmasq not installed"; exit 77; }
exec python3 "$(dirname "$0")/retry_faults.py"
