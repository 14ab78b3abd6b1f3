#!/usr/bin/env bash
# deliver_cli_test.sh - `volley send` end to end (dnsmasq, `volley sink`) and bad
# run/send input (exit 2, message naming the option, nothing queued);
# see deliver_cli.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "skip: python3 not installed"; exit 77; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "skip: dnsmasq not installed"; exit 77; }
exec python3 "$(dirname "$0")/deliver_cli.py"
