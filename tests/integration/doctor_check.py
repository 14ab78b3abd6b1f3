"""doctor_check.py - `volley doctor` against a private dnsmasq (scripts/dnsmasq.sh)
serving one domain with every record right and one domain per broken record:
no MX, no SPF, SPF not covering the source address, SPF over the 10-lookup limit
through an include: chain, a DKIM TXT holding another key, no DKIM TXT, no DMARC,
DMARC with strict alignment against a parent-domain key, a PTR that is not
forward-confirmed, no PTR, a confirmed PTR that is not the EHLO name, an MTA-STS
TXT with a bad id. Each broken case must fail (exit 1) on exactly the check that
is broken, name it in the detail, and print a record to publish; the good domain
must pass every check (exit 0), in the table and in --json.

Run by doctor_test.sh. Exit 0 pass, 1 fail.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import volley_lib  # noqa: E402
from sink_lib import check, fail, volley_bin  # noqa: E402

TIMEOUT_S = 60
SRC = "127.0.0.2"


def sh(cmd):
    r = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S)
    check(r.returncode == 0, "%s exited %d: %s" % (cmd[0], r.returncode, r.stderr.decode()))
    return r.stdout


def keypair(path, alg):
    if alg == "rsa":
        sh(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", path])
    else:
        sh(["openssl", "genpkey", "-algorithm", "ed25519", "-out", path])
    der = sh(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"])
    if alg == "rsa":
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    return "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()


def good_records(dom, txt_rsa, txt_ed, dkim_dom=None):
    """Every record a sending domain needs, as {key: dnsmasq line}."""
    kd = dkim_dom or dom
    return {
        "mx": "mx-host=%s,mx.%s,10" % (dom, dom),
        "mx-a": "host-record=mx.%s,127.0.0.3" % dom,
        "spf": 'txt-record=%s,"v=spf1 include:_spf.%s ~all"' % (dom, dom),
        "spf-inc": 'txt-record=_spf.%s,"v=spf1 a:mail.%s ip4:10.1.0.0/16 -all"' % (dom, dom),
        "dkim-rsa": 'txt-record=rsa._domainkey.%s,"%s"' % (kd, txt_rsa),
        "dkim-ed": 'txt-record=ed._domainkey.%s,"%s"' % (kd, txt_ed),
        "dmarc": 'txt-record=_dmarc.%s,"v=DMARC1; p=reject; rua=mailto:d@%s"' % (dom, dom),
        "mta-sts": 'txt-record=_mta-sts.%s,"v=STSv1; id=2026120601"' % dom,
        "mta-sts-a": "host-record=mta-sts.%s,127.0.0.4" % dom,
        "mail-a": "host-record=mail.%s,%s" % (dom, SRC),
    }


def main():
    for tool in ("openssl",):
        check(shutil.which(tool), "%s is not installed" % tool)
    volley_lib.need_tools()
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    tmp = tempfile.mkdtemp(prefix="volley-doctor-", dir=base)
    dns_pid = None
    try:
        krsa, ked, kother = (os.path.join(tmp, n) for n in ("rsa.pem", "ed.pem", "other.pem"))
        txt_rsa, txt_ed, txt_other = keypair(krsa, "rsa"), keypair(ked, "ed"), keypair(kother, "ed")
        cases = {}   # domain -> (records, expected failing check, words in its detail, source, ehlo)

        def case(dom, broken=None, drop=(), change=None, words="", source=SRC, ehlo=None,
                 dkim_dom=None):
            recs = good_records(dom, txt_rsa, txt_ed, dkim_dom)
            for k in drop:
                del recs[k]
            recs.update(change or {})
            cases[dom] = (recs, broken, words, source, ehlo or "mail.good.test", dkim_dom or dom)

        case("good.test")
        case("nomx.test", "mx", drop=("mx",), words="no MX record")
        case("nospf.test", "spf", drop=("spf",), words="no SPF record")
        case("spfmiss.test", "spf", change={"spf-inc": 'txt-record=_spf.spfmiss.test,'
                                                       '"v=spf1 ip4:10.1.0.0/16 -all"'},
             words="127.0.0.2: softfail")
        chain = {"spf": 'txt-record=spfloop.test,"v=spf1 include:l1.spfloop.test '
                        'include:_spf.spfloop.test -all"'}
        for i in range(1, 11):
            nxt = "include:l%d.spfloop.test" % (i + 1) if i < 10 else "a"
            chain["l%d" % i] = 'txt-record=l%d.spfloop.test,"v=spf1 %s -all"' % (i, nxt)
        case("spfloop.test", "spf", change=chain, words="over the limit of 10")
        case("dkimbad.test", "dkim", change={"dkim-ed": 'txt-record=ed._domainkey.dkimbad.test,'
                                                        '"%s"' % txt_other},
             words="p= is another public key")
        case("dkimnone.test", "dkim", drop=("dkim-rsa",), words="no DKIM key record")
        case("nodmarc.test", "dmarc", drop=("dmarc",), words="no DMARC record")
        case("news.strict.test", "dmarc", dkim_dom="strict.test",
             change={"dmarc": 'txt-record=_dmarc.news.strict.test,'
                              '"v=DMARC1; p=quarantine; adkim=s"'},
             words="not aligned with DKIM d=strict.test (strict alignment)")
        case("ptrbad.test", "fcrdns", source="127.0.0.5", words="not forward-confirmed",
             change={"spf-inc": 'txt-record=_spf.ptrbad.test,"v=spf1 ip4:127.0.0.5 -all"'})
        case("ptrnone.test", "fcrdns", source="127.0.0.7", words="no PTR record",
             change={"spf-inc": 'txt-record=_spf.ptrnone.test,"v=spf1 ip4:127.0.0.7 -all"'})
        case("ehlo.test", "fcrdns", ehlo="other.ehlo.test", words="volley says EHLO other.ehlo.test",
             change={"spf-inc": 'txt-record=_spf.ehlo.test,"v=spf1 ip4:127.0.0.6 -all"'},
             source="127.0.0.6")
        case("stsbad.test", "mta-sts", change={"mta-sts": 'txt-record=_mta-sts.stsbad.test,'
                                                          '"v=STSv1; id=bad-id!"'},
             words="id= must be")

        lines = ["local=/test/", "local=/127.in-addr.arpa/",
                 # 127.0.0.2 <-> mail.good.test (forward-confirmed); 127.0.0.5 -> a name
                 # whose address is another; 127.0.0.6 <-> mail.ehlo.test; 127.0.0.7: none.
                 "ptr-record=2.0.0.127.in-addr.arpa,mail.good.test",
                 "ptr-record=5.0.0.127.in-addr.arpa,mail.ptrbad.test",
                 "ptr-record=6.0.0.127.in-addr.arpa,mail.ehlo.test",
                 "host-record=mail.ehlo.test,127.0.0.6"]
        for dom, (recs, *_rest) in cases.items():
            for k, l in recs.items():
                if dom in ("ptrbad.test", "ehlo.test") and k == "mail-a":
                    continue   # mail.ptrbad.test -> 127.0.0.2 (not .5); mail.ehlo.test above
                lines.append(l)
        lines.append("host-record=mail.ptrbad.test,127.0.0.2")
        ddir = os.path.join(tmp, "dns")
        os.mkdir(ddir)
        r = subprocess.run(["bash", os.path.join(volley_lib.src_root(), "scripts", "dnsmasq.sh"),
                            "--dir", ddir, "--watch", str(os.getpid()), "--no-defaults"] + lines,
                           capture_output=True, text=True, timeout=TIMEOUT_S)
        check(r.returncode == 0, "dnsmasq.sh: %s" % r.stderr)
        dns_pid, port = (int(x) for x in r.stdout.split())

        for dom, (recs, broken, words, source, ehlo, kd) in cases.items():
            args = [volley_bin(), "doctor", dom, "--dns", "127.0.0.1:%d" % port, "--ehlo", ehlo,
                    "--source", source, "--dkim", "%s:rsa:%s" % (kd, krsa),
                    "--dkim", "%s:ed:%s" % (kd, ked)]
            rj = subprocess.run(args + ["--json"], capture_output=True, text=True,
                                timeout=TIMEOUT_S)
            rt = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S)
            try:
                rep = json.loads(rj.stdout)
            except ValueError:
                fail("%s: --json output is not JSON: %r %s" % (dom, rj.stdout, rj.stderr))
            failed = [c for c in rep["checks"] if c["status"] == "fail"]
            checks = set(c["check"] for c in rep["checks"])
            check(checks == {"mx", "spf", "dkim", "dmarc", "fcrdns", "mta-sts"},
                  "%s: checks run: %s" % (dom, sorted(checks)))
            if broken is None:
                check(rj.returncode == 0 and rep["ok"] and not failed,
                      "%s: want all pass, got exit %d: %s" % (dom, rj.returncode, rt.stdout))
                check(all(c["status"] == "pass" for c in rep["checks"]),
                      "%s: a check is not pass: %s" % (dom, rt.stdout))
                check(rt.returncode == 0 and "all checks passed" in rt.stdout,
                      "%s: table: %s" % (dom, rt.stdout))
                print("ok %s: all 6 checks pass" % dom)
                continue
            check(rj.returncode == 1 and not rep["ok"], "%s: want exit 1, got %d" % (dom, rj.returncode))
            names = sorted(set(c["check"] for c in failed))
            check(names == [broken], "%s: failed checks %s, want only %s:\n%s" %
                  (dom, names, broken, rt.stdout))
            check(any(words in c["detail"] for c in failed),
                  "%s: no '%s' in the %s detail: %s" % (dom, words, broken, failed))
            if broken != "dmarc" or "no DMARC" in words:
                check(all(c.get("publish") for c in failed),
                      "%s: no record to publish for %s" % (dom, broken))
            check(rt.returncode == 1 and "FAIL" in rt.stdout and "check" in rt.stdout
                  and "failed" in rt.stdout, "%s: table: %s" % (dom, rt.stdout))
            print("ok %s: %s fails: %s" % (dom, broken, failed[0]["detail"][:100]))

        # Usage errors name what is wrong (exit 2).
        for bad, words in ((["doctor"], "which DOMAIN"),
                           (["doctor", "good.test", "--source", "nope"], "not an IP address"),
                           (["doctor", "good.test", "--dkim", "good.test:s:/nonexistent.pem"],
                            "no such key file")):
            r = subprocess.run([volley_bin()] + bad, capture_output=True, text=True,
                               timeout=TIMEOUT_S)
            check(r.returncode == 2 and words in r.stderr,
                  "%s: exit %d, stderr %r" % (bad, r.returncode, r.stderr))
        print("ok usage errors")
    finally:
        if dns_pid:
            os.kill(dns_pid, signal.SIGTERM)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
