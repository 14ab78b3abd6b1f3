"""sink_faults.py - `volley sink` options end to end over loopback: fault
rules (every, nth, prob with a seed, match), delays, disconnects (before a
reply, mid-DATA, after N transactions), capabilities (--no-pipelining,
--no-8bitmime, --size), several listeners and threads, --save content and
atomicity, JSON stats (pipelining evidence), and usage errors (exit 2)."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sink_lib import Sink, check, volley_bin  # noqa: E402


def ehlo(c):
    c.expect(220, "greeting")
    c.send("EHLO client.example.org")
    return c.expect(250, "EHLO")


def txn(c, rcpts, body="Subject: t\r\n\r\nhello\r\n", mail_code=250):
    """MAIL, RCPTs, DATA, body in lockstep; returns the codes seen."""
    c.send("MAIL FROM:<from@example.org>")
    codes = [c.reply()[0]]
    if codes[0] != 250:
        return codes
    for r in rcpts:
        c.send("RCPT TO:<%s>" % r)
        codes.append(c.reply()[0])
    c.send("DATA")
    codes.append(c.reply()[0])
    if codes[-1] == 354:
        c.send_raw(body.encode() + b".\r\n")
        codes.append(c.reply()[0])
    return codes


def test_rcpt_match_and_every():
    s = Sink(["--fault", "rcpt=550:match=bad", "--fault", "rcpt=452:every=3", "--json"])
    c = s.connect()
    ehlo(c)
    # match counts only matching RCPTs; every=3 counts every RCPT it sees.
    got = txn(c, ["ok1@x.org", "bad1@x.org", "ok2@x.org", "ok3@x.org", "BAD2@x.org", "ok4@x.org"])
    check(got == [250, 250, 550, 452, 250, 550, 452, 354, 250], "rcpt rules: %r" % got)
    st = s.stats()
    check(st["faults"]["reply"] == 4, "faults counted: %r" % st["faults"])
    check(st["replies"].get("550") == 2 and st["replies"].get("452") == 2, "codes %r" % st)
    check(st["rcpts"] == 2 and st["transactions"] == 1, "counts %r" % st)
    c.close()
    check(s.stop() == 0, "exit code")


def test_prob_reproducible():
    def run(seed):
        s = Sink(["--fault", "rcpt=450:prob=0.5", "--seed", str(seed)])
        c = s.connect()
        ehlo(c)
        c.send("MAIL FROM:<a@x.org>")
        c.expect(250, "MAIL")
        codes = []
        for i in range(40):
            c.send("RCPT TO:<r%d@x.org>" % i)
            codes.append(c.reply()[0])
        c.close()
        s.stop()
        return codes
    a, b, other = run(7), run(7), run(8)
    check(a == b, "same seed, different choices: %r vs %r" % (a, b))
    check(0 < a.count(450) < 40, "prob=0.5 gave %d of 40" % a.count(450))
    check(a != other, "another seed gave the same 40 choices")


def test_banner_421_closes():
    s = Sink(["--fault", "banner=421:nth=1"])
    c = s.connect()
    lines = c.expect(421, "greeting")
    check("4." not in lines[0][:9], "no enhanced code on a greeting: %r" % lines)
    check(c.closed(), "421 greeting must close")
    c2 = s.connect()                      # nth=1: only the first connection
    c2.expect(220, "second greeting")
    c2.close()
    s.stop()


def test_delay():
    s = Sink(["--delay", "mail=300ms"])
    c = s.connect()
    ehlo(c)
    t0 = time.monotonic()
    c.send("MAIL FROM:<a@x.org>")
    c.expect(250, "delayed MAIL")
    check(time.monotonic() - t0 >= 0.29, "MAIL answered before its delay")
    c.send("RCPT TO:<b@x.org>")
    c.expect(250, "RCPT after a delay")
    c.close()
    s.stop()


def test_disconnects():
    s = Sink(["--disconnect", "rcpt:nth=2", "--disconnect", "mid-data:nth=1",
              "--disconnect", "after-txns=2", "--json"])
    c = s.connect()                       # 1st message: mid-data drop
    ehlo(c)
    c.send("MAIL FROM:<a@x.org>", "RCPT TO:<b@x.org>", "DATA")
    c.expect(250, "MAIL")
    c.expect(250, "RCPT")
    c.expect(354, "DATA")
    c.send_raw(b"Subject: x\r\n\r\npartial body\r\n")
    check(c.closed(), "mid-data disconnect")
    c = s.connect()                       # rcpt nth=2: no reply to the 2nd RCPT
    ehlo(c)
    c.send("MAIL FROM:<a@x.org>")
    c.expect(250, "MAIL")
    c.send("RCPT TO:<b@x.org>")
    check(c.closed(), "disconnect before the RCPT reply")
    c = s.connect()                       # after-txns=2
    ehlo(c)
    check(txn(c, ["b@x.org"]) == [250, 250, 354, 250], "1st txn")
    check(txn(c, ["b@x.org"]) == [250, 250, 354, 250], "2nd txn")
    check(c.closed(), "closed after 2 transactions")
    st = s.stats()
    check(st["faults"]["disconnect"] == 3 and st["transactions"] == 2, "stats %r" % st)
    s.stop()


def test_capabilities_and_size():
    s = Sink(["--no-pipelining", "--no-8bitmime", "--size", "1000"])
    c = s.connect()
    caps = [l[4:].upper() for l in ehlo(c)[1:]]
    check("SIZE 1000" in caps, "SIZE 1000 advertised: %r" % caps)
    check("PIPELINING" not in caps and "8BITMIME" not in caps, "caps %r" % caps)
    c.send("MAIL FROM:<a@x.org> SIZE=5000")
    c.expect(552, "MAIL over SIZE")
    big = "Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 20
    check(txn(c, ["b@x.org"], body=big)[-1] == 552, "message over SIZE at the dot")
    c.close()
    s.stop()


def test_listeners_threads_save():
    save = tempfile.mkdtemp(prefix="volley-sink-save-")
    try:
        s = Sink(["--threads", "2", "--save", save, "--json"], listen=("127.0.0.2", "127.0.0.3"))
        for i in range(2):
            for k in range(3):
                c = s.connect(i)
                ehlo(c)
                body = "Subject: m%d-%d\r\n\r\n..dot line\r\nend\r\n" % (i, k)
                check(txn(c, ["r%d@x.org" % k, "s%d@x.org" % k], body=body) ==
                      [250, 250, 250, 354, 250], "txn on listener %d" % i)
                c.send("QUIT")
                c.expect(221, "QUIT")
                c.close()
        st = s.stats()
        check(st["transactions"] == 6 and st["saved"] == 6, "stats %r" % st)
        s.stop()
        names = sorted(os.listdir(save))
        check(len(names) == 6 and all(n.endswith(".eml") for n in names), "files %r" % names)
        for n in names:
            with open(os.path.join(save, n), "rb") as f:
                data = f.read()
            check(data.startswith(b"X-Volley-Mail-From: <from@example.org>\r\n"), n)
            check(data.count(b"X-Volley-Rcpt-To: <") == 2, n)
            check(b"\r\n.dot line\r\nend\r\n" in data, "%s: unstuffed content %r" % (n, data))
    finally:
        for n in os.listdir(save):
            os.unlink(os.path.join(save, n))
        os.rmdir(save)


def test_pipelining_stats():
    s = Sink(["--json"])
    c = s.connect()
    ehlo(c)
    c.send("MAIL FROM:<a@x.org>", "RCPT TO:<b@x.org>", "RCPT TO:<c@x.org>", "DATA")
    for code in (250, 250, 250, 354):
        c.expect(code, "pipelined group")
    c.send_raw(b"Subject: p\r\n\r\nx\r\n.\r\n")
    c.expect(250, "dot")
    st = s.stats()
    check(st["max_cmds_per_read"] >= 4 and st["pipelined_reads"] >= 1, "stats %r" % st)
    c.close()
    s.stop()


USAGE_ERRORS = [   # (args, text the message must name)
    ([], "--listen"),
    (["--listen", "127.0.0.1"], "--listen"),
    (["--listen", "999.1.1.1:25"], "--listen"),
    (["--listen", "127.0.0.1:70000"], "port"),
    (["--listen", "127.0.0.1:0", "--threads", "0"], "--threads"),
    (["--listen", "127.0.0.1:0", "--threads"], "--threads"),
    (["--listen", "127.0.0.1:0", "--fault", "rcpt=99"], "--fault"),
    (["--listen", "127.0.0.1:0", "--fault", "nope=550"], "stage"),
    (["--listen", "127.0.0.1:0", "--fault", "rcpt=550:every=0"], "every"),
    (["--listen", "127.0.0.1:0", "--fault", "rcpt=550:prob=1.5"], "prob"),
    (["--listen", "127.0.0.1:0", "--fault", "dot=550:match=x"], "match"),
    (["--listen", "127.0.0.1:0", "--delay", "mail=soon"], "duration"),
    (["--listen", "127.0.0.1:0", "--disconnect", "after-txns=x"], "after-txns"),
    (["--listen", "127.0.0.1:0", "--save", "/nonexistent/dir"], "--save"),
    (["--listen", "127.0.0.1:0", "--size", "-1"], "--size"),
    (["--listen", "127.0.0.1:0", "--bogus"], "--bogus"),
    (["--listen", "127.0.0.1:0", "--json=1"], "--json"),
]


def test_usage_errors():
    for args, word in USAGE_ERRORS:
        p = subprocess.run([volley_bin(), "sink"] + args, capture_output=True, text=True,
                           timeout=10)
        check(p.returncode == 2, "%r: exit %d, want 2" % (args, p.returncode))
        check(word in p.stderr, "%r: message %r does not name %r" % (args, p.stderr, word))
    p = subprocess.run([volley_bin(), "sink", "--help"], capture_output=True, text=True,
                       timeout=10)
    check(p.returncode == 0 and "--fault" in p.stdout, "--help")


def main():
    tests = [test_rcpt_match_and_every, test_prob_reproducible, test_banner_421_closes,
             test_delay, test_disconnects, test_capabilities_and_size,
             test_listeners_threads_save, test_pipelining_stats, test_usage_errors]
    for t in tests:
        t()
        print("ok " + t.__name__)


if __name__ == "__main__":
    main()
