#!/usr/bin/env bash
# inject_smtpauth_test.sh - SMTP AUTH (PLAIN, LOGIN) after STARTTLS on the intake;
# see inject_smtpauth.py.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "FAIL: openssl CLI not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v swaks >/dev/null || { echo "FAIL: swaks not installed (scripts/setup.sh installs it)" >&2; exit 1; }
perl -MNet::SSLeay -e1 2>/dev/null || { echo "FAIL: Net::SSLeay missing for swaks --tls (scripts/setup.sh installs libnet-ssleay-perl)" >&2; exit 1; }
exec python3 "$(dirname "$0")/inject_smtpauth.py"
