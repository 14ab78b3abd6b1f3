#!/usr/bin/env bash
# http_top_test.sh - `volley top` (issue 15) driven in a real tmux session: after
# a delivery run its screen shows the queue totals and one row per destination
# domain with the delivered/bounced counts; --once prints the same frame; see
# http_top.py.
set -euo pipefail
for t in python3 tmux; do
    command -v "$t" >/dev/null || { echo "FAIL: $t not installed (scripts/setup.sh installs it)" >&2; exit 1; }
done
exec python3 "$(dirname "$0")/http_top.py"
