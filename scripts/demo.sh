#!/usr/bin/env bash
# demo.sh - the README's first command: build volley, start three local SMTP
# sinks standing in for MX hosts (127.0.0.2-4) and a private DNS server
# (dnsmasq on loopback) that gives 50 demo domains their MX records (the sinks
# offer STARTTLS with a throwaway self-signed certificate), send the
# embedded sample campaign (scripts/demo/campaign.eml) to 10,000 recipients
# with `volley send`, and print the outcome. Everything runs on loopback and
# is stopped by PID at the end; the queue and logs stay in ./demo-out.
# The MX records point at 127.0.0.x, which volley refuses by default (its
# destination policy: public addresses only), hence --allow-dest loopback.
#
#   scripts/demo.sh [RECIPIENTS]      (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
[[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 && "$n" -le 1000000 ]] \
    || { echo "demo.sh: RECIPIENTS must be 1..1000000" >&2; exit 2; }

scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
volley=./build/volley

out=demo-out
rm -rf "$out"
mkdir -p "$out/dns"
pids=()
cleanup() { for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# A self-signed certificate, so the sinks offer STARTTLS like real MX hosts
# (volley's default level `may`: encrypt when offered, no certificate check).
tls=()
if openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.demo.test" \
        -keyout "$out/key.pem" -out "$out/cert.pem" >/dev/null 2>&1; then
    tls=(--tls-cert "$out/cert.pem" --tls-key "$out/key.pem")
fi

# Three sinks (the MX hosts), one port on three loopback addresses.
port=0
for _ in 1 2 3 4 5 6 7 8; do
    p=$((30000 + RANDOM % 30000))
    "$volley" sink --listen "127.0.0.2:$p" --listen "127.0.0.3:$p" --listen "127.0.0.4:$p" \
        --threads 1 "${tls[@]+"${tls[@]}"}" >"$out/sink.log" 2>&1 &
    spid=$!
    for _ in $(seq 1 50); do
        grep -q "listening on 127.0.0.4" "$out/sink.log" 2>/dev/null && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$spid" 2>/dev/null && grep -q "listening on 127.0.0.4" "$out/sink.log"; then
        port=$p; pids+=("$spid"); break
    fi
    kill "$spid" 2>/dev/null || true
done
[ "$port" != 0 ] || { echo "demo.sh: could not start the sinks (see $out/sink.log)" >&2; exit 1; }

# DNS: demoN.test has MX 10 mx-a (one sink) and MX 20 mx-b (the next one).
zone=(local=/test/)
for i in 2 3 4; do zone+=("host-record=mx$i.demo.test,127.0.0.$i"); done
for d in $(seq 0 49); do
    a=$((2 + d % 3)); b=$((2 + (d + 1) % 3))
    zone+=("mx-host=demo$d.test,mx$a.demo.test,10" "mx-host=demo$d.test,mx$b.demo.test,20")
done
read -r dpid dport < <(scripts/dnsmasq.sh --dir "$out/dns" --ttl 300 --watch $$ --no-defaults "${zone[@]}")
pids+=("$dpid")

# The campaign: n recipients over 50 domains.
awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "reader%d@demo%d.test\n", i, i % 50 }' \
    >"$out/recipients.txt"
echo "== volley send: $n recipients over 50 domains, MX via dnsmasq on 127.0.0.1:$dport"
"$volley" send --data "$out/queue" --from news@sender.example --rcpts "$out/recipients.txt" \
    --dns "127.0.0.1:$dport" --mx-port "$port" --allow-dest loopback --max-rcpts 1 \
    --log "$out/delivery.json" scripts/demo/campaign.eml

echo "== a few delivery-log lines ($out/delivery.json)"
head -n 3 "$out/delivery.json"
echo "== delivery-log events"
grep -o '"event":"[a-z]*"' "$out/delivery.json" | sort | uniq -c
echo "== sinks"
kill -USR1 "${pids[0]}"; sleep 0.3
grep "stats" "$out/sink.log" | tail -n 1
echo "== queue"
"$volley" queue stats --data "$out/queue" | head -n 8
