#!/usr/bin/env bash
# inject_basic_test.sh - `volley run --listen`: SMTP in (smtplib, swaks, raw),
# delivered to `volley sink` byte-identical apart from Received:; see inject_basic.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v swaks >/dev/null || { echo "FAIL: swaks not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/inject_basic.py"
