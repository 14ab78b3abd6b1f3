#!/usr/bin/env bash
# doctor_test.sh - `volley doctor` against dnsmasq serving a good domain and one
# domain per broken record (MX, SPF, DKIM, DMARC, PTR, MTA-STS); see doctor_check.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "FAIL: openssl not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/doctor_check.py"
