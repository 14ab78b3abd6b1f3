"""events_inject.py - injection events end to end (issue 16: "every delivery-log
event (and injection, ...) can also go to webhook/RabbitMQ").

`volley run --listen --http --events-webhook URL` (2 shards, delivering to a
`volley sink`): messages come in over SMTP (one recipient; five recipients over
several domains, so over both shards: a multi-shard enqueue; an
X-Volley-Campaign header) and over the HTTP API (per-recipient bodies with the
"campaign" field; one shared body). A webhook receiver (events_lib.Receiver,
signatures checked) must get, for every recipient, exactly one "injected"
event (event_id, id = the queue id of the 250 / of the delivery, rcpt,
domain, from, source smtp|http, client (the SMTP or HTTP peer), campaign when given,
attempt 0) and it must arrive before that recipient's "delivered" event.
Without --events-*, nothing changes (no event is stored: the run is the
other cases' baseline and is not repeated here).
- unsubscribe: with --unsub too, a one-click POST of one recipient's link
  (HTTP) and a mailto unsubscribe of another (SMTP) each yield one
  "unsubscribe" event: rcpt, domain, scope = the sending domain, the link's
  campaign, source http|smtp, client; a tampered link (404) yields none."""
import contextlib
import os
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from events_lib import Receiver  # noqa: E402
from http_lib import Api, by_rcpt  # noqa: E402
from http_unsub import BASE, ONE_CLICK, link_of  # noqa: E402
from inject_lib import QUEUED_RE, check, run_cases, txn  # noqa: E402

SECRET = b"inject-events-secret"
WAIT_S = 60


def wait_for(cond, what):
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    check(False, "timed out waiting for %s" % what)


def first_receipts(recv):
    """[(position, event)]: the first receipt of each event_id, in arrival order."""
    seen, out = set(), []
    for pos, (_, e) in enumerate(recv.stored_events()):
        check(e.get("event_id"), "event without event_id: %r" % e)
        if e["event_id"] not in seen:
            seen.add(e["event_id"])
            out.append((pos, e))
    return out


@contextlib.contextmanager
def events_api(files=None, run_args=()):
    """A webhook receiver and `volley run --listen --http` sending events to it;
    @files (name -> text) are written into a temp dir, whose path is passed to
    @run_args as {dir}. Yields (api, recv); at the end checks that every batch
    was signed and that volley exited 0, then stops and removes everything."""
    recv = Receiver(SECRET)
    tmp = tempfile.mkdtemp(prefix="volley-evinj-")
    secret = os.path.join(tmp, "secret")
    with open(secret, "wb") as f:
        f.write(SECRET)
    for name, text in (files or {}).items():
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text)
    api = None
    try:
        api = Api(run_args=["--events-webhook", recv.url, "--events-secret-file", secret]
                  + [a.format(dir=tmp) for a in run_args], smtp=True)
        yield api, recv
        check(recv.bad_sig == 0, "bad signatures: %d" % recv.bad_sig)
        check(api.stop() == 0, "volley run exit code")
    finally:
        if api:
            api.close()
        recv.close()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


def case_smtp_and_http():
    with events_api() as (api, recv):
        want = {}                          # rcpt -> dict of fields the event must have
        # SMTP: one recipient, then five over several domains (both shards).
        c = api.client()
        c.expect(220, "greeting")
        code, lines = txn(c, "alice@src.test", ["solo@one.test"],
                          b"Subject: one\r\n\r\nhello\r\n")
        m = QUEUED_RE.search(lines[-1])
        check(code == 250 and m, "SMTP one: %d %r" % (code, lines))
        want["solo@one.test"] = {"id": m.group(1), "from": "alice@src.test", "source": "smtp",
                                 "client": "127.0.0.1", "campaign": None}
        multi = ["m1@one.test", "m2@two.test", "m3@three.test", "m4@four.test", "m5@five.test"]
        code, lines = txn(c, "bob@src.test", multi,
                          b"Subject: many\r\nX-Volley-Campaign: spring-7 extra\r\n\r\nhi\r\n",
                          ehlo=None)
        m = QUEUED_RE.search(lines[-1])
        check(code == 250 and m, "SMTP multi: %d %r" % (code, lines))
        for r in multi:
            want[r] = {"id": m.group(1), "from": "bob@src.test", "source": "smtp",
                       "client": "127.0.0.1", "campaign": "spring-7"}
        c.close()
        # HTTP: per-recipient bodies with a campaign; one raw body for two.
        hr = ["h%d@d%d.test" % (i, i) for i in range(4)]
        st, js = api.inject({"envelope_sender": "news@src.test", "campaign": "summer_3",
                             "content": {"subject": "Hi {{ n }}", "text_body": "n={{ n }}"},
                             "recipients": [{"email": r, "substitutions": {"n": str(i)}}
                                            for i, r in enumerate(hr)]})
        check(st == 200 and js["success_count"] == 4, "HTTP builder: %d %r" % (st, js))
        for r in hr:
            want[r] = {"from": "news@src.test", "source": "http", "client": "127.0.0.1",
                       "campaign": "summer_3"}
        shared = ["s1@one.test", "s2@two.test"]
        st, js = api.inject({"envelope_sender": "raw@src.test",
                             "content": "Subject: raw\r\n\r\nbody\r\n",
                             "recipients": [{"email": r} for r in shared]})
        check(st == 200 and js["success_count"] == 2, "HTTP raw: %d %r" % (st, js))
        for r in shared:
            want[r] = {"from": "raw@src.test", "source": "http", "client": "127.0.0.1",
                       "campaign": None}

        def delivered_all():
            got = {e["rcpt"] for _, e in recv.stored_events() if e.get("event") == "delivered"}
            return set(want) <= got
        wait_for(delivered_all, "a delivered event for every recipient at the webhook")
        log = {e["rcpt"]: e for e in api.log() if e.get("event") == "delivered"}
        evs = first_receipts(recv)
        for r, w in want.items():
            inj = [(p, e) for p, e in evs if e.get("rcpt") == r and e["event"] == "injected"]
            dlv = [(p, e) for p, e in evs if e.get("rcpt") == r and e["event"] == "delivered"]
            check(len(inj) == 1, "%s: %d injected events: %r" % (r, len(inj), inj))
            check(len(dlv) == 1, "%s: %d delivered events: %r" % (r, len(dlv), dlv))
            (pi, e), (pd, d) = inj[0], dlv[0]
            check(pi < pd, "%s: injected (at %d) after delivered (at %d)" % (r, pi, pd))
            check(e["id"] == d["id"] == log[r]["id"],
                  "%s: ids injected %s, delivered %s, log %s" % (r, e["id"], d["id"],
                                                                 log[r]["id"]))
            if "id" in w:
                check(e["id"] == w["id"], "%s: id %s, the 250 said %s" % (r, e["id"], w["id"]))
            check(e["domain"] == r.split("@")[1] and e["attempt"] == 0,
                  "%s: domain/attempt %r" % (r, e))
            for k in ("from", "source", "client", "campaign"):
                check(e.get(k) == w[k], "%s: %s is %r, expected %r (event %r)" %
                      (r, k, e.get(k), w[k], e))
        n_inj = sum(1 for _, e in evs if e["event"] == "injected")
        check(n_inj == len(want), "%d injected events for %d recipients" % (n_inj, len(want)))
    print("ok %d recipients (SMTP %d, HTTP %d): one injected event each, before its "
          "delivered event" % (len(want), 6, 6))


def case_unsubscribe():
    with events_api({"unsub-secret": "unsub-secret-0123456789abcdef\n"},
                    ["--unsub", "src.test=" + BASE, "--unsub-secret-file",
                     "{dir}/unsub-secret"]) as (api, recv):
        st, js = api.inject({"envelope_sender": "news@src.test",
                             "content": {"subject": "n", "text_body": "hi",
                                         "headers": {"X-Campaign": "fall"}},
                             "recipients": [{"email": "click@dst.test"},
                                            {"email": "mail@dst.test"}]})
        check(st == 200 and js["success_count"] == 2, "inject: %d %r" % (st, js))
        msgs = by_rcpt(api.wait_saved(2, "unsubscribe links"))
        path = link_of(msgs["click@dst.test"])
        st, _, body = api.req("POST", path[:-1] + ("A" if path[-1] != "A" else "B"), ONE_CLICK,
                              token=None)
        check(st == 404, "a tampered link: %d %r" % (st, body))
        st, _, body = api.req("POST", path, ONE_CLICK, token=None)
        check(st == 200, "one-click POST: %d %r" % (st, body))
        to, q = link_of(msgs["mail@dst.test"], mailto=True)[len("mailto:"):].split("?", 1)
        c = api.client()
        c.expect(220, "greeting")
        code, lines = txn(c, "mail@dst.test", [to], ("Subject: %s\r\n\r\n\r\n" % urllib.parse.
                          parse_qs(q)["subject"][0]).encode())
        check(code == 250 and "Unsubscribed" in lines[-1], "mailto: %d %r" % (code, lines))
        c.close()

        def unsubs():
            return [e for _, e in first_receipts(recv) if e["event"] == "unsubscribe"]
        wait_for(lambda: len(unsubs()) >= 2, "two unsubscribe events at the webhook")
        got = {e["rcpt"]: e for e in unsubs()}
        check(len(unsubs()) == 2 and set(got) == {"click@dst.test", "mail@dst.test"},
              "unsubscribe events: %r" % unsubs())
        for r, source in (("click@dst.test", "http"), ("mail@dst.test", "smtp")):
            e = got[r]
            for k, v in (("domain", "dst.test"), ("scope", "src.test"), ("campaign", "fall"),
                         ("source", source), ("client", "127.0.0.1"), ("attempt", 0)):
                check(e.get(k) == v, "%s: %s is %r, expected %r (event %r)" % (r, k, e.get(k),
                                                                            v, e))
    print("ok one-click and mailto unsubscribes: one unsubscribe event each")


if __name__ == "__main__":
    run_cases([("smtp_and_http", case_smtp_and_http), ("unsubscribe", case_unsubscribe)])
