"""queue_quarantine.py - issue 9 item 6 end to end: one corrupt record must
not stop a shard. The queue's bytes are changed on disk (python3's lmdb
module, the engine stopped), then:

  item6_body_checksum: 5 messages x 4 recipients on one domain; one byte of
    message 3's body is flipped. `volley queue check` exits 1 naming message
    3 (body checksum); `volley run --until-empty` exits 0 having delivered the
    16 other recipients exactly once to a `volley sink`, logs
    evt=quarantined for message 3, and `queue stats --json` counts 4
    quarantined; `queue ls --quarantine --json` lists message 3 (body kept as
    found) and its 4 recipients; `queue check` is clean again; `queue purge
    --quarantine` drops them.
  item6_corrupt_record: 20 recipients of one message; one recipient record
    is overwritten with junk. `volley run` delivers the 19 others, exit 0,
    quarantined 1 (reason record_corrupt).

Run one case with DELIVER_CASE=name."""
import json
import os
import sys

import lmdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from volley_lib import (check, check_exactly_once, message, by_event,  # noqa: E402
                        run_cases)

SENDER = "sender@src.test"   # NXDOMAIN: no DSN expected
DOMAIN = "example.test"      # the default zone of scripts/dnsmasq.sh
MAP_BYTES = 64 << 20         # QUEUE_MAP_BYTES_INITIAL (LMDB keeps a larger stored size)


def shard_dirs(env):
    return sorted(os.path.join(env.data, d) for d in os.listdir(env.data)
                  if d.startswith("shard-"))


def edit(env, db, key, fn):
    """Apply fn(old bytes) -> new bytes (or None: delete) to key in sub-database
    db of whichever shard holds it; returns that shard's directory."""
    for d in shard_dirs(env):
        e = lmdb.open(d, max_dbs=8, map_size=MAP_BYTES, subdir=True)
        try:
            sub = e.open_db(db.encode(), create=False)
            with e.begin(write=True, db=sub) as txn:
                old = txn.get(key)
                if old is None:
                    continue
                new = fn(bytes(old))
                if new is None:
                    txn.delete(key)
                else:
                    txn.put(key, new)
                return d
        finally:
            e.close()
    check(False, "key %s in no shard's %s" % (key.hex(), db))


def queue_json(env, *args):
    r = env.volley("queue", "--data", env.data, *args, "--json")
    check(r.returncode == 0, "queue %s exited %d: %s" % (args, r.returncode, r.stderr))
    return json.loads(r.stdout)


def case_body_checksum(env):
    env.start_sinks({"127.0.0.2": []})
    env.start_dns()
    items = []
    for m in range(5):
        rc = ["m%d.r%d@%s" % (m, r, DOMAIN) for r in range(4)]
        items.append((SENDER, rc, message(subject="item6 %d" % m, body_lines=20)))
    ids = [env.enqueue(*it) for it in items]
    bad = ids[3]

    def flip(body):
        i = body.index(b"line 7 of the body")
        return body[:i] + bytes([body[i] ^ 0x20]) + body[i + 1:]   # "line" -> "Line"
    edit(env, "body", bytes.fromhex(bad), flip)

    r = env.volley("queue", "--data", env.data, "check")
    check(r.returncode == 1, "queue check exited %d (want 1): %s%s" %
          (r.returncode, r.stdout, r.stderr))
    check("message %s: body checksum" % bad in r.stdout,
          "queue check does not name message %s: %r" % (bad, r.stdout))

    r = env.run(env={"VOLLEY_LOG": "warn"})
    check("evt=quarantined" in r.stderr and "key=msg:%s" % bad in r.stderr and
          "reason=body_checksum" in r.stderr, "no evt=quarantined for %s: %r" % (bad, r.stderr))
    check(r.stderr.count("evt=quarantined") == 1, "logged more than once: %r" % r.stderr)
    want = [a for i, it in enumerate(items) if i != 3 for a in it[1]]
    log = env.log()
    check_exactly_once(log, env.saved("127.0.0.2"), want, "the 16 good recipients")
    check(not [e for e in log if e.get("event") != "delivered"], "other events: %r" % log)

    st = env.queue_stats()
    check(st.get("quarantined") == 4, "stats quarantined %r, want 4: %r" %
          (st.get("quarantined"), st))
    check(st["ready"] == 0 and st["deferred"] == 0 and st["delivered"] == 16,
          "stats after the run: %r" % st)
    q = queue_json(env, "ls", "--quarantine")
    msgs = [e for e in q if e["kind"] == "msg"]
    rcpts = [e for e in q if e["kind"] == "rcpt"]
    check(len(msgs) == 1 and msgs[0]["id"] == bad and msgs[0]["reason"] == "body_checksum"
          and msgs[0]["body_kept"], "quarantined message: %r" % msgs)
    check(sorted(e["rcpt"] for e in rcpts) == sorted(items[3][1]) and
          all(e["msg"] == bad and e["reason"] == "body_checksum" for e in rcpts),
          "quarantined recipients: %r" % rcpts)

    r = env.volley("queue", "--data", env.data, "check")
    check(r.returncode == 0, "queue check after the run exited %d: %s" % (r.returncode, r.stdout))
    p = queue_json(env, "purge", "--quarantine")
    check(p.get("purged_quarantined") == 4, "purge --quarantine: %r" % p)
    check(env.queue_stats()["quarantined"] == 0, "quarantine not empty after purge")
    check(queue_json(env, "ls", "--quarantine") == [], "ls --quarantine after purge")


def case_corrupt_record(env):
    env.start_sinks({"127.0.0.2": []})
    env.start_dns()
    rcpts = ["u%d@%s" % (i, DOMAIN) for i in range(20)]
    mid = env.enqueue(SENDER, rcpts, message(subject="item6 record"))
    # Recipient ids are (shard << 48) | counter: the 8th of this shard's.
    holder = None
    for d in shard_dirs(env):
        k = int(d.rsplit("-", 1)[1])
        key = ((k << 48) | 8).to_bytes(8, "big")
        e = lmdb.open(d, max_dbs=8, map_size=MAP_BYTES, subdir=True)
        try:
            with e.begin(db=e.open_db(b"rcpt", create=False)) as txn:
                if txn.get(key) is not None:
                    holder = key
        finally:
            e.close()
        if holder:
            break
    check(holder is not None, "no shard holds recipient 8")
    edit(env, "rcpt", holder, lambda old: bytes([1, 4, 1]) + b"\0" * 37)
    r = env.run(env={"VOLLEY_LOG": "warn"})
    check("reason=record_corrupt" in r.stderr, "no evt=quarantined: %r" % r.stderr)
    log = env.log()
    got = sorted(e["rcpt"] for e in by_event(log, "delivered"))
    check(len(got) == 19 and len(set(got)) == 19, "delivered %d: %r" % (len(got), got))
    check(env.queue_stats()["quarantined"] == 1, "stats: %r" % env.queue_stats())
    q = queue_json(env, "ls", "--quarantine")
    check(len(q) == 1 and q[0]["kind"] == "rcpt" and q[0]["msg"] == mid and
          q[0]["reason"] == "record_corrupt", "quarantine: %r" % q)
    r = env.volley("queue", "--data", env.data, "check")
    check(r.returncode == 0, "queue check after the run: %s" % r.stdout)


if __name__ == "__main__":
    run_cases([("item6_body_checksum", case_body_checksum),
               ("item6_corrupt_record", case_corrupt_record)])
