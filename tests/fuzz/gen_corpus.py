#!/usr/bin/env python3
"""gen_corpus.py - (re)write the seed corpora of tests/fuzz/corpus/<name>/seed-*.

Sources: tests/transcripts/*.smtp (S: lines -> smtp_reply and smtp_ehlo, C:
lines -> smtp_server, B: and DATA lines -> msg), the address table of
tests/unit/engine/base/addr_test.c, hand-written messages (*.eml), DNS answers
and queue records built here byte by byte. Deterministic: running it again
rewrites the same files. Files not named seed-* (crash-* regressions found by
fuzzing) are left alone.

    python3 tests/fuzz/gen_corpus.py [ROOT]
"""
import glob
import os
import re
import struct
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def unescape(s):
    """Transcript text: \\xNN is one octet, everything else literal (UTF-8 source)."""
    out = bytearray()
    i = 0
    raw = s.encode("utf-8")
    while i < len(raw):
        if raw[i:i + 2] == b"\\x" and re.match(rb"[0-9a-fA-F]{2}", raw[i + 2:i + 4]):
            out.append(int(raw[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def c_string(lit):
    """A C string literal's body -> bytes (the escapes the test tables use)."""
    out = bytearray()
    i = 0
    while i < len(lit):
        c = lit[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        n = lit[i + 1]
        if n == "x":
            m = re.match(r"[0-9a-fA-F]+", lit[i + 2:])
            out.append(int(m.group(0), 16) & 0xFF)
            i += 2 + len(m.group(0))
        else:
            out += {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\",
                    '"': b'"', "'": b"'"}.get(n, n.encode())
            i += 2
    return bytes(out)


class Corpus:
    def __init__(self):
        self.files = {}

    def add(self, target, name, data):
        self.files.setdefault(target, {})
        if data not in self.files[target].values():
            self.files[target][name] = data

    def write(self):
        for target, files in sorted(self.files.items()):
            d = os.path.join(CORPUS, target)
            os.makedirs(d, exist_ok=True)
            for old in glob.glob(os.path.join(d, "seed-*")):
                os.remove(old)
            for name, data in sorted(files.items()):
                with open(os.path.join(d, "seed-" + name), "wb") as f:
                    f.write(data)
            print("%-12s %3d seeds, %6d bytes" % (target, len(files),
                                                  sum(len(v) for v in files.values())))


def transcripts(c):
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "transcripts", "*.smtp"))):
        base = os.path.splitext(os.path.basename(path))[0]
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        s_lines = [unescape(l[3:] if l.startswith("S: ") else l[2:])
                   for l in lines if l.startswith("S:")]
        c_lines = [unescape(l[3:] if l.startswith("C: ") else l[2:])
                   for l in lines if l.startswith("C:")]
        b_lines = [unescape(l[3:] if l.startswith("B: ") else l[2:])
                   for l in lines if l.startswith("B:")]
        # smtp_reply: every server line, CRLF-terminated, as one stream.
        if s_lines:
            c.add("smtp_reply", base, b"".join(l + b"\r\n" for l in s_lines))
        # smtp_ehlo: the capability lines of each multi-line 2xx reply.
        caps, cur = [], []
        for l in s_lines:
            if len(l) >= 4 and l[:1] == b"2" and l[3:4] == b"-":
                cur.append(l[4:])
                continue
            if cur and len(l) >= 4 and l[:1] == b"2":
                caps.append(cur[1:] + [l[4:]])
            cur = []
        for i, cap in enumerate(caps):
            c.add("smtp_ehlo", "%s-%d" % (base, i), b"\n".join(cap))
        # smtp_server: config byte, policy byte 0, then the client's lines
        # (body lines dot-stuffed again).
        if c_lines:
            stream, data = bytearray(), False
            for l in c_lines:
                if data and l != b"." and l.startswith(b"."):
                    l = b"." + l
                stream += l + b"\r\n"
                if l.upper() == b"DATA":
                    data = True
                elif l == b".":
                    data = False
            c.add("smtp_server", base + "-std", bytes([0x07, 0]) + bytes(stream))
            c.add("smtp_server", base + "-all", bytes([0x3F, 0]) + bytes(stream))
            c.add("smtp_server", base + "-policy", bytes([0xC7, 0x05]) + bytes(stream))
            # msg: the DATA content of the client's lines.
            body, data = [], False
            for l in c_lines:
                if data and l == b".":
                    c.add("msg", "%s-data.eml" % base, b"".join(x + b"\r\n" for x in body))
                    body, data = [], False
                elif data:
                    body.append(l)
                elif l.upper() == b"DATA":
                    data = True
        if b_lines:
            c.add("msg", base + "-b.eml", b"".join(x + b"\n" for x in b_lines))
        # addr: the envelope addresses of @msg lines.
        for l in lines:
            if l.startswith("@msg"):
                for m in re.finditer(r"(?:from|rcpt)=(\S+)", l):
                    a = unescape(m.group(1))
                    c.add("addr", "t-" + re.sub(rb"[^A-Za-z0-9.]", b"_", a).decode(), a)


def addresses(c):
    src = os.path.join(ROOT, "tests", "unit", "engine", "base", "addr_test.c")
    with open(src, encoding="utf-8") as f:
        text = f.read()
    for m in re.finditer(r'\{\s*"([^"]*)",\s*"((?:[^"\\]|\\.)*)",\s*[01],', text):
        label = re.sub(r"[^A-Za-z0-9]", "_", m.group(1))
        c.add("addr", "u-" + label, c_string(m.group(2)))
    extra = [b'"a\\"b"@example.org', b"a@[IPv6:2001:db8::1]", b"x" * 64 + b"@example.org",
             b"postmaster@" + b"a" * 63 + b"." + b"b" * 63 + b".org", b"a@b"]
    for i, a in enumerate(extra):
        c.add("addr", "x-%d" % i, a)


MESSAGES = {
    "simple.eml": b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n"
                  b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n"
                  b"\r\nbody\r\n",
    "bcc-folded.eml": b"From: a@example.org\nBcc: x@y.org,\n z@y.org\nReturn-Path: <q@r>\n"
                      b"Subject: folded\n\tsecond\n\nbody\n.\n..dots\n",
    "bare-cr-lf.eml": b"Subject: s\rX-A: 1\n\r\nline\rline\n\rend",
    "8bit.eml": b"From: j\xc3\xb6rg@example.org\r\nSubject: caf\xc3\xa9\r\n\r\ncaf\xc3\xa9\r\n",
    "headers-only.eml": b"Subject: no body\r\nTo: b@example.org",
    "bad-first.eml": b"not a header\r\n\r\nbody\r\n",
    "dup-from.eml": b"From: a@x.org\r\nFrom: b@x.org\r\n\r\n",
    "long-line.eml": b"Subject: l\r\n\r\n" + b"x" * 999 + b"\r\n",
    "mime.eml": b"From: a@example.org\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
                b"Content-Type: text/plain\r\n\r\npart\r\n--b1--\r\n",
}


def messages(c):
    for name, data in MESSAGES.items():
        c.add("msg", name, data)


REPLIES = {
    "multiline-esc": b"250-mx.example.org\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN CRAM-MD5"
                     b"\r\n250-AUTH=LOGIN PLAIN\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING"
                     b"\r\n250-DSN\r\n250 STARTTLS\r\n",
    "bare-lf": b"250 ok\n",
    "code-change": b"250-a\r\n251 b\r\n",
    "pipelined": b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n452 4.5.3 too many\r\n354 go\r\n",
    "no-text": b"250\r\n220 \r\n",
    "esc-mismatch": b"550 4.1.1 mismatched class\r\n",
    "long": b"250 " + b"x" * 1500 + b"\r\n",
}


def replies(c):
    for name, data in REPLIES.items():
        c.add("smtp_reply", name, data)
    c.add("smtp_ehlo", "auth", b"AUTH PLAIN LOGIN XOAUTH2 GSSAPI\nAUTH=LOGIN\nsize 0\n"
                               b"SIZE 99999999999999999999\nSIZE x\npipelining\n\tDSN")
    c.add("smtp_server", "dsn-utf8", bytes([0x3F, 0]) +
          b"EHLO c\r\nMAIL FROM:<j\xc3\xb6rg@x.org> SMTPUTF8 BODY=8BITMIME RET=HDRS "
          b"ENVID=a+2Bb SIZE=10\r\nRCPT TO:<b@x.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b@x.org"
          b"\r\nRCPT TO:Postmaster\r\nDATA\r\nx\r\n..y\r\n.\r\nBDAT 1\r\nVRFY a\r\nHELP\r\n"
          b"STARTTLS\r\nQUIT\r\n")
    c.add("smtp_server", "smuggle", bytes([0x47, 0]) +
          b"EHLO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\nx\n.\nMAIL FROM:<e@x>"
          b"\r\n\r.\r\nz\r\n.\r\n" + b"N" * 600 + b"\r\nNOOP\r\nQUIT\r\n")


# ---- DNS ----------------------------------------------------------------------------

def dns_name(name):
    out = b""
    for label in name.split(".") if name else []:
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns_msg(qname, qtype, answers, authority=(), flags=0x8180, rcode=0):
    """answers/authority: (type, ttl, rdata) with the owner a pointer to the question."""
    hdr = struct.pack(">HHHHHH", 0x1234, flags | rcode, 1, len(answers), len(authority), 0)
    q = dns_name(qname) + struct.pack(">HH", qtype, 1)
    rr = b""
    for rtype, ttl, rdata in list(answers) + list(authority):
        rr += struct.pack(">HHHIH", 0xC00C, rtype, 1, ttl, len(rdata)) + rdata
    return hdr + q + rr


def dns(c):
    mx = lambda pref, host: struct.pack(">H", pref) + dns_name(host)
    soa = dns_name("ns.example.org") + dns_name("host.example.org") + \
        struct.pack(">IIIII", 2024010101, 3600, 600, 86400, 300)
    c.add("dns_parse", "mx", dns_msg("example.org", 15, [(15, 300, mx(10, "mx1.example.org")),
                                                          (15, 600, mx(20, "MX2.Example.org"))]))
    c.add("dns_parse", "mx-compressed", dns_msg("example.org", 15, [
        (15, 300, struct.pack(">H", 5) + b"\x03mx1\xc0\x0c"),
        (15, 300, struct.pack(">H", 5) + b"\x03mx2\xc0\x0c")]))
    c.add("dns_parse", "null-mx", dns_msg("example.org", 15, [(15, 3600, mx(0, ""))]))
    c.add("dns_parse", "mx-cname", dns_msg("example.org", 15, [
        (5, 60, dns_name("alias.example.net")), (15, 300, mx(5, "mail.example.net"))]))
    c.add("dns_parse", "nxdomain-soa", dns_msg("nope.example.org", 15, [], [(6, 900, soa)],
                                               rcode=3))
    c.add("dns_parse", "nodata-soa", dns_msg("example.org", 1, [], [(6, 100, soa)]))
    c.add("dns_parse", "a", dns_msg("mx1.example.org", 1, [(1, 300, bytes([192, 0, 2, 1])),
                                                            (1, 0x80000001, bytes([192, 0, 2, 2]))]))
    c.add("dns_parse", "a-cname", dns_msg("www.example.org", 1, [
        (5, 30, dns_name("real.example.org")), (1, 300, bytes([198, 51, 100, 7]))]))
    c.add("dns_parse", "aaaa", dns_msg("mx1.example.org", 28, [
        (28, 300, bytes.fromhex("20010db8000000000000000000000001"))]))
    c.add("dns_parse", "a-bad-len", dns_msg("mx1.example.org", 1, [(1, 300, b"\1\2\3")]))
    c.add("dns_parse", "truncated", dns_msg("example.org", 15, [], flags=0x8380))
    c.add("dns_parse", "ptr-loop", dns_msg("example.org", 15, [
        (15, 300, struct.pack(">H", 1) + b"\xc0\x2b")]))
    c.add("dns_parse", "bad-chars", dns_msg("example.org", 15, [(15, 300, mx(1, "m x.example.org"))]))
    c.add("dns_parse", "query", dns_msg("example.org", 15, [], flags=0x0100))


# ---- queue records (queue/queue_codec.c, queue_schema.h) --------------------------------

def queue(c):
    v = 1
    c.add("queue_codec", "shard", struct.pack("<BBHII", v, 1, 0, 3, 8))
    c.add("queue_codec", "shard-bad", struct.pack("<BBHII", v, 1, 0, 8, 8))
    c.add("queue_codec", "stats", struct.pack("<BB6x", v, 2) +
          struct.pack("<11Q", 42, 0, 5, 6, 7, 8, 9, 1, 3, 12345, 2))
    rp = b"sender@example.org"
    c.add("queue_codec", "msg", struct.pack("<BBHIQQQQII", v, 3, len(rp), 1, 7,
                                            1700000000000, 2048, (2 << 48) | 5, 3, 2) + rp)
    c.add("queue_codec", "msg-null-sender", struct.pack("<BBHIQQQQII", v, 3, 0, 0, 8,
                                                        1700000000000, 10, 9, 1, 1))
    status, text, addr = b"4.7.1", b"greylisted, try later", b"rcpt@example.org"
    c.add("queue_codec", "rcpt-deferred",
          struct.pack("<BBBBIQQHHHHH", v, 4, 2, len(status), 3, 7, 1700000300000, 451,
                      len(text), len(addr), 5, len(addr) - 5) + status + text + addr)
    c.add("queue_codec", "rcpt-ready",
          struct.pack("<BBBBIQQHHHHH", v, 4, 1, 0, 0, 7, 0, 0, 0, len(addr), 5,
                      len(addr) - 5) + addr)
    c.add("queue_codec", "version-2", struct.pack("<BBHII", 2, 1, 0, 0, 1))


def main():
    c = Corpus()
    transcripts(c)
    addresses(c)
    messages(c)
    replies(c)
    dns(c)
    queue(c)
    c.write()


if __name__ == "__main__":
    main()
