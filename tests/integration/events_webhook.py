"""events_webhook.py - delivery events to a webhook (issue 16), end to end:
dnsmasq, a `volley sink` that defers some recipients (so each has several
events), and a Python receiver (events_lib.Receiver) that checks every
batch's HMAC signature.

- receiver_outage: the receiver refuses (503) the first batches, later stores
  one batch and answers 500; volley resends: every event arrives, in order per
  recipient (attempts 1..n, delivered last), duplicates only from the 500 batch.
- kill9: `volley run` is killed with SIGKILL mid-run and started again: no
  event lost (each logged outcome has its event, each recipient's attempts
  are complete), and duplicates come only from the last batch the receiver got
  before the kill (taken, but its acknowledgement not recorded).
- outbox_cap: the receiver is down and --events-outbox-max 60 (1 shard):
  delivery stops at the cap (evt=events_outbox_full; the outcomes logged, each
  with its stored event, stay <= 60 and stop growing) with mail left in the
  queue; the receiver comes back: delivery resumes (evt=events_outbox_resumed)
  and every event arrives, in order, none lost, none duplicated."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from events_lib import Receiver, check_stream  # noqa: E402
from sink_lib import volley_bin  # noqa: E402
from volley_lib import check, run_cases  # noqa: E402

SECRET = b"webhook-test-secret"
MX = "127.0.0.21"
DOMAINS = ["b.test", "c.test", "d.test", "e.test"]
WAIT_S = 120


def setup(env, n_per_domain):
    env.start_sinks({MX: ["--fault", "rcpt=451:prob=0.25", "--seed", "7"]}, save=False)
    env.start_dns({d: [(10, "mx." + d, MX)] for d in DOMAINS})
    rcpts = ["r%d@%s" % (i, d) for d in DOMAINS for i in range(n_per_domain)]
    for d in DOMAINS:
        env.enqueue("sender@src.test", [r for r in rcpts if r.endswith("@" + d)])
    secret = os.path.join(env.tmp, "secret")
    with open(secret, "wb") as f:
        f.write(SECRET + b"\n")
    return rcpts, secret


def start_run(env, recv, secret, extra=(), err_path=None):
    args = [volley_bin(), "run", "--data", env.data, "--quiet", "--log", env.log_path,
            "--shards", str(env.shards), *[str(a) for a in env.route_args()],
            "--retry-base", "1s", "--retry-max", "1s", "--events-batch", "40",
            "--events-webhook", recv.url, "--events-secret-file", secret, "--events-drain", "20s", *extra]
    err = open(err_path or os.path.join(env.tmp, "run-%d.err" % time.monotonic_ns()), "wb")
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err,
                            env=dict(os.environ, VOLLEY_LOG="info"))


def wait_for(cond, what, timeout=WAIT_S):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    check(False, "timed out waiting for %s" % what)


def delivered_all(recv, rcpts):
    got = {e["rcpt"] for _, e in recv.stored_events() if e.get("event") == "delivered"}
    return len(got) >= len(rcpts)


def stop_run(p):
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        check(False, "volley run did not stop within 60 s of SIGTERM")
    check(rc == 0, "volley run exited %d after SIGTERM" % rc)


def case_receiver_outage(env):
    rcpts, secret = setup(env, 100)
    recv = Receiver(SECRET)
    try:
        recv.fail_next = 4                 # down at first
        p = start_run(env, recv, secret)
        try:
            wait_for(lambda: len(recv.stored_events()) >= 100, "100 events")
            recv.store_then_fail = 1       # takes a batch but answers 500
            wait_for(lambda: delivered_all(recv, rcpts), "every recipient delivered")
        finally:
            stop_run(p)
        batches = recv.snapshot()
        check(recv.bad_sig == 0, "%d batches with a bad signature" % recv.bad_sig)
        check(sum(1 for b in batches if b["status"] == 503) == 4, "503s: %r" %
              [b["status"] for b in batches][:10])
        dup_ok = {b["n"] for b in batches if b["status"] == 500}
        check(len(dup_ok) == 1, "store-then-500 batches: %r" % dup_ok)
        n, dups = check_stream(recv.stored_events(), env.log(), rcpts, dup_ok, check, "outage")
        check(dups >= 1, "the 500 batch was not resent (no duplicate seen)")
        print("     %d events, %d duplicates (the 500 batch), %d batches" % (n, dups, len(batches)))
    finally:
        recv.close()


def case_kill9(env):
    rcpts, secret = setup(env, 150)
    recv = Receiver(SECRET)
    try:
        p = start_run(env, recv, secret)
        try:
            wait_for(lambda: len(recv.stored_events()) >= 150, "150 events")
        finally:
            p.kill()                       # SIGKILL: no drain, no clean close
            p.wait()
        before = recv.snapshot()
        check(not delivered_all(recv, rcpts), "everything was done before the kill: too late")
        last = before[-1]["n"]
        p = start_run(env, recv, secret)
        try:
            wait_for(lambda: delivered_all(recv, rcpts), "every recipient delivered after restart")
        finally:
            stop_run(p)
        check(recv.bad_sig == 0, "%d batches with a bad signature" % recv.bad_sig)
        n, dups = check_stream(recv.stored_events(), env.log(), rcpts, {last}, check, "kill9")
        print("     %d events, %d duplicates (last batch before the kill: %d events)" %
              (n, dups, len(before[-1]["events"])))
    finally:
        recv.close()


def case_outbox_cap(env):
    env.shards = 1
    cap = 60
    rcpts, secret = setup(env, 100)
    recv = Receiver(SECRET)
    err_path = os.path.join(env.tmp, "cap.err")

    def err():
        with open(err_path, "rb") as f:
            return f.read().decode(errors="replace")
    try:
        recv.fail_next = 10 ** 9           # down
        p = start_run(env, recv, secret, ["--events-outbox-max", str(cap)], err_path)
        try:
            wait_for(lambda: "evt=events_outbox_full" in err(), "evt=events_outbox_full")
            time.sleep(1.5)                # paused: nothing more is delivered
            n1 = len(env.log())
            time.sleep(1.5)
            n2 = len(env.log())
            check(n1 == n2, "outcomes went on while the outbox was full: %d -> %d" % (n1, n2))
            check(0 < n2 <= cap, "%d outcomes logged (each with a stored event), cap %d" %
                  (n2, cap))
            check(not delivered_all(recv, rcpts) and not recv.stored_events(),
                  "the receiver is down: nothing stored")
            recv.fail_next = 0             # back
            wait_for(lambda: delivered_all(recv, rcpts), "every recipient delivered after")
        finally:
            stop_run(p)
        check("evt=events_outbox_resumed" in err(), "no evt=events_outbox_resumed: %s" % err())
        check(recv.bad_sig == 0, "%d batches with a bad signature" % recv.bad_sig)
        n, dups = check_stream(recv.stored_events(), env.log(), rcpts, set(), check, "cap")
        check(dups == 0, "%d duplicates" % dups)
        print("     %d events, paused at %d outcomes (cap %d), %d batches refused" %
              (n, n2, cap, sum(1 for b in recv.snapshot() if b["status"] == 503)))
    finally:
        recv.close()


if __name__ == "__main__":
    run_cases([("receiver_outage", case_receiver_outage), ("kill9", case_kill9),
               ("outbox_cap", case_outbox_cap)])
