"""inject_storage.py - the intake on a full disk: the queue lives on a small
tmpfs made here (we are root; a mount that fails is a test failure) and a
filler file takes its free space. A message whose commit fails gets 452 4.3.1
at the final dot, the next MAIL gets 452 4.3.1 too (for a second), nothing
already queued is harmed (the message accepted before is delivered once), and
once the mount grows the intake accepts mail again by itself, in the same
process and session. Every wait is bounded; the mount is undone in finally."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inject_lib import Intake, QUEUED_RE, check, fail, txn  # noqa: E402

MSG = (b"Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nMessage-ID: <st@src.test>\r\n"
       b"From: s@src.test\r\nSubject: storage\r\n\r\n")
BIG = MSG + (b"z" * 76 + b"\r\n") * 3000         # ~234 KiB: needs new pages


def fill(d):
    chunk = b"\0" * 4096
    with open(os.path.join(d, "filler"), "wb", buffering=0) as f:
        for _ in range(1 << 20):
            try:
                f.write(chunk)
            except OSError:
                break
        else:
            fail("filler never hit ENOSPC")


def mount(d, opts):
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", d] if "remount" not in opts
                       else ["mount", "-o", opts, d], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "mount %s failed (%d): %s" % (opts, r.returncode, r.stderr))


def hello(c):
    c.expect(220, "greeting")
    c.send("EHLO client.test")
    c.expect(250, "EHLO")


def main():
    mnt = tempfile.mkdtemp(prefix="volley-inject-mnt-")
    mount(mnt, "size=8192k")
    it = None
    try:
        it = Intake(data=os.path.join(mnt, "q"))
        c = it.client()
        hello(c)
        code, lines = txn(c, "s@src.test", ["before@dst.test"], MSG, ehlo=None)
        check(code == 250, "before the disk is full: %s %r" % (code, lines))
        first = QUEUED_RE.search(lines[0]).group(1)
        it.wait_logged([first], "before")
        fill(mnt)
        code, lines = txn(c, "s@src.test", ["full@dst.test"], BIG, ehlo=None)
        check(code == 452 and lines[0].startswith("452 4.3.1"),
              "full disk: the dot got %s %r" % (code, lines))
        c.send("MAIL FROM:<s@src.test>")
        lines = c.expect(452, "MAIL right after a failed commit")
        check(lines[0].startswith("452 4.3.1"), "MAIL text: %r" % lines)
        mount(mnt, "remount,size=65536k")
        got = None
        end = time.monotonic() + 20
        while got is None and time.monotonic() < end:   # the pause lasts about a second
            time.sleep(0.3)
            c.send("MAIL FROM:<s@src.test>")
            code, lines = c.reply()
            if code == 452:
                continue
            check(code == 250, "MAIL after space returned: %s %r" % (code, lines))
            code, lines = txn(c, None, ["after@dst.test"], BIG, ehlo=None)
            check(code == 250, "the dot after space returned: %s %r" % (code, lines))
            got = QUEUED_RE.search(lines[0]).group(1)
        check(got, "the intake did not accept mail again after space returned")
        it.wait_logged([first, got], "after")
        saved = it.wait_saved(2, "storage")
        rcpts = sorted(r for s in saved for r in s["rcpts"])
        check(rcpts == ["after@dst.test", "before@dst.test"], "delivered: %r" % rcpts)
        check("evt=intake_commit_failed" in it.stderr(), "no evt=intake_commit_failed logged")
        print("ok: 452 4.3.1 on a full disk, service resumed by itself")
    finally:
        if it:
            it.close()
        r = subprocess.run(["umount", mnt], capture_output=True, text=True, timeout=30)
        os.rmdir(mnt)
        check(r.returncode == 0, "umount failed: %s" % r.stderr)


main()
