"""volley_lib.py - shared helpers for the delivery integration tests
(tests/integration/deliver_*): `volley sink` instances on chosen 127.0.0.x
addresses sharing one port (volley delivers every MX to --mx-port), a private
dnsmasq through scripts/dnsmasq.sh, a temp queue directory driven through
`volley enqueue|run|send`, the JSON delivery log and the sinks' --save files.

Invariants: every wait is bounded (RUN_TIMEOUT_S, sink_lib.START_TIMEOUT_S);
every process is started here and stopped by its PID (Env.close(), called from
the tests' finally blocks, stops sinks then dnsmasq and removes the temp dir).
Failures go through sink_lib.fail (exit 1); missing tools fail too.

API: Env(shards=2) -> .start_sinks({host: [sink args]}, save=True) -> port;
.start_dns(mx={dom: [(pref, host, ip)]}, lines=(), defaults=True) -> port;
.allow_dest (route_args adds it: --allow-dest loopback unless changed);
.enqueue(from, rcpts, content) -> id; .enqueue_many([(from, rcpts, content)]);
.run(*args, expect_rc="queue", env=None) (default: the documented code for
what the run left: 3 if recipients are still queued, else 0);
.send(from, rcpts, content, *args);
.volley(*args); .log(); .queue_stats(); .saved(host); .stop_sink(host) ->
exit stats; .close(). Module: message(), read_saved(dir), by_event(),
check_exactly_once(log, saved, rcpts, what), run_cases([(name, fn)])
(DELIVER_CASE=name runs one case).

Typical use:
    env = Env()
    try:
        port = env.start_sinks({"127.0.0.2": ["--json"]})
        env.start_dns(mx={"a.test": [(10, "mx.a.test", "127.0.0.2")]})
        env.enqueue("s@src.test", ["u1@a.test"], message())
        r = env.run("--until-empty")
        log = env.log()
        stats = env.stop_sink("127.0.0.2")
    finally:
        env.close()
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sink_lib  # noqa: E402
from sink_lib import check, fail, volley_bin  # noqa: E402,F401

RUN_TIMEOUT_S = 60.0        # one volley run/send/enqueue call
SINK_STOP_TIMEOUT_S = 10.0


def src_root():
    s = os.environ.get("VOLLEY_SRC")
    if s and os.path.isfile(os.path.join(s, "scripts", "dnsmasq.sh")):
        return s
    return os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def need_tools():
    """Fail (exit 1) when dnsmasq or the volley binary is missing: a test that
    cannot run is a failed test (scripts/setup.sh installs everything)."""
    volley_bin()
    if not (shutil.which("dnsmasq") or os.access("/usr/sbin/dnsmasq", os.X_OK)):
        fail("dnsmasq not installed (scripts/setup.sh installs dnsmasq-base)")


def message(subject="test", body_lines=3, size=None, from_addr="sender@src.test"):
    """A small RFC 5322 message (bytes); size pads the body to at least size octets."""
    head = "From: %s\r\nTo: undisclosed-recipients:;\r\nSubject: %s\r\n\r\n" % (from_addr, subject)
    body = "".join("line %d of the body\r\n" % i for i in range(body_lines))
    text = head + body
    if size is not None and len(text) < size:
        pad = size - len(text)
        line = "x" * 76 + "\r\n"
        text += line * (pad // len(line) + 1)
    return text.encode()


class MxSink(sink_lib.Sink):
    """A `volley sink` on host:port (port 0 = free). Reuses sink_lib.Sink's
    stdout/stderr/stats/stop. start_ok is False when it exited at start (port
    taken); the caller retries with another port."""

    def __init__(self, host, port, args, save_dir=None):
        self.tmp = tempfile.mkdtemp(prefix="volley-mxsink-")
        self.out_path = os.path.join(self.tmp, "stdout")
        self.err_path = os.path.join(self.tmp, "stderr")
        self.host, self.save_dir, self.exit_stats = host, save_dir, None
        listen = ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)
        cmd = [volley_bin(), "sink", "--listen", listen, "--json"]
        if save_dir:
            cmd += ["--save", save_dir]
        cmd += list(args)
        with open(self.out_path, "wb") as o, open(self.err_path, "wb") as e:
            self.proc = subprocess.Popen(cmd, stdout=o, stderr=e)
        self.addrs, self.start_ok = [], False
        end = time.monotonic() + sink_lib.START_TIMEOUT_S
        while time.monotonic() < end:
            m = re.search(r"sink: listening on (\S+):(\d+)", self.stdout())
            if m:
                self.addrs, self.start_ok = [(m.group(1).strip("[]"), int(m.group(2)))], True
                return
            if self.proc.poll() is not None:
                return
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        fail("sink on %s did not report its listener" % host)

    @property
    def port(self):
        return self.addrs[0][1]

    def stop_stats(self):
        """Stop (SIGTERM, bounded) and return the exit stats (the why=exit JSON line)."""
        if self.exit_stats is None:
            rc = self.stop()
            check(rc == 0, "sink %s exited %s" % (self.host, rc))
            lines = [json.loads(l) for l in self.final_stdout.splitlines() if l.startswith("{")]
            ex = [s for s in lines if s.get("event") == "stats" and s.get("why") == "exit"]
            check(ex, "sink %s printed no exit stats" % self.host)
            self.exit_stats = ex[-1]
        return self.exit_stats


def read_saved(save_dir):
    """The sink's --save files (only complete *.eml): list of dicts with
    mail_from, rcpts (list), content (bytes), file."""
    out = []
    if not save_dir or not os.path.isdir(save_dir):
        return out
    for name in sorted(os.listdir(save_dir)):
        if not name.endswith(".eml"):
            continue
        with open(os.path.join(save_dir, name), "rb") as f:
            raw = f.read()
        mail_from, rcpts, pos = None, [], 0
        while True:
            nl = raw.find(b"\n", pos)
            if nl < 0:
                break
            line = raw[pos:nl].rstrip(b"\r").decode(errors="replace")
            if line.startswith("X-Volley-Mail-From:"):
                mail_from = line.split(":", 1)[1].strip().strip("<>")
            elif line.startswith("X-Volley-Rcpt-To:"):
                rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
            else:
                break
            pos = nl + 1
        out.append({"file": name, "mail_from": mail_from, "rcpts": rcpts, "content": raw[pos:]})
    return out


class Env:
    """One test's world: temp dir, sinks by host, dnsmasq, queue dir, log file."""

    def __init__(self, shards=2):
        need_tools()
        # tmpfs when there is one: every enqueue and commit fsyncs
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.tmp = tempfile.mkdtemp(prefix="volley-deliver-", dir=base)
        self.data = os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "delivery.json")
        self.shards = shards
        self.sinks = {}
        self.port = None
        self.dns_pid, self.dns_port = None, None
        self.nmsg = 0
        self.allow_dest = ["--allow-dest", "loopback"]   # [] = volley's default policy

    # --- sinks ---------------------------------------------------------
    def start_sinks(self, hosts, save=True):
        """hosts: {"127.0.0.x": [sink args]}; all listen on one port (returned),
        picked free on the first host and retried (bounded) if another is taken."""
        for _ in range(8):
            port, started, ok = 0, {}, True
            for host, args in hosts.items():
                sd = None
                if save:
                    sd = os.path.join(self.tmp, "save-" + host)
                    os.makedirs(sd, exist_ok=True)
                s = MxSink(host, port, args, sd)
                if not s.start_ok:
                    err = s.stderr()
                    s.stop()
                    if port == 0:
                        fail("sink on %s could not start: %s" % (host, err))
                    ok = False
                    break
                started[host] = s
                port = s.port
            if ok:
                self.sinks.update(started)
                self.port = port
                return port
            for s in started.values():
                s.stop()
            for host in hosts:
                shutil.rmtree(os.path.join(self.tmp, "save-" + host), ignore_errors=True)
        fail("could not find one free port for sinks on %s" % list(hosts))

    def stop_sink(self, host):
        return self.sinks[host].stop_stats()

    def saved(self, host):
        return read_saved(self.sinks[host].save_dir)

    # --- DNS -----------------------------------------------------------
    def start_dns(self, mx=None, lines=(), defaults=True):
        """dnsmasq via scripts/dnsmasq.sh (default zone unless defaults=False) plus
        mx = {domain: [(pref, host, ip)]} (ip None = no A record; host "." = null MX)."""
        extra = list(lines)
        for dom, recs in (mx or {}).items():
            for pref, host, ip in recs:
                extra.append("mx-host=%s,%s,%d" % (dom, host, pref))
                if ip:
                    extra.append("host-record=%s,%s" % (host, ip))
        ddir = os.path.join(self.tmp, "dns")
        os.makedirs(ddir, exist_ok=True)
        cmd = ["bash", os.path.join(src_root(), "scripts", "dnsmasq.sh"), "--dir", ddir,
               "--watch", str(os.getpid())]
        if not defaults:
            cmd.append("--no-defaults")
        r = subprocess.run(cmd + extra, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "dnsmasq.sh failed (%d): %s" % (r.returncode, r.stderr))
        pid, port = r.stdout.split()
        self.dns_pid, self.dns_port = int(pid), int(port)
        return self.dns_port

    # --- volley --------------------------------------------------------
    def volley(self, *args, timeout=RUN_TIMEOUT_S, stdin=None, env=None):
        """Run `volley ARGS` (bounded; env: extra environment, e.g. VOLLEY_LOG);
        returns CompletedProcess (text)."""
        penv = dict(os.environ, **env) if env else None
        try:
            return subprocess.run([volley_bin()] + [str(a) for a in args], capture_output=True,
                                  text=True, timeout=timeout, input=stdin, env=penv)
        except subprocess.TimeoutExpired as e:  # run() has killed it by now
            fail("volley %s: no exit within %.0f s; stderr: %s" % (" ".join(map(str, args)), timeout,
                                                                   e.stderr))

    def write_msg(self, content):
        self.nmsg += 1
        p = os.path.join(self.tmp, "msg-%d.eml" % self.nmsg)
        with open(p, "wb") as f:
            f.write(content)
        return p

    def write_rcpts(self, rcpts):
        p = os.path.join(self.tmp, "rcpts-%d.txt" % self.nmsg)
        with open(p, "w") as f:
            f.write("".join(r + "\n" for r in rcpts))
        return p

    def enqueue(self, mail_from, rcpts, content=None):
        """Queue one message for rcpts; returns its queue id."""
        msg = self.write_msg(content if content is not None else message())
        r = self.volley("enqueue", "--data", self.data, "--shards", self.shards, "--from",
                        mail_from, "--rcpts", self.write_rcpts(rcpts), msg)
        check(r.returncode == 0, "enqueue exited %d: %s" % (r.returncode, r.stderr))
        m = re.search(r"queued (\w+) for (\d+) recipients?", r.stdout)
        check(m and int(m.group(2)) == len(rcpts), "enqueue output: %r" % r.stdout)
        return m.group(1)

    def enqueue_many(self, items, jobs=4):
        """items: [(mail_from, rcpts, content)]; up to jobs `volley enqueue` at once
        (each one fsyncs, so serial enqueues are slow). Returns the queue ids in order."""
        procs, ids = [], [None] * len(items)
        end = time.monotonic() + RUN_TIMEOUT_S * max(1, len(items) // 100)
        pending = list(enumerate(items))
        try:
            while (pending or procs) and time.monotonic() < end:
                while pending and len(procs) < jobs:
                    i, (mail_from, rcpts, content) = pending.pop(0)
                    msg = self.write_msg(content if content is not None else message())
                    cmd = [volley_bin(), "enqueue", "--data", self.data, "--shards",
                           str(self.shards), "--from", mail_from, "--rcpts",
                           self.write_rcpts(rcpts), msg]
                    procs.append((i, len(rcpts), subprocess.Popen(
                        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
                i, n, p = procs.pop(0)
                out, err = p.communicate(timeout=max(0.1, end - time.monotonic()))
                check(p.returncode == 0, "enqueue exited %d: %s" % (p.returncode, err))
                m = re.search(r"queued (\w+) for (\d+) recipients?", out)
                check(m and int(m.group(2)) == n, "enqueue output: %r" % out)
                ids[i] = m.group(1)
        finally:
            for _, _, p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        check(None not in ids, "enqueue_many: not all enqueued in time")
        return ids

    def route_args(self):
        """--dns/--mx-port for the started dnsmasq and sinks, and the destination
        policy (self.allow_dest, default --allow-dest loopback: the sinks listen
        on 127.0.0.x, which volley refuses by default)."""
        check(self.dns_port and self.port, "start_dns and start_sinks first")
        return ["--dns", "127.0.0.1:%d" % self.dns_port, "--mx-port", self.port,
                *self.allow_dest]

    def run(self, *args, timeout=RUN_TIMEOUT_S, expect_rc="queue", env=None):
        """`volley run --data Q --until-empty --quiet --log L` + route + args.
        expect_rc "queue": the exit code must tell what the run left (issue
        10): 3 if recipients are still queued (ready or deferred), else 0."""
        r = self.volley("run", "--data", self.data, "--until-empty", "--quiet", "--log",
                        self.log_path, "--shards", self.shards, *self.route_args(), *args,
                        timeout=timeout, env=env)
        if expect_rc == "queue":
            st = self.queue_stats()
            expect_rc = 3 if st["ready"] + st["deferred"] else 0
        if expect_rc is not None:
            check(r.returncode == expect_rc, "volley run exited %d (want %d): %s%s" %
                  (r.returncode, expect_rc, r.stdout, r.stderr))
        return r

    def send(self, mail_from, rcpts, content=None, *args, timeout=RUN_TIMEOUT_S):
        """`volley send` (enqueue + deliver); returns CompletedProcess."""
        msg = self.write_msg(content if content is not None else message())
        return self.volley("send", "--data", self.data, "--shards", self.shards, "--from",
                           mail_from, "--rcpts", self.write_rcpts(rcpts), "--quiet", "--log",
                           self.log_path, *self.route_args(), *args, msg, timeout=timeout)

    def log(self):
        """The delivery log: list of dicts (every line must be JSON)."""
        if not os.path.exists(self.log_path):
            return []
        out = []
        with open(self.log_path) as f:
            for i, line in enumerate(f):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    fail("delivery log line %d is not JSON: %r" % (i + 1, line))
        return out

    def queue_stats(self):
        r = self.volley("queue", "--data", self.data, "stats", "--json")
        check(r.returncode == 0, "queue stats exited %d: %s" % (r.returncode, r.stderr))
        return json.loads(r.stdout)

    # --- cleanup -------------------------------------------------------
    def close(self):
        """Stop every sink and dnsmasq by PID, remove the temp dir. Never raises."""
        for s in self.sinks.values():
            try:
                if s.proc.poll() is None:
                    s.proc.send_signal(signal.SIGTERM)
                    try:
                        s.proc.wait(timeout=SINK_STOP_TIMEOUT_S)
                    except subprocess.TimeoutExpired:
                        s.proc.kill()
                        s.proc.wait()
                shutil.rmtree(s.tmp, ignore_errors=True)
            except Exception:
                pass
        if self.dns_pid:
            try:
                os.kill(self.dns_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.dns_pid = None
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- checks shared by the tests ---------------------------------------------
def by_event(log, event, prefix=None):
    return [e for e in log if e.get("event") == event and
            (prefix is None or e.get("rcpt", "").startswith(prefix))]


def check_exactly_once(log, saved, want_rcpts, what):
    """Every address of want_rcpts: one 'delivered' log line and exactly one
    RCPT across the saved files; nothing else delivered or saved."""
    want = sorted(r.lower() for r in want_rcpts)
    got_log = sorted(e["rcpt"].lower() for e in by_event(log, "delivered"))
    got_saved = sorted(r.lower() for s in saved for r in s["rcpts"])
    if got_log != want:
        missing = sorted(set(want) - set(got_log))[:5]
        extra = sorted(set(got_log) - set(want))[:5]
        dup = len(got_log) - len(set(got_log))
        fail("%s: delivered log lines %d, want %d (missing %s, extra %s, duplicates %d)" %
             (what, len(got_log), len(want), missing, extra, dup))
    if got_saved != want:
        missing = sorted(set(want) - set(got_saved))[:5]
        dup = len(got_saved) - len(set(got_saved))
        fail("%s: saved RCPTs %d, want %d (missing %s, duplicates %d)" %
             (what, len(got_saved), len(want), missing, dup))


def run_cases(cases):
    """cases: [(name, fn)]; run each (fn gets a fresh Env), report, exit 1 on any failure."""
    failed = []
    only = os.environ.get("DELIVER_CASE")
    names = [name for name, _ in cases]
    if only and only not in names:
        fail("DELIVER_CASE=%s names no case; the cases are: %s" % (only, ", ".join(names)))
    for name, fn in cases:
        if only and only != name:
            continue
        t0 = time.monotonic()
        env = Env()
        try:
            fn(env)
            print("ok   %-28s %.1fs" % (name, time.monotonic() - t0), flush=True)
        except SystemExit:
            failed.append(name)
            print("FAIL %-28s %.1fs" % (name, time.monotonic() - t0), flush=True)
        finally:
            env.close()
    if failed:
        print("failed: %s" % ", ".join(failed))
        sys.exit(1)
