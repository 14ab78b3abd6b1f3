#!/usr/bin/env bash
# bench_intake.sh - `scripts/bench.sh intake`: the SMTP intake of `volley run
# --listen`, all parts in one run on this machine.
#  1. throughput: Postfix's smtp-source sends 6400 messages of 10 KB over 64
#     sessions (-d: one connection per session, 100 messages each on average)
#     to each of three servers, REPS times, alternating:
#       volley   `volley run --listen --hold`: a fresh queue on disk, every 250
#                after the durable (fsync'd) commit, delivery paused;
#       sink     `volley sink`: no durability at all (the upper bound);
#       postfix  a private Postfix instance (its own config and queue directory
#                under a temp dir, smtpd on a loopback port, every message put on
#                hold by an access table answering HOLD, started and stopped
#                here; the system's Postfix is never touched).
#       volley+events  (INTAKE_EVENTS=1, the default) as volley, with a webhook
#                event sink (--events-webhook): each recipient's "injected"
#                event is written in the commit that queues it and sent to a
#                receiver on loopback (Python, SCHED_IDLE: a remote system's
#                stand-in), which must count every one; ratio to volley.
#     Per run: messages / smtp-source's wall time, and the server's CPU (utime +
#     stime from /proc/PID/stat; for Postfix the master, the processes it reaped
#     and those still alive under it) per message. Reported: median (min..max)
#     per server, the ratios volley/sink and volley/postfix of the medians, and
#     for volley the queue's writes per commit (messages per fsync).
#  2. latency (scripts/bench_intake_lat.py): `volley run --listen` (fsync on)
#     delivering to a `volley sink`, tcpdump capturing both ports; smtp-source
#     sends LAT_MSGS messages (10,000) one at a time over one session, then
#     LAT_MSGS over LAT_CLIENTS (100) concurrent sessions (each one message at
#     a time); per message (by queue id, from the packets' timestamps): the
#     client's MAIL -> the sink's 250 to that message (the remote 250), split
#     into MAIL -> final dot (the SMTP exchange), final dot -> 250 (the durable
#     commit), 250 -> volley's MAIL FROM at the sink (wake on commit, lease,
#     connection), and the transaction at the sink; plus 250 -> the delivery
#     log's line. p50, p99 and max of each.
# Output: a summary on stdout and bench-out/intake.json.
# Env: VOLLEY_BIN (default build/volley), INTAKE_BENCH_REPS (default 3), SHARDS (2),
#      INTAKE_EVENTS (1: also volley+events; 0: not),
#      LAT_MSGS (10000), LAT_CLIENTS (100), INTAKE_BENCH_PARTS ("throughput latency"),
#      LAT_RUN_ARGS (more `volley run` options for the latency part, e.g. --conns-per-dest 100).
set -euo pipefail
cd "$(dirname "$0")/.."
volley=${VOLLEY_BIN:-build/volley}
reps=${INTAKE_BENCH_REPS:-3}
shards=${SHARDS:-2}
lat_msgs=${LAT_MSGS:-10000}
lat_clients=${LAT_CLIENTS:-100}
parts=${INTAKE_BENCH_PARTS:-throughput latency}
with_events=${INTAKE_EVENTS:-1}
sessions=64 msgs=6400 msg_len=10240
source_bin=/usr/sbin/smtp-source postfix_bin=/usr/sbin/postfix tcpdump_bin=/usr/bin/tcpdump
. scripts/bench_lib.sh
bench_need "scripts/setup.sh; build" "$source_bin" "$postfix_bin" "$tcpdump_bin" "$volley"
id postfix >/dev/null 2>&1 || { echo "bench_intake: no 'postfix' user (scripts/setup.sh)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench_intake: the private Postfix instance needs root" >&2; exit 1; }
mkdir -p bench-out
tick=$(getconf CLK_TCK)
run_pid="" pf_up="" dump_pid="" recv_pid=""
stop() { bench_stop "$1"; }
pf_cmd() { "$postfix_bin" -c "$tmp/pf/etc" "$@" >>"$tmp/pf/cmd.log" 2>&1; }
bench_cleanup_more() {
    stop "$dump_pid"; stop "$run_pid"; stop "$recv_pid"
    if [ -n "$pf_up" ]; then pf_cmd stop || true; fi
}
bench_init
chmod 755 "$tmp"                 # Postfix's daemons (user postfix) reach their queue under it

# CPU ticks of PID and of every process under it, alive or reaped by it.
cpu_tree() {
    python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
stats = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            s = open("/proc/%s/stat" % d).read()
        except OSError:
            continue
        f = s[s.rindex(")") + 2:].split()
        stats[int(d)] = (int(f[1]), sum(int(x) for x in f[11:15]))  # ppid; utime stime cutime cstime
kids = {}
for p, (pp, _) in stats.items():
    kids.setdefault(pp, []).append(p)
tot, todo = 0, [root]
while todo:
    p = todo.pop()
    if p in stats:
        tot += stats[p][1]
        todo += kids.get(p, [])
print(tot)
PY
}

start_sink() {  # ARGS... -> sink_pid, sport
    bench_sink_start "$tmp/sink.out" "$tmp/sink.err" "$@"
    sport=$sink_port
}

# start_run EXTRA_ARGS... -> run_pid, port (a fresh queue each time)
start_run() {
    rm -rf "$tmp/q" "$tmp/dlog"
    : >"$tmp/run.err"                 # never the previous run's port (read while it starts)
    VOLLEY_LOG=info "$volley" run --data "$tmp/q" --shards "$shards" --quiet \
        --listen 127.0.0.1:0 --log "$tmp/dlog" --max-conns-per-ip 1000 "$@" 2>"$tmp/run.err" &
    run_pid=$!
    port=""
    for _ in $(seq 300); do
        port=$(sed -n 's/^volley run: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/run.err")
        [ -n "$port" ] && return 0
        sleep 0.02
    done
    echo "bench_intake: volley run did not start: $(cat "$tmp/run.err")" >&2
    exit 1
}

# A private Postfix: config, queue and data directories under $tmp/pf; smtpd on
# 127.0.0.1:$pfport; check_client_access static:HOLD puts every message on hold
# (nothing is delivered); in_flow_delay 0 (with nothing delivered, Postfix's
# flow control would otherwise pause smtpd up to 1 s per message); no reverse
# lookup of the client (volley does none either); its log in $tmp/pf/maillog.
pf_setup() {
    pfport=$(bench_free_port)
    rm -rf "$tmp/pf"
    mkdir -p "$tmp/pf/etc" "$tmp/pf/spool" "$tmp/pf/data"
    chown postfix "$tmp/pf/data"
    cat >"$tmp/pf/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $tmp/pf/spool
data_directory = $tmp/pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = pfbench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = check_client_access static:HOLD, permit_mynetworks, reject
smtpd_peername_lookup = no
in_flow_delay = 0
message_size_limit = 33554432
maillog_file_prefixes = $tmp
maillog_file = $tmp/pf/maillog
EOF
    cat >"$tmp/pf/etc/master.cf" <<EOF
127.0.0.1:$pfport inet n - n - 100 smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

pf_start() {    # -> pf_pid (the master)
    rm -rf "$tmp/pf/spool" && mkdir -p "$tmp/pf/spool"
    pf_cmd start || { echo "bench_intake: postfix start failed: $(cat "$tmp/pf/cmd.log" \
        "$tmp/pf/maillog" 2>/dev/null | tail -5)" >&2; exit 1; }
    pf_up=1
    pf_pid=""
    for _ in $(seq 200); do
        pf_pid=$(cat "$tmp/pf/spool/pid/master.pid" 2>/dev/null | tr -d ' ' || true)
        [ -n "$pf_pid" ] && break
        sleep 0.02
    done
    [ -n "$pf_pid" ] && bench_wait_port "$pfport" || { echo "bench_intake: postfix smtpd not up" >&2; exit 1; }
    sleep 0.2                   # the probe connection's smtpd is done
}

pf_stop() {
    pf_cmd stop || true
    for _ in $(seq 250); do kill -0 "$pf_pid" 2>/dev/null || break; sleep 0.02; done
    pf_up=""
}

# one smtp-source run at 127.0.0.1:$1, CPU of the process tree $2 -> $tmp/result "msg/s us/msg"
source_run() {
    local c0 c1 t0 t1
    c0=$(cpu_tree "$2")
    t0=$(date +%s.%N)
    "$source_bin" -d -s "$sessions" -m "$msgs" -l "$msg_len" -f s@src.test -t r@dst.test \
        -M bench.test "127.0.0.1:$1" >"$tmp/source" 2>&1 \
        || { echo "bench_intake: smtp-source failed: $(tail -5 "$tmp/source")" >&2; exit 1; }
    t1=$(date +%s.%N)
    c1=$(cpu_tree "$2")
    python3 -c "t=$t1-$t0; print('%.0f %.1f' % ($msgs/t, ($c1-$c0)/$tick/$msgs*1e6))" >"$tmp/result"
}

# The events receiver (volley+events; scripts/bench_receiver.py) -> recv_pid, recv_port
recv_start() {
    chrt --idle 0 python3 scripts/bench_receiver.py >"$tmp/recv.port" &
    recv_pid=$!
    recv_port=""
    for _ in $(seq 250); do
        recv_port=$(head -1 "$tmp/recv.port")
        [ -n "$recv_port" ] && break
        sleep 0.02
    done
    [ -n "$recv_port" ] || { echo "bench_intake: the events receiver did not start" >&2; exit 1; }
    echo bench-secret >"$tmp/recv.key"
}
recv_count() {
    python3 -c "import json, urllib.request as u; print(json.load(u.urlopen('http://127.0.0.1:$recv_port/stats', timeout=30))['events'])"
}

if [[ " $parts " == *" throughput "* ]]; then
    pf_setup
    declare -A rate cpu
    wpc=""
    [ "$with_events" = 1 ] && recv_start
    for r in $(seq "$reps"); do
        # volley: durable intake, delivery paused
        start_run --hold
        source_run "$port" "$run_pid"
        stop "$run_pid"; run_pid=""
        read -r m c <"$tmp/result"
        acc=$(sed -n 's/.*evt=intake_done accepted=\([0-9]*\) .*/\1/p' "$tmp/run.err")
        [ "$acc" = "$msgs" ] || { echo "bench_intake: volley accepted '$acc' of $msgs" >&2; exit 1; }
        w=$(sed -n 's/.*evt=intake_done .*queue_commits=\([0-9]*\) queue_writes=\([0-9]*\).*/\1 \2/p' \
            "$tmp/run.err" | awk '{ printf "%.1f", $2 / ($1 ? $1 : 1) }')
        echo "run $r volley (durable, --hold): $m msg/s, $c us CPU/msg, $w queue writes per commit"
        rate[volley]+="$m "; cpu[volley]+="$c "; wpc+="$w "
        # sink: no durability
        start_sink --json
        source_run "$sport" "$sink_pid"
        bench_sink_stop
        read -r m c <"$tmp/result"
        got=$(grep '"why":"exit"' "$tmp/sink.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["transactions"])')
        [ "$got" = "$msgs" ] || { echo "bench_intake: volley sink counted $got of $msgs" >&2; exit 1; }
        echo "run $r sink (no durability): $m msg/s, $c us CPU/msg"
        rate[sink]+="$m "; cpu[sink]+="$c "
        # Postfix: hold queue
        pf_start
        source_run "$pfport" "$pf_pid"
        held=$(find "$tmp/pf/spool/hold" -type f | wc -l)
        pf_stop
        read -r m c <"$tmp/result"
        [ "$held" = "$msgs" ] || { echo "bench_intake: postfix held $held of $msgs" >&2; exit 1; }
        echo "run $r postfix (hold queue): $m msg/s, $c us CPU/msg"
        rate[postfix]+="$m "; cpu[postfix]+="$c "
        [ "$with_events" = 1 ] || continue
        # volley + a webhook event sink: an "injected" event per recipient
        n0=$(recv_count)
        start_run --hold --events-webhook "http://127.0.0.1:$recv_port/e" \
            --events-secret-file "$tmp/recv.key" --events-drain 60s
        source_run "$port" "$run_pid"
        stop "$run_pid"; run_pid=""                  # drains the outbox first
        read -r m c <"$tmp/result"
        got=$(( $(recv_count) - n0 ))
        [ "$got" = "$msgs" ] || { echo "bench_intake: the receiver got $got injected events of $msgs" >&2; exit 1; }
        echo "run $r volley+events (durable, --hold, webhook): $m msg/s, $c us CPU/msg"
        rate[volley+events]+="$m "; cpu[volley+events]+="$c "
    done
    python3 - "$reps" "$msgs" "$shards" "${rate[volley]}" "${cpu[volley]}" "${rate[sink]}" \
        "${cpu[sink]}" "${rate[postfix]}" "${cpu[postfix]}" "$wpc" "${rate[volley+events]:-}" \
        "${cpu[volley+events]:-}" >"$tmp/tp.json" <<'PY'
import json, statistics, sys
reps, msgs, shards = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def series(s): return [float(x) for x in s.split()]
out = {"messages_per_run": msgs, "sessions": 64, "msg_bytes": 10240, "repetitions": reps,
       "volley_shards": shards, "servers": {}}
names = [("volley", 4), ("sink", 6), ("postfix", 8)] + ([("volley+events", 11)] if sys.argv[11] else [])
for name, i in names:
    r, c = series(sys.argv[i]), series(sys.argv[i + 1])
    out["servers"][name] = {"msg_per_s": r, "msg_per_s_median": statistics.median(r),
                            "msg_per_s_min": min(r), "msg_per_s_max": max(r),
                            "cpu_us_per_msg": c, "cpu_us_per_msg_median": statistics.median(c),
                            "cpu_us_per_msg_min": min(c), "cpu_us_per_msg_max": max(c)}
out["servers"]["volley"]["queue_writes_per_commit"] = series(sys.argv[10])
v, s, p = (out["servers"][k]["msg_per_s_median"] for k in ("volley", "sink", "postfix"))
out["ratio_volley_to_sink"] = round(v / s, 3)
out["ratio_volley_to_postfix"] = round(v / p, 2)
out["target_0_8x_sink_met"] = v / s >= 0.8
out["target_10x_postfix_met"] = v / p >= 10
if "volley+events" in out["servers"]:
    out["ratio_events_on_off"] = round(out["servers"]["volley+events"]["msg_per_s_median"] / v, 3)
print(json.dumps(out))
PY
    python3 - "$tmp/tp.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
for name, s in o["servers"].items():
    print("%-8s msg/s median %6.0f (%.0f..%.0f)  CPU us/msg median %6.1f (%.1f..%.1f)" % (
        name, s["msg_per_s_median"], s["msg_per_s_min"], s["msg_per_s_max"],
        s["cpu_us_per_msg_median"], s["cpu_us_per_msg_min"], s["cpu_us_per_msg_max"]))
print("volley/sink %.2f (target >= 0.8: %s); volley/postfix %.1f (target >= 10: %s)" % (
    o["ratio_volley_to_sink"], "met" if o["target_0_8x_sink_met"] else "NOT met",
    o["ratio_volley_to_postfix"], "met" if o["target_10x_postfix_met"] else "NOT met"))
if "ratio_events_on_off" in o:
    print("volley with injected events (webhook) / without: %.3f" % o["ratio_events_on_off"])
PY
fi

if [[ " $parts " == *" latency "* ]]; then
    start_sink
    # shellcheck disable=SC2086
    start_run --route "*=127.0.0.1:$sport" ${LAT_RUN_ARGS:-}
    tcpdump -i lo -n -s 0 -B 65536 -U --time-stamp-precision=nano -w "$tmp/sink.pcap" \
        "tcp port $sport or tcp port $port" 2>"$tmp/tcpdump.err" &
    dump_pid=$!
    for _ in $(seq 250); do grep -q "listening on" "$tmp/tcpdump.err" && break; sleep 0.02; done
    python3 scripts/bench_intake_lat.py --port "$port" --pcap "$tmp/sink.pcap" \
        --sink-port "$sport" --dlog "$tmp/dlog" --msgs "$lat_msgs" --clients "$lat_clients" \
        >"$tmp/lat.json"
    kill -INT "$dump_pid"; wait "$dump_pid" || true; dump_pid=""
    dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel$/\1/p' "$tmp/tcpdump.err")
    [ "${dropped:-x}" = 0 ] || echo "bench_intake: tcpdump: $(cat "$tmp/tcpdump.err")" >&2
    stop "$run_pid"; run_pid=""
    bench_sink_stop
fi

python3 - "$tmp/tp.json" "$tmp/lat.json" <<'PY'
import json, os, sys
out = {"suite": "intake"}
if os.path.exists(sys.argv[1]):
    out["throughput"] = json.load(open(sys.argv[1]))
if os.path.exists(sys.argv[2]):
    out["latency"] = json.load(open(sys.argv[2]))
    for phase, d in out["latency"].items():
        print("latency, %s:" % phase)
        for k, v in d.items():
            if isinstance(v, dict):
                print("  %-24s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms" % (k, v["p50"], v["p99"], v["max"]))
            else:
                print("  %-24s %s" % (k, v))
json.dump(out, open("bench-out/intake.json", "w"), indent=1)
PY
