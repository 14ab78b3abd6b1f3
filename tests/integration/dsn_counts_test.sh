#!/usr/bin/env bash
# dsn_counts_test.sh - issue 9 item 4: every bounced recipient in exactly one DSN,
# whatever the counts (250 recipients, 1100 messages). See dsn_counts.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/dsn_counts.py"
