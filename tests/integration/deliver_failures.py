"""deliver_failures.py - delivery failures end to end (dnsmasq + `volley sink`):
SIZE refusal (5.3.4, nothing transmitted), 550 for some recipients, 421 at the
banner of the first MX (delivered via the second), null MX (5.1.10) and
NXDOMAIN (5.1.2) without a connection, and the DSNs those bounces produce.
Run one case with DELIVER_CASE=name."""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import (check, check_exactly_once, message, by_event,  # noqa: E402
                        run_cases, src_root)

SENDER = "bounces@dsn.test"  # its MX is a sink on DSN_HOST: bounce DSNs land there
DSN_HOST = "127.0.0.20"
FAST = ["--connect-timeout", "2s", "--timeout-scale", "0.1", "--retry-base", "1h"]


def dsn_zone(extra=None):
    mx = {"dsn.test": [(10, "mx.dsn.test", DSN_HOST)]}
    mx.update(extra or {})
    return mx


def check_bounced(log, rcpts, status, what):
    got = {e["rcpt"]: e for e in by_event(log, "bounced")}
    for r in rcpts:
        check(r in got, "%s: %s not bounced (log: %r)" % (what, r, [e for e in log if e["rcpt"] == r]))
        check(got[r].get("status") == status, "%s: %s bounced %r, want %s" %
              (what, r, got[r].get("status"), status))
    n = sum(1 for e in log if e["rcpt"] in set(rcpts))
    check(n == len(rcpts), "%s: %d log lines for %d recipients" % (what, n, len(rcpts)))


def check_dsn(env, failed, what, status=None):
    """DSNs on the DSN sink: null sender, to SENDER; each failed recipient is
    named in exactly one of them (bounces decided in different commits may
    come in separate DSNs); one logged delivery per DSN."""
    saved = env.saved(DSN_HOST)
    check(1 <= len(saved) <= len(failed), "%s: %d DSNs for %d bounces" % (what, len(saved), len(failed)))
    for s in saved:
        check(s["mail_from"] == "" and s["rcpts"] == [SENDER],
              "%s: DSN envelope %r -> %r" % (what, s["mail_from"], s["rcpts"]))
    texts = [s["content"].decode(errors="replace").lower().replace(" ", "") for s in saved]
    for r in failed:
        n = sum(1 for t in texts if ("final-recipient:rfc822;" + r.lower()) in t)
        check(n == 1, "%s: %s named in %d DSNs, want 1" % (what, r, n))
    dl = [e for e in by_event(env.log(), "delivered") if e["rcpt"] == SENDER]
    check(len(dl) == len(saved), "%s: %d DSN deliveries logged, %d saved" % (what, len(dl), len(saved)))
    if status and len(saved) == 1:       # field by field, with an independent parser
        tool = os.path.join(src_root(), "tests", "tools", "dsn_check.py")
        args = ["--envelope", "--to", SENDER]
        for r in failed:
            args += ["--rcpt", "%s:failed:%s" % (r, status)]
        path = os.path.join(env.sinks[DSN_HOST].save_dir, saved[0]["file"])
        r = subprocess.run([sys.executable, tool, path] + args, capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 0, "%s: dsn_check: %s%s" % (what, r.stdout, r.stderr))


def case_size_refused(env):
    env.start_sinks({"127.0.0.2": ["--size", "2000"], DSN_HOST: []})
    env.start_dns(mx=dsn_zone())
    rc = ["big%d@example.test" % i for i in range(4)]
    env.enqueue(SENDER, rc, message(subject="too big", size=6000))
    env.run(*FAST)
    check_bounced([e for e in env.log() if e["rcpt"] != SENDER], rc, "5.3.4", "size")
    st = env.stop_sink("127.0.0.2")
    check(st["transactions"] == 0 and st["bytes"] == 0,
          "size: sink got %d transactions, %d bytes" % (st["transactions"], st["bytes"]))
    check_dsn(env, rc, "size", "5.3.4")


def case_rcpt_550_some(env):
    env.start_sinks({"127.0.0.2": ["--fault", "rcpt=550:match=bad"], DSN_HOST: []})
    env.start_dns(mx=dsn_zone())
    good = ["good%d@example.test" % i for i in range(6)]
    bad = ["bad%d@example.test" % i for i in range(3)]
    mixed = [x for pair in zip(good, bad + [None] * 3) for x in pair if x]
    env.enqueue(SENDER, mixed, message(subject="partial"))
    env.run(*FAST)
    log = [e for e in env.log() if e["rcpt"] != SENDER]
    check_exactly_once(log, env.saved("127.0.0.2"), good, "550 partial")
    check_bounced(log, bad, by_event(log, "bounced")[0]["status"] if by_event(log, "bounced")
                  else "5.x.x", "550 partial")
    for e in by_event(log, "bounced"):
        check(e.get("code") == 550 and e["status"].startswith("5."), "550 bounce line: %r" % e)
    st = env.stop_sink("127.0.0.2")
    check(st["transactions"] == 1 and st["rcpts"] == len(good),
          "sink: %d transactions, %d rcpts" % (st["transactions"], st["rcpts"]))
    check_dsn(env, bad, "550 partial", "5.1.1")


def case_banner_421_second_mx(env):
    env.start_sinks({"127.0.0.2": ["--fault", "banner=421"], "127.0.0.3": []})
    env.start_dns()    # default zone: example.test MX 10 -> .2, MX 20 -> .3
    items, want = [], []
    for m in range(5):
        rc = ["f%d.r%d@example.test" % (m, r) for r in range(4)]
        items.append(("s@src.test", rc, message(subject="failover %d" % m)))
        want += rc
    env.enqueue_many(items)
    env.run(*FAST)
    log = env.log()
    check_exactly_once(log, env.saved("127.0.0.3"), want, "421 failover")
    for e in by_event(log, "delivered"):
        check(e.get("ip") == "127.0.0.3" and e.get("mx") == "mx2.example.test",
              "421 failover: delivered via %r" % e)
    st1, st2 = env.stop_sink("127.0.0.2"), env.stop_sink("127.0.0.3")
    check(st1["connections"] >= 1 and st1["transactions"] == 0,
          "first MX: %d connections, %d transactions" % (st1["connections"], st1["transactions"]))
    check(st2["transactions"] == 5, "second MX: %d transactions" % st2["transactions"])


def case_nullmx_nxdomain(env):
    """Null MX -> 5.1.10, NXDOMAIN -> 5.1.2, both without a connection; the
    example.test and implicit-MX recipients of the same message are delivered."""
    env.start_sinks({"127.0.0.2": [], "127.0.0.4": [], DSN_HOST: []})
    env.start_dns(mx=dsn_zone())
    ok, implicit = ["ok@example.test"], ["imp@implicit.test"]
    nullmx, nx = ["n1@nullmx.test", "n2@nullmx.test"], ["x@nosuch.test"]
    env.enqueue(SENDER, ok + nullmx + nx + implicit, message(subject="dns fates"))
    env.run(*FAST)
    log = [e for e in env.log() if e["rcpt"] != SENDER]
    check_bounced(log, nullmx, "5.1.10", "null MX")
    check_bounced(log, nx, "5.1.2", "NXDOMAIN")
    for e in by_event(log, "bounced"):
        check("ip" not in e, "bounce after a connection? %r" % e)
    check_exactly_once([e for e in log if e["rcpt"] in ok], env.saved("127.0.0.2"), ok, "example")
    check_exactly_once([e for e in log if e["rcpt"] in implicit], env.saved("127.0.0.4"), implicit,
                       "implicit MX")
    for h in ("127.0.0.2", "127.0.0.4"):
        st = env.stop_sink(h)
        check(st["connections"] == 1 and st["rcpts"] == 1,
              "%s: %d connections, %d rcpts" % (h, st["connections"], st["rcpts"]))
    check_dsn(env, nullmx + nx, "dns fates")


def case_all_mx_421(env):
    """Both MX addresses say 421 at the banner: every recipient deferred with
    that failure (not a generic 'no usable MX address'), nothing bounced."""
    env.start_sinks({"127.0.0.2": ["--fault", "banner=421"], "127.0.0.3": ["--fault", "banner=421"]})
    env.start_dns()
    rc = ["d%d@example.test" % i for i in range(6)]
    env.enqueue("s@src.test", rc)
    env.run(*FAST)
    log = env.log()
    check(len(log) == len(rc) and len(by_event(log, "deferred")) == len(rc),
          "all 421: %r" % [(e["rcpt"], e["event"]) for e in log])
    for e in log:
        check(e.get("code") == 421 and "all 2 MX addresses" in e.get("reply", ""),
              "all 421: deferral does not carry the hosts' failure: %r" % e)
    qs = env.queue_stats()
    check(qs["deferred"] == len(rc), "all 421: queue %r" % qs)


def case_busy_host_some_refused(env):
    """A host that takes only 2 connections and closes the rest at once (a
    per-client connection cap): the refused ones must not fail the host while
    the others reach the greeting: everything delivered in one run."""
    env.start_sinks({"127.0.0.2": ["--max-conns", "2"]})
    env.start_dns(mx={"busy.test": [(10, "mx.busy.test", "127.0.0.2")]})
    rc = ["b%d@busy.test" % i for i in range(300)]
    env.enqueue("s@src.test", rc)
    env.run(*FAST, "--max-rcpts", "1")
    log = env.log()
    check_exactly_once(log, env.saved("127.0.0.2"), rc, "busy host")
    st = env.stop_sink("127.0.0.2")
    check(st["transactions"] == 300, "busy host: %d transactions" % st["transactions"])
    # No reconnect storm: refused connections bounded by the pool size (20)
    # per normal session end (300 txns at 100 per connection: a few ends).
    # Before the fix this was often > 1000.
    check(st["connections_refused"] <= 120, "busy host: %d connections refused" %
          st["connections_refused"])


def case_8bit_without_8bitmime(env):
    """An 8-bit body to a server without 8BITMIME: bounced 5.6.3 locally,
    nothing transmitted; a 7-bit message in the same run is delivered."""
    env.start_sinks({"127.0.0.2": ["--no-8bitmime"], DSN_HOST: []})
    env.start_dns(mx=dsn_zone())
    rc8, rc7 = ["e1@example.test", "e2@example.test"], ["plain@example.test"]
    env.enqueue_many([(SENDER, rc8, "Subject: 8bit\r\n\r\nh\u00e9llo w\u00f6rld\r\n".encode()),
                      (SENDER, rc7, message(subject="7bit"))])
    env.run(*FAST)
    log = [e for e in env.log() if e["rcpt"] != SENDER]
    check_bounced(log, rc8, "5.6.3", "8bit")
    check_exactly_once([e for e in log if e["rcpt"] in rc7], env.saved("127.0.0.2"), rc7, "7bit")
    st = env.stop_sink("127.0.0.2")
    check(st["transactions"] == 1 and st["rcpts"] == 1, "8bit: sink %r" % st)
    check_dsn(env, rc8, "8bit", "5.6.3")


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as so:
            so.bind(("::1", 0))
        return True
    except OSError:
        return False


def case_mx_second_address_v6(env):
    """An MX host with two addresses (127.0.0.7 refusing, ::1 a sink): every
    recipient delivered over IPv6."""
    if not ipv6_loopback():
        fail("no IPv6 loopback (::1) here: this case needs it")
    env.start_sinks({"::1": []})
    env.start_dns()   # default zone: v6.test MX 10 mx.v6.test (::1 and 127.0.0.7)
    want = ["v%d@v6.test" % i for i in range(30)]
    env.enqueue("s@src.test", want)
    env.run(*FAST, "--max-rcpts", "3")
    log = env.log()
    check_exactly_once(log, env.saved("::1"), want, "v6")
    check(all(e.get("ip") == "::1" for e in log), "v6: delivered via %r" % {e.get("ip") for e in log})
    st = env.stop_sink("::1")
    check(st["transactions"] == 10, "v6: %d transactions" % st["transactions"])


if __name__ == "__main__":
    run_cases([("size_refused", case_size_refused),
               ("rcpt_550_some", case_rcpt_550_some),
               ("banner_421_second_mx", case_banner_421_second_mx),
               ("nullmx_nxdomain", case_nullmx_nxdomain),
               ("all_mx_421", case_all_mx_421),
               ("busy_host_some_refused", case_busy_host_some_refused),
               ("8bit_without_8bitmime", case_8bit_without_8bitmime),
               ("mx_second_address_v6", case_mx_second_address_v6)])
