"""http_metrics.py - GET /metrics on the HTTP listener (issue 15), checked by
independent tools: promtool (format and lint) and a real Prometheus server
scraping volley every second (its own TSDB in a temp dir, loopback only,
stopped by PID). METRICS_CASE=name runs one case.

A delivery run: HTTP injection of 12 recipients over two domains into a
`volley sink` that refuses RCPT for local parts starting "bad" (550), so 10
are delivered and 2 bounced; the counters must equal what the sink saved and
what the delivery log says."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_lib import Api  # noqa: E402
from inject_lib import check, fail  # noqa: E402
import volley_lib  # noqa: E402

WAIT_S = 40.0


def series(text):
    """{'name{labels}': float} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        k, v = line.rsplit(" ", 1)
        out[k] = float(v)
    return out


class Run:
    """A volley run --http delivering into a faulting sink, with 12 recipients injected."""

    def __init__(self, conf=None, sink_args=()):
        self.tmp = tempfile.mkdtemp(prefix="volley-metrics-test-")
        self.save = os.path.join(self.tmp, "save")
        os.mkdir(self.save)
        self.sink = volley_lib.MxSink("127.0.0.1", 0, ["--fault", "rcpt=550:match=bad"] +
                                      list(sink_args), save_dir=self.save)
        check(self.sink.start_ok, "sink did not start: %s" % self.sink.stderr())
        run_args = []
        if conf:
            path = os.path.join(self.tmp, "volley.conf")
            with open(path, "w") as f:
                f.write(conf)
            run_args = ["--config", path]
        self.api = Api(run_args=run_args, route_port=self.sink.addrs[0][1])

    def metrics(self):
        st, h, body = self.api.req("GET", "/metrics")
        check(st == 200, "GET /metrics: %d %r" % (st, body[:300]))
        check(h.get("content-type", "").startswith("text/plain; version=0.0.4"),
              "content type: %r" % h.get("content-type"))
        return body.decode()

    def inject(self):
        rcpts = ["u%d@a.test" % i for i in range(6)] + ["v%d@b.test" % i for i in range(4)] + \
            ["bad1@a.test", "bad2@b.test"]
        st, js = self.api.inject({"envelope_sender": "news@src.test",
                                  "content": {"subject": "m", "text_body": "hi {{ email }}"},
                                  "recipients": [{"email": r} for r in rcpts]})
        check(st == 200 and js["success_count"] == 12, "inject: %d %r" % (st, js))

    def wait_outcomes(self, delivered, bounced):
        end = time.monotonic() + WAIT_S
        s = {}
        while time.monotonic() < end:
            s = series(self.metrics())
            if s.get('volley_recipients_total{outcome="delivered"}') == delivered and \
                    s.get('volley_recipients_total{outcome="bounced"}') == bounced and \
                    s.get('volley_queue_recipients{state="ready"}') == 0 and \
                    s.get('volley_inflight_recipients') == 0:
                return s                        # and the DSNs went out too
            time.sleep(0.1)
        fail("outcomes not counted in time: %r" % {k: v for k, v in s.items()
                                                    if k.startswith("volley_recipients")})

    def close(self):
        self.api.close()
        if self.sink.proc.poll() is None:
            self.sink.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def case_promtool():
    r = Run()
    try:
        s0 = series(r.metrics())
        check(s0.get('volley_up{metrics="on"}') == 1, "volley_up: %r" % s0)
        check(s0.get('volley_recipients_total{outcome="delivered"}') == 0, "not zero at start")
        r.inject()
        s = r.wait_outcomes(10, 2)
        text = r.metrics()
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        check(p.returncode == 0, "promtool check metrics failed (%d): %s %s\n%s" %
              (p.returncode, p.stdout.decode(), p.stderr.decode(), text))
        s = series(text)
        saved = volley_lib.read_saved(r.save)
        got = sorted(x for e in saved for x in e["rcpts"] if x != "news@src.test")
        dsns = [e for e in saved if e["rcpts"] == ["news@src.test"]]
        check(len(got) == 10 and not any(x.startswith("bad") for x in got),
              "sink saved: %r" % got)
        check(len(dsns) == 2, "DSNs to the sender: %d" % len(dsns))  # not counted as outcomes
        events = r.api.log()
        ev = {}
        for e in events:
            if e.get("rcpt") != "news@src.test":          # DSN recipients are counted apart
                ev[e["event"]] = ev.get(e["event"], 0) + 1
        check(ev.get("delivered") == 10 and ev.get("bounced") == 2, "delivery log: %r" % ev)
        want = {
            'volley_domain_recipients_total{domain="a.test",outcome="delivered"}': 6,
            'volley_domain_recipients_total{domain="b.test",outcome="delivered"}': 4,
            'volley_domain_recipients_total{domain="a.test",outcome="bounced"}': 1,
            'volley_domain_recipients_total{domain="b.test",outcome="bounced"}': 1,
            'volley_domain_recipients_total{domain="other",outcome="delivered"}': 0,
            'volley_source_recipients_total{source="news@src.test",outcome="delivered"}': 10,
            'volley_injected_recipients_total{listener="http"}': 12,
            'volley_injected_recipients_total{listener="smtp"}': 0,
            'volley_queue_recipients{state="ready"}': 0,
            'volley_queue_recipients{state="deferred"}': 0,
            'volley_transactions_total{tls="no"}': s.get('volley_transactions_total{tls="no"}'),
        }
        for k, v in want.items():
            check(s.get(k) == v, "%s: %r, expected %r" % (k, s.get(k), v))
        check(s['volley_connections_opened_total'] >= 1, "connections opened")
        check(s['volley_transactions_total{tls="no"}'] >= 2, "transactions")
        check(s['volley_commit_batch_outcomes_sum'] >= 12, "batch sum %r" %
              s['volley_commit_batch_outcomes_sum'])   # + DSN recipients, if any
        check(s['volley_commit_latency_seconds_count'] >= 1 and
              s['volley_commit_latency_seconds_count'] ==
              s['volley_commit_latency_seconds_bucket{le="+Inf"}'], "latency histogram")
        check(s['volley_dns_lookups_total'] >= 0 and s['volley_tls_share'] == 0.0, "tls share")
        st, _, body = r.api.req("GET", "/api/v1/admin/domains")
        doms = {d["domain"]: d for d in json.loads(body)["domains"]} if st == 200 else {}
        check(doms.get("a.test", {}).get("delivered") == 6 and doms["a.test"]["bounced"] == 1
              and doms["a.test"]["last_error"].startswith("bounced 550 ") and
              doms["a.test"]["last_error_ms"] > 0 and doms["b.test"]["delivered"] == 4,
              "GET /api/v1/admin/domains: %d %r" % (st, body[:600]))
        # access: the bearer token is needed
        st, _, _ = r.api.req("GET", "/metrics", token=None)
        check(st == 401, "GET /metrics without the token: %d" % st)
        st, _, _ = r.api.req("POST", "/metrics", b"")
        check(st == 405, "POST /metrics: %d" % st)
    finally:
        r.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def prom_query(port, q):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
    with urllib.request.urlopen(url, timeout=10) as f:
        return json.loads(f.read().decode())


def case_prometheus():
    r = Run()
    prom = None
    ptmp = tempfile.mkdtemp(prefix="volley-prom-test-")
    try:
        r.inject()
        r.wait_outcomes(10, 2)
        tok = os.path.join(ptmp, "token")
        with open(tok, "w") as f:
            f.write(r.api.token)
        cfg = os.path.join(ptmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: volley\n"
                    "    authorization:\n      credentials_file: %s\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n"
                    % (tok, r.api.http_port))
        port = free_port()
        log = open(os.path.join(ptmp, "prom.log"), "wb")
        prom = subprocess.Popen(["prometheus", "--config.file=" + cfg,
                                 "--storage.tsdb.path=" + os.path.join(ptmp, "tsdb"),
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdout=log, stderr=log)
        end = time.monotonic() + 60.0
        last = None
        while time.monotonic() < end:
            if prom.poll() is not None:
                fail("prometheus exited (%d): %s" % (prom.returncode,
                     open(os.path.join(ptmp, "prom.log")).read()[-2000:]))
            try:
                js = prom_query(port, 'volley_recipients_total{job="volley",outcome="delivered"}')
                last = js
                res = js.get("data", {}).get("result", [])
                if js.get("status") == "success" and res:
                    v = float(res[0]["value"][1])
                    check(v == 10, "Prometheus has delivered=%r, expected 10" % v)
                    up = prom_query(port, 'up{job="volley"}')["data"]["result"]
                    check(up and float(up[0]["value"][1]) == 1, "up: %r" % up)
                    b = prom_query(port, 'sum(volley_domain_recipients_total{outcome="bounced"})')
                    check(float(b["data"]["result"][0]["value"][1]) == 2, "bounced: %r" % b)
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        fail("Prometheus never returned the delivered count: %r\n%s" %
             (last, open(os.path.join(ptmp, "prom.log")).read()[-2000:]))
    finally:
        if prom and prom.poll() is None:
            prom.send_signal(signal.SIGTERM)
            try:
                prom.wait(timeout=30)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
        r.close()
        shutil.rmtree(ptmp, ignore_errors=True)


def case_campaign():
    """X-Volley-Campaign (HTTP content.headers, and raw over HTTP): stripped before
    delivery, in the delivery log and the metrics."""
    r = Run()
    try:
        st, js = r.api.inject({"envelope_sender": "news@src.test",
                               "content": {"subject": "m", "text_body": "hi {{ email }}",
                                           "headers": {"X-Volley-Campaign": "spring-sale"}},
                               "recipients": [{"email": "c%d@a.test" % i} for i in range(3)] +
                               [{"email": "bad9@a.test"}]})
        check(st == 200 and js["success_count"] == 4, "inject: %d %r" % (st, js))
        raw = ("Subject: raw\r\nX-Volley-Campaign: autumn.2026\r\n\tfolded-rest\r\n"
               "X-Other: kept\r\n\r\nbody\r\n")
        st, js = r.api.inject({"envelope_sender": "news@src.test", "content": raw,
                               "recipients": [{"email": "d1@b.test"}, {"email": "d2@b.test"}]})
        check(st == 200 and js["success_count"] == 2, "inject raw: %d %r" % (st, js))
        st, js = r.api.inject({"envelope_sender": "news@src.test", "campaign": "summer_3",
                               "content": {"subject": "f", "text_body": "field"},
                               "recipients": [{"email": "e1@a.test"}]})
        check(st == 200 and js["success_count"] == 1, "inject campaign field: %d %r" % (st, js))
        for bad, why in (({"campaign": "has space"}, "expected 1 to 64"),
                         ({"campaign": "x", "content": "Subject: r\r\n\r\nr\r\n"}, "raw"),
                         ({"campaign": "x", "content": {"text_body": "t", "headers":
                                                         {"X-Volley-Campaign": "y"}}}, "also")):
            req = {"envelope_sender": "news@src.test", "content": {"text_body": "t"},
                   "recipients": [{"email": "z@b.test"}]}
            req.update(bad)
            st, js = r.api.inject(req)
            check(st == 400 and js.get("field") == "campaign" and why in js.get("error", ""),
                  "bad campaign %r: %d %r" % (bad, st, js))
        s = r.wait_outcomes(6, 1)
        for e in volley_lib.read_saved(r.save):
            c = e["content"]
            check(b"x-volley-campaign" not in c.lower() and b"folded-rest" not in c,
                  "the campaign header was delivered: %r" % c[:400])
            if e["rcpts"][0].endswith("@b.test"):
                check(b"X-Other: kept\r\n" in c and c.endswith(b"\r\n\r\nbody\r\n"),
                      "raw message damaged: %r" % c)
        got = {}
        for e in r.api.log():
            if e.get("rcpt", "").startswith(("c", "bad9", "d", "e1")):
                got.setdefault(e.get("campaign"), []).append(e["event"])
        check(sorted(got.get("spring-sale", [])) == ["bounced", "delivered", "delivered",
                                                     "delivered"] and
              got.get("autumn.2026") == ["delivered", "delivered"] and
              got.get("summer_3") == ["delivered"], "log campaigns: %r" % got)
        for k, v in {'volley_campaign_recipients_total{campaign="spring-sale",outcome="delivered"}': 3,
                     'volley_campaign_recipients_total{campaign="spring-sale",outcome="bounced"}': 1,
                     'volley_campaign_recipients_total{campaign="autumn.2026",outcome="delivered"}': 2
                     }.items():
            check(s.get(k) == v, "%s: %r, expected %r" % (k, s.get(k), v))
    finally:
        r.close()


def case_shaping():
    """volley_shaping_{rate,limit}_messages_per_second by policy: an adaptive
    policy whose destination answers 421 4.7.0 shows its cut rate (40 -> 20)
    next to its configured limit; a fixed one shows both equal; promtool passes."""
    conf = """
shaping = { amail = { domains = "a.test"; msgs-per-sec = 40.0;
                      adaptive = { decrease = 0.5; hold-down = "60s"; interval = "600s"; }; };
            bmail = { domains = "b.test"; msgs-per-sec = 100.0; }; };
"""
    r = Run(conf, ["--fault", "rcpt=421:match=push:text=4.7.0 slow down"])
    try:
        s = series(r.metrics())
        for pol, rate in (("amail", 40.0), ("bmail", 100.0)):
            check(s.get('volley_shaping_rate_messages_per_second{policy="%s"}' % pol) == rate and
                  s.get('volley_shaping_limit_messages_per_second{policy="%s"}' % pol) == rate,
                  "%s at start: %r" % (pol, {k: v for k, v in s.items() if "shaping" in k}))
        st, js = r.api.inject({"envelope_sender": "news@src.test",
                               "content": {"subject": "m", "text_body": "x"},
                               "recipients": [{"email": "push1@a.test"}, {"email": "b1@b.test"}]})
        check(st == 200 and js["success_count"] == 2, "inject: %d %r" % (st, js))
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            text = r.metrics()
            s = series(text)
            if s.get('volley_shaping_rate_messages_per_second{policy="amail"}') != 40.0:
                break
            time.sleep(0.1)
        check(s.get('volley_shaping_rate_messages_per_second{policy="amail"}') == 20.0 and
              s.get('volley_shaping_limit_messages_per_second{policy="amail"}') == 40.0 and
              s.get('volley_shaping_rate_messages_per_second{policy="bmail"}') == 100.0,
              "after a 421: %r" % {k: v for k, v in s.items() if "shaping" in k})
        check(len([k for k in s if k.startswith("volley_shaping_")]) == 4, "labels: %r" %
              [k for k in s if k.startswith("volley_shaping_")])
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        check(p.returncode == 0, "promtool check metrics failed (%d): %s %s" %
              (p.returncode, p.stdout.decode(), p.stderr.decode()))
    finally:
        r.close()


def case_shaping_backlog():
    """The lease leaves in the queue what a shaped destination cannot send
    soon (about ten seconds of its rate, at least 64 recipients): a policy of
    2 msg/s whose domain is known (one recipient delivered first) and then
    gets 600 more at once holds at most about 64 of them in flight, not the
    whole lease scan (up to 2,048 at once), which would fill the shard's
    in-flight cap with mail that waits while other destinations starve."""
    conf = 'shaping = { slow = { domains = "a.test"; msgs-per-sec = 2.0; }; };\n'
    r = Run(conf)
    try:
        st, js = r.api.inject({"envelope_sender": "news@src.test",
                               "content": {"subject": "m", "text_body": "x"},
                               "recipients": [{"email": "first@a.test"}]})
        check(st == 200 and js["success_count"] == 1, "inject: %d %r" % (st, js))
        r.wait_outcomes(1, 0)
        st, js = r.api.inject({"envelope_sender": "news@src.test",
                               "content": {"subject": "m", "text_body": "x"},
                               "recipients": [{"email": "u%d@a.test" % i} for i in range(600)]})
        check(st == 200 and js["success_count"] == 600, "inject: %d %r" % (st, js))
        most, s = 0, {}
        end = time.monotonic() + 4.0     # bounded: 8 messages at 2 msg/s
        while time.monotonic() < end:
            s = series(r.metrics())
            most = max(most, s.get("volley_inflight_recipients", 0))
            time.sleep(0.05)
        print("     most in flight: %d of 600 (backlog 64)" % most)
        check(most > 0, "nothing leased within 4s: %r" % s)
        check(most <= 96, "%d recipients of a 2 msg/s policy in flight at once: the lease "
              "took more than its backlog (about 64)" % most)
        check(s.get('volley_queue_recipients{state="ready"}', 0) >= 600 - 96,
              "ready in the queue: %r" % s.get('volley_queue_recipients{state="ready"}'))
    finally:
        r.close()


def main():
    only = os.environ.get("METRICS_CASE")
    for name, fn in (("promtool", case_promtool), ("prometheus", case_prometheus),
                     ("campaign", case_campaign), ("shaping", case_shaping),
                     ("shaping_backlog", case_shaping_backlog)):
        if only and name != only:
            continue
        t0 = time.monotonic()
        fn()
        print("ok %s (%.2fs)" % (name, time.monotonic() - t0))


if __name__ == "__main__":
    main()
