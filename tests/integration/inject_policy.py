"""inject_policy.py - the SMTP intake's policy and limits: who may relay
(loopback by default, --allow NET replaces it), --max-msg-size (552 5.3.4),
--max-rcpts-per-msg (452 4.5.3), command line length (500 5.5.2),
--max-conns-per-ip (421 4.7.0), --intake-timeout (421 4.4.2, also mid-DATA),
separate command and DATA deadlines (--intake-cmd-timeout, --intake-data-timeout,
RFC 5321 4.5.3.2: a pause in DATA longer than the command deadline is fine; a
stalled DATA or BDAT chunk ends at the DATA deadline), --intake-mem-max (the
sessions' buffered message octets: a new DATA, a message outgrowing it, or a
BDAT chunk past it get 452 4.3.1, and what was answered 250 is delivered),
too many bad commands (421 4.7.0), smuggling attempts (bare LF, '\\n.\\n',
'\\r.\\r': 550 5.6.0 after the real end, nothing queued, nothing smuggled), a
client that vanishes mid-DATA (nothing queued). Each case ends by checking
what reached the sink: exactly the messages that got a 250.
INJECT_CASE=name runs one case."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inject_lib import Intake, QUEUED_RE, check, run_cases, txn, volley_bin  # noqa: E402

MSG = (b"Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nMessage-ID: <p@src.test>\r\n"
       b"From: s@src.test\r\nSubject: policy\r\n\r\nbody\r\n")


def settle(it, n, what):
    """Exactly n messages delivered (waits for n, then a little for strays)."""
    if n:
        it.wait_saved(n, what)
    time.sleep(0.3)
    got = len(it.saved())
    check(got == n, "%s: %d message(s) reached the sink, expected %d" % (what, got, n))


def hello(c):
    c.expect(220, "greeting")
    c.send("EHLO client.test")
    return c.expect(250, "EHLO")


def case_relay_default_loopback():
    it = Intake()
    try:
        c = it.client(src="127.0.0.2")
        hello(c)
        code, lines = txn(c, "s@src.test", ["r@dst.test"], MSG, ehlo=None)
        check(code == 250, "loopback 127.0.0.2 may relay by default: %s %r" % (code, lines))
        settle(it, 1, "default loopback")
    finally:
        it.close()


def case_relay_denied():
    it = Intake(["--allow", "127.0.0.1/32"])
    try:
        c = it.client(src="127.0.0.2")
        hello(c)
        c.send("MAIL FROM:<s@src.test>")
        c.expect(250, "MAIL")
        c.send("RCPT TO:<r@dst.test>")
        lines = c.expect(554, "RCPT from a client outside --allow")
        check(lines[0].startswith("554 5.7.1"), "relay denial text: %r" % lines)
        c.send("DATA")
        got, lines = c.reply()
        check(got in (503, 554), "DATA with no recipient: %s %r" % (got, lines))
        c.close()
        ok = it.client(src="127.0.0.1")
        hello(ok)
        code, lines = txn(ok, "s@src.test", ["r@dst.test"], MSG, ehlo=None)
        check(code == 250, "127.0.0.1 is in --allow: %s %r" % (code, lines))
        settle(it, 1, "relay denied")
    finally:
        it.close()


def case_relay_allow_net():
    it = Intake(["--allow", "10.0.0.0/8", "--allow", "127.0.0.0/30"])
    try:
        c = it.client(src="127.0.0.2")                 # inside 127.0.0.0/30
        hello(c)
        code, _ = txn(c, "s@src.test", ["r@dst.test"], MSG, ehlo=None)
        check(code == 250, "127.0.0.2 is inside 127.0.0.0/30")
        d = it.client(src="127.0.0.5")                 # outside
        hello(d)
        d.send("MAIL FROM:<s@src.test>", "RCPT TO:<r@dst.test>")
        d.expect(250, "MAIL")
        d.expect(554, "127.0.0.5 is outside every --allow")
        settle(it, 1, "allow net")
    finally:
        it.close()


def case_size():
    it = Intake(["--max-msg-size", "10k"])
    try:
        c = it.client()
        lines = hello(c)
        check("250-SIZE 10240" in lines or "250 SIZE 10240" in lines, "SIZE: %r" % lines)
        c.send("MAIL FROM:<s@src.test> SIZE=20000")
        lines = c.expect(552, "MAIL SIZE= over the limit")
        check(lines[0].startswith("552 5.3.4"), "text: %r" % lines)
        big = MSG + b"x" * 70 + b"\r\n"
        big = big + (b"y" * 70 + b"\r\n") * 200
        code, lines = txn(c, "s@src.test", ["r@dst.test"], big, ehlo=None)
        check(code == 552 and lines[0].startswith("552 5.3.4"), "big message: %s %r" % (code, lines))
        code, lines = txn(c, "s@src.test", ["r@dst.test"], MSG, ehlo=None)
        check(code == 250, "the session goes on after 552: %s %r" % (code, lines))
        settle(it, 1, "size")
    finally:
        it.close()


def case_rcpts():
    it = Intake(["--max-rcpts-per-msg", "3"])
    try:
        c = it.client()
        hello(c)
        c.send("MAIL FROM:<s@src.test>")
        c.expect(250, "MAIL")
        for i in range(3):
            c.send("RCPT TO:<r%d@dst.test>" % i)
            c.expect(250, "RCPT %d" % i)
        c.send("RCPT TO:<r9@dst.test>")
        lines = c.expect(452, "RCPT past the cap")
        check(lines[0].startswith("452 4.5.3"), "text: %r" % lines)
        c.send("DATA")
        c.expect(354, "DATA")
        c.send_raw(MSG + b".\r\n")
        c.expect(250, "dot")
        settle(it, 1, "rcpts")                  # one domain: one transaction, 3 RCPTs
        got = sorted(r for s in it.saved() for r in s["rcpts"])
        check(got == ["r0@dst.test", "r1@dst.test", "r2@dst.test"], "recipients: %r" % got)
    finally:
        it.close()


def case_line_length():
    it = Intake()
    try:
        c = it.client()
        hello(c)
        c.send("MAIL FROM:<" + "a" * 600 + "@src.test>")
        lines = c.expect(500, "over-long command line")
        check(lines[0].startswith("500 5.5.2"), "text: %r" % lines)
        c.send("NOOP")
        c.expect(250, "NOOP after an over-long line")
    finally:
        it.close()


def case_conns_per_ip():
    it = Intake(["--max-conns-per-ip", "2"])
    try:
        a, b = it.client(), it.client()
        a.expect(220, "first")
        b.expect(220, "second")
        c = it.client()
        lines = c.expect(421, "third connection from one address")
        check(lines[0].startswith("421 4.7.0"), "text: %r" % lines)
        check(c.closed(), "not closed after 421")
        d = it.client(src="127.0.0.3")                 # another address is fine
        d.expect(220, "other address")
        a.send("QUIT")
        a.expect(221, "QUIT")
        a.closed()
        time.sleep(0.2)
        e = it.client()
        e.expect(220, "after one left")
    finally:
        it.close()


def case_deadline():
    it = Intake(["--intake-timeout", "1s"])
    try:
        c = it.client()
        hello(c)
        t0 = time.monotonic()
        lines = c.expect(421, "idle client")
        took = time.monotonic() - t0
        check(lines[0].startswith("421 4.4.2"), "text: %r" % lines)
        check(0.8 <= took <= 5, "deadline after %.2fs, expected about 1s" % took)
        check(c.closed(), "not closed after the deadline")
        d = it.client()                                  # mid-DATA: nothing queued
        hello(d)
        d.send("MAIL FROM:<s@src.test>", "RCPT TO:<r@dst.test>", "DATA")
        d.expect(250, "MAIL")
        d.expect(250, "RCPT")
        d.expect(354, "DATA")
        d.send_raw(MSG[:40])
        d.expect(421, "stalled DATA")
        settle(it, 0, "deadline")
    finally:
        it.close()


def case_deadlines_split():
    # command deadline 1s, DATA deadline 30s
    it = Intake(["--intake-cmd-timeout", "1s", "--intake-data-timeout", "30s"])
    try:
        idle = it.client()
        hello(idle)
        c = it.client()
        hello(c)
        c.send("MAIL FROM:<s@src.test>", "RCPT TO:<r@dst.test>", "DATA")
        c.expect(250, "MAIL")
        c.expect(250, "RCPT")
        c.expect(354, "DATA")
        c.send_raw(MSG[:40])
        time.sleep(2.5)                       # longer than the command deadline: still DATA
        c.send_raw(MSG[40:] + b".\r\n")
        lines = c.expect(250, "the dot after a pause in DATA longer than the command deadline")
        check(QUEUED_RE.search(lines[0]), "no queue id: %r" % lines)
        lines = c.expect(421, "idle after the dot: the command deadline again")
        check(lines[0].startswith("421 4.4.2"), "text: %r" % lines)
        lines = idle.expect(421, "idle client at the command deadline")
        check(lines[0].startswith("421 4.4.2"), "text: %r" % lines)
        check(idle.closed(), "not closed after the command deadline")
        settle(it, 1, "deadlines: cmd 1s, data 30s")
    finally:
        it.close()
    # command deadline 30s, DATA deadline 1s: a stall in DATA or in a BDAT chunk
    # ends within the 10 s read timeout; a 2.5 s pause between commands does not
    it = Intake(["--intake-cmd-timeout", "30s", "--intake-data-timeout", "1s"])
    try:
        c = it.client()
        hello(c)
        time.sleep(2.5)
        code, lines = txn(c, "s@src.test", ["r@dst.test"], MSG, ehlo=None)
        check(code == 250, "after a 2.5 s pause between commands: %s %r" % (code, lines))
        d = it.client()
        hello(d)
        d.send("MAIL FROM:<s@src.test>", "RCPT TO:<r@dst.test>", "DATA")
        d.expect(250, "MAIL")
        d.expect(250, "RCPT")
        d.expect(354, "DATA")
        d.send_raw(MSG[:40])
        lines = d.expect(421, "stalled DATA at the DATA deadline")
        check(lines[0].startswith("421 4.4.2"), "text: %r" % lines)
        b = it.client()
        hello(b)
        b.send("MAIL FROM:<s@src.test>", "RCPT TO:<r@dst.test>")
        b.expect(250, "MAIL")
        b.expect(250, "RCPT")
        b.send_raw(b"BDAT %d LAST\r\n" % len(MSG) + MSG[:20])
        lines = b.expect(421, "stalled BDAT chunk at the DATA deadline")
        check(lines[0].startswith("421 4.4.2"), "text: %r" % lines)
        settle(it, 1, "deadlines: cmd 30s, data 1s")
    finally:
        it.close()


def big_msg(n, tag):
    line = b"x" * 76 + b"\r\n"
    return (b"From: s@src.test\r\nSubject: " + tag + b"\r\n\r\n" + line * (n // len(line)))


def open_data(it):
    c = it.client()
    hello(c)
    c.send("MAIL FROM:<s@src.test>", "RCPT TO:<r@dst.test>", "DATA")
    c.expect(250, "MAIL")
    c.expect(250, "RCPT")
    return c


def case_mem_max():
    it = Intake(["--intake-mem-max", "1M", "--max-msg-size", "4M"])
    try:
        a_msg = big_msg(600 * 1024, b"a")      # its buffer: 1 MiB, all of the bound
        a = open_data(it)
        a.expect(354, "DATA a")
        a.send_raw(a_msg[:-100])
        time.sleep(0.5)                         # a's content is read and buffered
        b = open_data(it)
        lines = b.expect(452, "DATA while another message holds the whole bound")
        check(lines[0].startswith("452 4.3.1") and "--intake-mem-max" in lines[0],
              "text: %r" % lines)
        a.send_raw(a_msg[-100:] + b".\r\n")
        a.expect(250, "a, within the bound")
        b.send("DATA")                          # a's buffer was given back
        b.expect(354, "DATA b after a's end")
        b.send_raw(MSG + b".\r\n")
        b.expect(250, "b")
        # a message that outgrows the bound while another holds part of it
        a.send("MAIL FROM:<s@src.test>", "RCPT TO:<r@dst.test>", "DATA")
        a.expect(250, "MAIL")
        a.expect(250, "RCPT")
        a.expect(354, "DATA a2")
        a2 = big_msg(300 * 1024, b"a2")         # 512 KiB buffered
        a.send_raw(a2[:-100])
        time.sleep(0.5)
        c = open_data(it)
        c.expect(354, "DATA c (room for its first buffer)")
        c.send_raw(big_msg(700 * 1024, b"c") + b".\r\n")
        lines = c.expect(452, "a message outgrowing the bound")
        check(lines[0].startswith("452 4.3.1"), "text: %r" % lines)
        # BDAT: a chunk past the bound is refused too (the transaction ends)
        c.send("MAIL FROM:<s@src.test>", "RCPT TO:<r@dst.test>")
        c.expect(250, "MAIL")
        c.expect(250, "RCPT")
        chunk = big_msg(700 * 1024, b"c2")
        c.send_raw(b"BDAT %d\r\n" % len(chunk) + chunk)
        lines = c.expect(452, "a BDAT chunk past the bound")
        check(lines[0].startswith("452 4.3.1"), "text: %r" % lines)
        c.send_raw(b"BDAT 0 LAST\r\n")
        c.expect(503, "the transaction ended with the refused chunk")
        a.send_raw(a2[-100:] + b".\r\n")
        a.expect(250, "a2, within the bound")
        check("evt=intake_mem_full" in it.stderr(), "no evt=intake_mem_full: %s" % it.stderr())
        settle(it, 3, "mem_max")
        subjects = sorted(m["content"].split(b"Subject: ")[1].split(b"\r\n")[0]
                          for m in it.saved())
        check(subjects == [b"a", b"a2", b"policy"], "delivered: %r" % subjects)
    finally:
        it.close()


def case_intake_options_usage():
    """Bad values of the intake's own options: exit 2, the option named, nothing else
    said; --hold and --intake-* need --listen."""
    d = tempfile.mkdtemp(prefix="volley-inject-usage-")
    try:
        for args, want in ((["--intake-mem-max", "10k"], "--intake-mem-max '10k'"),
                           (["--intake-mem-max", "1T"], "--intake-mem-max '1T'"),
                           (["--intake-cmd-timeout", "0"], "--intake-cmd-timeout '0'"),
                           (["--intake-data-timeout", "2h"], "--intake-data-timeout '2h'"),
                           (["--intake-data-timeout"], "--intake-data-timeout needs a value")):
            r = subprocess.run([volley_bin(), "run", "--data", os.path.join(d, "q"), "--listen",
                                "127.0.0.1:0"] + args, capture_output=True, text=True, timeout=30)
            check(r.returncode == 2 and want in r.stderr and "unknown argument" not in r.stderr,
                  "%r: exit %d %r" % (args, r.returncode, r.stderr))
        for args in (["--hold"], ["--intake-cmd-timeout", "5s"]):
            r = subprocess.run([volley_bin(), "run", "--data", os.path.join(d, "q")] + args,
                               capture_output=True, text=True, timeout=30)
            check(r.returncode == 2 and "--listen" in r.stderr,
                  "%r without --listen: exit %d %r" % (args, r.returncode, r.stderr))
    finally:
        subprocess.run(["rm", "-rf", d])


def case_bad_commands():
    it = Intake()
    try:
        c = it.client()
        hello(c)
        codes = []
        for i in range(30):
            c.send("BOGUS %d" % i)
            got, lines = c.reply()
            codes.append(got)
            if got is None or got == 421:
                break
        check(codes[-1] == 421 and len(codes) <= 22, "bad commands: %r" % codes)
        check(c.closed(), "not closed after too many errors")
    finally:
        it.close()


def smuggle(it, payload, what):
    """payload inside DATA; then the real end. The dot gets 550 5.6.0 and the
    smuggled MAIL/RCPT/DATA after the fake end are never executed."""
    c = it.client()
    hello(c)
    c.send("MAIL FROM:<s@src.test>", "RCPT TO:<r@dst.test>", "DATA")
    c.expect(250, "MAIL")
    c.expect(250, "RCPT")
    c.expect(354, "DATA")
    c.send_raw(MSG + payload + b"MAIL FROM:<evil@src.test>\r\nRCPT TO:<smuggled@dst.test>\r\n"
               b"DATA\r\nsmuggled\r\n.\r\n")
    code, lines = c.reply()
    check(code == 550 and lines[0].startswith("550 5.6.0"),
          "%s: the end of data got %s %r" % (what, code, lines))
    c.send("NOOP")
    c.expect(250, "%s: next reply is NOOP's (nothing smuggled)" % what)


def case_smuggling():
    it = Intake()
    try:
        smuggle(it, b"x\n.\n", "bare LF dot")
        smuggle(it, b"x\r.\r", "bare CR dot")
        smuggle(it, b"x\r\n.\n", "CRLF dot LF")
        settle(it, 0, "smuggling")
        check(not any("smuggled" in r for s in it.saved() for r in s["rcpts"]), "smuggled rcpt")
    finally:
        it.close()


def case_vanish_mid_data():
    it = Intake()
    try:
        c = it.client()
        hello(c)
        c.send("MAIL FROM:<s@src.test>", "RCPT TO:<gone@dst.test>", "DATA")
        c.expect(250, "MAIL")
        c.expect(250, "RCPT")
        c.expect(354, "DATA")
        c.send_raw(MSG + b"half a line")
        c.close()
        d = it.client()
        hello(d)
        code, lines = txn(d, "s@src.test", ["kept@dst.test"], MSG, ehlo=None)
        check(code == 250, "after a vanished client: %s %r" % (code, lines))
        qid = QUEUED_RE.search(lines[0]).group(1)
        settle(it, 1, "vanish")
        check(it.saved()[0]["rcpts"] == ["kept@dst.test"], "wrong message delivered")
        check(it.wait_logged([qid]) == {qid}, "log names another message")
    finally:
        it.close()


def case_bad_addresses():
    it = Intake()
    try:
        c = it.client()
        hello(c)
        c.send("MAIL FROM:<s@src.test>")
        c.expect(250, "MAIL")
        c.send("RCPT TO:<postmaster>")
        got, lines = c.reply()
        check(got == 553, "RCPT without a domain: %s %r" % (got, lines))
        c.send("RCPT TO:<a..b@dst.test>")
        got, lines = c.reply()
        check(got in (501, 553), "bad local part: %s %r" % (got, lines))
    finally:
        it.close()


run_cases([("relay_default_loopback", case_relay_default_loopback),
           ("relay_denied", case_relay_denied), ("relay_allow_net", case_relay_allow_net),
           ("size", case_size), ("rcpts", case_rcpts), ("line_length", case_line_length),
           ("conns_per_ip", case_conns_per_ip), ("deadline", case_deadline),
           ("deadlines_split", case_deadlines_split), ("mem_max", case_mem_max),
           ("intake_options_usage", case_intake_options_usage),
           ("bad_commands", case_bad_commands), ("smuggling", case_smuggling),
           ("vanish_mid_data", case_vanish_mid_data), ("bad_addresses", case_bad_addresses)])
