#!/usr/bin/env bash
# cli_truth_test.sh - issue 10 "A CLI that tells the truth": every item
# (1 total failure, 2 interrupts, 3 counters, 4 DSN floods, 5 duplicate
# recipients, 6 earlier mail in send, 7 run on an empty data dir, 8 small
# ones, 9 long lines, and the documented exit codes), each from the user's
# side: command, output, exit code. See cli_truth.py and
# cli_truth_outcomes.py (CLI_TRUTH_CASE=name runs one case).
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/cli_truth.py"
