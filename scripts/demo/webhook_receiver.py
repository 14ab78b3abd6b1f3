"""webhook_receiver.py - the demo's event receiver (scripts/demo.sh): what a
CRM or list manager would run to take volley's delivery events. Listens on
127.0.0.1 (a free port, printed first), checks each POST's signature
(X-Volley-Signature: sha256=HEX, HEX = HMAC-SHA256(secret, TIMESTAMP "." BODY),
TIMESTAMP from X-Volley-Timestamp), answers 200 to a good one and 401 to a bad
one (volley then sends the batch again), and counts the events by type and by
event_id (a resent batch is counted once). GET /stats: {"batches",
"bad_signatures", "events": {type: n}, "duplicates"}.
    python3 webhook_receiver.py SECRET_FILE"""
import hashlib
import hmac
import http.server
import json
import sys
import threading

secret = open(sys.argv[1], "rb").read().rstrip(b"\r\n")
lock = threading.Lock()
st = {"batches": 0, "bad_signatures": 0, "events": {}, "duplicates": 0}
seen = set()


class Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ts = self.headers.get("X-Volley-Timestamp", "").encode()
        want = "sha256=" + hmac.new(secret, ts + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, self.headers.get("X-Volley-Signature", "")):
            with lock:
                st["bad_signatures"] += 1
            return self.answer(401)
        events = json.loads(body)["events"]
        with lock:
            st["batches"] += 1
            for e in events:
                if e["event_id"] in seen:
                    st["duplicates"] += 1
                    continue
                seen.add(e["event_id"])
                st["events"][e["event"]] = st["events"].get(e["event"], 0) + 1
        self.answer(200)

    def do_GET(self):
        with lock:
            self.answer(200, json.dumps(st, sort_keys=True).encode())

    def log_message(self, *a):
        pass


if __name__ == "__main__":
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    print(srv.server_port, flush=True)
    srv.serve_forever()
