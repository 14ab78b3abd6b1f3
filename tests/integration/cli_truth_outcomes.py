"""cli_truth_outcomes.py - issue 10 items 1, 2, 3, 4, 6 and the exit-code
documentation, from the user's side: each case runs `volley` commands and
checks their output and exit code (cases are run by cli_truth.py, which
imports CASES from here; CLI_TRUTH_CASE=name runs one).

Mail goes to a `volley sink` on a loopback port (--route); "a closed port" is
127.0.0.1:1. Every process is started here, waited for with a bound, and
stopped by its PID."""
import json
import os
import re
import signal
import subprocess
import time

from sink_lib import check, fail, volley_bin

CLOSED = "*=127.0.0.1:1"
MSG = "From: s@src.test\nTo: list@src.test\nSubject: hello\n\nhello\n"
CODES = {0, 1, 2, 3, 130}         # the documented exit codes (README, run/send --help)


def expect(r, rc, what):
    check(r.returncode == rc, "%s: exit %d, want %d\nstdout: %s\nstderr: %s" %
          (what, r.returncode, rc, r.stdout, r.stderr))


def rcpts_file(c, name, addrs):
    return c.write(name, "".join(a + "\n" for a in addrs))


def send(c, route, addrs, *extra, data="q"):
    rf = rcpts_file(c, data + "-rcpts.txt", addrs)
    return ["send", "--data", c.path(data), "--shards", "2", "--from", "s@src.test", "--rcpts",
            rf, "--route", route, "--tls", "none"] + list(extra) + [c.write("m.eml", MSG)]


SUMMARY = re.compile(r"summary: delivered (\d+), deferred (\d+), bounced (\d+), expired (\d+), "
                     r"ambiguous (\d+), dsns (\d+) \| (\d+) connections, (\d+) transactions")


def summary(out):
    m = SUMMARY.search(out)
    check(m, "no summary line in %r" % out)
    return dict(zip(["delivered", "deferred", "bounced", "expired", "ambiguous", "dsns",
                     "conns", "txns"], [int(x) for x in m.groups()]))


class Bg:
    """A volley command in the background (stdout/stderr to files)."""

    def __init__(self, c, args):
        self.out_path, self.err_path = c.path("bg.out"), c.path("bg.err")
        self.p = subprocess.Popen([volley_bin()] + args, cwd=c.dir,
                                  stdout=open(self.out_path, "w"),
                                  stderr=open(self.err_path, "w"))

    def err(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def out(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def wait_err(self, pattern, bound_s, read=None):
        read = read or self.err
        end = time.monotonic() + bound_s
        while time.monotonic() < end:
            if re.search(pattern, read()):
                return True
            if self.p.poll() is not None:
                return bool(re.search(pattern, read()))
            time.sleep(0.05)
        return False

    def wait_queued(self, n):
        """Until send printed its 'queued' line (stdout), then a little more
        for it to open the queue and take over SIGINT."""
        check(self.wait_err(r"queued \w+ for %d" % n, 10, self.out), "send did not queue: %r %r"
              % (self.out(), self.err()))
        time.sleep(0.8)

    def wait(self, bound_s):
        try:
            return self.p.wait(timeout=bound_s)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("volley did not exit within %.0fs; stderr %r" % (bound_s, self.err()[-500:]))

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(timeout=10)


# ---- item 1 ----------------------------------------------------------------

def item1_total_failure_says_why(c):
    """Everything deferred (a closed port): exit 3, and the summary says how
    many are still queued, why (the top reasons with counts, the port named;
    one reason for the 3 domains) and when the next retry is."""
    addrs = ["u%d@d%d.test" % (i, i % 3) for i in range(30)]
    r = c.volley(*send(c, CLOSED, addrs, "--quiet"))
    expect(r, 3, "send to a closed port")
    check("not delivered: 30 recipients still queued (30 deferred, 0 ready)" in r.stdout,
          "no 'still queued' line: %r" % r.stdout)
    check(re.search(r"^\s+30 x .*connect to 127\.0\.0\.1:1: Connection refused$", r.stdout,
                    re.M), "no reason with its count and the port: %r" % r.stdout)
    m = re.search(r"next retry: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC \(in (\d+)m(\d+)s\)",
                  r.stdout)
    check(m, "no next retry time: %r" % r.stdout)
    secs = int(m.group(2)) * 60 + int(m.group(3))
    check(200 <= secs <= 330, "next retry in %ds, want about --retry-base 5m" % secs)
    st = json.loads(c.volley("queue", "--data", c.path("q"), "stats", "--json").stdout)
    check(st["deferred"] == 30, "queue: %r" % st)


# ---- item 2 ----------------------------------------------------------------

def item2_interrupted_send(c):
    """Ctrl-C during send: says what it waits for and how to force; ends with
    exit 130 and a summary naming the recipients still queued (ready). A
    second Ctrl-C exits 130 at once, with a summary."""
    route = c.start_sink("--delay", "dot=2s")
    addrs = ["u%d@alpha.test" % i for i in range(60)]
    bg = Bg(c, send(c, route, addrs, "--quiet", "--max-rcpts", "1", "--conns-per-dest", "2"))
    bg.wait_queued(60)
    bg.p.send_signal(signal.SIGINT)
    check(bg.wait_err(r"SIGINT: stopping: .*waiting for the \d+ SMTP connections? in progress"
                      r".*Ctrl-C again to exit at once \(exit 130\)", 3),
          "first SIGINT not explained: %r" % bg.err())
    rc = bg.wait(30)
    out = bg.out()
    check(rc == 130, "interrupted send: exit %d, want 130; %r %r" % (rc, out, bg.err()))
    s = summary(out)
    m = re.search(r"not delivered: (\d+) recipients still queued \(0 deferred, (\d+) ready\); "
                  r"SIGINT stopped the run", out)
    check(m and int(m.group(2)) > 0, "no ready recipients named: %r" % out)
    check(s["delivered"] + int(m.group(2)) == 60, "delivered %d + ready %s != 60" %
          (s["delivered"], m.group(2)))

    # A second SIGINT: out at once (the sink holds every dot 5 s), with a summary.
    c.sink.stop()
    c.sink = None
    os.rename(c.save, c.save + "-1")
    route = c.start_sink("--delay", "dot=5s")
    bg = Bg(c, send(c, route, addrs, "--quiet", "--max-rcpts", "1", "--conns-per-dest", "2",
                    data="q2"))
    bg.wait_queued(60)
    bg.p.send_signal(signal.SIGINT)
    check(bg.wait_err("Ctrl-C again", 3), "first SIGINT not explained: %r" % bg.err())
    t0 = time.monotonic()
    bg.p.send_signal(signal.SIGINT)
    rc = bg.wait(30)
    took = time.monotonic() - t0
    check(rc == 130, "second SIGINT: exit %d, want 130; %r" % (rc, bg.err()))
    check(took < 2.5, "second SIGINT took %.1fs (in-flight dots take 5s)" % took)
    summary(bg.out())
    check("SIGINT again: exiting now (exit 130)" in bg.err(), "no notice: %r" % bg.err())
    r = c.volley("send", "--help")
    check(re.search(r"^  130 ", r.stdout, re.M), "send --help lacks exit code 130")


# ---- item 3 ----------------------------------------------------------------

def item3_counters(c):
    """DSNs are not counted as deliveries; deferred counts recipients (still
    queued), not attempts; expired is not bounced; rates name their unit."""
    route = c.start_sink("--fault", "rcpt=550:match=bad")
    r = c.volley(*send(c, route, ["bad1@dst.test"], "--quiet"))
    expect(r, 0, "send to a 550")
    s = summary(r.stdout)
    check((s["delivered"], s["deferred"], s["bounced"], s["dsns"]) == (0, 0, 1, 1),
          "one bounced recipient: %r" % r.stdout)
    check(re.search(r"DSNs .*: 1 queued, 1 delivered, 0 undeliverable", r.stdout),
          "DSN counters: %r" % r.stdout)
    check("delivered rcpt/s" in r.stdout and "messages: 0 copies accepted" in r.stdout,
          "units: %r" % r.stdout)
    # Recipients and messages apart: 3 recipients of one domain, one transaction.
    r = c.volley(*send(c, route, ["ok1@dst.test", "ok2@dst.test", "ok3@dst.test"], "--quiet",
                       data="q3"))
    expect(r, 0, "send 3 recipients")
    check(summary(r.stdout)["delivered"] == 3 and "messages: 1 copies accepted" in r.stdout,
          "3 recipients in 1 message: %r" % r.stdout)
    # Deferred many times, then expired (--retry-base 1ms, --max-age 1s).
    addrs = ["e%d@alpha.test" % i for i in range(30)]
    r = c.volley(*send(c, CLOSED, addrs, "--quiet", "--retry-base", "1ms", "--retry-max", "1ms", "--max-age", "1s",
                       data="q2"), timeout=60)
    expect(r, 0, "send until expired")
    s = summary(r.stdout)
    check((s["delivered"], s["deferred"], s["bounced"], s["expired"]) == (0, 0, 0, 30),
          "30 expired recipients: %r" % r.stdout)
    m = re.search(r"\| (\d+) deferral attempts", r.stdout)
    check(m and int(m.group(1)) >= 30, "deferral attempts: %r" % r.stdout)


def item3_progress_line(c):
    """The progress line: leased recipients and open connections (not 'in
    flight' for everything queued), expired apart from bounced, rcpt/s."""
    route = c.start_sink("--delay", "dot=1s")
    addrs = ["p%d@alpha.test" % i for i in range(40)]
    bg = Bg(c, send(c, route, addrs, "--max-rcpts", "1", "--conns-per-dest", "2"))
    ok = bg.wait_err(r"\n?delivered \d+ .*elapsed", 12)
    bg.p.send_signal(signal.SIGINT)
    bg.p.send_signal(signal.SIGINT)
    bg.wait(30)
    check(ok, "no progress line: %r" % bg.err())
    line = [l for l in bg.err().splitlines() if "elapsed" in l][0]
    m = re.search(r"delivered \d+  bounced \d+  expired \d+  deferral attempts \d+  "
                  r"leased (\d+) on (\d+) connections  DSNs \d+  \d+ rcpt/s", line)
    check(m, "progress line: %r" % line)
    check(int(m.group(2)) <= 2 and "in flight" not in line, "progress line: %r" % line)


def item3_bench_rates(c):
    """A bench where everything is deferred reports 0 msg/s."""
    route = c.start_sink("--fault", "rcpt=451")
    r = c.volley("bench", "--messages", "30", "--size", "200", "--domains", "2", "--shards", "2",
                 "--route", route, "--tls", "none")
    expect(r, 1, "bench, every recipient deferred")
    js = json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])
    check(js["delivered"] == 0 and js["msg_per_s"] == 0 and js.get("rcpt_per_s") == 0,
          "bench JSON: %r" % js)


# ---- item 4 ----------------------------------------------------------------

def item4_one_dsn_per_message(c):
    """40 recipients of one message refused (550) over 20 transactions: one
    DSN naming all 40. 200 recipients expiring over many deferrals: one DSN."""
    route = c.start_sink("--fault", "rcpt=550:match=bad", "--delay", "rcpt=20ms")
    addrs = ["bad%d@dst.test" % i for i in range(40)]
    r = c.volley(*send(c, route, addrs, "--quiet", "--max-rcpts", "2", "--conns-per-dest", "4"))
    expect(r, 0, "send to a 550 sink")
    s = summary(r.stdout)
    check(s["bounced"] == 40 and s["dsns"] == 1, "40 bounces, want 1 DSN: %r" % r.stdout)
    dsns = [raw for rcpts, raw in c.saved() if rcpts == ["s@src.test"]]
    check(len(dsns) == 1, "the sender got %d DSNs, want 1" % len(dsns))
    named = set(re.findall(rb"Final-Recipient: rfc822;\s*(\S+)", dsns[0]))
    check(named == {a.encode() for a in addrs}, "the DSN names %d of 40" % len(named))
    addrs = ["x%d@alpha.test" % i for i in range(200)]
    r = c.volley(*send(c, CLOSED, addrs, "--quiet", "--retry-base", "1ms", "--retry-max", "1ms", "--max-age", "1s",
                       data="q2"), timeout=60)
    expect(r, 0, "send until expired")
    s = summary(r.stdout)
    check(s["expired"] == 200 and s["dsns"] == 1, "200 expired, want 1 DSN: %r" % r.stdout)
    r = c.volley("send", "--help")
    check("--dsn-interval" in r.stdout, "send --help lacks --dsn-interval")


# ---- item 6 ----------------------------------------------------------------

def item6_send_names_earlier_mail(c):
    """send delivers what the queue already held (through its --route): it
    says so before it starts."""
    route = c.start_sink()
    m = c.write("m.eml", MSG)
    r = c.volley("enqueue", "--data", c.path("q"), "--shards", "2", "--from", "s@src.test",
                 "--to", "old1@alpha.test", "--to", "old2@alpha.test", "--to", "old3@beta.test",
                 m)
    expect(r, 0, "enqueue")
    r = c.volley(*send(c, route, ["new1@alpha.test", "new2@beta.test"], "--quiet"))
    expect(r, 0, "send")
    check("also delivering 3 recipients queued earlier" in r.stderr and
          "(3 ready, 0 deferred" in r.stderr, "no notice: %r" % r.stderr)
    check(r.stderr.index("also delivering") < len(r.stderr), "notice")
    got = sorted(a for rs, _ in c.saved() for a in rs)
    check(len(got) == 5, "sink got %r" % got)
    r = c.volley(*send(c, route, ["new3@alpha.test"], "--quiet"))
    expect(r, 0, "send on an empty queue")
    check("queued earlier" not in r.stderr, "notice with nothing earlier: %r" % r.stderr)
    r = c.volley("send", "--help")
    check("delivers them too" in r.stdout, "send --help does not say it")


# ---- the documented exit codes ---------------------------------------------

def help_codes(text):
    """Exit codes of the 'exit codes:' table of a --help text."""
    part = text.split("exit codes:", 1)
    check(len(part) == 2, "no 'exit codes:' table in %r" % text[-300:])
    return {int(m) for m in re.findall(r"^  (\d{1,3})  ", part[1], re.M)}


def readme_codes():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "README.md")) as f:
        text = f.read()
    m = re.search(r"^### Exit codes\n(.*?)(?=^#)", text, re.M | re.S)
    check(m, "README has no '### Exit codes' section")
    return {int(x) for x in re.findall(r"^\| `?(\d{1,3})`? \|", m.group(1), re.M)}


def docs_exit_codes(c):
    """README's table, `run --help` and `send --help` list the same codes,
    and each is what a real run returns."""
    run_h, send_h = c.volley("run", "--help").stdout, c.volley("send", "--help").stdout
    tables = {"README": readme_codes(), "run --help": help_codes(run_h),
              "send --help": help_codes(send_h)}
    for name, codes in tables.items():
        check(codes == CODES, "%s lists exit codes %r, want %r" % (name, sorted(codes),
                                                                  sorted(CODES)))
    top = c.volley("--help").stdout
    check(re.search(r"Exit codes: 0 ok, 1 runtime failure, 2 usage error; send and run also 3"
                    r"\s+\(recipients still queued\) and 130", top), "volley --help: %r" % top)
    route = c.start_sink()
    got = {}
    got[0] = c.volley(*send(c, route, ["a@alpha.test"], "--quiet")).returncode
    c.write("afile", "not a directory")
    got[1] = c.volley("run", "--data", c.path("afile"), "--until-empty", "--quiet").returncode
    got[2] = c.volley("send", "--bogus").returncode
    got[3] = c.volley(*send(c, CLOSED, ["b@alpha.test"], "--quiet", data="q3")).returncode
    c.sink.stop()
    c.sink = None
    os.rename(c.save, c.save + "-1")
    route = c.start_sink("--delay", "dot=1s")
    bg = Bg(c, send(c, route, ["s%d@alpha.test" % i for i in range(20)], "--quiet",
                    "--max-rcpts", "1", "--conns-per-dest", "1", data="q4"))
    bg.wait_queued(20)
    bg.p.send_signal(signal.SIGINT)
    got[130] = bg.wait(30)
    bad = {k: v for k, v in got.items() if k != v}
    check(not bad, "documented code -> real exit: %r" % bad)
    # The codes --help describes for run: an empty queue until empty is 0.
    r = c.volley("run", "--data", c.path("q"), "--until-empty", "--quiet", "--route", route)
    expect(r, 0, "run --until-empty on an emptied queue")


CASES = [
    ("item1_total_failure_says_why", item1_total_failure_says_why),
    ("item2_interrupted_send", item2_interrupted_send),
    ("item3_counters", item3_counters),
    ("item3_progress_line", item3_progress_line),
    ("item3_bench_rates", item3_bench_rates),
    ("item4_one_dsn_per_message", item4_one_dsn_per_message),
    ("item6_send_names_earlier_mail", item6_send_names_earlier_mail),
    ("docs_exit_codes", docs_exit_codes),
]
