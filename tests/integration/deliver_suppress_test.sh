#!/usr/bin/env bash
# deliver_suppress_test.sh - the suppression list at delivery: a recipient
# suppressed after it was queued is dropped (delivery-log event "suppressed",
# no DSN, never sent), global and per sending domain; 5.1.1 bounces feed the
# list; see deliver_suppress.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/deliver_suppress.py"
