#!/usr/bin/env bash
# inject_source_test.sh - Postfix's smtp-source against `volley run --listen`;
# see inject_source.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v smtp-source >/dev/null || [ -x /usr/sbin/smtp-source ] || { echo "FAIL: smtp-source not installed (scripts/setup.sh installs postfix)" >&2; exit 1; }
exec python3 "$(dirname "$0")/inject_source.py"
