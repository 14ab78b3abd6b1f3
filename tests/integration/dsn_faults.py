"""dsn_faults.py - bounces and DSNs end to end (issue 5). Failures come from
`volley sink` faults on dst.test; DSNs go back through the engine to the
return path's sink (ret.test), and each one received is parsed by
tests/tools/dsn_check.py (Python's email package) and checked field by field.
Cases: 550 for 1 of 3 recipients; 554 after data; 550 at RCPT plus 554 at the
dot in one attempt (one DSN, not two); expiry with a small --max-age (the last
transient status); --delay-warning (one Action: delayed notice); null return path (no DSN); a DSN that bounces (logged,
dropped, no DSN about a DSN); `volley queue bounce ID`. Run one case with
DELIVER_CASE=name."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import check, by_event, message, run_cases  # noqa: E402
from retry_lib import (DST, RET, SENDER, setup, run_until_final, events,  # noqa: E402
                       dsns, dsn_check)

MX = "mx.dst.test"


def summary_dsns(r):
    m = re.search(r"dsns (\d+)", r.stdout)
    check(m, "no dsns count in the run summary: %r" % r.stdout)
    return int(m.group(1))


def one_dsn(env):
    got = dsns(env)
    check(len(got) == 1, "%d DSNs at the return path, want 1: %r" %
          (len(got), [(d["file"], d["rcpts"]) for d in got]))
    return got[0]


def case_rcpt_550_one_of_three(env):
    setup(env, ["--fault", "rcpt=550:match=bad"])
    env.enqueue(SENDER, ["ok1@dst.test", "bad1@dst.test", "ok2@dst.test"],
                message(subject="one of three", from_addr=SENDER))
    r = env.run()
    log = env.log()
    check([e["rcpt"] for e in by_event(log, "bounced")] == ["bad1@dst.test"], "log %r" % log)
    check(len(by_event(log, "delivered")) == 3, "2 + the DSN delivered: %r" % log)
    check(summary_dsns(r) == 1, "summary %r" % r.stdout)
    d = one_dsn(env)
    dsn_check(d["path"], "--env-rcpt", SENDER, "--to", SENDER,
              "--rcpt", "bad1@dst.test:failed:5.1.1:" + MX, "--diag", "bad1@dst.test:550",
              "--no-rcpt", "ok1@dst.test", "--no-rcpt", "ok2@dst.test",
              "--orig-header", "Subject:one of three")


def case_dot_554_all(env):
    setup(env, ["--fault", "dot=554:nth=1"])
    rc = ["x1@dst.test", "x2@dst.test", "x3@dst.test"]
    env.enqueue(SENDER, rc, message(subject="all three"))
    env.run()
    check(sorted(e["rcpt"] for e in by_event(env.log(), "bounced")) == rc, "log %r" % env.log())
    d = one_dsn(env)
    args = ["--env-rcpt", SENDER, "--to", SENDER, "--orig-header", "Subject:all three"]
    for a in rc:
        args += ["--rcpt", "%s:failed:5.0.0:%s" % (a, MX), "--diag", a + ":554"]
    dsn_check(d["path"], *args)


def case_rcpt_and_dot_one_dsn(env):
    # RCPT fails for one recipient, then the dot fails for the others: the
    # outcomes come at different times of ONE attempt -> ONE DSN for all three
    setup(env, ["--fault", "rcpt=550:match=bad", "--fault", "dot=554:nth=1"])
    env.enqueue(SENDER, ["bad@dst.test", "y1@dst.test", "y2@dst.test"])
    r = env.run()
    check(summary_dsns(r) == 1, "DSNs for one attempt: %r" % r.stdout)
    dsn_check(one_dsn(env)["path"], "--env-rcpt", SENDER,
              "--rcpt", "bad@dst.test:failed:5.1.1:" + MX,
              "--rcpt", "y1@dst.test:failed:5.0.0:" + MX,
              "--rcpt", "y2@dst.test:failed:5.0.0:" + MX)


def case_expiry(env):
    setup(env, ["--fault", "rcpt=451:match=e"])
    env.enqueue(SENDER, ["e1@dst.test", "ok@dst.test"])
    runs = run_until_final(env, ["--retry-base", "1s", "--retry-max", "1s", "--max-age", "3s"])
    log = env.log()
    ev = events(log, "e1@dst.test")
    check([e["event"] for e in ev][-1] == "expired", "e1 events %r" % ev)
    check(all(e["event"] == "deferred" for e in ev[:-1]) and 2 <= len(ev) <= 5,
          "e1 events %r" % ev)
    check(ev[-1]["code"] == 451 and ev[-1]["status"] == "4.3.0", "expired line %r" % ev[-1])
    check(runs >= 2, "expired after %d run(s)" % runs)
    dsn_check(one_dsn(env)["path"], "--env-rcpt", SENDER,
              "--rcpt", "e1@dst.test:failed:4.3.0:" + MX, "--diag", "e1@dst.test:451",
              "--no-rcpt", "ok@dst.test")


def case_delay_warning(env):
    # The first attempt comes after --delay-warning: a notice (the rule is exact
    # for a first attempt: the previous "attempt" is the enqueue). The second
    # attempt must not repeat it; the third delivers.
    setup(env, ["--fault", "rcpt=451:nth=1", "--fault", "rcpt=451:nth=2"])
    env.enqueue(SENDER, ["w1@dst.test"], message(subject="slow"))
    time.sleep(0.6)
    args = ["--retry-base", "1s", "--retry-max", "1s", "--delay-warning", "400ms"]
    run_until_final(env, args, sleep_s=0.1)
    ev = events(env.log(), "w1@dst.test")
    check([e["event"] for e in ev] == ["deferred", "deferred", "delivered"], "w1 events %r" % ev)
    got = dsns(env)
    check(len(got) == 1, "want exactly one delay notice, got %d" % len(got))
    dsn_check(got[0]["path"], "--env-rcpt", SENDER, "--orig-header", "Subject:slow",
              "--rcpt", "w1@dst.test:delayed:4.3.0:" + MX, "--diag", "w1@dst.test:451")
    check(b"Will-Retry-Until:" in got[0]["content"] and
          b"Subject: Delayed Mail" in got[0]["content"], "delay notice fields")


def case_delay_warning_not_reached(env):
    setup(env, ["--fault", "rcpt=451:nth=1"])
    env.enqueue(SENDER, ["w2@dst.test"])
    run_until_final(env, ["--retry-base", "1s", "--delay-warning", "1h"], sleep_s=0.1)
    check(len(by_event(env.log(), "delivered")) == 1 and not dsns(env), "log %r" % env.log())


def case_null_path_no_dsn(env):
    setup(env, ["--fault", "rcpt=550"])
    env.enqueue("<>", ["n1@dst.test", "n2@dst.test"])
    r = env.run()
    check(len(by_event(env.log(), "bounced")) == 2, "log %r" % env.log())
    check(summary_dsns(r) == 0 and not dsns(env), "a DSN for a null return path")
    st = env.stop_sink(RET)
    check(st["connections"] == 0, "the return path's sink was contacted")


def case_dsn_bounce_dropped(env):
    setup(env, ["--fault", "rcpt=550:match=b"], ["--fault", "rcpt=550"])
    env.enqueue(SENDER, ["b1@dst.test"])
    r = env.run()
    log = env.log()
    dsn_lines = events(log, SENDER)
    check(len(dsn_lines) == 1 and dsn_lines[0]["event"] == "bounced", "DSN fate %r" % log)
    check(summary_dsns(r) == 1, "a DSN about a DSN: %r" % r.stdout)
    check(env.queue_stats()["ready"] + env.queue_stats()["deferred"] == 0, "queue not empty")
    st = env.stop_sink(RET)
    check(st["transactions"] == 0, "the bounced DSN was accepted somewhere")


def case_operator_bounce(env):
    setup(env, ["--fault", "rcpt=451"])
    mid = env.enqueue(SENDER, ["o1@dst.test", "o2@down.test"], message(subject="operator"))
    env.run("--retry-base", "1h", "--host-backoff", "60s")
    check(len(by_event(env.log(), "deferred")) == 2, "log %r" % env.log())
    q = ["queue", "--data", env.data]
    r = env.volley(*q, "bounce", mid, "--json")
    check(r.returncode == 0 and '"bounced":2' in r.stdout and '"dsns":1' in r.stdout,
          "queue bounce: %d %r %r" % (r.returncode, r.stdout, r.stderr))
    again = env.volley(*q, "bounce", mid)
    check(again.returncode == 2, "a second bounce exited %d: %r" % (again.returncode, again.stdout))
    st = env.queue_stats()
    check(st["bounced"] == 2 and st["ready"] == 1 and st["deferred"] == 0,
          "after bounce: %r (want 2 bounced, the DSN ready)" % st)
    env.run("--retry-base", "1h")
    dsn_check(one_dsn(env)["path"], "--env-rcpt", SENDER, "--orig-header", "Subject:operator",
              "--rcpt", "o1@dst.test:failed:5.0.0", "--rcpt", "o2@down.test:failed:5.0.0",
              "--diag", "o1@dst.test:bounced by the operator")
    bad = env.volley(*q, "bounce", "zz")
    check(bad.returncode == 2 and "bad message id" in bad.stderr, "bad id: %r" % bad.stderr)


def case_operator_bounce_null_path(env):
    setup(env, ["--fault", "rcpt=451"])
    mid = env.enqueue("<>", ["z@dst.test"])
    env.run("--retry-base", "1h")
    r = env.volley("queue", "--data", env.data, "bounce", mid)
    check(r.returncode == 0 and "bounced 1 recipient, 0 DSNs" in r.stdout, "%r" % r.stdout)
    check(env.queue_stats()["ready"] == 0, "a DSN was queued for a null return path")


if __name__ == "__main__":
    run_cases([
        ("rcpt_550_one_of_three", case_rcpt_550_one_of_three),
        ("dot_554_all", case_dot_554_all),
        ("rcpt_and_dot_one_dsn", case_rcpt_and_dot_one_dsn),
        ("expiry", case_expiry),
        ("delay_warning", case_delay_warning),
        ("delay_warning_not_reached", case_delay_warning_not_reached),
        ("null_path_no_dsn", case_null_path_no_dsn),
        ("dsn_bounce_dropped", case_dsn_bounce_dropped),
        ("operator_bounce", case_operator_bounce),
        ("operator_bounce_null_path", case_operator_bounce_null_path),
    ])
