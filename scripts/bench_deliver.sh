#!/usr/bin/env bash
# bench_deliver.sh - `scripts/bench.sh deliver`: the end-to-end delivery benchmark.
#
# One `volley sink` (1 reactor thread) on 127.0.0.1 receives, REPS times each,
# alternating:
#   volley:       `volley bench`: N messages of 10 KB, 1 recipient each, over 100
#                 domains, queued durably (fsync'd), then delivered from the queue
#                 like `volley run --until-empty` (static route to the sink);
#   smtp-source:  Postfix's smtp-source sends the same N messages of 10 KB to the
#                 same sink, with the same concurrency (C sessions) and messages
#                 per session (-d: one connection per session, N/C messages each).
# volley's concurrency: S shards x C/S connections per destination, N/C messages per
# connection. Reports medians (min..max) of msg/s and CPU seconds per 10,000
# messages for each (volley: getrusage of the engine's delivery phase; smtp-source:
# its user+sys), and the ratio volley/smtp-source of the medians.
# Output: summary on stdout, bench-out/deliver.json.
# Env: N (100000), REPS (3), C (40), S (2), VOLLEY_BIN (build/volley).
set -euo pipefail
cd "$(dirname "$0")/.."
volley=${VOLLEY_BIN:-build/volley}
n=${N:-100000} reps=${REPS:-3} conc=${C:-40} shards=${S:-2}
per_conn=$(( (n + conc - 1) / conc ))
source_bin=/usr/sbin/smtp-source
. scripts/bench_lib.sh
bench_need "scripts/setup.sh --bench; build" "$source_bin" "$volley"
bench_init

bench_sink_start "$tmp/sink.out" "$tmp/sink.err" --threads 1 --json
port=$sink_port
echo "bench_deliver: N=$n messages x 10240 octets, $conc sessions x $per_conn messages, sink 127.0.0.1:$port"

vol_rate="" vol_cpu="" src_rate="" src_cpu="" enq_rate=""
for r in $(seq "$reps"); do
    rm -rf "$tmp/q"
    "$volley" bench --data "$tmp/q" --shards "$shards" --messages "$n" --size 10240 \
        --domains 100 --route "*=127.0.0.1:$port" --conns-per-dest $((conc / shards)) \
        --msgs-per-conn "$per_conn" >"$tmp/vol.out" 2>&1 \
        || { echo "bench_deliver: volley bench failed:"; cat "$tmp/vol.out"; exit 1; } >&2
    line=$(grep '^{"bench":"deliver"' "$tmp/vol.out")
    read -r m c e < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("%.0f %.3f %.0f" % (d["msg_per_s"], d["cpu_s_per_10k"], d["messages"]/d["enqueue_s"]))' "$line")
    echo "run $r volley:      $m msg/s, $c CPU s per 10k messages (queued at $e msg/s)"
    vol_rate+="$m " vol_cpu+="$c " enq_rate+="$e "
    rm -rf "$tmp/q"

    t0=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$tmp/time" "$source_bin" -d -s "$conc" -m "$n" -l 10240 \
        -f bench@sender.example -t rcpt@bench0.example -M client.example "127.0.0.1:$port" \
        >"$tmp/src.out" 2>&1 || { echo "bench_deliver: smtp-source failed: $(tail -3 "$tmp/src.out")" >&2; exit 1; }
    t1=$(date +%s.%N)
    read -r m c < <(python3 -c "
u, s = open('$tmp/time').read().split()[-2:]
t = $t1 - $t0
print('%.0f %.3f' % ($n / t, (float(u) + float(s)) * 10000 / $n))")
    echo "run $r smtp-source: $m msg/s, $c CPU s per 10k messages"
    src_rate+="$m " src_cpu+="$c "
done

mkdir -p bench-out
python3 - "$n" "$reps" "$vol_rate" "$vol_cpu" "$src_rate" "$src_cpu" "$enq_rate" <<'PY'
import json, statistics, sys
n, reps = int(sys.argv[1]), int(sys.argv[2])
f = lambda s: [float(x) for x in s.split()]
vr, vc, sr, sc, er = map(f, sys.argv[3:8])
med = statistics.median
out = {"suite": "deliver", "messages": n, "msg_bytes": 10240, "repetitions": reps,
       "volley": {"msg_per_s_median": med(vr), "min": min(vr), "max": max(vr),
                  "cpu_s_per_10k_median": med(vc), "enqueue_msg_per_s_median": med(er)},
       "smtp_source": {"msg_per_s_median": med(sr), "min": min(sr), "max": max(sr),
                       "cpu_s_per_10k_median": med(sc)}}
out["ratio_volley_to_smtp_source"] = round(med(vr) / med(sr), 3) if med(sr) else 0
json.dump(out, open("bench-out/deliver.json", "w"), indent=1)
print("volley      msg/s median %6.0f (%.0f..%.0f)  CPU s/10k %.3f  (queued at %.0f msg/s)" % (
    med(vr), min(vr), max(vr), med(vc), med(er)))
print("smtp-source msg/s median %6.0f (%.0f..%.0f)  CPU s/10k %.3f" % (med(sr), min(sr), max(sr), med(sc)))
print("ratio volley / smtp-source: %.2f" % out["ratio_volley_to_smtp_source"])
PY
