#!/usr/bin/env bash
# queue_quarantine_test.sh - issue 9 item 6: a corrupt body or record on disk
# is named by `volley queue check` and quarantined by `volley run`, which
# delivers the rest; see queue_quarantine.py. The bytes are changed with
# python3's lmdb module (Debian python3-lmdb, installed by scripts/setup.sh):
# the first python3 on PATH that has it runs the test.
set -euo pipefail
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
py=""
for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import lmdb' 2>/dev/null; then
        py="$p"
        break
    fi
done
[ -n "$py" ] || { echo "FAIL: no python3 with the lmdb module (scripts/setup.sh installs python3-lmdb)" >&2; exit 1; }
exec "$py" "$(dirname "$0")/queue_quarantine.py"
