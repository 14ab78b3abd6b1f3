#!/usr/bin/env bash
# http_unsub_test.sh - RFC 8058 one-click unsubscribe end to end: the
# List-Unsubscribe URL taken from the message the sink received, POSTed (curl
# and http.client), the address then refused; tampered tokens 404; see
# http_unsub.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/http_unsub.py"
