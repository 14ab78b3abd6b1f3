#!/usr/bin/env bash
# demo.sh - the README's first command: build volley, start three local SMTP
# sinks standing in for MX hosts (127.0.0.2-4) and a private DNS server
# (dnsmasq on loopback) that gives 50 demo domains their MX records (the sinks
# offer STARTTLS with a throwaway self-signed certificate), send the
# embedded sample campaign (scripts/demo/campaign.eml) to 10,000 recipients
# through volley's SMTP listener (`volley run --listen`: the engine that takes
# mail in and delivers it, in one process), send 3 personalised transactional
# messages through its HTTP API (`--http`, POST /api/inject/v1), and print the
# outcome (with the engine's Prometheus /metrics counters and the delivery
# events a webhook receiver, scripts/demo/webhook_receiver.py, got from
# `--events-webhook`, each batch's HMAC signature checked). Everything runs on loopback and
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
# The documented example configuration (etc/volley.conf.example), checked
# first; the command line overrides what the demo needs differently.
"$volley" config check etc/volley.conf.example
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$out/api.token"
# The delivery-event receiver (a CRM's webhook endpoint): HMAC key, port.
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$out/webhook.key"
python3 scripts/demo/webhook_receiver.py "$out/webhook.key" >"$out/webhook.port" &
pids+=("$!")
wport=""
for _ in $(seq 1 50); do
    wport=$(head -n 1 "$out/webhook.port")
    [ -n "$wport" ] && break
    sleep 0.1
done
[ -n "$wport" ] || { echo "demo.sh: the webhook receiver did not start" >&2; exit 1; }
echo "== volley run --config etc/volley.conf.example --listen --http --events-webhook: the engine, with its SMTP and HTTP front doors on 127.0.0.1, events to a webhook"
"$volley" run --config etc/volley.conf.example --data "$out/queue" --shards 2 --listen 127.0.0.1:0 \
    --http 127.0.0.1:0 --http-token-file "$out/api.token" \
    --events-webhook "http://127.0.0.1:$wport/hooks/volley" --events-secret-file "$out/webhook.key" \
    --dns "127.0.0.1:$dport" --mx-port "$port" --allow-dest loopback --max-rcpts 1 \
    --log "$out/delivery.json" 2>"$out/run.log" &
rpid=$!
pids+=("$rpid")
lport="" hport=""
for _ in $(seq 1 100); do
    lport=$(sed -n 's/^volley run: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out/run.log")
    hport=$(sed -n 's|^volley run: HTTP API on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$out/run.log")
    [ -n "$lport" ] && [ -n "$hport" ] && break
    kill -0 "$rpid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$lport" ] && [ -n "$hport" ] || { echo "demo.sh: volley run did not start (see $out/run.log)" >&2; exit 1; }

echo "== SMTP injection: $n recipients over 50 domains, 100 per message, to 127.0.0.1:$lport"
python3 - "$lport" "$out/recipients.txt" scripts/demo/campaign.eml <<'PY'
import smtplib, sys, time
port, rcpts = int(sys.argv[1]), open(sys.argv[2]).read().split()
body = open(sys.argv[3], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
t0, ids = time.monotonic(), []
def need(reply, what):
    if reply[0] != 250:
        sys.exit("demo.sh: %s: the listener answered %d %s" % (what, reply[0], reply[1].decode()))

with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
    need(s.ehlo("demo.client.example"), "EHLO")
    for i in range(0, len(rcpts), 100):           # --max-rcpts-per-msg: 100 by default
        need(s.mail("news@sender.example"), "MAIL")
        for r in rcpts[i:i + 100]:
            need(s.rcpt(r), "RCPT " + r)
        code, text = s.data(body)
        need((code, text), "DATA")
        ids.append(text.decode().split()[-1])
print("injected %d messages (%d recipients) in %.2f s; last 250: queued as %s"
      % (len(ids), len(rcpts), time.monotonic() - t0, ids[-1]))
PY

echo "== HTTP injection: 3 personalised transactional messages, POST /api/inject/v1 on 127.0.0.1:$hport"
curl -sS --max-time 30 -H "Authorization: Bearer $(cat "$out/api.token")" \
    -H 'Content-Type: application/json' "http://127.0.0.1:$hport/api/inject/v1" -d '{
  "envelope_sender": "receipts@sender.example",
  "content": {"from": {"email": "receipts@sender.example", "name": "Demo Shop"},
              "subject": "Your order {{ order }}",
              "text_body": "Hello {{ name | default: \"friend\" }}, order {{ order }} has shipped.",
              "html_body": "<p>Hello {{ name | default: \"friend\" }}, order <b>{{ order }}</b> has shipped.</p>"},
  "recipients": [{"email": "ann@demo1.test", "name": "Ann", "substitutions": {"order": "A-1001"}},
                 {"email": "bob@demo2.test", "substitutions": {"order": "A-1002"}},
                 {"email": "cy@demo3.test", "name": "Cy", "substitutions": {"order": "A-1003"}}]
}'
echo

echo "== waiting for delivery (volley queue stats, at most 120 s)"
for _ in $(seq 1 240); do
    left=$("$volley" queue stats --data "$out/queue" --json |
           python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["ready"] + d["deferred"])')
    [ "$left" = 0 ] && break
    sleep 0.5
done
echo "== GET /metrics (Prometheus text), the outcome counters"
curl -sS --max-time 10 -H "Authorization: Bearer $(cat "$out/api.token")" \
    "http://127.0.0.1:$hport/metrics" | grep '^volley_recipients_total' || true
kill -TERM "$rpid"
wait "$rpid" || true
echo "== volley run's own words ($out/run.log)"
grep -v "^volley: level=" "$out/run.log" | tail -n 4

echo "== a few delivery-log lines ($out/delivery.json)"
head -n 3 "$out/delivery.json"
echo "== delivery-log events"
grep -o '"event":"[a-z]*"' "$out/delivery.json" | sort | uniq -c
echo "== delivery events at the webhook receiver (signatures checked, counted once per event_id)"
curl -sS --max-time 10 "http://127.0.0.1:$wport/stats"; echo
echo "== sinks"
kill -USR1 "${pids[0]}"; sleep 0.3
grep "stats" "$out/sink.log" | tail -n 1
echo "== queue"
"$volley" queue stats --data "$out/queue" | head -n 8
