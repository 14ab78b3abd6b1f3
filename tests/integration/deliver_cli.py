"""deliver_cli.py - `volley send` end to end (exit 0, summary line, log lines,
exactly once; a second send on the same queue delivers only its own
recipients) and bad run/send input: exit 2, a message naming the option, and
for send nothing queued. Run one case with DELIVER_CASE=name."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import check, check_exactly_once, message, by_event, run_cases  # noqa: E402

SENDER = "sender@src.test"

# (extra args, text the error message must contain)
BAD = [
    (["--shards", "0"], "--shards"),
    (["--shards", "abc"], "--shards"),
    (["--shards"], "--shards"),
    (["--mx-port", "0"], "--mx-port"),
    (["--mx-port", "70000"], "--mx-port"),
    (["--max-rcpts", "0"], "--max-rcpts"),
    (["--max-rcpts", "101"], "--max-rcpts"),
    (["--timeout-scale", "0"], "--timeout-scale"),
    (["--timeout-scale", "fast"], "--timeout-scale"),
    (["--connect-timeout", "0"], "--connect-timeout"),
    (["--connect-timeout", "5x"], "--connect-timeout"),
    (["--retry-base", "0"], "--retry-base"),
    (["--retry-base", "2h"], "--retry-base"),        # above --retry-max 1h
    (["--max-age", "0"], "--max-age"),
    (["--idle", "soon"], "--idle"),
    (["--route", "nodomain"], "--route"),
    (["--route", "*=127.0.0.1"], "--route"),
    (["--dns", "nope"], "--dns"),
    (["--dns", "localhost:53"], "--dns"),            # a resolver must be an IP address
    (["--ehlo", "bad name"], "--ehlo"),
    (["--ehlo", ""], "--ehlo"),
    (["--log", "/nonexistent-dir/x/log.json"], "--log"),
]


def summary_counts(out):
    m = re.search(r"summary: delivered (\d+), deferred (\d+), bounced (\d+), expired (\d+), "
                  r"ambiguous (\d+), dsns (\d+) \| (\d+) connections, (\d+) transactions", out)
    return [int(x) for x in m.groups()] if m else None


def case_send_end_to_end(env):
    env.start_sinks({"127.0.0.2": []})
    env.start_dns()
    rc1 = ["send%d@example.test" % i for i in range(30)]
    r = env.send(SENDER, rc1, message(subject="send 1"))
    check(r.returncode == 0, "send exited %d: %s" % (r.returncode, r.stderr))
    check(re.search(r"^queued \w+ for 30 recipients", r.stdout, re.M), "no queued line: %r" % r.stdout)
    c = summary_counts(r.stdout)
    check(c and c[:6] == [30, 0, 0, 0, 0, 0] and c[6] >= 1 and c[7] == 1,
          "send summary: %r" % r.stdout)
    check(len(env.log()) == 30, "log lines %d, want 30" % len(env.log()))
    rc2 = ["again%d@example.test" % i for i in range(7)]
    r = env.send(SENDER, rc2, message(subject="send 2"))
    check(r.returncode == 0, "second send exited %d: %s" % (r.returncode, r.stderr))
    c = summary_counts(r.stdout)
    check(c and c[:6] == [7, 0, 0, 0, 0, 0], "second send summary: %r" % r.stdout)
    log = env.log()
    check_exactly_once(log, env.saved("127.0.0.2"), rc1 + rc2, "send")
    for e in by_event(log, "delivered"):
        check(e["id"] and e["domain"] == "example.test" and e["attempt"] == 1, "log line %r" % e)
    st = env.stop_sink("127.0.0.2")
    check(st["transactions"] == 2 and st["rcpts"] == 37, "sink: %r" % st)


def case_bad_cli(env):
    env.enqueue(SENDER, ["x@example.test"])           # run needs an existing queue
    msg = env.write_msg(message())
    fails = []
    for args, name in BAD:
        for cmd in ("run", "send"):
            if cmd == "run":
                argv = ["run", "--data", env.data, "--until-empty", "--quiet"] + args
            else:
                fresh = os.path.join(env.tmp, "fresh")
                argv = ["send", "--data", fresh, "--from", SENDER, "--to", "y@example.test",
                        "--quiet"] + args + [msg]
            r = env.volley(*argv, timeout=20)
            why = None
            if r.returncode != 2:
                why = "exit %d" % r.returncode
            elif name not in r.stderr:
                why = "message does not name %s" % name
            elif cmd == "send" and os.path.exists(fresh):
                why = "send queued before rejecting its options"
            sc = summary_counts(r.stdout)
            if sc and max(sc) > 1000000:
                why = "garbage summary %r" % r.stdout.strip()
            if why:
                fails.append("%s %s: %s (stderr %r)" % (cmd, " ".join(args), why,
                                                        r.stderr.strip()[:160]))
    r = env.volley("run", "--data", env.data, "--until-empty", "--bogus")
    if r.returncode != 2 or "--bogus" not in r.stderr:
        fails.append("run --bogus: exit %d, %r" % (r.returncode, r.stderr))
    for f in fails:
        print("  " + f)
    check(not fails, "%d bad-input cases misbehaved" % len(fails))
    qs = env.queue_stats()
    check(qs["ready"] == 1 and qs["delivered"] == 0, "bad runs touched the queue: %r" % qs)


if __name__ == "__main__":
    run_cases([("send_end_to_end", case_send_end_to_end),
               ("bad_cli", case_bad_cli)])
