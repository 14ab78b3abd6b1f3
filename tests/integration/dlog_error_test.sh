#!/usr/bin/env bash
# dlog_error_test.sh - issue 9 item 10: a delivery log that cannot be written
# changes `volley run`'s exit code. The log goes to /dev/full (every write
# fails with ENOSPC): the mail is delivered and committed, and the run says
# that log lines were lost and exits 1; the same run with a writable log exits 0.
set -euo pipefail
[ -x "${VOLLEY_BIN:-}" ] || { echo "FAIL: VOLLEY_BIN is not set (run the tests through ctest)" >&2; exit 1; }
[ -w /dev/full ] || { echo "FAIL: /dev/full is missing" >&2; exit 1; }

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

"$VOLLEY_BIN" sink --listen 127.0.0.1:0 >"$tmp/out" 2>"$tmp/err" &
sink_pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/^sink: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/out")
    [ -n "$port" ] && break
    kill -0 "$sink_pid" 2>/dev/null || fail "sink exited: $(cat "$tmp/err")"
    sleep 0.05
done
[ -n "$port" ] || fail "sink did not report its port"

printf 'Subject: dlog\r\n\r\nhello\r\n' >"$tmp/m.eml"
for i in 1 2 3; do echo "r$i@dest.example"; done >"$tmp/rcpts"

# 1. the log cannot be written: exit 1, the reason on stderr, mail delivered
"$VOLLEY_BIN" enqueue --data "$tmp/q1" --shards 1 --from s@src.example --rcpts "$tmp/rcpts" \
    "$tmp/m.eml" >/dev/null
rc=0
timeout 60 "$VOLLEY_BIN" run --data "$tmp/q1" --until-empty --quiet --log /dev/full \
    --route "*=127.0.0.1:$port" 2>"$tmp/run1.err" || rc=$?
[ "$rc" = 1 ] || fail "run with an unwritable log exited $rc, want 1: $(cat "$tmp/run1.err")"
grep -q "evt=dlog_write_failed lines_lost=3" "$tmp/run1.err" ||
    fail "no dlog_write_failed naming 3 lost lines: $(cat "$tmp/run1.err")"
grep -q "delivery log could not be written" "$tmp/run1.err" ||
    fail "the run's last word does not name the log: $(cat "$tmp/run1.err")"
st=$("$VOLLEY_BIN" queue --data "$tmp/q1" stats --json)
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d["delivered"]==3 and d["ready"]==0 else "stats %r" % d)' "$st" ||
    fail "the mail was not delivered and committed: $st"

# 2. control: the same run with a writable log exits 0
"$VOLLEY_BIN" enqueue --data "$tmp/q2" --shards 1 --from s@src.example --rcpts "$tmp/rcpts" \
    "$tmp/m.eml" >/dev/null
timeout 60 "$VOLLEY_BIN" run --data "$tmp/q2" --until-empty --quiet --log "$tmp/log.json" \
    --route "*=127.0.0.1:$port" 2>"$tmp/run2.err" || fail "run with a good log: $(cat "$tmp/run2.err")"
n=$(grep -c '"delivered"' "$tmp/log.json")
[ "$n" = 3 ] || fail "want 3 delivered lines, have $n"
echo "dlog_error_test: unwritable log -> exit 1 with 3 lines lost named; writable -> exit 0"
