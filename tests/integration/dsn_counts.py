"""dsn_counts.py - issue 9 item 4: every bounced recipient of a message with
a return path appears in exactly one DSN, whatever the counts.

DSNs arrive at the return path's sink (ret.test) and are parsed with Python's
email package (the message/delivery-status part's per-recipient blocks).
Cases:

  item4_250_rcpts_550: one message, 250 recipients, a sink that answers 550
    to every RCPT, --max-rcpts 100 (3 attempts): a few DSNs that together
    name each of the 250 exactly once.
  item4_250_rcpts_one_commit: the same 250 to a host where nothing listens,
    --max-age 1s (the run starts after it: each deferral expires) and one connection: the 3 attempts
    fail together, so their 250 outcomes land in ONE commit: ONE DSN naming
    all 250 (the old code named only the first 100).
  item4_1100_msgs_one_commit: 1100 single-recipient messages expiring the
    same way in one commit: 1100 DSNs, one per message, each naming its one
    recipient (the old code enqueued at most 1024 DSNs per commit).

Run one case with DELIVER_CASE=name."""
import os
import re
import sys
import time
from email import message_from_bytes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import check, message, run_cases  # noqa: E402
from retry_lib import SENDER, setup, dsns, open_count  # noqa: E402


def dsn_parse(d):
    """(original Subject, [Final-Recipient addresses]) of one saved DSN."""
    msg = message_from_bytes(d["content"])
    check(msg.get_content_type() == "multipart/report", "%s: %s" % (d["file"],
                                                                 msg.get_content_type()))
    check(d["rcpts"] == [SENDER], "DSN %s sent to %r" % (d["file"], d["rcpts"]))
    status = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
    check(len(status) == 1, "%s: %d delivery-status parts" % (d["file"], len(status)))
    blocks = status[0].get_payload()
    check(isinstance(blocks, list) and len(blocks) >= 2, "%s: no recipient blocks" % d["file"])
    addrs = []
    for b in blocks[1:]:
        fr = b.get("Final-Recipient", "")
        m = re.match(r"rfc822;\s*(\S+)$", fr.strip())
        check(m, "%s: Final-Recipient %r" % (d["file"], fr))
        check(b.get("Action") == "failed", "%s: Action %r" % (d["file"], b.get("Action")))
        addrs.append(m.group(1).lower())
    heads = [p for p in msg.walk() if p.get_content_type() == "text/rfc822-headers"]
    check(len(heads) == 1, "%s: %d text/rfc822-headers parts" % (d["file"], len(heads)))
    raw = heads[0].get_payload(decode=True) or b""
    subj = re.search(rb"^Subject: (.*?)\r?$", raw, re.M)
    check(subj, "%s: no Subject in the original headers" % d["file"])
    return subj.group(1).decode(), addrs


def named_once(env, want):
    """Every address of want named in exactly one DSN block, nothing else.
    Returns the parsed DSNs."""
    got, parsed = [], []
    for d in dsns(env):
        p = dsn_parse(d)
        parsed.append(p)
        got += p[1]
    dup = sorted({a for a in got if got.count(a) > 1}) if len(got) != len(set(got)) else []
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    check(not dup and not missing and not extra,
          "%d DSNs name %d recipients for %d bounced: missing %d %s, twice %d %s, extra %s" %
          (len(parsed), len(got), len(want), len(missing), missing[:5], len(dup), dup[:5],
           extra[:5]))
    return parsed


def case_item4_250_rcpts_550(env):
    setup(env, ["--fault", "rcpt=550"])
    rcpts = ["b%03d@dst.test" % i for i in range(250)]
    env.enqueue(SENDER, rcpts, message(subject="250 bounced", from_addr=SENDER))
    env.run("--max-rcpts", "100")
    check(open_count(env) == 0, "open after the run: %r" % env.queue_stats())
    parsed = named_once(env, rcpts)
    check(1 <= len(parsed) <= 3, "%d DSNs for 3 attempts of one message" % len(parsed))


def case_item4_250_rcpts_one_commit(env):
    setup(env)
    rcpts = ["x%03d@down.test" % i for i in range(250)]
    env.enqueue(SENDER, rcpts, message(subject="250 expired", from_addr=SENDER))
    time.sleep(1.2)            # past --max-age 1s: the first deferral expires
    env.run("--max-rcpts", "100", "--max-age", "1s", "--retry-base", "1s",
            "--conns-per-dest", "1")
    check(open_count(env) == 0, "open after the run: %r" % env.queue_stats())
    parsed = named_once(env, rcpts)
    check(len(parsed) == 1, "%d DSNs for one message failed in one commit" % len(parsed))


def case_item4_1100_msgs_one_commit(env):
    setup(env)
    n = 1100
    rcpts = ["m%04d@down.test" % i for i in range(n)]
    env.enqueue_many([(SENDER, [r], message(subject="msg %s" % r, body_lines=1,
                                            from_addr=SENDER)) for r in rcpts], jobs=8)
    time.sleep(1.2)
    env.run("--max-age", "1s", "--retry-base", "1s", "--conns-per-dest", "1")
    check(open_count(env) == 0, "open after the run: %r" % env.queue_stats())
    parsed = named_once(env, rcpts)
    check(len(parsed) == n, "%d DSNs for %d messages" % (len(parsed), n))
    for subj, addrs in parsed:
        check(addrs == [subj[len("msg "):]], "DSN about %r names %r" % (subj, addrs))


if __name__ == "__main__":
    run_cases([
        ("item4_250_rcpts_550", case_item4_250_rcpts_550),
        ("item4_250_rcpts_one_commit", case_item4_250_rcpts_one_commit),
        ("item4_1100_msgs_one_commit", case_item4_1100_msgs_one_commit),
    ])
