"""config_live.py - SIGHUP applies a valid new volley.conf to a running engine
(issue 14): the shaping table is swapped live, without dropping what is in
flight, and the new rate is what the receiver sees.

live_rate: `volley run --config` delivers to `volley sink --model` (which
         counts per client source address) from one egress address at a
         policy rate of 20 msg/s; the file is rewritten to 4 msg/s and SIGHUP
         sent: the engine logs evt=config_reloaded naming the policy change,
         the delivery log has the rate event (20 -> 4, "config reload"), and
         the rate measured at the sink for that source address drops to at
         most 4 msg/s (+50%) and well below the rate before; a last reload to
         a high rate lets the run finish. Every recipient is delivered exactly
         once (delivery log and the sink's saved files), and the sink's count
         for the source address equals the recipient count.
live_rematch: the same, but the reload removes the domain's policy and adds
         one matched by the MX suffix at 4 msg/s: the resolved domain takes
         the new policy at once (route_rematch), with the same effect.

Time bounds are one-sided where they can be (a limit can only slow a run): the
after-reload rate has an upper bound; the before/after comparison asks only
for a factor of 2 where the limits differ by 5."""
import os
import re
import subprocess
import sys
import time
import json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import (by_event, check, check_exactly_once, message, run_cases,  # noqa: E402
                        volley_bin)

MX = "127.0.0.2"
SRC = "127.0.0.10"
WAIT_S = 60.0


def write_conf(path, rate, policy='live = { domains = "live.test"; msgs-per-sec = %g; };'):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("""
egress = { addresses = ( { ip = "%s"; ehlo = "eg.sender.test"; } ); };
shaping = { %s };
""" % (SRC, policy % rate))
    os.rename(tmp, path)


def sink_count(env):
    """(monotonic time, messages the sink accepted from SRC) from its latest stats line."""
    s = env.sinks[MX]
    last = None
    for line in s.stdout().splitlines():
        if line.startswith("{") and '"why":"interval"' in line:
            last = line
    if last is None:
        return time.monotonic(), 0
    m = json.loads(last).get("model", {})
    return time.monotonic(), m.get(SRC, {}).get("delivered", 0)


def wait_count(env, n, proc):
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        t, c = sink_count(env)
        if c >= n:
            return t, c
        check(proc.poll() is None, "volley run ended early (%s)" % proc.returncode)
        time.sleep(0.1)
    check(False, "the sink never counted %d messages from %s" % (n, SRC))


def rate_over(env, seconds, proc):
    """Messages/s from SRC at the sink over about @seconds (between two fresh stats lines)."""
    t0, c0 = sink_count(env)
    time.sleep(1.2)                              # a fresh line: the sink prints every second
    t0, c0 = sink_count(env)
    time.sleep(seconds)
    t1, c1 = sink_count(env)
    check(proc.poll() is None, "volley run ended while measuring (%s): the sink counted %d "
          "then %d in %.1fs" % (proc.returncode, c0, c1, t1 - t0))
    return (c1 - c0) / (t1 - t0), c1


def wait_log(path, regex, n=1):
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        with open(path, errors="replace") as f:
            hits = re.findall(regex, f.read())
        if len(hits) >= n:
            return hits[n - 1]
        time.sleep(0.1)
    with open(path, errors="replace") as f:
        check(False, "no %r in the run's log: %s" % (regex, f.read()[-2000:]))


def case_live_rate(env):
    live_case(env, None, "policy live: msgs-per-sec 20->4")


def case_live_rematch(env):
    # the slow policy is a new one, matched by MX suffix, replacing the domain's
    live_case(env, 'bymx = { mx = "mxhost.test"; msgs-per-sec = %g; };',
              "policy live: removed")


def live_case(env, slow_policy, want):
    model = os.path.join(env.tmp, "count.model")
    with open(model, "w") as f:
        f.write("connections = 1000;\n")          # counts per source address, limits nothing
    env.start_sinks({MX: ["--model", model, "--stats-every", "1"]})
    env.start_dns(mx={"live.test": [(10, "mx.mxhost.test", MX)]}, defaults=False)
    conf = os.path.join(env.tmp, "volley.conf")
    write_conf(conf, 20)
    n = 200
    rcpts = ["r%d@live.test" % i for i in range(n)]
    env.enqueue("s@src.test", rcpts, message())
    err_path = os.path.join(env.tmp, "run.err")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([volley_bin(), "run", "--config", conf, "--data", env.data,
                                 "--until-empty", "--quiet", "--log", env.log_path,
                                 "--shards", str(env.shards), "--max-rcpts", "1",
                                 *[str(a) for a in env.route_args()]],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_count(env, 20, proc)
        before, _ = rate_over(env, 3.0, proc)
        print("     before: %.2f msg/s" % before, flush=True)
        if slow_policy:
            write_conf(conf, 4, slow_policy)
        else:
            write_conf(conf, 4)
        proc.send_signal(1)                        # SIGHUP
        line = wait_log(err_path, r"evt=config_reloaded [^\n]*")
        check('applies=live' in line and want in line, "reload line: %s" % line)
        time.sleep(1.0)                            # tokens taken before the swap
        after, at = rate_over(env, 4.0, proc)
        check(at < n, "all delivered before the slow phase was measured (%d)" % at)
        check(after <= 4 * 1.5, "after the reload to 4 msg/s the sink saw %.2f msg/s from %s"
              % (after, SRC))
        check(before >= 2 * after, "before the reload (20 msg/s) %.2f msg/s, after (4 msg/s) "
              "%.2f msg/s: the rate did not change" % (before, after))
        if slow_policy:
            write_conf(conf, 500, slow_policy)
        else:
            write_conf(conf, 500)
        proc.send_signal(1)
        wait_log(err_path, r"evt=config_reloaded [^\n]*msgs-per-sec 4->500", 1)
        rc = proc.wait(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
    check(rc == 0, "volley run exited %d: %s" % (rc, open(err_path).read()[-2000:]))
    log = env.log()
    cuts = [e for e in log if e.get("event") == "rate" and e.get("why") == "config reload"]
    check(slow_policy or any(e["old"] == 20 and e["new"] == 4 for e in cuts),
          "no rate event 20 -> 4 (config reload) in the delivery log: %r" % cuts)
    st = env.stop_sink(MX)
    check_exactly_once(log, env.saved(MX), rcpts, "live reload")
    got = st["model"].get(SRC, {}).get("delivered", 0)
    check(got == n, "the sink counted %d messages from %s, want %d" % (got, SRC, n))
    print("     rate at the sink from %s: %.2f msg/s at 20, %.2f msg/s after reload to 4"
          % (SRC, before, after))


run_cases([("live_rate", case_live_rate), ("live_rematch", case_live_rematch)])
