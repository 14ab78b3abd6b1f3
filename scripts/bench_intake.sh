#!/usr/bin/env bash
# bench_intake.sh - `scripts/bench.sh intake`: the SMTP intake of `volley run
# --listen` (queue on disk, full durability), delivering to a `volley sink`.
#  1. throughput: Postfix's smtp-source sends 6400 messages of 10 KB over 64
#     sessions (-d: one connection per session, 100 each), REPS times; reports
#     the median messages/s (messages / smtp-source wall time: every 250 came
#     after its durable commit) and the group commit seen by the queue
#     (writes per commit = messages per fsync, from evt=intake_done).
#  2. latency: one Python session sends 300 messages one after the other;
#     reports p50/p99 of "final dot -> 250" (the durable commit) and of
#     "250 -> delivered" (the delivery log's timestamp: the engine wakes on the
#     commit, no poll).
# Output: a summary on stdout and bench-out/intake.json.
# Env: VOLLEY_BIN (default build/volley), INTAKE_BENCH_REPS (default 3), SHARDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
volley=${VOLLEY_BIN:-build/volley}
reps=${INTAKE_BENCH_REPS:-3}
shards=${SHARDS:-2}
source_bin=/usr/sbin/smtp-source
for b in "$source_bin" "$volley"; do
    [ -x "$b" ] || { echo "bench_intake: $b missing (scripts/setup.sh; build)" >&2; exit 1; }
done
mkdir -p bench-out
tmp=$(mktemp -d)
sink_pid="" run_pid=""
stop() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && { kill -TERM "$1"; wait "$1" || true; }; }
cleanup() { stop "$run_pid"; stop "$sink_pid"; rm -rf "$tmp"; }
trap cleanup EXIT

"$volley" sink --listen 127.0.0.1:0 >"$tmp/sink.out" 2>&1 &
sink_pid=$!
for _ in $(seq 200); do
    sport=$(sed -n 's/^sink: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/sink.out")
    [ -n "$sport" ] && break
    sleep 0.02
done
[ -n "$sport" ] || { echo "bench_intake: sink did not start" >&2; exit 1; }

# start_run -> sets run_pid, port (a fresh queue each time)
start_run() {
    rm -rf "$tmp/q" "$tmp/dlog"
    VOLLEY_LOG=info "$volley" run --data "$tmp/q" --shards "$shards" --quiet \
        --listen 127.0.0.1:0 --route "*=127.0.0.1:$sport" --log "$tmp/dlog" \
        --max-conns-per-ip 1000 2>"$tmp/run.err" &
    run_pid=$!
    port=""
    for _ in $(seq 200); do
        port=$(sed -n 's/^volley run: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/run.err")
        [ -n "$port" ] && return 0
        sleep 0.02
    done
    echo "bench_intake: volley run did not start: $(cat "$tmp/run.err")" >&2
    exit 1
}

rates=() per_commit=()
for r in $(seq "$reps"); do
    start_run
    t0=$(date +%s.%N)
    "$source_bin" -d -s 64 -m 6400 -l 10240 -f s@src.test -t r@dst.test -M bench.test \
        "127.0.0.1:$port" >/dev/null
    t1=$(date +%s.%N)
    stop "$run_pid"; run_pid=""
    rate=$(python3 -c "print('%.0f' % (6400 / ($t1 - $t0)))")
    wpc=$(sed -n 's/.*evt=intake_done accepted=\([0-9]*\) .*queue_commits=\([0-9]*\) queue_writes=\([0-9]*\).*/\1 \2 \3/p' "$tmp/run.err" \
          | awk '{ printf "%.1f", $3 / ($2 ? $2 : 1) }')
    echo "run $r: $rate msg/s, queue writes per commit $wpc (engine completions included)"
    rates+=("$rate") per_commit+=("$wpc")
done

start_run
python3 - "$port" "$tmp/dlog" >"$tmp/lat.json" <<'PY'
import json, socket, sys, time
port, dlog = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # no Nagle wait on ".\r\n"
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if l[3:4] != b"-":
            return l.decode()
reply(); s.sendall(b"EHLO lat.test\r\n"); reply()
body = b"From: s@src.test\r\nSubject: latency\r\n\r\n" + b"x" * 70 + b"\r\n"
acks, t_ack = [], {}
for i in range(300):
    s.sendall(b"MAIL FROM:<s@src.test>\r\nRCPT TO:<l%d@dst.test>\r\nDATA\r\n" % i)
    reply(); reply(); reply()
    s.sendall(body)
    t = time.time(); s.sendall(b".\r\n"); l = reply(); t2 = time.time()
    acks.append(t2 - t)
    t_ack[l.split()[-1]] = t2
s.sendall(b"QUIT\r\n"); reply()
deliv = []
end = time.time() + 30
while time.time() < end:
    ev = [json.loads(x) for x in open(dlog)] if __import__("os").path.exists(dlog) else []
    d = {e["id"]: e["ts"] for e in ev if e.get("event") == "delivered"}
    if all(k in d for k in t_ack):
        break
    time.sleep(0.1)
import datetime
for k, t2 in t_ack.items():
    if k in d:
        ts = datetime.datetime.strptime(d[k], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        deliv.append(ts - t2)
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(len(v) * p))] * 1000 if v else -1
print(json.dumps({"dot_to_250_ms_p50": round(pct(acks, .5), 2),
                  "dot_to_250_ms_p99": round(pct(acks, .99), 2),
                  "ack_to_delivered_ms_p50": round(pct(deliv, .5), 2),
                  "ack_to_delivered_ms_p99": round(pct(deliv, .99), 2),
                  "delivered": len(deliv), "sent": len(acks)}))
PY
stop "$run_pid"; run_pid=""
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
lat=$(cat "$tmp/lat.json")
echo "intake: median $(med "${rates[@]}") msg/s over $reps runs (6400 x 10 KB, 64 sessions," \
     "$shards shards); latency $lat"
printf '{"msgs_per_s":[%s],"median_msgs_per_s":%s,"writes_per_commit":[%s],"latency":%s}\n' \
    "$(IFS=,; echo "${rates[*]}")" "$(med "${rates[@]}")" "$(IFS=,; echo "${per_commit[*]}")" \
    "$lat" >bench-out/intake.json
