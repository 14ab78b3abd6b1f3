#!/usr/bin/env bash
# inject_storage_test.sh - the SMTP intake on a full disk (452 4.3.1, resumes
# by itself); see inject_storage.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/inject_storage.py"
