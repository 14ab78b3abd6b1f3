"""http_suppress.py - the suppression list (issue 12): the CLI, the HTTP
API's check and the SMTP listener's (550 5.7.1 at RCPT). HTTP_CASE=name runs
one case."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_inject import run_cases  # noqa: E402
from http_lib import Api, by_rcpt  # noqa: E402
from inject_lib import check, txn, volley_bin  # noqa: E402


def sup(data, *args, stdin=None):
    r = subprocess.run([volley_bin(), "suppress"] + list(args) + ["--data", data],
                       capture_output=True, timeout=30, input=stdin)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def rows(csv):
    lines = csv.strip().split("\n")
    check(lines[0] == "address,scope,reason,time", "CSV header: %r" % lines[0])
    return sorted(tuple(l.split(",")[:3]) for l in lines[1:] if l)


def case_cli():
    tmp = tempfile.mkdtemp(prefix="volley-sup-test-")
    try:
        d, d2 = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        rc, out, err = sup(d, "ls")
        check(rc == 0 and rows(out) == [], "ls of nothing: %d %r %r" % (rc, out, err))
        for args in (("add", "Gone@Example.TEST", "--reason", "hard_bounce"),
                     ("add", "u@x.test", "--reason", "unsubscribe", "--scope", "news.test"),
                     ("add", "m@x.test")):
            rc, out, err = sup(d, *args)
            check(rc == 0, "%r: %d %s" % (args, rc, err))
        rc, out, _ = sup(d, "ls")
        check(rows(out) == [("gone@example.test", "", "hard_bounce"), ("m@x.test", "", "manual"),
                            ("u@x.test", "news.test", "unsubscribe")], "ls: %r" % out)
        rc, exp, _ = sup(d, "export")
        check(rc == 0 and exp == out, "export differs from ls: %r" % exp)
        path = os.path.join(tmp, "x.csv")
        with open(path, "w") as f:
            f.write(exp + "plain@y.test\n")
        rc, _, err = sup(d2, "import", path)
        check(rc == 0 and "4 entries" in err, "import: %d %s" % (rc, err))
        rc, out2, _ = sup(d2, "export")
        check(rows(out2) == rows(exp) + [("plain@y.test", "", "manual")] or
              rows(out2) == sorted(rows(exp) + [("plain@y.test", "", "manual")]),
              "round trip: %r" % out2)
        t1 = [l.split(",")[3] for l in exp.strip().split("\n")[1:]]
        t2 = [l.split(",")[3] for l in out2.strip().split("\n")[1:] if not l.startswith("plain")]
        check(sorted(t1) == sorted(t2), "times not kept: %r %r" % (t1, t2))
        rc, _, err = sup(d, "rm", "GONE@example.test")
        check(rc == 0, "rm: %s" % err)
        rc, _, err = sup(d, "rm", "gone@example.test")
        check(rc == 2 and "not in the list" in err, "rm twice: %d %s" % (rc, err))
        rc, _, err = sup(d, "add", "not an address")
        check(rc == 2 and "invalid" in err, "bad address: %d %s" % (rc, err))
        rc, _, err = sup(d, "add", "a@b.test", "--reason", "spite")
        check(rc == 2 and "--reason" in err, "bad reason: %d %s" % (rc, err))
        bad = os.path.join(tmp, "bad.csv")
        with open(bad, "w") as f:
            f.write("address,scope,reason,time\nok1@z.test\nok2@z.test,,nope\n")
        rc, _, err = sup(d, "import", bad)
        check(rc == 2 and "line 3" in err and "nothing imported" in err, "bad import: %s" % err)
        rc, out, _ = sup(d, "ls")
        check(not any(r[0].startswith("ok1") for r in rows(out)), "a failed import wrote: %r" % out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_http():
    api = Api()
    try:
        for args in (("add", "global@dst.test", "--reason", "unsubscribe"),
                     ("add", "scoped@dst.test", "--reason", "hard_bounce", "--scope", "src.test"),
                     ("add", "other@dst.test", "--reason", "complaint", "--scope", "else.test")):
            rc, _, err = sup(api.data, *args)              # beside the running engine
            check(rc == 0, "suppress %r: %s" % (args, err))
        rcpts = ["ok@dst.test", "GLOBAL@dst.test", "scoped@dst.test", "other@dst.test"]
        st, js = api.inject({"envelope_sender": "s@src.test",
                             "content": {"subject": "x", "text_body": "hi {{ email }}"},
                             "recipients": [{"email": r} for r in rcpts]})
        check(st == 200, "inject: %d %r" % (st, js))
        check(js["success_count"] == 2 and js["failed_recipients"] == ["GLOBAL@dst.test",
                                                                       "scoped@dst.test"],
              "failed: %r" % js)
        check("suppressed: unsubscribe (global)" in js["errors"][0], "reason 1: %r" % js["errors"])
        check("suppressed: hard_bounce (for src.test)" in js["errors"][1], "reason 2: %r" %
              js["errors"])
        msgs = by_rcpt(api.wait_saved(2, "suppressed"))
        time.sleep(0.3)
        check(sorted(by_rcpt(api.saved())) == ["ok@dst.test", "other@dst.test"],
              "delivered: %r" % [s["rcpts"] for s in api.saved()])
        check("hi ok@dst.test" in msgs["ok@dst.test"].get_content(), "merge of email")
        # one body for all (raw, no merge field): the suppressed one is left out
        st, js = api.inject({"envelope_sender": "s@else.test", "content": "Subject: same\r\n\r\nx\r\n",
                             "recipients": [{"email": "a1@dst.test"}, {"email": "other@dst.test"},
                                            {"email": "global@dst.test"}]})
        check(st == 200 and js["success_count"] == 1 and
              js["failed_recipients"] == ["other@dst.test", "global@dst.test"], "batch: %r" % js)
        saved = api.wait_saved(3, "batch")
        check([s["rcpts"] for s in saved if "a1@dst.test" in s["rcpts"]] == [["a1@dst.test"]],
              "batch delivered: %r" % [s["rcpts"] for s in saved])
        rc, _, err = sup(api.data, "rm", "global@dst.test")
        check(rc == 0, "rm: %s" % err)
        st, js = api.inject({"envelope_sender": "s@src.test", "content": "Subject: y\r\n\r\ny\r\n",
                             "recipients": [{"email": "global@dst.test"}]})
        check(st == 200 and js["success_count"] == 1, "after rm: %r" % js)
    finally:
        api.close()


def case_smtp_rcpt():
    """The SMTP listener refuses a suppressed RCPT with 550 5.7.1 and the reason."""
    api = Api(smtp=True)
    try:
        sup(api.data, "add", "blocked@dst.test", "--reason", "complaint")
        sup(api.data, "add", "scoped@dst.test", "--scope", "src.test")
        c = api.client()
        c.expect(220, "greeting")
        c.send("EHLO client.test")
        c.expect(250, "EHLO")
        c.send("MAIL FROM:<s@src.test>")
        c.expect(250, "MAIL")
        c.send("RCPT TO:<Blocked@dst.test>")
        lines = c.expect(550, "suppressed RCPT")
        check("5.7.1" in lines[0] and "complaint (global)" in lines[0], "reply: %r" % lines)
        c.send("RCPT TO:<scoped@dst.test>")
        lines = c.expect(550, "scoped RCPT")
        check("manual (for src.test)" in lines[0], "reply: %r" % lines)
        c.send("RCPT TO:<fine@dst.test>")
        c.expect(250, "other RCPT")
        c.send("RSET")
        c.expect(250, "RSET")
        c.send("MAIL FROM:<s@else.test>")
        c.expect(250, "MAIL 2")
        c.send("RCPT TO:<scoped@dst.test>")
        c.expect(250, "scoped for another sender")
        c.send("QUIT")
        c.expect(221, "QUIT")
    finally:
        api.close()


def case_smtp_accept():
    """--suppress-smtp accept: the RCPT gets 250, the recipient is dropped at delivery."""
    api = Api(smtp=True, run_args=["--suppress-smtp", "accept"])
    try:
        sup(api.data, "add", "blocked@dst.test", "--reason", "complaint")
        c = api.client()
        c.expect(220, "greeting")
        code, lines = txn(c, "s@src.test", ["blocked@dst.test", "fine@dst.test"],
                          b"Subject: accept\r\n\r\nbody\r\n")
        check(code == 250, "DATA: %d %r" % (code, lines))
        c.send("QUIT")
        c.expect(221, "QUIT")
        saved = api.wait_saved(1, "accept")
        # The sink saving the message and volley logging "delivered" race:
        # wait for both outcomes in the log, not for the first one.
        want = {"blocked@dst.test": "suppressed", "fine@dst.test": "delivered"}
        end = time.monotonic() + 20
        ev = {}
        while time.monotonic() < end:
            ev = {e["rcpt"]: e["event"] for e in api.log()}
            if len(ev) >= len(want):
                break
            time.sleep(0.05)
        check(ev == want, "log: %r" % api.log())
        check([s["rcpts"] for s in api.saved()] == [["fine@dst.test"]], "sent: %r" %
              [s["rcpts"] for s in saved])
    finally:
        api.close()


def case_http_routes():
    """GET/POST/DELETE /api/v1/suppress, the same list as the CLI's."""
    import json
    import urllib.parse
    api = Api()
    try:
        bad = {"entries": [{"address": "a@x.test"}, {"address": "not an address"}]}
        st, _, body = api.req("POST", "/api/v1/suppress", bad)
        js = json.loads(body)
        check(st == 400 and js["field"] == "entries[1].address", "bad entry: %d %r" % (st, js))
        st, _, body = api.req("POST", "/api/v1/suppress",
                              {"entries": [{"address": "a@x.test"}, {"address": "b@x.test",
                               "scope": "src.test", "reason": "complaint", "color": "red"}]})
        check(st == 400 and json.loads(body)["field"] == "entries[1].color", "unknown field")
        st, _, body = api.req("GET", "/api/v1/suppress")
        check(st == 200 and json.loads(body)["entries"] == [], "a 400 added something: %r" % body)
        st, _, body = api.req("POST", "/api/v1/suppress",
                              {"entries": [{"address": "a@x.test"}, {"address": "b@x.test",
                               "scope": "src.test", "reason": "complaint"}]})
        check(st == 200 and json.loads(body) == {"added": 2}, "add: %d %r" % (st, body))
        st, _, body = api.req("GET", "/api/v1/suppress", token=None)
        check(st == 401, "GET without token: %d" % st)
        st, _, body = api.req("GET", "/api/v1/suppress?limit=1")
        js = json.loads(body)
        check(st == 200 and len(js["entries"]) == 1 and js["truncated"] is True, "limit: %r" % js)
        st, _, body = api.req("GET", "/api/v1/suppress")
        got = sorted((e["address"], e["scope"], e["reason"]) for e in json.loads(body)["entries"])
        check(got == [("a@x.test", "", "manual"), ("b@x.test", "src.test", "complaint")],
              "list: %r" % got)
        cli = rows(sup(api.data, "ls")[1])
        check(cli == got, "CLI sees %r, HTTP %r" % (cli, got))
        q = urllib.parse.urlencode({"address": "b@x.test", "scope": "src.test"})
        st, _, body = api.req("DELETE", "/api/v1/suppress?" + q)
        check(st == 200, "delete: %d %r" % (st, body))
        st, _, body = api.req("DELETE", "/api/v1/suppress?" + q)
        check(st == 404, "delete twice: %d" % st)
        st, js = api.inject({"envelope_sender": "s@src.test", "content": "Subject: a\r\n\r\nb\r\n",
                             "recipients": [{"email": "a@x.test"}, {"email": "b@x.test"}]})
        check(js["failed_recipients"] == ["a@x.test"] and js["success_count"] == 1, "%r" % js)
    finally:
        api.close()


if __name__ == "__main__":
    run_cases([("cli", case_cli), ("http", case_http), ("smtp_rcpt", case_smtp_rcpt),
               ("smtp_accept", case_smtp_accept), ("http_routes", case_http_routes)])
