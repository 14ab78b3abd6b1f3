# shellcheck shell=bash
# bench_lib.sh - what the bench scripts share (scripts/bench_*.sh: `. scripts/bench_lib.sh`
# after setting $volley): free ports, waiting for a listener, and starting and
# stopping the test receivers, always by PID (never by name). The functions
# set globals and must not run in a subshell ($(...)), or the EXIT trap of
# the script would not see the PIDs they set.
#   bench_need HINT FILE...         exits 1 naming the first FILE not executable (and HINT)
#   bench_init                      tmp=$(mktemp -d) and an EXIT trap: bench_cleanup_more
#                                   (if the script defines it), the receiver stopped,
#                                   $tmp removed
#   bench_free_port                 -> prints a free loopback TCP port
#   bench_wait_port PORT            until 127.0.0.1:PORT accepts (at most ~6 s); 1 if not
#   bench_wait_listen FILE          until FILE has a 'listening on 127.0.0.1:PORT' line
#                                   (volley sink, volley run; at most ~6 s): sets
#                                   bench_port (empty if none)
#   bench_stop PID                  SIGTERM and wait, if PID is set and alive; returns 0
#   bench_sink_start OUT ERR ARGS   `volley sink --listen 127.0.0.1:0 ARGS` (stdout to OUT,
#                                   stderr to ERR): sets sink_pid and sink_port; exits 1
#                                   naming the script if it did not start
#   bench_smtp_sink_start OUT ERR   Postfix's smtp-sink on a free port, likewise
#   bench_sink_stop                 bench_stop "$sink_pid"; sink_pid=""
# OUT and ERR are emptied before the start: a previous, dead receiver's
# 'listening' line is never read as this one's.
bench_name=$(basename "$0" .sh)
sink_pid="" sink_port="" bench_port=""

bench_need() {
    local hint=$1 b
    shift
    for b in "$@"; do
        [ -x "$b" ] || { echo "$bench_name: $b missing ($hint)" >&2; exit 1; }
    done
}

bench_cleanup() {
    if declare -F bench_cleanup_more >/dev/null; then bench_cleanup_more; fi
    bench_sink_stop
    rm -rf "${tmp:?}"
}

bench_init() {
    tmp=$(mktemp -d)
    trap bench_cleanup EXIT
}

bench_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bench_wait_port() {
    for _ in $(seq 300); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1',$1)).close()" \
            2>/dev/null && return 0
        sleep 0.02
    done
    return 1
}

bench_wait_listen() {
    bench_port=""
    for _ in $(seq 300); do
        bench_port=$(sed -n 's/^.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$1" | head -1)
        [ -n "$bench_port" ] && return 0
        sleep 0.02
    done
    return 1
}

bench_stop() {
    if [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1"
        wait "$1" 2>/dev/null || true
    fi
    return 0
}

bench_sink_start() {
    local out=$1 err=$2
    shift 2
    : >"$out"
    : >"$err"
    "${volley:?}" sink --listen 127.0.0.1:0 "$@" >"$out" 2>"$err" &
    sink_pid=$!
    bench_wait_listen "$out" || true
    sink_port=$bench_port
    [ -n "$sink_port" ] && return 0
    echo "$bench_name: volley sink did not start: $(cat "$err")" >&2
    exit 1
}

bench_smtp_sink_start() {
    : >"$1"
    : >"$2"
    sink_port=$(bench_free_port)
    /usr/sbin/smtp-sink -u nobody "127.0.0.1:$sink_port" 1024 >"$1" 2>"$2" &
    sink_pid=$!
    bench_wait_port "$sink_port" && return 0
    echo "$bench_name: smtp-sink did not start: $(cat "$2")" >&2
    exit 1
}

bench_sink_stop() {
    bench_stop "$sink_pid"
    sink_pid=""
}
