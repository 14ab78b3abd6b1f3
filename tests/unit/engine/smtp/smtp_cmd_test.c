/* smtp_cmd_test.c - command formatting: table-driven, injection refused, 512 cap. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "volley/error.h"
#include "volley/limits.h"
#include "smtp_cmd.h"

static void check_line(const char *label, const char *buf, int n, const char *want)
{
    if (want == NULL) {
        if (n >= 0)
            fail_msg("%s: accepted as %.*s", label, n, buf);
        return;
    }
    if (n < 0)
        fail_msg("%s: refused (%d)", label, n);
    if ((size_t)n != strlen(want) || memcmp(buf, want, (size_t)n) != 0)
        fail_msg("%s: got [%.*s] want [%s]", label, n, buf, want);
    assert_true(n <= (int)VL_SMTP_CMD_LINE_BYTES_MAX);
    /* exactly one CR and one LF, at the end */
    assert_ptr_equal(memchr(buf, '\r', (size_t)n), buf + n - 2);
    assert_ptr_equal(memchr(buf, '\n', (size_t)n), buf + n - 1);
    assert_null(memchr(buf, '\0', (size_t)n));
}

struct mail_case { const char *label; struct smtp_cmd_mail m; const char *want; int err; };

#define P(s) .path = (s), .path_len = sizeof(s) - 1

static const struct mail_case mail_cases[] = {
    { "plain", { P("a@example.org") }, "MAIL FROM:<a@example.org>\r\n", 0 },
    { "null path", { .path = "", .path_len = 0 }, "MAIL FROM:<>\r\n", 0 },
    { "size", { P("a@b.org"), .size_set = true, .size = 14680065 },
      "MAIL FROM:<a@b.org> SIZE=14680065\r\n", 0 },
    { "size 0", { P("a@b.org"), .size_set = true, .size = 0 }, "MAIL FROM:<a@b.org> SIZE=0\r\n", 0 },
    { "all", { P("a@b.org"), .size_set = true, .size = 42, .body_8bitmime = true,
               .smtputf8 = true, .ret = SMTP_RET_HDRS, .envid = "QQ314159", .envid_len = 8 },
      "MAIL FROM:<a@b.org> SIZE=42 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ314159\r\n", 0 },
    { "ret full", { P("a@b.org"), .ret = SMTP_RET_FULL }, "MAIL FROM:<a@b.org> RET=FULL\r\n", 0 },
    { "envid xtext", { P("a@b.org"), .envid = "a+b=c d", .envid_len = 7 },
      "MAIL FROM:<a@b.org> ENVID=a+2Bb+3Dc+20d\r\n", 0 },
    { "utf8 local", { P("j\xc3\xb6rg@b.org"), .smtputf8 = true },
      "MAIL FROM:<j\xc3\xb6rg@b.org> SMTPUTF8\r\n", 0 },
    { "CRLF in path", { P("a@b.org>\r\nRCPT TO:<c@d.org") }, NULL, VL_E_INVALID },
    { "LF in path", { P("a\n@b.org") }, NULL, VL_E_INVALID },
    { "NUL in path", { .path = "a\0@b.org", .path_len = 8 }, NULL, VL_E_INVALID },
    { "brackets", { P("<a@b.org>") }, NULL, VL_E_INVALID },
    { "no domain", { P("postmaster") }, NULL, VL_E_INVALID },
    { "CR in envid", { P("a@b.org"), .envid = "x\ry", .envid_len = 3 }, NULL, VL_E_INVALID },
    { "LF in envid", { P("a@b.org"), .envid = "x\ny", .envid_len = 3 }, NULL, VL_E_INVALID },
    { "NUL in envid", { P("a@b.org"), .envid = "x\0y", .envid_len = 3 }, NULL, VL_E_INVALID },
    { "empty envid", { P("a@b.org"), .envid = "", .envid_len = 0 }, NULL, VL_E_INVALID },
    { "bad ret", { P("a@b.org"), .ret = (enum smtp_cmd_ret)7 }, NULL, VL_E_INVALID },
};

static void test_mail(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mail_cases / sizeof mail_cases[0]; i++) {
        const struct mail_case *c = &mail_cases[i];
        char buf[1024];
        int n = smtp_cmd_mail(buf, sizeof buf, &c->m);
        check_line(c->label, buf, n, c->want);
        if (c->want == NULL && n != c->err)
            fail_msg("%s: error %d want %d", c->label, n, c->err);
    }
}

struct rcpt_case { const char *label; struct smtp_cmd_rcpt r; const char *want; };

static const struct rcpt_case rcpt_cases[] = {
    { "plain", { P("user1@company.tld") }, "RCPT TO:<user1@company.tld>\r\n" },
    { "quoted", { P("\"a b\"@x.org") }, "RCPT TO:<\"a b\"@x.org>\r\n" },
    { "literal", { P("a@[127.0.0.1]") }, "RCPT TO:<a@[127.0.0.1]>\r\n" },
    { "notify one", { P("a@b.org"), .notify = SMTP_NOTIFY_FAILURE },
      "RCPT TO:<a@b.org> NOTIFY=FAILURE\r\n" },
    { "notify all", { P("a@b.org"),
                      .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY },
      "RCPT TO:<a@b.org> NOTIFY=SUCCESS,FAILURE,DELAY\r\n" },
    { "notify never", { P("a@b.org"), .notify = SMTP_NOTIFY_NEVER },
      "RCPT TO:<a@b.org> NOTIFY=NEVER\r\n" },
    { "orcpt", { P("a@b.org"), .orcpt = "Orig+1=x@b.org", .orcpt_len = 14 },
      "RCPT TO:<a@b.org> ORCPT=rfc822;Orig+2B1+3Dx@b.org\r\n" },
    { "orcpt utf8", { P("a@b.org"), .orcpt = "\xc3\xa9@b.org", .orcpt_len = 8 },
      "RCPT TO:<a@b.org> ORCPT=rfc822;+C3+A9@b.org\r\n" },
    { "notify+orcpt", { P("a@b.org"), .notify = SMTP_NOTIFY_DELAY, .orcpt = "a@b.org",
                        .orcpt_len = 7 },
      "RCPT TO:<a@b.org> NOTIFY=DELAY ORCPT=rfc822;a@b.org\r\n" },
    { "never with others", { P("a@b.org"), .notify = SMTP_NOTIFY_NEVER | SMTP_NOTIFY_DELAY }, NULL },
    { "unknown notify bit", { P("a@b.org"), .notify = 1u << 7 }, NULL },
    { "null path", { .path = "", .path_len = 0 }, NULL },
    { "CRLF smuggle", { P("a@b.org>\r\nDATA") }, NULL },
    { "CR in orcpt", { P("a@b.org"), .orcpt = "a\r@b.org", .orcpt_len = 8 }, NULL },
    { "LF in orcpt", { P("a@b.org"), .orcpt = "a\n@b.org", .orcpt_len = 8 }, NULL },
    { "NUL in orcpt", { P("a@b.org"), .orcpt = "a\0@b.org", .orcpt_len = 8 }, NULL },
    { "DEL in orcpt", { P("a@b.org"), .orcpt = "a\x7f@b.org", .orcpt_len = 8 }, NULL },
    { "space in path", { P("a b@c.org") }, NULL },
};

static void test_rcpt(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rcpt_cases / sizeof rcpt_cases[0]; i++) {
        const struct rcpt_case *c = &rcpt_cases[i];
        char buf[1024];
        int n = smtp_cmd_rcpt(buf, sizeof buf, &c->r);
        check_line(c->label, buf, n, c->want);
        if (c->want == NULL && n != VL_E_INVALID)
            fail_msg("%s: error %d", c->label, n);
    }
}

static void test_hello_and_simple(void **state)
{
    (void)state;
    char buf[600];
    check_line("ehlo", buf, smtp_cmd_ehlo(buf, sizeof buf, "bob.example.org", 15),
               "EHLO bob.example.org\r\n");
    check_line("helo", buf, smtp_cmd_helo(buf, sizeof buf, "localhost", 9), "HELO localhost\r\n");
    check_line("ehlo literal", buf, smtp_cmd_ehlo(buf, sizeof buf, "[192.0.2.1]", 11),
               "EHLO [192.0.2.1]\r\n");
    check_line("ehlo CRLF", buf, smtp_cmd_ehlo(buf, sizeof buf, "a\r\nQUIT", 7), NULL);
    check_line("ehlo space", buf, smtp_cmd_ehlo(buf, sizeof buf, "a b", 3), NULL);
    check_line("ehlo empty", buf, smtp_cmd_ehlo(buf, sizeof buf, "", 0), NULL);
    check_line("ehlo NULL", buf, smtp_cmd_ehlo(buf, sizeof buf, NULL, 0), NULL);
    static const struct { enum smtp_cmd_verb v; const char *want; } simple[] = {
        { SMTP_CMD_DATA, "DATA\r\n" }, { SMTP_CMD_RSET, "RSET\r\n" }, { SMTP_CMD_QUIT, "QUIT\r\n" },
        { SMTP_CMD_NOOP, "NOOP\r\n" }, { SMTP_CMD_STARTTLS, "STARTTLS\r\n" },
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        check_line(simple[i].want, buf, smtp_cmd_simple(buf, sizeof buf, simple[i].v), simple[i].want);
    assert_int_equal(smtp_cmd_simple(buf, sizeof buf, (enum smtp_cmd_verb)99), VL_E_INVALID);
}

/* The 512-octet cap and the caller's capacity both hold, exactly at the edge. */
static void test_caps(void **state)
{
    (void)state;
    char buf[1024], id[600];
    /* "MAIL FROM:<a@b.org> ENVID=" is 26 octets; + CRLF = 28; 484 envid octets fill 512 */
    memset(id, 'x', sizeof id);
    struct smtp_cmd_mail m = { P("a@b.org"), .envid = id, .envid_len = 484 };
    int n = smtp_cmd_mail(buf, sizeof buf, &m);
    assert_int_equal(n, 512);
    m.envid_len = 485;
    assert_int_equal(smtp_cmd_mail(buf, sizeof buf, &m), VL_E_TOOBIG);
    /* xtext expansion counts: 162 '+' become 486 octets */
    memset(id, '+', 162);
    m.envid_len = 162;
    assert_int_equal(smtp_cmd_mail(buf, sizeof buf, &m), VL_E_TOOBIG);
    m.envid_len = 161;
    assert_int_equal(smtp_cmd_mail(buf, sizeof buf, &m), 26 + 483 + 2);
    /* a small caller buffer: exact fit, then one short */
    assert_int_equal(smtp_cmd_simple(buf, 6, SMTP_CMD_QUIT), 6);
    assert_int_equal(smtp_cmd_simple(buf, 5, SMTP_CMD_QUIT), VL_E_TOOBIG);
    struct smtp_cmd_rcpt r = { P("a@b.org") };
    assert_int_equal(smtp_cmd_rcpt(buf, 18, &r), VL_E_TOOBIG);
    assert_int_equal(smtp_cmd_rcpt(buf, 19, &r), 19);   /* "RCPT TO:<a@b.org>" CRLF */
}

static void test_xtext(void **state)
{
    (void)state;
    static const struct { const char *in; size_t len; const char *want; } t[] = {
        { "abc", 3, "abc" }, { "+", 1, "+2B" }, { "=", 1, "+3D" }, { " ", 1, "+20" },
        { "~!", 2, "~!" }, { "\xff", 1, "+FF" }, { "", 0, "" },
        { "\r", 1, NULL }, { "\n", 1, NULL }, { "\0", 1, NULL }, { "\t", 1, NULL },
        { "\x7f", 1, NULL },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[16];
        int n = smtp_xtext_encode(out, sizeof out, t[i].in, t[i].len);
        if (t[i].want == NULL) {
            assert_int_equal(n, VL_E_INVALID);
            continue;
        }
        assert_int_equal(n, strlen(t[i].want));
        assert_memory_equal(out, t[i].want, (size_t)n);
    }
    char small[2];
    assert_int_equal(smtp_xtext_encode(small, sizeof small, "+", 1), VL_E_TOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mail),
        cmocka_unit_test(test_rcpt),
        cmocka_unit_test(test_hello_and_simple),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_xtext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
