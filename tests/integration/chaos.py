"""chaos.py - the engine under chaos (issue 9): faulty sinks, kill -9 and a
full disk, then the at-most-once / exactly-one-DSN / exact-counter checks of
chaos_lib.py.

Cases (CHAOS_CASE=name runs one; CHAOS_SEED=N replays, default: the time,
printed):
  kill9      575 recipients over 9 domains on 7 sinks, 2 shards; the sinks
             answer 451 at RCPT and at the dot at random, 550 to every 'bad*'
             recipient (one message has 210 of them on three idle hosts, next
             to 40 good ones: >100 failures of one message in one commit),
             close without answering the dot at random, and delay DATA and
             dot replies; the return path's sink defers DSNs at random.
             `volley run --until-empty` is SIGKILLed after a random delay,
             KILLS times; then clean runs finish the queue.
  disk_full  the queue directory is a tmpfs the test mounts, shrunk after
             enqueue to what is used plus a little: the DSN-heavy delivery
             commits run out of space partway. The run must end within its
             bound; then the tmpfs is made bigger and clean runs finish.
  dsn_flood  1100 one-recipient messages to a null-MX domain: all bounce in
             one turn, so one commit owes more than 1024 DSNs.
After each: every recipient delivered at most once outside the duplicate
window (each saved copy is attributed to the run that produced it), every
bounce in exactly one distinct DSN, nothing lost, `volley queue stats --json`
exact, no run hangs. The figures are printed per case.

Every wait is bounded; every process is started here and stopped by its PID;
the tmpfs is unmounted in a finally block. Not being able to mount is a
failure, never a skip."""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import MxSink, check, message, run_cases  # noqa: E402
from chaos_lib import (DST_HOSTS, RET, SENDER, Problems, Runs, check_all,  # noqa: E402
                       seeded_faults, selftest, zone)

KILLS = 10
RUNS_MAX = 25                      # kill loop: runs at most (some may end by themselves)
FINISH_ROUNDS = 15
RUN_BOUND_S = 30.0                 # a run that is not killed must end within this
DISK_RUN_BOUND_S = 10.0
# free space left after enqueue; the delivery commits need >= 150 KiB more
DISK_MARGIN_KB = int(os.environ.get("CHAOS_DISK_MARGIN_KB", "48"))
NDOM = 6
BULK_HOSTS = ["127.0.0.%d" % (46 + i) for i in range(3)]   # kill9: idle, for the bulk bounces
LATE_HOST = "127.0.0.45"           # disk_full: no sink there until the disk has room again
RUN_ARGS = ["--conns-per-dest", "1", "--retry-base", "200ms", "--retry-max", "400ms",
            "--host-backoff", "200ms"]
SEED = int(os.environ.get("CHAOS_SEED", str(int(time.time()))))


def domain_shard(domain, nshards):
    """The queue shard of a domain: FNV-1a 64 of the lower-cased name, as
    vl_domain_hash (engine/base/addr.c) and vl_queue_shard_of compute it."""
    h = 1469598103934665603
    for c in domain.lower().encode():
        h = ((h ^ c) * 1099511628211) & (2 ** 64 - 1)
    return h % nshards


def bulk_domains(nshards):
    """Three bkN.test domains on one shard (so their bounces can meet in one commit)."""
    names = ["bk%d.test" % i for i in range(32)]
    same = [d for d in names if domain_shard(d, nshards) == domain_shard(names[0], nshards)]
    return same[:3]


def workload_kill9(bulk):
    """(items, ok, bad): 50 messages of 6 recipients (every 2nd with one 'bad'),
    and one message with 40 good recipients in d0 and 210 bad ones in three
    bkN.test domains of one shard (three transactions on three otherwise idle
    hosts that wait as long at MAIL and reject every RCPT: they finish at
    about the same time, so one commit often holds more than 100 failures of
    one message)."""
    items, ok, bad = [], [], []
    for m in range(50):
        rc = ["m%d.r%d@d%d.test" % (m, r, (m + r) % NDOM) for r in range(6)]
        fr = ["bad.m%d@d%d.test" % (m, m % NDOM)] if m % 2 == 0 else []
        items.append((SENDER, rc + fr, message(subject="chaos %d" % m, from_addr=SENDER,
                                               size=1000 + 50 * m)))
        ok += rc
        bad += fr
    rc = ["bulk.r%d@d0.test" % r for r in range(40)]
    fr = ["bad.bulk.r%d@%s" % (r, bulk[r % 3]) for r in range(210)]
    items.append((SENDER, rc + fr, message(subject="bulk", from_addr=SENDER)))
    return items, ok + rc, bad + fr


def case_kill9(env):
    t0 = time.monotonic()
    rnd = random.Random(SEED)
    pb = Problems()
    hosts = {h: seeded_faults(SEED + i) for i, h in enumerate(DST_HOSTS)}
    for h in BULK_HOSTS:           # the same wait at MAIL: the three finish together
        hosts[h] = ["--fault", "rcpt=550:match=bad", "--delay", "mail=150ms"]
    hosts[RET] = ["--seed", str(SEED + 9), "--fault", "dot=451:prob=0.1",
                  "--delay", "dot=60ms:prob=0.3"]
    env.start_sinks(hosts)
    z = zone(NDOM)
    bulk = bulk_domains(env.shards)
    z.update({d: [(10, "mx." + d, h)] for d, h in zip(bulk, BULK_HOSTS)})
    env.start_dns(mx=z, defaults=False)
    items, ok, bad = workload_kill9(bulk)
    env.enqueue_many(items)
    runs = Runs(env, RUN_ARGS, pb)
    kills = 0
    for _ in range(RUNS_MAX):
        if kills == KILLS:
            break
        info = runs.run(kill_after=rnd.uniform(0.05, 0.6), bound_s=RUN_BOUND_S)
        kills += info["kind"] == "killed"
        if info["kind"] != "killed" and runs.open_count() == 0:
            break
    pb.add(kills >= 5, "only %d runs were killed: the work is too short" % kills)
    runs.finish(FINISH_ROUNDS, RUN_BOUND_S)
    check_all("kill9 (seed %d)" % SEED, runs, ok, bad, t0)
    pb.done("kill9 (seed %d)" % SEED)


# --- disk_full -------------------------------------------------------------------
def sh(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)


def fs_used_kb(path):
    v = os.statvfs(path)
    return (v.f_blocks - v.f_bfree) * v.f_frsize // 1024


def workload_disk():
    """120 messages of 2 good + 1 bad recipients + one in late.test (its sink
    starts only after the full disk, so every message, body included, stays
    queued); a ~4 KiB header block each, which every DSN copies: the 120 DSNs
    need ~600 KiB more in the queue."""
    pad = "".join("X-Chaos-Pad-%d: %s\r\n" % (i, "p" * 70) for i in range(50))
    items, ok, bad = [], [], []
    for m in range(120):
        rc = ["dk.m%d.r%d@d%d.test" % (m, r, (m + r) % NDOM) for r in range(2)]
        rc.append("late.m%d@late.test" % m)
        fr = ["bad.dk.m%d@d%d.test" % (m, (m + 2) % NDOM)]
        content = message(subject="disk %d" % m, from_addr=SENDER).replace(
            b"Subject:", pad.encode() + b"Subject:", 1)
        items.append((SENDER, rc + fr, content))
        ok += rc
        bad += fr
    return items, ok, bad


def start_late_sink(env, runs):
    """The late.test sink, on the port the other sinks share."""
    sd = os.path.join(env.tmp, "save-" + LATE_HOST)
    os.makedirs(sd, exist_ok=True)
    s = MxSink(LATE_HOST, env.port, [], sd)
    check(s.start_ok, "late sink on %s:%d did not start: %s" % (LATE_HOST, env.port, s.stderr()))
    env.sinks[LATE_HOST] = s
    runs.add_host(LATE_HOST)


def case_disk_full(env):
    t0 = time.monotonic()
    pb = Problems()
    os.makedirs(env.data)
    r = sh("mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", env.data)
    check(r.returncode == 0, "disk_full: cannot mount a tmpfs on %s (needs root / "
          "CAP_SYS_ADMIN): %s" % (env.data, r.stderr.strip()))
    try:
        hosts = {h: ["--fault", "rcpt=550:match=bad", "--delay", "dot=20ms:prob=0.3",
                     "--seed", str(SEED + i)] for i, h in enumerate(DST_HOSTS)}
        hosts[RET] = ["--delay", "dot=10ms"]
        env.start_sinks(hosts)
        z = zone(NDOM)
        z["late.test"] = [(10, "mx.late.test", LATE_HOST)]
        env.start_dns(mx=z, defaults=False)
        items, ok, bad = workload_disk()
        env.enqueue_many(items)
        used = fs_used_kb(env.data)
        size = used + DISK_MARGIN_KB
        r = sh("mount", "-o", "remount,size=%dk" % size, env.data)
        check(r.returncode == 0, "disk_full: cannot shrink the tmpfs to %d KiB: %s" %
              (size, r.stderr.strip()))
        print("disk_full: queue uses %d KiB after enqueue; tmpfs now %d KiB" % (used, size),
              flush=True)
        # The engine retries a failing commit (never re-leasing its recipients)
        # until --commit-giveup, then stops and exits 1 (issue 9 item 2).
        runs = Runs(env, RUN_ARGS + ["--commit-giveup", "3s"], pb)
        info = runs.run(bound_s=DISK_RUN_BOUND_S, expect_ok=False)
        print("disk_full: the run on the full disk: %s, exit %s, %.1f s, %d commit failures "
              "logged; stderr tail: %s" % (info["kind"], info["rc"], info["secs"],
                                           info["commit_failed"],
                                           info["err"].strip()[-200:].replace("\n", " | ")),
              flush=True)
        pb.add(info["commit_failed"] > 0 or info["kind"] != "clean",
               "the disk never filled (the run ended cleanly): make DISK_MARGIN_KB smaller")
        if info["kind"] != "hang" and info["commit_failed"]:
            last = (info["err"].strip().splitlines() or [""])[-1]
            pb.add(info["rc"] != 0 and "full" in info["err"],
                   "the run hit %d commit failures and exited %s (want non-zero, with a clear "
                   "error); its last stderr line: %s" % (info["commit_failed"], info["rc"], last))
        # Reading works on a full disk. Nothing acknowledged is lost: every
        # enqueued recipient is still there, plus one DSN recipient per bounce
        # (each message has one bad recipient, so each DSN reports one bounce).
        st = env.queue_stats()
        total = sum(st[k] for k in ("ready", "deferred", "delivered", "bounced", "expired"))
        print("disk_full: queue after that run: %s" % {k: st[k] for k in (
            "ready", "deferred", "delivered", "bounced", "expired", "disk_bytes")}, flush=True)
        pb.add(total == len(ok) + len(bad) + st["bounced"],
               "after the full disk the queue holds %d recipients, want %d enqueued + %d DSNs: "
               "%r" % (total, len(ok) + len(bad), st["bounced"], st))
        r = sh("mount", "-o", "remount,size=64m", env.data)
        check(r.returncode == 0, "disk_full: cannot grow the tmpfs: %s" % r.stderr.strip())
        start_late_sink(env, runs)
        runs.finish(FINISH_ROUNDS, RUN_BOUND_S)
        check_all("disk_full (seed %d)" % SEED, runs, ok, bad, t0)
    finally:
        for _ in range(20):        # bounded: a sink or run may still hold a file briefly
            if sh("umount", env.data).returncode == 0:
                break
            time.sleep(0.25)
        else:
            print("disk_full: could not unmount %s" % env.data, file=sys.stderr)
    pb.done("disk_full (seed %d)" % SEED)


# --- dsn_flood ----------------------------------------------------------------------
FLOOD_MSGS = 1100                  # > 1024 messages needing a DSN, bounced in one turn


def case_dsn_flood(env):
    """FLOOD_MSGS one-recipient messages to a null-MX domain (RFC 7505: bounce
    5.1.10 without a connection): one lease, one DNS answer, every transaction
    bounced in the same turn, so one commit owes more than 1024 DSNs. The
    return path's sink defers some of them. Then the same checks."""
    t0 = time.monotonic()
    pb = Problems()
    env.start_sinks({RET: ["--seed", str(SEED + 5), "--fault", "dot=451:prob=0.05"]})
    env.start_dns(mx={"nullmx.test": [(0, ".", None)], "ret.test": [(10, "mx.ret.test", RET)]},
                  defaults=False)
    content = message(subject="flood", from_addr=SENDER)
    bad = ["fl%d@nullmx.test" % m for m in range(FLOOD_MSGS)]
    env.enqueue_many([(SENDER, [r], content) for r in bad], jobs=4)
    runs = Runs(env, RUN_ARGS, pb)
    runs.finish(FINISH_ROUNDS, RUN_BOUND_S)
    check_all("dsn_flood (seed %d)" % SEED, runs, [], bad, t0)
    pb.done("dsn_flood (seed %d)" % SEED)


if __name__ == "__main__":
    print("seed %d (CHAOS_SEED=%d to replay)" % (SEED, SEED), flush=True)
    selftest()
    if os.environ.get("CHAOS_CASE"):
        os.environ["DELIVER_CASE"] = os.environ["CHAOS_CASE"]
    run_cases([("kill9", case_kill9), ("disk_full", case_disk_full),
               ("dsn_flood", case_dsn_flood)])
