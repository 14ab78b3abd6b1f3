"""deliver_suppress.py - the suppression list checked again at delivery, and
fed by hard bounces (issue 12). DELIVER_CASE=name runs one case."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import check, message, run_cases, volley_bin  # noqa: E402


def sup(env, *args):
    r = subprocess.run([volley_bin(), "suppress"] + list(args) + ["--data", env.data],
                       capture_output=True, timeout=30)
    check(r.returncode == 0, "suppress %r: %s" % (args, r.stderr))
    return r.stdout.decode()


def case_at_delivery(env):
    if True:
        env.start_sinks({"127.0.0.2": ["--fault", "rcpt=550:match=gone:text=5.1.1 No such user"]})
        env.start_dns(mx={"dst.test": [(10, "mx.dst.test", "127.0.0.2")],
                          "src.test": [(10, "mx.src.test", "127.0.0.2")],
                          "other.test": [(10, "mx.other.test", "127.0.0.2")]})
        id1 = env.enqueue("s@src.test", ["keep@dst.test", "late@dst.test", "gone@dst.test",
                                         "scoped@dst.test"])
        id2 = env.enqueue("x@other.test", ["scoped@dst.test"])
        sup(env, "add", "LATE@dst.test", "--reason", "unsubscribe")         # after queueing
        sup(env, "add", "scoped@dst.test", "--scope", "src.test", "--reason", "complaint")
        env.run()
        log = env.log()
        ev = {(e["id"], e["rcpt"]): e for e in log if e["event"] != "deferred"}
        def event(i, r):
            check((i, r) in ev, "no final event for %s %s: %r" % (i, r, log))
            return ev[(i, r)]
        for i, r, want in ((id1, "keep@dst.test", "delivered"), (id1, "late@dst.test", "suppressed"),
                           (id1, "gone@dst.test", "bounced"), (id1, "scoped@dst.test", "suppressed"),
                           (id2, "scoped@dst.test", "delivered")):
            check(event(i, r)["event"] == want, "%s %s: %r" % (i, r, event(i, r)))
        late = event(id1, "late@dst.test")
        check(late["status"] == "5.7.1" and late.get("local") is True and
              "unsubscribe" in late["reply"], "suppressed event: %r" % late)
        check("complaint (for src.test)" in event(id1, "scoped@dst.test")["reply"], "scoped reason")
        check(event(id1, "gone@dst.test")["status"] == "5.1.1", "bounce status")
        saved = env.saved("127.0.0.2")
        got = sorted(r for s in saved for r in s["rcpts"])
        check("late@dst.test" not in got and got.count("scoped@dst.test") == 1,
              "a suppressed recipient was sent: %r" % got)
        dsns = [s for s in saved if s["mail_from"] in ("", None) and "s@src.test" in s["rcpts"]]
        check(len(dsns) == 1, "one DSN to the sender expected: %r" % [(s["mail_from"], s["rcpts"])
                                                                     for s in saved])
        body = dsns[0]["content"].decode(errors="replace")
        check("gone@dst.test" in body and "late@dst.test" not in body and
              "scoped@dst.test" not in body, "the DSN must name only the bounce")
        rows = [l.split(",")[:3] for l in sup(env, "ls").strip().split("\n")[1:]]
        check(["gone@dst.test", "", "hard_bounce"] in rows, "5.1.1 not fed to the list: %r" % rows)
        # the fed entry holds on the next message
        id3 = env.enqueue("s@src.test", ["gone@dst.test"], message(subject="again"))
        env.run()
        again = [e for e in env.log() if e["id"] == id3]
        check([e["event"] for e in again] == ["suppressed"] and "hard_bounce" in again[0]["reply"],
              "fed entry not applied: %r" % again)


def case_feed_codes(env):
    """--suppress-codes replaces the statuses that feed the list."""
    env.start_sinks({"127.0.0.2": ["--fault", "rcpt=550:match=gone:text=5.1.1 No such user",
                                   "--fault", "rcpt=550:match=off:text=5.2.1 Mailbox disabled"]})
    env.start_dns(mx={"dst.test": [(10, "mx.dst.test", "127.0.0.2")],
                      "src.test": [(10, "mx.src.test", "127.0.0.2")]})
    env.enqueue("s@src.test", ["gone@dst.test", "off@dst.test", "fine@dst.test"])
    env.run("--suppress-codes", "5.2.1,5.7.9")
    ev = {e["rcpt"]: e for e in env.log() if e["id"] and e["rcpt"].endswith("@dst.test")}
    check(ev["off@dst.test"]["status"] == "5.2.1" and ev["gone@dst.test"]["status"] == "5.1.1",
          "bounces: %r" % ev)
    rows = [l.split(",")[:3] for l in sup(env, "ls").strip().split("\n")[1:]]
    check(rows == [["off@dst.test", "", "hard_bounce"]], "fed by --suppress-codes: %r" % rows)
    r = env.volley("run", "--data", env.data, "--until-empty", "--suppress-codes", "4.1.1")
    check(r.returncode == 2 and "--suppress-codes" in r.stderr, "bad codes: %d %s" %
          (r.returncode, r.stderr))


if __name__ == "__main__":
    run_cases([("at_delivery", case_at_delivery), ("feed_codes", case_feed_codes)])
