#!/usr/bin/env python3
"""bench_shaping.py - `scripts/bench.sh shaping` (issue 14): a campaign of
RCPTS recipients (default 100,000) to 5 modelled providers on 127.0.0.2-6.

Each provider is a `volley sink --model` (one process each, same port) whose
hidden limit per client source address is HIDDEN[i] msg/s (token bucket,
burst a fifth of a second, 421 4.7.0 above it); dnsmasq gives each provider
DOMAINS domains whose MX is mx.provN.test. volley's policy for provN matches
the MX suffix provN.test with msgs-per-sec = OVER x the hidden limit.

Two modes, each REPS times, each run bounded to RUN_S seconds (the campaign
does not finish: the measure is the steady state):
  adaptive  the policy adapts (AIMD: decrease 0.9, hold-down 3s, +1% of the
            configured rate every 2s);
  fixed     the same policy without adaptation: the configured rate.
Per provider, from the sinks' per-second stats (--stats-every 1), over the
window [WARM_S, RUN_S]: the achieved rate (messages accepted per second) vs
the model's limit, and the share of transactions the model deferred.
Reported: medians over REPS with min-max, JSON in bench-out/shaping.json.

Env: VOLLEY_BIN (build/volley), RCPTS (100000), REPS (3), RUN_S (120),
WARM_S (60), SHARDS (2), MODES ("adaptive,fixed": which modes to run), HIDDEN
("30,45,60,75,90": the providers' limits), KEEP (a directory to keep each run's
sink stats, config and delivery log in). Every process is started here and stopped by PID.
"""
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOLLEY = os.environ.get("VOLLEY_BIN", os.path.join(ROOT, "build", "volley"))
RCPTS = int(os.environ.get("RCPTS", "100000"))
REPS = int(os.environ.get("REPS", "3"))
RUN_S = float(os.environ.get("RUN_S", "120"))
WARM_S = float(os.environ.get("WARM_S", "60"))
SHARDS = os.environ.get("SHARDS", "2")
MODES = os.environ.get("MODES", "adaptive,fixed").split(",")
HIDDEN = [float(x) for x in os.environ.get("HIDDEN", "30,45,60,75,90").split(",")]
KEEP = os.environ.get("KEEP")          # a directory: keep each run's files there (debugging)
OVER = 1.25
DOMAINS = 10
REPLY = "421 4.7.0 [TS01] Messages from your address temporarily deferred: too fast"


def die(msg):
    print("bench_shaping: " + msg, file=sys.stderr)
    sys.exit(1)


class World:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="volley-bench-shaping-")
        self.procs = []

    def spawn(self, cmd, out, err=subprocess.DEVNULL):
        p = subprocess.Popen(cmd, stdout=open(out, "wb"), stderr=err)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def close(self):
        for p in self.procs:
            self.stop(p)
        if getattr(self, "dns_pid", None):
            try:
                os.kill(self.dns_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_sinks(w):
    """One sink per provider on 127.0.0.(2+i), all on one port. Returns (port, [Popen])."""
    for _ in range(10):
        port = random.randint(30000, 60000)
        sinks, ok = [], True
        for i, rate in enumerate(HIDDEN):
            model = os.path.join(w.tmp, "prov%d.model" % i)
            with open(model, "w") as f:
                f.write('msgs-per-sec = %g;\nburst = %g;\nconnections = 20;\nreply = "%s";\n'
                        % (rate, max(1.0, rate / 5), REPLY))
            out = os.path.join(w.tmp, "sink%d.out" % i)
            p = w.spawn([VOLLEY, "sink", "--listen", "127.0.0.%d:%d" % (2 + i, port), "--json",
                         "--stats-every", "1", "--model", model], out)
            for _ in range(200):
                if "listening on" in open(out).read() or p.poll() is not None:
                    break
                time.sleep(0.02)
            if p.poll() is not None or "listening on" not in open(out).read():
                ok = False
                break
            sinks.append((p, out))
        if ok:
            return port, sinks
        for p, _ in sinks:
            w.stop(p)
    die("could not start the 5 sinks on one port")


def start_dns(w):
    lines = []
    for i in range(len(HIDDEN)):
        lines.append("host-record=mx.prov%d.test,127.0.0.%d" % (i, 2 + i))
        for d in range(DOMAINS):
            lines.append("mx-host=p%dd%d.test,mx.prov%d.test,10" % (i, d, i))
    ddir = os.path.join(w.tmp, "dns")
    os.makedirs(ddir)
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "dnsmasq.sh"), "--dir", ddir,
                        "--ttl", "600", "--watch", str(os.getpid()), "--no-defaults"] + lines,
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        die("dnsmasq.sh: " + r.stderr)
    pid, port = r.stdout.split()
    w.dns_pid = int(pid)
    return int(port)


def enqueue(w, data):
    """RCPTS recipients, spread evenly over the providers' domains, in messages of 10,000."""
    msg = os.path.join(w.tmp, "msg.eml")
    with open(msg, "w") as f:
        f.write("From: news@sender.test\r\nSubject: shaping bench\r\n\r\n" + "x" * 1000 + "\r\n")
    per = 10000
    for k in range(0, RCPTS, per):
        path = os.path.join(w.tmp, "rcpts%d" % k)
        with open(path, "w") as f:
            for n in range(k, min(RCPTS, k + per)):
                i = n % len(HIDDEN)
                f.write("r%d@p%dd%d.test\n" % (n, i, (n // len(HIDDEN)) % DOMAINS))
        r = subprocess.run([VOLLEY, "enqueue", "--data", data, "--shards", SHARDS, "--from",
                            "news@sender.test", "--rcpts", path, msg], capture_output=True,
                           text=True, timeout=600)
        if r.returncode != 0:
            die("enqueue: " + r.stderr)


def config(w, adaptive):
    pol = []
    for i, rate in enumerate(HIDDEN):
        c = rate * OVER
        ad = ('adaptive = { decrease = 0.9; hold-down = "3s"; interval = "2s"; '
              'increase = %g; min = 1.0; };' % (c / 100)) if adaptive else ""
        pol.append('  prov%d = { mx = "prov%d.test"; msgs-per-sec = %g; conns-per-ip = 4; %s };'
                   % (i, i, c, ad))
    path = os.path.join(w.tmp, "volley-%s.conf" % ("adaptive" if adaptive else "fixed"))
    with open(path, "w") as f:
        f.write("shaping = {\n%s\n};\n" % "\n".join(pol))
    r = subprocess.run([VOLLEY, "config", "check", path], capture_output=True, text=True)
    if r.returncode != 0:
        die("config: " + r.stderr + r.stdout)
    return path


def series(out):
    """[(t_monotonic_s, delivered, deferred)] from a sink's per-second stats lines."""
    pts = []
    with open(out) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            s = json.loads(line)
            if s.get("event") != "stats" or s.get("why") != "interval":
                continue
            m = s.get("model", {})
            dl = sum(a["delivered"] for a in m.values())
            df = sum(a["deferred"] for a in m.values())
            pts.append((len(pts) + 1.0, dl, df))
    return pts


def one_run(adaptive, rep):
    w = World()
    try:
        port, sinks = start_sinks(w)
        dns_port = start_dns(w)
        data = os.path.join(w.tmp, "q")
        t_enq = time.monotonic()
        enqueue(w, data)
        t_enq = time.monotonic() - t_enq
        conf = config(w, adaptive)
        # the sinks' clocks: their stats lines count seconds from their start;
        # note how many lines each had when volley started
        base = [len(series(out)) for _, out in sinks]
        run = w.spawn([VOLLEY, "run", "--config", conf, "--data", data, "--quiet",
                       "--dns", "127.0.0.1:%d" % dns_port, "--mx-port", str(port),
                       "--allow-dest", "loopback", "--max-rcpts", "1", "--retry-base", "5s",
                       "--retry-max", "10s", "--log", os.path.join(w.tmp, "dlog")],
                      os.path.join(w.tmp, "run.out"), open(os.path.join(w.tmp, "run.err"), "wb"))
        t0 = time.monotonic()
        while time.monotonic() - t0 < RUN_S + 1.5:
            if run.poll() is not None:
                die("volley run exited %d: %s" % (run.returncode,
                                                   open(os.path.join(w.tmp, "run.err")).read()[-2000:]))
            time.sleep(0.5)
        w.stop(run)
        res = []
        for i, (p, out) in enumerate(sinks):
            pts = series(out)[base[i]:]
            if len(pts) < RUN_S:
                die("sink %d: only %d stats lines" % (i, len(pts)))
            a, b = pts[int(WARM_S) - 1], pts[int(RUN_S) - 1]
            secs = RUN_S - WARM_S
            dl, df = b[1] - a[1], b[2] - a[2]
            first = pts[int(WARM_S) - 1]
            res.append({"provider": i, "limit": HIDDEN[i], "configured": HIDDEN[i] * OVER,
                        "rate": dl / secs, "ratio": dl / secs / HIDDEN[i],
                        "deferred_share": df / (dl + df) if dl + df else 0.0,
                        "first_min_delivered": first[1], "first_min_deferred": first[2]})
        rate_lines = sum(1 for l in open(os.path.join(w.tmp, "dlog"))
                         if '"event":"rate"' in l)
        print("  %s rep %d: enqueue %.1fs, %d rate changes; %s" % (
            "adaptive" if adaptive else "fixed", rep + 1, t_enq, rate_lines,
            "  ".join("p%d %.1f/%.0f (%.1f%% def)" % (r["provider"], r["rate"], r["limit"],
                                                     100 * r["deferred_share"]) for r in res)),
            flush=True)
        return res, rate_lines
    finally:
        if KEEP:
            shutil.copytree(w.tmp, os.path.join(KEEP, "%s-%d" % (
                "adaptive" if adaptive else "fixed", rep)), dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("q", "dns"))
        w.close()


def main():
    if not os.access(VOLLEY, os.X_OK):
        die("%s is not executable (build first)" % VOLLEY)
    if RUN_S <= WARM_S + 5:
        die("RUN_S must exceed WARM_S by more than 5 s")
    print("shaping bench: %d recipients, 5 providers (hidden limits %s msg/s, configured "
          "x%.2f), window %.0f-%.0fs, %d rep(s) per mode" %
          (RCPTS, "/".join("%g" % h for h in HIDDEN), OVER, WARM_S, RUN_S, REPS), flush=True)
    out = {"rcpts": RCPTS, "hidden": HIDDEN, "over": OVER, "window_s": [WARM_S, RUN_S],
           "reps": REPS, "modes": {}}
    for adaptive in [m == "adaptive" for m in MODES]:
        mode = "adaptive" if adaptive else "fixed"
        runs = [one_run(adaptive, r) for r in range(REPS)]
        per = []
        for i in range(len(HIDDEN)):
            rates = [r[0][i]["rate"] for r in runs]
            defs = [r[0][i]["deferred_share"] for r in runs]
            per.append({"provider": i, "limit": HIDDEN[i], "configured": HIDDEN[i] * OVER,
                        "rate_median": statistics.median(rates), "rate_min": min(rates),
                        "rate_max": max(rates),
                        "ratio_median": statistics.median(rates) / HIDDEN[i],
                        "deferred_median": statistics.median(defs), "deferred_min": min(defs),
                        "deferred_max": max(defs)})
        out["modes"][mode] = {"providers": per, "rate_changes": [r[1] for r in runs]}
        print("%s (median of %d, [min-max]):" % (mode, REPS))
        for p in per:
            print("  prov%d limit %5.1f  achieved %6.2f [%6.2f-%6.2f] = %5.1f%% of limit   "
                  "deferred after %.0fs %5.2f%% [%5.2f-%5.2f]" % (
                      p["provider"], p["limit"], p["rate_median"], p["rate_min"], p["rate_max"],
                      100 * p["ratio_median"], WARM_S, 100 * p["deferred_median"],
                      100 * p["deferred_min"], 100 * p["deferred_max"]), flush=True)
    os.makedirs(os.path.join(ROOT, "bench-out"), exist_ok=True)
    with open(os.path.join(ROOT, "bench-out", "shaping.json"), "w") as f:
        json.dump(out, f, indent=1)


main()
