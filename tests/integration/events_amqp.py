"""events_amqp.py - delivery events to RabbitMQ (issue 16), end to end: a
private rabbitmq-server (rabbit_lib.Rabbit: own epmd, node, dirs and ports on
loopback, stopped by PID), dnsmasq and a `volley sink` that defers some
recipients. Mid-run the broker is stopped and started again: volley's
publishes fail meanwhile (logged evt=events_send_failed) and are resent; at
the end every logged outcome has its event in the durable queue (persistent
messages, publisher confirms: what the broker confirmed before its restart
survived it), each recipient's attempts complete and in order, duplicates
only from the batches that were unconfirmed when the broker went away. The
first messages are read through librabbitmq's own decoder (basic.get): each
is persistent (delivery-mode 2), application/json, with message-id = its
event_id and type = its event name.
- amqps: the broker also listens with TLS (certificates made by openssl here);
  a run whose --events-amqp-ca is another CA fails every batch (certificate
  verify) and keeps its events; a run with the right CA sends them all, and
  its own: every logged outcome's event arrives, in order, none twice.
- per_message: --events-amqp-per-message 7: each message is a JSON array of up
  to 7 events in order (type "batch", message-id = its first event's id,
  persistent, application/json); flattened, every logged outcome's event is
  there once, in order per recipient; 0 and 1001 are usage errors."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from events_lib import check_stream  # noqa: E402
from events_webhook import setup, stop_run, wait_for  # noqa: E402
from rabbit_lib import Rabbit, get_with_properties  # noqa: E402
from sink_lib import volley_bin  # noqa: E402
from volley_lib import check, fail, run_cases  # noqa: E402

QUEUE = "volley.test.events"
BATCH = 40


def start_run(env, rb, extra=()):
    args = [volley_bin(), "run", "--data", env.data, "--quiet", "--log", env.log_path,
            "--shards", str(env.shards), *[str(a) for a in env.route_args()],
            "--retry-base", "1s", "--retry-max", "1s", "--events-batch", str(BATCH),
            "--events-amqp", rb.url, "--events-amqp-queue", QUEUE, "--events-timeout", "5s",
            "--events-drain", "30s", *extra]
    err_path = os.path.join(env.tmp, "run-%d.err" % time.monotonic_ns())
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(err_path, "wb")), err_path


def parse_bodies(raw):
    dec, out, i, s = json.JSONDecoder(), [], 0, raw.decode()
    while i < len(s):
        e, i = dec.raw_decode(s, i)
        out.append(e)
    return out


def finish_run(env, p, err_path, rcpts, what):
    """Wait until every recipient is delivered, stop the run (it drains its
    events), and check that no batch failed and nothing was left unsent."""
    try:
        wait_for(lambda: {e["rcpt"] for e in env.log() if e["event"] == "delivered"}
                 >= set(rcpts), "every recipient delivered")
    finally:
        stop_run(p)
    with open(err_path, errors="replace") as f:
        err = f.read()
    check("evt=events_send_failed" not in err and "not yet sent" not in err,
          "%s run: %s" % (what, err[-800:]))


def case_broker_restart(env):
    rcpts, _ = setup(env, 150)
    rb = Rabbit(fail)
    try:
        rb.start()
        p, err_path = start_run(env, rb)
        try:
            wait_for(lambda: len(env.log()) >= 150, "150 outcomes logged")
            rb.stop()
            time.sleep(2)                       # volley publishes into the void meanwhile
            rb.start()
            wait_for(lambda: {e["rcpt"] for e in env.log() if e["event"] == "delivered"}
                     >= set(rcpts), "every recipient delivered")
        finally:
            stop_run(p)                         # drains what is stored to the broker
        with open(err_path, errors="replace") as f:
            err = f.read()
        check("evt=events_send_failed sink=amqp" in err,
              "the broker restart did not fail a batch: %s" % err[-500:])
        check("not yet sent" not in err, "events left unsent at exit: %s" % err[-500:])
        n = rb.queue_len(QUEUE)
        got = get_with_properties(fail, rb.port, QUEUE, 50)
        check(len(got) == 50, "basic.get: %d messages" % len(got))
        events = []
        for props, body in got:
            e = json.loads(body)
            check(props["delivery_mode"] == 2 and props["content_type"] == "application/json"
                  and props["message_id"] == e["event_id"] and props["type"] == e["event"]
                  and all(props[k] for k in ("content_type", "delivery_mode", "message_id",
                                             "type")),
                  "message properties %r for %r" % (props, e))
            events.append(e)
        events += parse_bodies(rb.consume(QUEUE, n - len(got)))
        check(len(events) == n, "consumed %d of %d" % (len(events), n))
        uniq, dups = check_stream([(0, e) for e in events], env.log(), rcpts, {0}, check, "amqp")
        # Resent batches: those unconfirmed when the broker stopped (a few at most).
        check(dups <= 3 * BATCH, "%d duplicates: more than the unconfirmed batches" % dups)
        print("     %d events, %d duplicates (resent after the restart)" % (uniq, dups))
    finally:
        rb.close()


def make_certs(d):
    """A CA, a server certificate for localhost (librabbitmq 0.11 checks DNS
    names only) it signs, and another CA."""
    def ossl(*a):
        r = subprocess.run(["openssl", *a], capture_output=True, timeout=60)
        check(r.returncode == 0, "openssl %s: %s" % (a[0], r.stderr.decode(errors="replace")))
    p = lambda n: os.path.join(d, n)
    for ca in ("ca", "other"):
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=volley test %s" % ca, "-keyout", p(ca + ".key"), "-out", p(ca + ".pem"))
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
         p("srv.key"), "-out", p("srv.csr"))
    with open(p("ext"), "w") as f:
        f.write("subjectAltName = DNS:localhost, IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", p("srv.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
         "-CAcreateserial", "-days", "2", "-extfile", p("ext"), "-out", p("srv.pem"))
    os.chmod(p("srv.key"), 0o644)           # the broker runs as this user: readable anyway
    return p("ca.pem"), p("srv.pem"), p("srv.key"), p("other.pem")


def case_amqps(env):
    rcpts, _ = setup(env, 25)
    ca, crt, key, other = make_certs(env.tmp)
    rb = Rabbit(fail, tls=(ca, crt, key))
    q = "volley.test.amqps"
    url = "amqps://guest:guest@localhost:%d/" % rb.ssl_port    # the broker: 127.0.0.1 only

    def run(ca_file, drain):
        args = [volley_bin(), "run", "--data", env.data, "--quiet", "--log", env.log_path,
                "--shards", str(env.shards), *[str(a) for a in env.route_args()],
                "--retry-base", "1s", "--retry-max", "1s", "--events-amqp", url,
                "--events-amqp-ca", ca_file, "--events-amqp-queue", q, "--events-timeout", "5s",
                "--events-drain", drain]
        err_path = os.path.join(env.tmp, "amqps-%d.err" % time.monotonic_ns())
        return subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                stderr=open(err_path, "wb")), err_path
    try:
        rb.start()
        p, err_path = run(other, "1s")              # the wrong CA: nothing goes out
        try:
            wait_for(lambda: len(env.log()) >= 20, "20 outcomes logged")
        finally:
            stop_run(p)
        with open(err_path, errors="replace") as f:
            err = f.read()
        check("evt=events_send_failed sink=amqp" in err and "not yet sent" in err,
              "a wrong CA did not fail the batches: %s" % err[-800:])
        check(rb.queue_len(q) == 0, "events reached the broker past a wrong CA")
        p, err_path = run(ca, "30s")                # the right one: all of them
        finish_run(env, p, err_path, rcpts, "amqps")
        n = rb.queue_len(q)
        events = parse_bodies(rb.consume(q, n))
        check(len(events) == n, "consumed %d of %d" % (len(events), n))
        uniq, dups = check_stream([(0, e) for e in events], env.log(), rcpts, set(), check,
                                  "amqps")
        check(dups == 0, "%d duplicates over amqps" % dups)
        print("     %d events over amqps" % uniq)
    finally:
        rb.close()


def case_per_message(env):
    for bad in ("0", "1001", "x"):
        r = subprocess.run([volley_bin(), "run", "--data", env.data, "--events-amqp",
                            "amqp://guest:guest@127.0.0.1:1/", "--events-amqp-per-message", bad],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode != 0 and "--events-amqp-per-message '%s': expected 1..1000" % bad
              in r.stderr, "per-message %s: exit %d, %r" % (bad, r.returncode, r.stderr))
    rcpts, _ = setup(env, 60)
    rb = Rabbit(fail)
    try:
        rb.start()
        p, err_path = start_run(env, rb, ["--events-amqp-per-message", "7"])
        finish_run(env, p, err_path, rcpts, "per-message")
        n = rb.queue_len(QUEUE)
        got = get_with_properties(fail, rb.port, QUEUE, n)
        check(len(got) == n and n > 0, "basic.get: %d of %d messages" % (len(got), n))
        events, sizes = [], []
        for props, body in got:
            arr = json.loads(body)
            check(isinstance(arr, list) and 1 <= len(arr) <= 7,
                  "a message of %r, want a JSON array of 1..7 events" % body[:200])
            check(props["delivery_mode"] == 2 and props["content_type"] == "application/json"
                  and props["type"] == "batch" and props["message_id"] == arr[0]["event_id"],
                  "message properties %r for %r" % (props, arr[0]))
            events += arr
            sizes.append(len(arr))
        check(max(sizes) == 7, "no message held 7 events: %r" % sizes)
        check(len(got) < len(events), "%d messages for %d events" % (len(got), len(events)))
        uniq, dups = check_stream([(0, e) for e in events], env.log(), rcpts, set(), check,
                                  "amqp per-message")
        check(dups == 0, "%d duplicates" % dups)
        print("     %d events in %d messages (sizes %d..%d)" % (uniq, len(got), min(sizes),
                                                                 max(sizes)))
    finally:
        rb.close()


if __name__ == "__main__":
    run_cases([("broker_restart", case_broker_restart), ("amqps", case_amqps),
               ("per_message", case_per_message)])
