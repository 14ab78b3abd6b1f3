"""shaping.py - destination shaping (issue 14) end to end through dnsmasq, with
`volley sink --model` as the MX hosts measuring per client source address:

shared:  three domains whose MX ends in bigmail.test share one policy's budget
         (msgs-per-sec, connections per source address, messages per
         connection): the run takes at least as long as the shared rate allows
         (one bucket per domain would be 3x faster), no source address ever had
         more connections at once than conns-per-ip, and the sink saw at least
         N / msgs-per-conn connections;
egress:  the same run goes out from two egress addresses (127.0.0.10 and .11,
         bound before connect), each with its own EHLO name, both used;
rcpts:   a policy naming a domain lowers recipients per transaction;
rcpts_mx: so does a policy matched by MX suffix (the attempt is cut once the
         MX is known): 7 recipients of one domain and 3 of another behind
         mx.fewmx.test with rcpts-per-txn = 2 arrive in 4 + 2 transactions of at
         most 2, each recipient once;
policy_tls_retry: a policy's TLS level (encrypt) and retry schedule apply to its
         domain only;
fair:    two domains behind one MX-suffix policy (50 msg/s), one with 10x the
         recipients and queued first: while the small one has mail both get
         about the same rate (measured at the sink from the saved messages'
         times: the big one gets at most 2x the small one's count by the time
         the small one is done; first-come would give it about 10x); one shard
         (lease, host queue) and two shards (the shaper's flows);
warmup_restart: an egress address with a warm-up plan of 3 messages a day
         sends 3 of 5 and waits; `volley run` is stopped (SIGTERM) and started
         again: the count comes back from DATA/shaping (evt=warmup_restored
         sent=3) and the address stays capped (the sink still has 3, 2 stay
         queued);
aimd:    a model that allows 8 msg/s answers 421 4.7.0 above it: the adaptive
         policy (40 msg/s) halves its rate (delivery-log event "rate" with old
         and new rate, at most one cut per hold-down), and after retries every
         recipient is delivered exactly once.

Bounds on time are one-sided (a limit can only make a run slower: the test
asserts "no faster than the limit allows", never "at least this fast").
Run one case with DELIVER_CASE=name."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import by_event, check, message, run_cases, volley_bin  # noqa: E402

BIG, SLOW = "127.0.0.2", "127.0.0.3"


def write(env, name, text):
    p = os.path.join(env.tmp, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def model_stats(env, host):
    st = env.stop_sink(host)
    m = st.get("model")
    check(m is not None, "sink %s has no model stats: %r" % (host, st))
    return st, m


def case_shared_and_egress(env):
    model = write(env, "count.model", "connections = 1000;\n")     # counts, limits nothing
    env.start_sinks({BIG: ["--model", model]})
    env.start_dns(mx={"d%d.test" % i: [(10, "mx%d.bigmail.test" % (i % 2), BIG)]
                      for i in range(3)}, defaults=False)
    rate, per_ip, per_conn, n = 20.0, 2, 5, 60
    conf = write(env, "volley.conf", """
egress = { addresses = (
    { ip = "127.0.0.10"; ehlo = "eg1.sender.test"; pool = "p"; },
    { ip = "127.0.0.11"; ehlo = "eg2.sender.test"; pool = "p"; } ); };
shaping = { bigmail = { mx = "bigmail.test"; msgs-per-sec = %g; conns-per-ip = %d;
                        msgs-per-conn = %d; pool = "p"; }; };
""" % (rate, per_ip, per_conn))
    rcpts = ["r%d@d%d.test" % (i, i % 3) for i in range(n)]
    env.enqueue("s@src.test", rcpts, message())
    t0 = time.monotonic()
    env.run("--config", conf, "--max-rcpts", "1", env=None)
    elapsed = time.monotonic() - t0
    log = env.log()
    check(len(by_event(log, "delivered")) == n, "delivered %d of %d: %r" %
          (len(by_event(log, "delivered")), n, [e for e in log if e["event"] != "delivered"][:3]))
    burst = rate / 5.0
    floor = (n - burst - 1) / rate
    check(elapsed >= floor, "%d messages in %.2fs: faster than the shared %g msg/s allows "
          "(>= %.2fs): the domains did not share one budget" % (n, elapsed, rate, floor))
    st, m = model_stats(env, BIG)
    for ip, name in (("127.0.0.10", "eg1.sender.test"), ("127.0.0.11", "eg2.sender.test")):
        a = m.get(ip)
        check(a is not None, "egress %s never connected: %r" % (ip, m))
        check(a["delivered"] > 0, "egress %s delivered nothing: %r" % (ip, a))
        check(a["ehlo"] == name, "egress %s said EHLO %r, want %s" % (ip, a["ehlo"], name))
        check(a["open_max"] <= per_ip, "egress %s had %d connections at once, cap %d" %
              (ip, a["open_max"], per_ip))
    check(set(m) == {"127.0.0.10", "127.0.0.11"}, "other source addresses: %r" % sorted(m))
    check(sum(a["delivered"] for a in m.values()) == n, "per-address total: %r" % m)
    check(st["connections"] >= n // per_conn, "%d connections for %d messages at %d per "
          "connection" % (st["connections"], n, per_conn))


def case_rcpts(env):
    env.start_sinks({BIG: []})
    env.start_dns(mx={"few.test": [(10, "mx.few.test", BIG)]}, defaults=False)
    conf = write(env, "volley.conf",
                 'shaping = { few = { domains = "few.test"; rcpts-per-txn = 2; }; };\n')
    rcpts = ["r%d@few.test" % i for i in range(6)]
    env.enqueue("s@src.test", rcpts, message())
    env.run("--config", conf)
    check(len(by_event(env.log(), "delivered")) == 6, "not all delivered: %r" % env.log())
    st = env.stop_sink(BIG)
    check(st["transactions"] == 3 and st["rcpts"] == 6, "want 3 transactions of 2: %r" % st)


def start_run(env, conf, err_path, *args):
    """`volley run --config CONF` in the background (serves until SIGTERM)."""
    with open(err_path, "ab") as err:
        return subprocess.Popen([volley_bin(), "run", "--config", conf, "--data", env.data,
                                 "--quiet", "--log", env.log_path, "--shards", str(env.shards),
                                 *[str(a) for a in env.route_args()], *args],
                                stdout=subprocess.DEVNULL, stderr=err,
                                env=dict(os.environ, VOLLEY_LOG="info"))


def stop_run(proc):
    proc.terminate()
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        check(False, "volley run did not stop within 60s of SIGTERM")


def fair_case(env, shards):
    env.shards = shards
    env.start_sinks({BIG: []})
    env.start_dns(mx={"big.test": [(10, "mx.fair.test", BIG)],
                      "small.test": [(10, "mx.fair.test", BIG)]}, defaults=False)
    conf = write(env, "volley.conf",
                 'shaping = { fair = { mx = "fair.test"; msgs-per-sec = 50.0; }; };\n')
    big = ["b%d@big.test" % i for i in range(300)]
    small = ["s%d@small.test" % i for i in range(30)]
    env.enqueue("s@src.test", big, message())
    env.enqueue("s@src.test", small, message())
    env.run("--config", conf, "--max-rcpts", "1")
    check(len(by_event(env.log(), "delivered")) == 330, "not all delivered")
    saved = env.saved(BIG)
    times = []
    for m in saved:
        st = os.stat(os.path.join(env.sinks[BIG].save_dir, m["file"]))
        for r in m["rcpts"]:
            times.append((st.st_mtime_ns, r.split("@")[1]))
    got = sorted(r for m in saved for r in m["rcpts"])
    check(got == sorted(big + small), "saved %d recipients, want each of 330 once" % len(got))
    t_end = max(t for t, d in times if d == "small.test")
    big_by_then = sum(1 for t, d in times if d == "big.test" and t <= t_end)
    print("     %d shard(s): big.test had %d delivered when small.test's 30 were done" %
          (shards, big_by_then))
    check(big_by_then <= 60, "big.test got %d messages while small.test got its 30: not a "
          "fair share (want about 30, at most 60)" % big_by_then)


def case_fair_1shard(env):
    fair_case(env, 1)


def case_fair_2shards(env):
    fair_case(env, 2)


def case_warmup_restart(env):
    env.start_sinks({BIG: []})
    env.start_dns(mx={"warm.test": [(10, "mx.warm.test", BIG)]}, defaults=False)
    conf = write(env, "volley.conf", """
egress = { addresses = ( { ip = "127.0.0.12"; ehlo = "warm.sender.test"; warmup = [ 3, 100 ]; } ); };
shaping = { warm = { domains = "warm.test"; }; };
""")
    rcpts = ["r%d@warm.test" % i for i in range(5)]
    env.enqueue("s@src.test", rcpts, message())
    err = os.path.join(env.tmp, "run.err")
    proc = start_run(env, conf, err, "--max-rcpts", "1")
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and len(by_event(env.log(), "delivered")) < 3:
            time.sleep(0.1)
        check(len(by_event(env.log(), "delivered")) == 3, "first run: %d delivered, want 3 "
              "(the day's cap)" % len(by_event(env.log(), "delivered")))
        time.sleep(1.5)                     # capped: nothing more goes; the counts are saved
    finally:
        rc = stop_run(proc)
    check(rc in (0, 3), "first run exited %d" % rc)
    check(len(by_event(env.log(), "delivered")) == 3, "first run went past the cap: %d" %
          len(by_event(env.log(), "delivered")))
    st = env.queue_stats()
    check(st["ready"] + st["deferred"] == 2, "want 2 queued after the first run: %r" % st)
    proc = start_run(env, conf, err, "--max-rcpts", "1")
    try:
        end = time.monotonic() + 60
        text = ""
        while time.monotonic() < end:
            with open(err, errors="replace") as f:
                text = f.read()
            if re.search(r"evt=warmup_restored ip=127\.0\.0\.12 .*sent=3", text):
                break
            time.sleep(0.1)
        check(re.search(r"evt=warmup_restored ip=127\.0\.0\.12 .*sent=3", text),
              "the second run did not restore the count: %s" % text[-1500:])
        time.sleep(3.0)                     # uncapped, the 2 left would go within this
    finally:
        rc = stop_run(proc)
    check(rc in (0, 3), "second run exited %d" % rc)
    got = len(by_event(env.log(), "delivered"))
    check(got == 3, "after a restart the capped address delivered %d, want still 3" % got)
    st = env.stop_sink(BIG)
    check(st["transactions"] == 3, "sink transactions %d, want 3" % st["transactions"])


def case_rcpts_mx(env):
    env.start_sinks({BIG: []})
    env.start_dns(mx={"m1.test": [(10, "mx.fewmx.test", BIG)],
                      "m2.test": [(10, "mx.fewmx.test", BIG)]}, defaults=False)
    conf = write(env, "volley.conf",
                 'shaping = { fewmx = { mx = "fewmx.test"; rcpts-per-txn = 2; }; };\n')
    rcpts = ["r%d@m1.test" % i for i in range(7)] + ["s%d@m2.test" % i for i in range(3)]
    env.enqueue("s@src.test", rcpts, message())
    env.run("--config", conf)
    check(len(by_event(env.log(), "delivered")) == 10, "not all delivered: %r" % env.log())
    saved = env.saved(BIG)
    sizes = sorted(len(m["rcpts"]) for m in saved)
    check(sizes == [1, 1, 2, 2, 2, 2], "transactions by recipient count %r, want "
          "[1, 1, 2, 2, 2, 2] (at most 2 each)" % sizes)
    got = sorted(r for m in saved for r in m["rcpts"])
    check(got == sorted(rcpts), "saved recipients %r" % got)
    st = env.stop_sink(BIG)
    check(st["transactions"] == 6 and st["rcpts"] == 10, "want 6 transactions: %r" % st)


def case_aimd(env):
    model = write(env, "slow.model", 'msgs-per-sec = 8;\nburst = 2;\n'
                  'reply = "421 4.7.0 [TSS04] Messages temporarily deferred";\n')
    env.start_sinks({SLOW: ["--model", model]})
    env.start_dns(mx={"slow%d.test" % i: [(10, "mx.slowmail.test", SLOW)] for i in range(2)},
                  defaults=False)
    conf = write(env, "volley.conf", """
shaping = { slowmail = { mx = "slowmail.test"; msgs-per-sec = 40.0; conns-per-ip = 4;
    adaptive = { decrease = 0.5; hold-down = "1s"; interval = "5s"; min = 1.0; }; }; };
""")
    n = 60
    rcpts = ["r%d@slow%d.test" % (i, i % 2) for i in range(n)]
    env.enqueue("s@src.test", rcpts, message())
    t0 = time.monotonic()
    for _ in range(30):                         # deferred ones wait for their retry
        env.run("--config", conf, "--max-rcpts", "1", "--retry-base", "1s", "--retry-max", "1s")
        st = env.queue_stats()
        if st["ready"] + st["deferred"] == 0:
            break
        time.sleep(1.0)
    elapsed = time.monotonic() - t0
    log = env.log()
    rates = [e for e in log if e.get("event") == "rate"]
    check(rates, "no rate change in the delivery log: %r" % log[:3])
    first = rates[0]
    check(first["policy"] == "slowmail" and first["old"] == 40.0 and first["new"] == 20.0,
          "first cut: %r" % first)
    cuts = [e for e in rates if e["new"] < e["old"]]
    for e in cuts:
        check(e["new"] >= 1.0, "below min: %r" % e)
    check(len(cuts) <= 2 + elapsed / 1.0, "%d cuts in %.1fs with a 1s hold-down" %
          (len(cuts), elapsed))
    deliveries = [e for e in log if e.get("event") == "delivered"]
    got = sorted(e["rcpt"] for e in deliveries)
    check(got == sorted(rcpts), "delivered %d of %d (duplicates %d)" %
          (len(got), n, len(got) - len(set(got))))
    deferred = [e for e in log if e.get("event") == "deferred"]
    check(deferred and all(e["code"] == 421 and e["status"] == "4.7.0" for e in deferred),
          "the model's 421s: %r" % deferred[:2])


def case_policy_tls_retry(env):
    """A policy's TLS level and retry schedule apply to its domains only: strict.test
    (tls encrypt, retry-base 2h) to a sink without STARTTLS is deferred 4.7.0 and
    scheduled about 2h later; loose.test on the same sink (no policy) is delivered."""
    env.start_sinks({BIG: []})
    env.start_dns(mx={"strict.test": [(10, "mx.same.test", BIG)],
                      "loose.test": [(10, "mx.same.test", BIG)]}, defaults=False)
    conf = write(env, "volley.conf", 'shaping = { strict = { domains = "strict.test"; '
                 'tls = "encrypt"; retry-base = "2h"; retry-max = "4h"; }; };\n')
    qid = env.enqueue("s@src.test", ["a@strict.test", "b@loose.test"], message())
    t0 = time.time()
    env.run("--config", conf, "--retry-base", "1m")
    log = env.log()
    ev = {e["rcpt"]: e for e in log if "rcpt" in e}
    check(ev["b@loose.test"]["event"] == "delivered", "loose: %r" % ev["b@loose.test"])
    a = ev["a@strict.test"]
    check(a["event"] == "deferred" and a["status"] == "4.7.0" and "STARTTLS" in a["reply"],
          "strict: %r" % a)
    r = env.volley("queue", "--data", env.data, "show", qid, "--json")
    check(r.returncode == 0, "queue show: %s" % r.stderr)
    shown = json.loads(r.stdout)
    rc = [x for x in shown["rcpts"] if x["rcpt"] == "a@strict.test"]
    check(rc, "no strict rcpt in %r" % shown)
    nxt = time.mktime(time.strptime(rc[0]["next"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    check(nxt - t0 > 1.5 * 3600, "next try in %.0fs, want about 2h (the policy's retry-base, "
          "not --retry-base 1m)" % (nxt - t0))


run_cases([("shared_and_egress", case_shared_and_egress), ("rcpts", case_rcpts),
           ("rcpts_mx", case_rcpts_mx), ("fair_1shard", case_fair_1shard),
           ("fair_2shards", case_fair_2shards),
           ("warmup_restart", case_warmup_restart), ("aimd", case_aimd), ("policy_tls_retry", case_policy_tls_retry)])
