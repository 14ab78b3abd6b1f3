"""fbl_report.py - a feedback loop end to end (issue 16): `volley run --listen
--fbl-address fbl@volley.test --events-webhook ...`; an ISP's ARF report
(RFC 5965) mailed to that address over SMTP is taken (250, nothing queued),
the complained-about recipient is suppressed (`volley suppress ls`: reason
complaint) and recorded in DATA/complaints (JSON line), and
a signed webhook batch brings the "complaint" event (with its event_id and
fields from the report). Not a report: 550 5.6.0 naming why. Mail to the FBL
address together with another recipient is queued as usual."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from events_lib import Receiver  # noqa: E402
from inject_lib import Intake, check, run_cases, txn  # noqa: E402

FBL = "fbl@volley.test"
SECRET = b"fbl-secret"

ARF = ("From: <feedback@isp.example>\r\n"
       "To: <%s>\r\n"
       "Subject: complaint about mail from news@sender.example\r\n"
       "MIME-Version: 1.0\r\n"
       "Content-Type: multipart/report; report-type=feedback-report;\r\n"
       "\tboundary=\"arf_boundary_1\"\r\n"
       "\r\n"
       "--arf_boundary_1\r\n"
       "Content-Type: text/plain\r\n"
       "\r\n"
       "This is an email abuse report.\r\n"
       "--arf_boundary_1\r\n"
       "Content-Type: message/feedback-report\r\n"
       "\r\n"
       "Feedback-Type: abuse\r\n"
       "User-Agent: ISP-FBL/1.0\r\n"
       "Version: 1\r\n"
       "Original-Mail-From: <news@sender.example>\r\n"
       "Original-Rcpt-To: <Reader.One@Dest.Example>\r\n"
       "Arrival-Date: Thu, 8 Mar 2026 14:00:00 +0000\r\n"
       "Source-IP: 192.0.2.1\r\n"
       "\r\n"
       "--arf_boundary_1\r\n"
       "Content-Type: message/rfc822\r\n"
       "\r\n"
       "From: news@sender.example\r\n"
       "To: Reader.One@Dest.Example\r\n"
       "Message-ID: <campaign-7.42@sender.example>\r\n"
       "Subject: Weekly news\r\n"
       "\r\n"
       "Hello\r\n"
       "--arf_boundary_1--\r\n" % FBL).encode()


def wait_for(cond, what, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    check(False, "timed out waiting for %s" % what)


def case_report_to_event():
    recv = Receiver(SECRET)
    it = None
    try:
        it = Intake(run_args=["--fbl-address", FBL], sink=True)
        secret = os.path.join(it.tmp, "secret")
        with open(secret, "wb") as f:
            f.write(SECRET)
        it.stop()
        it.run_args += ["--events-webhook", recv.url, "--events-secret-file", secret]
        it.start()
        c = it.client()
        c.expect(220, "greeting")
        code, lines = txn(c, "feedback@isp.example", [FBL], ARF)
        check(code == 250, "ARF report: %d %r" % (code, lines))
        check("feedback report for Reader.One@Dest.Example recorded" in lines[-1],
              "reply %r" % lines)
        # Not a report: refused with the reason, nothing queued.
        code, lines = txn(c, "someone@isp.example", [FBL], b"Subject: hi\r\n\r\nhello\r\n",
                          ehlo=None)
        check(code == 550 and "5.6.0" in lines[-1] and "not multipart/report" in lines[-1],
              "plain mail to the FBL address: %d %r" % (code, lines))
        check(not it.queue_ids(), "something was queued: %r" % it.queue_ids())
        # Mixed with another recipient: queued as usual (the hook takes only FBL-only mail).
        code, lines = txn(c, "someone@isp.example", [FBL, "other@dest.example"],
                          b"Subject: hi\r\n\r\nhello\r\n", ehlo=None)
        check(code == 250 and "queued as" in lines[-1], "mixed: %d %r" % (code, lines))
        c.close()
        with open(os.path.join(it.data, "complaints")) as f:
            recs = [json.loads(l) for l in f if l.strip()]
        check(len(recs) == 1 and recs[0]["rcpt"] == "Reader.One@Dest.Example"
              and recs[0]["feedback_type"] == "abuse" and recs[0]["event"] == "complaint",
              "DATA/complaints: %r" % recs)
        import subprocess
        from sink_lib import volley_bin
        r = subprocess.run([volley_bin(), "suppress", "ls", "--data", it.data],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and any(l.lower().startswith("reader.one@dest.example,")
                                        and "complaint" in l for l in r.stdout.splitlines()),
              "suppression list: %d %r %r" % (r.returncode, r.stdout, r.stderr))
        wait_for(lambda: any(e.get("event") == "complaint" for _, e in recv.stored_events()),
                 "the complaint event at the webhook")
        ev = [e for _, e in recv.stored_events() if e.get("event") == "complaint"]
        check(len(ev) == 1, "complaint events: %r" % ev)
        e = ev[0]
        check(e.get("event_id") and e["rcpt"] == "Reader.One@Dest.Example"
              and e["domain"] == "dest.example" and e["feedback_type"] == "abuse"
              and e["reporter"] == "feedback@isp.example" and e["source_ip"] == "192.0.2.1"
              and e["original_message_id"] == "<campaign-7.42@sender.example>"
              and e["user_agent"] == "ISP-FBL/1.0" and e["rcpt_from"] == "Original-Rcpt-To",
              "complaint event %r" % e)
        check(recv.bad_sig == 0, "bad signatures: %d" % recv.bad_sig)
        check("evt=complaint rcpt=Reader.One@Dest.Example type=abuse" in it.stderr(),
              "no evt=complaint line: %s" % it.stderr()[-400:])
        check(it.stop() == 0, "volley run exit code")
    finally:
        if it:
            it.close()
        recv.close()


def case_needs_listen():
    import subprocess
    from sink_lib import volley_bin
    r = subprocess.run([volley_bin(), "run", "--data", "/nonexistent-dir-x", "--until-empty",
                        "--fbl-address", FBL], capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and "--fbl-address needs --listen" in r.stderr,
          "without --listen: %d %r" % (r.returncode, r.stderr))
    r = subprocess.run([volley_bin(), "run", "--data", "/nonexistent-dir-x", "--fbl-address",
                        "not-an-address"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and "--fbl-address 'not-an-address'" in r.stderr,
          "bad address: %d %r" % (r.returncode, r.stderr))


if __name__ == "__main__":
    run_cases([("report_to_event", case_report_to_event), ("needs_listen", case_needs_listen)])
