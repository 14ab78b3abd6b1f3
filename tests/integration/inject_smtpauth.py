"""inject_smtpauth.py - SMTP AUTH on the intake (--auth-file, RFC 4954): offered
only after STARTTLS (538 5.7.11 before it, and not in EHLO); a client outside
--allow is refused relay (554 5.7.1) until it authenticates with PLAIN or LOGIN
(smtplib), then it may relay and the Received: line says ESMTPSA; a wrong
password gets 535 5.7.8, later after each failure from the same address (the
per-IP failure delay: 250 ms doubled per failure); crypt(3) runs off the
intake's reactor (another client is served while an expensive hash is
checked); "*" cancels a LOGIN exchange (501); --auth-file
without --tls-cert is a usage error (exit 2), a bad file stops the start
(exit 1). INJECT_CASE=name runs one case."""
import base64
import os
import re
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inject_lib import Intake, QUEUED_RE, check, run_cases, volley_bin  # noqa: E402

MSG = (b"Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nMessage-ID: <auth@src.test>\r\n"
       b"From: s@src.test\r\nSubject: auth\r\n\r\nbody\r\n")
TMP = tempfile.mkdtemp(prefix="volley-inject-auth-")
CERT, KEY, USERS = (os.path.join(TMP, n) for n in ("cert.pem", "key.pem", "users"))


def setup():
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=intake.volley.test", "-keyout", KEY, "-out", CERT],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, "openssl req failed: %s" % r.stderr)
    lines = []
    for user, pw in (("alice", "wonderland"), ("bob", "builder")):
        r = subprocess.run(["openssl", "passwd", "-6", pw], capture_output=True, timeout=30)
        check(r.returncode == 0, "openssl passwd failed")
        lines.append("%s:%s" % (user, r.stdout.decode().strip()))
    with open(USERS, "w") as f:
        f.write("# test users\n" + "\n".join(lines) + "\n")


def intake():
    # --allow 10/8: loopback clients may not relay without AUTH
    return Intake(["--tls-cert", CERT, "--tls-key", KEY, "--auth-file", USERS,
                   "--allow", "10.0.0.0/8"])


def tls_client(it):
    s = smtplib.SMTP("127.0.0.1", it.port(), local_hostname="auth.client", timeout=10)
    code, caps = s.ehlo()
    check(b"AUTH PLAIN LOGIN" not in caps.split(b"\n"), "AUTH offered before TLS: %r" % caps)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    code, caps = s.ehlo()
    check(b"AUTH PLAIN LOGIN" in caps.split(b"\n"), "AUTH not offered after TLS: %r" % caps)
    return s


def case_plain_and_login():
    it = intake()
    try:
        ids = []
        for mech in ("PLAIN", "LOGIN"):
            s = tls_client(it)
            s.mail("s@src.test")
            code, text = s.rcpt("r@dst.test")
            check(code == 554 and text.startswith(b"5.7.1"), "relay before AUTH: %d %r"
                  % (code, text))
            s.rset()
            s.user, s.password = "alice", "not-the-password"
            try:
                s.auth(mech, getattr(s, "auth_" + mech.lower()))
                check(False, "%s with a wrong password succeeded" % mech)
            except smtplib.SMTPAuthenticationError as e:
                check(e.smtp_code == 535 and e.smtp_error.startswith(b"5.7.8"),
                      "wrong password: %r" % (e,))
            s.user, s.password = "alice", "wonderland"
            code, text = s.auth(mech, getattr(s, "auth_" + mech.lower()))
            check(code == 235, "%s: %d %r" % (mech, code, text))
            code, text = s.docmd("AUTH PLAIN")
            check(code == 503, "a second AUTH: %d %r" % (code, text))
            s.mail("s@src.test")
            code, text = s.rcpt("r-%s@dst.test" % mech.lower())
            check(code == 250, "relay after AUTH %s: %d %r" % (mech, code, text))
            code, text = s.data(MSG)
            check(code == 250, "DATA: %d %r" % (code, text))
            ids.append(QUEUED_RE.search(text.decode()).group(1))
            s.quit()
        saved = it.wait_saved(2, "auth")
        for m in saved:
            check(b"with ESMTPSA id" in m["content"].split(b"\r\n\r\n")[0],
                  "Received: should say ESMTPSA: %r" % m["content"][:200])
        it.wait_logged(ids, "auth")
        check("auth=alice" in it.stderr(), "evt=received lacks auth=alice")
    finally:
        it.close()


def case_before_tls_and_cancel():
    it = intake()
    try:
        c = it.client()
        c.expect(220, "greeting")
        c.send("EHLO c.test")
        c.expect(250, "EHLO")
        c.send("AUTH PLAIN " + base64.b64encode(b"\0alice\0wonderland").decode())
        lines = c.expect(538, "AUTH before TLS")
        check(lines[0].startswith("538 5.7.11"), "text: %r" % lines)
        c.close()
        s = tls_client(it)
        code, text = s.docmd("AUTH LOGIN")
        check(code == 334 and base64.b64decode(text) == b"Username:", "LOGIN: %r" % text)
        code, text = s.docmd("*")
        check(code == 501, "cancel: %d %r" % (code, text))
        code, text = s.docmd("AUTH CRAM-MD5")
        check(code == 504, "unknown mechanism: %d %r" % (code, text))
        code, text = s.docmd("AUTH PLAIN", base64.b64encode(b"bob\0alice\0wonderland").decode())
        check(code == 535, "PLAIN with another authzid: %d %r" % (code, text))
        code, text = s.docmd("AUTH PLAIN", "!!notbase64")
        check(code == 501, "PLAIN not base64: %d %r" % (code, text))
        code, text = s.docmd("AUTH PLAIN", base64.b64encode(b"\0bob\0builder").decode())
        check(code == 235, "bob: %d %r" % (code, text))
        s.quit()
    finally:
        it.close()


def case_off_reactor_and_delay():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    # SHA-512 with 6,000,000 rounds: about 2 s per check on the CI machine
    slow = crypt.crypt("tortoise", "$6$rounds=6000000$volleyslow$")
    check(slow and slow.startswith("$6$rounds=6000000$"), "crypt(3) made %r" % slow)
    users = os.path.join(TMP, "users-slow")
    with open(users, "w") as f:
        f.write(open(USERS).read() + "slow:%s\n" % slow)
    it = Intake(["--tls-cert", CERT, "--tls-key", KEY, "--auth-file", users,
                 "--allow", "10.0.0.0/8"])
    try:
        a = tls_client(it)
        a.send("AUTH PLAIN %s\r\n" % base64.b64encode(b"\0slow\0tortoise").decode())
        b = it.client()                  # served while a's hash is being checked
        b.expect(220, "greeting during another client's AUTH")
        b.send("EHLO b.test")
        b.expect(250, "EHLO during another client's AUTH")
        a.sock.setblocking(False)
        try:
            early = a.sock.recv(1)
        except (ssl.SSLWantReadError, BlockingIOError):
            early = None
        check(early is None, "the AUTH answer came before another client's EHLO reply: "
              "crypt(3) ran on the intake's reactor")
        a.sock.settimeout(30)
        code, text = a.getreply()
        check(code == 235, "slow user: %d %r" % (code, text))
        a.quit()
        b.close()
        # the per-IP failure delay: 250 ms, 500 ms, 1 s before the 535s
        took = []
        for i in range(3):
            c = tls_client(it)
            t0 = time.monotonic()
            code, text = c.docmd("AUTH PLAIN", base64.b64encode(b"\0alice\0wrong%d" % i).decode())
            took.append(time.monotonic() - t0)
            check(code == 535 and text.startswith(b"5.7.8"), "wrong password: %d %r" % (code, text))
            c.quit()
        check(took[2] >= 0.9, "third failure answered after %.2fs, expected >= 1 s" % took[2])
        check(took[1] >= 0.45, "second failure answered after %.2fs, expected >= 0.5 s" % took[1])
        err = it.stderr()
        check(err.count("evt=auth_failed client=127.0.0.1") == 3, "auth_failed lines: %s" % err)
        check("wrong" not in err and "tortoise" not in err, "a password in the log: %s" % err)
    finally:
        it.close()


def case_swaks():
    """swaks: STARTTLS + AUTH PLAIN, and implicit TLS (--tlsc) + AUTH LOGIN."""
    it = Intake(["--tls-cert", CERT, "--tls-key", KEY, "--auth-file", USERS,
                 "--allow", "10.0.0.0/8", "--listen-tls", "127.0.0.1:0"])
    try:
        m = re.search(r"listening on 127\.0\.0\.1:(\d+) \(TLS\)", it.stderr())
        check(m, "no TLS listener: %s" % it.stderr())
        runs = [(it.port(), ["--tls", "--auth", "PLAIN"]),
                (int(m.group(1)), ["--tlsc", "--auth", "LOGIN"])]
        ids = []
        for port, extra in runs:
            r = subprocess.run(["swaks", "-4", "--server", "127.0.0.1:%d" % port, "--from",
                                "s@src.test", "--to", "sw@dst.test", "--auth-user", "bob",
                                "--auth-password", "builder"] + extra,
                               capture_output=True, timeout=30)
            out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
            check(r.returncode == 0 and "235 2.7.0" in out, "swaks %r: %d\n%s"
                  % (extra, r.returncode, out))
            q = QUEUED_RE.search(out)
            check(q, "swaks %r: no queue id\n%s" % (extra, out))
            ids.append(q.group(1))
        it.wait_logged(ids, "swaks")
    finally:
        it.close()


def case_config_errors():
    d = os.path.join(TMP, "q")
    r = subprocess.run([volley_bin(), "run", "--data", d, "--auth-file", USERS, "--quiet"],
                       capture_output=True, timeout=30)
    check(r.returncode == 2, "--auth-file without --tls-cert: exit %d" % r.returncode)
    bad = os.path.join(TMP, "bad-users")
    with open(bad, "w") as f:
        f.write("alice:plaintext-password\n")
    r = subprocess.run([volley_bin(), "run", "--data", d, "--listen", "127.0.0.1:0",
                        "--tls-cert", CERT, "--tls-key", KEY, "--auth-file", bad, "--quiet"],
                       capture_output=True, timeout=30)
    err = r.stderr.decode(errors="replace")
    check(r.returncode == 1 and "bad-users line 1" in err, "bad file: exit %d %s"
          % (r.returncode, err))


try:
    setup()
    run_cases([("plain_and_login", case_plain_and_login),
               ("before_tls_and_cancel", case_before_tls_and_cancel),
               ("swaks", case_swaks),
               ("off_reactor_and_delay", case_off_reactor_and_delay),
               ("config_errors", case_config_errors)])
finally:
    subprocess.run(["rm", "-rf", TMP])
