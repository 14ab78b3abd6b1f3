"""http_lib.py - helpers for the HTTP API tests (tests/integration/http_*): a
`volley run --http 127.0.0.1:0 --http-token-file F` (port read back from its
'HTTP API on http://IP:PORT' line) delivering to a `volley sink --save`
through --route (inject_lib.Intake does the sink, the queue and the process),
and http.client requests with the bearer token.

Invariants: every wait is bounded; processes are started here and stopped by
PID (Api.close() in the tests' finally blocks).

API: Api(run_args=(), sink=True, token=TOKEN, route_port=None: a sink; 1 = refused,
mail stays queued) -> .req(method, path, body=None,
token=True, conn=None) -> (status, headers dict, body bytes); .inject(obj) ->
(status, parsed JSON); .stats() (GET /api/v1/queue); plus Intake's .saved(),
.wait_saved(n), .log(), .data, .kill9(), .close(). Module: parse_saved(entry)
-> email.message.EmailMessage.
"""
import email
import email.policy
import http.client
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inject_lib  # noqa: E402
from sink_lib import check, fail, volley_bin  # noqa: E402,F401

TOKEN = "test-token-0123456789abcdef"
HTTP_TIMEOUT_S = 30.0


class Api(inject_lib.Intake):
    def __init__(self, run_args=(), sink=True, token=TOKEN, route_port=None, smtp=False):
        self.token = token
        self.http_port = None
        self._run_args_extra = list(run_args)
        super().__init__(run_args=(), listen=("127.0.0.1",) if smtp else (),
                         sink=sink and not route_port, route_port=route_port)

    def start(self):
        tok = os.path.join(self.tmp, "token")
        with open(tok, "w") as f:
            f.write(self.token + "\n")
        self.run_args = ["--http", "127.0.0.1:0", "--http-token-file", tok] + \
            self._run_args_extra
        super().start()                       # no --listen: returns at once
        end = time.monotonic() + inject_lib.WAIT_S
        while time.monotonic() < end:
            m = re.search(r"HTTP API on http://127\.0\.0\.1:(\d+)", self.stderr())
            if m:
                self.http_port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                fail("volley run --http exited at start (%d): %s" % (self.proc.returncode,
                                                                    self.stderr()))
            time.sleep(0.02)
        fail("volley run did not report its HTTP API: %s" % self.stderr())

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=HTTP_TIMEOUT_S)

    def req(self, method, path, body=None, token=True, conn=None, headers=None):
        c = conn if conn else self.conn()
        h = {"Content-Type": "application/json"}
        if token is True:
            h["Authorization"] = "Bearer " + self.token
        elif token:
            h["Authorization"] = token
        if headers:
            h.update(headers)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if not conn:
            c.close()
        return r.status, hdrs, data

    def inject(self, obj, conn=None):
        st, _, data = self.req("POST", "/api/inject/v1", obj, conn=conn)
        try:
            js = json.loads(data.decode())
        except ValueError:
            fail("inject answered %d with non-JSON: %r" % (st, data[:300]))
        return st, js

    def stats(self):
        st, _, data = self.req("GET", "/api/v1/queue")
        check(st == 200, "GET /api/v1/queue: %d %r" % (st, data[:200]))
        return json.loads(data.decode())


def parse_saved(entry):
    return email.message_from_bytes(entry["content"], policy=email.policy.default)


def by_rcpt(saved):
    """{rcpt: parsed message} for messages of one recipient each."""
    out = {}
    for s in saved:
        check(len(s["rcpts"]) == 1, "expected one recipient per message: %r" % s["rcpts"])
        out[s["rcpts"][0]] = parse_saved(s)
    return out
