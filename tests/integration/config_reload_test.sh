#!/usr/bin/env bash
# config_reload_test.sh - volley.conf end to end (issue 14):
#   1. `volley config check` passes the repository's etc/volley.conf.example (exit 0)
#      and reports every error of a bad file with file:line and a "did you mean"
#      (exit 2); `run --config BAD` is a usage error (exit 2) naming the line;
#   2. `volley run --config FILE` takes its routes, listener, log and limits from
#      the file, with a command-line option overriding it (--max-rcpts);
#   3. SIGHUP with a broken file: refused, each error logged with file:line
#      (evt=config_reload_refused), the engine keeps running on the old config
#      and delivers what arrives next; SIGHUP with a valid changed file:
#      evt=config_reloaded applies=live names what changed, and a changed
#      listener and an added events block as needs_restart (the old listener
#      keeps serving); SIGTERM: exit 0,
#      nothing lost.
set -euo pipefail
command -v python3 >/dev/null || { echo "FAIL: python3 not installed (scripts/setup.sh installs it)" >&2; exit 1; }
[ -x "${VOLLEY_BIN:-}" ] || { echo "FAIL: VOLLEY_BIN is not set (run the tests through ctest)" >&2; exit 1; }
src=${VOLLEY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

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
# wait_for FILE REGEX: up to 30 s
wait_for() {
    for _ in $(seq 300); do grep -Eq "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    fail "no '$2' in $1: $(tail -5 "$1" 2>/dev/null)"
}

# 1. config check
"$VOLLEY_BIN" config check "$src/etc/volley.conf.example" >"$tmp/ex.out" 2>&1 \
    || fail "example config refused: $(cat "$tmp/ex.out")"
grep -q "ok (" "$tmp/ex.out" || fail "example: no summary: $(cat "$tmp/ex.out")"
cat >"$tmp/bad.conf" <<'CONF'
shards = 2;
max-rcpt = 5;
conns-per-dest = 0;
tls = "sometimes";
CONF
rc=0; "$VOLLEY_BIN" config check "$tmp/bad.conf" >"$tmp/bad.out" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "config check bad.conf: exit $rc, want 2"
grep -qF "$tmp/bad.conf:2: unknown key 'max-rcpt' (did you mean 'max-rcpts'?)" "$tmp/bad.out" \
    || fail "no did-you-mean: $(cat "$tmp/bad.out")"
grep -qF "$tmp/bad.conf:3: conns-per-dest:" "$tmp/bad.out" || fail "line 3: $(cat "$tmp/bad.out")"
grep -qF "$tmp/bad.conf:4: tls:" "$tmp/bad.out" || fail "line 4: $(cat "$tmp/bad.out")"
grep -qF "3 errors" "$tmp/bad.out" || fail "count: $(cat "$tmp/bad.out")"
rc=0; "$VOLLEY_BIN" run --config "$tmp/bad.conf" --data "$tmp/qbad" --until-empty \
    >/dev/null 2>"$tmp/runbad.err" || rc=$?
[ "$rc" = 2 ] && grep -qF "$tmp/bad.conf:2:" "$tmp/runbad.err" \
    || fail "run --config bad: exit $rc: $(cat "$tmp/runbad.err")"

# 2. a sink, and a config that routes everything to it
"$VOLLEY_BIN" sink --listen 127.0.0.1:0 --json >"$tmp/sink.out" 2>"$tmp/sink.err" &
sink_pid=$!; pids+=("$sink_pid")
wait_for "$tmp/sink.out" '^sink: listening on 127\.0\.0\.1:[0-9]+$'
sport=$(sed -n 's/^sink: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/sink.out")
write_conf() {   # write_conf MSGS_PER_CONN [LISTENER [MORE]]
    cat >"$tmp/volley.conf.new" <<CONF
# test config
data = "$tmp/q";
shards = 1;
log = "$tmp/delivery.json";
route = [ "*=127.0.0.1:$sport" ];
max-rcpts = 50;
msgs-per-conn = $1;
listeners = ( { address = "${2:-127.0.0.1:0}"; } );
${3:-}
CONF
    mv "$tmp/volley.conf.new" "$tmp/volley.conf"
}
write_conf 100
VOLLEY_LOG=info "$VOLLEY_BIN" run --config "$tmp/volley.conf" --max-rcpts 1 --quiet \
    >"$tmp/run.out" 2>"$tmp/run.err" &
run_pid=$!; pids+=("$run_pid")
wait_for "$tmp/run.err" 'listening on 127\.0\.0\.1:[0-9]+'
lport=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/run.err" | head -1)
send() {   # send TAG N: one message to N recipients over the listener
    python3 - "$lport" "$1" "$2" <<'PY' || fail "smtp send $1"
import smtplib, sys
port, tag, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    rcpts = ["%s%d@dest.example" % (tag, i) for i in range(n)]
    refused = s.sendmail("a@sender.example", rcpts,
                         "From: a@sender.example\r\nSubject: %s\r\n\r\nbody\r\n" % tag)
    if refused:
        sys.exit("refused: %r" % refused)
PY
}
count_delivered() { grep -c '"event":"delivered"' "$tmp/delivery.json" 2>/dev/null || true; }
wait_delivered() {
    for _ in $(seq 300); do [ "$(count_delivered)" -ge "$1" ] && return 0; sleep 0.1; done
    fail "delivered $(count_delivered), want $1: $(tail -5 "$tmp/run.err")"
}
send first 3
wait_delivered 3
# --max-rcpts 1 on the command line beat max-rcpts = 50 in the file: 3 transactions
kill -USR1 "$sink_pid"
wait_for "$tmp/sink.out" '"why":"sigusr1"'
python3 - "$(grep '"why":"sigusr1"' "$tmp/sink.out" | tail -1)" <<'PY' || fail "sink stats"
import json, sys
s = json.loads(sys.argv[1])
if s["transactions"] != 3 or s["rcpts"] != 3:
    sys.exit("want 3 transactions of 1 recipient: %r" % s)
PY

# 3. SIGHUP with a broken file: refused, logged with file:line, old config kept
cat >"$tmp/volley.conf" <<CONF
data = "$tmp/q";
msgs-per-con = 5;
max-age = "forever";
CONF
kill -HUP "$run_pid"
wait_for "$tmp/run.err" 'evt=config_reload_refused .*errors=2'
grep -qF "$tmp/volley.conf:2: unknown key 'msgs-per-con' (did you mean 'msgs-per-conn'?)" \
    "$tmp/run.err" || fail "refused error lines: $(grep reload "$tmp/run.err")"
grep -qF "$tmp/volley.conf:3: max-age:" "$tmp/run.err" || fail "line 3 not logged"
kill -0 "$run_pid" 2>/dev/null || fail "run died on a bad reload: $(tail -5 "$tmp/run.err")"
send second 2
wait_delivered 5
# a valid file with a change: applied live, what changed is named; a listener
# change cannot apply live: named as needing a restart, the old listener kept
# (an events block added: its sink threads start with the run, so also a restart)
echo secret >"$tmp/hook.key"
write_conf 7 127.0.0.1:1 "events = { webhook = { url = \"http://127.0.0.1:1/\"; secret-file = \"$tmp/hook.key\"; }; };"
kill -HUP "$run_pid"
wait_for "$tmp/run.err" 'evt=config_reloaded .*applies=live changed="msgs-per-conn"'
grep -q 'evt=config_reloaded .*needs_restart="listeners,events"' "$tmp/run.err" \
    || fail "listener and events changes not reported as needing a restart: $(grep reloaded "$tmp/run.err")"
send third 1
wait_delivered 6
kill -TERM "$run_pid"
rc=0; wait "$run_pid" || rc=$?
[ "$rc" = 0 ] || fail "run exit $rc after SIGTERM: $(tail -5 "$tmp/run.err")"
[ "$(count_delivered)" = 6 ] || fail "delivered $(count_delivered), want 6"
echo "ok: config check (example ok, bad file: 3 errors with lines), run --config with a CLI" \
     "override, SIGHUP bad file refused + old config kept, SIGHUP good file reloaded"
