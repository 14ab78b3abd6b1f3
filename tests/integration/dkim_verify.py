"""dkim_verify.py - every message volley signs verifies, as received by
`volley sink`, with two independent verifiers: dkimpy (Debian python3-dkim,
keys served by its dnsfunc) and OpenDKIM (opendkim-testmsg, keys served as TXT
records by a private dnsmasq on 127.0.0.1:53 inside a network namespace with
its own /etc/resolv.conf, so nothing outside the test is touched). RSA-2048 and
Ed25519, alone and dual, relaxed/relaxed and simple/simple, x= expiry; messages
with folded headers, trailing blank lines, an 8-bit body, dot lines (stuffed on
the SMTP wire), whitespace runs, an empty body. Paths: `volley enqueue` then
`volley run`, `volley send`, and `volley run --listen` (SMTP intake). Each
message is then changed by one body byte and by one signed header byte: both
verifiers must refuse every signature (the verifiers are not vacuous). The body
bytes received must be the bytes given.

Run by dkim_verify_test.sh with Debian's /usr/bin/python3. Exit 0 pass, 1 fail.
"""
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inject_lib  # noqa: E402
import volley_lib  # noqa: E402
from sink_lib import check, fail, volley_bin  # noqa: E402

try:
    import dkim  # Debian python3-dkim
except ImportError:
    fail("python3-dkim is not installed (scripts/setup.sh installs it)")

DOMAIN = "sign.test"
TIMEOUT_S = 60

MESSAGES = {
    "folded": (b"From: \"Folded, Sender\" <news@sign.test>\r\n"
               b"To: a@dest.test,\r\n\tb@dest.test\r\n"
               b"Subject: a subject   that is\r\n  folded\tover\r\n lines\r\n"
               b"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n"
               b"Message-ID: <folded.1@sign.test>\r\n"
               b"List-Unsubscribe: <https://u.sign.test/u?t=abc>,\r\n <mailto:u@sign.test>\r\n"
               b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
               b"\r\n"
               b"Hello  there,\t tabs and   runs   \r\n\r\nbye\r\n"),
    "trailing_blank": (b"From: news@sign.test\r\nTo: a@dest.test\r\nSubject: blank lines\r\n"
                       b"\r\n"
                       b"text\r\n\r\n\r\n   \r\n\r\n"),
    "eightbit": ("From: Jos\u00e9 <news@sign.test>\r\nTo: a@dest.test\r\n"
                 "Subject: caf\u00e9\r\nMIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n\r\n"
                 "Gr\u00fc\u00dfe, \u20ac 10 \u2014 na\u00efve\r\n").encode(),
    "dots": (b"From: news@sign.test\r\nTo: a@dest.test\r\nSubject: dots\r\n\r\n"
             b".\r\n..two\r\n.one\r\nmid.dle\r\n. \r\n"),
    "empty_body": b"From: news@sign.test\r\nTo: a@dest.test\r\nSubject: empty\r\n\r\n",
    # Runs of blanks at every offset of the first 17 octets of long lines (the
    # relaxed canonicaliser scans 8 octets at a time).
    "runs": (b"From: news@sign.test\r\nTo: a@dest.test\r\nSubject: runs\r\n\r\n" +
             b"".join(b"x" * k + b"  y" + b"w" * 20 + b"\r\n" for k in range(17))),
    "subdomain_from": (b"From: Mail <mail@news.sign.test>\r\nTo: a@dest.test\r\n"
                       b"Subject: parent domain key\r\n\r\nbody\r\n"),
}

CONFIGS = {
    # name: (selectors, canon, extra args)
    "rsa_relaxed": (["rsa"], "relaxed/relaxed", []),
    "ed_relaxed": (["ed"], "relaxed/relaxed", []),
    "dual_relaxed": (["rsa", "ed"], "relaxed/relaxed", ["--dkim-expire", "7d"]),
    "rsa_simple": (["rsa"], "simple/simple", []),
    "ed_simple": (["ed"], "simple/simple", []),
    "dual_simple": (["rsa", "ed"], "simple/simple", []),
}


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S, **kw)
    check(r.returncode == 0, "%s exited %d: %s" % (cmd[0], r.returncode,
                                                    r.stderr.decode(errors="replace")))
    return r.stdout


class Keys:
    def __init__(self, tmp):
        self.path = {"rsa": os.path.join(tmp, "rsa.pem"), "ed": os.path.join(tmp, "ed.pem")}
        sh(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", self.path["rsa"]])
        sh(["openssl", "genpkey", "-algorithm", "ed25519", "-out", self.path["ed"]])
        rsa_der = sh(["openssl", "pkey", "-in", self.path["rsa"], "-pubout", "-outform", "DER"])
        ed_der = sh(["openssl", "pkey", "-in", self.path["ed"], "-pubout", "-outform", "DER"])
        check(len(ed_der) == 44, "Ed25519 SPKI is 44 octets")
        self.txt = {
            "rsa": "v=DKIM1; k=rsa; p=" + base64.b64encode(rsa_der).decode(),
            # RFC 8463 4.2: the bare 32-octet key, not the SPKI
            "ed": "v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_der[-32:]).decode(),
        }

    def args(self, sels, canon, extra):
        a = []
        for s in sels:
            a += ["--dkim", "%s:%s:%s" % (DOMAIN, s, self.path[s])]
        return a + ["--dkim-canon", canon] + extra

    def dnsfunc(self, name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        for s, txt in self.txt.items():
            if n.rstrip(".") == "%s._domainkey.%s" % (s, DOMAIN):
                return txt.encode()
        return None


def body_of(m):
    i = m.find(b"\r\n\r\n")
    return m[i + 4:] if i >= 0 else b""


def sigs_of(m):
    return len(re.findall(rb"(?im)^DKIM-Signature:", m.split(b"\r\n\r\n", 1)[0]))


def dkimpy_results(keys, m):
    """One bool per DKIM-Signature: dkimpy's verdict (an exception is a failure)."""
    d = dkim.DKIM(m)
    out = []
    for i in range(sigs_of(m)):
        try:
            out.append(bool(d.verify(idx=i, dnsfunc=keys.dnsfunc)))
        except dkim.DKIMException:
            out.append(False)
    return out


def tamper_body(m):
    i = m.find(b"\r\n\r\n") + 4
    body = m[i:]
    # A letter that canonicalisation keeps: the first alphanumeric of the body; an
    # empty body gets one line (that too must break the body hash).
    j = next((k for k, c in enumerate(body) if chr(c).isalnum()), None)
    if j is None:
        return m[:i] + b"x\r\n"
    c = body[j:j + 1]
    return m[:i] + body[:j] + (b"Y" if c != b"Y" else b"Z") + body[j + 1:]


def tamper_header(m):
    h, b = m.split(b"\r\n\r\n", 1)
    new, n = re.subn(rb"(?m)^(Subject:[^\r]*?)([A-Za-z])", lambda mo: mo.group(1) +
                     (b"Q" if mo.group(2) != b"Q" else b"R"), h, count=1)
    check(n == 1, "no Subject to change")
    return new + b"\r\n\r\n" + b


def check_received(keys, case, m, original, nsigs, canon, verified):
    res = dkimpy_results(keys, m)
    check(len(res) == nsigs, "%s: %d DKIM-Signature fields, want %d" % (case, len(res), nsigs))
    check(all(res), "%s: dkimpy did not verify every signature: %r\n%s" % (case, res, m[:1500]))
    check(body_of(m) == body_of(original), "%s: the body bytes changed in transit" % case)
    c = canon.encode()
    check(m.count(b"c=" + c) == nsigs, "%s: c=%s missing" % (case, canon))
    for what, bad in (("one body byte", tamper_body(m)), ("one Subject byte", tamper_header(m))):
        r = dkimpy_results(keys, bad)
        check(not any(r), "%s: dkimpy still verifies after %s changed: %r" % (case, what, r))
        verified.append((case + " +" + what.replace(" ", "_"), bad, False))
    verified.append((case, m, True))


def enqueue_path(keys, tmp, sink, verified):
    """enqueue (each config x each message) -> run --until-empty -> sink."""
    data = os.path.join(tmp, "q")
    want = {}
    for cname, (sels, canon, extra) in CONFIGS.items():
        for mname, content in MESSAGES.items():
            rcpt = "%s.%s@dest.test" % (cname, mname)
            p = os.path.join(tmp, "%s.%s.eml" % (cname, mname))
            with open(p, "wb") as f:
                f.write(content)
            r = subprocess.run([volley_bin(), "enqueue", "--data", data, "--shards", "2",
                                "--from", "bounce@sign.test", "--to", rcpt]
                               + keys.args(sels, canon, extra) + [p],
                               capture_output=True, text=True, timeout=TIMEOUT_S)
            check(r.returncode == 0, "enqueue %s: %d %s" % (rcpt, r.returncode, r.stderr))
            want[rcpt] = (content, len(sels), canon, cname)
    r = subprocess.run([volley_bin(), "run", "--data", data, "--shards", "2", "--until-empty",
                        "--quiet", "--route", "*=127.0.0.1:%d" % sink.port],
                       capture_output=True, text=True, timeout=TIMEOUT_S)
    check(r.returncode == 0, "run exited %d: %s" % (r.returncode, r.stderr))
    got = {s["rcpts"][0]: s["content"] for s in volley_lib.read_saved(sink.save_dir)}
    for rcpt, (content, n, canon, cname) in want.items():
        check(rcpt in got, "%s: not received by the sink" % rcpt)
        check_received(keys, "enqueue:" + rcpt, got[rcpt], content, n, canon, verified)
        if "--dkim-expire" in CONFIGS[cname][2]:
            t = re.search(rb"t=(\d+);", got[rcpt])
            x = re.search(rb"x=(\d+);", got[rcpt])
            check(t and x and int(x.group(1)) - int(t.group(1)) == 7 * 86400,
                  "%s: x= is not t= + 7d" % rcpt)
    return len(want)


def send_path(keys, tmp, verified):
    """`volley send` signs at its enqueue step (the options are handed on)."""
    save = os.path.join(tmp, "save-send")
    os.mkdir(save)
    sink = volley_lib.MxSink("127.0.0.1", 0, [], save_dir=save)
    check(sink.start_ok, "sink did not start")
    try:
        p = os.path.join(tmp, "send.eml")
        with open(p, "wb") as f:
            f.write(MESSAGES["folded"])
        r = subprocess.run([volley_bin(), "send", "--data", os.path.join(tmp, "qs"), "--shards",
                            "1", "--quiet", "--from", "b@sign.test", "--to", "s@dest.test",
                            "--route", "*=127.0.0.1:%d" % sink.port]
                           + keys.args(["ed", "rsa"], "relaxed/relaxed", []) + [p],
                           capture_output=True, text=True, timeout=TIMEOUT_S)
        check(r.returncode == 0, "send exited %d: %s" % (r.returncode, r.stderr))
        s = volley_lib.read_saved(save)
        check(len(s) == 1, "send: %d messages received" % len(s))
        check_received(keys, "send", s[0]["content"], MESSAGES["folded"], 2, "relaxed/relaxed",
                       verified)
    finally:
        sink.stop()


def unsub_path(keys, tmp, verified):
    """`volley run --unsub sign.test=URL --dkim ...`: each recipient's List-Unsubscribe
    lines are made at delivery and signed there with the stored header block (RFC
    8058 3.3): a signature whose h= covers both fields must verify; a message
    already signed at enqueue keeps that signature valid too."""
    secret, tok = os.path.join(tmp, "unsub-secret"), os.path.join(tmp, "http-token")
    with open(secret, "w") as f:
        f.write("unsub-secret-0123456789abcdef\n")
    with open(tok, "w") as f:
        f.write("token-0123456789abcdef0123456789\n")
    data = os.path.join(tmp, "qu")
    rcpts = ["u%d@dest.test" % i for i in range(3)]
    for i, (mname, presigned) in enumerate((("folded", False), ("runs", True))):
        p = os.path.join(tmp, "unsub-%d.eml" % i)
        with open(p, "wb") as f:
            f.write(MESSAGES[mname].replace(b"List-Unsubscribe", b"X-Old-Unsub"))
        extra = keys.args(["ed"], "relaxed/relaxed", []) if presigned else []
        r = subprocess.run([volley_bin(), "enqueue", "--data", data, "--shards", "2",
                            "--from", "bounce@sign.test"] + sum((["--to", "%s.%s" % (mname, x)]
                                                                for x in rcpts), [])
                           + extra + [p], capture_output=True, text=True, timeout=TIMEOUT_S)
        check(r.returncode == 0, "enqueue: %s" % r.stderr)
    # --unsub needs --http (it serves the /u/ links), which runs until SIGTERM.
    it = inject_lib.Intake(data=data, run_args=[
        "--http", "127.0.0.1:0", "--http-token-file", tok, "--unsub",
        "sign.test=https://u.sign.test", "--unsub-secret-file", secret]
        + keys.args(["rsa", "ed"], "relaxed/relaxed", []))
    try:
        saved = it.wait_saved(6, "run --unsub")
        check(len(saved) == 6, "unsub: %d copies received, want 6" % len(saved))
        tokens = set()
        for s_ in saved:
            m = s_["content"]
            head = m.split(b"\r\n\r\n", 1)[0]
            lu = re.search(rb"(?im)^List-Unsubscribe: (.*)$", head)
            check(lu and re.search(rb"(?im)^List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                                   head), "unsub: no RFC 8058 lines: %r" % head[:600])
            tokens.add(lu.group(1))
            res = dkimpy_results(keys, m)
            want = 3 if s_["rcpts"][0].startswith("runs") else 2
            check(len(res) == want and all(res), "unsub %s: signatures %r" % (s_["rcpts"], res))
            flat = re.sub(rb"\s", b"", head)
            check(re.search(rb"h=From:To:[A-Za-z:-]*List-Unsubscribe:List-Unsubscribe-Post:", flat),
                  "unsub: no signature covers List-Unsubscribe: %r" % head[:800])
            bad = m.replace(lu.group(1), lu.group(1)[:-3] + b"xx>", 1)
            r2 = dkimpy_results(keys, bad)
            check(sum(r2) == want - 2, "unsub: changed token still verifies under %r" % r2)
            verified.append(("unsub:" + s_["rcpts"][0], m, True))
        check(len(tokens) == 6, "unsub: tokens are not per recipient: %d distinct" % len(tokens))
    finally:
        it.close()


def intake_path(keys, verified):
    """`volley run --listen --dkim`: signed at intake, stored signed, delivered."""
    n = 0
    for canon in ("relaxed/relaxed", "simple/simple"):
        it = inject_lib.Intake(run_args=keys.args(["rsa", "ed"], canon, []))
        try:
            c = it.client()
            c.expect(220, "banner")
            names = list(MESSAGES)
            for i, mname in enumerate(names):
                code, lines = inject_lib.txn(c, "b@sign.test", ["%s@dest.test" % mname],
                                             MESSAGES[mname], ehlo="client.test" if i == 0
                                             else None)
                check(code == 250, "intake %s: %s %r" % (mname, code, lines))
            c.send("QUIT")
            saved = it.wait_saved(len(names), "intake " + canon)
            got = {s["rcpts"][0]: s["content"] for s in saved}
            for mname in names:
                m = got.get("%s@dest.test" % mname)
                check(m is not None, "intake %s: not received" % mname)
                check(b"Received: from client.test" in m, "intake %s: no Received:" % mname)
                check_received(keys, "intake:%s:%s" % (canon, mname), m, MESSAGES[mname], 2,
                               canon, verified)
                n += 1
        finally:
            it.close()
    return n


OPENDKIM_NS = r"""
set -eu
ip link set lo up
mount --bind "$DIR/resolv.conf" /etc/resolv.conf
dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=127.0.0.1 --port=53 \
    --bind-interfaces --conf-file="$DIR/dnsmasq.conf" --log-facility="$DIR/dnsmasq.log" &
dm=$!
trap 'kill $dm 2>/dev/null || true' EXIT
for i in $(seq 1 200); do              # dnsmasq logs "started" once its sockets are bound
    grep -q started "$DIR/dnsmasq.log" 2>/dev/null && break
    sleep 0.05
done
for f in "$DIR"/msg/*.eml; do
    rc=0
    opendkim-testmsg < "$f" > "$f.out" 2>&1 || rc=$?
    echo "$(basename "$f") $rc"
done
"""


def opendkim_check(keys, tmp, verified):
    """Every good message: opendkim-testmsg exit 0; every changed one: not 0."""
    for tool in ("opendkim-testmsg", "unshare", "ip"):
        check(shutil.which(tool) or os.access("/usr/sbin/" + tool, os.X_OK),
              "%s is not installed (scripts/setup.sh installs opendkim-tools, util-linux, "
              "iproute2)" % tool)
    d = os.path.join(tmp, "od")
    os.makedirs(os.path.join(d, "msg"))
    with open(os.path.join(d, "resolv.conf"), "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:2\n")
    with open(os.path.join(d, "dnsmasq.conf"), "w") as f:
        for s, txt in keys.txt.items():
            f.write('txt-record=%s._domainkey.%s,"%s"\n' % (s, DOMAIN, txt))
    want = {}
    for i, (case, m, good) in enumerate(verified):
        name = "%04d.eml" % i
        with open(os.path.join(d, "msg", name), "wb") as f:
            f.write(m)
        want[name] = (case, good)
    env = dict(os.environ, DIR=d, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    r = subprocess.run(["unshare", "-mn", "bash", "-c", OPENDKIM_NS], capture_output=True,
                       text=True, timeout=TIMEOUT_S * 3, env=env)
    check(r.returncode == 0, "opendkim namespace run exited %d: %s" % (r.returncode, r.stderr))
    got = dict(l.split() for l in r.stdout.splitlines() if l.endswith(tuple("0123456789")))
    for name, (case, good) in want.items():
        check(name in got, "opendkim: no verdict for %s (%s)" % (case, name))
        if good and got[name] != "0":
            with open(os.path.join(d, "msg", name + ".out")) as f:
                fail("opendkim-testmsg refused %s: rc %s: %s" % (case, got[name], f.read()))
        if not good and got[name] == "0":
            fail("opendkim-testmsg accepted the changed message %s" % case)
    return len(want)


def key_errors(tmp):
    """A bad key stops enqueue and run at start-up with the reason; nothing queued."""
    short, ec = os.path.join(tmp, "short.pem"), os.path.join(tmp, "ec.pem")
    sh(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
        "-out", short])
    sh(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", ec])
    msg = os.path.join(tmp, "k.eml")
    with open(msg, "wb") as f:
        f.write(MESSAGES["dots"])
    data = os.path.join(tmp, "qk")
    for key, words in ((short, "RSA key of 1024 bits is too short"),
                       (ec, "a EC key: DKIM signs with RSA (rsa-sha256) or Ed25519"),
                       (os.path.join(tmp, "missing.pem"), "no such key file")):
        spec = "%s:s1:%s" % (DOMAIN, key)
        r = subprocess.run([volley_bin(), "enqueue", "--data", data, "--from", "b@sign.test",
                            "--to", "x@dest.test", "--dkim", spec, msg],
                           capture_output=True, text=True, timeout=TIMEOUT_S)
        check(r.returncode == 2 and words in r.stderr and "--dkim sign.test:s1" in r.stderr,
              "enqueue with %s: exit %d, stderr %r" % (key, r.returncode, r.stderr))
        r = subprocess.run([volley_bin(), "run", "--data", data, "--listen", "127.0.0.1:0",
                            "--route", "*=127.0.0.1:1", "--dkim", spec],
                           capture_output=True, text=True, timeout=TIMEOUT_S)
        check(r.returncode == 2 and words in r.stderr,
              "run --listen with %s: exit %d, stderr %r" % (key, r.returncode, r.stderr))
    check(not os.path.exists(data), "a queue was created in %s despite the bad keys" % data)


def main():
    for tool in ("openssl", "dnsmasq"):
        check(shutil.which(tool) or os.access("/usr/sbin/" + tool, os.X_OK),
              "%s is not installed (scripts/setup.sh installs it)" % tool)
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix="volley-dkim-", dir=base)
    sink = None
    try:
        keys = Keys(tmp)
        save = os.path.join(tmp, "save")
        os.mkdir(save)
        sink = volley_lib.MxSink("127.0.0.1", 0, [], save_dir=save)
        check(sink.start_ok, "sink did not start: %s" % sink.stderr())
        verified = []
        key_errors(tmp)
        print("ok bad keys refused by enqueue and run --listen, with the reason")
        n1 = enqueue_path(keys, tmp, sink, verified)
        print("ok enqueue+run: %d messages verified by dkimpy, each refused when changed" % n1)
        send_path(keys, tmp, verified)
        print("ok send: verified by dkimpy")
        unsub_path(keys, tmp, verified)
        print("ok run --unsub: per-recipient List-Unsubscribe signed at delivery, verified")
        n3 = intake_path(keys, verified)
        print("ok run --listen: %d messages verified by dkimpy" % n3)
        n4 = opendkim_check(keys, tmp, verified)
        print("ok opendkim-testmsg: %d verdicts (good ones pass, changed ones fail)" % n4)
    finally:
        if sink and sink.proc.poll() is None:
            sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
