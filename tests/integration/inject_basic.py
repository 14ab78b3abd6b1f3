"""inject_basic.py - `volley run --listen`: mail in over SMTP, out to a
`volley sink`. Cases: EHLO capabilities; Python's smtplib as a client, the
message arriving byte-identical apart from the Received: line; swaks plain and
--pipeline; BDAT (CHUNKING); one message over many shards; an IPv6 listener; the evt=received
log line. INJECT_CASE=name runs one case."""
import os
import re
import shutil
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inject_lib import Intake, QUEUED_RE, check, fail, run_cases, stuff, txn  # noqa: E402

MSG = (b"Date: Sun, 06 Dec 2026 05:00:00 +0000\r\n"
       b"Message-ID: <inject-basic-1@src.test>\r\n"
       b"From: Sender <s@src.test>\r\n"
       b"To: r@dst.test\r\n"
       b"Subject: byte for byte\r\n"
       b"\r\n"
       b"first line\r\n"
       b".a line that starts with a dot\r\n"
       b"..two dots\r\n"
       b"\r\n"
       b"caf\xc3\xa9 8-bit\r\n"
       b"last line\r\n")


def split_received(content):
    """(the Received: field with its continuation lines, the rest)."""
    check(content.startswith(b"Received: "), "no Received: on top: %r" % content[:80])
    end = 0
    while True:
        nl = content.index(b"\r\n", end) + 2
        end = nl
        if not content[end:end + 1] in (b"\t", b" "):
            return content[:end], content[end:]


def case_ehlo():
    it = Intake(["--max-msg-size", "1M"])
    try:
        c = it.client()
        c.expect(220, "greeting")
        c.send("EHLO client.test")
        lines = c.expect(250, "EHLO")
        caps = set(l[4:].strip() for l in lines[1:])
        for want in ("PIPELINING", "SIZE 1048576", "8BITMIME", "SMTPUTF8",
                     "ENHANCEDSTATUSCODES", "CHUNKING"):
            check(want in caps, "EHLO lacks %s: %r" % (want, lines))
        check("STARTTLS" not in caps, "STARTTLS offered without a certificate: %r" % lines)
        c.send("STARTTLS")
        c.expect(454, "STARTTLS without a certificate")
        c.send("QUIT")
        c.expect(221, "QUIT")
    finally:
        it.close()


def case_smtplib_identical():
    it = Intake()
    try:
        s = smtplib.SMTP("127.0.0.1", it.port(), local_hostname="client.test", timeout=10)
        s.ehlo("client.test")
        code, _ = s.mail("s@src.test", ["BODY=8BITMIME"])
        check(code == 250, "MAIL: %d" % code)
        code, _ = s.rcpt("r@dst.test")
        check(code == 250, "RCPT: %d" % code)
        code, text = s.data(MSG)
        check(code == 250, "DATA: %d %r" % (code, text))
        m = QUEUED_RE.search(text.decode())
        check(m, "no queue id in the 250: %r" % text)
        qid = m.group(1)
        s.quit()
        saved = it.wait_saved(1, "smtplib")
        check(len(saved) == 1, "delivered %d copies" % len(saved))
        rec, rest = split_received(saved[0]["content"])
        check(rest == MSG, "not byte-identical apart from Received:\n%r\n%r" % (rest, MSG))
        rt = rec.decode()
        rm = re.match(r"Received: from client\.test \(unknown \[127\.0\.0\.1\]\)\r\n\tby \S+ "
                      r"\(volley\) with ESMTP id ([0-9a-f]{16})\r\n\tfor <r@dst\.test>;\r\n\t"
                      r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n$", rt)
        check(rm, "Received: line: %r" % rt)
        # PROTOCOL.md 4.3: the Received: id is the queue id, the one the 250 named
        check(rm.group(1) == qid, "Received: id %s, the 250 said queued as %s" % (rm.group(1), qid))
        check(saved[0]["mail_from"] == "s@src.test" and saved[0]["rcpts"] == ["r@dst.test"],
              "envelope: %r" % saved[0])
        ids = it.wait_logged([qid], "smtplib")
        check(ids == {qid}, "delivery log ids %r, 250 said %s" % (ids, qid))
        check(re.search(r"evt=received id=%s from=<s@src\.test> rcpts=1 size=\d+ "
                        r"client=127\.0\.0\.1" % qid, it.stderr()),
              "no evt=received line: %s" % it.stderr())
    finally:
        it.close()


def swaks(port, *args):
    if not shutil.which("swaks"):
        fail("swaks not installed (scripts/setup.sh installs it)")
    r = subprocess.run(["swaks", "-4", "--server", "127.0.0.1:%d" % port,
                        "--helo", "swaks.test"] + list(args),
                       capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def case_swaks():
    it = Intake()
    try:
        ids = []
        for extra in ([], ["--pipeline"]):
            rc, out = swaks(it.port(), "--from", "s@src.test", "--to",
                            "a@one.test,b@two.test", *extra)
            check(rc == 0, "swaks %r exited %d:\n%s" % (extra, rc, out))
            m = QUEUED_RE.search(out)
            check(m, "swaks %r: no queue id:\n%s" % (extra, out))
            ids.append(m.group(1))
            if extra:
                check(re.search(r"PIPELINING", out), "no PIPELINING seen by swaks:\n%s" % out)
        saved = it.wait_saved(4, "swaks")
        check(len(saved) == 4, "delivered %d, expected 4" % len(saved))
        rcpts = sorted(r for s in saved for r in s["rcpts"])
        check(rcpts == ["a@one.test", "a@one.test", "b@two.test", "b@two.test"],
              "recipients: %r" % rcpts)
        logged = it.wait_logged(ids, "swaks")
        check(sorted(logged) == sorted(ids), "log ids %r vs 250s %r" % (logged, ids))
    finally:
        it.close()


def case_many_shards():
    it = Intake()
    try:
        c = it.client()
        c.expect(220, "greeting")
        rcpts = ["u%d@d%d.test" % (i, i) for i in range(12)]
        code, lines = txn(c, "s@src.test", rcpts, MSG)
        check(code == 250, "dot: %s %r" % (code, lines))
        saved = it.wait_saved(len(rcpts), "many shards")
        got = sorted(r for s in saved for r in s["rcpts"])
        check(got == sorted(rcpts), "delivered to %r" % got)
        for s in saved:
            rest = split_received(s["content"])[1]
            check(rest == MSG, "content differs: %r" % s["content"])
    finally:
        it.close()


def case_ipv6():
    it = Intake(listen=("127.0.0.1", "::1"))
    try:
        c = it.client(i=1)
        c.expect(220, "greeting over IPv6")
        code, lines = txn(c, "s@src.test", ["v6@dst.test"], MSG)
        check(code == 250, "dot over IPv6: %s %r" % (code, lines))
        saved = it.wait_saved(1, "ipv6")
        rec = split_received(saved[0]["content"])[0].decode()
        check("(unknown [::1])" in rec, "Received: should name [::1]: %r" % rec)
    finally:
        it.close()


def case_pipelined_session():
    """Several transactions in one connection, each pipelined in one write."""
    it = Intake()
    try:
        c = it.client()
        c.expect(220, "greeting")
        c.send("EHLO client.test")
        c.expect(250, "EHLO")
        for i in range(5):
            c.send("MAIL FROM:<s@src.test>", "RCPT TO:<p%d@dst.test>" % i, "DATA")
            c.expect(250, "MAIL")
            c.expect(250, "RCPT")
            c.expect(354, "DATA")
            c.send_raw(stuff(MSG) + b".\r\n")
            c.expect(250, "dot %d" % i)
        c.send("QUIT")
        c.expect(221, "QUIT")
        check(len(it.wait_saved(5, "pipelined")) == 5, "not 5 delivered")
    finally:
        it.close()


def case_bdat():
    """CHUNKING (RFC 3030): the message in three BDAT chunks, pipelined in one
    write with MAIL and RCPT; the LAST chunk's reply carries the queue id after
    the commit. A chunk boundary inside a CRLF and a '.' line mean nothing."""
    it = Intake()
    try:
        c = it.client()
        lines = hello(c)
        check(any(l[4:] == "CHUNKING" for l in lines), "CHUNKING not offered: %r" % lines)
        parts = [MSG[:50], MSG[50:77], MSG[77:]]
        check(parts[1].endswith(b"\r"), "the second chunk should end inside a CRLF")
        wire = b"MAIL FROM:<s@src.test>\r\nRCPT TO:<b1@dst.test>\r\nRCPT TO:<b2@two.test>\r\n"
        for i, p in enumerate(parts):
            wire += b"BDAT %d%s\r\n" % (len(p), b" LAST" if i == 2 else b"") + p
        c.send_raw(wire)
        c.expect(250, "MAIL")
        c.expect(250, "RCPT 1")
        c.expect(250, "RCPT 2")
        c.expect(250, "BDAT 1")
        c.expect(250, "BDAT 2")
        lines = c.expect(250, "BDAT LAST")
        m = QUEUED_RE.search(lines[0])
        check(m, "no queue id after BDAT LAST: %r" % lines)
        c.send("BDAT 3 LAST")
        c.send_raw(b"abc")
        c.expect(503, "BDAT without a transaction")
        c.send("QUIT")
        c.expect(221, "QUIT")
        saved = it.wait_saved(2, "bdat")
        for s in saved:
            check(split_received(s["content"])[1] == MSG, "BDAT message differs: %r" % s)
        it.wait_logged([m.group(1)], "bdat")
    finally:
        it.close()


def hello(c):
    c.expect(220, "greeting")
    c.send("EHLO client.test")
    return c.expect(250, "EHLO")


run_cases([("ehlo", case_ehlo), ("bdat", case_bdat), ("smtplib_identical", case_smtplib_identical),
           ("swaks", case_swaks), ("many_shards", case_many_shards), ("ipv6", case_ipv6),
           ("pipelined_session", case_pipelined_session)])
