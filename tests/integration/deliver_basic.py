"""deliver_basic.py - delivery over loopback with real DNS (dnsmasq) to `volley
sink` instances: every recipient exactly once (log and --save files agree),
pipelining used (and lockstep with a --no-pipelining server), connection reuse,
several domains/hosts with --shards 2. Run one case with DELIVER_CASE=name."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import (check, check_exactly_once, message, by_event,  # noqa: E402
                        run_cases)

SENDER = "sender@src.test"   # src.test is NXDOMAIN: no DSN expected in these cases


def split_msg(raw):
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    return head.split(b"\n"), body


def content_matches(saved, contents):
    """Every saved message is one enqueued message: its header lines first, in
    order (enqueue may append Date/Message-ID after them), and the same body."""
    want = {}
    for c in contents:
        head, body = split_msg(c)
        want[head[-1]] = (head, body)          # keyed by the unique Subject line
    for s in saved:
        check(s["mail_from"] == SENDER, "saved %s: MAIL FROM %r" % (s["file"], s["mail_from"]))
        head, body = split_msg(s["content"])
        subj = [h for h in head if h.startswith(b"Subject:")]
        check(subj and subj[0] in want, "saved %s: unknown Subject %r" % (s["file"], subj))
        whead, wbody = want[subj[0]]
        check(head[:len(whead)] == whead and body == wbody,
              "saved %s: content differs from the enqueued message" % s["file"])


def case_exactly_once_pipelined(env):
    env.start_sinks({"127.0.0.2": []})
    env.start_dns()
    items, want = [], []
    for m in range(40):
        rc = ["m%d.r%d@example.test" % (m, r) for r in range(5)]
        items.append((SENDER, rc, message(subject="msg %d" % m, body_lines=m % 7)))
        want += rc
    big = ["big.%d@Example.Test" % r for r in range(250)]      # 3 transactions of <= 100
    items.append((SENDER, big, message(subject="big", body_lines=40)))
    want += big
    env.enqueue_many(items)
    env.run()
    log = env.log()
    check(len(log) == len(want), "log has %d lines, want %d" % (len(log), len(want)))
    saved = env.saved("127.0.0.2")
    check_exactly_once(log, saved, want, "exactly once")
    content_matches(saved, [c for _, _, c in items])
    for e in by_event(log, "delivered"):
        check(e.get("ip") == "127.0.0.2" and e.get("mx") == "mx1.example.test" and
              e.get("code") == 250, "delivered line: %r" % e)
    st = env.stop_sink("127.0.0.2")
    check(st["rcpts"] == len(want), "sink rcpts %d, want %d" % (st["rcpts"], len(want)))
    check(st["transactions"] == len(saved) == 43,
          "sink transactions %d, saved files %d, want 43" % (st["transactions"], len(saved)))
    check(st["pipelined_reads"] > 0 and st["max_cmds_per_read"] > 2,
          "pipelining not used: pipelined_reads %d, max_cmds_per_read %d" %
          (st["pipelined_reads"], st["max_cmds_per_read"]))
    check(st["messages_rejected"] == 0, "sink rejected %d" % st["messages_rejected"])


def case_lockstep(env):
    env.start_sinks({"127.0.0.2": ["--no-pipelining"]})
    env.start_dns()
    items, want = [], []
    for m in range(10):
        rc = ["l%d.r%d@example.test" % (m, r) for r in range(4)]
        items.append((SENDER, rc, message(subject="lockstep %d" % m)))
        want += rc
    env.enqueue_many(items)
    env.run()
    check_exactly_once(env.log(), env.saved("127.0.0.2"), want, "lockstep")
    st = env.stop_sink("127.0.0.2")
    check(st["transactions"] == 10, "sink transactions %d, want 10" % st["transactions"])
    check(st["pipelined_reads"] == 0 and st["max_cmds_per_read"] <= 1,
          "client pipelined to a server without PIPELINING: pipelined_reads %d, max %d" %
          (st["pipelined_reads"], st["max_cmds_per_read"]))


def case_connection_reuse(env):
    """500 transactions (--max-rcpts 1) to one host ride on few connections."""
    env.start_sinks({"127.0.0.2": []})
    env.start_dns()
    want = ["reuse%d@example.test" % i for i in range(500)]
    env.enqueue(SENDER, want, message(subject="reuse"))
    env.run("--max-rcpts", "1", "--conns-per-dest", "4")
    check_exactly_once(env.log(), env.saved("127.0.0.2"), want, "reuse")
    st = env.stop_sink("127.0.0.2")
    check(st["transactions"] == 500, "sink transactions %d, want 500" % st["transactions"])
    # 100 messages per connection by default: at least 5; a handful more when
    # the pool opens its 4 in parallel. Far fewer than 500 either way.
    check(5 <= st["connections"] <= 24, "connections %d for 500 transactions" % st["connections"])


def case_domains_shards(env):
    """Four domains on three hosts (two share one), mixed in each message, 2 shards."""
    hosts = {"127.0.0.10": [], "127.0.0.11": [], "127.0.0.12": []}
    env.start_sinks(hosts)
    env.start_dns(mx={"a.test": [(10, "mx.a.test", "127.0.0.10")],
                      "c.test": [(5, "mx.c.test", "127.0.0.10")],
                      "b.test": [(10, "mx.b.test", "127.0.0.11")],
                      "d.test": [(10, "mx.d.test", "127.0.0.12")]},
                  defaults=False)
    host_of = {"a.test": "127.0.0.10", "c.test": "127.0.0.10", "b.test": "127.0.0.11",
               "d.test": "127.0.0.12"}
    items, want = [], {h: [] for h in hosts}
    for m in range(121):
        rc = []
        for r in range(m % 6 + 1 if m < 120 else 600):   # the last: 600 over 4 domains
            dom = "abcd"[(m + r) % 4] + ".test"
            rc.append("s%d.r%d@%s" % (m, r, dom))
            want[host_of[dom]].append(rc[-1])
        items.append((SENDER, rc, message(subject="shards %d" % m)))
    env.enqueue_many(items)
    r = env.run("--shards", "2", env={"VOLLEY_LOG": "info"})
    commits = [int(c) for c in re.findall(r"evt=shard_done shard=\d+ .*?commits=(\d+)", r.stderr)]
    check(len(commits) == 2 and min(commits) > 0, "both shards should commit: %r" % commits)
    log = env.log()
    total = sum(len(v) for v in want.values())
    check(len(by_event(log, "delivered")) == total == len(log),
          "log: %d lines, %d delivered, want %d" % (len(log), len(by_event(log, "delivered")), total))
    for h, rc in want.items():
        hlog = [e for e in log if e.get("ip") == h]
        check_exactly_once(hlog, env.saved(h), rc, "host %s" % h)
        st = env.stop_sink(h)
        check(st["rcpts"] == len(rc), "sink %s rcpts %d, want %d" % (h, st["rcpts"], len(rc)))
    qs = env.queue_stats()
    check(qs["ready"] == 0 and qs["deferred"] == 0, "queue not empty: %r" % qs)


def case_dots_and_big_body(env):
    """Dot-stuffing and size: lines that are or start with '.', a last line
    without CRLF, bare-LF input, a 400 KB body: the sink gets each body back
    byte for byte (CRLF line ends, a final CRLF added where missing)."""
    env.start_sinks({"127.0.0.2": []})
    env.start_dns()
    cases = {
        "dots@example.test": (b"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nx\r\n.\r\nlast line",
                              b".\r\n..\r\n.leading\r\nx\r\n.\r\nlast line\r\n"),
        "big@example.test": (b"Subject: big\r\n\r\n" + (b"." + b"y" * 997 + b"\r\n") * 400,
                             (b"." + b"y" * 997 + b"\r\n") * 400),
        "lf@example.test": (b"Subject: lf\n\nbare LF\n.\nend\n", b"bare LF\r\n.\r\nend\r\n"),
    }
    env.enqueue_many([(SENDER, [r], c) for r, (c, _) in cases.items()])
    env.run()
    saved = env.saved("127.0.0.2")
    check_exactly_once(env.log(), saved, list(cases), "dots")
    for sv in saved:
        body = sv["content"].split(b"\r\n\r\n", 1)[1]
        want = cases[sv["rcpts"][0]][1]
        check(body == want, "%s: body %d octets %r..., want %d octets %r..." %
              (sv["rcpts"][0], len(body), body[:40], len(want), want[:40]))


def case_equal_preference_spread(env):
    """Two MX hosts of equal preference (equal.test: 127.0.0.5 and .6) share
    the transactions of one run (RFC 5321 5.1: spread equal preferences)."""
    env.start_sinks({"127.0.0.5": [], "127.0.0.6": []})
    env.start_dns()
    want = ["eq%d@equal.test" % i for i in range(200)]
    env.enqueue(SENDER, want, message(subject="equal"))
    env.run("--max-rcpts", "1")
    saved = {ip: env.saved(ip) for ip in ("127.0.0.5", "127.0.0.6")}
    a = env.stop_sink("127.0.0.5")["transactions"]
    b = env.stop_sink("127.0.0.6")["transactions"]
    check(a + b == 200, "transactions %d + %d, want 200" % (a, b))
    check(min(a, b) >= 40, "equal-preference MX unevenly used: %d vs %d" % (a, b))
    check_exactly_once(env.log(), saved["127.0.0.5"] + saved["127.0.0.6"], want, "equal")


if __name__ == "__main__":
    run_cases([("exactly_once_pipelined", case_exactly_once_pipelined),
               ("lockstep", case_lockstep),
               ("connection_reuse", case_connection_reuse),
               ("domains_shards", case_domains_shards),
               ("dots_and_big_body", case_dots_and_big_body),
               ("equal_preference_spread", case_equal_preference_spread)])
