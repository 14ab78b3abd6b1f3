#!/usr/bin/env bash
# ack_sync_test.sh - acknowledgements (enqueue's "queued", the delivery log's
# "delivered") come only after the fdatasync of the data they acknowledge;
# proven from strace's system-call order, see ack_sync.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v strace >/dev/null || { echo "FAIL: strace not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/ack_sync.py"
