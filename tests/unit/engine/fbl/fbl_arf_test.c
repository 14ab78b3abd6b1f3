/* fbl_arf_test.c - ARF (RFC 5965) reports: the RFC's example shape, the
 * recipient from Original-Rcpt-To, else the original's To:, else its
 * Received: "for <...>"; quoted and unquoted parameters, folded fields; and
 * what is refused, each with its reason. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "fbl.h"
#include "volley/error.h"

/* RFC 5965 appendix B.1-style report (CRLF added below). */
static const char ARF_FULL[] =
    "From: <abusedesk@example.com>\n"
    "Date: Thu, 8 Mar 2005 17:40:36 EDT\n"
    "Subject: FW: Earn money\n"
    "To: <fbl@volley.test>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=feedback-report;\n"
    "     boundary=\"part1_13d.2e68ed54_boundary\"\n"
    "\n"
    "--part1_13d.2e68ed54_boundary\n"
    "Content-Type: text/plain; charset=\"US-ASCII\"\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n"
    "This is an email abuse report for an email message received from IP\n"
    "192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.\n"
    "\n"
    "--part1_13d.2e68ed54_boundary\n"
    "Content-Type: message/feedback-report\n"
    "\n"
    "Feedback-Type: Abuse\n"
    "User-Agent: SomeGenerator/1.0\n"
    "Version: 1\n"
    "Original-Mail-From: <somespammer@example.net>\n"
    "Original-Rcpt-To: <user@example.com>\n"
    "Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\n"
    "Source-IP: 192.0.2.1\n"
    "Reported-Domain: example.net\n"
    "\n"
    "--part1_13d.2e68ed54_boundary\n"
    "Content-Type: message/rfc822\n"
    "Content-Disposition: inline\n"
    "\n"
    "Received: from mailserver.example.net (mailserver.example.net\n"
    "        [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;\n"
    "        Thu, 08 Mar 2005 14:00:00 -0400\n"
    "From: <somespammer@example.net>\n"
    "To: <Undisclosed Recipients>\n"
    "Subject: Earn money\n"
    "MIME-Version: 1.0\n"
    "Content-type: text/plain\n"
    "Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net\n"
    "Date: Thu, 02 Sep 2004 12:31:03 -0500\n"
    "\n"
    "Spam Spam Spam\n"
    "--part1_13d.2e68ed54_boundary--\n";

/* Headers only, no Original-Rcpt-To: the recipient from the original's To:. */
static const char ARF_HEADERS_ONLY[] =
    "From: fbl@isp.example\n"
    "To: fbl@volley.test\n"
    "Content-Type: multipart/report; boundary=B1; report-type=\"feedback-report\"\n"
    "\n"
    "--B1\n"
    "Content-Type: text/plain\n"
    "\n"
    "complaint\n"
    "--B1\n"
    "Content-Type: message/feedback-report\n"
    "\n"
    "Feedback-Type: abuse\n"
    "User-Agent: ISP-FBL/2.1\n"
    "Version: 1\n"
    "\n"
    "--B1\n"
    "Content-Type: text/rfc822-headers\n"
    "\n"
    "From: news@sender.example\n"
    "To: \"A Reader\" <reader@dest.example>\n"
    "Message-ID: <abc@sender.example>\n"
    "\n"
    "--B1--\n";

/* Redacted To: (as some FBLs do): the recipient from Received: for <...>. */
static const char ARF_RECEIVED_FOR[] =
    "Content-Type: multipart/report; report-type=feedback-report; boundary=\"x\"\n"
    "\n"
    "--x\n"
    "Content-Type: message/feedback-report\n"
    "\n"
    "Feedback-Type: fraud\n"
    "Version: 1\n"
    "\n"
    "--x\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Received: from a ([192.0.2.9])\n"
    "\tby mx.dest.example with ESMTP id 1\n"
    "\tfor <victim@dest.example>; Thu, 8 Mar 2005 14:00:00 -0400\n"
    "To: redacted\n"
    "\n"
    "body\n"
    "--x--\n";

static size_t crlf(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in && o + 2 < cap; in++) {
        if (*in == '\n')
            out[o++] = '\r';
        out[o++] = *in;
    }
    out[o] = '\0';
    return o;
}

static void parse_ok(const char *lf, struct fbl_report *r)
{
    static char buf[8192];
    size_t n = crlf(lf, buf, sizeof buf);
    const char *why = NULL;
    int rc = fbl_arf_parse(buf, n, r, &why);
    if (rc != 0)
        fail_msg("refused: %s", why ? why : "?");
}

static void test_rfc_example(void **state)
{
    (void)state;
    struct fbl_report r;
    parse_ok(ARF_FULL, &r);
    assert_string_equal(r.feedback_type, "abuse");
    assert_string_equal(r.rcpt, "user@example.com");
    assert_string_equal(r.rcpt_source, "Original-Rcpt-To");
    assert_string_equal(r.user_agent, "SomeGenerator/1.0");
    assert_string_equal(r.version, "1");
    assert_string_equal(r.mail_from, "somespammer@example.net");
    assert_string_equal(r.source_ip, "192.0.2.1");
    assert_string_equal(r.reported_domain, "example.net");
    assert_string_equal(r.message_id, "8787KJKJ3K4J3K4J3K4J3.mail@example.net");
}

static void test_headers_only(void **state)
{
    (void)state;
    struct fbl_report r;
    parse_ok(ARF_HEADERS_ONLY, &r);
    assert_string_equal(r.rcpt, "reader@dest.example");
    assert_string_equal(r.rcpt_source, "original To");
    assert_string_equal(r.message_id, "<abc@sender.example>");
}

static void test_received_for(void **state)
{
    (void)state;
    struct fbl_report r;
    parse_ok(ARF_RECEIVED_FOR, &r);
    assert_string_equal(r.rcpt, "victim@dest.example");
    assert_string_equal(r.rcpt_source, "original Received");
    assert_string_equal(r.feedback_type, "fraud");
}

static void test_refused(void **state)
{
    (void)state;
    static const struct { const char *msg, *why; } cases[] = {
        { "Subject: hi\n\nplain mail\n", "not multipart/report" },
        { "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b--\n",
          "report-type is not feedback-report" },
        { "Content-Type: multipart/report; report-type=feedback-report\n\nx\n",
          "no MIME boundary" },
        { "Content-Type: multipart/report; report-type=feedback-report; boundary=b\n\n"
          "--b\nContent-Type: text/plain\n\nhello\n--b--\n",
          "no message/feedback-report part with a Feedback-Type" },
        { "Content-Type: multipart/report; report-type=feedback-report; boundary=b\n\n"
          "--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n\n--b--\n",
          "no complained-about recipient (Original-Rcpt-To, or To: of the original)" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[2048];
        size_t n = crlf(cases[i].msg, buf, sizeof buf);
        struct fbl_report r;
        const char *why = NULL;
        assert_int_equal(fbl_arf_parse(buf, n, &r, &why), VL_E_INVALID);
        assert_non_null(why);
        if (strcmp(why, cases[i].why))
            fail_msg("case %zu: why '%s', want '%s'", i, why, cases[i].why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_example),
        cmocka_unit_test(test_headers_only),
        cmocka_unit_test(test_received_for),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
