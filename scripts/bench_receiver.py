"""bench_receiver.py - the webhook receiver of the events benchmarks
(scripts/bench_events.py, scripts/bench_intake.sh): a loopback HTTP server
standing in for a remote system. Prints its port, then answers every POST 200
and counts the events of the batch ("event_id" occurrences; nothing checked,
so that its CPU per event stays small) and the CLOCK_MONOTONIC times of the
first and last batch; GET /stats returns {"events","first","last"}, GET /reset
returns them and starts again from zero."""
import http.server
import json
import threading
import time

st = {"events": 0, "first": None, "last": None}
lock = threading.Lock()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, body=b""):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        n, now = body.count(b'"event_id"'), time.monotonic()
        with lock:
            st["events"] += n
            st["first"] = st["first"] or now
            st["last"] = now
        self.reply()

    def do_GET(self):
        with lock:
            body = json.dumps(st).encode()
            if self.path == "/reset":
                st.update(events=0, first=None, last=None)
        self.reply(body)

    def log_message(self, *a):
        pass


if __name__ == "__main__":
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    print(srv.server_port, flush=True)
    srv.serve_forever()
