"""sink_throttle.py - `volley sink --model FILE` (issue 14): a receiver that
throttles like a provider, per client source address. Clients bind to
127.0.0.2/.3/.4 (loopback source addresses):
  1. messages: each address gets at most burst + R x elapsed messages accepted
     (its own bucket; the other address does not eat into it), the rest are
     deferred with the model's configured reply (421 closes the connection),
     and the sink's per-address stats agree with what each client saw;
  2. connections: the (C+1)-th connection at once from one address is deferred
     at its banner, another address is not, and a closed one frees a place;
  3. abuse: after N excesses in a row the address is refused at the banner for
     the block time, even once its bucket has refilled; others are not.
Bounds are one-sided where timing could vary under load (never "at least N per
second"): counts are checked against the elapsed time the test measured."""
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sink_lib import Sink, check, fail  # noqa: E402

RATE, BURST, CONNS = 20.0, 5, 2
REPLY = "421 4.7.0 [TSS04] Messages from your address temporarily deferred"


class Bound:
    """A raw SMTP client bound to a source address."""

    def __init__(self, addr, src):
        self.s = socket.socket()
        self.s.settimeout(10)
        self.s.bind((src, 0))
        self.s.connect(addr)
        self.buf = b""

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                try:
                    b = self.s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    b = b""
                if not b:
                    return None, lines
                self.buf += b
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if len(line) == 3 or line[3:4] == b" ":
                return int(line[:3]), lines

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\r\n")
        return self.reply()

    def close(self):
        self.s.close()


def model_file(text):
    fd, path = tempfile.mkstemp(suffix=".conf")
    os.write(fd, text.encode())
    os.close(fd)
    return path


def blast(addr, src, seconds):
    """Send messages from src for `seconds`, reconnecting after each 421.
    Returns (accepted, deferred, elapsed)."""
    ok = deferred = 0
    t0 = time.monotonic()
    c = None
    for _ in range(100000):                    # bounded in count and in time
        if time.monotonic() - t0 > seconds:
            break
        if c is None:
            c = Bound(addr, src)
            code, _ = c.reply()
            if code != 220:
                fail("banner from %s: %s" % (src, code))
            c.cmd("EHLO client.test")
        code, lines = c.cmd("MAIL FROM:<a@sender.test>")
        if code == 421:
            check(lines[-1] == REPLY, "deferral text %r" % lines)
            deferred += 1
            c.close()
            c = None
            continue
        check(code == 250, "MAIL: %s %r" % (code, lines))
        check(c.cmd("RCPT TO:<b@dest.test>")[0] == 250, "RCPT")
        check(c.cmd("DATA")[0] == 354, "DATA")
        c.s.sendall(b"Subject: m\r\n\r\nx\r\n.\r\n")
        check(c.reply()[0] == 250, "dot")
        ok += 1
    if c:
        c.close()
    return ok, deferred, time.monotonic() - t0


def main():
    path = model_file("msgs-per-sec = %g;\nburst = %d;\nconnections = %d;\nreply = \"%s\";\n"
                      % (RATE, BURST, CONNS, REPLY))
    sink = Sink(["--json", "--model", path])
    try:
        addr = sink.addrs[0]
        # 1. two addresses, one bucket each
        res = {}
        for src in ("127.0.0.2", "127.0.0.3"):
            res[src] = blast(addr, src, 1.0)
        st = sink.stats()
        model = st.get("model")
        check(model is not None, "no model in stats: %r" % st)
        for src, (ok, deferred, el) in res.items():
            cap = BURST + RATE * el + 1
            check(ok <= cap, "%s: %d accepted in %.2fs, model allows at most %.1f"
                  % (src, ok, el, cap))
            check(ok >= BURST, "%s: only %d accepted (burst %d)" % (src, ok, BURST))
            check(deferred > 0, "%s: never deferred (%d accepted in %.2fs)" % (src, ok, el))
            m = model.get(src)
            check(m is not None, "no stats for %s: %r" % (src, model))
            check(m["delivered"] == ok and m["deferred"] == deferred,
                  "%s: sink counted %r, client %d/%d" % (src, m, ok, deferred))
        # 2. connections per address
        held = []
        for i in range(CONNS):
            c = Bound(addr, "127.0.0.4")
            check(c.reply()[0] == 220, "conn %d refused" % i)
            held.append(c)
        extra = Bound(addr, "127.0.0.4")
        code, lines = extra.reply()
        check(code == 421 and lines[-1] == REPLY, "conn %d: %s %r" % (CONNS + 1, code, lines))
        check(extra.reply()[0] is None, "421 at the banner must close")
        other = Bound(addr, "127.0.0.5")
        check(other.reply()[0] == 220, "another address is not capped")
        other.close()
        held[0].cmd("QUIT")
        held[0].close()
        ok_again = False
        for _ in range(100):                   # the close reaches the sink: bounded wait
            c = Bound(addr, "127.0.0.4")
            code, _ = c.reply()
            c.close()
            if code == 220:
                ok_again = True
                break
            time.sleep(0.02)
        check(ok_again, "a closed connection did not free a place")
        for c in held[1:]:
            c.close()
    finally:
        sink.stop()
        os.unlink(path)

    # 3. abuse: 3 excesses in a row -> blocked for 30 s (longer than the test)
    path = model_file("msgs-per-sec = 20;\nburst = 1;\nabuse = 3;\nblock = \"30s\";\n"
                      "reply = \"421 4.7.1 blocked\";\n")
    sink = Sink(["--json", "--model", path])
    try:
        addr = sink.addrs[0]
        codes = []
        for _ in range(10):                    # a token per 50 ms: the excesses come fast
            c = Bound(addr, "127.0.0.2")
            code, _ = c.reply()
            if code != 220:
                c.close()
                break                          # blocked at the banner
            c.cmd("EHLO x")
            code, _ = c.cmd("MAIL FROM:<a@b.test>")
            codes.append(code)
            c.close()
        time.sleep(0.2)                        # the bucket refills (20/s)
        c = Bound(addr, "127.0.0.2")
        code, lines = c.reply()
        c.close()
        st = sink.stats()["model"]["127.0.0.2"]
        if st["blocks"] == 1:
            check(code == 421 and lines[-1] == "421 4.7.1 blocked",
                  "blocked address got %s %r" % (code, lines))
        else:
            # a very slow machine let 50 ms pass between commands: no 3 excesses in a row
            check(codes.count(421) < 3 or 250 in codes[1:], "excesses but no block: %r %r"
                  % (codes, st))
            print("note: no 3 excesses in a row under load (%r); block not reached" % codes)
        o = Bound(addr, "127.0.0.3")
        check(o.reply()[0] == 220, "another address is not blocked")
        o.close()
    finally:
        sink.stop()
        os.unlink(path)
    print("ok: per-address buckets (%s), connection cap, abuse block" %
          ", ".join("%s %d ok/%d deferred in %.1fs" % (k, v[0], v[1], v[2])
                    for k, v in res.items()))


main()
