"""events_lib.py - a webhook receiver for the delivery-event tests (issue 16):
an HTTP server on loopback (a thread of the test, so a kill -9 of volley leaves
it running) that checks each batch's X-Volley-Signature, records every batch in
arrival order, and can fail on demand: answer 503 without storing (the
receiver is down) or store and then answer 500 (the documented duplicate:
the receiver has the events, volley does not know)."""
import hashlib
import hmac
import http.server
import json
import threading
import time


class Receiver:
    def __init__(self, secret):
        self.secret = secret
        self.lock = threading.Lock()
        self.batches = []          # dicts: events, status, stored, t
        self.bad_sig = 0
        self.fail_next = 0         # answer 503, store nothing
        self.store_then_fail = 0   # store, then answer 500
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                ts = self.headers.get("X-Volley-Timestamp", "")
                sig = self.headers.get("X-Volley-Signature", "")
                want = "sha256=" + hmac.new(recv.secret, ts.encode() + b"." + body,
                                            hashlib.sha256).hexdigest()
                with recv.lock:
                    if not hmac.compare_digest(sig, want):
                        recv.bad_sig += 1
                        code, stored = 401, False
                    elif recv.fail_next > 0:
                        recv.fail_next -= 1
                        code, stored = 503, False
                    elif recv.store_then_fail > 0:
                        recv.store_then_fail -= 1
                        code, stored = 500, True
                    else:
                        code, stored = 200, True
                    events = json.loads(body)["events"] if stored else []
                    recv.batches.append({"events": events, "status": code, "stored": stored,
                                         "t": time.monotonic(), "n": len(recv.batches)})
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/events" % self.port

    def snapshot(self):
        with self.lock:
            return list(self.batches)

    def stored_events(self):
        """[(batch index, event)] in arrival order, duplicates included."""
        return [(b["n"], e) for b in self.snapshot() for e in b["events"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def check_stream(stored, log, rcpts, allowed_dup_batches, check, what):
    """No loss, duplicates only from allowed batches, order per recipient.
    stored: [(batch, event)]; log: delivery log lines; rcpts: every recipient
    (each must end delivered)."""
    first = {}        # event_id -> (batch, event)
    dups = 0
    for b, e in stored:
        eid = e.get("event_id")
        check(eid, "%s: event without event_id: %r" % (what, e))
        if eid in first:
            fb, fe = first[eid]
            check(fe == e, "%s: event %s resent with other content" % (what, eid))
            check(fb in allowed_dup_batches,
                  "%s: event %s duplicated, first in batch %d (allowed: %s)" %
                  (what, eid, fb, sorted(allowed_dup_batches)))
            dups += 1
            continue
        first[eid] = (b, e)
    uniq = [e for _, e in sorted(first.values(), key=lambda x: (x[0], 0))]
    # arrival order of first receipts (sorted is stable within a batch)
    per = {}
    for e in uniq:
        per.setdefault(e["rcpt"], []).append(e)
    for r, evs in per.items():
        att = [e["attempt"] for e in evs]
        check(att == sorted(att) and len(set(att)) == len(att),
              "%s: %s events out of order or repeated: %r" % (what, r, att))
        check(att == list(range(1, len(att) + 1)),
              "%s: %s attempts %r: one lost" % (what, r, att))
        check(evs[-1]["event"] == "delivered" and all(e["event"] != "delivered" for e in evs[:-1]),
              "%s: %s events %r" % (what, r, [e["event"] for e in evs]))
    missing = [r for r in rcpts if r not in per]
    check(not missing, "%s: no events for %d recipients, e.g. %s" % (what, len(missing), missing[:3]))
    keys = {(e["rcpt"], e["attempt"], e["event"]) for e in uniq}
    lost = [l for l in log if (l["rcpt"], l["attempt"], l["event"]) not in keys]
    check(not lost, "%s: %d logged outcomes without an event, e.g. %r" % (what, len(lost), lost[:2]))
    return len(uniq), dups
