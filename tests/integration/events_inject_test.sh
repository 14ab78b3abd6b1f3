#!/usr/bin/env bash
# events_inject_test.sh - "injected" events (issue 16): mail taken over SMTP
# and over the HTTP API by `volley run --listen --http --events-webhook`
# reaches a Python webhook receiver as one "injected" event per recipient,
# before that recipient's "delivered" event; see events_inject.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/events_inject.py"
