"""http_inject.py - the HTTP API of `volley run --http` (issue 12), end to end
into a `volley sink`: every message the sink saved is parsed with Python's
email package. Cases: access (token, /healthz, loopback vs --allow), the
queue stats route against `volley queue stats --json`, the builder (MIME
structure, encodings, RFC 2047, merge fields HTML-escaped or raw, recipient
over top-level values, defaults, attachments byte-exact), raw content, one
message for identical bodies, a missing merge field, a line break put in a
header by a value, every 400 (naming field and recipient index, nothing
queued), curl, keep-alive, and the 200 surviving kill -9.
HTTP_CASE=name runs one case."""
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_lib import Api, TOKEN, by_rcpt, parse_saved  # noqa: E402
from inject_lib import check, fail, volley_bin  # noqa: E402


def run_cases(cases):
    only = os.environ.get("HTTP_CASE")
    for name, fn in cases:
        if only and name != only:
            continue
        t0 = time.monotonic()
        fn()
        print("ok %s (%.2fs)" % (name, time.monotonic() - t0))


def case_access():
    api = Api()
    try:
        st, h, body = api.req("GET", "/healthz", token=None)
        check(st == 200 and json.loads(body) == {"ok": True}, "healthz: %d %r" % (st, body))
        for tok in (None, "Bearer wrong-token-0123456789", "Basic " + TOKEN, "Bearer " + TOKEN + "x"):
            st, h, body = api.req("GET", "/api/v1/queue", token=tok)
            check(st == 401, "token %r: %d %r" % (tok, st, body))
            check(h.get("www-authenticate") == "Bearer", "no WWW-Authenticate: %r" % h)
            st, _, body = api.req("POST", "/api/inject/v1", b"{}", token=tok)
            check(st == 401, "inject with token %r: %d" % (tok, st))
        st, _, body = api.req("GET", "/nope")
        check(st == 404, "unknown route: %d" % st)
        st, _, body = api.req("GET", "/api/inject/v1")
        check(st == 405, "GET on inject: %d" % st)
    finally:
        api.close()
    # --allow without loopback: a loopback client is refused at accept
    api = Api(run_args=["--allow", "192.0.2.0/24"])
    try:
        try:
            st, _, _ = api.req("GET", "/healthz", token=None)
            fail("a client outside --allow got an answer: %d" % st)
        except (ConnectionError, OSError, Exception) as e:   # reset or closed at once
            if "got an answer" in str(e):
                raise
    finally:
        api.close()


def case_stats():
    api = Api(route_port=1)            # port 1: refused, everything stays queued
    try:
        st, js = api.inject({"envelope_sender": "s@src.test", "content": "Subject: x\r\n\r\nbody\r\n",
                             "recipients": [{"email": "a@one.test"}, {"email": "b@two.test"},
                                            {"email": "c@two.test"}]})
        check(st == 200 and js["success_count"] == 3, "inject: %d %r" % (st, js))
        got = api.stats()
        r = subprocess.run([volley_bin(), "queue", "stats", "--json", "--data", api.data],
                           capture_output=True, timeout=30)
        check(r.returncode == 0, "queue stats: %r" % r.stderr)
        cli = json.loads(r.stdout.decode())
        check(set(got) == set(cli), "keys differ: %r vs %r" % (sorted(got), sorted(cli)))
        check(list(got) == list(cli), "key order differs: %r vs %r" % (list(got), list(cli)))
        for k in ("shards", "message_records", "top_domains"):
            check(got[k] == cli[k], "%s: api %r, cli %r" % (k, got[k], cli[k]))
        check(got["ready"] + got["deferred"] == 3, "3 open recipients expected: %r" % got)
        check({d["domain"]: d["rcpts"] for d in got["top_domains"]} == {"one.test": 1, "two.test": 2},
              "top domains: %r" % got["top_domains"])
    finally:
        api.close()


ATT_BIN = bytes(random.Random(12).randrange(256) for _ in range(3001))
LONG_UTF8 = ("Grüße aus Köln, " * 80).strip()           # a line over 998 octets, non-ASCII


def builder_request():
    import base64
    return {
        "envelope_sender": "bounces@src.test",
        "content": {
            "subject": "Héllo {{ first }} — ready?",
            "from": {"email": "news@src.test", "name": "Nëws Team"},
            "reply_to": {"email": "help@src.test", "name": "Help, Desk"},
            "headers": {"X-Campaign": "spring-{{ campaign }}", "X-Plain": "fixed"},
            "text_body": "Hi {{ first }},\nyour code: {{ code | default: \"NONE\" }}\n"
                         "tag: {{ tag }}\n" + LONG_UTF8 + "\n",
            "html_body": "<p>Hi {{ first }}</p><p>{{ code | default: 'NONE' }}</p>"
                         "<p>{{ tag }}</p>",
            "attachments": [
                {"data": base64.b64encode(ATT_BIN).decode(), "content_type": "application/pdf",
                 "file_name": "report.pdf"},
                {"data": base64.b64encode("día,uno\n".encode()).decode(),
                 "content_type": "text/csv", "file_name": "añadido ü.csv"},
            ],
        },
        "substitutions": {"campaign": "2026", "tag": "top", "first": "Top"},
        "recipients": [
            {"email": "ann@dst.test", "name": "Ann Müller",
             "substitutions": {"first": "<Ann & Co>", "code": 42, "tag": "a\"b'c"}},
            {"email": "bob@dst.test", "name": "Bob"},
        ],
    }


def case_builder():
    api = Api()
    try:
        st, js = api.inject(builder_request())
        check(st == 200, "inject: %d %r" % (st, js))
        check(js == {"success_count": 2, "fail_count": 0, "failed_recipients": [], "errors": []},
              "response: %r" % js)
        msgs = by_rcpt(api.wait_saved(2, "builder"))
        check(set(msgs) == {"ann@dst.test", "bob@dst.test"}, "recipients: %r" % list(msgs))
        for rcpt, m in msgs.items():
            check(m["MIME-Version"] == "1.0", "%s: MIME-Version %r" % (rcpt, m["MIME-Version"]))
            check(m["Date"] and m["Date"].datetime is not None, "%s: no Date" % rcpt)
            check(m["Message-ID"] and m["Message-ID"].startswith("<"), "%s: Message-ID" % rcpt)
            check(str(m["From"]) == "Nëws Team <news@src.test>", "From: %r" % str(m["From"]))
            check(m["From"].addresses[0].display_name == "Nëws Team", "From name")
            check(m["Reply-To"].addresses[0].display_name == "Help, Desk" and
                  m["Reply-To"].addresses[0].addr_spec == "help@src.test", "Reply-To: %r" % m["Reply-To"])
            check(m["X-Campaign"] == "spring-2026" and m["X-Plain"] == "fixed", "custom headers")
            check(m.get_content_type() == "multipart/mixed", "%s: top %s" % (rcpt, m.get_content_type()))
            parts = list(m.iter_parts())
            check(len(parts) == 3, "%s: %d parts under mixed" % (rcpt, len(parts)))
            check(parts[0].get_content_type() == "multipart/alternative", "alternative first")
            alt = list(parts[0].iter_parts())
            check([p.get_content_type() for p in alt] == ["text/plain", "text/html"],
                  "alternative parts: %r" % [p.get_content_type() for p in alt])
            check(alt[0]["Content-Transfer-Encoding"] == "quoted-printable",
                  "long non-ASCII text must be QP: %r" % alt[0]["Content-Transfer-Encoding"])
            check(alt[1]["Content-Transfer-Encoding"] == "7bit", "ASCII html is 7bit")
            check(alt[0].get_content_charset() == "utf-8", "charset")
            raw = m.as_bytes()
            for line in raw.split(b"\n"):
                check(len(line) <= 999, "%s: a line of %d octets on the wire" % (rcpt, len(line)))
            check(max(raw) < 128, "%s: the message must be 7-bit clean" % rcpt)
            check(parts[1].get_filename() == "report.pdf", "filename 1: %r" % parts[1].get_filename())
            check(parts[1].get_content_type() == "application/pdf", "att type")
            check(parts[1]["Content-Transfer-Encoding"] == "base64", "att cte")
            check(parts[1].get_content() == ATT_BIN, "%s: binary attachment not byte-exact" % rcpt)
            check(parts[2].get_filename() == "añadido ü.csv", "RFC 2231 filename: %r" %
                  parts[2].get_filename())
            check(parts[2].get_payload(decode=True) == "día,uno\n".encode(), "csv bytes")
            text, html = alt[0].get_content().replace('\r\n', '\n'), alt[1].get_content().replace('\r\n', '\n')
            check(LONG_UTF8 in text, "long UTF-8 line lost in QP round trip")
        a, b = msgs["ann@dst.test"], msgs["bob@dst.test"]
        check(a["Subject"] == "Héllo <Ann & Co> — ready?", "Subject (RFC 2047): %r" % a["Subject"])
        check(b"=?UTF-8?B?" in a.as_bytes().split(b"\r\n\r\n")[0] or
              b"=?utf-8?" in a.as_bytes().split(b"\r\n\r\n")[0].lower(), "no encoded word on the wire")
        check(a["To"].addresses[0].display_name == "Ann Müller" and
              a["To"].addresses[0].addr_spec == "ann@dst.test", "To: %r" % str(a["To"]))
        check(str(b["To"]) == "Bob <bob@dst.test>", "To: %r" % str(b["To"]))
        ta = list(list(a.iter_parts())[0].iter_parts())
        tb = list(list(b.iter_parts())[0].iter_parts())
        check("Hi <Ann & Co>,\nyour code: 42\ntag: a\"b'c\n" in ta[0].get_content().replace('\r\n', '\n'),
              "text raw (recipient values): %r" % ta[0].get_content().replace('\r\n', '\n')[:80])
        check("<p>Hi &lt;Ann &amp; Co&gt;</p><p>42</p><p>a&quot;b&#39;c</p>" in ta[1].get_content().replace('\r\n', '\n'),
              "html escaped: %r" % ta[1].get_content().replace('\r\n', '\n'))
        check("Hi Top,\nyour code: NONE\ntag: top\n" in tb[0].get_content().replace('\r\n', '\n'),
              "top-level and default: %r" % tb[0].get_content().replace('\r\n', '\n')[:80])
        check("<p>Hi Top</p><p>NONE</p><p>top</p>" in tb[1].get_content().replace('\r\n', '\n'), "html defaults")
    finally:
        api.close()


def case_simple_parts():
    """text only -> a single text/plain 7bit part; html only -> text/html."""
    api = Api()
    try:
        st, js = api.inject({"envelope_sender": "s@src.test",
                             "content": {"subject": "plain", "text_body": "just text\n"},
                             "recipients": [{"email": "t@dst.test"}]})
        check(st == 200 and js["success_count"] == 1, "text only: %d %r" % (st, js))
        st, js = api.inject({"envelope_sender": "s@src.test",
                             "content": {"subject": "html", "html_body": "<b>x</b>"},
                             "recipients": [{"email": "h@dst.test"}]})
        check(st == 200 and js["success_count"] == 1, "html only: %d %r" % (st, js))
        msgs = by_rcpt(api.wait_saved(2, "simple"))
        t, h = msgs["t@dst.test"], msgs["h@dst.test"]
        check(not t.is_multipart() and t.get_content_type() == "text/plain", "text only: %s" %
              t.get_content_type())
        check(t["Content-Transfer-Encoding"] == "7bit" and t.get_content().replace('\r\n', '\n') == "just text\n",
              "text content: %r" % t.get_content().replace('\r\n', '\n'))
        check(not h.is_multipart() and h.get_content_type() == "text/html", "html only")
        check(h["From"] == "s@src.test", "From defaults to the envelope sender: %r" % h["From"])
    finally:
        api.close()


def case_raw():
    api = Api()
    try:
        raw = ("From: Shop <shop@src.test>\nTo: {{ email }}\nSubject: order {{ order }}\n\n"
               "Dear {{ name | default: \"customer\" }}, order {{ order }} shipped.\n")
        st, js = api.inject({"envelope_sender": "shop@src.test", "content": raw,
                             "substitutions": {"order": "X1"},
                             "recipients": [{"email": "r1@dst.test", "name": "Rita",
                                             "substitutions": {"order": "A-7"}},
                                            {"email": "r2@dst.test"}]})
        check(st == 200 and js["success_count"] == 2, "raw: %d %r" % (st, js))
        msgs = by_rcpt(api.wait_saved(2, "raw"))
        m1, m2 = msgs["r1@dst.test"], msgs["r2@dst.test"]
        check(m1["Subject"] == "order A-7" and m1["To"] == "r1@dst.test", "raw 1 headers")
        check(m1.get_content().replace('\r\n', '\n') == "Dear Rita, order A-7 shipped.\n", "raw 1: %r" % m1.get_content().replace('\r\n', '\n'))
        check(m2.get_content().replace('\r\n', '\n') == "Dear customer, order X1 shipped.\n", "raw 2: %r" % m2.get_content().replace('\r\n', '\n'))
        check(m1["Date"] and m1["Message-ID"], "Date/Message-ID added to raw content")
        # no merge field: one message carries every recipient
        st, js = api.inject({"envelope_sender": "shop@src.test",
                             "content": "Subject: same\r\n\r\nsame for all\r\n",
                             "recipients": [{"email": "s%d@same.test" % i} for i in range(3)]})
        check(st == 200 and js["success_count"] == 3, "identical: %d %r" % (st, js))
        saved = api.wait_saved(3, "identical")
        same = [s for s in saved if s["rcpts"] and s["rcpts"][0].endswith("@same.test")]
        check(len(same) == 1 and sorted(same[0]["rcpts"]) == ["s0@same.test", "s1@same.test",
                                                              "s2@same.test"],
              "one message for 3 recipients expected: %r" % [s["rcpts"] for s in same])
    finally:
        api.close()


def case_rcpt_errors():
    """Per-recipient failures: a missing field, a line break put in a header
    by a value; the other recipients are queued; the 200 lists the failures."""
    api = Api()
    try:
        st, js = api.inject({
            "envelope_sender": "s@src.test",
            "content": {"subject": "Hi {{ first }}", "text_body": "x {{ first }} {{ last }}"},
            "recipients": [{"email": "ok@dst.test", "substitutions": {"first": "A", "last": "B"}},
                           {"email": "nolast@dst.test", "substitutions": {"first": "C"}},
                           {"email": "inj@dst.test",
                            "substitutions": {"first": "x\r\nBcc: evil@x.test", "last": "D"}}]})
        check(st == 200, "status %d %r" % (st, js))
        check(js["success_count"] == 1 and js["fail_count"] == 2, "counts: %r" % js)
        check(js["failed_recipients"] == ["nolast@dst.test", "inj@dst.test"], "failed: %r" % js)
        e0, e1 = js["errors"]
        check(e0.startswith("recipients[1] (nolast@dst.test)") and "'last'" in e0, "error 1: %r" % e0)
        check(e1.startswith("recipients[2] (inj@dst.test)") and "line break" in e1, "error 2: %r" % e1)
        msgs = by_rcpt(api.wait_saved(1, "rcpt errors"))
        time.sleep(0.5)
        check(list(by_rcpt(api.saved())) == ["ok@dst.test"], "only ok@ delivered: %r" %
              [s["rcpts"] for s in api.saved()])
        check(msgs["ok@dst.test"].get_content().replace('\r\n', '\n') == "x A B\n" or
              msgs["ok@dst.test"].get_content().replace('\r\n', '\n') == "x A B", "content: %r" %
              msgs["ok@dst.test"].get_content().replace('\r\n', '\n'))
    finally:
        api.close()


def bad_cases():
    good_r = [{"email": "a@dst.test"}]
    c = {"subject": "s", "text_body": "t"}
    return [
        ("bad json", b'{"envelope_sender": "s@src.test", ', "", None, "bad JSON"),
        ("not an object", [1, 2], "", None, "expected a JSON object"),
        ("unknown top field", {"envelope_sender": "s@src.test", "content": c, "recipients": good_r,
                               "bogus": 1}, "bogus", None, "unknown field"),
        ("missing sender", {"content": c, "recipients": good_r}, "envelope_sender", None, "missing"),
        ("bad sender", {"envelope_sender": "no-at-sign", "content": c, "recipients": good_r},
         "envelope_sender", None, "invalid address"),
        ("recipients type", {"envelope_sender": "s@src.test", "content": c, "recipients": "a@b"},
         "recipients", None, "expected an array"),
        ("no recipients", {"envelope_sender": "s@src.test", "content": c, "recipients": []},
         "recipients", None, "at least one"),
        ("bad rcpt address", {"envelope_sender": "s@src.test", "content": c,
                              "recipients": [{"email": "a@dst.test"}, {"email": "b@dst.test"},
                                             {"email": "bad address@dst.test"}]},
         "recipients[2].email", 2, "invalid address"),
        ("rcpt unknown field", {"envelope_sender": "s@src.test", "content": c,
                                "recipients": [{"email": "a@dst.test"},
                                               {"email": "b@dst.test", "nmae": "B"}]},
         "recipients[1].nmae", 1, "unknown field"),
        ("rcpt email type", {"envelope_sender": "s@src.test", "content": c,
                             "recipients": [{"email": 5}]}, "recipients[0].email", 0, "expected a string"),
        ("subst object", {"envelope_sender": "s@src.test", "content": c,
                          "recipients": [{"email": "a@dst.test", "substitutions": {"x": {"y": 1}}}]},
         "recipients[0].substitutions.x", 0, "substitution value"),
        ("content type", {"envelope_sender": "s@src.test", "content": 7, "recipients": good_r},
         "content", None, "expected a string"),
        ("builder unknown", {"envelope_sender": "s@src.test", "content": {"subjet": "x"},
                             "recipients": good_r}, "content.subjet", None, "unknown field"),
        ("bad template", {"envelope_sender": "s@src.test",
                          "content": {"text_body": "hi {{ name | upper }}"}, "recipients": good_r},
         "content.text_body", None, "unknown filter"),
        ("unclosed template", {"envelope_sender": "s@src.test",
                               "content": {"html_body": "hi {{ name "}, "recipients": good_r},
         "content.html_body", None, "expected '}}'"),
        ("bad base64", {"envelope_sender": "s@src.test",
                        "content": {"text_body": "x", "attachments": [{"data": "!!notb64"}]},
                        "recipients": good_r}, "content.attachments[0].data", None, "base64"),
        ("forbidden header", {"envelope_sender": "s@src.test",
                              "content": {"text_body": "x", "headers": {"Content-Type": "a/b"}},
                              "recipients": good_r}, "content.headers.Content-Type", None, "not allowed"),
        ("header CRLF", {"envelope_sender": "s@src.test",
                         "content": {"text_body": "x", "headers": {"X-A": "a\r\nBcc: b@c.test"}},
                         "recipients": good_r}, "content.headers.X-A", None, "CR or LF"),
        ("from type", {"envelope_sender": "s@src.test",
                       "content": {"text_body": "x", "from": "a@b.test"}, "recipients": good_r},
         "content.from", None, "expected an object"),
        ("oversize content", {"envelope_sender": "s@src.test",
                              "content": {"text_body": "x" * 300000}, "recipients": good_r},
         "content", None, "size limit"),
    ]


def case_bad_requests():
    api = Api(run_args=["--max-msg-size", "200k"])
    try:
        conn = api.conn()
        for label, body, field, idx, why in bad_cases():
            st, _, data = api.req("POST", "/api/inject/v1",
                                  body if isinstance(body, bytes) else json.dumps(body).encode(),
                                  conn=conn)
            check(st == 400, "%s: status %d %r" % (label, st, data[:200]))
            js = json.loads(data.decode())
            check(js.get("field", "") == field, "%s: field %r, expected %r (%r)" %
                  (label, js.get("field"), field, js))
            check(js.get("recipient_index") == idx, "%s: recipient_index %r, expected %r" %
                  (label, js.get("recipient_index"), idx))
            check(why in js.get("error", ""), "%s: error %r lacks %r" % (label, js.get("error"), why))
        conn.close()
        st = api.stats()
        check(st["ready"] == 0 and st["deferred"] == 0 and st["delivered"] == 0 and
              st["message_records"] == 0, "something was queued by a 400: %r" % st)
        time.sleep(0.3)
        check(api.saved() == [], "the sink got mail from a 400: %r" % api.saved())
    finally:
        api.close()


def case_curl_keepalive():
    api = Api()
    try:
        body = json.dumps({"envelope_sender": "s@src.test",
                           "content": {"subject": "curl {{ n }}", "text_body": "n={{ n }}"},
                           "recipients": [{"email": "c@dst.test", "substitutions": {"n": 1}}]})
        url = "http://127.0.0.1:%d/api/inject/v1" % api.http_port
        r = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-H",
                            "Authorization: Bearer " + TOKEN, "-H", "Content-Type: application/json",
                            "--data-binary", body, url], capture_output=True, timeout=30)
        check(r.returncode == 0, "curl failed: %r" % r.stderr)
        out, code = r.stdout.decode().rsplit("\n", 1)
        check(code == "200" and json.loads(out)["success_count"] == 1, "curl: %s %s" % (code, out))
        # 20 requests on one keep-alive connection (http.client reuses the socket)
        conn = api.conn()
        sock = None
        for i in range(20):
            st, js = api.inject({"envelope_sender": "s@src.test",
                                 "content": {"subject": "ka", "text_body": "k={{ n }}"},
                                 "recipients": [{"email": "k%d@dst.test" % i,
                                                 "substitutions": {"n": i}}]}, conn=conn)
            check(st == 200 and js["success_count"] == 1, "keep-alive %d: %d %r" % (i, st, js))
            if sock is None:
                sock = conn.sock
            check(conn.sock is sock and sock is not None, "connection not kept alive at %d" % i)
        conn.close()
        msgs = by_rcpt(api.wait_saved(21, "keep-alive"))
        check(msgs["k7@dst.test"].get_content().replace('\r\n', '\n').strip() == "k=7", "k7 content")
        check(msgs["c@dst.test"]["Subject"] == "curl 1", "curl subject")
    finally:
        api.close()


def case_durable_200():
    """Each 200 means queued on disk: kill -9 right after it, the messages are there."""
    api = Api(route_port=1)                # refused: stays queued
    try:
        n = 30
        for i in range(n):
            st, js = api.inject({"envelope_sender": "s@src.test",
                                 "content": {"subject": "d", "text_body": "{{ i }}"},
                                 "recipients": [{"email": "d%d@dst.test" % i,
                                                 "substitutions": {"i": i}}]})
            check(st == 200 and js["success_count"] == 1, "inject %d: %d %r" % (i, st, js))
        api.kill9()
        ids = api.queue_ids()
        check(len(ids) == n, "%d messages queued after kill -9, expected %d" % (len(ids), n))
    finally:
        api.close()


if __name__ == "__main__":
    run_cases([
        ("access", case_access),
        ("stats", case_stats),
        ("builder", case_builder),
        ("simple_parts", case_simple_parts),
        ("raw", case_raw),
        ("rcpt_errors", case_rcpt_errors),
        ("bad_requests", case_bad_requests),
        ("curl_keepalive", case_curl_keepalive),
        ("durable_200", case_durable_200),
    ])
