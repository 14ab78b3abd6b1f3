#!/usr/bin/env bash
# events_amqp_test.sh - delivery events to a private rabbitmq-server started by
# the test, restarted mid-run (dnsmasq, `volley sink`, amqp-tools to read the
# queue); see events_amqp.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { echo "FAIL: dnsmasq not installed (scripts/setup.sh installs it)" >&2; exit 1; }
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || { echo "FAIL: rabbitmq-server not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v amqp-consume >/dev/null || { echo "FAIL: amqp-tools not installed (scripts/setup.sh installs it)" >&2; exit 1; }
exec python3 "$(dirname "$0")/events_amqp.py"
