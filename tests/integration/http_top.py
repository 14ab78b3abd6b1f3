"""http_top.py - `volley top` in tmux (issue 15): a private tmux server (its
own socket in a temp dir, killed at the end) runs `volley top` against a
`volley run --http` that delivered 7 recipients to a.test and 3 to b.test
(one b.test recipient refused by the sink: bounced); capture-pane must show
the rows with those counts, and the screen must follow a second injection.
In flight: two d.test recipients whose RCPT the sink answers after 4 s show
in the INFLIGHT column (2) until they are delivered (then 0)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_lib import Api  # noqa: E402
from inject_lib import check, fail, volley_bin  # noqa: E402
import volley_lib  # noqa: E402

WAIT_S = 30.0


def inject(api, rcpts):
    st, js = api.inject({"envelope_sender": "s@src.test",
                         "content": {"subject": "s", "text_body": "hi {{ email }}"},
                         "recipients": [{"email": r} for r in rcpts]})
    check(st == 200 and js["success_count"] == len(rcpts), "inject: %d %r" % (st, js))


def row(screen, dom):
    m = re.search(r"^%s\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+\s+\S.*$" %
                  re.escape(dom),
                  screen, re.M)
    return tuple(int(x) for x in m.groups()) if m else None


def main():
    tmp = tempfile.mkdtemp(prefix="volley-top-test-")
    save = os.path.join(tmp, "save")
    os.mkdir(save)
    sock = os.path.join(tmp, "tmux.sock")
    sink = volley_lib.MxSink("127.0.0.1", 0, ["--fault", "rcpt=550:match=bad",
                                                  "--delay", "rcpt=4s:match=slow"], save_dir=save)
    check(sink.start_ok, "sink did not start")
    api = Api(route_port=sink.addrs[0][1])
    tmux_started = False
    try:
        inject(api, ["u%d@a.test" % i for i in range(7)] + ["v1@b.test", "v2@b.test",
                                                            "bad@b.test"])
        tok = os.path.join(api.tmp, "token")
        hp = "127.0.0.1:%d" % api.http_port
        # --once: one frame on stdout, waited for until the outcomes are in
        end = time.monotonic() + WAIT_S
        out = ""
        while time.monotonic() < end:
            r = subprocess.run([volley_bin(), "top", "--once", "--http", hp,
                                "--http-token-file", tok], capture_output=True, timeout=30)
            check(r.returncode == 0, "top --once: %d %s" % (r.returncode, r.stderr.decode()))
            out = r.stdout.decode()
            if row(out, "a.test") == (7, 0, 0, 0, 0, 0) and row(out, "b.test") == (2, 0, 1, 0, 0, 0):
                break
            time.sleep(0.1)
        else:
            fail("top --once never showed the outcomes:\n%s" % out)
        # live, in tmux
        cmd = "%s top --interval 0.2 --http %s --http-token-file %s" % (volley_bin(), hp, tok)
        subprocess.run(["tmux", "-S", sock, "new-session", "-d", "-x", "160", "-y", "40",
                        "-s", "top", cmd], check=True, timeout=30)
        tmux_started = True

        def screen():
            r = subprocess.run(["tmux", "-S", sock, "capture-pane", "-p", "-t", "top"],
                               capture_output=True, timeout=30)
            return r.stdout.decode()

        def wait_screen(pred, what):
            end = time.monotonic() + WAIT_S
            s = ""
            while time.monotonic() < end:
                s = screen()
                if pred(s):
                    return s
                time.sleep(0.1)
            fail("%s: tmux screen:\n%s" % (what, s))

        s = wait_screen(lambda s: row(s, "a.test") == (7, 0, 0, 0, 0, 0) and
                        row(s, "b.test") == (2, 0, 1, 0, 0, 0), "first rows")
        check(re.search(r"DOMAIN\s+DELIVERED\s+DEFERRED\s+BOUNCED\s+EXPIRED\s+SUPPR\s+INFLIGHT", s),
              "header:\n%s" % s)
        check(re.search(r"totals: delivered 9 .*bounced 1 ", s), "totals:\n%s" % s)
        check(row(s, "other") == (0, 0, 0, 0, 0, 0), "other row:\n%s" % s)
        check(re.search(r"^b\.test\s.*\s+bounced 550 5\.\d\.\d ", s, re.M) and
              re.search(r"^a\.test\s.*\s-$", s, re.M), "last errors:\n%s" % s)
        check(s.index("a.test") < s.index("b.test") < s.index("other"), "order:\n%s" % s)
        inject(api, ["w1@c.test", "w2@c.test"])
        s = wait_screen(lambda s: row(s, "c.test") == (2, 0, 0, 0, 0, 0) and
                        re.search(r"injected 12\b", s), "after a second injection")
        # in flight: the sink holds each d.test RCPT for 4 s
        inject(api, ["slow1@d.test", "slow2@d.test"])
        wait_screen(lambda s: row(s, "d.test") == (0, 0, 0, 0, 0, 2), "d.test in flight")
        wait_screen(lambda s: row(s, "d.test") == (2, 0, 0, 0, 0, 0), "d.test delivered")
    finally:
        if tmux_started:
            subprocess.run(["tmux", "-S", sock, "kill-server"], timeout=30)
        api.close()
        if sink.proc.poll() is None:
            sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok top")


if __name__ == "__main__":
    main()
