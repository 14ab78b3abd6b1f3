#!/usr/bin/env bash
# events_webhook_test.sh - delivery events to a webhook: receiver outage and
# recovery, kill -9 of volley mid-run (dnsmasq, `volley sink`, a Python
# receiver checking HMAC signatures); see events_webhook.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/events_webhook.py"
