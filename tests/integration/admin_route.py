"""admin_route.py - operator holds the route applies (issue 15): by MX provider
group and by egress (source) address, through `volley admin` against a
running `volley run --http` that resolves through dnsmasq and delivers to
`volley sink` on 127.0.0.9.

mx:     a.test and b.test have their MX under prov.test, c.test elsewhere:
        suspending the suffix prov.test holds both (deferred, never at the
        sink) while c.test is delivered; the hold survives a restart; after
        resume both arrive. Bounce by MX group and bad values are refused (400).
egress: two egress addresses 127.0.0.2 and 127.0.0.3 in one pool, one message
        per connection: with 127.0.0.2 suspended the sink (--model, per client
        address) sees only 127.0.0.3, also after a restart; after resume both.
        With both suspended the mail waits (no outcome logged, none at the sink)
        and goes after a resume.
egress_pooled: an idle pooled session from an address suspended since is not reused.
send_bench: `volley send` and `volley bench` honour the holds of their data dir; a
        send whose egress pool is all suspended defers (a one-shot run cannot wait).
Run one case with DELIVER_CASE=name."""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import volley_lib  # noqa: E402
from volley_lib import MxSink, check, fail, run_cases, volley_bin  # noqa: E402
import http.client  # noqa: E402

TOKEN = "admin-route-token-0123456789"
WAIT_S = 30.0
QUIET_S = 1.5          # a held destination must stay silent this long
SINK = "127.0.0.9"


class Engine:
    """`volley run --http` on env's queue, dnsmasq and sinks (stopped by PID)."""

    def __init__(self, env, conf=None, extra=()):
        self.env, self.conf, self.extra = env, conf, list(extra)
        self.tok = os.path.join(env.tmp, "token")
        with open(self.tok, "w") as f:
            f.write(TOKEN + "\n")
        self.err_path = os.path.join(env.tmp, "run.err")
        self.proc, self.port = None, None

    def start(self):
        cmd = [volley_bin(), "run", "--data", self.env.data, "--shards", "2", "--quiet",
               "--log", self.env.log_path, "--http", "127.0.0.1:0", "--http-token-file",
               self.tok] + [str(a) for a in self.env.route_args()]
        if self.conf:
            cmd += ["--config", self.conf]
        cmd += self.extra
        self.mark = os.path.getsize(self.err_path) if os.path.exists(self.err_path) else 0
        with open(self.err_path, "ab") as e:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=e,
                                         env=dict(os.environ, VOLLEY_LOG="info"))
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            m = re.search(r"HTTP API on http://127\.0\.0\.1:(\d+)", self.stderr())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                fail("volley run exited at start (%d): %s" % (self.proc.returncode,
                                                              self.stderr()))
            time.sleep(0.02)
        fail("volley run did not report its HTTP API: %s" % self.stderr())

    def stderr(self):
        with open(self.err_path, "rb") as f:
            f.seek(self.mark)
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("volley run did not stop on SIGTERM")
        rc = self.proc.returncode
        self.proc = None
        return rc

    def req(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT_S)
        h = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
        c.request(method, path, body=json.dumps(body).encode() if body else None, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data.decode(errors="replace")

    def inject(self, rcpts):
        st, body = self.req("POST", "/api/inject/v1", {
            "envelope_sender": "s@src.test",
            "content": {"subject": "s", "text_body": "hello {{ email }}"},
            "recipients": [{"email": r} for r in rcpts]})
        check(st == 200 and json.loads(body)["success_count"] == len(rcpts),
              "inject: %d %s" % (st, body))

    def admin(self, *args):
        r = subprocess.run([volley_bin(), "admin"] + list(args) +
                           ["--http", "127.0.0.1:%d" % self.port, "--http-token-file", self.tok],
                           capture_output=True, timeout=60)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def rcpts_at(env):
    return sorted(x for e in env.saved(SINK) for x in e["rcpts"])


def wait_for(pred, what, get):
    end = time.monotonic() + WAIT_S
    got = None
    while time.monotonic() < end:
        got = get()
        if pred(got):
            return got
        time.sleep(0.05)
    fail("%s: have %r" % (what, got))


def case_mx(env):
    env.start_sinks({SINK: []})
    env.start_dns(mx={"a.test": [(10, "mx1.prov.test", SINK)],
                      "b.test": [(10, "mx2.Prov.test", SINK)],
                      "c.test": [(10, "mx.other.test", SINK)],
                      "d.test": [(10, "mxprov.test", SINK)]}, defaults=False)
    eng = Engine(env)
    try:
        eng.start()
        rc, out, err = eng.admin("suspend", "--mx", "Prov.Test", "--note", "provider outage")
        check(rc == 0 and json.loads(out) == {"action": "suspend", "mx": "Prov.Test"},
              "suspend --mx: %d %r %r" % (rc, out, err))
        check("evt=admin action=suspend mx=Prov.Test" in eng.stderr(), "action not logged")
        eng.inject(["x1@a.test", "x2@a.test", "y1@b.test", "z1@c.test", "w1@d.test"])
        # c.test and d.test (mxprov.test: not under prov.test) are not held
        wait_for(lambda g: g == ["w1@d.test", "z1@c.test"], "unheld delivered",
                 lambda: rcpts_at(env))
        time.sleep(QUIET_S)
        check(rcpts_at(env) == ["w1@d.test", "z1@c.test"], "held mail arrived: %r" %
              rcpts_at(env))
        held = sorted((l["rcpt"], l["event"], l.get("reply", "")) for l in env.log()
                      if l.get("domain") in ("a.test", "b.test"))
        want = "suspended by an operator (mx prov.test): provider outage"
        check(len(held) == 3 and all(e == "deferred" and want in rep for _, e, rep in held),
              "log of held: %r" % held)
        # bad input: named, nothing changed
        st, body = eng.req("POST", "/api/v1/admin/bounce?mx=prov.test")
        check(st == 400 and json.loads(body)["field"] == "mx", "bounce by mx: %d %s" % (st, body))
        st, body = eng.req("POST", "/api/v1/admin/suspend?mx=bad%20name")
        check(st == 400 and json.loads(body)["field"] == "mx", "bad mx: %d %s" % (st, body))
        rc, _, err = eng.admin("purge", "--mx", "prov.test")
        check(rc == 2 and "suspend and resume only" in err, "CLI purge --mx: %d %s" % (rc, err))
        # restart: kept (DATA/admin)
        check(eng.stop() in (0, 3), "stop: %s" % eng.stderr())
        eng.start()
        st, body = eng.req("GET", "/api/v1/admin/holds")
        hs = json.loads(body)["holds"]
        check(st == 200 and [(h["action"], h["scope"], h["value"]) for h in hs] ==
              [("suspend", "mx", "prov.test")], "holds after restart: %r" % body)
        eng.inject(["x3@a.test"])
        time.sleep(QUIET_S)
        check(rcpts_at(env) == ["w1@d.test", "z1@c.test"], "held mail arrived after the "
              "restart: %r" % rcpts_at(env))
        rc, out, err = eng.admin("resume", "--mx", "prov.test")
        check(rc == 0 and json.loads(out).get("made_ready", 0) >= 4,
              "resume --mx: %d %r %r" % (rc, out, err))
        wait_for(lambda g: g == ["w1@d.test", "x1@a.test", "x2@a.test", "x3@a.test",
                                 "y1@b.test", "z1@c.test"], "after resume",
                 lambda: rcpts_at(env))
        st, body = eng.req("GET", "/api/v1/admin/holds")
        check(json.loads(body)["holds"] == [], "holds after resume: %s" % body)
    finally:
        eng.close()


EGRESS_CONF = """
egress = { addresses = (
    { ip = "127.0.0.2"; ehlo = "eg2.sender.test"; pool = "p"; },
    { ip = "127.0.0.3"; ehlo = "eg3.sender.test"; pool = "p"; } ); };
shaping = { all = { mx = "e.test"; msgs-per-conn = 1; pool = "p"; }; };
"""


def sink_clients(env, host):
    """Stop the sink on host: {client address: messages delivered}."""
    st = env.stop_sink(host)
    m = st.get("model")
    check(m is not None, "sink %s has no model stats: %r" % (host, st))
    return {ip: a["delivered"] for ip, a in m.items() if a["delivered"]}


def delivered(env):
    return len([l for l in env.log() if l.get("event") == "delivered"])


def case_egress(env):
    # one sink (and domain) per phase, so each phase's client addresses are its own
    sinks = {"e1.test": SINK, "e2.test": "127.0.0.10", "e3.test": "127.0.0.11"}
    model = os.path.join(env.tmp, "count.model")
    with open(model, "w") as f:
        f.write("connections = 1000;\n")            # counts per client, limits nothing
    env.start_sinks({h: ["--model", model] for h in sinks.values()})
    env.start_dns(mx={d: [(10, "mx%s.e.test" % d[1], h)] for d, h in sinks.items()},
                  defaults=False)
    conf = os.path.join(env.tmp, "volley.conf")
    with open(conf, "w") as f:
        f.write(EGRESS_CONF)
    eng = Engine(env, conf)
    n = 6
    try:
        eng.start()
        rc, out, err = eng.admin("suspend", "--egress", "127.0.0.2")
        check(rc == 0 and json.loads(out) == {"action": "suspend", "egress": "127.0.0.2"},
              "suspend --egress: %d %r %r" % (rc, out, err))
        check("evt=admin action=suspend egress=127.0.0.2" in eng.stderr(), "not logged")
        eng.inject(["r%d@e1.test" % i for i in range(n)])
        wait_for(lambda k: k == n, "delivered while 127.0.0.2 suspended", lambda: delivered(env))
        # restart: kept
        check(eng.stop() in (0, 3), "stop: %s" % eng.stderr())
        eng.start()
        eng.inject(["s%d@e2.test" % i for i in range(n)])
        wait_for(lambda k: k == 2 * n, "delivered after the restart", lambda: delivered(env))
        # both suspended: the pool has none left, its mail waits (no outcome at all)
        rc, out, err = eng.admin("suspend", "--egress", "127.0.0.3")
        check(rc == 0, "suspend the second: %d %r %r" % (rc, out, err))
        eng.inject(["t%d@e3.test" % i for i in range(n)])
        time.sleep(QUIET_S)
        check(delivered(env) == 2 * n and not [l for l in env.log()
                                               if l.get("rcpt", "").startswith("t")],
              "mail of a pool with every address suspended got an outcome: %r" %
              [l for l in env.log() if l.get("rcpt", "").startswith("t")])
        # resume both: everything waiting goes, from both addresses
        for ip in ("127.0.0.2", "127.0.0.3"):
            rc, out, err = eng.admin("resume", "--egress", ip)
            check(rc == 0, "resume %s: %d %r %r" % (ip, rc, out, err))
        eng.inject(["u%d@e3.test" % i for i in range(n)])
        wait_for(lambda k: k == 4 * n, "delivered after resume", lambda: delivered(env))
        check(not [l for l in env.log() if l.get("event") != "delivered"],
              "outcomes other than delivered: %r" % [l for l in env.log()
                                                     if l.get("event") != "delivered"])
        st, body = eng.req("POST", "/api/v1/admin/suspend?egress=300.1.1.1")
        check(st == 400 and json.loads(body)["field"] == "egress", "bad ip: %d %s" % (st, body))
        check(eng.stop() in (0, 3), "stop: %s" % eng.stderr())
        got = sink_clients(env, sinks["e1.test"])
        check(got == {"127.0.0.3": n}, "clients while 127.0.0.2 suspended: %r" % got)
        got = sink_clients(env, sinks["e2.test"])
        check(got == {"127.0.0.3": n}, "clients after the restart: %r" % got)
        got = sink_clients(env, sinks["e3.test"])
        check(set(got) == {"127.0.0.2", "127.0.0.3"} and sum(got.values()) == 2 * n,
              "clients after resume: %r" % got)
    finally:
        eng.close()


POOLED_CONF = """
egress = { addresses = (
    { ip = "127.0.0.2"; ehlo = "eg2.sender.test"; pool = "p"; },
    { ip = "127.0.0.3"; ehlo = "eg3.sender.test"; pool = "p"; } ); };
shaping = { all = { mx = "e.test"; conns-per-ip = 1; pool = "p"; }; };
"""


def case_egress_pooled(env):
    """A pooled (idle) session bound to an address suspended since is closed, not
    reused: after the suspension the sink counts no more messages from it."""
    host = "127.0.0.12"
    model = os.path.join(env.tmp, "count.model")
    with open(model, "w") as f:
        f.write("connections = 1000;\n")
    env.start_sinks({host: ["--model", model]})
    env.start_dns(mx={"p.test": [(10, "mxp.e.test", host)]}, defaults=False)
    conf = os.path.join(env.tmp, "volley.conf")
    with open(conf, "w") as f:
        f.write(POOLED_CONF)
    eng = Engine(env, conf, ["--idle", "60s"])      # sessions stay pooled meanwhile
    n = 8
    try:
        eng.start()
        eng.inject(["a%d@p.test" % i for i in range(n)])
        wait_for(lambda k: k == n, "first delivered", lambda: delivered(env))
        st = env.sinks[host].stats()
        before = {ip: a["delivered"] for ip, a in st.get("model", {}).items()}
        check(before.get("127.0.0.2", 0) > 0 and before.get("127.0.0.3", 0) > 0,
              "both addresses should have a pooled session now: %r" % before)
        rc, out, err = eng.admin("suspend", "--egress", "127.0.0.2")
        check(rc == 0, "suspend: %d %r %r" % (rc, out, err))
        eng.inject(["b%d@p.test" % i for i in range(n)])
        wait_for(lambda k: k == 2 * n, "second delivered", lambda: delivered(env))
        check(eng.stop() in (0, 3), "stop: %s" % eng.stderr())
        got = sink_clients(env, host)
        check(got.get("127.0.0.2") == before["127.0.0.2"] and
              got.get("127.0.0.3") == before["127.0.0.3"] + n,
              "after suspending 127.0.0.2 its pooled session was reused: before %r after %r" %
              (before, got))
    finally:
        eng.close()


def case_send_bench(env):
    """`volley send` and `volley bench` on a data dir honour its holds (DATA/admin,
    set through a `volley run --http` stopped since)."""
    env.start_sinks({SINK: []})
    env.start_dns(mx={d: [(10, "mx." + d, SINK)] for d in
                      ("h.test", "k.test", "bench0.example", "bench1.example", "e.test")},
                  defaults=False)
    conf = os.path.join(env.tmp, "volley.conf")
    with open(conf, "w") as f:
        f.write(EGRESS_CONF)
    eng = Engine(env)
    try:
        eng.start()
        for args in (["h.test"], ["bench1.example"], ["--egress", "127.0.0.2"],
                     ["--egress", "127.0.0.3"]):
            rc, out, err = eng.admin("suspend", *args)
            check(rc == 0, "suspend %s: %d %r %r" % (args, rc, out, err))
        check(eng.stop() in (0, 3), "stop: %s" % eng.stderr())
    finally:
        eng.close()
    r = env.send("s@src.test", ["a@h.test", "b@k.test"])
    check(r.returncode == 3, "send left the held recipient queued: exit %d (want 3): %s" %
          (r.returncode, r.stderr))
    check(rcpts_at(env) == ["b@k.test"], "send: sink has %r" % rcpts_at(env))
    held = [l for l in env.log() if l.get("rcpt") == "a@h.test"]
    check(len(held) == 1 and held[0]["event"] == "deferred" and
          "suspended by an operator" in held[0]["reply"], "send log: %r" % held)
    r = env.volley("bench", "--data", env.data, "--messages", "4", "--domains", "2", "--size",
                   "2000", "--shards", env.shards, *env.route_args())
    js = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    check(r.returncode == 1 and js and js[-1]["delivered"] == 2 and js[-1]["deferred"] == 2,
          "bench with bench1.example suspended: exit %d %r %s" % (r.returncode, js, r.stderr))
    check(len(rcpts_at(env)) == 3, "bench: sink has %r" % rcpts_at(env))
    # every egress address of the pool suspended: a one-shot send cannot wait, it defers
    r = env.send("s@src.test", ["x@e.test"], None, "--config", conf)
    held = [l for l in env.log() if l.get("rcpt") == "x@e.test"]
    check(r.returncode == 3 and len(held) == 1 and held[0]["event"] == "deferred" and
          "every egress address of the pool is suspended" in held[0]["reply"],
          "send with its pool suspended: exit %d, log %r: %s" % (r.returncode, held, r.stderr))
    check(len(rcpts_at(env)) == 3, "pool suspended: sink has %r" % rcpts_at(env))


run_cases([("mx", case_mx), ("egress", case_egress), ("egress_pooled", case_egress_pooled),
           ("send_bench", case_send_bench)])
