"""inject_source.py - Postfix's smtp-source as the client of `volley run
--listen`: 2000 messages over 20 parallel sessions (and 200 with 10 KiB
bodies), every one delivered to the `volley sink` exactly once. Prints the
intake rate (messages accepted per second, delivery included in the wait)."""
import os
import shutil
import subprocess
import sys
import re
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inject_lib import Intake, check, fail  # noqa: E402


def smtp_source():
    for p in (shutil.which("smtp-source"), "/usr/sbin/smtp-source"):
        if p and os.access(p, os.X_OK):
            return p
    fail("smtp-source not installed (scripts/setup.sh installs postfix for it)")


def run(it, n, sessions, extra=()):
    cmd = [smtp_source(), "-m", str(n), "-s", str(sessions), "-f", "s@src.test",
           "-t", "r@dst.test", "-M", "source.test"] + list(extra) + ["127.0.0.1:%d" % it.port()]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, timeout=120)
    took = time.monotonic() - t0
    check(r.returncode == 0, "smtp-source %r exited %d: %s" % (extra, r.returncode,
                                                               r.stderr.decode(errors="replace")))
    return took


def main():
    it = Intake()
    try:
        took = run(it, 2000, 20)
        saved = it.wait_saved(2000, "smtp-source 2000")
        print("smtp-source: 2000 messages, 20 sessions: %.2fs (%.0f msg/s accepted)"
              % (took, 2000 / took))
        took = run(it, 200, 4, ["-l", "10240"])
        saved = it.wait_saved(2200, "smtp-source 10 KiB")
        print("smtp-source: 200 messages of 10 KiB, 4 sessions: %.2fs" % took)
        time.sleep(0.3)
        saved = it.saved()
        check(len(saved) == 2200, "%d messages reached the sink, expected 2200" % len(saved))
        big = [s for s in saved if len(s["content"]) > 10240]
        check(len(big) == 200, "%d large messages, expected 200" % len(big))
        for s in saved:
            check(s["content"].startswith(b"Received: from source.test (unknown [127.0.0.1])"),
                  "no Received: line: %r" % s["content"][:100])
        delivered = [e for e in it.log() if e.get("event") == "delivered"]
        check(len(set(e["id"] for e in delivered)) >= 2000, "fewer queue ids than messages")
        # the Received: ids are the queue ids (PROTOCOL.md 4.3), one per message
        rids = set()
        for s in saved:
            m = re.search(rb"with E?SMTP id ([0-9a-f]{16})", s["content"][:400])
            check(m, "no id in Received: %r" % s["content"][:200])
            rids.add(m.group(1).decode())
        check(rids == set(e["id"] for e in delivered),
              "Received: ids differ from the queue ids delivered (%d vs %d)"
              % (len(rids), len(set(e["id"] for e in delivered))))
        print("ok: 2200 messages from smtp-source delivered once each")
    finally:
        it.close()


main()
