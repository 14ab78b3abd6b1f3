"""deliver_limits.py - issue 9 ("Never lose, never double"), items 7 and 8,
end to end through dnsmasq:

item7: a local cap makes work wait, never fail. Many domains at once with
the resolver's in-flight cap lowered to 1 (--dns-inflight-max, a test/tuning
option): every recipient is delivered on its first attempt and nothing is
logged "deferred" (the old code deferred 451 4.4.3 "cannot resolve"). The
same with one session per shard (--sessions-max) and two MX hosts (the old
code deferred 451 4.3.0 "cannot open a connection").

item8: large mail to a slow receiver. A small Python SMTP server here reads
a large body (~10 MB, sized from the kernel's TCP buffers) slowly: sending
it takes longer than the (scaled) 3-minute data-block deadline, yet every
block makes progress, so it is delivered
(RFC 5321 4.5.3.2.5: the deadline is per send, not for the whole body). A
server that answers the final dot with a malformed or an over-long reply
leaves the same doubt as a dropped connection: logged "ambiguous", deferred,
and delivered on the retry.

Every wait is bounded; every process is started here and stopped by PID or
by closing its socket. Run one case with DELIVER_CASE=name."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import check, by_event, message, run_cases  # noqa: E402

MX_IP = "127.0.0.2"
SERVER_IO_TIMEOUT_S = 20.0


class SlowServer:
    """A one-thread-per-connection SMTP receiver on MX_IP:port (free port).
    mode: "ok" (250 after the dot), "malformed" (a multi-line reply whose code
    changes), "overlong" (one 250 line of 6000 octets, over the 4096 cap). Reads the body in
    chunk-byte pieces with pause_s between them (a slow reader). Records the
    messages received (bytes of the body) and the seconds each body took."""

    def __init__(self, mode="ok", chunk=16384, pause_s=0.0, rcvbuf=None):
        self.mode, self.chunk, self.pause_s = mode, chunk, pause_s
        self.bodies, self.body_secs, self.errors = [], [], []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:   # inherited by accepted sockets: a small window makes the sender wait
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((MX_IP, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(SERVER_IO_TIMEOUT_S)
        buf = b""

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                d = c.recv(4096)
                if not d:
                    raise EOFError
                buf += d
            ln, buf = buf.split(b"\r\n", 1)
            return ln

        try:
            c.sendall(b"220 slow.test ESMTP\r\n")
            for _ in range(1000):   # commands of one connection, bounded
                cmd = line().upper()
                if cmd.startswith(b"EHLO"):
                    c.sendall(b"250-slow.test\r\n250 8BITMIME\r\n")
                elif cmd.startswith(b"MAIL") or cmd.startswith(b"RCPT") or cmd == b"RSET":
                    c.sendall(b"250 ok\r\n")
                elif cmd == b"DATA":
                    c.sendall(b"354 go\r\n")
                    self.read_body(c, buf)
                    buf = b""
                    if self.mode == "malformed":
                        c.sendall(b"250-queued\r\n251 changed code\r\n")
                    elif self.mode == "overlong":
                        c.sendall(b"250 " + b"x" * 6000 + b"\r\n")
                    else:
                        c.sendall(b"250 2.0.0 queued\r\n")
                elif cmd == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"502 no\r\n")
        except (EOFError, OSError) as e:
            with self.lock:
                self.errors.append(repr(e))
        finally:
            c.close()

    def read_body(self, c, buf):
        t0 = time.monotonic()
        data = bytearray(buf)
        while not data.endswith(b"\r\n.\r\n"):
            if self.pause_s:
                time.sleep(self.pause_s)
            d = c.recv(self.chunk)
            if not d:
                raise EOFError
            data += d
        with self.lock:
            self.bodies.append(bytes(data))
            self.body_secs.append(time.monotonic() - t0)

    def close(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(timeout=2)


def start(env, server, domains):
    """dnsmasq: each of domains -> MX mx.DOMAIN -> MX_IP; sinks: the server."""
    env.port = server.port
    env.start_dns(mx={d: [(10, "mx." + d, MX_IP)] for d in domains}, defaults=False)


def case_item7_dns_cap_waits(env):
    env.start_sinks({MX_IP: []})
    domains = ["d%02d.test" % i for i in range(40)]
    env.start_dns(mx={d: [(10, "mx." + d, MX_IP)] for d in domains}, defaults=False)
    rcpts = ["u@" + d for d in domains]
    env.shards = 1   # one shard: all 40 domains reach one resolver at once
    env.enqueue("s@src.test", rcpts)
    env.run("--dns-inflight-max", "1", "--retry-base", "1h")
    log = env.log()
    deferred = by_event(log, "deferred")
    check(not deferred, "%d deferred, e.g. %r" % (len(deferred), deferred[:2]))
    delivered = by_event(log, "delivered")
    check(sorted(e["rcpt"] for e in delivered) == sorted(rcpts),
          "delivered %d of %d: %r" % (len(delivered), len(rcpts), log[:3]))
    check(all(e["attempt"] == 1 for e in delivered), "not all on attempt 1: %r" % delivered)
    st = env.queue_stats()
    check(st["ready"] == 0 and st["deferred"] == 0, "queue %r" % st)


def case_item7_session_cap_waits(env):
    # One session per shard (--sessions-max, a test/tuning option), two MX
    # hosts: the second host's attempts wait for the first one's session to
    # end (--idle 200ms) instead of being deferred "cannot open a connection".
    env.start_sinks({MX_IP: [], "127.0.0.3": []})
    env.start_dns(mx={"a.test": [(10, "mx.a.test", MX_IP)],
                      "b.test": [(10, "mx.b.test", "127.0.0.3")]}, defaults=False)
    env.shards = 1
    rcpts = ["u%d@%s.test" % (i, d) for d in "ab" for i in range(3)]
    env.enqueue("s@src.test", rcpts)
    env.run("--sessions-max", "1", "--idle", "200ms", "--max-rcpts", "1",
            "--retry-base", "1h", env={"VOLLEY_LOG": "info"})
    log = env.log()
    deferred = by_event(log, "deferred")
    check(not deferred, "%d deferred, e.g. %r" % (len(deferred), deferred[:2]))
    delivered = by_event(log, "delivered")
    check(sorted(e["rcpt"] for e in delivered) == sorted(rcpts) and
          all(e["attempt"] == 1 for e in delivered), "log %r" % log)


def kernel_buffer_bytes():
    """What loopback TCP may hold between volley's sends and our reads: the
    largest send buffer (tcp_wmem max), our fixed receive buffer and volley's
    two session write buffers (~64 KiB each)."""
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        wmem_max = int(f.read().split()[2])
    return wmem_max + SLOW_RCVBUF + 256 * 1024


SLOW_CHUNK, SLOW_PAUSE_S, SLOW_RCVBUF = 32768, 0.025, 65536
SLOW_RATE = SLOW_CHUNK / SLOW_PAUSE_S   # bytes/s at most (sleeps only make it slower)


def case_item8_slow_reader_delivers(env):
    # The receiver takes 32 KiB every 25 ms (<= 1.3 MB/s) through a fixed
    # 64 KiB window. W bytes sit in kernel buffers, so volley's last send
    # completes about (size - W) / rate after the first, and the final reply
    # comes W / rate after that. The data-block deadline B (180 s scaled) is
    # set to 0.7 W / rate, the final reply's (600 s scaled) is then 2.3 W /
    # rate; the body is W + 1.8 B rate: sending it takes ~1.8 B, longer than
    # one block's deadline, while every block makes progress.
    w = kernel_buffer_bytes()
    block_s = 0.7 * w / SLOW_RATE
    size = int(w + 1.8 * block_s * SLOW_RATE)
    scale = block_s / 180.0
    srv = SlowServer(chunk=SLOW_CHUNK, pause_s=SLOW_PAUSE_S, rcvbuf=SLOW_RCVBUF)
    try:
        start(env, srv, ["slow.test"])
        env.enqueue("s@src.test", ["big@slow.test"], message(size=size))
        env.run("--timeout-scale", "%.5f" % scale, "--retry-base", "1h")
    finally:
        srv.close()
    log = env.log()
    check([e["event"] for e in log] == ["delivered"], "log %r (server errors %r)" %
          ([{k: e.get(k) for k in ("event", "code", "reply")} for e in log], srv.errors))
    check(len(srv.bodies) == 1 and len(srv.bodies[0]) >= size,
          "bodies received: %r" % [len(b) for b in srv.bodies])
    want_s = block_s + w / SLOW_RATE
    check(srv.body_secs[0] > want_s, "the body took only %.2f s (want > %.2f): sending it "
          "was not slower than one data block's deadline; the test proves nothing"
          % (srv.body_secs[0], want_s))


def after_dot(mode):
    def case(env):
        srv = SlowServer(mode=mode)
        try:
            start(env, srv, ["bad.test"])
            env.enqueue("s@src.test", ["x@bad.test", "y@bad.test"])
            env.run("--retry-base", "1s", "--retry-max", "1s")
            log = env.log()
            amb = by_event(log, "ambiguous")
            check(len(amb) == 2 and all(e["attempt"] == 1 for e in amb),
                  "%s reply after the dot: log %r" % (mode, log))
            check(not by_event(log, "delivered") and not by_event(log, "bounced"),
                  "log %r" % log)
            st = env.queue_stats()
            check(st.get("ambiguous") == 2 and st["deferred"] == 2, "queue %r" % st)
            srv.mode = "ok"            # the retry gets a readable reply
            time.sleep(1.3)
            env.run("--retry-base", "1s", "--retry-max", "1s")
        finally:
            srv.close()
        log = env.log()
        dl = by_event(log, "delivered")
        check(sorted(e["rcpt"] for e in dl) == ["x@bad.test", "y@bad.test"] and
              all(e["attempt"] == 2 for e in dl), "retry: log %r" % log)
    return case


if __name__ == "__main__":
    run_cases([
        ("item7_dns_cap_waits", case_item7_dns_cap_waits),
        ("item7_session_cap_waits", case_item7_session_cap_waits),
        ("item8_slow_reader_delivers", case_item8_slow_reader_delivers),
        ("item8_malformed_after_dot", after_dot("malformed")),
        ("item8_overlong_after_dot", after_dot("overlong")),
    ])
