#!/usr/bin/env bash
# engine_lock_test.sh - issue 9 item 3: one engine per data directory.
# `volley run` delivers to a slow `volley sink` (every MAIL waits 30 s); while
# it runs, a second `volley run` and `volley queue purge --all` / `retry` /
# `bounce` are refused with exit 1 and a message naming the engine's PID,
# while `volley queue stats`, `show` and `check` work. Once the engine is
# stopped, purge works. Every wait is bounded; processes are stopped by PID.
set -uo pipefail
V=${VOLLEY_BIN:?VOLLEY_BIN not set}
command -v timeout >/dev/null || { echo "FAIL: timeout (coreutils) missing" >&2; exit 1; }
T=$(mktemp -d /tmp/vl-lock-XXXXXX)
sink_pid=""
run_pid=""
stop() {    # stop PID: TERM, up to 10 s, then KILL
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    return 0
}
cleanup() { stop "$run_pid"; stop "$sink_pid"; rm -rf "$T"; }
trap cleanup EXIT
cd "$T"
fails=0
fail() { echo "FAIL: $*" >&2; exit 1; }
check() {   # check LABEL WANT_RC CMD...
    local label=$1 want=$2; shift 2
    timeout 15 "$@" >out.txt 2>err.txt; local rc=$?
    if [ "$rc" != "$want" ]; then
        echo "FAIL $label: exit $rc, want $want"; cat out.txt err.txt; fails=$((fails+1))
    fi
}
contains() {  # contains LABEL FILE TEXT
    grep -qF -- "$3" "$2" || { echo "FAIL $1: '$3' not in $2:"; cat "$2"; fails=$((fails+1)); }
}

"$V" sink --listen 127.0.0.1:0 --delay mail=30s >sink.out 2>sink.err &
sink_pid=$!
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/^sink: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' sink.out)
    [ -n "$port" ] && break
    kill -0 "$sink_pid" 2>/dev/null || fail "sink exited: $(cat sink.err)"
    sleep 0.05
done
[ -n "$port" ] || fail "sink did not report its port"

printf 'Subject: lock\nFrom: s@x.org\n\nhello\n' > m.eml
check "enqueue" 0 "$V" enqueue --data d --shards 2 --from s@x.org --to a@dst.test --to b@dst.test m.eml
id=$(sed -n 's/^queued \([0-9a-f]*\) .*/\1/p' out.txt)
[ -n "$id" ] || fail "no message id from enqueue: $(cat out.txt err.txt)"

route=(--route "*=127.0.0.1:$port")
"$V" run --data d "${route[@]}" >run.out 2>run.err &
run_pid=$!
for _ in $(seq 100); do     # the engine holds DATA/lock once its PID is in it
    grep -q "^$run_pid engine\$" d/lock 2>/dev/null && break
    kill -0 "$run_pid" 2>/dev/null || fail "volley run exited: $(cat run.err)"
    sleep 0.05
done
grep -q "^$run_pid engine\$" d/lock 2>/dev/null \
    || { echo "FAIL: d/lock does not name the engine"; fails=$((fails+1)); }

check "second run refused" 1 "$V" run --data d "${route[@]}"
contains "second run names pid" err.txt "an engine (pid $run_pid) is running on d"
check "purge refused" 1 "$V" queue --data d purge --all
contains "purge names pid" err.txt "an engine (pid $run_pid) is running on d"
check "retry refused" 1 "$V" queue --data d retry --domain dst.test
contains "retry names pid" err.txt "(pid $run_pid)"
check "bounce refused" 1 "$V" queue --data d bounce "$id"
contains "bounce names pid" err.txt "(pid $run_pid)"
check "stats allowed" 0 "$V" queue --data d stats
check "show allowed" 0 "$V" queue --data d show "$id"
check "check allowed" 0 "$V" queue --data d check
kill -0 "$run_pid" 2>/dev/null || fail "the engine died meanwhile: $(cat run.err)"

stop "$run_pid"
run_pid=""
check "purge after the engine" 0 "$V" queue --data d purge --all
contains "purged both" out.txt "purged 2 recipients"

if [ "$fails" != 0 ]; then echo "$fails failures"; exit 1; fi
echo "ok engine_lock"
