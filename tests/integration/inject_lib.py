"""inject_lib.py - helpers for the SMTP intake tests (tests/integration/inject_*):
a `volley sink` (--save) as the destination, a `volley run --listen 127.0.0.1:0
--route '*=127.0.0.1:SINKPORT'` whose listening port is read back from its
'listening on' line, and raw or smtplib clients.

Invariants: every wait is bounded; every process is started here and stopped
by its PID (Intake.close() in the tests' finally blocks); temp dirs removed.

API: Intake(run_args=(), listen=("127.0.0.1",), sink=True) -> .port(i), .client(src=None, i=0)
(sink_lib.Client, bound to src if given), .saved() (sink_lib/volley_lib read_saved),
.wait_saved(n), .log(), .queue_ids(), .kill9(), .restart(), .close().
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sink_lib  # noqa: E402
from sink_lib import check, fail, volley_bin  # noqa: E402,F401
import volley_lib  # noqa: E402

WAIT_S = 20.0


class BoundClient(sink_lib.Client):
    """sink_lib.Client whose socket is bound to the source address src first."""

    def __init__(self, addr, src=None):
        fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(sink_lib.READ_TIMEOUT_S)
        if src:
            self.s.bind((src, 0))
        self.s.connect(addr)
        self.buf = b""


class Intake:
    def __init__(self, run_args=(), listen=("127.0.0.1",), sink=True, route_port=None,
                 env=None, data=None):
        self.tmp = tempfile.mkdtemp(prefix="volley-inject-test-")
        self.data = data if data else os.path.join(self.tmp, "q")
        self.save = os.path.join(self.tmp, "save")
        self.dlog = os.path.join(self.tmp, "dlog")
        self.err_path = os.path.join(self.tmp, "run.err")
        self.sink, self.proc = None, None
        self.run_args, self.listen, self.env = list(run_args), listen, env
        if sink:
            os.mkdir(self.save)
            self.sink = volley_lib.MxSink("127.0.0.1", 0, [], save_dir=self.save)
            check(self.sink.start_ok, "sink did not start: %s" % self.sink.stderr())
            route_port = self.sink.port
        self.route_port = route_port if route_port else 1     # 1: refused, stays queued
        self.start()

    def start(self):
        cmd = [volley_bin(), "run", "--data", self.data, "--shards", "2", "--quiet",
               "--log", self.dlog, "--route", "*=127.0.0.1:%d" % self.route_port]
        for h in self.listen:
            cmd += ["--listen", ("[%s]:0" % h) if ":" in h else ("%s:0" % h)]
        cmd += self.run_args
        env = dict(os.environ, VOLLEY_LOG="info")
        if self.env:
            env.update(self.env)
        self.err_f = open(self.err_path, "ab")
        self.err_mark = os.path.getsize(self.err_path)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err_f, env=env)
        self.ports = []
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            ports = re.findall(r"listening on (\S+):(\d+)", self.stderr())
            if len(ports) >= len(self.listen):
                self.ports = [int(p) for _, p in ports[:len(self.listen)]]
                return
            if self.proc.poll() is not None:
                fail("volley run exited at start (%d): %s" % (self.proc.returncode,
                                                              self.stderr()))
            time.sleep(0.02)
        fail("volley run did not report its listeners: %s" % self.stderr())

    def stderr(self):
        """stderr of the current run (since the last start)."""
        with open(self.err_path, "rb") as f:
            f.seek(self.err_mark)
            return f.read().decode(errors="replace")

    def port(self, i=0):
        return self.ports[i]

    def addr(self, i=0):
        return (self.listen[i], self.ports[i])

    def client(self, src=None, i=0):
        return BoundClient(self.addr(i), src)

    def saved(self):
        return volley_lib.read_saved(self.save)

    def wait_saved(self, n, what=""):
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            s = self.saved()
            if len(s) >= n:
                return s
            time.sleep(0.02)
        fail("%s: %d message(s) delivered to the sink, expected %d" % (what, len(self.saved()), n))

    def log(self):
        if not os.path.exists(self.dlog):
            return []
        with open(self.dlog) as f:
            return [json.loads(l) for l in f if l.strip()]

    def wait_logged(self, ids, what=""):
        """Wait until every queue id in ids has a delivered event in the log."""
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            got = set(e["id"] for e in self.log() if e.get("event") == "delivered")
            if set(ids) <= got:
                return got
            time.sleep(0.02)
        fail("%s: ids %r not all delivered in the log: %r" % (what, ids, self.log()))

    def queue_ids(self):
        r = subprocess.run([volley_bin(), "queue", "ls", "--data", self.data, "--json",
                            "--limit", "10000"], capture_output=True, timeout=WAIT_S)
        check(r.returncode == 0, "queue ls failed: %s" % r.stderr.decode(errors="replace"))
        return set(m["id"] for m in json.loads(r.stdout.decode()))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=WAIT_S)

    def stop(self):
        """SIGTERM, bounded wait; returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("volley run did not stop on SIGTERM: %s" % self.stderr())
        return self.proc.returncode

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.sink and self.sink.proc.poll() is None:
            self.sink.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def txn(c, mail_from, rcpts, data, ehlo="client.test"):
    """EHLO (if ehlo), MAIL, RCPTs, DATA, content (CRLF lines; dot-stuffed here), '.';
    returns (code, lines) of the final reply."""
    if ehlo:
        c.send("EHLO " + ehlo)
        c.expect(250, "EHLO")
    if mail_from is not None:                  # None: MAIL was already accepted
        c.send("MAIL FROM:<%s>" % mail_from)
        c.expect(250, "MAIL")
    for r in rcpts:
        c.send("RCPT TO:<%s>" % r)
        c.expect(250, "RCPT " + r)
    c.send("DATA")
    c.expect(354, "DATA")
    c.send_raw(stuff(data) + b".\r\n")
    return c.reply()


def stuff(data):
    """RFC 5321 4.5.2 transparency: a line starting with '.' gets another."""
    return b"\r\n".join((b"." + l) if l.startswith(b".") else l for l in data.split(b"\r\n"))


QUEUED_RE = re.compile(r"queued as ([0-9a-f]{16})")


def run_cases(cases):
    only = os.environ.get("INJECT_CASE")
    for name, fn in cases:
        if only and name != only:
            continue
        t0 = time.monotonic()
        fn()
        print("ok %s (%.2fs)" % (name, time.monotonic() - t0))
