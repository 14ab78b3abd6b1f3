"""ack_sync.py - an acknowledgement is emitted only after the data it acknowledges
is on disk (issue 9, "ack-after-sync proof"). A SIGKILL test cannot tell a write
in the page cache from a durable one; the system calls can. Each case runs volley
under `strace -f -y` (file descriptors shown with their paths) and reads the
order of page writes, fdatasync and the meta-page write of each shard's
data.mdb against the acknowledgement:

  enqueue:  the "queued ID" line on stdout (exit 0 follows it) comes after, for
            every shard, a completed fdatasync(data.mdb) that follows every
            page written to that file, and the meta-page write (LMDB's commit
            point, on its O_DSYNC descriptor) after it;
  run:      no "delivered" line reaches the delivery log before the first
            commit of the run is complete, and every delivered line is
            preceded by a completed commit (fdatasync + meta write).

The checker itself must be able to fail: case_checker_rejects feeds it traces
with the acknowledgement before the sync and expects a violation each time.
Run one case with DELIVER_CASE=name."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import check, fail, message, run_cases, volley_bin  # noqa: E402

STRACE_CALLS = "fdatasync,fsync,pwrite64,pwritev,writev,write"
LINE = re.compile(r'^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\((\d+)<([^>]*)>)(.*)$')


def parse(text):
    """strace -f -y output -> [(kind, path, data, done)] in trace order. An
    unfinished call yields its start (done False) and its completion (done True,
    matched to the pid's pending call)."""
    events, pending = [], {}
    for raw in text.splitlines():
        m = LINE.match(raw)
        if not m:
            continue
        pid, resumed, name, _fd, path, rest = m.groups()
        if resumed:
            if pid in pending:
                name, path = pending.pop(pid)
                ok = re.search(r'=\s*(-?\d+)', rest)
                events.append((name, path, rest, bool(ok) and int(ok.group(1)) >= 0))
            continue
        if "<unfinished ...>" in rest:
            pending[pid] = (name, path)
            events.append((name + "_start", path, rest, False))
            continue
        events.append((name + "_start", path, rest, False))
        ok = re.search(r'=\s*(-?\d+)\s*$', rest)
        events.append((name, path, rest, bool(ok) and int(ok.group(1)) >= 0))
    return events


def is_page_write(kind, path):
    return kind in ("pwrite64", "pwritev", "writev", "write") and path.endswith("/data.mdb")


def commits_done(events):
    """Indexes at which a commit of a data.mdb completed: its fdatasync returned
    0 and the next write to that file (the meta page) completed. -> [(i, path)]"""
    out, synced = [], {}
    for i, (kind, path, _data, done) in enumerate(events):
        if kind in ("fdatasync", "fsync") and done and path.endswith("/data.mdb"):
            synced[path] = True
        elif is_page_write(kind, path) and done and synced.get(path):
            out.append((i, path))
            synced[path] = False
    return out


def check_enqueue_trace(events, ack_re, shards):
    """Violations (strings) of the enqueue rule; [] when the order is right."""
    ack = [i for i, (k, p, d, _) in enumerate(events)
           if k == "write_start" and ack_re.search(d)]
    if not ack:
        return ["no acknowledgement line in the trace"]
    a = ack[0]
    commits = commits_done(events[:a])
    points = {j for j, _q in commits}
    bad = []
    for path in shards:
        mine = [j for j, q in commits if q == path]
        if not mine:
            bad.append("%s: no completed commit before the acknowledgement" % path)
            continue
        late = [i for i, (k, p, _d, done) in enumerate(events[:a])
                if is_page_write(k, p) and done and p == path and i not in points and
                i > mine[-1]]
        if late:
            bad.append("%s: a page written at event %d has no completed fdatasync + meta "
                       "write before the acknowledgement (event %d)" % (path, late[0], a))
    return bad


def check_run_trace(events, log_path):
    """Violations of the delivery rule: every 'delivered' write to the log has a
    completed commit before it, the first one included."""
    commits = [i for i, _p in commits_done(events)]
    bad, n = [], 0
    for i, (k, p, d, _done) in enumerate(events):
        if k in ("write_start", "writev_start") and p == log_path and "delivered" in d:
            n += 1
            if not any(c < i for c in commits):
                bad.append("delivered line written at event %d before any commit completed" % i)
    if n == 0:
        bad.append("no delivered line was written to %s" % log_path)
    return bad


def strace(env, args, out):
    cmd = ["strace", "-f", "-y", "-qq", "-s", "200", "-e", "trace=" + STRACE_CALLS,
           "-o", out, volley_bin()] + [str(a) for a in args]
    # LeakSanitizer cannot run under ptrace: leaks are checked by the other
    # tests of the sanitizer build, not under strace.
    env_vars = dict(os.environ)
    env_vars["ASAN_OPTIONS"] = ":".join(
        o for o in [os.environ.get("ASAN_OPTIONS", ""), "detect_leaks=0"] if o)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env_vars)
    with open(out) as f:
        return r, f.read()


def shard_files(data):
    return [os.path.join(data, d, "data.mdb") for d in sorted(os.listdir(data))
            if d.startswith("shard-")]


def case_enqueue(env):
    """volley enqueue of one message over two shards: 'queued' after both syncs."""
    msg = env.write_msg(message())
    rc = env.write_rcpts(["a%d@d%d.test" % (i, i) for i in range(16)])  # both shards
    r, text = strace(env, ["enqueue", "--data", env.data, "--shards", 2, "--from",
                           "s@src.test", "--rcpts", rc, msg], os.path.join(env.tmp, "tr1"))
    check(r.returncode == 0, "enqueue under strace exited %d: %s" % (r.returncode, r.stderr))
    events = parse(text)
    files = shard_files(env.data)
    check(len(files) == 2, "want 2 shard files, have %r" % files)
    bad = check_enqueue_trace(events, re.compile(r'"queued \w+ for'), files)
    check(not bad, "enqueue acknowledged before its data was synced: %s" % "; ".join(bad))
    nsync = sum(1 for k, p, _d, done in events if k == "fdatasync" and done)
    print("  enqueue: %d events, %d fdatasync, ack after both shards' commits" %
          (len(events), nsync))


def case_run(env):
    """volley run into a sink: no 'delivered' log line before a commit."""
    port = env.start_sinks({"127.0.0.1": []}, save=False)
    env.enqueue("s@src.test", ["r%d@one.test" % i for i in range(40)])
    log = os.path.join(env.tmp, "delivery.json")
    r, text = strace(env, ["run", "--data", env.data, "--until-empty", "--quiet",
                           "--shards", 2, "--max-rcpts", 5, "--log", log,
                           "--route", "*=127.0.0.1:%d" % port], os.path.join(env.tmp, "tr2"))
    check(r.returncode == 0, "run under strace exited %d: %s" % (r.returncode, r.stderr))
    bad = check_run_trace(parse(text), log)
    check(not bad, "delivery logged before its commit: %s" % "; ".join(bad))
    with open(log) as f:
        n = sum(1 for line in f if '"delivered"' in line)
    check(n == 40, "want 40 delivered lines, have %d" % n)
    print("  run: 40 delivered lines, each after a completed commit")


def case_checker_rejects(env):
    """The checker finds a sync that comes after the acknowledgement."""
    f = "/q/shard-0/data.mdb"
    early_ack = "\n".join([
        '1 pwrite64(4<%s>, "x", 8192, 0) = 8192' % f,
        '1 write(1</dev/pts/0>, "queued 1a for 1 recipient", 26) = 26',
        '1 fdatasync(4<%s>) = 0' % f,
        '1 pwrite64(5<%s>, "m", 120, 32) = 120' % f])
    bad = check_enqueue_trace(parse(early_ack), re.compile(r'"queued \w+ for'), [f])
    check(bad, "checker accepted an ack before fdatasync")
    no_meta = "\n".join([
        '1 pwrite64(4<%s>, "x", 8192, 0) = 8192' % f,
        '1 fdatasync(4<%s>) = 0' % f,
        '1 write(1</dev/pts/0>, "queued 1a for 1 recipient", 26) = 26',
        '1 pwrite64(5<%s>, "m", 120, 32) = 120' % f])
    bad = check_enqueue_trace(parse(no_meta), re.compile(r'"queued \w+ for'), [f])
    check(bad, "checker accepted an ack before the meta-page write")
    log_first = "\n".join([
        '7 write(9</t/log.json>, "{\\"event\\":\\"delivered\\"}", 23) = 23',
        '8 pwrite64(4<%s>, "x", 8192, 0) = 8192' % f,
        '8 fdatasync(4<%s>) = 0' % f,
        '8 pwrite64(5<%s>, "m", 120, 32) = 120' % f])
    bad = check_run_trace(parse(log_first), "/t/log.json")
    check(bad, "checker accepted a delivered line before the commit")
    good = "\n".join([
        '8 pwrite64(4<%s>, "x", 8192, 0) = 8192' % f,
        '8 fdatasync(4<%s> <unfinished ...>' % f,
        '7 write(9</t/log.json>, "{\\"event\\":\\"deferred\\"}", 23) = 23',
        '8 <... fdatasync resumed>) = 0',
        '8 pwrite64(5<%s>, "m", 120, 32) = 120' % f,
        '7 write(9</t/log.json>, "{\\"event\\":\\"delivered\\"}", 23) = 23'])
    bad = check_run_trace(parse(good), "/t/log.json")
    check(not bad, "checker refused a correct trace: %r" % bad)
    print("  checker: 3 bad orders refused, 1 good order accepted")


def main():
    if not shutil.which("strace"):
        fail("strace not installed (scripts/setup.sh installs it)")
    run_cases([("checker_rejects", case_checker_rejects), ("enqueue", case_enqueue),
               ("run", case_run)])


if __name__ == "__main__":
    main()
