"""sink_lib.py - helpers for the `volley sink` integration tests: start a sink
on a free loopback port (port 0, read back from its 'listening on' line), talk
SMTP over a raw socket, read replies, stop the sink by its PID.

Every wait is bounded (READ_TIMEOUT_S); each test removes its temp dirs."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

READ_TIMEOUT_S = 10.0
START_TIMEOUT_S = 10.0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def volley_bin():
    b = os.environ.get("VOLLEY_BIN")
    if not b or not os.access(b, os.X_OK):
        fail("VOLLEY_BIN is not set to the volley binary (run the tests through ctest)")
    return b


class Sink:
    """A running `volley sink`; addrs: [(host, port)] in --listen order."""

    def __init__(self, args, listen=("127.0.0.1",)):
        self.tmp = tempfile.mkdtemp(prefix="volley-sink-test-")
        self.out_path = os.path.join(self.tmp, "stdout")
        self.err_path = os.path.join(self.tmp, "stderr")
        cmd = [volley_bin(), "sink"]
        for host in listen:
            cmd += ["--listen", ("[%s]:0" % host) if ":" in host else ("%s:0" % host)]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=open(self.out_path, "wb"),
                                     stderr=open(self.err_path, "wb"))
        self.addrs = []
        end = time.monotonic() + START_TIMEOUT_S
        while len(self.addrs) < len(listen) and time.monotonic() < end:
            if self.proc.poll() is not None:
                fail("sink exited at start (%d): %s" % (self.proc.returncode, self.stderr()))
            self.addrs = [(m.group(1).strip("[]"), int(m.group(2))) for m in
                          re.finditer(r"sink: listening on (\S+):(\d+)", self.stdout())]
            time.sleep(0.02)
        check(len(self.addrs) == len(listen), "sink did not report its listeners")

    def stdout(self):
        with open(self.out_path, "r", errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, "r", errors="replace") as f:
            return f.read()

    def connect(self, i=0):
        return Client(self.addrs[i])

    def stats(self):
        """SIGUSR1, then the newest JSON stats line (needs --json)."""
        before = self.stdout().count('"event":"stats"')
        self.proc.send_signal(signal.SIGUSR1)
        end = time.monotonic() + READ_TIMEOUT_S
        while time.monotonic() < end:
            lines = [l for l in self.stdout().splitlines() if l.startswith("{")]
            if len(lines) > before:
                return json.loads(lines[-1])
            time.sleep(0.02)
        fail("no stats after SIGUSR1")

    def stop(self):
        """SIGTERM, wait (bounded), return the exit code; remove the temp dir."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=READ_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("sink did not stop on SIGTERM")
        out = self.stdout()
        for name in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, name))
        os.rmdir(self.tmp)
        self.final_stdout = out
        return self.proc.returncode


class Client:
    def __init__(self, addr):
        fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        self.s.settimeout(READ_TIMEOUT_S)
        self.s.connect(addr)
        self.buf = b""

    def send(self, *lines):
        self.s.sendall(b"".join(l.encode() + b"\r\n" for l in lines))

    def send_raw(self, data):
        self.s.sendall(data)

    def reply(self):
        """One reply: (code, [lines]); (None, []) at end of stream."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                try:
                    b = self.s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    b = b""
                if not b:
                    return (None, lines)
                self.buf += b
            line, self.buf = self.buf.split(b"\r\n", 1)
            line = line.decode(errors="replace")
            lines.append(line)
            check(re.match(r"^[2-5]\d\d[ -]", line) or re.match(r"^[2-5]\d\d$", line),
                  "malformed reply line %r" % line)
            if len(line) == 3 or line[3] == " ":
                return (int(line[:3]), lines)

    def expect(self, code, what=""):
        got, lines = self.reply()
        check(got == code, "%s: expected %s, got %s %r" % (what, code, got, lines))
        return lines

    def closed(self):
        """True if the server closed the connection (EOF) without more replies."""
        got, lines = self.reply()
        return got is None and not lines

    def close(self):
        self.s.close()
