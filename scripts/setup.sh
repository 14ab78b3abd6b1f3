#!/usr/bin/env bash
# setup.sh - install every build, test and benchmark dependency (Debian, apt-get).
# Idempotent and quiet when everything is already there.
#   scripts/setup.sh          build + test dependencies (with Postfix, for its smtp-source
#                             client in inject_source_test, no daemon left running; and
#                             libnet-ssleay-perl for swaks --tls in inject_smtpauth_test;
#                             libjansson-dev for blast --json and the HTTP API; chromium, headless, opens
#                             the blast --report page in blast_test; libmicrohttpd for the HTTP API, curl for its tests;
#                             libconfig-dev: volley.conf, issue 14;
#                             python3-dkim (+ python3-nacl for Ed25519) and opendkim-tools, the
#                             independent DKIM verifiers of dkim_verify_test;
#                             prometheus (promtool + a server the metrics test starts; no
#                             daemon left running) and tmux for volley top's test)
#   scripts/setup.sh --bench  also the benchmark tools
set -euo pipefail

# libclang-rt-14-dev: libFuzzer and the sanitizer runtimes of Debian 12's clang 14
# (scripts/fuzz.sh).
pkgs=(build-essential gcc g++ clang libclang-rt-14-dev cmake pkg-config git python3 python3-lmdb
      liburing-dev libssl-dev openssl libc-ares-dev liblmdb-dev lmdb-utils libjemalloc-dev
      libbenchmark-dev libcmocka-dev dnsmasq-base swaks strace valgrind procps iproute2
      postfix libnet-ssleay-perl libmicrohttpd-dev libjansson-dev curl chromium libconfig-dev
      python3-dkim python3-nacl opendkim-tools
      libcurl4-openssl-dev librabbitmq-dev rabbitmq-server amqp-tools
      prometheus tmux)
bench=0
for a in "$@"; do
    case "$a" in
        --bench) bench=1 ;;
        *) echo "setup.sh: unknown option '$a' (known: --bench)" >&2; exit 2 ;;
    esac
done
[ "$bench" = 1 ] && pkgs+=(linux-perf hyperfine time tcpdump wrk)

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: need root or sudo to apt-get install" >&2; exit 1; }
    SUDO=sudo
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if [[ " ${missing[*]} " == *" postfix "* || " ${missing[*]} " == *" prometheus "* ||
      " ${missing[*]} " == *" rabbitmq-server "* ]]; then
    # Postfix only for its smtp-source/smtp-sink tools: no configuration; and no
    # daemon (Postfix, Prometheus, RabbitMQ) started by the package scripts
    # (policy-rc.d forbids service starts): the tests start their own on loopback.
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup.sh: done"
