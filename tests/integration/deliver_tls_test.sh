#!/usr/bin/env bash
# deliver_tls_test.sh - opportunistic STARTTLS end to end with a real
# certificate: `openssl req -x509` makes a self-signed one in a temp dir,
# `volley sink --tls-cert --tls-key` offers STARTTLS, and volley delivers:
#   1. to the TLS sink: every log line is "delivered" with "tls":"TLSv1.3"
#      (or 1.2); the sink counts one TLS session per connection, answers 220
#      twice per connection (banner + STARTTLS), saves every message intact
#      (a 200 KB body with dot lines crosses many TLS records);
#   2. to a sink without TLS: plain delivery, no "tls" field, no STARTTLS;
#   3. with --tls none to the TLS sink: plain delivery, STARTTLS never sent;
#   4. bad options: --tls sometimes, a sink key that does not match: exit 2;
#   5. a server that pipelines a reply behind its 220 to STARTTLS: deferred
#      4.7.0, no TLS, nothing delivered (RFC 3207 / CVE-2011-0411 class); a
#      server that answers 454 to STARTTLS: delivered in plaintext (level may).
set -euo pipefail
command -v openssl >/dev/null || { echo "FAIL: openssl CLI not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
[ -x "${VOLLEY_BIN:-}" ] || { echo "FAIL: VOLLEY_BIN is not set (run the tests through ctest)" >&2; exit 1; }

N=12
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        if kill -0 "$p" 2>/dev/null; then kill -TERM "$p"; wait "$p" || true; fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sink.volley.test" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >"$tmp/openssl.log" 2>&1 \
    || fail "openssl req: $(cat "$tmp/openssl.log")"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other" \
    -keyout "$tmp/other-key.pem" -out "$tmp/other.pem" >/dev/null 2>&1 || fail "openssl req 2"

# start_sink NAME ARGS...: sets $port
start_sink() {
    local name=$1; shift
    mkdir -p "$tmp/$name"
    "$VOLLEY_BIN" sink --listen 127.0.0.1:0 --json --save "$tmp/$name" "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    local pid=$!
    pids+=("$pid")
    eval "${name}_pid=$pid"
    port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/^sink: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/$name.out")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || fail "sink $name exited: $(cat "$tmp/$name.err")"
        sleep 0.05
    done
    [ -n "$port" ] || fail "sink $name did not report its port"
}

# stats NAME: the sink's stats line after SIGUSR1
stats() {
    local pid_var="${1}_pid"
    kill -USR1 "${!pid_var}"
    for _ in $(seq 100); do grep -q '"why":"sigusr1"' "$tmp/$1.out" && break; sleep 0.05; done
    grep '"why":"sigusr1"' "$tmp/$1.out" | tail -1
}

# The message: 200 KB, with lines that start with a dot (stuffed on the wire).
python3 - "$tmp/msg.eml" <<'PY'
import sys
lines = ["From: a@sender.example", "To: list@dest.example", "Subject: tls test", ""]
for i in range(2500):
    lines.append((".dot line %d " % i if i % 50 == 0 else "line %d " % i) + "x" * 70)
open(sys.argv[1], "wb").write(("\r\n".join(lines) + "\r\n").encode())
PY
for i in $(seq $N); do echo "r$i@dest.example"; done >"$tmp/rcpts"

# deliver NAME PORT ARGS...: enqueue N recipients into a new queue, run to empty
deliver() {
    local name=$1 p=$2; shift 2
    "$VOLLEY_BIN" enqueue --data "$tmp/q-$name" --from a@sender.example --rcpts "$tmp/rcpts" \
        "$tmp/msg.eml" >/dev/null || fail "enqueue $name"
    timeout 60 "$VOLLEY_BIN" run --data "$tmp/q-$name" --until-empty --quiet --max-rcpts 1 \
        --route "*=127.0.0.1:$p" --log "$tmp/$name.json" "$@" 2>"$tmp/run-$name.err" \
        || fail "run $name: $(cat "$tmp/run-$name.err")"
}

# check_log NAME WANT_TLS(yes|no)
check_log() {
    python3 - "$tmp/$1.json" "$2" "$N" <<'PY' || fail "log $1: $(head -3 "$tmp/$1.json")"
import json, sys
def need(ok, what):
    if not ok:
        sys.exit("check failed: %r" % (what,))
path, want_tls, n = sys.argv[1], sys.argv[2] == "yes", int(sys.argv[3])
ev = [json.loads(l) for l in open(path)]
need(len(ev) == n, (len(ev), n))
rcpts = sorted(e["rcpt"] for e in ev)
need(rcpts == sorted("r%d@dest.example" % i for i in range(1, n + 1)), rcpts)
for e in ev:
    need(e["event"] == "delivered", e)
    if want_tls:
        need(e.get("tls") in ("TLSv1.3", "TLSv1.2"), e)
    else:
        need(e.get("tls") in (None, ""), e)
PY
}

# check_saved NAME: every saved message is the original content, unstuffed
check_saved() {
    python3 - "$tmp/$1" "$tmp/msg.eml" "$N" <<'PY' || fail "saved messages of $1"
import os, sys
def need(ok, what):
    if not ok:
        sys.exit("check failed: %r" % (what,))
d, orig, n = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
files = [f for f in os.listdir(d) if f.endswith(".eml")]
need(len(files) == n, (len(files), n))
for f in files:
    data = open(os.path.join(d, f), "rb").read()
    head, body = data.split(b"\r\n\r\n", 1)          # volley adds Date, Message-ID
    need(b"\r\nSubject: tls test\r\n" in head, f)
    need(body == orig.split(b"\r\n\r\n", 1)[1], f)   # byte for byte, unstuffed
    need(body.startswith(b".dot line 0 ") and b"\r\n..dot" not in body, f)
PY
}

# 1. TLS sink
start_sink tls --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
tls_port=$port
deliver tls "$tls_port"
check_log tls yes
check_saved tls
s=$(stats tls)
python3 - "$s" "$N" <<'PY' || fail "tls sink stats: $s"
import json, sys
def need(ok, what):
    if not ok:
        sys.exit("check failed: %r" % (what,))
s, n = json.loads(sys.argv[1]), int(sys.argv[2])
need(s["transactions"] == n, s)
need(s["tls_sessions"] >= 1 and s["tls_sessions"] == s["connections"], s)
need(s["replies"]["220"] == 2 * s["connections"], s)   # banner + STARTTLS
PY

# 2. a sink without TLS: plain delivery (STARTTLS is not offered, so not sent)
start_sink plain
deliver plain "$port"
check_log plain no
check_saved plain
s=$(stats plain)
python3 - "$s" "$N" <<'PY' || fail "plain sink stats: $s"
import json, sys
def need(ok, what):
    if not ok:
        sys.exit("check failed: %r" % (what,))
s, n = json.loads(sys.argv[1]), int(sys.argv[2])
need(s["transactions"] == n and s["tls_sessions"] == 0, s)
need(s["replies"]["220"] == s["connections"] and "454" not in s["replies"], s)
PY

# 3. --tls none to the TLS sink: STARTTLS is offered but never sent
before=$(stats tls)
deliver none "$tls_port" --tls none
check_log none no
s=$(stats tls)
python3 - "$before" "$s" "$N" <<'PY' || fail "--tls none: $before -> $s"
import json, sys
def need(ok, what):
    if not ok:
        sys.exit("check failed: %r" % (what,))
a, b, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
need(b["transactions"] - a["transactions"] == n, (a, b))
need(b["tls_sessions"] == a["tls_sessions"], (a, b))
conns = b["connections"] - a["connections"]
need(conns >= 1 and b["replies"]["220"] - a["replies"]["220"] == conns, (a, b))
PY

# 5. Fake servers that offer STARTTLS and then misbehave (python, line based):
#    inject: a reply pipelined right behind the 220 to STARTTLS, in the same
#            write (CVE-2011-0411 class): no TLS, the recipient deferred 4.7.0;
#    refuse: 454 to STARTTLS: level `may` goes on in plaintext and delivers.
cat >"$tmp/fake.py" <<'PY'
import os, socket, sys
mode, portfile = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(8)
srv.settimeout(30)
open(portfile + ".tmp", "w").write(str(srv.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
for _ in range(4):                     # volley may come back a few times
    try:
        c, _ = srv.accept()
    except socket.timeout:
        break
    c.settimeout(10)
    c.sendall(b"220 fake.example ESMTP\r\n")
    buf, data = b"", False
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            buf += d
            while True:
                if data:
                    i = buf.find(b"\r\n.\r\n")
                    if i < 0:
                        break
                    buf, data = buf[i + 5:], False
                    c.sendall(b"250 2.0.0 queued\r\n")
                    continue
                i = buf.find(b"\r\n")
                if i < 0:
                    break
                line, buf = buf[:i].upper(), buf[i + 2:]
                if line.startswith(b"EHLO"):
                    c.sendall(b"250-fake.example\r\n250 STARTTLS\r\n")
                elif line.startswith(b"STARTTLS") and mode == "inject":
                    c.sendall(b"220 2.0.0 go ahead\r\n250 2.0.0 injected\r\n")
                elif line.startswith(b"STARTTLS"):
                    c.sendall(b"454 4.7.0 TLS not available now\r\n")
                elif line.startswith(b"DATA"):
                    data = True
                    c.sendall(b"354 go\r\n")
                elif line.startswith(b"QUIT"):
                    c.sendall(b"221 2.0.0 bye\r\n")
                    raise ConnectionError
                else:
                    c.sendall(b"250 2.0.0 ok\r\n")
    except (socket.timeout, ConnectionError):
        pass
    c.close()
PY
for mode in inject refuse; do
    python3 "$tmp/fake.py" "$mode" "$tmp/$mode.port" &
    pids+=("$!")
    for _ in $(seq 100); do [ -s "$tmp/$mode.port" ] && break; sleep 0.05; done
    [ -s "$tmp/$mode.port" ] || fail "fake server $mode did not start"
    "$VOLLEY_BIN" enqueue --data "$tmp/q-$mode" --from a@sender.example --to v@dest.example \
        "$tmp/msg.eml" >/dev/null || fail "enqueue $mode"
    rc=0
    VOLLEY_LOG=info timeout 60 "$VOLLEY_BIN" run --data "$tmp/q-$mode" --until-empty --quiet \
        --route "*=127.0.0.1:$(cat "$tmp/$mode.port")" --log "$tmp/$mode.json" \
        2>"$tmp/run-$mode.err" || rc=$?
    want=0; [ "$mode" = inject ] && want=3      # inject: deferred, still queued
    [ "$rc" = "$want" ] || fail "run $mode: exit $rc, want $want: $(cat "$tmp/run-$mode.err")"
    python3 - "$tmp/$mode.json" "$mode" <<'PY' || fail "$mode: $(cat "$tmp/$mode.json")"
import json, sys
def need(ok, what):
    if not ok:
        sys.exit("check failed: %r" % (what,))
ev = [json.loads(l) for l in open(sys.argv[1])]
need(len(ev) == 1 and ev[0].get("tls") in (None, ""), ev)
if sys.argv[2] == "inject":
    need(ev[0]["event"] == "deferred", ev)
    need(ev[0]["status"] == "4.7.0" and "STARTTLS" in ev[0]["reply"], ev)
else:
    need(ev[0]["event"] == "delivered" and ev[0]["code"] == 250, ev)
PY
    if [ "$mode" = refuse ]; then
        grep -q "evt=starttls_refused .*action=plaintext" "$tmp/run-$mode.err" \
            || fail "454 fallback not logged: $(cat "$tmp/run-$mode.err")"
    fi
done

# 4. bad options are usage errors (exit 2) with a message naming the problem
set +e
"$VOLLEY_BIN" run --data "$tmp/q-bad" --until-empty --tls sometimes 2>"$tmp/bad1.err"
rc1=$?
"$VOLLEY_BIN" sink --listen 127.0.0.1:0 --tls-cert "$tmp/cert.pem" \
    --tls-key "$tmp/other-key.pem" >/dev/null 2>"$tmp/bad2.err"
rc2=$?
"$VOLLEY_BIN" sink --listen 127.0.0.1:0 --tls-cert "$tmp/cert.pem" >/dev/null 2>"$tmp/bad3.err"
rc3=$?
set -e
[ "$rc1" = 2 ] && grep -q -- "--tls" "$tmp/bad1.err" || fail "--tls sometimes: rc=$rc1 $(cat "$tmp/bad1.err")"
[ "$rc2" = 2 ] && grep -q "other-key.pem" "$tmp/bad2.err" || fail "key mismatch: rc=$rc2 $(cat "$tmp/bad2.err")"
[ "$rc3" = 2 ] && grep -q -- "--tls-key" "$tmp/bad3.err" || fail "no key: rc=$rc3 $(cat "$tmp/bad3.err")"
echo "ok: $N messages over TLS, plain fallback, --tls none, injection, 454 fallback, bad options"
