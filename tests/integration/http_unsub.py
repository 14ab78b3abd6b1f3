"""http_unsub.py - one-click unsubscribe (issue 12, RFC 8058): volley run
--http --unsub src.test=https://unsub.src.test (TLS is a proxy's job; the
test POSTs the link's path to the API's port). The links are made per
recipient at delivery, for mail injected over HTTP and over SMTP alike.
HTTP_CASE=name runs one case."""
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_inject import run_cases  # noqa: E402
from http_lib import Api, by_rcpt  # noqa: E402
from inject_lib import check, txn, volley_bin  # noqa: E402

BASE = "https://unsub.src.test"
ONE_CLICK = b"List-Unsubscribe=One-Click"


def unsub_api(smtp=False):
    secret = os.path.join(tempfile.mkdtemp(prefix="volley-unsub-"), "secret")
    with open(secret, "w") as f:
        f.write("unsub-secret-0123456789abcdef\n")
    return Api(run_args=["--unsub", "src.test=" + BASE, "--unsub-secret-file", secret],
               smtp=smtp)


def link_of(msg, mailto=False):
    """The https link's path (or, with mailto, the mailto URI); both carry one token."""
    lu, post = msg["List-Unsubscribe"], msg["List-Unsubscribe-Post"]
    check(post == "List-Unsubscribe=One-Click", "List-Unsubscribe-Post: %r" % post)
    m = re.fullmatch(r"<(https://unsub\.src\.test/u/([A-Za-z0-9_.-]+))>,\s*"
                     r"<(mailto:unsubscribe@src\.test\?subject=([A-Za-z0-9_.-]+))>", str(lu))
    check(m and m.group(2) == m.group(4), "List-Unsubscribe: %r" % lu)
    return m.group(3) if mailto else urllib.parse.urlsplit(m.group(1)).path


def case_one_click():
    api = unsub_api()
    try:
        st, js = api.inject({"envelope_sender": "news@src.test",
                             "content": {"subject": "n", "text_body": "hi {{ name }}",
                                         "headers": {"X-Campaign": "spring"}},
                             "recipients": [{"email": "reader@dst.test", "name": "R"},
                                            {"email": "keeper@dst.test", "name": "K"}]})
        check(st == 200 and js["success_count"] == 2, "inject: %d %r" % (st, js))
        # raw content and another sending domain
        st, js = api.inject({"envelope_sender": "news@src.test",
                             "content": "Subject: raw\r\n\r\nraw body\r\n",
                             "recipients": [{"email": "raw@dst.test"}]})
        check(st == 200 and js["success_count"] == 1, "raw: %r" % js)
        st, js = api.inject({"envelope_sender": "x@other.test",
                             "content": "Subject: other\r\n\r\nbody\r\n",
                             "recipients": [{"email": "o@dst.test"}]})
        check(st == 200, "other domain: %r" % js)
        msgs = by_rcpt(api.wait_saved(4, "one-click"))
        check(msgs["o@dst.test"]["List-Unsubscribe"] is None, "no --unsub for other.test")
        path_r, path_k = link_of(msgs["reader@dst.test"]), link_of(msgs["keeper@dst.test"])
        path_raw = link_of(msgs["raw@dst.test"])
        check(len({path_r, path_k, path_raw}) == 3, "tokens must differ per recipient")
        # tampering: each a 404, and nothing suppressed
        tok = path_r[3:]
        payload, mac = tok.split(".")
        swap = lambda c: "A" if c != "A" else "B"    # noqa: E731
        for bad in (payload[:-1] + swap(payload[-1]) + "." + mac,
                    payload + "." + mac[:-1] + swap(mac[-1]),
                    path_k[3:].split(".")[0] + "." + mac,        # keeper's payload, reader's MAC
                    "garbage", ""):
            st, _, body = api.req("POST", "/u/" + bad, ONE_CLICK, token=None,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
            check(st == 404, "tampered token %r: %d %r" % (bad[:40], st, body))
        st, _, body = api.req("POST", path_r, b"nothing", token=None)
        check(st == 400, "POST without List-Unsubscribe=One-Click: %d" % st)
        st, _, _ = api.req("GET", path_r, token=None)
        check(st == 405, "GET on the link: %d" % st)
        # the real one-click POST, with curl as a mailbox provider would
        r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-X", "POST", "-H",
                            "Content-Type: application/x-www-form-urlencoded", "--data",
                            "List-Unsubscribe=One-Click",
                            "http://127.0.0.1:%d%s" % (api.http_port, path_r)],
                           capture_output=True, timeout=30)
        out, code = r.stdout.decode().rsplit("\n", 1)
        check(code == "200" and '"unsubscribed":"reader@dst.test"' in out, "curl: %s %s" %
              (code, out))
        st, _, _ = api.req("POST", path_raw, ONE_CLICK, token=None,
                           headers={"Content-Type": "multipart/form-data; boundary=x"})
        check(st == 200, "second link: %d" % st)
        r = subprocess.run([volley_bin(), "suppress", "ls", "--data", api.data],
                           capture_output=True, timeout=30)
        rows = [l.split(",")[:3] for l in r.stdout.decode().strip().split("\n")[1:]]
        check(sorted(rows) == [["raw@dst.test", "src.test", "unsubscribe"],
                               ["reader@dst.test", "src.test", "unsubscribe"]],
              "suppression list: %r" % rows)
        st, js = api.inject({"envelope_sender": "news@src.test",
                             "content": {"subject": "again", "text_body": "x"},
                             "recipients": [{"email": "reader@dst.test"},
                                            {"email": "keeper@dst.test"}]})
        check(st == 200 and js["failed_recipients"] == ["reader@dst.test"] and
              "suppressed: unsubscribe (for src.test)" in js["errors"][0], "after: %r" % js)
        st, js = api.inject({"envelope_sender": "x@other.test",
                             "content": "Subject: o\r\n\r\nb\r\n",
                             "recipients": [{"email": "reader@dst.test"}]})
        check(st == 200 and js["success_count"] == 1, "other sender still mails: %r" % js)
    finally:
        api.close()


def case_smtp_at_delivery():
    """Mail injected over SMTP, one body for two recipients: each delivered
    copy gets its own link (made at delivery), the queue holds one message;
    after the POST, the SMTP listener refuses the address."""
    api = unsub_api(smtp=True)
    try:
        c = api.client()
        c.expect(220, "greeting")
        msg = (b"From: news@src.test\r\nSubject: smtp\r\nX-Campaign: autumn\r\n\r\n"
               b".dot line\r\nbody\r\n")
        code, lines = txn(c, "news@src.test", ["one@dst.test", "two@dst.test"], msg)
        check(code == 250, "DATA: %d %r" % (code, lines))
        saved = api.wait_saved(2, "smtp")
        msgs = by_rcpt(saved)
        p1, p2 = link_of(msgs["one@dst.test"]), link_of(msgs["two@dst.test"])
        check(p1 != p2, "one link per recipient")
        for r, m in msgs.items():
            check(m["Subject"] == "smtp" and
                  m.get_content().replace("\r\n", "\n") == ".dot line\nbody\n",
                  "%s: body changed: %r" % (r, m.get_content()))
            check(len(m.get_all("List-Unsubscribe")) == 1, "one List-Unsubscribe")
        st, _, body = api.req("POST", p2, ONE_CLICK, token=None)
        check(st == 200 and b"two@dst.test" in body, "POST: %d %r" % (st, body))
        rows = [l.split(",")[:3] for l in subprocess.run(
            [volley_bin(), "suppress", "ls", "--data", api.data], capture_output=True,
            timeout=30).stdout.decode().strip().split("\n")[1:]]
        check(rows == [["two@dst.test", "src.test", "unsubscribe"]], "list: %r" % rows)
        c.send("MAIL FROM:<news@src.test>")
        c.expect(250, "MAIL")
        c.send("RCPT TO:<two@dst.test>")
        lines = c.expect(550, "RCPT after unsubscribing")
        check("unsubscribe (for src.test)" in lines[0], "reply: %r" % lines)
        c.send("QUIT")
        c.expect(221, "QUIT")
    finally:
        api.close()


def case_mailto():
    """The mailto form through the SMTP listener: a message to
    unsubscribe@src.test with the token as Subject is not queued; it
    suppresses the recipient (250); a changed token gets 550."""
    api = unsub_api(smtp=True)
    try:
        c = api.client()
        c.expect(220, "greeting")
        code, _ = txn(c, "news@src.test", ["m@dst.test"], b"Subject: hi\r\n\r\nx\r\n")
        check(code == 250, "inject")
        uri = link_of(by_rcpt(api.wait_saved(1, "mailto"))["m@dst.test"], mailto=True)
        to, q = uri[len("mailto:"):].split("?", 1)
        tok = urllib.parse.parse_qs(q)["subject"][0]
        bad = tok[:-1] + ("A" if tok[-1] != "A" else "B")
        for subject, want in ((bad, 550), (tok, 250)):
            code, lines = txn(c, "reader@mailbox.test", [to],
                              ("From: reader@mailbox.test\r\nSubject: %s\r\n\r\n\r\n"
                               % subject).encode(), ehlo=None)
            check(code == want, "mailto with %s token: %d %r" % (
                "a changed" if want == 550 else "the", code, lines))
        check("Unsubscribed" in lines[-1], "reply: %r" % lines)
        rows = [l.split(",")[:3] for l in subprocess.run(
            [volley_bin(), "suppress", "ls", "--data", api.data], capture_output=True,
            timeout=30).stdout.decode().strip().split("\n")[1:]]
        check(rows == [["m@dst.test", "src.test", "unsubscribe"]], "list: %r" % rows)
        check(len(api.saved()) == 1, "the unsubscribe mail was queued: %r" %
              [s["rcpts"] for s in api.saved()])
        c.send("QUIT")
        c.expect(221, "QUIT")
    finally:
        api.close()


if __name__ == "__main__":
    run_cases([("one_click", case_one_click), ("smtp_at_delivery", case_smtp_at_delivery),
               ("mailto", case_mailto)])
