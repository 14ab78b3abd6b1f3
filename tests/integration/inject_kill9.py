"""inject_kill9.py - durability of the 250: Python clients (4 connections)
send continuously to `volley run --listen` while it is killed with SIGKILL at
random moments, 20 times. Every queue id a client saw in a 250 must be in the
queue afterwards (`volley queue ls`; the queue is purged between kills once it
holds 4000 messages, as ls lists 10000 at most), and `volley queue check` finds no
problem. The route points at a closed port, so nothing leaves the queue (the
recipients are deferred for --retry-base 1h). Recipients span several domains,
so multi-shard messages are killed mid-commit too.
Seed: INJECT_SEED (default: time); printed for replay."""
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inject_lib import Intake, QUEUED_RE, check, volley_bin  # noqa: E402

KILLS = 20
CLIENTS = 4
MSG = (b"Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nMessage-ID: <k@src.test>\r\n"
       b"From: s@src.test\r\nSubject: kill -9\r\n\r\n" + b"body line\r\n" * 20)


def sender(addr, stop, acked, k):
    """Send transactions until stop or the server dies; record 250 queue ids."""
    n = 0
    while not stop.is_set():
        try:
            s = socket.create_connection(addr, timeout=5)
        except OSError:
            return
        f = s.makefile("rb")
        try:
            def reply():
                while True:
                    line = f.readline()
                    if not line:
                        raise EOFError
                    if line[3:4] != b"-":
                        return line.decode(errors="replace")
            reply()
            s.sendall(b"EHLO killer.test\r\n")
            reply()
            while not stop.is_set():
                n += 1
                rcpts = ["u%d@d%d.test" % (n, (n + j) % 7) for j in range(1 + n % 3)]
                cmds = "MAIL FROM:<s@src.test>\r\n" + "".join(
                    "RCPT TO:<%s>\r\n" % r for r in rcpts) + "DATA\r\n"
                s.sendall(cmds.encode())
                for _ in range(1 + len(rcpts)):
                    if not reply().startswith("250"):
                        raise EOFError
                if not reply().startswith("354"):
                    raise EOFError
                s.sendall(MSG + b".\r\n")
                line = reply()
                m = QUEUED_RE.search(line)
                if line.startswith("250") and m:
                    acked.append(m.group(1))
        except (EOFError, OSError):
            return
        finally:
            s.close()


def main():
    seed = int(os.environ.get("INJECT_SEED", str(int(time.time()))))
    print("seed %d" % seed)
    rnd = random.Random(seed)
    it = Intake(["--retry-base", "1h", "--retry-max", "1h"], sink=False)
    acked, total = [], 0
    try:
        for i in range(KILLS):
            if i:
                it.start()
            stop = threading.Event()
            ts = [threading.Thread(target=sender, args=(it.addr(), stop, acked, k))
                  for k in range(CLIENTS)]
            for t in ts:
                t.start()
            time.sleep(rnd.uniform(0.05, 0.6))
            it.kill9()
            stop.set()
            for t in ts:
                t.join(timeout=10)
                check(not t.is_alive(), "a sender did not stop")
            ids = it.queue_ids()
            missing = [a for a in acked if a not in ids]
            check(not missing, "kill %d: %d acked message(s) not in the queue: %r"
                  % (i + 1, len(missing), missing[:5]))
            print("kill %d: %d acked since the last purge, all queued" % (i + 1, len(acked)))
            if len(ids) > 4000:                  # `queue ls` lists up to 10000: start afresh
                r = subprocess.run([volley_bin(), "queue", "purge", "--all", "--data", it.data],
                                   capture_output=True, timeout=60)
                check(r.returncode == 0, "purge failed: %s" % r.stderr)
                total += len(acked)
                acked.clear()
        total += len(acked)
        check(total >= KILLS, "only %d messages acked in %d runs" % (total, KILLS))
        it.start()
        check(it.stop() == 0, "the last run did not exit 0: %s" % it.stderr())
        r = subprocess.run([volley_bin(), "queue", "check", "--data", it.data, "--json"],
                           capture_output=True, timeout=60)
        out = r.stdout.decode(errors="replace")
        check(r.returncode == 0, "queue check failed: %s %s" % (out, r.stderr))
        check(json.loads(out).get("problems") == 0, "queue check: %s" % out)
        ids = it.queue_ids()
        check(all(a in ids for a in acked), "acked message lost after the final restart")
        print("ok: %d acked messages over %d kills, all in the queue" % (total, KILLS))
    finally:
        it.close()


main()
