"""bounce_category.py - bounce categories end to end (issue 16): a `volley sink`
refuses recipients with provider-style replies; the delivery log carries each
failure's category (shipped rules, and a user rule from --bounce-rules that wins
over them), deliveries carry none, and the DSN names the category per recipient
(X-Bounce-Category, checked with Python's email parser). A bad rules file is a
usage error naming FILE:LINE, and nothing is delivered."""
import email
import email.policy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import check, by_event, run_cases  # noqa: E402

SENDER = "bounces@dsn.test"
DSN_HOST, MX_HOST = "127.0.0.20", "127.0.0.21"
FAULTS = [  # (local-part prefix, code, reply text, expected category)
    ("full", 552, "5.2.2 The email account that you tried to reach is over quota.", "mailbox_full"),
    ("gone", 550, "5.1.1 The email account that you tried to reach does not exist.", "bad_mailbox"),
    ("spam", 554, "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
     "policy"),
    ("dmarc", 550, "5.7.26 Unauthenticated email from src.test is not accepted due to domain's DMARC policy.",
     "auth"),
    ("acme", 550, "5.7.1 ACME-GATEWAY says: vacation mode", "inactive_mailbox"),  # user rule
    ("slow", 451, "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume",
     "throttled"),
]
USER_RULES = "# a site's own gateway\ninactive_mailbox 5.7.* acme-gateway.*vacation\n"


def zone():
    return {"dsn.test": [(10, "mx.dsn.test", DSN_HOST)], "b.test": [(10, "mx.b.test", MX_HOST)]}


def case_categories(env):
    args = []
    for prefix, code, text, _ in FAULTS:
        args += ["--fault", "rcpt=%d:match=%s:text=%s" % (code, prefix, text)]
    env.start_sinks({DSN_HOST: [], MX_HOST: args})
    env.start_dns(zone())
    rules = os.path.join(env.tmp, "rules.conf")
    with open(rules, "w") as f:
        f.write(USER_RULES)
    rcpts = ["%s1@b.test" % p for p, _, _, _ in FAULTS] + ["ok1@b.test"]
    env.enqueue(SENDER, rcpts)
    env.run("--dsn-interval", "0", "--bounce-rules", rules)
    log = env.log()
    want = {"%s1@b.test" % p: cat for p, _, _, cat in FAULTS}
    for r, cat in want.items():
        lines = [e for e in log if e["rcpt"] == r]
        check(lines, "%s: no log line" % r)
        check(lines[0].get("category") == cat, "%s: category %r, want %r (line %r)" %
              (r, lines[0].get("category"), cat, lines[0]))
    ok = [e for e in log if e["rcpt"] == "ok1@b.test"]
    check(len(ok) == 1 and ok[0]["event"] == "delivered" and "category" not in ok[0],
          "delivered recipient: %r" % ok)
    # The DSN (failures only; the 451 one is deferred): one per bounced recipient's
    # message, each per-recipient block naming its category.
    saved = env.saved(DSN_HOST)
    check(saved, "no DSN arrived")
    if os.environ.get("DEBUG_DSN"):
        print(saved[0]["content"].decode())
    seen = {}
    for s in saved:
        msg = email.message_from_bytes(s["content"], policy=email.policy.compat32)
        check(msg.get_content_type() == "multipart/report", "DSN type %s" % msg.get_content_type())
        for part in msg.walk():
            if part.get_content_type() != "message/delivery-status":
                continue
            blocks = part.get_payload()   # [per-message, per-recipient...]
            for b in blocks[1:]:
                fr = b.get("Final-Recipient", "").split(";")[-1].strip()
                seen[fr] = b.get("X-Bounce-Category")
    bounced = {e["rcpt"] for e in by_event(log, "bounced")}
    check(len(bounced) >= 4, "bounced: %r" % sorted(bounced))
    for r, cat in want.items():
        if r not in bounced:       # deferred (451, and 552 at RCPT = 452: RFC 5321 4.5.3.1.10)
            check(r not in seen, "deferred %s in a failure DSN" % r)
            continue
        check(seen.get(r) == cat, "DSN for %s: X-Bounce-Category %r, want %r" % (r, seen.get(r), cat))


def case_bad_rules(env):
    env.start_sinks({DSN_HOST: [], MX_HOST: []})
    env.start_dns(zone())
    rules = os.path.join(env.tmp, "bad.conf")
    with open(rules, "w") as f:
        f.write("policy 5.7.1 spam\nmailbox_ful 5.2.2 *\n")
    env.enqueue(SENDER, ["a@b.test"])
    r = env.run("--bounce-rules", rules, expect_rc=2)
    check("bad.conf:2: unknown category 'mailbox_ful'" in r.stderr, "stderr: %r" % r.stderr)
    check(not by_event(env.log(), "delivered"), "delivered despite the usage error")
    r = env.run("--bounce-rules", os.path.join(env.tmp, "missing.conf"), expect_rc=2)
    check("--bounce-rules" in r.stderr and "missing.conf" in r.stderr, "stderr: %r" % r.stderr)


if __name__ == "__main__":
    run_cases([("categories", case_categories), ("bad_rules", case_bad_rules)])
