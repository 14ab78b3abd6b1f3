#!/usr/bin/env bash
# deliver_cli_test.sh - `volley send` end to end (dnsmasq, `volley sink`) and bad
# run/send input (exit 2, message naming the option, nothing queued);
# see deliver_cli.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/deliver_cli.py"
