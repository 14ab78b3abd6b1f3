#!/usr/bin/env bash
# inject_tls_test.sh - STARTTLS on the SMTP intake; see inject_tls.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "FAIL: openssl CLI not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/inject_tls.py"
