#!/usr/bin/env bash
# bench_http.sh - `scripts/bench.sh http`: the HTTP API of `volley run --http`
# (queue on disk, full durability: every 200 comes after its fsync'd commit),
# delivering to a `volley sink`, against the SMTP intake on the same machine.
#  a. wrk (bench/http_inject.lua): POST /api/inject/v1 of 1 recipient with a
#     personalised ~5 KB template (text + html, merge fields), keep-alive,
#     HTTP_BENCH_CONNS connections from 2 client threads for HTTP_BENCH_SECS:
#     durable messages/s (= 200s/s; a non-200 or a success_count != 1 is
#     counted and reported as an error).
#  b. one request of 10,000 recipients, each with its own merge fields
#     (curl): recipients/s = 10,000 / the request's wall time (until the 200).
#  c. the same load over SMTP: Postfix's smtp-source, 1-recipient messages of
#     5 KB over HTTP_BENCH_CONNS sessions into `volley run --listen`: msg/s.
# Each run uses a fresh queue; REPS runs each, medians with min..max. Beside
# the rates (which move with the machine's load), the CPU time the volley
# process used per message (its utime+stime over the phase, delivery to the
# sink included) is reported: a figure less sensitive to other load.
# Output: a summary on stdout and bench-out/http.json.
# Env: VOLLEY_BIN (default build/volley), HTTP_BENCH_REPS (3), HTTP_BENCH_SECS (10),
#      HTTP_BENCH_CONNS (64), SHARDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
volley=${VOLLEY_BIN:-build/volley}
reps=${HTTP_BENCH_REPS:-3}
secs=${HTTP_BENCH_SECS:-10}
conns=${HTTP_BENCH_CONNS:-64}
shards=${SHARDS:-2}
source_bin=/usr/sbin/smtp-source
. scripts/bench_lib.sh
bench_need "scripts/setup.sh --bench; build" "$source_bin" "$volley" \
    "$(command -v wrk || echo /nonexistent/wrk)" "$(command -v curl || echo /nonexistent/curl)"
mkdir -p bench-out
run_pid=""
bench_cleanup_more() { bench_stop "$run_pid"; }
bench_init
token=bench-token-0123456789abcdef
echo "$token" >"$tmp/token"

bench_sink_start "$tmp/sink.out" "$tmp/sink.err"
sport=$sink_port

# start_run -> sets run_pid, hport, sport_in (a fresh queue each time)
start_run() {
    rm -rf "$tmp/q"
    : >"$tmp/run.err"                 # never the previous run's ports (read while it starts)
    VOLLEY_LOG=info "$volley" run --data "$tmp/q" --shards "$shards" --quiet --route "*=127.0.0.1:$sport" \
        --http 127.0.0.1:0 --http-token-file "$tmp/token" --listen 127.0.0.1:0 \
        --max-conns-per-ip 1000 >/dev/null 2>"$tmp/run.err" &
    run_pid=$!
    hport="" sport_in=""
    for _ in $(seq 300); do
        hport=$(sed -n 's/^volley run: HTTP API on http:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/run.err")
        sport_in=$(sed -n 's/^volley run: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/run.err")
        [ -n "$hport" ] && [ -n "$sport_in" ] && return 0
        sleep 0.02
    done
    echo "bench_http: volley run did not start: $(cat "$tmp/run.err")" >&2
    exit 1
}

python3 - "$tmp/big.json" <<'PY'
import json, sys
para = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
        "incididunt ut labore et dolore magna aliqua.\n")
req = {"envelope_sender": "bench@src.test",
       "content": {"subject": "Hello {{ first }}", "from": {"email": "bench@src.test"},
                   "text_body": "Hi {{ first }},\n" + para * 6 + "code {{ code }}\n",
                   "html_body": "<p>Hi {{ first }}</p>" + ("<p>" + para + "</p>") * 6},
       "recipients": [{"email": "u%d@d%d.test" % (i, i % 50),
                       "substitutions": {"first": "User %d" % i, "code": "C%06d" % i}}
                      for i in range(10000)]}
json.dump(req, open(sys.argv[1], "w"))
PY

a_rates=() b_rates=() c_rates=() a_errs=() a_cpu=() b_cpu=() c_cpu=()
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# us_per N TICKS0 -> CPU microseconds per item of the running volley since TICKS0
us_per() { python3 -c "print('%.0f' % (($(cpu_ticks "$run_pid") - $2) * 1e6 / $tck / $1))"; }
for r in $(seq "$reps"); do
    start_run
    k0=$(cpu_ticks "$run_pid")
    HTTP_TOKEN=$token wrk -t2 -c"$conns" -d"${secs}s" --timeout 30s -s bench/http_inject.lua \
        "http://127.0.0.1:$hport/" >"$tmp/wrk.out" 2>"$tmp/wrk.err" || true
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\)$/\1/p' "$tmp/wrk.out")
    bad=$(grep -c '^bad response' "$tmp/wrk.err" || true)
    non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)$/\1/p' "$tmp/wrk.out")
    [ -n "$rps" ] || { echo "bench_http: wrk failed: $(cat "$tmp/wrk.out" "$tmp/wrk.err")" >&2; exit 1; }
    rps=$(printf '%.0f' "$rps")
    lat=$(sed -n 's/^wrk_summary .*p50_us=\([0-9]*\) p99_us=\([0-9]*\)$/p50 \1 us, p99 \2 us/p' "$tmp/wrk.out")
    nreq=$(sed -n 's/^wrk_summary requests=\([0-9]*\) .*/\1/p' "$tmp/wrk.out")
    sleep 1                                   # let delivery of the last ones finish
    cpu=$(us_per "$nreq" "$k0")
    bench_stop "$run_pid"; run_pid=""
    wpc=$(sed -n 's/.*evt=http_done .*queue_commits=\([0-9]*\) queue_writes=\([0-9]*\).*/\1 \2/p' \
          "$tmp/run.err" | awk '{ printf "%.1f", $2 / ($1 ? $1 : 1) }')
    echo "run $r (a): $rps durable msg/s over HTTP ($conns keep-alive connections; latency $lat;" \
         "non-2xx ${non2xx:-0}, bad bodies $bad; $cpu CPU us/msg; queue writes per commit" \
         "${wpc:-?}, engine completions included)"
    a_rates+=("$rps") a_errs+=("$(( ${non2xx:-0} + bad ))") a_cpu+=("$cpu")

    start_run
    k0=$(cpu_ticks "$run_pid")
    out=$(curl -sS -o "$tmp/big.out" -w '%{http_code} %{time_total}' \
          -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
          --data-binary @"$tmp/big.json" "http://127.0.0.1:$hport/api/inject/v1")
    code=${out%% *} t=${out#* }
    grep -q '"success_count":10000' "$tmp/big.out" && [ "$code" = 200 ] || {
        echo "bench_http: the 10,000-recipient request failed: $code $(head -c 300 "$tmp/big.out")" >&2
        exit 1; }
    rate=$(python3 -c "print('%.0f' % (10000 / $t))")
    cpu=$(us_per 10000 "$k0")
    echo "run $r (b): $rate rcpts/s (10,000 personalised recipients in one request: ${t}s;" \
         "$cpu CPU us/rcpt until the 200)"
    b_rates+=("$rate") b_cpu+=("$cpu")
    bench_stop "$run_pid"; run_pid=""

    start_run
    n=$(( conns * 300 ))
    k0=$(cpu_ticks "$run_pid")
    t0=$(date +%s.%N)
    "$source_bin" -s "$conns" -m "$n" -l 5120 -f bench@src.test -t r@dst.test -M bench.test \
        "127.0.0.1:$sport_in" >/dev/null
    t1=$(date +%s.%N)
    rate=$(python3 -c "print('%.0f' % ($n / ($t1 - $t0)))")
    sleep 1
    cpu=$(us_per "$n" "$k0")
    echo "run $r (c): $rate msg/s over SMTP (smtp-source, $n x 5 KB, $conns sessions; $cpu CPU us/msg)"
    c_rates+=("$rate") c_cpu+=("$cpu")
    bench_stop "$run_pid"; run_pid=""
done

med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rng() { printf '%s\n' "$@" | sort -n | awk 'NR==1{lo=$1} {hi=$1} END {print lo ".." hi}'; }
am=$(med "${a_rates[@]}") bm=$(med "${b_rates[@]}") cm=$(med "${c_rates[@]}")
ratio=$(python3 -c "print('%.2f' % ($am / $cm))")
echo "http: (a) median $am msg/s ($(rng "${a_rates[@]}")), errors ${a_errs[*]}," \
     "$(med "${a_cpu[@]}") CPU us/msg; (b) median $bm rcpts/s ($(rng "${b_rates[@]}")), $(med "${b_cpu[@]}")" \
     "CPU us/rcpt; (c) SMTP median $cm msg/s ($(rng "${c_rates[@]}")), $(med "${c_cpu[@]}") CPU us/msg;" \
     "HTTP/SMTP $ratio; $reps runs, $shards shards, load $(cut -d' ' -f1-3 /proc/loadavg)"
j() { local IFS=,; echo "$*"; }
printf '{"a_msgs_per_s":[%s],"a_median":%s,"a_errors":[%s],"a_cpu_us_per_msg":[%s],"b_rcpts_per_s":[%s],"b_median":%s,"b_cpu_us_per_rcpt":[%s],"c_smtp_msgs_per_s":[%s],"c_median":%s,"c_cpu_us_per_msg":[%s],"http_over_smtp":%s}\n' \
    "$(j "${a_rates[@]}")" "$am" "$(j "${a_errs[@]}")" "$(j "${a_cpu[@]}")" "$(j "${b_rates[@]}")" \
    "$bm" "$(j "${b_cpu[@]}")" "$(j "${c_rates[@]}")" "$cm" "$(j "${c_cpu[@]}")" "$ratio" >bench-out/http.json
