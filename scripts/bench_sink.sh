#!/usr/bin/env bash
# bench_sink.sh - `scripts/bench.sh sink`: Postfix's smtp-source sends 10 KB
# messages over 64 sessions, 100 messages per session (-d: one connection per
# session), first to `volley sink` (1 reactor thread), then to Postfix's
# smtp-sink, REPS times each, alternating. Reports per sink the median msg/s
# (messages / smtp-source wall time) and the sink's CPU seconds (user+system
# from /proc/PID/stat, during the run only) per 10,000 messages, with min..max
# as the noise. Target: volley sink <= 1/2 of smtp-sink's CPU per message.
# Output: a summary on stdout and bench-out/sink.json.
# Env: VOLLEY_BIN (default build/volley), SINK_BENCH_REPS (default 5).
# Both sinks and smtp-source share the machine's cores (and other users').
set -euo pipefail
cd "$(dirname "$0")/.."
volley=${VOLLEY_BIN:-build/volley}
reps=${SINK_BENCH_REPS:-5}
sessions=64 per_session=100 msg_len=10240
msgs=$((sessions * per_session))
source_bin=/usr/sbin/smtp-source sink_bin=/usr/sbin/smtp-sink
. scripts/bench_lib.sh
bench_need "scripts/setup.sh --bench; build" "$source_bin" "$sink_bin" "$volley"
tick=$(getconf CLK_TCK)
bench_init

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# start_sink KIND -> sets sink_pid and sink_port (bench_lib.sh)
start_sink() {
    if [ "$1" = volley ]; then
        bench_sink_start "$tmp/out" "$tmp/err" --json
    else
        bench_smtp_sink_start "$tmp/out" "$tmp/err"
    fi
}

# run_one KIND -> writes "msg_per_s cpu_s_per_10k" to $tmp/result (no subshell: the
# EXIT trap must see $sink_pid)
run_one() {
    start_sink "$1"
    [ "$1" = smtp-sink ] && sleep 0.1      # the probe connection is done and counted out
    local c0 c1 t0 t1
    c0=$(cpu_ticks "$sink_pid")
    t0=$(date +%s.%N)
    "$source_bin" -d -s "$sessions" -m "$msgs" -l "$msg_len" -f bench@example.org \
        -t sink@example.net -M client.example.org "127.0.0.1:$sink_port" >"$tmp/source" 2>&1 \
        || { echo "bench_sink: smtp-source failed: $(tail -5 "$tmp/source")" >&2; exit 1; }
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "$sink_pid")
    bench_sink_stop
    if [ "$1" = volley ]; then
        got=$(grep '"why":"exit"' "$tmp/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["transactions"])')
        [ "$got" = "$msgs" ] || { echo "bench_sink: volley sink counted $got of $msgs" >&2; exit 1; }
    fi
    python3 -c "t=$t1-$t0; cpu=($c1-$c0)/$tick; print('%.0f %.3f' % ($msgs/t, cpu*10000/$msgs))" \
        >"$tmp/result"
}

declare -A rate cpu
for kind in volley smtp-sink; do rate[$kind]=""; cpu[$kind]=""; done
for r in $(seq "$reps"); do
    for kind in volley smtp-sink; do
        run_one "$kind"
        read -r m c <"$tmp/result"
        echo "run $r $kind: $m msg/s, $c CPU s per 10k messages"
        rate[$kind]+="$m "
        cpu[$kind]+="$c "
    done
done

mkdir -p bench-out
python3 - "$reps" "$msgs" "${rate[volley]}" "${cpu[volley]}" "${rate[smtp-sink]}" \
    "${cpu[smtp-sink]}" <<'PY'
import json, statistics, sys
reps, msgs = int(sys.argv[1]), int(sys.argv[2])
def series(s): return [float(x) for x in s.split()]
out = {"suite": "sink", "messages_per_run": msgs, "sessions": 64, "msg_bytes": 10240,
       "repetitions": reps, "sinks": {}}
for name, r, c in (("volley", sys.argv[3], sys.argv[4]), ("smtp-sink", sys.argv[5], sys.argv[6])):
    r, c = series(r), series(c)
    out["sinks"][name] = {"msg_per_s_median": statistics.median(r), "msg_per_s_min": min(r),
                          "msg_per_s_max": max(r), "cpu_s_per_10k_median": statistics.median(c),
                          "cpu_s_per_10k_min": min(c), "cpu_s_per_10k_max": max(c)}
v, p = out["sinks"]["volley"], out["sinks"]["smtp-sink"]
ratio = v["cpu_s_per_10k_median"] / p["cpu_s_per_10k_median"] if p["cpu_s_per_10k_median"] else 0
out["cpu_ratio_volley_to_smtp_sink"] = round(ratio, 3)
out["target_met"] = ratio <= 0.5
json.dump(out, open("bench-out/sink.json", "w"), indent=1)
for name, s in out["sinks"].items():
    print("%-9s msg/s median %6.0f (%.0f..%.0f)  CPU s/10k msgs median %.3f (%.3f..%.3f)" % (
        name, s["msg_per_s_median"], s["msg_per_s_min"], s["msg_per_s_max"],
        s["cpu_s_per_10k_median"], s["cpu_s_per_10k_min"], s["cpu_s_per_10k_max"]))
print("CPU per message, volley / smtp-sink: %.2f (target <= 0.50: %s)" % (
    ratio, "met" if out["target_met"] else "NOT met"))
PY
