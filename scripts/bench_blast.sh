#!/usr/bin/env bash
# bench_blast.sh - `scripts/bench.sh blast`: volley blast against Postfix's
# smtp-source, each at full speed into the same receivers.
#
# Receivers, one at a time: `volley sink` (1 reactor thread) and Postfix's
# smtp-sink. Senders, alternating, REPS times for each receiver:
#   volley blast:  closed loop, S sessions, N messages of 10 KB (content), 100
#                  messages per connection, default threads (one per core);
#   smtp-source:   -s S sessions, -m N messages, -l 10240 payload, -d (reuse the
#                  connection): N/S = 100 messages per connection.
# Both pipeline only what they can (smtp-source does not pipeline; blast uses
# PIPELINING, which both receivers offer). Reported per receiver and sender:
# the median msg/s (N / the sender's wall time) and the sender's CPU (user+sys
# of the whole process, from wait4's rusage) in microseconds per message, with
# min..max as the noise; then the ratios of the medians blast / smtp-source.
# The volley sink's own count must equal N for every run (else the run fails).
# Target: blast >= 1.5x smtp-source's rate at <= 0.5x its CPU per message.
# Output: summary on stdout and bench-out/blast.json.
# Env: VOLLEY_BIN (default build/volley), REPS (5), S (100), N (S * 100).
# Senders and receivers share the machine's cores (and other users').
set -euo pipefail
cd "$(dirname "$0")/.."
volley=${VOLLEY_BIN:-build/volley}
reps=${REPS:-5} sessions=${S:-100}
msgs=${N:-$((sessions * 100))}
msg_len=10240
source_bin=/usr/sbin/smtp-source sink_bin=/usr/sbin/smtp-sink
. scripts/bench_lib.sh
bench_need "scripts/setup.sh --bench; build" "$source_bin" "$sink_bin" "$volley"
bench_init

# timed CMD... : run it; "wall_s cpu_s" of it (rusage of the child) to $tmp/time
cat >"$tmp/timed.py" <<'PY'
import os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[2:], stdout=open(sys.argv[1] + ".out", "wb"), stderr=subprocess.STDOUT)
_, status, ru = os.wait4(p.pid, 0)
t1 = time.perf_counter()
open(sys.argv[1], "w").write("%.6f %.6f\n" % (t1 - t0, ru.ru_utime + ru.ru_stime))
sys.exit(os.waitstatus_to_exitcode(status))
PY
timed() { python3 "$tmp/timed.py" "$tmp/time" "$@"; }

# start_sink KIND -> sets sink_pid and sink_port (bench_lib.sh)
start_sink() {
    if [ "$1" = volley-sink ]; then
        bench_sink_start "$tmp/out" "$tmp/err" --threads 1 --json
    else
        bench_smtp_sink_start "$tmp/out" "$tmp/err"
        sleep 0.1                          # the probe connection is done and counted out
    fi
}

# run_one SINK SENDER -> "msg_per_s cpu_us_per_msg bytes_per_msg" in $tmp/result
run_one() {
    start_sink "$1"
    if [ "$2" = blast ]; then
        # content 10240 + the ~170 octets of headers smtp-source adds to its -l payload
        timed "$volley" blast "127.0.0.1:$sink_port" \
            --concurrency "$sessions" --count "$msgs" --msgs-per-conn 100 --size 10410 \
            --quiet --json "$tmp/blast.json" \
            || { echo "bench_blast: volley blast failed: $(tail -5 "$tmp/time.out")" >&2; exit 1; }
        ok=$(python3 -c "import json; print(json.load(open('$tmp/blast.json'))['messages']['ok'])")
        [ "$ok" = "$msgs" ] || { echo "bench_blast: blast: $ok of $msgs ok" >&2; exit 1; }
    else
        timed "$source_bin" -d -s "$sessions" -m "$msgs" \
            -l "$msg_len" -f bench@example.org -t sink@example.net -M client.example.org \
            "127.0.0.1:$sink_port" \
            || { echo "bench_blast: smtp-source failed: $(tail -5 "$tmp/time.out")" >&2; exit 1; }
    fi
    bench_sink_stop
    local bytes=0
    if [ "$1" = volley-sink ]; then
        read -r got bytes < <(grep '"why":"exit"' "$tmp/out" | python3 -c \
            'import json,sys; d=json.load(sys.stdin); print(d["transactions"], d["bytes"])')
        [ "$got" = "$msgs" ] || { echo "bench_blast: $2: the sink counted $got of $msgs" >&2; exit 1; }
    fi
    read -r wall cpu <"$tmp/time"
    python3 -c "print('%.0f %.2f %.0f' % ($msgs/$wall, $cpu*1e6/$msgs, $bytes/$msgs))" \
        >"$tmp/result"
}

echo "bench_blast: N=$msgs messages, $sessions sessions, 100 messages per connection, 10 KB; REPS=$reps"
declare -A rate cpu size
for sink in volley-sink smtp-sink; do
    for sender in blast smtp-source; do rate[$sink.$sender]=""; cpu[$sink.$sender]=""; done
done
for r in $(seq "$reps"); do
    for sink in volley-sink smtp-sink; do
        for sender in blast smtp-source; do
            run_one "$sink" "$sender"
            read -r m c b <"$tmp/result"
            [ "$sink" = volley-sink ] && size[$sender]=$b
            echo "run $r $sink <- $sender: $m msg/s, $c us CPU per message"
            rate[$sink.$sender]+="$m "
            cpu[$sink.$sender]+="$c "
        done
    done
done

mkdir -p bench-out
python3 - "$reps" "$msgs" "$sessions" "${size[blast]}" "${size[smtp-source]}" \
    "${rate[volley-sink.blast]}" "${cpu[volley-sink.blast]}" \
    "${rate[volley-sink.smtp-source]}" "${cpu[volley-sink.smtp-source]}" \
    "${rate[smtp-sink.blast]}" "${cpu[smtp-sink.blast]}" \
    "${rate[smtp-sink.smtp-source]}" "${cpu[smtp-sink.smtp-source]}" <<'PY'
import json, statistics, sys
reps, n, s = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
f = lambda v: [float(x) for x in v.split()]
med = statistics.median
out = {"suite": "blast", "messages": n, "sessions": s, "msgs_per_conn": 100,
       "content_bytes_at_sink": {"blast": int(sys.argv[4]), "smtp-source": int(sys.argv[5])},
       "repetitions": reps, "receivers": {}}
args = sys.argv[6:]
ok = True
for i, sink in enumerate(("volley-sink", "smtp-sink")):
    d = {}
    for j, sender in enumerate(("blast", "smtp-source")):
        r, c = f(args[4 * i + 2 * j]), f(args[4 * i + 2 * j + 1])
        d[sender] = {"msg_per_s_median": med(r), "msg_per_s_min": min(r), "msg_per_s_max": max(r),
                     "cpu_us_per_msg_median": med(c), "cpu_us_per_msg_min": min(c),
                     "cpu_us_per_msg_max": max(c), "runs_msg_per_s": r, "runs_cpu_us_per_msg": c}
    rr = d["blast"]["msg_per_s_median"] / d["smtp-source"]["msg_per_s_median"]
    cr = d["blast"]["cpu_us_per_msg_median"] / d["smtp-source"]["cpu_us_per_msg_median"]
    d["rate_ratio_blast_to_source"] = round(rr, 3)
    d["cpu_ratio_blast_to_source"] = round(cr, 3)
    out["receivers"][sink] = d
    for sender in ("blast", "smtp-source"):
        x = d[sender]
        print("%-11s <- %-11s %8.0f msg/s (%.0f..%.0f)   %7.2f us CPU/msg (%.2f..%.2f)" % (
            sink, sender, x["msg_per_s_median"], x["msg_per_s_min"], x["msg_per_s_max"],
            x["cpu_us_per_msg_median"], x["cpu_us_per_msg_min"], x["cpu_us_per_msg_max"]))
    met = rr >= 1.5 and cr <= 0.5
    ok &= met
    print("%-11s    blast/smtp-source: rate %.2fx, CPU per message %.2fx (target >= 1.5x, <= 0.5x: %s)"
          % (sink, rr, cr, "met" if met else "NOT met"))
out["target_met"] = ok
json.dump(out, open("bench-out/blast.json", "w"), indent=1)
print("bench-out/blast.json written")
PY
