"""deliver_retry.py - transient failures end to end (dnsmasq + `volley sink`):
452 past the server's recipient cap, 451 at the dot, the server closing
pooled connections, disconnects inside DATA. Deferred recipients are retried
by further `volley run --until-empty` rounds (short --retry-base) until the
queue is empty; in the end every recipient is accepted by the sink exactly
once and has exactly one 'delivered' log line. Run one case with
DELIVER_CASE=name."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import (check, check_exactly_once, message, by_event, run_cases,  # noqa: E402
                        volley_bin)

SENDER = "sender@src.test"
RETRY = ["--retry-base", "300ms", "--retry-max", "300ms", "--timeout-scale", "0.2",
         "--connect-timeout", "2s"]
ROUNDS_MAX = 12


def run_until_empty(env, *args):
    """Run rounds until nothing is ready or deferred (bounded); returns rounds."""
    for rnd in range(1, ROUNDS_MAX + 1):
        env.run(*RETRY, *args)
        qs = env.queue_stats()
        if qs["ready"] == 0 and qs["deferred"] == 0:
            return rnd
        time.sleep(0.35)
    fail_state = env.queue_stats()
    check(False, "queue not empty after %d rounds: %r" % (ROUNDS_MAX, fail_state))


def many(prefix, nmsg, nrcpt):
    items, want = [], []
    for m in range(nmsg):
        rc = ["%s%d.r%d@example.test" % (prefix, m, r) for r in range(nrcpt)]
        items.append((SENDER, rc, message(subject="%s %d" % (prefix, m))))
        want += rc
    return items, want


def check_final(env, want, what):
    log = env.log()
    check_exactly_once(log, env.saved("127.0.0.2"), want, what)
    bad = [e for e in log if e["event"] in ("bounced", "expired")]
    check(not bad, "%s: unexpected %r" % (what, bad[:3]))
    return log


def case_rcpts_max_452(env):
    env.start_sinks({"127.0.0.2": ["--rcpts-max", "10"]})
    env.start_dns()
    items, want = many("cap", 3, 25)
    env.enqueue_many(items)
    rounds = run_until_empty(env)
    log = check_final(env, want, "452")
    check(rounds >= 2 and by_event(log, "deferred"),
          "452: %d rounds, %d deferrals: the cap was never hit?" % (rounds, len(by_event(log, "deferred"))))
    for e in by_event(log, "deferred"):
        check(e.get("code") == 452, "452: deferral %r" % e)
    st = env.stop_sink("127.0.0.2")
    check(st["rcpts"] == len(want), "452: sink accepted %d rcpts, want %d" % (st["rcpts"], len(want)))


def case_dot_451_and_closes(env):
    env.start_sinks({"127.0.0.2": ["--fault", "dot=451:every=4", "--disconnect", "after-txns=3"]})
    env.start_dns()
    items, want = many("dot", 40, 3)
    env.enqueue_many(items)
    run_until_empty(env)
    log = check_final(env, want, "451/closes")
    check(by_event(log, "deferred"), "451/closes: no deferral logged")
    st = env.stop_sink("127.0.0.2")
    check(st["transactions"] == 40, "451/closes: sink accepted %d messages, want 40" % st["transactions"])


def case_mid_data_disconnect(env):
    env.start_sinks({"127.0.0.2": ["--disconnect", "mid-data:every=5"]})
    env.start_dns()
    items, want = many("mid", 30, 2)
    items = [(f, r, message(subject=c.split(b"Subject: ")[1].split(b"\r\n")[0].decode(),
                            size=20000)) for f, r, c in items]
    env.enqueue_many(items)
    run_until_empty(env)
    log = check_final(env, want, "mid-data")
    check(by_event(log, "deferred") or by_event(log, "ambiguous"), "mid-data: nothing deferred")
    st = env.stop_sink("127.0.0.2")
    check(st["transactions"] == 30, "mid-data: sink accepted %d messages, want 30" % st["transactions"])


def case_sigterm_then_resume(env):
    """SIGTERM to a `volley run` mid-delivery: it exits 0 with a summary, what
    it delivered is logged, the rest stays ready; a second run delivers the
    rest: every recipient exactly once over both runs."""
    env.start_sinks({"127.0.0.2": ["--delay", "dot=20ms"]})
    env.start_dns()
    want = ["t%d@example.test" % i for i in range(400)]
    env.enqueue(SENDER, want)
    cmd = [volley_bin(), "run", "--data", env.data, "--quiet", "--log", env.log_path,
           "--shards", str(env.shards), "--max-rcpts", "1", "--conns-per-dest", "4"]
    p = subprocess.Popen(cmd + [str(a) for a in env.route_args()], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 20
        while time.monotonic() < end and len(env.log()) < 40 and p.poll() is None:
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check(p.returncode == 0 and "summary: delivered" in out, "SIGTERM: exit %d %r %r" %
          (p.returncode, out, err))
    first = len(by_event(env.log(), "delivered"))
    qs = env.queue_stats()
    check(0 < first < len(want) and qs["ready"] == len(want) - first and qs["deferred"] == 0,
          "after SIGTERM: %d delivered, queue %r" % (first, qs))
    env.run()
    check_final(env, want, "sigterm")


def case_reply_timeouts(env):
    """Slow replies past the (scaled) command timeouts: those transactions are
    deferred 4.4.2 with no fate lost, and the next round delivers them."""
    env.start_sinks({"127.0.0.2": ["--delay", "rcpt=800ms:nth=3", "--delay", "mail=800ms:nth=7"]})
    env.start_dns()
    want = ["slow%d@example.test" % i for i in range(40)]
    env.enqueue(SENDER, want)
    rounds = run_until_empty(env, "--timeout-scale", "0.001", "--max-rcpts", "4")
    log = check_final(env, want, "timeouts")
    dfr = by_event(log, "deferred")
    check(rounds >= 2 and len(dfr) == 8, "timeouts: %d rounds, %d deferrals (want 2 txns x 4)" %
          (rounds, len(dfr)))
    for e in dfr:
        check(e.get("status") == "4.4.2" and "timeout" in e.get("reply", ""), "timeouts: %r" % e)


def case_chaos_three_hosts(env):
    """~2400 recipients over 30 domains on 3 hosts, 2 shards, every server
    fault at once at random (seeded): RCPT 451, dot 451, 421 banners, closes
    after 5 messages, disconnects inside DATA. Rounds until empty: each
    recipient accepted exactly once and logged delivered exactly once (the
    sink never accepts a message it cut off, so no ambiguity duplicates)."""
    faults = ["--fault", "rcpt=451:prob=0.1", "--fault", "dot=451:prob=0.05",
              "--fault", "banner=421:prob=0.05", "--disconnect", "after-txns=5",
              "--disconnect", "mid-data:prob=0.03"]
    hosts = {"127.0.0.%d" % (30 + i): faults + ["--seed", str(3 + i)] for i in range(3)}
    env.start_sinks(hosts)
    env.start_dns(mx={"d%d.test" % d: [(10, "mx.d%d.test" % d, "127.0.0.%d" % (30 + d % 3))]
                      for d in range(30)}, defaults=False)
    items, want = [], []
    for m in range(40):
        rc = ["m%d.r%d@d%d.test" % (m, r, (m * 7 + r) % 30) for r in range(m * 3 % 50 + 1)]
        items.append((SENDER, rc, message(subject="chaos %d" % m, size=3000 + 100 * m)))
        want += rc
    big = ["big%d@d%d.test" % (i, i % 30) for i in range(1500)]
    items.append((SENDER, big, message(subject="big")))
    want += big
    env.enqueue_many(items)
    run_until_empty(env, "--shards", "2", "--conns-per-dest", "5", "--max-rcpts", "20")
    log = env.log()
    saved = sum((env.saved(h) for h in hosts), [])
    check_exactly_once(log, saved, want, "chaos")
    check(not [e for e in log if e["event"] in ("bounced", "expired")], "chaos: final failures")
    check(by_event(log, "deferred"), "chaos: no deferrals: were the faults applied?")


if __name__ == "__main__":
    run_cases([("rcpts_max_452", case_rcpts_max_452),
               ("dot_451_and_closes", case_dot_451_and_closes),
               ("mid_data_disconnect", case_mid_data_disconnect),
               ("sigterm_then_resume", case_sigterm_then_resume),
               ("reply_timeouts", case_reply_timeouts),
               ("chaos_three_hosts", case_chaos_three_hosts)])
