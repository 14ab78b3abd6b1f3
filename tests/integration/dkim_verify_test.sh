#!/usr/bin/env bash
# dkim_verify_test.sh - DKIM signatures made by volley (enqueue, send, run --listen) verify,
# as received by `volley sink`, with dkimpy and OpenDKIM; see dkim_verify.py.
# Debian's python3 (python3-dkim is a Debian package), whatever python3 is first on PATH.
set -euo pipefail
py=/usr/bin/python3
[ -x "$py" ] || { echo "FAIL: /usr/bin/python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
"$py" -c 'import dkim' 2>/dev/null || { echo "FAIL: python3-dkim not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v opendkim-testmsg >/dev/null || [ -x /usr/sbin/opendkim-testmsg ] \
    || { echo "FAIL: opendkim-tools not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec "$py" "$(dirname "$0")/dkim_verify.py"
