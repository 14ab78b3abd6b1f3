"""commit_crash.py - kill -9 `volley run` at random moments while outcomes are
being committed, restart, repeat; then finish the queue and check:

  * each failed (550) recipient is reported in exactly one DSN (one distinct
    DSN Message-ID; a DSN may be re-sent whole, inside the window below);
  * no recipient is sent again after its delivery was committed: every save
    of a recipient happens in or before the run that logged it delivered (the
    log is written only after the commit), and in no run after;
  * re-sends happen only inside the window "remote 250 received, commit not
    yet done": a recipient saved in a run that logged nothing for it must be a
    run that was killed, and at most once per killed run;
  * nothing is lost, and the queue counted each recipient final exactly once.

Seed: COMMIT_CRASH_SEED (default: time), printed so a failure can be replayed.
Every wait is bounded; processes are stopped by PID."""
import os
import random
import re
import signal
import subprocess
import sys
import time
from email import message_from_bytes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import Env, check, fail, message, read_saved, volley_bin  # noqa: E402
from retry_lib import DST, RET, SENDER, setup, run_until_final  # noqa: E402

MSGS, RCPTS = 60, 8          # 480 recipients; 2 of each message's 8 get 550
KILLS = 10
RUN_TIMEOUT_S = 60.0


def enqueue_all(env):
    items, ok, failed = [], [], []
    for m in range(MSGS):
        rc = ["m%d.r%d@dst.test" % (m, r) for r in range(RCPTS - 2)]
        fr = ["fail.m%d.r%d@dst.test" % (m, r) for r in range(2)]
        items.append((SENDER, rc + fr, message(subject="crash %d" % m, from_addr=SENDER)))
        ok += rc
        failed += fr
    env.enqueue_many(items)
    return ok, failed


def run_cmd(env):
    return [volley_bin(), "run", "--data", env.data, "--until-empty", "--quiet", "--log",
            env.log_path, "--shards", str(env.shards), *map(str, env.route_args()),
            "--conns-per-dest", "2", "--retry-base", "1s"]


class Runs:
    """Which run each log segment and each saved file belongs to."""

    def __init__(self, env):
        self.env = env
        self.seen = {DST: set(), RET: set()}
        self.saves = []         # (run, host, saved dict)
        self.lines = []         # (run, log dict)
        self.torn = 0           # killed runs whose last log line was cut
        self.killed = set()
        self.log_off = 0
        self.n = 0

    def collect(self, killed):
        run = self.n
        self.n += 1
        if killed:
            self.killed.add(run)
        time.sleep(0.2)          # a sink may still finish what it accepted
        for host in (DST, RET):
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
            check(killed, "run %d (not killed) left a torn log line" % run)
            self.torn += 1
            fail("torn log line: the next run would append to it; rerun with the seed")
        import json
        for p in parts[:-1]:
            self.lines.append((run, json.loads(p)))


def crash_loop(env, runs, rnd):
    for i in range(KILLS):
        p = subprocess.Popen(run_cmd(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # The first kills come early (the work takes >= 0.75 s: 60 messages,
        # 25 ms DATA delay, 2 connections), so at least 3 runs are killed
        # mid-work however fast the machine is; later ones anywhere.
        delay = rnd.uniform(0.05, 0.2) if i < 3 else rnd.uniform(0.05, 0.4)
        try:
            p.wait(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
            killed = True
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
        # 3: done with recipients still queued (deferred): the loop goes on
        check(killed or p.returncode in (0, 3), "volley run exited %s: %s" % (p.returncode, err))
        runs.collect(killed)
        if not killed and env.queue_stats()["ready"] + env.queue_stats()["deferred"] == 0:
            break


def dsn_index(runs):
    """{dsn Message-ID: set(failed rcpts)} and how often each DSN was saved."""
    by_id, sent = {}, {}
    for _, host, s in runs.saves:
        if host != RET:
            continue
        check(s["mail_from"] == "" and s["rcpts"] == [SENDER], "DSN envelope %r" % s["rcpts"])
        msg = message_from_bytes(s["content"])
        mid = msg["Message-ID"]
        rcpts = set(re.findall(r"Final-Recipient: rfc822; ?(\S+)", s["content"].decode()))
        check(rcpts, "DSN %s without Final-Recipient" % s["file"])
        check(by_id.get(mid, rcpts) == rcpts, "DSN %s re-sent with other content" % mid)
        by_id[mid] = rcpts
        sent[mid] = sent.get(mid, 0) + 1
    return by_id, sent


def check_dsns(runs, failed):
    by_id, sent = dsn_index(runs)
    count = {}
    for rcpts in by_id.values():
        for r in rcpts:
            count[r] = count.get(r, 0) + 1
    bad = [r for r in failed if count.get(r, 0) != 1]
    check(not bad, "failed recipients without exactly one DSN: %r" %
          [(r, count.get(r, 0)) for r in bad[:5]])
    extra = set(count) - set(failed)
    check(not extra, "DSNs name recipients that did not fail: %r" % sorted(extra)[:5])
    return len(by_id), sum(v - 1 for v in sent.values())


def check_no_resend(runs, ok):
    """Per recipient: saves only up to the run that logged it delivered."""
    logged = {}
    for run, e in runs.lines:
        if e["event"] == "delivered" and e["rcpt"] != SENDER:     # not the DSNs
            check(e["rcpt"] not in logged, "%s logged delivered twice" % e["rcpt"])
            logged[e["rcpt"]] = run
    saves = {}
    for run, host, s in runs.saves:
        if host == DST:
            for r in s["rcpts"]:
                saves.setdefault(r, []).append(run)
    resent, unlogged = 0, 0
    for r in ok:
        sv = saves.get(r, [])
        check(sv, "%s never delivered" % r)
        k = logged.get(r)
        if k is None:
            # committed, then killed before its log line was written
            check(sv[-1] in runs.killed, "%s: no delivered line, last save in run %d" %
                  (r, sv[-1]))
            unlogged += 1
            k = sv[-1]
        check(all(j <= k for j in sv), "%s sent again after its commit: saves in runs %r, "
              "committed in run %d" % (r, sv, k))
        check(sv.count(k) == 1, "%s saved %d times in run %d" % (r, sv.count(k), k))
        early = [j for j in sv if j < k]
        check(all(j in runs.killed for j in early), "%s re-sent after a clean run: %r" % (r, sv))
        check(len(early) == len(set(early)), "%s saved twice within one killed run" % r)
        resent += len(early)
    return resent, unlogged


def main():
    seed = int(os.environ.get("COMMIT_CRASH_SEED", str(int(time.time()))))
    print("seed %d (COMMIT_CRASH_SEED to replay)" % seed, flush=True)
    rnd = random.Random(seed)
    env = Env()
    try:
        setup(env, ["--fault", "rcpt=550:match=fail", "--delay", "data=25ms"],
              ["--delay", "data=25ms"])
        ok, failed = enqueue_all(env)
        runs = Runs(env)
        crash_loop(env, runs, rnd)
        for _ in range(20):      # finish cleanly (bounded)
            p = subprocess.run(run_cmd(env), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
            check(p.returncode in (0, 3), "final run exited %d: %s" % (p.returncode, p.stderr))
            runs.collect(False)
            if env.queue_stats()["ready"] + env.queue_stats()["deferred"] == 0:
                break
            time.sleep(0.5)
        check(len(runs.killed) >= 3, "only %d runs were killed: the work is too short" %
              len(runs.killed))
        st = env.queue_stats()
        check(st["ready"] + st["deferred"] == 0, "queue not empty at the end: %r" % st)
        ndsn, dsn_resent = check_dsns(runs, failed)
        resent, unlogged = check_no_resend(runs, ok)
        check(st["bounced"] == len(failed), "queue bounced %d, want %d" % (st["bounced"],
                                                                          len(failed)))
        check(st["delivered"] == len(ok) + ndsn, "queue delivered %d, want %d + %d DSNs" %
              (st["delivered"], len(ok), ndsn))
        print("ok: %d runs (%d killed), %d recipients, %d DSNs; re-sent in the window: %d "
              "recipients, %d DSNs; committed but log line lost: %d" %
              (runs.n, len(runs.killed), len(ok) + len(failed), ndsn, resent, dsn_resent,
               unlogged))
    finally:
        env.close()


if __name__ == "__main__":
    main()
