#!/usr/bin/env bash
# sink_swaks_test.sh - interop with a real client: swaks (Debian package) sends
# to `volley sink --save DIR`, once in lockstep and once with --pipeline, with
# two recipients and a body line that starts with a dot. Checks swaks's exit
# code, the saved envelope and content, and the sink's pipelining counters.
set -euo pipefail
command -v swaks >/dev/null || { echo "FAIL: swaks not installed (scripts/setup.sh installs it)" >&2; exit 1; }
[ -x "${VOLLEY_BIN:-}" ] || { echo "FAIL: VOLLEY_BIN is not set (run the tests through ctest)" >&2; exit 1; }

tmp=$(mktemp -d)
sink_pid=""
cleanup() {
    if [ -n "$sink_pid" ] && kill -0 "$sink_pid" 2>/dev/null; then
        kill -TERM "$sink_pid"; wait "$sink_pid" || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir "$tmp/save"
"$VOLLEY_BIN" sink --listen 127.0.0.1:0 --save "$tmp/save" --json >"$tmp/out" 2>"$tmp/err" &
sink_pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/^sink: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/out")
    [ -n "$port" ] && break
    kill -0 "$sink_pid" 2>/dev/null || fail "sink exited: $(cat "$tmp/err")"
    sleep 0.05
done
[ -n "$port" ] || fail "sink did not report its port"

body=$'Subject: swaks interop\r\n\r\nfirst line\r\n.starts with a dot\r\nlast line'
for mode in plain pipelined; do
    extra=()
    [ "$mode" = pipelined ] && extra=(--pipeline)
    swaks --server 127.0.0.1 --port "$port" --from "sender-$mode@example.org" \
          --to "a-$mode@example.net,b-$mode@example.net" --helo client.example.org \
          --data "$body" --timeout 10 "${extra[@]}" >"$tmp/swaks-$mode.log" 2>&1 \
        || fail "swaks ($mode) failed: $(tail -20 "$tmp/swaks-$mode.log")"
    f=$(grep -l "X-Volley-Mail-From: <sender-$mode@example.org>" "$tmp"/save/*.eml) \
        || fail "no saved message for $mode"
    grep -q $'^X-Volley-Rcpt-To: <a-'"$mode"$'@example.net>\r$' "$f" || fail "$mode: rcpt a"
    grep -q $'^X-Volley-Rcpt-To: <b-'"$mode"$'@example.net>\r$' "$f" || fail "$mode: rcpt b"
    grep -q $'^\\.starts with a dot\r$' "$f" || fail "$mode: dot line not unstuffed once"
    grep -q $'^Subject: swaks interop\r$' "$f" || fail "$mode: content"
done
[ "$(ls "$tmp/save" | wc -l)" = 2 ] || fail "expected 2 saved files: $(ls -a "$tmp/save")"
ls -a "$tmp/save" | grep -q '^\.tmp' && fail "temporary file left behind"

kill -USR1 "$sink_pid"
for _ in $(seq 100); do grep -q '"why":"sigusr1"' "$tmp/out" && break; sleep 0.05; done
stats=$(grep '"why":"sigusr1"' "$tmp/out" | tail -1)
[ -n "$stats" ] || fail "no stats after SIGUSR1"
python3 - "$stats" <<'PY' || fail "stats: $stats"
import json, sys
s = json.loads(sys.argv[1])
assert s["transactions"] == 2 and s["rcpts"] == 4, s
assert s["pipelined_reads"] >= 1 and s["max_cmds_per_read"] >= 3, s   # swaks --pipeline
assert s["replies"]["354"] == 2 and s["replies"]["221"] == 2, s
PY
kill -TERM "$sink_pid"
wait "$sink_pid" || fail "sink exit code $?"
sink_pid=""
grep -q '"why":"exit"' "$tmp/out" || fail "no final stats"
echo "ok sink_swaks"
