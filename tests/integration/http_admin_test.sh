#!/usr/bin/env bash
# http_admin_test.sh - operator actions against a running engine (issue 15):
# `volley admin` and /api/v1/admin: a suspended destination receives nothing
# at the sink, the suspension survives a restart, everything arrives after
# resume; bounce by domain yields one DSN per message, purge none; each action
# logged; see http_admin.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/http_admin.py"
