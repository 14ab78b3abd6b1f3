#!/usr/bin/env bash
# bench_dkim.sh - `scripts/bench.sh dkim`: DKIM signing speed, in the same run as the
# reference it is judged against.
#
# 1. Signatures/s on a 10 KB message (bench/dkim_bench.cc, REPS repetitions) for
#    RSA-2048 and Ed25519, next to `openssl speed rsa2048 ed25519` (REPS runs of
#    SPEED_S seconds) and OpenSSL's raw sign with a ready context in the same binary:
#      message  = dkim_signer_sign of a whole message (body canonicalised and hashed,
#                 header hash, signature, folded field): what enqueue and intake do;
#      fields   = one signature when the body hash is known (bh once per stored body:
#                 dual signing, per-recipient signing).
#      rcpt     = per-recipient signing at delivery (a token field on top of the stored
#                 header block, bh once per stored body), on 1 and 2 threads (2 shards).
#    Ratios are of medians; the target is >= 0.90 of `openssl speed`.
# 2. End to end: `volley bench` (N messages of 10240 octets with R recipients each, one
#    shared body, into one `volley sink`) unsigned, signed by RSA-2048 and by Ed25519
#    (once per message, at enqueue), alternating, REPS times each. Reported: delivery
#    msg/s (deliver phase), and msg/s over enqueue + delivery (signing is in enqueue);
#    ratios signed/unsigned of the medians (target >= 0.95).
# 3. Through the SMTP intake (`volley run --listen`, its commit workers sign in parallel,
#    delivering to the same sink): smtp-source sends M messages of 10 KB over 64 sessions,
#    unsigned, RSA-2048 and Ed25519 (From: s@src.test, signed at intake), alternating, REPS
#    times; msg/s = M / smtp-source wall time (each 250 came after the signed, durable commit).
# Output: summary on stdout, bench-out/dkim.json.
# Env: REPS (5), SPEED_S (2), N (5000), R (10), M (3200), S (2), BUILD (build), VOLLEY_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
volley=${VOLLEY_BIN:-$build/volley}
bench=$build/dkim_bench
reps=${REPS:-5} speed_s=${SPEED_S:-2} n=${N:-5000} r=${R:-10} shards=${S:-2} m=${M:-3200}
source_bin=/usr/sbin/smtp-source
for b in "$volley" "$bench" "$source_bin"; do
    [ -x "$b" ] || { echo "bench_dkim: $b missing (build first; scripts/setup.sh for smtp-source)" >&2; exit 1; }
done
command -v openssl >/dev/null || { echo "bench_dkim: openssl missing" >&2; exit 1; }
. scripts/bench_lib.sh
run_pid=""
bench_cleanup_more() { bench_stop "$run_pid"; }
bench_init
mkdir -p bench-out

echo "bench_dkim: openssl speed (${reps} x ${speed_s}s) and dkim_bench (${reps} repetitions)"
: >"$tmp/speed.txt"
for i in $(seq "$reps"); do
    openssl speed -seconds "$speed_s" rsa2048 ed25519 2>/dev/null >>"$tmp/speed.txt"
done
"$bench" --benchmark_repetitions="$reps" --benchmark_min_time=1 \
    --benchmark_out="$tmp/micro.json" --benchmark_out_format=json >/dev/null

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.pem" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$tmp/ed.pem"
bench_sink_start "$tmp/sink.out" "$tmp/sink.err" --threads 1 --json
port=$sink_port
echo "bench_dkim: end to end: $n messages x 10240 octets x $r recipients, sink 127.0.0.1:$port"
: >"$tmp/e2e.txt"
for i in $(seq "$reps"); do
    for mode in none rsa ed; do
        args=()
        [ "$mode" = rsa ] && args=(--dkim "sender.example:rsa:$tmp/rsa.pem")
        [ "$mode" = ed ] && args=(--dkim "sender.example:ed:$tmp/ed.pem")
        rm -rf "$tmp/q"
        "$volley" bench --data "$tmp/q" --shards "$shards" --messages "$n" --rcpts-per-msg "$r" \
            --size 10240 --domains 100 --route "*=127.0.0.1:$port" "${args[@]}" \
            >"$tmp/vol.out" 2>&1 || { echo "bench_dkim: volley bench failed:"; cat "$tmp/vol.out"; exit 1; } >&2
        echo "$mode $(grep '^{"bench":"deliver"' "$tmp/vol.out")" >>"$tmp/e2e.txt"
        echo "  run $i $mode: $(grep '^{"bench":"deliver"' "$tmp/vol.out" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("enqueue %.2fs, deliver %.2fs" % (d["enqueue_s"], d["deliver_s"]))')"
    done
done

echo "bench_dkim: intake: smtp-source, $m messages x 10240 octets over 64 sessions into volley run --listen"
: >"$tmp/intake.txt"
for i in $(seq "$reps"); do
    for mode in none rsa ed; do
        args=()
        [ "$mode" = rsa ] && args=(--dkim "src.test:rsa:$tmp/rsa.pem")
        [ "$mode" = ed ] && args=(--dkim "src.test:ed:$tmp/ed.pem")
        rm -rf "$tmp/qi"
        "$volley" run --data "$tmp/qi" --shards "$shards" --quiet --listen 127.0.0.1:0 \
            --route "*=127.0.0.1:$port" --max-conns-per-ip 1000 "${args[@]}" 2>"$tmp/run.err" &
        run_pid=$!
        iport=""
        for _ in $(seq 200); do
            iport=$(sed -n 's/^volley run: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/run.err")
            [ -n "$iport" ] && break
            sleep 0.02
        done
        [ -n "$iport" ] || { echo "bench_dkim: volley run did not start: $(cat "$tmp/run.err")" >&2; exit 1; }
        t0=$(date +%s.%N)
        "$source_bin" -d -s 64 -m "$m" -l 10240 -f s@src.test -t r@dst.test -M bench.test \
            "127.0.0.1:$iport" >/dev/null
        t1=$(date +%s.%N)
        bench_stop "$run_pid"; run_pid=""
        rate=$(python3 -c "print('%.0f' % ($m / ($t1 - $t0)))")
        echo "$mode $rate" >>"$tmp/intake.txt"
        echo "  run $i $mode: $rate msg/s"
    done
done

python3 - "$tmp/speed.txt" "$tmp/micro.json" "$tmp/e2e.txt" "$n" "$r" "$tmp/intake.txt" "$m" <<'PY'
import json, re, statistics, sys
speed_txt, micro, e2e, n, r = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
intake_txt, m = sys.argv[6], int(sys.argv[7])
med = statistics.median
def spread(v):
    return "%.0f (%.0f..%.0f, n=%d)" % (med(v), min(v), max(v), len(v))
txt = open(speed_txt).read()
speed = {"rsa2048": [float(m) for m in re.findall(r"^rsa 2048 bits\s+\S+s\s+\S+s\s+([\d.]+)", txt, re.M)],
         "ed25519": [float(m) for m in re.findall(r"\(Ed25519\)\s+\S+s\s+\S+s\s+([\d.]+)", txt)]}
runs = {}
for b in json.load(open(micro))["benchmarks"]:
    if b.get("run_type") != "iteration":
        continue
    runs.setdefault(b["run_name"], []).append(b)
def rate(name):
    return [x["items_per_second"] for x in runs.get(name, [])]
out = {"suite": "dkim", "msg_bytes": 10240, "signatures_per_s": {}, "end_to_end": {}}
print("\nsignatures/s on a 10 KB message (median (min..max)); ratio to `openssl speed` median")
for i, alg in enumerate(("rsa2048", "ed25519")):
    sp = speed[alg]
    if not sp:
        sys.exit("bench_dkim: no openssl speed figure for %s" % alg)
    row = {"openssl_speed": {"median": med(sp), "min": min(sp), "max": max(sp)}}
    print("  %-8s openssl speed          %s" % (alg, spread(sp)))
    for what, bm in (("raw_sign_same_binary", "BM_openssl_raw_sign/%d" % i),
                     ("dkim_message", "BM_dkim_sign_message/%d" % i),
                     ("dkim_fields_bh_known", "BM_dkim_sign_fields/%d" % i)):
        v = rate(bm)
        if not v:
            sys.exit("bench_dkim: no result for " + bm)
        row[what] = {"median": med(v), "min": min(v), "max": max(v),
                     "ratio_to_openssl_speed": round(med(v) / med(sp), 3)}
        print("  %-8s %-22s %s  ratio %.3f" % (alg, what, spread(v), med(v) / med(sp)))
    out["signatures_per_s"][alg] = row
print("\nper-recipient signing at delivery (bh once per stored body; 2 threads = 2 shards)")
out["per_recipient"] = {}
for i, alg in enumerate(("rsa2048", "ed25519")):
    for th in (1, 2):
        bm = "BM_dkim_sign_rcpt/%d/real_time/threads:%d" % (i, th)
        v = rate(bm)
        cpu = [x["cpu_time"] / 1e3 for x in runs.get(bm, [])]   # ns -> us per signature
        if not v:
            sys.exit("bench_dkim: no result for " + bm)
        out["per_recipient"]["%s_threads%d" % (alg, th)] = {
            "rcpt_per_s_wall": {"median": med(v), "min": min(v), "max": max(v)},
            "cpu_us_per_signature_median": med(cpu)}
        print("  %-8s %d thread%s  %s recipients/s (wall), %.1f us CPU per signature" % (
            alg, th, "" if th == 1 else "s", spread(v), med(cpu)))
for bm in ("BM_dkim_body_hash/0", "BM_dkim_body_hash/1"):
    v = [x["bytes_per_second"] / 1e6 for x in runs.get(bm, [])]
    if v:
        print("  body hash %-7s %.0f MB/s (%.0f..%.0f)" % ("relaxed" if bm.endswith("0") else "simple",
                                                          med(v), min(v), max(v)))
e = {}
for line in open(e2e):
    mode, js = line.split(" ", 1)
    d = json.loads(js)
    e.setdefault(mode, []).append(d)
print("\nend to end: %d messages x %d recipients, 10 KB shared body (msg/s, median (min..max))" % (n, r))
base_d = med([d["msg_per_s"] for d in e["none"]])
base_t = med([d["messages"] / (d["enqueue_s"] + d["deliver_s"]) for d in e["none"]])
for mode in ("none", "rsa", "ed"):
    dv = [d["msg_per_s"] for d in e[mode]]
    tv = [d["messages"] / (d["enqueue_s"] + d["deliver_s"]) for d in e[mode]]
    out["end_to_end"][mode] = {"deliver_msg_per_s": {"median": med(dv), "min": min(dv), "max": max(dv)},
                               "total_msg_per_s": {"median": med(tv), "min": min(tv), "max": max(tv)},
                               "ratio_deliver": round(med(dv) / base_d, 3),
                               "ratio_total": round(med(tv) / base_t, 3)}
    print("  %-5s delivery %s ratio %.3f | enqueue+delivery %s ratio %.3f" % (
        {"none": "plain", "rsa": "rsa", "ed": "ed"}[mode], spread(dv), med(dv) / base_d,
        spread(tv), med(tv) / base_t))
ik = {}
for line in open(intake_txt):
    mode, v = line.split()
    ik.setdefault(mode, []).append(float(v))
print("\nthrough the SMTP intake: %d messages of 10 KB, 64 sessions (msg/s, median (min..max))" % m)
out["intake"] = {}
for mode in ("none", "rsa", "ed"):
    v = ik[mode]
    out["intake"][mode] = {"msg_per_s": {"median": med(v), "min": min(v), "max": max(v)},
                           "ratio": round(med(v) / med(ik["none"]), 3)}
    print("  %-5s %s ratio %.3f" % ({"none": "plain"}.get(mode, mode), spread(v),
                                      med(v) / med(ik["none"])))
json.dump(out, open("bench-out/dkim.json", "w"), indent=1)
print("\nbench-out/dkim.json written")
PY
