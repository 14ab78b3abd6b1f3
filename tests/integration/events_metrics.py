"""events_metrics.py - bounce categories in GET /metrics (issue 16): a volley
run --http delivers injected recipients into a `volley sink` that refuses some
RCPTs with providers' reply texts (550 "does not exist" x2, 452 "over quota"
x1, 554 "blocked using Spamhaus" x1); /metrics must count them as
volley_bounces_total{category,kind} (permanent for 5xx bounces, temporary for
deferrals), agree with the delivery log's categories, and pass `promtool check
metrics`."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_lib import Api  # noqa: E402
from inject_lib import check, fail  # noqa: E402
import volley_lib  # noqa: E402

WAIT_S = 40.0


def series(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="volley-evmetrics-test-")
    sink = api = None
    try:
        sink = volley_lib.MxSink("127.0.0.1", 0, [
            "--fault", "rcpt=550:match=gone:text=5.1.1 The email account that you tried to "
                       "reach does not exist",
            "--fault", "rcpt=452:match=full:text=4.2.2 The email account that you tried to "
                       "reach is over quota",
            "--fault", "rcpt=554:match=spam:text=5.7.1 Service unavailable; client host "
                       "blocked using Spamhaus"])
        check(sink.start_ok, "sink did not start: %s" % sink.stderr())
        api = Api(route_port=sink.addrs[0][1], run_args=["--retry-base", "1h",
                                                         "--retry-max", "2h"])
        rcpts = ["u%d@a.test" % i for i in range(3)] + ["gone1@a.test", "gone2@b.test",
                                                        "full1@a.test", "spam1@b.test"]
        st, js = api.inject({"envelope_sender": "news@src.test",
                             "content": {"subject": "m", "text_body": "hi"},
                             "recipients": [{"email": r} for r in rcpts]})
        check(st == 200 and js["success_count"] == len(rcpts), "inject: %d %r" % (st, js))
        want = {
            'volley_bounces_total{category="bad_mailbox",kind="permanent"}': 2,
            'volley_bounces_total{category="bad_mailbox",kind="temporary"}': 0,
            'volley_bounces_total{category="mailbox_full",kind="permanent"}': 0,
            'volley_bounces_total{category="mailbox_full",kind="temporary"}': 1,
            'volley_bounces_total{category="policy",kind="permanent"}': 1,
        }
        end = time.monotonic() + WAIT_S
        s, text = {}, ""
        while time.monotonic() < end:
            st, h, body = api.req("GET", "/metrics")
            check(st == 200, "GET /metrics: %d" % st)
            text = body.decode()
            s = series(text)
            if all(s.get(k) == v for k, v in want.items()) and \
                    s.get('volley_recipients_total{outcome="delivered"}') == 3:
                break
            time.sleep(0.1)
        else:
            fail("bounce counters: want %r, got %r" % (
                want, {k: v for k, v in s.items() if "bounces" in k or "recipients_total" in k}))
        check(not any(k.startswith("volley_bounces_total") and k not in want and v
                      for k, v in s.items()), "unexpected bounce series: %r" % s)
        check(s.get("volley_events_outbox_full") == 0, "outbox gauge: %r" % s)
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        check(p.returncode == 0, "promtool check metrics failed (%d): %s %s\n%s" %
              (p.returncode, p.stdout.decode(), p.stderr.decode(), text))
        cats = {}
        for e in api.log():                     # the delivery log agrees
            if e.get("event") in ("bounced", "deferred") and e.get("rcpt") != "news@src.test":
                k = (e.get("category"), e["event"])
                cats[k] = cats.get(k, 0) + 1
        check(cats == {("bad_mailbox", "bounced"): 2, ("mailbox_full", "deferred"): 1,
                       ("policy", "bounced"): 1}, "delivery log categories: %r" % cats)
        print("events_metrics: OK")
    finally:
        if api:
            api.close()
        if sink and sink.proc.poll() is None:
            sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
