"""deliver_dest_policy.py - issue 9 item 9, destinations a sender should not
reach, end to end through dnsmasq and `volley sink`:

By default volley delivers only to public addresses (MX/A answers and
address literals like x@[10.0.0.5]); --allow-dest CLASSES allows loopback,
private, link-local or reserved ones; unspecified and multicast addresses are
never used; static --route targets are always allowed. An MX address that
is refused is dropped from the domain's host list (evt=dest_refused, once per
domain, at info); a domain left with none bounces 5.4.4 with a text naming
the address, its class and the option, in the delivery log and the DSN.

The DSNs go to sender@ret.test over a static --route (allowed whatever the
policy), so the refusing runs still receive them. Run one case with
DELIVER_CASE=name."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import check, by_event, run_cases  # noqa: E402
from retry_lib import DST, RET, SENDER, dsns  # noqa: E402

ZONE = {
    "dst.test": [(10, "mx.dst.test", DST)],
    # the best MX is 0.0.0.0 (never allowed: it would reach this host), then DST
    "mixed.test": [(10, "mx0.mixed.test", "0.0.0.0"), (20, "mx1.mixed.test", DST)],
}


def setup(env, allow):
    env.start_sinks({DST: [], RET: []})
    env.start_dns(mx=ZONE, defaults=False)
    env.allow_dest = allow
    return ["--route", "ret.test=%s:%d" % (RET, env.port), "--retry-base", "1h"]


def run_info(env, args):
    """volley run with VOLLEY_LOG=info; returns its stderr (diagnostics)."""
    return env.run(*args, env={"VOLLEY_LOG": "info"}).stderr


def check_refused(env, rcpt, want_text, stderr):
    log = env.log()
    b = by_event(log, "bounced")
    check(len(b) == 1 and b[0]["rcpt"] == rcpt, "want one bounce for %s: %r" % (rcpt, log))
    check(b[0]["status"] == "5.4.4" and b[0]["attempt"] == 1, "bounce %r" % b[0])
    check(want_text in b[0]["reply"] and "refused by destination policy" in b[0]["reply"],
          "bounce text %r lacks %r" % (b[0]["reply"], want_text))
    check(not env.saved(DST), "something reached the refused destination: %r" %
          env.saved(DST))
    d = dsns(env)
    check(len(d) == 1, "want one DSN at the return path, got %d" % len(d))
    body = d[0]["content"].decode(errors="replace")
    check(want_text in body.replace("\r\n ", " ").replace("\r\n\t", " "),
          "the DSN does not name the reason %r:\n%s" % (want_text, body[:2000]))
    check(stderr.count("evt=dest_refused") == 1, "dest_refused logged %d times:\n%s" %
          (stderr.count("evt=dest_refused"), stderr))


def case_item9_mx_loopback_refused(env):
    args = setup(env, [])
    env.enqueue(SENDER, ["u@dst.test"])
    err = run_info(env, args)
    check_refused(env, "u@dst.test", "MX mx.dst.test 127.0.0.2 is loopback", err)
    check("(--allow-dest loopback)" in env.log()[0]["reply"], "the option is not named: %r"
          % env.log()[0])


def case_item9_mx_loopback_allowed(env):
    args = setup(env, ["--allow-dest", "loopback"])
    env.enqueue(SENDER, ["u@dst.test"])
    env.run(*args)
    log = env.log()
    check([e["event"] for e in log] == ["delivered"], "log %r" % log)
    check([s["rcpts"] for s in env.saved(DST)] == [["u@dst.test"]], "saved %r" % env.saved(DST))


def case_item9_mx_unspecified_dropped(env):
    # --allow-dest any still never uses 0.0.0.0: the next MX gets the mail
    args = setup(env, ["--allow-dest", "any"])
    env.enqueue(SENDER, ["m@mixed.test"])
    err = run_info(env, args)
    log = env.log()
    check([(e["event"], e.get("ip")) for e in log] == [("delivered", DST)], "log %r" % log)
    check(err.count("evt=dest_refused") == 1 and "0.0.0.0 is unspecified" in err
          and "never allowed" in err, "diagnostics:\n%s" % err)


def case_item9_literal_refused(env):
    args = setup(env, [])
    rcpt = "u@[%s]" % DST
    env.enqueue(SENDER, [rcpt])
    err = run_info(env, args)
    check_refused(env, rcpt, "address literal [%s] is loopback" % DST, err)


def case_item9_literal_allowed(env):
    args = setup(env, ["--allow-dest", "private,loopback"])
    rcpt = "u@[%s]" % DST
    env.enqueue(SENDER, [rcpt])
    env.run(*args)
    log = env.log()
    check([e["event"] for e in log] == ["delivered"], "log %r" % log)
    check([s["rcpts"] for s in env.saved(DST)] == [[rcpt]], "saved %r" % env.saved(DST))


def case_item9_bad_option(env):
    env.start_sinks({DST: []})
    env.start_dns(mx=ZONE, defaults=False)
    for bad in ("multicast", "public", "loopback,", "nope"):
        r = env.run("--allow-dest", bad, expect_rc=None)
        check(r.returncode == 2 and "--allow-dest" in r.stderr,
              "--allow-dest %s: exit %d, stderr %r" % (bad, r.returncode, r.stderr))


if __name__ == "__main__":
    run_cases([
        ("item9_mx_loopback_refused", case_item9_mx_loopback_refused),
        ("item9_mx_loopback_allowed", case_item9_mx_loopback_allowed),
        ("item9_mx_unspecified_dropped", case_item9_mx_unspecified_dropped),
        ("item9_literal_refused", case_item9_literal_refused),
        ("item9_literal_allowed", case_item9_literal_allowed),
        ("item9_bad_option", case_item9_bad_option),
    ])
