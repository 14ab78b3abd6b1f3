"""http_admin.py - operator holds and actions (issue 15) through `volley
admin` (the CLI, over the HTTP API) and the API itself, with their effect at
a real `volley sink`. ADMIN_CASE=name runs one case."""
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_lib import Api  # noqa: E402
from inject_lib import check, fail, volley_bin  # noqa: E402
import volley_lib  # noqa: E402

WAIT_S = 30.0
QUIET_S = 1.5          # a held domain must stay silent this long (lease poll is 50 ms)


def admin(api, *args):
    tok = os.path.join(api.tmp, "token")
    r = subprocess.run([volley_bin(), "admin"] + list(args) +
                       ["--http", "127.0.0.1:%d" % api.http_port, "--http-token-file", tok],
                       capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def rcpts_at(save):
    return sorted(x for e in volley_lib.read_saved(save) for x in e["rcpts"])


def wait_rcpts(save, pred, what):
    end = time.monotonic() + WAIT_S
    got = []
    while time.monotonic() < end:
        got = rcpts_at(save)
        if pred(got):
            return got
        time.sleep(0.05)
    fail("%s: sink has %r" % (what, got))


def inject(api, sender, rcpts):
    st, js = api.inject({"envelope_sender": sender,
                         "content": {"subject": "s", "text_body": "hello {{ email }}"},
                         "recipients": [{"email": r} for r in rcpts]})
    check(st == 200 and js["success_count"] == len(rcpts), "inject: %d %r" % (st, js))


class Env:
    def __init__(self, sink_args=()):
        self.tmp = tempfile.mkdtemp(prefix="volley-admin-test-")
        self.save = os.path.join(self.tmp, "save")
        os.mkdir(self.save)
        self.sink = volley_lib.MxSink("127.0.0.1", 0, list(sink_args), save_dir=self.save)
        check(self.sink.start_ok, "sink did not start: %s" % self.sink.stderr())
        self.api = Api(route_port=self.sink.addrs[0][1])

    def close(self):
        self.api.close()
        if self.sink.proc.poll() is None:
            self.sink.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def case_suspend():
    e = Env()
    api = e.api
    try:
        rc, out, err = admin(api, "suspend", "A.test", "--note", "maintenance window")
        check(rc == 0 and json.loads(out) == {"action": "suspend", "domain": "A.test"},
              "suspend: %d %r %r" % (rc, out, err))
        inject(api, "s@src.test", ["x1@a.test", "x2@a.test", "x3@a.test", "y1@b.test",
                                   "y2@b.test"])
        wait_rcpts(e.save, lambda g: g == ["y1@b.test", "y2@b.test"], "b.test delivered")
        time.sleep(QUIET_S)
        check(rcpts_at(e.save) == ["y1@b.test", "y2@b.test"], "a.test got mail while "
              "suspended: %r" % rcpts_at(e.save))
        held = [l for l in api.log() if l.get("domain") == "a.test"]
        check(len(held) == 3 and all(l["event"] == "deferred" and
                                     "suspended by an operator: maintenance window" in
                                     l.get("reply", "") for l in held), "log: %r" % held)
        rc, out, _ = admin(api, "holds")
        holds = json.loads(out)["holds"]
        check(rc == 0 and [(h["action"], h["scope"], h["value"], h["note"]) for h in holds] ==
              [("suspend", "domain", "a.test", "maintenance window")], "holds: %r" % out)
        check("evt=admin action=suspend domain=A.test" in api.stderr(), "action not logged")
        # restart: the suspension is kept (DATA/admin)
        check(api.stop() in (0, 3), "stop: %s" % api.stderr())
        api.start()
        st, _, body = api.req("GET", "/api/v1/admin/holds")
        check(st == 200 and json.loads(body)["holds"][0]["value"] == "a.test",
              "holds after restart: %r" % body)
        inject(api, "s@src.test", ["x4@a.test"])
        time.sleep(QUIET_S)
        check(rcpts_at(e.save) == ["y1@b.test", "y2@b.test"], "a.test got mail after the "
              "restart: %r" % rcpts_at(e.save))
        # resume over HTTP: everything arrives, at once (not at the 300 s recheck)
        st, _, body = api.req("POST", "/api/v1/admin/resume?domain=a.test")
        js = json.loads(body)
        check(st == 200 and js["made_ready"] == 4, "resume: %d %r" % (st, body))
        wait_rcpts(e.save, lambda g: g == ["x1@a.test", "x2@a.test", "x3@a.test", "x4@a.test",
                                           "y1@b.test", "y2@b.test"], "after resume")
        st, _, body = api.req("POST", "/api/v1/admin/resume?domain=a.test")
        check(st == 404, "resume twice: %d %r" % (st, body))
        rc, out, _ = admin(api, "holds")
        check(json.loads(out)["holds"] == [], "holds after resume: %r" % out)
        # bad input: named, nothing changed
        st, _, body = api.req("POST", "/api/v1/admin/suspend?domain=not..a..domain")
        check(st == 400 and json.loads(body)["field"] == "domain", "bad domain: %d %r" %
              (st, body))
        st, _, body = api.req("POST", "/api/v1/admin/suspend")
        check(st == 400, "no domain: %d" % st)
        st, _, body = api.req("POST", "/api/v1/admin/suspend?domain=a.test", token=None)
        check(st == 401, "no token: %d" % st)
        st, _, body = api.req("GET", "/api/v1/admin/suspend?domain=a.test")
        check(st == 405, "GET suspend: %d" % st)
        rc, _, err = admin(api, "suspend")
        check(rc == 2 and "needs one DOMAIN" in err, "CLI without a domain: %d %s" % (rc, err))
        rc, _, err = admin(api, "frobnicate", "a.test")
        check(rc == 2 and "unknown action" in err, "CLI bad action: %d %s" % (rc, err))
    finally:
        e.close()


def case_bounce_purge():
    # "slow" local parts are deferred by the sink (451): they stay queued
    e = Env(["--fault", "rcpt=451:match=slow"])
    api = e.api
    try:
        inject(api, "s@src.test", ["slow1@c.test", "slow2@c.test", "ok@c.test"])
        inject(api, "p@src.test", ["slow1@d.test", "slow2@d.test"])
        wait_rcpts(e.save, lambda g: g == ["ok@c.test"], "ok delivered")
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            ev = [l for l in api.log() if l["event"] == "deferred"]
            if len(ev) >= 4:
                break
            time.sleep(0.05)
        check(len(ev) >= 4, "deferrals: %r" % ev)
        rc, out, err = admin(api, "bounce", "c.test", "--note", "closed account")
        js = json.loads(out) if rc == 0 else {}
        check(rc == 0 and js.get("made_ready") == 2, "bounce: %d %r %r" % (rc, out, err))
        # one DSN per message: the two slow c.test recipients came from two messages
        # (merge fields: one message per recipient), so two DSNs to s@src.test
        wait_rcpts(e.save, lambda g: g.count("s@src.test") == 2, "DSNs")
        dsns = [m for m in volley_lib.read_saved(e.save) if m["rcpts"] == ["s@src.test"]]
        named = []
        for d in dsns:
            msg = email.message_from_bytes(d["content"], policy=email.policy.default)
            check(msg.get_content_type() == "multipart/report", "DSN type: %s" %
                  msg.get_content_type())
            txt = d["content"].decode("utf-8", "replace")
            named += [r for r in ("slow1@c.test", "slow2@c.test") if r in txt]
            check("5.0.0" in txt, "DSN without the status: %s" % txt[:500])
        check(sorted(named) == ["slow1@c.test", "slow2@c.test"], "DSNs name %r" % named)
        bounced = [l for l in api.log() if l["event"] == "bounced" and l["domain"] == "c.test"]
        check(len(bounced) == 2 and all("bounced by an operator: closed account" in
                                        l.get("reply", "") for l in bounced), "log %r" % bounced)
        # purge: dropped, no DSN
        st, _, body = api.req("POST", "/api/v1/admin/purge?domain=d.test")
        check(st == 200 and json.loads(body)["made_ready"] == 2, "purge: %d %r" % (st, body))
        end = time.monotonic() + WAIT_S
        purged = []
        while time.monotonic() < end:
            purged = [l for l in api.log() if l["event"] == "purged"]
            if len(purged) == 2:
                break
            time.sleep(0.05)
        check(sorted(l["rcpt"] for l in purged) == ["slow1@d.test", "slow2@d.test"],
              "purged: %r" % purged)
        time.sleep(QUIET_S)
        check("p@src.test" not in rcpts_at(e.save), "a purge sent a DSN: %r" % rcpts_at(e.save))
        st, _, body = api.req("GET", "/api/v1/queue")
        q = json.loads(body)
        check(q["ready"] == 0 and q["deferred"] == 0, "queue after: %r" % q)
        # retry: makes a deferred recipient ready at once
        inject(api, "s@src.test", ["slow3@e.test"])
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end and not any(l.get("rcpt") == "slow3@e.test"
                                                 for l in api.log()):
            time.sleep(0.05)
        rc, out, err = admin(api, "retry", "e.test")
        check(rc == 0 and json.loads(out)["made_ready"] == 1, "retry: %d %r %r" % (rc, out, err))
        st, _, body = api.req("DELETE", "/api/v1/admin/holds?action=bounce&domain=c.test")
        check(st == 200, "clear bounce: %d %r" % (st, body))
        for a in ("bounce", "purge", "retry"):
            check("evt=admin action=%s" % a in api.stderr(), "%s not logged" % a)
    finally:
        e.close()


def inject_campaign(api, sender, rcpts, campaign):
    st, js = api.inject({"envelope_sender": sender,
                         "content": {"subject": "c", "text_body": "hi {{ email }}",
                                     "headers": {"X-Volley-Campaign": campaign}},
                         "recipients": [{"email": r} for r in rcpts]})
    check(st == 200 and js["success_count"] == len(rcpts), "inject: %d %r" % (st, js))


def case_campaign_sender():
    """Holds by campaign and by sender: a suspended campaign gets nothing while
    other mail to the same domain flows, everything after resume; a bounce by
    campaign yields one DSN per message; a sender suspension holds that sender only."""
    e = Env()
    api = e.api
    try:
        rc, out, err = admin(api, "suspend", "--campaign", "spring-1")
        check(rc == 0 and json.loads(out) == {"action": "suspend", "campaign": "spring-1"},
              "suspend campaign: %d %r %r" % (rc, out, err))
        st, _, body = api.req("POST", "/api/v1/admin/suspend?sender=Hold@src.test")
        check(st == 200, "suspend sender: %d %r" % (st, body))
        inject_campaign(api, "s@src.test", ["c1@a.test", "c2@a.test"], "spring-1")
        inject_campaign(api, "s@src.test", ["o1@a.test"], "other-1")
        inject(api, "hold@src.test", ["h1@a.test"])
        inject(api, "free@src.test", ["f1@a.test"])
        wait_rcpts(e.save, lambda g: g == ["f1@a.test", "o1@a.test"], "unheld mail")
        time.sleep(QUIET_S)
        check(rcpts_at(e.save) == ["f1@a.test", "o1@a.test"], "held mail arrived: %r" %
              rcpts_at(e.save))
        held = sorted((l["rcpt"], l["reply"]) for l in api.log() if l["event"] == "deferred")
        check(held == [("c1@a.test", "suspended by an operator (campaign spring-1)"),
                       ("c2@a.test", "suspended by an operator (campaign spring-1)"),
                       ("h1@a.test", "suspended by an operator (sender hold@src.test)")],
              "held: %r" % held)
        check(any(l.get("campaign") == "spring-1" for l in api.log()), "campaign not logged")
        rc, out, err = admin(api, "resume", "--sender", "hold@src.test")
        check(rc == 0, "resume sender: %d %r %r" % (rc, out, err))
        wait_rcpts(e.save, lambda g: "h1@a.test" in g, "after sender resume")
        check("c1@a.test" not in rcpts_at(e.save), "campaign resumed with the sender")
        # bounce by campaign: the two held recipients came in two messages (merge
        # fields: one per recipient): two DSNs, each naming its recipient
        rc, out, err = admin(api, "bounce", "--campaign", "spring-1", "--note", "recalled")
        check(rc == 0 and json.loads(out).get("made_ready", 0) >= 2, "bounce campaign: %d %r %r"
              % (rc, out, err))
        wait_rcpts(e.save, lambda g: g.count("s@src.test") == 2, "DSNs of the campaign")
        dsns = [m for m in volley_lib.read_saved(e.save) if m["rcpts"] == ["s@src.test"]]
        named = sorted(r for d in dsns for r in ("c1@a.test", "c2@a.test")
                       if r in d["content"].decode("utf-8", "replace"))
        check(named == ["c1@a.test", "c2@a.test"], "DSNs name %r" % named)
        check(not any(x in rcpts_at(e.save) for x in ("c1@a.test", "c2@a.test")),
              "a bounced campaign was delivered")
        for bad, field in (("campaign=bad%20id", "campaign"), ("sender=nope", "sender"),
                           ("domain=a.test&campaign=x", "domain")):
            st, _, body = api.req("POST", "/api/v1/admin/suspend?" + bad)
            check(st == 400 and json.loads(body)["field"] == field, "%s: %d %r" %
                  (bad, st, body))
    finally:
        e.close()


def case_queue_stats():
    """volley queue stats --by campaign beside a running engine whose mail stays
    queued (route refused): open recipients per X-Volley-Campaign."""
    api = Api(route_port=1)
    try:
        inject_campaign(api, "s@src.test", ["c%d@a.test" % i for i in range(3)], "spring-1")
        st, js = api.inject({"envelope_sender": "s@src.test", "recipients":
                             [{"email": "r1@b.test"}, {"email": "r2@c.test"}],
                             "content": "Subject: x\r\nX-Volley-Campaign:  autumn\r\n\r\nx\r\n"})
        check(st == 200 and js["success_count"] == 2, "raw inject: %d %r" % (st, js))
        inject(api, "s@src.test", ["n1@a.test"])
        r = subprocess.run([volley_bin(), "queue", "stats", "--by", "campaign", "--json",
                            "--data", api.data], capture_output=True, timeout=60)
        check(r.returncode == 0, "queue stats --by campaign: %d %s" % (r.returncode,
                                                                       r.stderr.decode()))
        js = json.loads(r.stdout.decode())
        got = [(c["campaign"], c["rcpts"]) for c in js["campaigns"]]
        check(got == [("spring-1", 3), ("autumn", 2)] and js["none"] == 1 and
              js["other"] == 0, "by campaign: %r" % js)
        r = subprocess.run([volley_bin(), "queue", "stats", "--by", "campaign", "--top", "1",
                            "--data", api.data], capture_output=True, timeout=60)
        out = r.stdout.decode()
        check(r.returncode == 0 and re.search(r"^\s+3\s+3\s+spring-1$", out, re.M) and
              re.search(r"^\s+2\s+-\s+\(other campaigns\)$", out, re.M), "text: %r" % out)
        r = subprocess.run([volley_bin(), "queue", "stats", "--by", "sender", "--data",
                            api.data], capture_output=True, timeout=60)
        check(r.returncode == 2 and b"only 'campaign'" in r.stderr, "--by sender: %r" %
              r.stderr)
    finally:
        api.close()


def case_tenant():
    """Tenant ids (HTTP field `tenant`, or an X-Volley-Tenant header in raw
    content): stripped before delivery, in the delivery log and /metrics,
    counted by `volley queue stats --by tenant`; suspend and bounce by tenant."""
    e = Env()
    api = e.api
    try:
        rc, out, err = admin(api, "suspend", "--tenant", "acme")
        check(rc == 0 and json.loads(out) == {"action": "suspend", "tenant": "acme"},
              "suspend tenant: %d %r %r" % (rc, out, err))
        st, js = api.inject({"envelope_sender": "s@src.test", "tenant": "acme",
                             "content": {"subject": "t", "text_body": "hi {{ email }}"},
                             "recipients": [{"email": "t1@a.test"}, {"email": "t2@a.test"}]})
        check(st == 200 and js["success_count"] == 2, "inject acme: %d %r" % (st, js))
        st, js = api.inject({"envelope_sender": "s@src.test", "tenant": "other",
                             "campaign": "c-1", "content": {"subject": "t", "text_body": "x"},
                             "recipients": [{"email": "o1@a.test"}]})
        check(st == 200 and js["success_count"] == 1, "inject other: %d %r" % (st, js))
        st, js = api.inject({"envelope_sender": "s@src.test", "recipients": [{"email":
                             "r1@a.test"}], "content": "Subject: x\r\nX-Volley-Tenant: "
                             "rawco extra\r\n\r\nx\r\n"})
        check(st == 200 and js["success_count"] == 1, "inject raw: %d %r" % (st, js))
        wait_rcpts(e.save, lambda g: g == ["o1@a.test", "r1@a.test"], "other tenants")
        time.sleep(QUIET_S)
        check(rcpts_at(e.save) == ["o1@a.test", "r1@a.test"], "held tenant arrived: %r" %
              rcpts_at(e.save))
        for m in volley_lib.read_saved(e.save):
            check(b"x-volley-tenant" not in m["content"].lower() and
                  b"x-volley-campaign" not in m["content"].lower(),
                  "id header delivered: %r" % m["content"][:300])
        log = api.log()
        got = sorted((l["rcpt"], l["event"], l.get("tenant"), l.get("campaign")) for l in log)
        check(got == [("o1@a.test", "delivered", "other", "c-1"),
                      ("r1@a.test", "delivered", "rawco", None),
                      ("t1@a.test", "deferred", "acme", None),
                      ("t2@a.test", "deferred", "acme", None)], "log: %r" % got)
        check(all("suspended by an operator (tenant acme)" in l["reply"] for l in log
                  if l["event"] == "deferred"), "held reply: %r" % log)
        st, _, body = api.req("GET", "/metrics")
        text = body.decode()
        for want in ('volley_tenant_recipients_total{tenant="other",outcome="delivered"} 1',
                     'volley_tenant_recipients_total{tenant="acme",outcome="deferred"} 2',
                     'volley_tenant_recipients_total{tenant="other",outcome="bounced"} 0'):
            check(want in text, "/metrics lacks %s" % want)
        r = subprocess.run([volley_bin(), "queue", "stats", "--by", "tenant", "--json",
                            "--data", api.data], capture_output=True, timeout=60)
        check(r.returncode == 0, "stats --by tenant: %s" % r.stderr.decode())
        js = json.loads(r.stdout.decode())
        check([(t["tenant"], t["rcpts"]) for t in js["tenants"]] == [("acme", 2)] and
              js["none"] == 0, "by tenant: %r" % js)
        # bounce by tenant: one DSN per message (two: merge fields)
        rc, out, err = admin(api, "bounce", "--tenant", "acme")
        check(rc == 0, "bounce tenant: %d %r %r" % (rc, out, err))
        wait_rcpts(e.save, lambda g: g.count("s@src.test") == 2, "DSNs of the tenant")
        check(not any(x in rcpts_at(e.save) for x in ("t1@a.test", "t2@a.test")),
              "a bounced tenant was delivered")
        st, _, body = api.req("POST", "/api/v1/admin/suspend?tenant=bad%20id")
        check(st == 400 and json.loads(body)["field"] == "tenant", "bad tenant: %d %r" %
              (st, body))
        st, js = api.inject({"envelope_sender": "s@src.test", "tenant": "no spaces",
                             "content": {"subject": "t", "text_body": "x"},
                             "recipients": [{"email": "z@a.test"}]})
        check(st == 400 and js.get("field") == "tenant", "bad tenant field: %d %r" % (st, js))
    finally:
        e.close()


def main():
    only = os.environ.get("ADMIN_CASE")
    for name, fn in (("suspend", case_suspend), ("bounce_purge", case_bounce_purge),
                     ("campaign_sender", case_campaign_sender),
                     ("queue_stats", case_queue_stats), ("tenant", case_tenant)):
        if only and name != only:
            continue
        t0 = time.monotonic()
        fn()
        print("ok %s (%.2fs)" % (name, time.monotonic() - t0))


if __name__ == "__main__":
    main()
