#!/usr/bin/env python3
"""bench_intake_lat.py - transactional latency of `volley run --listen` (called by
scripts/bench_intake.sh; see there). Postfix's smtp-source (a C client) sends --msgs
messages one at a time over one SMTP session ("serial_1_client"), then --msgs over
--clients concurrent sessions, each one message at a time ("concurrent_N_clients"),
to volley's listener, which delivers them to a `volley sink`; tcpdump captures both
ports into --pcap. Per message, matched by its queue id (the intake's 250 says
"queued as ID", the copy at the sink starts with volley's Received: line "id ID"),
from the captured packets' timestamps:
  mail_to_remote_250   the client's MAIL FROM -> the sink's 250 to the end of that
                       message (inject over SMTP -> remote 250)
  mail_to_dot          MAIL FROM -> the end of the message (smtp-source waits for
                       each reply: MAIL, RCPT, DATA are three round trips)
  dot_to_250           the final dot -> volley's 250 (the durable commit)
  250_to_sink_mail     volley's 250 -> volley's MAIL FROM to the sink (wake on
                       commit, lease, a pooled or new connection); it can be < 0:
                       the commit wakes the shard and the intake thread at once
  sink_transaction     that MAIL FROM -> the sink's 250 (MAIL/RCPT/DATA/body)
  250_to_delivered_log volley's 250 -> the "delivered" line's ts in the delivery
                       log (ms resolution; written after the outcome's commit)
Prints one JSON object {phase: {name: {p50, p99, max, n}, ...}} on stdout. Exits
non-zero if smtp-source fails or a message is not seen delivered in time.
"""
import argparse
import datetime
import json
import os
import re
import struct
import subprocess
import sys
import time

SOURCE = "/usr/sbin/smtp-source"
QUEUED = re.compile(rb"queued as ([0-9a-f]{16})")
RECEIVED_ID = re.compile(rb"\) with E?SMTPS?A? id ([0-9a-f]{16})")


def fail(msg):
    sys.stderr.write("bench_intake_lat: %s\n" % msg)
    sys.exit(1)


def source(port, msgs, sessions):
    r = subprocess.run([SOURCE, "-d", "-s", str(sessions), "-m", str(msgs), "-f", "s@src.test",
                        "-t", "r@dst.test", "-M", "lat.test", "127.0.0.1:%d" % port],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        fail("smtp-source: %s" % (r.stdout + r.stderr)[-500:])


def pcap_parse(path, intake_port, sink_port):
    """({id: (t_mail, t_end, t_250)} at volley, {id: (t_mail, t_end, t_250)} at the
    sink): per connection, the client's MAIL FROM packet, the packet that ends the
    message (the stream then ends with CRLF.CRLF, or a BDAT LAST), and the server's
    250 to it; the id from the 250 (volley) or the Received: line (sink)."""
    out = {intake_port: {}, sink_port: {}}
    data = open(path, "rb").read()
    if len(data) < 24:
        return out[intake_port], out[sink_port]
    magic = struct.unpack("<I", data[:4])[0]
    if magic not in (0xa1b23c4d, 0xa1b2c3d4):
        fail("%s: not a little-endian pcap file" % path)
    div = 1e9 if magic == 0xa1b23c4d else 1e6
    link = struct.unpack("<I", data[20:24])[0]
    l2 = {1: 14, 113: 16, 276: 20}.get(link)
    if l2 is None:
        fail("pcap link type %d not handled" % link)
    conns, off = {}, 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack("<IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        if len(pkt) < caplen:
            break
        ts = sec + frac / div
        ip = pkt[l2:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        tot = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:tot]
        sp, dp = struct.unpack(">HH", tcp[:4])
        pay = tcp[(tcp[12] >> 4) * 4:]
        if not pay:
            continue
        if dp in out:                                  # client -> server
            c = conns.setdefault((dp, sp), {"mail": None, "id": None, "end": None,
                                            "tail": b""})
            if pay.startswith(b"MAIL FROM:") or b"\r\nMAIL FROM:" in pay:
                c.update(mail=ts, id=None, end=None)
            m = RECEIVED_ID.search(pay)
            if m and c["mail"] is not None and c["id"] is None:
                c["id"] = m.group(1).decode()
            stream = c["tail"] + pay
            if stream.endswith(b"\r\n.\r\n") or (b"BDAT " in pay and b" LAST" in pay):
                c["end"] = ts
            c["tail"] = stream[-5:]
        elif sp in out:                                # server -> client
            c = conns.get((sp, dp))
            if c and c["end"] is not None and c["mail"] is not None:
                last = [x for x in pay.split(b"\r\n") if x][-1]   # the reply to the end
                if last.startswith(b"250"):
                    if sp == intake_port:
                        m = QUEUED.search(last)
                        c["id"] = m.group(1).decode() if m else None
                    if c["id"]:
                        out[sp][c["id"]] = (c["mail"], c["end"], ts)
                c.update(mail=None, id=None, end=None)
    return out[intake_port], out[sink_port]


def dlog_times(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            e = json.loads(line)
            if e.get("event") == "delivered":
                ts = datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
                d[e["id"]] = ts
    return d


def stats(v):
    v = sorted(v)
    if not v:
        return {"p50": -1, "p99": -1, "max": -1, "n": 0}
    pick = lambda p: v[min(len(v) - 1, int(len(v) * p))] * 1000
    return {"p50": round(pick(.50), 2), "p99": round(pick(.99), 2),
            "max": round(v[-1] * 1000, 2), "n": len(v)}


def report(ids, inj, snk, dlog):
    cols = {k: [] for k in ("mail_to_remote_250", "mail_to_dot", "dot_to_250",
                            "250_to_sink_mail", "sink_transaction", "250_to_delivered_log")}
    for i in ids:
        m, d, a = inj[i]
        sm, _, s250 = snk[i]
        cols["mail_to_remote_250"].append(s250 - m)
        cols["mail_to_dot"].append(d - m)
        cols["dot_to_250"].append(a - d)
        cols["250_to_sink_mail"].append(sm - a)
        cols["sink_transaction"].append(s250 - sm)
        if i in dlog:
            cols["250_to_delivered_log"].append(dlog[i] - a)
    out = {k: stats(v) for k, v in cols.items()}
    out["messages"] = len(ids)
    out["delivered_msg_per_s"] = round(
        len(ids) / (max(snk[i][2] for i in ids) - min(inj[i][0] for i in ids)), 1)
    return out


def phase(a, sessions, seen):
    """Run smtp-source; wait until every message it got a 250 for is at the sink."""
    source(a.port, a.msgs, sessions)
    deadline = time.time() + 120
    while True:
        inj, snk = pcap_parse(a.pcap, a.port, a.sink_port)
        new = [i for i in inj if i not in seen]
        if len(new) >= a.msgs and all(i in snk for i in new):
            break
        if time.time() > deadline:
            fail("%d messages answered 250 by volley, %d of them seen at the sink"
                 % (len(new), sum(1 for i in new if i in snk)))
        time.sleep(0.5)
    if len(new) != a.msgs:
        fail("%d queue ids seen at volley, %d messages sent" % (len(new), a.msgs))
    seen.update(new)
    return report(new, inj, snk, dlog_times(a.dlog))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--sink-port", type=int, required=True)
    ap.add_argument("--dlog", required=True)
    ap.add_argument("--msgs", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=100)
    a = ap.parse_args()
    seen = set()
    result = {"serial_1_client": phase(a, 1, seen)}
    result["concurrent_%d_clients" % a.clients] = phase(a, a.clients, seen)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
