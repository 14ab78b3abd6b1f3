#!/usr/bin/env python3
"""dsn_check.py - parse a DSN with Python's email package (an independent parser)
and check it field by field.

usage: dsn_check.py FILE --to ADDR [--rcpt ADDR:ACTION:STATUS[:REMOTE]]... [--orig-header NAME:VALUE]
       [--no-rcpt ADDR] [--envelope] [--env-rcpt ADDR]
  --envelope: FILE is a `volley sink --save` file: it starts with the envelope lines
  'X-Volley-Mail-From: <a>' and 'X-Volley-Rcpt-To: <b>' (one per recipient) directly
  followed by the content (no blank line between). They are removed before parsing, and
  the envelope sender must be null (a DSN goes out with MAIL FROM:<>).
  --env-rcpt ADDR: with --envelope, the envelope recipients must be exactly ADDR.
  --diag ADDR:TEXT: ADDR's Diagnostic-Code must contain TEXT.
Exit 0 if every check passes; else prints each failure and exits 1.
"""
import email
import email.policy
import sys

ENV_FROM = b"X-Volley-Mail-From:"
ENV_RCPT = b"X-Volley-Rcpt-To:"


def split_envelope(raw):
    """(mail_from, [rcpt], content) of a sink --save file; raises ValueError."""
    mail_from, rcpts, pos = None, [], 0
    while True:
        end = raw.find(b"\r\n", pos)
        if end < 0:
            raise ValueError("envelope line without CRLF")
        line = raw[pos:end]
        if line.startswith(ENV_FROM) and mail_from is None and not rcpts:
            mail_from = line[len(ENV_FROM):].strip().decode("utf-8", "replace")
        elif line.startswith(ENV_RCPT) and mail_from is not None:
            rcpts.append(line[len(ENV_RCPT):].strip().decode("utf-8", "replace"))
        else:
            break
        pos = end + 2
    if mail_from is None or not rcpts:
        raise ValueError("no X-Volley-Mail-From/X-Volley-Rcpt-To envelope lines")
    return mail_from, rcpts, raw[pos:]


def main(argv):
    path = argv[1]
    want_to, rcpts, no_rcpts, orig_headers, envelope = None, [], [], [], False
    env_rcpt, diags = None, []
    i = 2
    while i < len(argv):
        a = argv[i]
        if a == "--envelope":
            envelope = True
            i += 1
            continue
        v = argv[i + 1]
        if a == "--to":
            want_to = v
        elif a == "--rcpt":
            rcpts.append(v.split(":", 3))
        elif a == "--no-rcpt":
            no_rcpts.append(v)
        elif a == "--diag":
            diags.append(v.split(":", 1))
        elif a == "--env-rcpt":
            env_rcpt = v
        elif a == "--orig-header":
            orig_headers.append(v.split(":", 1))
        else:
            print("dsn_check: unknown option", a)
            return 2
        i += 2
    raw = open(path, "rb").read()
    fails = []

    def check(cond, what):
        if not cond:
            fails.append(what)

    if envelope:
        try:
            mail_from, env_rcpts, raw = split_envelope(raw)
        except ValueError as e:
            print("envelope: %s" % e)
            return 1
        check(mail_from == "<>", "envelope sender %r, want <> (null reverse-path)" % mail_from)
        if env_rcpt is not None:
            check(env_rcpts == ["<%s>" % env_rcpt], "envelope recipients %r" % env_rcpts)

    for n, line in enumerate(raw.split(b"\r\n")):
        check(len(line) <= 998, "line %d longer than 998 octets" % (n + 1))
        check(b"\n" not in line and b"\r" not in line, "bare CR or LF on line %d" % (n + 1))
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    check(msg.get_content_type() == "multipart/report", "content type %s" % msg.get_content_type())
    check(msg.get_param("report-type") == "delivery-status", "report-type")
    check(msg.get("Auto-Submitted") == "auto-replied", "Auto-Submitted")
    check("postmaster@" in (msg.get("From") or "").lower(), "From: %r" % msg.get("From"))
    check(msg.get("Date") is not None and msg.get("Message-ID") is not None, "Date/Message-ID")
    if want_to:
        check(want_to in (msg.get("To") or ""), "To: %r" % msg.get("To"))
    parts = msg.get_payload()
    check(isinstance(parts, list) and len(parts) == 3, "3 parts")
    if fails or len(parts) != 3:
        print("\n".join(fails))
        return 1
    check(parts[0].get_content_type() == "text/plain", "part 1 text/plain")
    check(parts[1].get_content_type() == "message/delivery-status", "part 2 delivery-status")
    check(parts[2].get_content_type() in ("text/rfc822-headers", "message/rfc822"), "part 3")
    blocks = parts[1].get_payload()
    per_msg = blocks[0]
    check(per_msg.get("Reporting-MTA", "").startswith("dns;"), "Reporting-MTA")
    check(per_msg.get("Arrival-Date") is not None, "Arrival-Date")
    seen = {}
    for b in blocks[1:]:
        fr = b.get("Final-Recipient", "")
        check(fr.lower().startswith("rfc822;"), "Final-Recipient type: %r" % fr)
        seen[fr.split(";", 1)[1].strip()] = b
    for r in rcpts:
        addr, action, status = r[0], r[1], r[2]
        b = seen.get(addr)
        check(b is not None, "no block for %s (have %s)" % (addr, list(seen)))
        if b is None:
            continue
        check(b.get("Action") == action, "%s Action %r != %r" % (addr, b.get("Action"), action))
        check(b.get("Status") == status, "%s Status %r != %r" % (addr, b.get("Status"), status))
        if len(r) > 3 and r[3]:
            check(b.get("Remote-MTA") == "dns; " + r[3], "%s Remote-MTA %r" % (addr, b.get("Remote-MTA")))
        check(b.get("Diagnostic-Code") is not None, "%s Diagnostic-Code" % addr)
    for addr, text in diags:
        d = (seen[addr].get("Diagnostic-Code") or "") if addr in seen else ""
        check(text in d, "%s Diagnostic-Code %r lacks %r" % (addr, d, text))
    for addr in no_rcpts:
        check(addr not in seen, "unexpected block for %s" % addr)
    if rcpts:
        check(len(seen) == len(rcpts), "%d recipient blocks, expected %d" % (len(seen), len(rcpts)))
    hdrs = email.message_from_string(parts[2].get_payload() if isinstance(parts[2].get_payload(), str)
                                     else parts[2].get_payload()[0].as_string())
    for name, value in orig_headers:
        check((hdrs.get(name) or "").strip() == value.strip(),
              "original header %s %r != %r" % (name, hdrs.get(name), value))
    if fails:
        print("\n".join(fails))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
