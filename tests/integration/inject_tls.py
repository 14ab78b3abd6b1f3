"""inject_tls.py - STARTTLS on the SMTP intake (--tls-cert/--tls-key): offered
only with a certificate and only before TLS; Python's smtplib upgrades and
sends, the Received: line says ESMTPS; commands pipelined after STARTTLS are
never executed (CVE-2011-0411 class); a second STARTTLS gets 503; a bad
certificate file stops `volley run` at start with exit 1; --listen-tls
(implicit TLS, submission port 465 style) shakes hands before the greeting.
INJECT_CASE=name runs one case."""
import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inject_lib import Intake, QUEUED_RE, check, fail, run_cases, volley_bin  # noqa: E402

MSG = (b"Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nMessage-ID: <tls@src.test>\r\n"
       b"From: s@src.test\r\nSubject: over TLS\r\n\r\nsecret body\r\n")
CERT_DIR = tempfile.mkdtemp(prefix="volley-inject-cert-")
CERT, KEY = os.path.join(CERT_DIR, "cert.pem"), os.path.join(CERT_DIR, "key.pem")


def make_cert():
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=intake.volley.test", "-keyout", KEY, "-out", CERT],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, "openssl req failed: %s" % r.stderr.decode(errors="replace"))


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def split_received(content):
    end = content.index(b"\r\n") + 2
    while content[end:end + 1] == b"\t":
        end = content.index(b"\r\n", end) + 2
    return content[:end], content[end:]


def case_smtplib_starttls():
    it = Intake(["--tls-cert", CERT, "--tls-key", KEY])
    try:
        s = smtplib.SMTP("127.0.0.1", it.port(), local_hostname="tls.client", timeout=10)
        code, caps = s.ehlo()
        check(b"STARTTLS" in caps.split(b"\n"), "STARTTLS not offered: %r" % caps)
        code, text = s.starttls(context=client_ctx())
        check(code == 220, "STARTTLS: %d %r" % (code, text))
        code, caps = s.ehlo()
        check(code == 250 and b"STARTTLS" not in caps.split(b"\n"),
              "STARTTLS offered again inside TLS: %r" % caps)
        code, text = s.docmd("STARTTLS")
        check(code == 503, "a second STARTTLS: %d %r" % (code, text))
        s.mail("s@src.test")
        s.rcpt("t@dst.test")
        code, text = s.data(MSG)
        check(code == 250 and QUEUED_RE.search(text.decode()), "DATA over TLS: %d %r"
              % (code, text))
        s.quit()
        saved = it.wait_saved(1, "tls")
        rec, rest = split_received(saved[0]["content"])
        check(rest == MSG, "content differs: %r" % saved[0]["content"])
        check(re.search(rb"from tls\.client \(unknown \[127\.0\.0\.1\]\)\r\n\tby \S+ \(volley\) with "
                        rb"ESMTPS id", rec), "Received: should say ESMTPS: %r" % rec)
    finally:
        it.close()


def case_pipelined_after_starttls():
    it = Intake(["--tls-cert", CERT, "--tls-key", KEY])
    try:
        raw = socket.create_connection(it.addr(), timeout=10)
        f = raw.makefile("rb")

        def reply():
            lines = []
            while True:
                line = f.readline()
                check(line, "connection closed")
                lines.append(line)
                if line[3:4] != b"-":
                    return lines
        reply()
        raw.sendall(b"EHLO c.test\r\n")
        reply()
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@src.test>\r\n")
        r = reply()
        check(r[0].startswith(b"220"), "STARTTLS: %r" % r)
        tls = client_ctx().wrap_socket(raw, server_hostname="intake.volley.test")
        g = tls.makefile("rb")

        def treply():
            line = g.readline()
            check(line, "TLS connection closed")
            while line[3:4] == b"-":
                line = g.readline()
            return line
        tls.sendall(b"NOOP\r\n")                 # the first reply in TLS must be NOOP's
        line = treply()
        check(line.startswith(b"250 2.0.0"), "a reply to the MAIL pipelined after STARTTLS "
              "came back (it was executed): %r" % line)
        tls.sendall(b"MAIL FROM:<s@src.test>\r\n")
        line = treply()
        check(line.startswith(b"503"), "MAIL before the new EHLO: %r" % line)
        tls.sendall(b"EHLO c.test\r\nRCPT TO:<r@dst.test>\r\n")
        treply()
        line = treply()
        check(line.startswith(b"503"), "RCPT without MAIL after TLS: %r" % line)
        tls.sendall(b"QUIT\r\n")
        treply()
        tls.close()
    finally:
        it.close()


def case_implicit_tls():
    """--listen-tls: the handshake comes first (RFC 8314), then the greeting;
    no STARTTLS inside; ESMTPS in Received:; a plaintext client gets nothing."""
    it = Intake(["--tls-cert", CERT, "--tls-key", KEY, "--listen-tls", "127.0.0.1:0"])
    try:
        m = re.search(r"listening on 127\.0\.0\.1:(\d+) \(TLS\)", it.stderr())
        check(m, "no TLS listener reported: %s" % it.stderr())
        port = int(m.group(1))
        s = smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="ssl.client", timeout=10,
                             context=client_ctx())
        code, caps = s.ehlo()
        check(code == 250 and b"STARTTLS" not in caps.split(b"\n"), "EHLO: %r" % caps)
        s.mail("s@src.test")
        s.rcpt("i@dst.test")
        code, text = s.data(MSG)
        check(code == 250 and QUEUED_RE.search(text.decode()), "DATA: %d %r" % (code, text))
        s.quit()
        saved = it.wait_saved(1, "implicit tls")
        rec, rest = split_received(saved[0]["content"])
        check(rest == MSG and b"from ssl.client" in rec and b"with ESMTPS id" in rec,
              "implicit TLS message: %r" % saved[0]["content"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=3)
        raw.sendall(b"EHLO plain.test\r\n")
        try:
            got = raw.recv(100)
        except (socket.timeout, ConnectionResetError):
            got = b""
        check(not got.startswith(b"220") and not got.startswith(b"250"),
              "plaintext on the TLS port got an SMTP reply: %r" % got)
        raw.close()
    finally:
        it.close()
    tmp = tempfile.mkdtemp(prefix="volley-inject-tlsport-")
    r = subprocess.run([volley_bin(), "run", "--data", os.path.join(tmp, "q"), "--listen-tls",
                        "127.0.0.1:0", "--quiet"], capture_output=True, timeout=30)
    subprocess.run(["rm", "-rf", tmp])
    check(r.returncode == 2, "--listen-tls without --tls-cert: exit %d" % r.returncode)


def case_bad_cert():
    bad = os.path.join(CERT_DIR, "missing.pem")
    tmp = tempfile.mkdtemp(prefix="volley-inject-badcert-")
    try:
        r = subprocess.run([volley_bin(), "run", "--data", os.path.join(tmp, "q"), "--listen",
                            "127.0.0.1:0", "--tls-cert", bad, "--quiet"],
                           capture_output=True, timeout=30)
        err = r.stderr.decode(errors="replace")
        check(r.returncode == 1 and "--tls-cert" in err, "bad cert: exit %d: %s"
              % (r.returncode, err))
        r = subprocess.run([volley_bin(), "run", "--data", os.path.join(tmp, "q"),
                            "--tls-key", KEY, "--quiet"], capture_output=True, timeout=30)
        check(r.returncode == 2, "--tls-key without --tls-cert: exit %d" % r.returncode)
    finally:
        subprocess.run(["rm", "-rf", tmp])


try:
    make_cert()
    run_cases([("smtplib_starttls", case_smtplib_starttls),
               ("pipelined_after_starttls", case_pipelined_after_starttls),
               ("implicit_tls", case_implicit_tls),
               ("bad_cert", case_bad_cert)])
finally:
    subprocess.run(["rm", "-rf", CERT_DIR])
