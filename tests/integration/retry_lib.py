"""retry_lib.py - what the retry_*, dsn_* and commit_crash tests share on top
of volley_lib.py: a private DNS zone (dst.test -> the faulty sink on
127.0.0.2, ret.test -> the return path's sink on 127.0.0.3 that receives the
DSNs, down.test -> 127.0.0.10 where nothing listens), a bounded "run until
every recipient is final" loop, delivery-log times, and DSN checks through
tests/tools/dsn_check.py (Python's email package: an independent parser).

Every loop is bounded in rounds and time; processes are volley_lib's."""
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import check, fail, read_saved, src_root  # noqa: E402

DST, RET = "127.0.0.2", "127.0.0.3"
SENDER = "sender@ret.test"
ZONE = {
    "dst.test": [(10, "mx.dst.test", DST)],
    "ret.test": [(10, "mx.ret.test", RET)],
    "down.test": [(10, "mx.down.test", "127.0.0.10")],
}


def setup(env, dst_args=(), ret_args=()):
    """Sinks on DST (with dst_args, e.g. faults) and RET, and the zone."""
    env.start_sinks({DST: list(dst_args), RET: list(ret_args)})
    env.start_dns(mx=ZONE, defaults=False)


def open_count(env):
    st = env.queue_stats()
    return st["ready"] + st["deferred"]


def run_until_final(env, args, rounds_max=60, sleep_s=0.25, time_max_s=40.0):
    """`volley run --until-empty ARGS` again and again (sleeping sleep_s between
    runs) until no recipient is ready or deferred. Returns the number of runs."""
    end = time.monotonic() + time_max_s
    for n in range(1, rounds_max + 1):
        env.run(*args)
        if open_count(env) == 0:
            return n
        if time.monotonic() > end:
            break
        time.sleep(sleep_s)
    fail("recipients still open after %d runs: %r" % (n, env.queue_stats()))


def ts(e):
    """A delivery-log line's time, in seconds since the epoch."""
    return datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp()


def events(log, rcpt):
    return [e for e in log if e["rcpt"] == rcpt]


def dsns(env):
    """DSNs received at the return path's sink: saved files sent with MAIL FROM:<>."""
    out = []
    for s in read_saved(env.sinks[RET].save_dir):
        if s["mail_from"] == "":
            s["path"] = os.path.join(env.sinks[RET].save_dir, s["file"])
            out.append(s)
    return out


def dsn_check(path, *args):
    """Run tests/tools/dsn_check.py on a sink --save file; fail with its output."""
    tool = os.path.join(src_root(), "tests", "tools", "dsn_check.py")
    r = subprocess.run([sys.executable, tool, path, "--envelope", *args], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, "dsn_check %s %s:\n%s%s" % (os.path.basename(path), " ".join(args),
                                                          r.stdout, r.stderr))
