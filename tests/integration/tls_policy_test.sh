#!/usr/bin/env bash
# tls_policy_test.sh - outbound TLS policy levels (issue 14) with real
# certificates made here by openssl (a test CA, a server certificate it signs
# for IP 127.0.0.1, one it signs for another name, and a self-signed one) and
# `volley sink` as the MX:
#   verify + --tls-ca-file CA: the CA-signed sink gets the mail over TLS; the
#     self-signed one and the wrongly named one are deferred 4.7.5 with the
#     reason ("self-signed certificate", "IP address mismatch"), nothing sent;
#   encrypt: a sink without STARTTLS is deferred 4.7.0; the self-signed sink
#     gets the mail over TLS (no check);
#   may: a sink whose handshake always fails (--tls-break, a fatal alert as from
#     OpenSMTPD 6.8 on OpenSSL 3) gets every message in plaintext, the fallback
#     is logged once (evt=tls_fallback) and remembered: one broken handshake,
#     every later connection skips STARTTLS.
set -euo pipefail
command -v openssl >/dev/null || { echo "FAIL: openssl CLI not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
[ -x "${VOLLEY_BIN:-}" ] || { echo "FAIL: VOLLEY_BIN is not set (run the tests through ctest)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]+"${pids[@]}"}"; do
        if kill -0 "$p" 2>/dev/null; then kill -TERM "$p"; wait "$p" 2>/dev/null || true; fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- certificates -------------------------------------------------------------
ossl() { openssl "$@" >>"$tmp/openssl.log" 2>&1 || fail "openssl $1: $(tail -3 "$tmp/openssl.log")"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=volley test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem"
signed() {   # signed NAME SAN
    ossl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$tmp/$1.key" -out "$tmp/$1.csr"
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$2" \
        >"$tmp/$1.ext"
    ossl x509 -req -in "$tmp/$1.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
        -days 2 -extfile "$tmp/$1.ext" -out "$tmp/$1.pem"
}
signed good "IP:127.0.0.1"
signed wrongname "DNS:other.volley.test"
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$tmp/self.key" -out "$tmp/self.pem"

# ---- sinks --------------------------------------------------------------------
start_sink() {   # start_sink NAME ARGS...: sets NAME_port, NAME_pid
    local name=$1; shift
    "$VOLLEY_BIN" sink --listen 127.0.0.1:0 --json "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    local pid=$! port=""
    pids+=("$pid")
    for _ in $(seq 200); do
        port=$(sed -n 's/^sink: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/$name.out" 2>/dev/null || true)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || fail "sink $name exited: $(cat "$tmp/$name.err")"
        sleep 0.05
    done
    [ -n "$port" ] || fail "sink $name did not report its port"
    eval "${name}_port=$port; ${name}_pid=$pid"
}
stats() {   # stats NAME: the sink's JSON stats after SIGUSR1
    local pid_var="${1}_pid" before
    before=$(grep -c '"why":"sigusr1"' "$tmp/$1.out" || true)
    kill -USR1 "${!pid_var}"
    for _ in $(seq 200); do
        [ "$(grep -c '"why":"sigusr1"' "$tmp/$1.out" || true)" -gt "$before" ] && break
        sleep 0.05
    done
    grep '"why":"sigusr1"' "$tmp/$1.out" | tail -1
}
start_sink good --tls-cert "$tmp/good.pem" --tls-key "$tmp/good.key"
start_sink wrongname --tls-cert "$tmp/wrongname.pem" --tls-key "$tmp/wrongname.key"
start_sink self --tls-cert "$tmp/self.pem" --tls-key "$tmp/self.key"
start_sink plain
start_sink broken --tls-cert "$tmp/self.pem" --tls-key "$tmp/self.key" --tls-break

printf 'From: a@sender.example\r\nSubject: tls policy\r\n\r\nhello\r\n' >"$tmp/msg.eml"

# deliver CASE PORT N WANT_EXIT ARGS...: N recipients, run until empty
deliver() {
    local name=$1 port=$2 n=$3 want=$4; shift 4
    for i in $(seq "$n"); do echo "r$i@dest.example"; done >"$tmp/rcpts-$name"
    "$VOLLEY_BIN" enqueue --data "$tmp/q-$name" --from a@sender.example --rcpts "$tmp/rcpts-$name" \
        "$tmp/msg.eml" >/dev/null || fail "enqueue $name"
    local rc=0
    VOLLEY_LOG=info timeout 60 "$VOLLEY_BIN" run --data "$tmp/q-$name" --until-empty --quiet \
        --max-rcpts 1 --route "*=127.0.0.1:$port" --log "$tmp/$name.json" "$@" \
        2>"$tmp/run-$name.err" || rc=$?
    [ "$rc" = "$want" ] || fail "run $name: exit $rc, want $want: $(tail -5 "$tmp/run-$name.err")"
}
# check CASE EVENT STATUS TLS(yes|no) TEXT: every log line
check() {
    python3 - "$tmp/$1.json" "$2" "$3" "$4" "$5" <<'PY' || fail "log $1: $(head -2 "$tmp/$1.json")"
import json, sys
path, event, status, tls, text = sys.argv[1:]
ev = [json.loads(l) for l in open(path)]
if not ev:
    sys.exit("no log lines")
for e in ev:
    if e["event"] != event or e["status"] != status:
        sys.exit("want %s %s: %r" % (event, status, e))
    if (e.get("tls") in ("TLSv1.3", "TLSv1.2")) != (tls == "yes"):
        sys.exit("tls %s: %r" % (tls, e))
    if text not in e.get("reply", ""):
        sys.exit("reply lacks %r: %r" % (text, e))
PY
}

# verify
deliver v-good "$good_port" 3 0 --tls verify --tls-ca-file "$tmp/ca.pem"
check v-good delivered 2.0.0 yes ""
deliver v-self "$self_port" 2 3 --tls verify --tls-ca-file "$tmp/ca.pem"
check v-self deferred 4.7.5 no "certificate verification failed: self-signed certificate"
deliver v-name "$wrongname_port" 2 3 --tls verify --tls-ca-file "$tmp/ca.pem"
check v-name deferred 4.7.5 no "certificate verification failed: IP address mismatch"
deliver v-nocafile "$good_port" 1 3 --tls verify     # system store: the test CA is unknown
check v-nocafile deferred 4.7.5 no "certificate verification failed"
s=$(stats self); python3 -c 'import json,sys; s=json.loads(sys.argv[1]); sys.exit(0 if s["transactions"]==0 else "self sink got mail: %r" % s)' "$s" \
    || fail "verify sent mail to the self-signed sink"

# encrypt
deliver e-plain "$plain_port" 2 3 --tls encrypt
check e-plain deferred 4.7.0 no "STARTTLS not offered"
deliver e-self "$self_port" 2 0 --tls encrypt
check e-self delivered 2.0.0 yes ""

# may: a broken handshake falls back to plaintext, once per host
n=6
deliver m-broken "$broken_port" "$n" 0 --tls may --conns-per-dest 1 --msgs-per-conn 2
check m-broken delivered 2.0.0 no ""
grep -q "evt=tls_fallback .*ip=127.0.0.1 action=plaintext for_ms=3600000" "$tmp/run-m-broken.err" \
    || fail "fallback not logged: $(grep -E 'tls' "$tmp/run-m-broken.err" | head -3)"
[ "$(grep -c 'evt=tls_fallback' "$tmp/run-m-broken.err")" = 1 ] || fail "fallback logged more than once"
s=$(stats broken)
python3 - "$s" "$n" <<'PY' || fail "broken sink stats: $s"
import json, sys
s, n = json.loads(sys.argv[1]), int(sys.argv[2])
if s["transactions"] != n:
    sys.exit("transactions %d, want %d" % (s["transactions"], n))
if s["tls_broken"] != 1 or s["tls_sessions"] != 0:
    sys.exit("want exactly one broken handshake (then remembered): %r" % s)
if s["connections"] < 1 + n // 2:
    sys.exit("want the broken connection and %d plaintext ones: %r" % (n // 2, s))
PY
echo "ok: verify (CA-signed delivered; self-signed, wrong name, unknown CA deferred 4.7.5)," \
     "encrypt (no STARTTLS deferred 4.7.0; self-signed delivered), may (broken handshake ->" \
     "plaintext, remembered)"
