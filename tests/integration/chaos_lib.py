"""chaos_lib.py - what tests/integration/chaos.py builds on: a zone of several
recipient domains on faulty sinks plus the return path's sink (DSNs), a
bounded runner for `volley run --until-empty` (kill -9 after a delay, or a
bound that turns a run that does not end into a reported hang), attribution
of every saved copy and log line to the run that produced it, and the
end-of-run checks. Checks collect problems (Problems) instead of stopping at
the first one, so a failing run still prints all its figures.

The duplicate window (DESIGN.md): "the remote said 250 to the final dot and
the commit of 'delivered' had not finished". A run is BROKEN when it was
killed (by the test, or by the hang bound) or hit a commit failure (exit code
not 0, or 'commit_failed' on its stderr). A recipient may be saved again only
after a save in a broken run, at most once per broken run, and never after
the run that committed it (the log line is written after the commit).

Every wait is bounded; processes are started here and stopped by PID."""
import json
import os
import signal
import subprocess
import sys
import time
from email import message_from_bytes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import check, fail, read_saved, volley_bin  # noqa: E402,F401

RET = "127.0.0.3"                  # the return path's sink: DSNs
SENDER = "sender@ret.test"
DST_HOSTS = ["127.0.0.%d" % (40 + i) for i in range(3)]
SETTLE_S = 0.45                    # > the longest sink delay: a killed run's saves are in
STOP_GRACE_S = 10.0


def zone(ndomains):
    """{domain: [(pref, host, ip)]}: d0..d{n-1}.test over DST_HOSTS, ret.test -> RET."""
    z = {"d%d.test" % d: [(10, "mx.d%d.test" % d, DST_HOSTS[d % len(DST_HOSTS)])]
         for d in range(ndomains)}
    z["ret.test"] = [(10, "mx.ret.test", RET)]
    return z


class Problems:
    """Invariant violations, collected by kind; .done(what) fails with all of
    them (the first DETAIL_MAX of each kind spelled out, the rest counted)."""
    DETAIL_MAX = 4

    def __init__(self):
        self.kinds = {}            # kind -> [msg]

    def add(self, cond, msg, kind=None):
        if not cond:
            self.kinds.setdefault(kind or msg, []).append(msg)
        return cond

    def done(self, what):
        if not self.kinds:
            return
        out = []
        for msgs in self.kinds.values():
            out += msgs[:self.DETAIL_MAX]
            if len(msgs) > self.DETAIL_MAX:
                out.append("... and %d more like the above" % (len(msgs) - self.DETAIL_MAX))
        fail("%s: %d problem(s):\n  %s" % (what, sum(map(len, self.kinds.values())),
                                           "\n  ".join(out)))


class Runs:
    """Runs of `volley run` against env; which run each saved file and each
    delivery-log line belongs to; per run: how it ended."""

    def __init__(self, env, args, problems):
        self.env, self.args, self.pb = env, list(args), problems
        self.hosts = list(env.sinks)
        self.seen = {h: set() for h in self.hosts}
        self.saves = []            # (run, host, saved dict)
        self.lines = []            # (run, log dict)
        self.info = []             # per run: dict(kind, rc, secs, commit_failed, err)
        self.log_off = 0

    def add_host(self, host):
        """A sink started after the runs began (env.sinks[host])."""
        self.hosts.append(host)
        self.seen[host] = set()

    def cmd(self):
        return [volley_bin(), "run", "--data", self.env.data, "--until-empty", "--quiet",
                "--log", self.env.log_path, "--shards", str(self.env.shards),
                *map(str, self.env.route_args()), *map(str, self.args)]

    def run(self, kill_after=None, bound_s=30.0, expect_ok=True):
        """One run: SIGKILL after kill_after seconds if still running, else wait
        up to bound_s (then SIGKILL it and record a hang). A run that ends by
        itself must exit 0 (expect_ok) and log no commit failure. Returns its info."""
        n = len(self.info)
        err_path = os.path.join(self.env.tmp, "run-%d.err" % n)
        t0 = time.monotonic()
        with open(err_path, "wb") as ef:
            p = subprocess.Popen(self.cmd(), stdout=subprocess.DEVNULL, stderr=ef)
        kind = "clean"
        try:
            p.wait(timeout=kill_after if kill_after is not None else bound_s)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            kind = "killed" if kill_after is not None else "hang"
        finally:
            try:
                p.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                fail("volley run (pid %d) did not die on SIGKILL" % p.pid)
        secs = time.monotonic() - t0
        with open(err_path, "r", errors="replace") as f:
            err = f.read()
        info = {"n": n, "kind": kind, "rc": p.returncode, "secs": secs,
                "commit_failed": err.count("evt=commit_failed"), "err": err}
        # 3: finished with recipients still queued (deferred): a clean end too
        if kind == "clean" and p.returncode not in (0, 3):
            kind = info["kind"] = "failed"
        self.info.append(info)
        last = (err.strip().splitlines() or [""])[-1]
        self.pb.add(kind != "hang", "run %d did not exit within %.0f s (hang); %d commit "
                    "failures on its stderr; last line: %s" % (n, bound_s, info["commit_failed"],
                                                               last))
        if expect_ok and kind != "hang":
            self.pb.add(kind != "failed" and not info["commit_failed"],
                        "run %d exited %d with %d commit failures; last stderr line: %s" %
                        (n, p.returncode, info["commit_failed"], last))
        self.collect(n, kind in ("killed", "hang"))
        return info

    def broken(self, run):
        i = self.info[run]
        return i["kind"] != "clean" or i["commit_failed"] > 0

    def why(self, run):
        i = self.info[run]
        if i["kind"] in ("killed", "hang"):
            return i["kind"]
        return "commit failure" if i["commit_failed"] or i["rc"] not in (0, 3) else "clean"

    def collect(self, run, killed):
        time.sleep(SETTLE_S)       # a sink finishes what it answered before the kill
        for host in self.hosts:
            for s in read_saved(self.env.sinks[host].save_dir):
                if s["file"] not in self.seen[host]:
                    self.seen[host].add(s["file"])
                    self.saves.append((run, host, s))
        if not os.path.exists(self.env.log_path):
            return
        with open(self.env.log_path, "rb") as f:
            f.seek(self.log_off)
            seg = f.read()
        self.log_off += len(seg)
        parts = seg.split(b"\n")
        if parts[-1]:
            self.pb.add(False, "run %d (%s) left a torn log line %r" % (run, "killed" if killed
                                                                         else "not killed",
                                                                         parts[-1][:80]))
        for p in parts[:-1]:
            try:
                self.lines.append((run, json.loads(p)))
            except ValueError:
                self.pb.add(False, "run %d: log line is not JSON: %r" % (run, p[:120]))

    def open_count(self):
        st = self.env.queue_stats()
        return st["ready"] + st["deferred"]

    def finish(self, rounds_max, bound_s, sleep_s=0.3):
        """Runs to completion: until nothing is ready or deferred (bounded)."""
        for _ in range(rounds_max):
            self.run(bound_s=bound_s)
            if self.open_count() == 0:
                return True
            time.sleep(sleep_s)
        return self.pb.add(False, "recipients still open after %d finishing runs: %r" %
                           (rounds_max, self.env.queue_stats()))


# --- checks --------------------------------------------------------------------
def check_saves(runs, what, saves_by_key, committed_run, fig):
    """saves_by_key: {key: [run, ...]} (in run order); committed_run: {key: run
    that logged it final} (may lack keys), None when there is no log to go by
    (the DSNs: the last save counts as the committed one). Adds problems;
    counts duplicates by where they fell into fig['dup_in'] / fig['dup_out']
    ({why: count})."""
    for key, sv in saves_by_key.items():
        k = committed_run.get(key) if committed_run is not None else sv[-1]
        if k is None:
            k = sv[-1]             # committed, then its log line was lost (or never)
            fig["unlogged"] = fig.get("unlogged", 0) + 1
            runs.pb.add(runs.broken(k), "%s %s: saved but never logged final; last save in "
                        "run %d (%s)" % (what, key, k, runs.why(k)), what + " unlogged")
        late = [j for j in sv if j > k]
        if not runs.pb.add(not late, "%s %s sent again after its commit: saves in runs %r, "
                           "committed in run %d" % (what, key, sv, k), what + " late"):
            fig["dup_out"]["after commit"] = fig["dup_out"].get("after commit", 0) + len(late)
        runs.pb.add(k in sv, "%s %s logged final in run %d without a save there: %r" %
                    (what, key, k, sv), what + " nosave")
        for j in sorted(set(x for x in sv if x <= k)):
            c = sv.count(j)
            # allowed: one copy in run k (the committed one), and one in each
            # earlier broken run (its 250 came, its commit did not)
            allowed = 1 if (j == k or runs.broken(j)) else 0
            if j != k and allowed:
                w = "run %d %s" % (j, runs.why(j))
                fig["dup_in"][w] = fig["dup_in"].get(w, 0) + 1
            if c > allowed:
                w = "run %d %s, %d copies in one run" % (j, runs.why(j), c)
                fig["dup_out"][w] = fig["dup_out"].get(w, 0) + c - allowed
                runs.pb.add(False, "%s %s: %d copies saved in run %d (%s), committed in run "
                            "%d: outside the window" % (what, key, c, j, runs.why(j), k),
                            what + " dup")


def selftest():
    """The attribution must refuse what is outside the window (a test that
    cannot fail proves nothing): fail() unless each bad pattern is caught."""
    def fake(kinds):
        r = Runs.__new__(Runs)
        r.pb = Problems()
        r.info = [{"n": i, "kind": k, "rc": 0 if k == "clean" else -9, "commit_failed": 0}
                  for i, k in enumerate(kinds)]
        return r
    cases = [  # (run kinds, saves, logged run, problems wanted)
        (["killed", "clean"], [0, 1], 1, 0),      # re-sent after a kill: in the window
        (["clean", "clean"], [0, 1], 1, 1),       # re-sent after a clean run
        (["killed", "clean"], [1, 1], 1, 1),      # two copies in the committing run
        (["killed", "killed", "clean"], [0, 0, 2], 2, 1),   # two copies in one killed run
        (["clean", "clean", "clean"], [1, 2], 1, 1),        # sent after its commit
        (["clean"], [0], None, 1),                # never logged, last save in a clean run
        (["killed"], [0], None, 0),               # committed, log line lost in the kill
    ]
    for kinds, sv, k, want in cases:
        r = fake(kinds)
        fig = {"dup_in": {}, "dup_out": {}}
        check_saves(r, "selftest", {"x": sv}, {"x": k} if k is not None else {}, fig)
        got = sum(map(len, r.pb.kinds.values()))
        check(got == want, "chaos_lib selftest: runs %r saves %r logged %r: %d problems, want "
              "%d (%r)" % (kinds, sv, k, got, want, r.pb.kinds))


def check_recipients(runs, ok, bad, fig):
    """ok: must each end delivered; bad: must each bounce (never saved)."""
    pb = runs.pb
    logged, bounced = {}, {}
    for run, e in runs.lines:
        r = e.get("rcpt")
        if r == SENDER:
            continue               # the DSNs: checked by Message-ID
        if e["event"] == "delivered":
            pb.add(r not in logged, "%s logged delivered twice (runs %s and %d)" %
                   (r, logged.get(r), run), "logged twice")
            logged.setdefault(r, run)
        elif e["event"] == "bounced":
            pb.add(r not in bounced, "%s logged bounced twice" % r, "bounced twice")
            bounced.setdefault(r, run)
        elif e["event"] == "expired":
            pb.add(False, "%s expired: %r" % (r, e), "expired")
    saves, okset, badset = {}, set(ok), set(bad)
    for run, host, s in runs.saves:
        if host == RET:
            continue
        for r in s["rcpts"]:
            saves.setdefault(r, []).append(run)
    lost = [r for r in ok if r not in saves]
    pb.add(not lost, "%d recipients never delivered (lost), e.g. %r" % (len(lost), lost[:5]))
    stray = sorted(r for r in saves if r not in okset)
    pb.add(not stray, "saved recipients that should not be: %r" % stray[:5])
    pb.add(set(logged) <= okset, "delivered lines for %r" % sorted(set(logged) - okset)[:5])
    pb.add(set(bounced) <= badset, "bounced lines for %r" % sorted(set(bounced) - badset)[:5])
    fig["copies"] = sum(len(v) for k, v in saves.items() if k in okset)
    check_saves(runs, "recipient", {r: v for r, v in saves.items() if r in okset}, logged, fig)


def dsn_saves(runs, bad, fig):
    """Parse every DSN with the email package: {Message-ID: [runs]} and the
    failed recipients each names. Every bounce in exactly one distinct DSN."""
    pb = runs.pb
    by_id, saves = {}, {}
    for run, host, s in runs.saves:
        if host != RET:
            continue
        pb.add(s["mail_from"] == "" and s["rcpts"] == [SENDER], "DSN %s envelope %r %r" %
               (s["file"], s["mail_from"], s["rcpts"]), "dsn envelope")
        msg = message_from_bytes(s["content"])
        mid = msg["Message-ID"]
        rcpts = set()
        if msg.is_multipart():
            for part in msg.walk():
                if part.get_content_type() == "message/delivery-status":
                    for blk in part.get_payload():
                        fr = blk.get("Final-Recipient", "")
                        if ";" in fr:
                            rcpts.add(fr.split(";", 1)[1].strip())
        pb.add(mid and rcpts, "DSN %s: no Message-ID or no Final-Recipient" % s["file"],
               "dsn fields")
        pb.add(by_id.get(mid, rcpts) == rcpts, "DSN %s re-sent with other recipients" % mid,
               "dsn changed")
        by_id[mid] = rcpts
        saves.setdefault(mid, []).append(run)
    count = {}
    for rcpts in by_id.values():
        for r in rcpts:
            count[r] = count.get(r, 0) + 1
    none = [r for r in bad if count.get(r, 0) == 0]
    many = [r for r in bad if count.get(r, 0) > 1]
    pb.add(not none, "%d bounced recipients in no DSN, e.g. %r" % (len(none), none[:4]))
    pb.add(not many, "%d bounced recipients in several DSNs, e.g. %r" %
           (len(many), [(r, count[r]) for r in many[:4]]))
    extra = set(count) - set(bad)
    pb.add(not extra, "DSNs name recipients that did not fail: %r" % sorted(extra)[:5])
    fig["dsns"] = len(by_id)
    fig["dsn_copies"] = sum(len(v) for v in saves.values())
    fig["dsn_missing"], fig["dsn_multi"] = len(none), len(many)
    fig["dsn_max"] = max(map(len, by_id.values()), default=0)
    # A DSN is one queued message: its re-sends follow the recipient rule.
    dfig = {"dup_in": {}, "dup_out": {}}
    check_saves(runs, "DSN", saves, None, dfig)
    fig["dsn_dup_in"], fig["dsn_dup_out"] = dfig["dup_in"], dfig["dup_out"]
    return len(by_id)


def check_counters(runs, ok, bad, ndsn):
    """`volley queue stats --json`: empty, and delivered/bounced exact."""
    st = runs.env.queue_stats()
    pb = runs.pb
    pb.add(st["ready"] == 0 and st["deferred"] == 0, "queue not empty at the end: ready %d "
           "deferred %d" % (st["ready"], st["deferred"]))
    pb.add(st["bounced"] == len(bad), "queue bounced %d, want %d" % (st["bounced"], len(bad)))
    pb.add(st["expired"] == 0, "queue expired %d, want 0" % st["expired"])
    pb.add(st["delivered"] == len(ok) + ndsn, "queue delivered %d, want %d recipients + %d "
           "DSNs" % (st["delivered"], len(ok), ndsn))
    return st


def figures(name, runs, ok, bad, fig, secs):
    kinds = [i["kind"] for i in runs.info]
    cf = [i["n"] for i in runs.info if i["commit_failed"] or i["kind"] == "failed"]

    def where(d):
        return ", ".join("%s: %d" % kv for kv in sorted(d.items())) or "none"
    dup_in, dup_out = sum(fig["dup_in"].values()), sum(fig["dup_out"].values())
    ev = {}
    for _, e in runs.lines:
        ev[e.get("event")] = ev.get(e.get("event"), 0) + 1
    print("%s: %d runs (%d killed, %d hung, %d with commit failures %r), %d recipients "
          "(%d to deliver, %d to bounce), %d saved copies, duplicates %d in the window "
          "[%s], %d outside [%s]; committed but log line lost: %d; DSNs %d (copies %d, "
          "re-sent in the window [%s], outside [%s]; bounces in no DSN %d, in several %d; "
          "most bounces in one DSN %d); log lines %s; %.1f s" %
          (name, len(kinds), kinds.count("killed"), kinds.count("hang"), len(cf), cf,
           len(ok) + len(bad), len(ok), len(bad), fig.get("copies", 0), dup_in,
           where(fig["dup_in"]), dup_out, where(fig["dup_out"]), fig.get("unlogged", 0),
           fig.get("dsns", 0), fig.get("dsn_copies", 0), where(fig["dsn_dup_in"]),
           where(fig["dsn_dup_out"]), fig.get("dsn_missing", 0), fig.get("dsn_multi", 0),
           fig.get("dsn_max", 0), ", ".join("%s %d" % kv for kv in sorted(ev.items())), secs),
          flush=True)


def check_all(name, runs, ok, bad, t0):
    fig = {"dup_in": {}, "dup_out": {}}
    check_recipients(runs, ok, bad, fig)
    ndsn = dsn_saves(runs, bad, fig)
    check_counters(runs, ok, bad, ndsn)
    figures(name, runs, ok, bad, fig, time.monotonic() - t0)
    return fig


def seeded_faults(seed):
    """Sink fault options for the recipient domains (prob= choices seeded)."""
    return ["--seed", str(seed),
            "--fault", "rcpt=550:match=bad",          # 5xx: bounces, a DSN each
            "--fault", "rcpt=451:prob=0.04",
            "--fault", "dot=451:prob=0.04",
            "--disconnect", "dot:prob=0.03",          # no reply to the dot: ambiguous
            "--delay", "data=40ms:prob=0.5",
            "--delay", "dot=150ms:prob=0.4"]
