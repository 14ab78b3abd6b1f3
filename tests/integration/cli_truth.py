"""cli_truth.py - issue 10 (A CLI that tells the truth): items 5, 7, 8, 9
here; items 1, 2, 3, 4, 6 and the exit-code table in cli_truth_outcomes.py. The items that live
in the CLI, the enqueue path and the message normaliser, run through the real
binary as a user would: each case runs commands and checks their output and
exit code. Mail goes to a `volley sink --save` on a loopback port (--route),
so what was delivered is read back from the sink's files.

Every process is started here, waited for with a timeout, and stopped by its
PID (the sink); each case works in its own temp dir, removed at the end.
CLI_TRUTH_CASE=name runs one case."""
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sink_lib  # noqa: E402
from sink_lib import check, fail, volley_bin  # noqa: E402
import cli_truth_outcomes  # noqa: E402

RUN_TIMEOUT_S = 60.0


class Case:
    """A temp dir to work in; volley(*args) runs the binary there."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="volley-cli-truth-")
        self.sink = None
        self.save = os.path.join(self.dir, "saved")

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return self.path(name)

    def volley(self, *args, timeout=RUN_TIMEOUT_S):
        try:
            return subprocess.run([volley_bin()] + list(args), cwd=self.dir, capture_output=True,
                                  text=True, errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired:
            fail("volley %s: no exit within %.0fs" % (" ".join(args), timeout))

    def start_sink(self, *args):
        os.mkdir(self.save)
        self.sink = sink_lib.Sink(["--save", self.save] + list(args))
        return "*=127.0.0.1:%d" % self.sink.addrs[0][1]

    def saved(self):
        """[(envelope rcpts, content bytes)] of the sink's saved messages."""
        out = []
        for name in sorted(os.listdir(self.save)):
            if not name.endswith(".eml"):
                continue
            with open(os.path.join(self.save, name), "rb") as f:
                raw = f.read()
            rcpts, pos = [], 0
            while raw.startswith(b"X-Volley-", pos):
                nl = raw.index(b"\n", pos)
                line = raw[pos:nl].rstrip(b"\r").decode()
                if line.startswith("X-Volley-Rcpt-To:"):
                    rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                pos = nl + 1
            out.append((rcpts, raw[pos:]))
        return out

    def close(self):
        if self.sink:
            self.sink.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def expect(r, rc, what):
    check(r.returncode == rc, "%s: exit %d, want %d\nstdout: %s\nstderr: %s" %
          (what, r.returncode, rc, r.stdout, r.stderr))


MSG = "From: s@src.test\nTo: list@src.test\nSubject: hello\n\nhello\n"


def send_args(c, route, rcpts_file, msg_file, *extra):
    return ["send", "--data", c.path("q"), "--shards", "2", "--from", "s@src.test", "--rcpts",
            rcpts_file, "--route", route, "--tls", "none", "--quiet"] + list(extra) + [msg_file]


# ---- item 5 ----------------------------------------------------------------

def item5_duplicate_recipients(c):
    """The same recipient twice (and with the domain's case changed) is queued
    and delivered once; the local part's case counts unless --fold-local-case."""
    route = c.start_sink()
    rc_file = c.write("r.txt", "dup@alpha.test\nx@beta.test\ndup@alpha.test\ndup@ALPHA.test\n"
                      "dup@Alpha.TEST\nDUP@alpha.test\n")
    r = c.volley(*send_args(c, route, rc_file, c.write("m.eml", MSG)))
    expect(r, 0, "send with duplicates")
    check("dropped 3 duplicate recipients" in r.stderr, "no drop report: %r" % r.stderr)
    check(re.search(r"^queued \w+ for 3 recipients", r.stdout, re.M),
          "queued line: %r" % r.stdout)
    rcpts = sorted(a for rs, _ in c.saved() for a in rs)
    check(rcpts == ["DUP@alpha.test", "dup@alpha.test", "x@beta.test"],
          "delivered RCPTs: %r (want each once)" % rcpts)
    # --fold-local-case: DUP@ is the same mailbox too.
    r = c.volley("enqueue", "--data", c.path("q"), "--fold-local-case", "--from", "s@src.test",
                 "--rcpts", rc_file, c.path("m.eml"))
    expect(r, 0, "enqueue --fold-local-case")
    check("dropped 4 duplicate recipients" in r.stderr, "fold: drop report %r" % r.stderr)
    check(re.search(r"^queued \w+ for 2 recipients", r.stdout, re.M), "fold: %r" % r.stdout)
    r = c.volley("enqueue", "--help")
    check("--fold-local-case" in r.stdout, "enqueue --help lacks --fold-local-case")


# ---- item 7 ----------------------------------------------------------------

def item7_run_starts_empty(c):
    """`volley run` on a data dir without a queue creates one (--shards N) and
    says so, instead of failing with 'no queue in DIR'."""
    r = c.volley("run", "--data", "new", "--shards", "3", "--until-empty", "--quiet",
                 "--route", "*=127.0.0.1:9")
    expect(r, 0, "run on an empty data dir")
    check("created an empty one with 3 shards" in r.stderr, "no creation notice: %r" % r.stderr)
    r = c.volley("queue", "--data", "new", "stats", "--json")
    expect(r, 0, "queue stats of the created queue")
    st = json.loads(r.stdout)
    check(st["shards"] == 3 and st["ready"] == 0, "created queue: %r" % st)
    r = c.volley("run", "--data", "new", "--until-empty", "--quiet", "--route", "*=127.0.0.1:9")
    expect(r, 0, "second run")
    check("created" not in r.stderr, "second run created again: %r" % r.stderr)
    r = c.volley("run", "--help")
    check("creates an empty one" in r.stdout, "run --help does not say it creates the queue")


# ---- item 8 ----------------------------------------------------------------

def item8_log_stdout(c):
    """--log -: stdout carries only the JSON delivery log; the queued line and
    the summary go to stderr."""
    route = c.start_sink()
    rf = c.write("r.txt", "a@alpha.test\nb@beta.test\n")
    r = c.volley(*send_args(c, route, rf, c.write("m.eml", MSG), "--log", "-"))
    expect(r, 0, "send --log -")
    lines = r.stdout.splitlines()
    check(len(lines) == 2, "want 2 JSON lines on stdout, got %r" % r.stdout)
    for line in lines:
        try:
            ev = json.loads(line)
        except ValueError:
            fail("send --log -: stdout line is not JSON: %r" % line)
        check(ev.get("event") == "delivered", "log line %r" % line)
    check(re.search(r"^queued \w+ for 2 recipients", r.stderr, re.M), "queued: %r" % r.stderr)
    check("summary: delivered 2" in r.stderr, "summary not on stderr: %r" % r.stderr)
    r = c.volley("run", "--data", c.path("q"), "--until-empty", "--log", "-", "--route", route,
                 "--tls", "none")
    expect(r, 0, "run --log -")
    check(r.stdout == "", "run --log - with nothing to do: stdout %r" % r.stdout)
    check("summary:" in r.stderr, "run summary not on stderr: %r" % r.stderr)


def item8_from_empty(c):
    """--from '' is refused (the null sender is --from '<>')."""
    m = c.write("m.eml", MSG)
    r = c.volley("enqueue", "--data", "q", "--from", "", "--to", "a@alpha.test", m)
    expect(r, 2, "enqueue --from ''")
    check("--from '<>'" in r.stderr, "message does not point to '<>': %r" % r.stderr)
    check(not os.path.exists(c.path("q")), "queue created by a refused enqueue")
    r = c.volley("enqueue", "--data", "q", "--from", "<>", "--to", "a@alpha.test", m)
    expect(r, 0, "enqueue --from '<>'")


def item8_send_bogus(c):
    """send --bogus names send and the option, not enqueue's usage."""
    m = c.write("m.eml", MSG)
    r = c.volley("send", "--data", "q", "--bogus", "--from", "s@src.test", "--to",
                 "a@alpha.test", "--route", "*=127.0.0.1:9", m)
    expect(r, 2, "send --bogus")
    check("volley send: unknown option '--bogus'" in r.stderr, "stderr: %r" % r.stderr)
    check("enqueue" not in r.stderr, "send --bogus mentions enqueue: %r" % r.stderr)
    check(not os.path.exists(c.path("q")), "queue created by a refused send")


def item8_help_lists_queue_check(c):
    r = c.volley("--help")
    expect(r, 0, "volley --help")
    line = [l for l in r.stdout.splitlines() if l.strip().startswith("queue")]
    check(line and "check" in line[0], "volley --help queue line: %r" % line)


def item8_queue_sub_help(c):
    """queue SUB --help describes SUB (exit 0), and each text differs."""
    texts = set()
    for sub in ("stats", "ls", "show", "retry", "bounce", "purge", "check"):
        r = c.volley("queue", sub, "--help")
        expect(r, 0, "queue %s --help" % sub)
        check(r.stdout.startswith("usage: volley queue %s" % sub),
              "queue %s --help: %r" % (sub, r.stdout))
        texts.add(r.stdout)
    check(len(texts) == 7, "per-subcommand help texts are not distinct")


def item8_retry_unknown(c):
    """queue retry UNKNOWN exits 2 like queue show UNKNOWN."""
    m = c.write("m.eml", MSG)
    expect(c.volley("enqueue", "--data", "q", "--from", "s@src.test", "--to", "a@alpha.test", m),
           0, "enqueue")
    r = c.volley("queue", "--data", "q", "show", "1234")
    expect(r, 2, "queue show unknown")
    r = c.volley("queue", "--data", "q", "retry", "1234")
    expect(r, 2, "queue retry unknown")
    check("not found" in r.stderr and "made ready" not in r.stdout, "retry: %r %r" %
          (r.stdout, r.stderr))
    r = c.volley("queue", "--data", "q", "retry", "--domain", "nowhere.test")
    expect(r, 0, "queue retry --domain with nothing queued")
    check("made ready 0 recipients" in r.stdout, "retry --domain: %r" % r.stdout)


def item8_queue_bad_word(c):
    r = c.volley("queue", "frob")
    expect(r, 2, "queue frob")
    check("unknown command 'frob'" in r.stderr, "queue frob: %r" % r.stderr)
    r = c.volley("queue", "show", "12", "extra")
    expect(r, 2, "queue show 12 extra")
    check("'extra'" in r.stderr, "queue show 12 extra: %r" % r.stderr)


def item8_bench_help_one_data_dir(c):
    r = c.volley("bench", "--help")
    expect(r, 0, "bench --help")
    check("./volley-bench-data" in r.stdout and "./volley-data" not in r.stdout,
          "bench --help data dirs: %r" % re.findall(r"\./volley[\w-]*", r.stdout))


def item8_send_help_no_until_empty(c):
    r = c.volley("send", "--help")
    expect(r, 0, "send --help")
    check("--until-empty" not in r.stdout, "send --help lists --until-empty")
    check("--from" in r.stdout and "--route" in r.stdout, "send --help: %r" % r.stdout)


def item8_version(c):
    r = c.volley("--version")
    expect(r, 0, "volley --version")
    check(re.match(r"^volley \d+\.\d+\.\d+\n$", r.stdout), "--version: %r" % r.stdout)


def item8_bench_cleans_up(c):
    """A failed bench (nothing listens on the route) leaves no queue behind;
    --keep-data keeps it."""
    args = ["bench", "--messages", "20", "--size", "200", "--domains", "2", "--shards", "2",
            "--route", "*=127.0.0.1:9", "--tls", "none", "--connect-timeout", "2s"]
    r = c.volley(*args)
    expect(r, 1, "bench to a closed port")
    check("deferred 20" in r.stdout, "bench output: %r" % r.stdout)
    check(not os.path.exists(c.path("volley-bench-data")),
          "./volley-bench-data left behind: %r" % os.listdir(c.dir))
    r = c.volley(*(args + ["--data", "kept", "--keep-data"]))
    expect(r, 1, "bench --keep-data")
    r = c.volley("queue", "--data", "kept", "stats", "--json")
    expect(r, 0, "stats of the kept bench queue")
    check(json.loads(r.stdout)["deferred"] == 20, "kept queue: %r" % r.stdout)


# ---- item 9 ----------------------------------------------------------------

LONG = ("<html><body>" + "".join("<p class=\"x\">caf\u00e9 = %d&nbsp;</p>" % i
                                  for i in range(200)) + "</body></html>  ")


def leaves(msg):
    return [p for p in msg.walk() if not p.is_multipart()]


def item9_long_lines(c):
    """A body line over 998 octets is re-encoded as quoted-printable by
    default (the decoded content is the original), refused with
    --long-lines refuse."""
    check(len(LONG.encode()) > 5000, "test line too short")
    route = c.start_sink()
    rf = c.write("r.txt", "a@alpha.test\n")
    single = ("From: s@src.test\nSubject: newsletter\nContent-Type: text/html; charset=utf-8\n"
              "\n" + LONG + "\nshort line\n")
    r = c.volley(*send_args(c, route, rf, c.write("single.eml", single)))
    expect(r, 0, "send a message with a long line")
    check("re-encoded as quoted-printable" in r.stderr, "no notice: %r" % r.stderr)
    saved = c.saved()
    check(len(saved) == 1, "saved %d messages" % len(saved))
    raw = saved[0][1]
    check(max(len(l) for l in raw.split(b"\r\n")) <= 998, "a delivered line is over 998")
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    check(m["Content-Transfer-Encoding"] == "quoted-printable", "CTE: %r" % m.items())
    check(m["MIME-Version"] == "1.0", "no MIME-Version: %r" % m.items())
    # Line ends are CRLF on the wire (the input file has LF): compare as LF.
    body = m.get_payload(decode=True).replace(b"\r\n", b"\n")
    check(body == (LONG + "\nshort line\n").encode(), "decoded body differs: %r" % body[-200:])

    html_part = ("Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                 + LONG + "\n")
    multi = ("From: s@src.test\nSubject: multi\nMIME-Version: 1.0\n"
             "Content-Type: multipart/mixed;\n boundary=\"outer\"\n\npreamble\n--outer\n"
             "Content-Type: multipart/alternative; boundary=inner\n\n--inner\n"
             "Content-Type: text/plain\n\nplain text\n--inner\n" + html_part +
             "--inner--\n--outer\nContent-Type: text/plain\n\n" + LONG + "\n--outer--\n"
             "epilogue\n")
    os.unlink(os.path.join(c.save, os.listdir(c.save)[0]))
    r = c.volley(*send_args(c, route, rf, c.write("multi.eml", multi)))
    expect(r, 0, "send a multipart message with long lines")
    check("2 MIME parts" in r.stderr, "multipart notice: %r" % r.stderr)
    raw = c.saved()[0][1]
    check(max(len(l) for l in raw.split(b"\r\n")) <= 998, "a delivered line is over 998")
    got = leaves(email.message_from_bytes(raw, policy=email.policy.compat32))
    want = leaves(email.message_from_bytes(multi.encode(), policy=email.policy.compat32))
    check(len(got) == 3 == len(want), "leaf parts: %d, want 3" % len(got))
    ctes = [p["Content-Transfer-Encoding"] for p in got]
    check(ctes == [None, "quoted-printable", "quoted-printable"], "CTEs: %r" % ctes)
    for g, w in zip(got, want):
        gb = g.get_payload(decode=True).replace(b"\r\n", b"\n")
        wb = w.get_payload(decode=True).replace(b"\r\n", b"\n")
        check(gb == wb, "part %s decoded differs: %r vs %r" % (g.get_content_type(), gb[:80],
                                                               wb[:80]))
    check(b"epilogue" in raw and b"preamble" in raw, "preamble/epilogue lost")
    r = c.volley("enqueue", "--data", "q2", "--long-lines", "refuse", "--from", "s@src.test",
                 "--to", "a@alpha.test", c.path("single.eml"))
    expect(r, 2, "--long-lines refuse")
    check("single.eml:5: line longer than 998 octets" in r.stderr, "refuse: %r" % r.stderr)
    check(not os.path.exists(c.path("q2")), "queue created by a refused enqueue")



def item8_utf8_local_decision(c):
    """A UTF-8 recipient: enqueue warns; a receiver without SMTPUTF8 means a
    bounce volley decides itself, and the log marks it "local":true (it must
    not look like the server's reply), while the remote's 250 carries no mark."""
    route = c.start_sink()
    rf = c.write("r.txt", "j\u00f6rg@dest.test\na@dest.test\n")
    r = c.volley(*send_args(c, route, rf, c.write("m.eml", MSG), "--log", c.path("log.json")))
    expect(r, 0, "send to a UTF-8 recipient")
    check("warning: 1 recipient has a UTF-8 address" in r.stderr and "5.6.7" in r.stderr,
          "no UTF-8 warning at injection: %r" % r.stderr)
    with open(c.path("log.json")) as f:
        ev = {e["rcpt"]: e for e in map(json.loads, f)}
    u = ev.get("j\u00f6rg@dest.test")
    check(u and u["event"] == "bounced" and u["status"] == "5.6.7" and u.get("local") is True,
          "UTF-8 recipient's line: %r" % u)
    a = ev.get("a@dest.test")
    check(a and a["event"] == "delivered" and "local" not in a, "ASCII recipient's line: %r" % a)

CASES = [
    ("item5_duplicate_recipients", item5_duplicate_recipients),
    ("item7_run_starts_empty", item7_run_starts_empty),
    ("item8_log_stdout", item8_log_stdout),
    ("item8_from_empty", item8_from_empty),
    ("item8_utf8_local_decision", item8_utf8_local_decision),
    ("item8_send_bogus", item8_send_bogus),
    ("item8_help_lists_queue_check", item8_help_lists_queue_check),
    ("item8_queue_sub_help", item8_queue_sub_help),
    ("item8_retry_unknown", item8_retry_unknown),
    ("item8_queue_bad_word", item8_queue_bad_word),
    ("item8_bench_help_one_data_dir", item8_bench_help_one_data_dir),
    ("item8_send_help_no_until_empty", item8_send_help_no_until_empty),
    ("item8_version", item8_version),
    ("item8_bench_cleans_up", item8_bench_cleans_up),
    ("item9_long_lines", item9_long_lines),
] + cli_truth_outcomes.CASES     # items 1, 2, 3, 4, 6 and the exit-code table


def main():
    only = os.environ.get("CLI_TRUTH_CASE")
    names = [n for n, _ in CASES]
    if only and only not in names:
        fail("CLI_TRUTH_CASE=%s names no case; the cases are: %s" % (only, ", ".join(names)))
    failed = []
    for name, fn in CASES:
        if only and only != name:
            continue
        t0 = time.monotonic()
        c = Case()
        try:
            fn(c)
            print("ok   %-32s %.1fs" % (name, time.monotonic() - t0), flush=True)
        except SystemExit:
            failed.append(name)
            print("FAIL %-32s %.1fs" % (name, time.monotonic() - t0), flush=True)
        finally:
            c.close()
    if failed:
        print("failed: %s" % ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
