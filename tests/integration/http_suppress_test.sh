#!/usr/bin/env bash
# http_suppress_test.sh - the suppression list: `volley suppress` (add, rm, ls,
# export/import CSV round trip, errors) and its check at HTTP injection
# (failed_recipients with the reason, global and per sending domain, beside a
# running engine) and at SMTP RCPT (550 5.7.1); see http_suppress.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/http_suppress.py"
