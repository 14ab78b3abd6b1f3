#!/usr/bin/env python3
"""bench_intake_lat.py - transactional latency of `volley run --listen` (called by
scripts/bench_intake.sh; see there). Sends --msgs messages one at a time over one
SMTP session ("serial"), then --msgs over --clients concurrent sessions
("concurrent", each session one message at a time), to volley's listener, which
delivers them to a `volley sink`; tcpdump captures the sink's port into --pcap.
tcpdump captures both ports (volley's listener and the sink). Per message (matched
by its Subject), from the captured packets' timestamps:
  mail_to_remote_250   the client's MAIL FROM packet -> the sink's 250 to the end
                       of that message (inject over SMTP -> remote 250)
  mail_to_dot          MAIL FROM -> the final dot (PIPELINING: one round trip for
                       MAIL/RCPT/DATA, then the body and the dot)
  dot_to_250           the final dot -> volley's 250 (the durable commit)
  250_to_sink_mail     volley's 250 -> volley's MAIL FROM to the sink (wake on
                       commit, lease, a pooled or new connection); it can be < 0:
                       the commit wakes the shard and the intake thread at once
  sink_transaction     that MAIL FROM -> the sink's final 250 (MAIL/RCPT/DATA/body)
  250_to_delivered_log volley's 250 -> the "delivered" line's ts in the delivery
                       log (ms resolution; written after the outcome's commit)
  client_dot_to_250    as dot_to_250, seen by this Python client (time.time()).
Prints one JSON object {phase: {name: {p50, p99, max, n}, ...}} on stdout. Exits
non-zero if a message is refused or not seen delivered within the time allowed.
"""
import argparse
import datetime
import json
import os
import socket
import sys
import threading
import time


def fail(msg):
    sys.stderr.write("bench_intake_lat: %s\n" % msg)
    sys.exit(1)


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")
        self.reply()
        self.s.sendall(b"EHLO lat.test\r\n")
        self.reply()

    def reply(self):
        while True:
            line = self.f.readline()
            if not line:
                fail("connection closed by volley")
            if line[3:4] != b"-":
                return line.decode(errors="replace").rstrip()

    def send(self, key, rcpt):
        body = (b"From: s@src.test\r\nTo: " + rcpt + b"\r\nSubject: " + key
                + b"\r\n\r\n" + b"x" * 70 + b"\r\n") * 1
        t0 = time.time()
        self.s.sendall(b"MAIL FROM:<s@src.test>\r\nRCPT TO:<" + rcpt + b">\r\nDATA\r\n")
        for _ in range(3):
            r = self.reply()
            if r[:1] not in ("2", "3"):
                fail("%s: %s" % (key.decode(), r))
        t1 = time.time()
        self.s.sendall(body + b".\r\n")
        r = self.reply()
        t2 = time.time()
        if not r.startswith("250"):
            fail("%s: final dot: %s" % (key.decode(), r))
        return t0, t1, t2, r.split()[-1]

    def close(self):
        self.s.sendall(b"QUIT\r\n")
        self.reply()
        self.s.close()


def serial(port, n, rec):
    c = Client(port)
    for i in range(n):
        key = b"lat-serial-%d" % i
        rec[key.decode()] = c.send(key, b"l%d@dst.test" % i)
    c.close()


def concurrent(port, n, clients, rec):
    per = [n // clients + (1 if k < n % clients else 0) for k in range(clients)]
    errs = []

    def one(k):
        try:
            c = Client(port)
            for i in range(per[k]):
                key = b"lat-conc-%d-%d" % (k, i)
                rec[key.decode()] = c.send(key, b"c%d-%d@dst.test" % (k, i))
            c.close()
        except SystemExit as e:
            errs.append(str(e))
        except OSError as e:
            errs.append(repr(e))

    th = [threading.Thread(target=one, args=(k,)) for k in range(clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    if errs:
        fail("a concurrent client failed: %s" % errs[0])


def pcap_times(path, ports, want, deadline):
    """{port: {subject: (t_mail, t_end, t_250)}} from tcpdump's capture: per
    connection to each server port, the client's MAIL FROM packet, the packet
    ending the message (final dot, or BDAT LAST), and the server's 250 to it.
    Waits until ports[-1] (the sink) has `want` messages."""
    while True:
        out = pcap_parse(path, ports)
        if len(out[ports[-1]]) >= want or time.time() > deadline:
            return out
        time.sleep(0.5)


def pcap_parse(path, ports):
    import struct
    out = {p: {} for p in ports}
    data = open(path, "rb").read()
    if len(data) < 24:
        return out
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
            c = conns.setdefault((dp, sp), {"mail": None, "key": None, "end": None})
            if b"MAIL FROM:" in pay:
                c.update(mail=ts, key=None, end=None)
            j = pay.find(b"Subject: ")
            if j >= 0 and c["mail"] is not None:
                c["key"] = pay[j + 9:pay.find(b"\r\n", j)].decode(errors="replace")
            if pay.endswith(b"\r\n.\r\n") or (b"BDAT " in pay and b" LAST" in pay):
                c["end"] = ts
        elif sp in out:                                # server -> client
            c = conns.get((sp, dp))
            if c and c["end"] is not None and c["key"]:
                last = [x for x in pay.split(b"\r\n") if x][-1]   # the reply to the end
                if last.startswith(b"250"):
                    out[sp][c["key"]] = (c["mail"], c["end"], ts)
                c.update(mail=None, key=None, end=None)
    return out


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


def report(rec, wire, port, sink_port, dlog):
    cols = {k: [] for k in ("mail_to_remote_250", "mail_to_dot", "dot_to_250",
                            "250_to_sink_mail", "sink_transaction", "250_to_delivered_log",
                            "client_dot_to_250")}
    inj, snk = wire[port], wire[sink_port]
    missing = [k for k in rec if k not in inj or k not in snk]
    if missing:
        fail("%d messages not seen on the wire, at volley or at the sink (first: %s)"
             % (len(missing), missing[0]))
    for key, (t0, t1, t2, qid) in rec.items():
        m, d, a = inj[key]
        sm, _, s250 = snk[key]
        cols["mail_to_remote_250"].append(s250 - m)
        cols["mail_to_dot"].append(d - m)
        cols["dot_to_250"].append(a - d)
        cols["250_to_sink_mail"].append(sm - a)
        cols["sink_transaction"].append(s250 - sm)
        cols["client_dot_to_250"].append(t2 - t1)
        if qid in dlog:
            cols["250_to_delivered_log"].append(dlog[qid] - a)
    out = {k: stats(v) for k, v in cols.items()}
    t_first = min(inj[k][0] for k in rec)
    t_last = max(snk[k][2] for k in rec)
    out["messages"] = len(rec)
    out["delivered_msg_per_s"] = round(len(rec) / (t_last - t_first), 1)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--sink-port", type=int, required=True)
    ap.add_argument("--dlog", required=True)
    ap.add_argument("--msgs", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=100)
    a = ap.parse_args()
    result = {}
    ser, conc = {}, {}
    serial(a.port, a.msgs, ser)
    ports = [a.port, a.sink_port]
    wire = pcap_times(a.pcap, ports, a.msgs, time.time() + 120)
    result["serial_1_client"] = report(ser, wire, a.port, a.sink_port, dlog_times(a.dlog))
    concurrent(a.port, a.msgs, a.clients, conc)
    wire = pcap_times(a.pcap, ports, 2 * a.msgs, time.time() + 120)
    result["concurrent_%d_clients" % a.clients] = report(conc, wire, a.port, a.sink_port,
                                                         dlog_times(a.dlog))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
