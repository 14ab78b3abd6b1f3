#!/usr/bin/env bash
# fbl_report_test.sh - an ARF feedback report at the SMTP listener -> complaint
# record -> signed "complaint" webhook event; see fbl_report.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/fbl_report.py"
