"""retry_faults.py - retries end to end through `volley sink` faults (issue 5):
450/451 at MAIL, RCPT and end of data retried on schedule and then delivered
exactly once; the schedule grows and is capped; a restart keeps it (nothing
is sent before its time) and `volley queue retry ID` overrides it; 452 after N
recipients (and 552 at RCPT) defers only those; 421 at the banner and refused
connections mark the host failing so attempts stay low; a drop after the
final "." is logged "ambiguous", counted, and retried. Run one case with
DELIVER_CASE=name."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import check, check_exactly_once, by_event, run_cases  # noqa: E402
from retry_lib import (DST, SENDER, setup, run_until_final, ts, events,  # noqa: E402
                       dsns)

BASE = ["--retry-base", "1s", "--retry-max", "2s"]


def transient(stage, code):
    """One fault at STAGE (the first occurrence only), then success."""
    def case(env):
        setup(env, ["--fault", "%s=%d:nth=1" % (stage, code)])
        rc = ["t1@dst.test", "t2@dst.test"]
        env.enqueue(SENDER, rc)
        runs = run_until_final(env, BASE)
        log = env.log()
        check_exactly_once(log, env.saved(DST), rc, "%s %d" % (stage, code))
        deferred = by_event(log, "deferred")
        # RCPT: only the first recipient's RCPT fails; MAIL/dot: the transaction
        want = 1 if stage == "rcpt" else 2
        check(len(deferred) == want, "%d deferred lines, want %d: %r" % (len(deferred), want, log))
        for d in deferred:
            check(d["code"] == code and d["status"].startswith("4.") and d["attempt"] == 1,
                  "deferred line %r" % d)
            later = [e for e in events(log, d["rcpt"]) if e["event"] == "delivered"]
            check(later and later[0]["attempt"] == 2, "retry of %s: %r" % (d["rcpt"], later))
            gap = ts(later[0]) - ts(d)
            # --retry-base 1s with +-10% jitter; runs poll every ~0.25 s
            check(0.85 <= gap <= 3.0, "retry of %s after %.2f s, want ~1 s" % (d["rcpt"], gap))
        check(runs >= 2, "delivered in %d run(s): the retry was not waited for" % runs)
        check(not dsns(env), "a DSN for a transient failure")
    return case


def case_schedule_grows(env):
    # three RCPT failures in a row (one rule per attempt), then success
    setup(env, ["--fault", "rcpt=451:nth=1", "--fault", "rcpt=451:nth=2",
                "--fault", "rcpt=451:nth=3"])
    env.enqueue(SENDER, ["g@dst.test"])
    run_until_final(env, ["--retry-base", "1s", "--retry-max", "2s"], sleep_s=0.1)
    log = events(env.log(), "g@dst.test")
    check([e["event"] for e in log] == ["deferred"] * 3 + ["delivered"], "events %r" % log)
    check([e["attempt"] for e in log] == [1, 2, 3, 4], "attempts %r" % log)
    gaps = [ts(b) - ts(a) for a, b in zip(log, log[1:])]
    # 1 s, then 2 s (doubled), then 2 s (capped by --retry-max); +-10% jitter
    for g, want in zip(gaps, (1.0, 2.0, 2.0)):
        check(want * 0.88 <= g <= want * 1.1 + 0.8, "gaps %r, want ~1, 2, 2 s" % gaps)


def case_restart_keeps_schedule(env):
    setup(env, ["--fault", "rcpt=451:nth=1"])
    mid = env.enqueue(SENDER, ["k@dst.test"])
    env.run("--retry-base", "20s")
    check([e["event"] for e in env.log()] == ["deferred"], "first run: %r" % env.log())
    for _ in range(3):            # restarts: nothing is due, nothing is sent
        env.run("--retry-base", "20s")
    check(len(env.log()) == 1, "a restart retried before the next attempt time: %r" % env.log())
    show = env.volley("queue", "--data", env.data, "show", mid, "--json")
    check(show.returncode == 0 and '"state":"deferred"' in show.stdout and
          '"attempts":1' in show.stdout, "queue show: %s" % show.stdout)
    r = env.volley("queue", "--data", env.data, "retry", mid)
    check(r.returncode == 0 and "made ready 1 recipient" in r.stdout, "queue retry: %r" % r.stdout)
    env.run("--retry-base", "20s")
    check([e["event"] for e in env.log()] == ["deferred", "delivered"], "log %r" % env.log())
    st = env.stop_sink(DST)
    check(st["transactions"] == 1, "sink transactions %d, want 1" % st["transactions"])


def case_452_after_n(env):
    setup(env, ["--rcpts-max", "2"])
    rc = ["n%d@dst.test" % i for i in range(5)]
    env.enqueue(SENDER, rc)
    env.run(*BASE)
    first = env.log()
    check(len(by_event(first, "delivered")) == 2 and len(by_event(first, "deferred")) == 3,
          "first attempt: %r" % first)
    for d in by_event(first, "deferred"):
        check(d["code"] == 452, "deferred line %r" % d)
    run_until_final(env, BASE)
    check_exactly_once(env.log(), env.saved(DST), rc, "452 after 2")
    check(not dsns(env), "a DSN for 452")


def case_552_at_rcpt_defers(env):
    setup(env, ["--fault", "rcpt=552:nth=2"])
    rc = ["p0@dst.test", "p1@dst.test", "p2@dst.test"]
    env.enqueue(SENDER, rc)
    env.run(*BASE)
    first = env.log()
    d = by_event(first, "deferred")
    check(len(d) == 1 and d[0]["rcpt"] == "p1@dst.test" and d[0]["code"] == 552,
          "552 at RCPT must defer only that recipient: %r" % first)
    check(len(by_event(first, "delivered")) == 2, "the rest goes on: %r" % first)
    run_until_final(env, BASE)
    check_exactly_once(env.log(), env.saved(DST), rc, "552 at RCPT")


def case_banner_421_backoff(env):
    setup(env, ["--fault", "banner=421"])
    rc = ["b%d@dst.test" % i for i in range(30)]
    for r in rc:                    # 30 messages: 30 transactions for one host
        env.enqueue(SENDER, [r])
    env.run("--conns-per-dest", "3", "--host-backoff", "60s")
    log = env.log()
    check(len(log) == 30 and len(by_event(log, "deferred")) == 30, "log %r" % log[:3])
    check(all(e["code"] == 421 and "no usable MX" not in e["reply"] for e in log),
          "every deferral carries the 421: %r" % log[:3])
    st = env.stop_sink(DST)
    # without host backoff every transaction would pay a connection; with it:
    # the --conns-per-dest sessions opened at once, plus at most one probe
    check(1 <= st["connections"] <= 4, "sink saw %d connections for 30 transactions"
          % st["connections"])


def case_refused_backoff(env):
    setup(env)
    for i in range(30):
        env.enqueue(SENDER, ["d%d@down.test" % i])
    os.environ["VOLLEY_LOG"] = "info"
    try:
        r = env.run("--conns-per-dest", "3", "--host-backoff", "60s")
    finally:
        del os.environ["VOLLEY_LOG"]
    log = env.log()
    check(len(by_event(log, "deferred")) == 30, "log %r" % log[:3])
    # every one carries the host's own failure, not a generic "no usable MX"
    check(all(e["status"].startswith("4.") and "127.0.0.10" in e["reply"] and
              "no usable MX" not in e["reply"] for e in log), "deferrals %r" % log[:3])
    failing = r.stderr.count("evt=host_failing")
    check(failing == 1, "host_failing logged %d times:\n%s" % (failing, r.stderr))
    conns = [int(x) for x in __import__("re").findall(r"(\d+) connections", r.stdout)]
    check(conns and conns[0] <= 4, "connection attempts %r for 30 transactions" % conns)


def case_ambiguous_after_dot(env):
    setup(env, ["--disconnect", "dot:nth=1"])
    env.enqueue(SENDER, ["a1@dst.test", "a2@dst.test"])
    r = env.run(*BASE)
    amb = by_event(env.log(), "ambiguous")
    check(len(amb) == 2 and all(e["attempt"] == 1 for e in amb), "log %r" % env.log())
    check("ambiguous 2" in r.stdout, "run summary does not count them: %r" % r.stdout)
    st = env.queue_stats()
    check(st.get("ambiguous") == 2, "queue stats does not count them: %r" % st)
    run_until_final(env, BASE)
    log = env.log()
    check(len(by_event(log, "delivered")) == 2, "retried and delivered: %r" % log)
    check(all(e["attempt"] == 2 for e in by_event(log, "delivered")), "log %r" % log)


if __name__ == "__main__":
    run_cases([
        ("mail_451", transient("mail", 451)),
        ("rcpt_450", transient("rcpt", 450)),
        ("dot_451", transient("dot", 451)),
        ("schedule_grows", case_schedule_grows),
        ("restart_keeps_schedule", case_restart_keeps_schedule),
        ("452_after_n", case_452_after_n),
        ("552_at_rcpt_defers", case_552_at_rcpt_defers),
        ("banner_421_backoff", case_banner_421_backoff),
        ("refused_backoff", case_refused_backoff),
        ("ambiguous_after_dot", case_ambiguous_after_dot),
    ])
