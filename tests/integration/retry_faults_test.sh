#!/usr/bin/env bash
# retry_faults_test.sh - retries, host backoff and ambiguous deliveries end to
# end with dnsmasq and `volley sink` faults; see retry_faults.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/retry_faults.py"
