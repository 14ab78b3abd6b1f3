#!/usr/bin/env bash
# cli_truth_test.sh - issue 10 "A CLI that tells the truth", the CLI items
# (5 duplicate recipients, 7 run on an empty data dir, 8 small ones, 9 long
# lines), each from the user's side: command, output, exit code. See
# cli_truth.py (CLI_TRUTH_CASE=name runs one case).
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/cli_truth.py"
