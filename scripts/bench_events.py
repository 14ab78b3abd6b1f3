"""bench_events.py - `scripts/bench.sh events` (issue 16): the cost of delivery
events, and the rate the outbox sustains.

One `volley sink` (1 thread) on 127.0.0.1 receives; a queue of one message to
N recipients over 100 domains is delivered by `volley run --until-empty`
(static route to the sink, --max-rcpts 1: one SMTP transaction per recipient,
S shards), REPS times for each mode, the modes alternating within each rep
(off then on in odd reps, on then off in even ones; before each timed run the
receivers must be quiet, and the broker's queue is purged after each rep):
  off:     no event sink;
  on:      --events-webhook (a Python http.server receiver on loopback
           answering 200, counting events, checking nothing: with batches of
           up to 1000 events it handles ~20-40 POSTs per run, so its CPU per
           event is small; printed apart) and --events-amqp (a private rabbitmq-server,
           persistent messages, publisher confirms), both at once; both run
           at nice 19 (they stand for remote systems, which would not share
           volley's CPUs on this small machine);
  drain:   the outbox alone: a run with the webhook pointed at a closed port
           stores N events (--events-drain 0), then a run with nothing to
           deliver and the receiver up sends them: events/s at the receiver
           (from that run's start to the last batch: start-up included).
Delivery rate = delivered rcpt/s of the run's summary (the engine's time; the
final drain of events is not in it). CPU: volley's (all threads, rusage of the
child), its event sender threads' (evt=events_stopped sender_cpu_ms), and the
receivers' (/proc of the webhook receiver and of rabbitmq-server's session)
over each "on" run, per event. Prints medians (min..max) and the ratio
on/off of the medians; JSON in bench-out/events.json.
Env: N (60000), REPS (16), DRAIN_REPS (3), SINKS (both), AMQP_PER_MESSAGE (1),
RECV_SCHED (idle), S (2), VOLLEY_BIN (build/volley)."""
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from rabbit_lib import Rabbit  # noqa: E402

VOLLEY = os.environ.get("VOLLEY_BIN", os.path.join(ROOT, "build", "volley"))
N = int(os.environ.get("N", "60000"))
REPS = int(os.environ.get("REPS", "16"))
S = int(os.environ.get("S", "2"))
RUN_TIMEOUT_S = 600
# How the receivers (stand-ins for remote systems) share this machine's CPUs with
# volley and its sink: RECV_SCHED=idle (default; SCHED_IDLE: they run on CPU time
# nothing else wants, as a remote broker would cost volley nothing) or nice19
# (nice +19: they still take a share under load).
RECV_SCHED = os.environ.get("RECV_SCHED", "idle")
if RECV_SCHED not in ("idle", "nice19"):
    sys.exit("bench_events: RECV_SCHED must be idle or nice19, not %r" % RECV_SCHED)
# SINKS: both (default: webhook and RabbitMQ at once), webhook or amqp.
SINKS = os.environ.get("SINKS", "both")
if SINKS not in ("both", "webhook", "amqp"):
    sys.exit("bench_events: SINKS must be both, webhook or amqp, not %r" % SINKS)
LABEL = {"both": "webhook+amqp", "webhook": "webhook", "amqp": "amqp"}[SINKS]
# AMQP_PER_MESSAGE: events per RabbitMQ message (volley's default 1).
PER_MESSAGE = int(os.environ.get("AMQP_PER_MESSAGE", "1"))
# DRAIN_REPS: the first this many reps also measure the outbox drain (default 3).
DRAIN_REPS = int(os.environ.get("DRAIN_REPS", "3"))
WRAP = ["chrt", "--idle", "0"] if RECV_SCHED == "idle" else ["nice", "-n", "19"]


def die(msg):
    print("bench_events: " + msg, file=sys.stderr)
    sys.exit(1)


RECEIVER = os.path.join(ROOT, "scripts", "bench_receiver.py")


class Receiver:
    """The webhook receiver: its own process, at nice 19 (it stands for a remote
    system, which would not share volley's CPUs); counts events and the
    CLOCK_MONOTONIC times of the first and last batch."""

    def __init__(self):
        self.proc = subprocess.Popen(WRAP + [sys.executable, RECEIVER],
                                     stdout=subprocess.PIPE, text=True)
        port = self.proc.stdout.readline().strip()
        if not port.isdigit():
            die("webhook receiver did not start")
        self.port = int(port)
        self.url = "http://127.0.0.1:%d/e" % self.port
        self.events, self.first, self.last = 0, None, None

    def _get(self, path):
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path), timeout=30) as r:
            d = json.loads(r.read())
        self.events, self.first, self.last = d["events"], d["first"], d["last"]

    def reset(self):
        self._get("/reset")

    def refresh(self):
        self._get("/stats")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Ran:
    def __init__(self, stdout, stderr, cpu_s):
        self.stdout, self.stderr, self.cpu_s = stdout, stderr, cpu_s


def run(args, what):
    """Run volley; its CPU time (user + system, all its threads): the growth of
    RUSAGE_CHILDREN over the run (the other children are reaped only at the end)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([VOLLEY] + args, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                       env=dict(os.environ, VOLLEY_LOG="info"))
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        die("%s: volley %s exited %d: %s" % (what, args[0], r.returncode, r.stderr[-800:]))
    r.cpu_s = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return r


def proc_cpu_s(pids):
    """utime + stime of processes @p pids (and of every process in their sessions)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, sid = int(d), int(st[3])
        if pid in pids or sid in pids:
            total += int(st[11]) + int(st[12])
    return total / tick


def settle(pids, limit_s=20.0):
    """Wait (bounded) until the receivers are quiet (under 5% of a CPU over 0.5 s):
    a broker still writing the previous run's messages to disk would take the
    CPU from whichever run came next."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        c0 = proc_cpu_s(pids)
        time.sleep(0.5)
        if proc_cpu_s(pids) - c0 < 0.025:
            return


def enqueue(tmp, data):
    rcpts = os.path.join(tmp, "rcpts")
    with open(rcpts, "w") as f:
        for i in range(N):
            f.write("r%d@bench%d.example\n" % (i, i % 100))
    msg = os.path.join(tmp, "msg.eml")
    with open(msg, "wb") as f:
        f.write(b"From: bench@sender.example\r\nSubject: events bench\r\n\r\n" + b"x" * 2000 + b"\r\n")
    shutil.rmtree(data, ignore_errors=True)
    run(["enqueue", "--data", data, "--shards", str(S), "--from", "bench@sender.example",
         "--rcpts", rcpts, msg], "enqueue")


def deliver(data, port, extra, what):
    r = run(["run", "--data", data, "--until-empty", "--shards", str(S),
             "--route", "*=127.0.0.1:%d" % port, "--max-rcpts", "1", "--conns-per-dest", "4"]
            + extra, what)
    out = r.stdout + r.stderr
    m = re.search(r"summary: delivered (\d+).*?([\d.]+) delivered rcpt/s", out)
    if not m or int(m.group(1)) != N:
        die("%s: summary: %s" % (what, out[-500:]))
    m2 = re.search(r"evt=events_stopped .*sender_cpu_ms=(\d+)", out)
    return float(m.group(2)), r.cpu_s, (int(m2.group(1)) / 1000.0 if m2 else 0.0)


def main():
    if not os.access(VOLLEY, os.X_OK):
        die("%s missing (build first)" % VOLLEY)
    tmp = tempfile.mkdtemp(prefix="volley-bench-events-")
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tmp
    data = tempfile.mkdtemp(prefix="volley-bench-events-q-", dir=base)
    sink = rb = recv = None
    try:
        sink = subprocess.Popen([VOLLEY, "sink", "--listen", "127.0.0.1:0", "--threads", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = sink.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            die("sink did not start: %r" % line)
        port = int(m.group(1))
        recv = Receiver()
        rb = Rabbit(die, wrap=WRAP)       # a remote system's stand-in, as the receiver
        rb.start()
        secret = os.path.join(tmp, "secret")
        with open(secret, "w") as f:
            f.write("bench-secret\n")
        with socket.socket() as s:        # a closed port: the webhook fails at once
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        on_args = ["--events-drain", "600s"]
        if SINKS in ("both", "webhook"):
            on_args += ["--events-webhook", recv.url, "--events-secret-file", secret]
        if SINKS in ("both", "amqp"):
            on_args += ["--events-amqp", rb.url, "--events-amqp-queue", "bench.events",
                        "--events-amqp-per-message", str(PER_MESSAGE)]
        print("bench_events: N=%d recipients (one message, 100 domains, one transaction each), "
              "S=%d shards, REPS=%d, sink 127.0.0.1:%d, receivers RECV_SCHED=%s, SINKS=%s, "
              "AMQP_PER_MESSAGE=%d" % (N, S, REPS, port, RECV_SCHED, SINKS, PER_MESSAGE),
              flush=True)
        off, on, drain, on_ev = [], [], [], []
        cpu_off, cpu_on, cpu_send, cpu_recv, cpu_store, cpu_hook = [], [], [], [], [], []
        recv_pids = {recv.proc.pid, rb.proc.pid}
        for rep in range(1, REPS + 1):
            # off and on alternate in order (off first in odd reps, on first in even
            # ones) so that neither mode always follows the other's after-effects
            for mode in (("off", "on") if rep % 2 else ("on", "off")):
                enqueue(tmp, data)
                settle(recv_pids)
                if mode == "off":
                    r_off, c_off, _ = deliver(data, port, [], "off")
                    off.append(r_off)
                    cpu_off.append(c_off)
                    continue
                recv.reset()
                t0 = time.monotonic()
                rc0, rh0 = proc_cpu_s(recv_pids), proc_cpu_s({recv.proc.pid})
                r_on, c_on, c_send = deliver(data, port, on_args, "on")
                cpu_recv.append(proc_cpu_s(recv_pids) - rc0)
                cpu_hook.append(proc_cpu_s({recv.proc.pid}) - rh0)
                on.append(r_on)
                cpu_on.append(c_on)
                cpu_send.append(c_send)
                recv.refresh()
                if SINKS != "amqp" and recv.events < N:
                    die("on: the receiver got %d events, want >= %d" % (recv.events, N))
                on_ev.append(recv.events / (recv.last - t0) if recv.last and recv.last > t0 else 0.0)
                n_amqp = rb.queue_len("bench.events") if SINKS != "webhook" else N
                want = (N + PER_MESSAGE - 1) // PER_MESSAGE
                if n_amqp < want:
                    die("amqp: %d messages in the queue, want >= %d" % (n_amqp, want))
                if SINKS != "webhook":
                    rb.purge("bench.events")       # the broker's backlog does not grow rep by rep
            if rep > DRAIN_REPS:
                print("rep %d: off %.0f rcpt/s | on %.0f rcpt/s, events at the receiver %.0f/s | "
                      "volley CPU %.0f -> %.0f us/rcpt (senders %.1f us/event), receivers %.0f "
                      "us/event | load %.2f" %
                      (rep, off[-1], on[-1], on_ev[-1], 1e6 * cpu_off[-1] / N, 1e6 * cpu_on[-1] / N,
                       1e6 * cpu_send[-1] / N, 1e6 * cpu_recv[-1] / N, os.getloadavg()[0]),
                      flush=True)
                continue
            # drain: store N events with the webhook down, then send them
            enqueue(tmp, data)
            _, c_store, _ = deliver(data, port, ["--events-webhook", "http://127.0.0.1:%d/" % dead,
                                 "--events-secret-file", secret, "--events-drain", "0"],
                    "drain-store")
            cpu_store.append(c_store)
            recv.reset()
            t_drain = time.monotonic()
            run(["run", "--data", data, "--until-empty", "--quiet", "--shards", str(S),
                 "--route", "*=127.0.0.1:%d" % port, "--events-webhook", recv.url,
                 "--events-secret-file", secret, "--events-drain", "600s"], "drain")
            recv.refresh()
            if recv.events < N or recv.last is None:
                die("drain: the receiver got %d events, want >= %d" % (recv.events, N))
            d = recv.events / (recv.last - t_drain)     # from the run's start: process start-up in
            drain.append(d)
            print("rep %d: off %.0f rcpt/s | on %.0f rcpt/s, events at the "
                  "receiver %.0f/s | outbox drain %.0f events/s | volley CPU %.0f -> %.0f us/rcpt "
                  "(senders %.1f us/event), receivers %.0f us/event | load %.2f" %
                  (rep, off[-1], on[-1], on_ev[-1], d, 1e6 * cpu_off[-1] / N, 1e6 * cpu_on[-1] / N,
                   1e6 * cpu_send[-1] / N, 1e6 * cpu_recv[-1] / N, os.getloadavg()[0]), flush=True)
        med = statistics.median
        res = {"suite": "events", "recipients": N, "shards": S, "repetitions": REPS,
               "sinks": SINKS, "amqp_per_message": PER_MESSAGE, "receivers_sched": RECV_SCHED,
               "off_rcpt_per_s": off, "on_rcpt_per_s": on, "on_events_per_s": on_ev,
               "drain_events_per_s": drain,
               "volley_cpu_us_per_rcpt_off": [1e6 * c / N for c in cpu_off],
               "volley_cpu_us_per_rcpt_on": [1e6 * c / N for c in cpu_on],
               "sender_threads_cpu_us_per_event": [1e6 * c / N for c in cpu_send],
               "receivers_cpu_us_per_event": [1e6 * c / N for c in cpu_recv],
               "store_only_cpu_us_per_rcpt": [1e6 * c / N for c in cpu_store],
               "webhook_receiver_cpu_us_per_event": [1e6 * c / N for c in cpu_hook],
               "loadavg_1m_at_end": os.getloadavg()[0],
               "ratio_on_off_of_medians": med(on) / med(off),
               "ratio_on_off_per_rep": [a / b for a, b in zip(on, off)]}
        fmt = lambda xs: "%.0f (%.0f..%.0f)" % (med(xs), min(xs), max(xs))
        print("events off:             %s rcpt/s" % fmt(off))
        print("events on (%s): %s rcpt/s  -> ratio on/off of medians %.3f" %
              (LABEL, fmt(on), res["ratio_on_off_of_medians"]))
        pr = res["ratio_on_off_per_rep"]
        print("ratio on/off within each rep (paired): median %.3f (%.3f..%.3f)" %
              (med(pr), min(pr), max(pr)))
        print("events at the receiver during delivery: %s events/s" % fmt(on_ev))
        print("outbox drain (webhook, batch 1000):     %s events/s" % fmt(drain))
        f1 = lambda xs: "%.1f (%.1f..%.1f)" % (med(xs), min(xs), max(xs))
        us = lambda xs: [1e6 * x / N for x in xs]
        extra = [1e6 * (a - b) / N for a, b in zip(cpu_on, cpu_off)]
        print("volley CPU (all threads) per recipient: off %s us, on %s us; on - off within each "
              "rep: %s us per event" % (f1(us(cpu_off)), f1(us(cpu_on)), f1(extra)))
        print("  of which the event sender threads:    %s us per event (%s)" %
              (f1(us(cpu_send)), LABEL))
        print("outbox writes only (webhook down, sender backing off): %s us per rcpt; minus off "
              "within each rep: %s us" % (f1(us(cpu_store)),
                                          f1([1e6 * (a - b) / N for a, b in zip(cpu_store, cpu_off)])))
        print("receivers' CPU (webhook receiver + rabbitmq-server, " + RECV_SCHED + "): %s us per event, of "
              "which the webhook receiver (Python) %s" % (f1(us(cpu_recv)), f1(us(cpu_hook))))
        print("load average (1/5/15 min) at the end: %.2f %.2f %.2f" % os.getloadavg())
        os.makedirs(os.path.join(ROOT, "bench-out"), exist_ok=True)
        with open(os.path.join(ROOT, "bench-out", "events.json"), "w") as f:
            json.dump(res, f, indent=1)
    finally:
        if sink:
            sink.terminate()
            sink.wait(timeout=30)
        if rb:
            rb.close()
        if recv:
            recv.close()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
