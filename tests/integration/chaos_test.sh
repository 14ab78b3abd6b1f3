#!/usr/bin/env bash
# chaos_test.sh - the engine under chaos (issue 9): kill -9 with faulty sinks, a
# full disk during commits, >1024 DSNs in one commit; see chaos.py. CHAOS_SEED=N replays,
# CHAOS_CASE=kill9|disk_full|dsn_flood runs one case. Needs root (it mounts a tmpfs).
set -euo pipefail
need="(scripts/setup.sh installs it)"
command -v python3 >/dev/null || { echo "FAIL: python3 not installed $need" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] ||
    { echo "FAIL: dnsmasq not installed $need" >&2; exit 1; }
command -v mount >/dev/null || { echo "FAIL: mount not installed" >&2; exit 1; }
exec python3 "$(dirname "$0")/chaos.py"
