/* smtp_ehlo_test.c - EHLO capability lines, table-driven. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "smtp_ehlo.h"

struct ehlo_case {
    const char *label;
    const char *line;          /* text after "250-" */
    uint32_t ext;
    uint64_t size_max;
    uint32_t auth;
    uint32_t auth_count;
};

static const struct ehlo_case cases[] = {
    { "pipelining", "PIPELINING", SMTP_EXT_PIPELINING, 0, 0, 0 },
    { "lower case", "pipelining", SMTP_EXT_PIPELINING, 0, 0, 0 },
    { "mixed case", "8bitMime", SMTP_EXT_8BITMIME, 0, 0, 0 },
    { "starttls", "STARTTLS", SMTP_EXT_STARTTLS, 0, 0, 0 },
    { "enhanced", "ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES, 0, 0, 0 },
    { "smtputf8", "SMTPUTF8", SMTP_EXT_SMTPUTF8, 0, 0, 0 },
    { "chunking", "CHUNKING", SMTP_EXT_CHUNKING, 0, 0, 0 },
    { "dsn", "DSN", SMTP_EXT_DSN, 0, 0, 0 },
    { "size n", "SIZE 14680064", SMTP_EXT_SIZE, 14680064, 0, 0 },
    { "size lower", "size 1000", SMTP_EXT_SIZE, 1000, 0, 0 },
    { "bare size", "SIZE", SMTP_EXT_SIZE, 0, 0, 0 },
    { "size 0", "SIZE 0", SMTP_EXT_SIZE, 0, 0, 0 },
    { "size trailing space", "SIZE 52428800 ", SMTP_EXT_SIZE, 52428800, 0, 0 },
    { "size max digits", "SIZE 9999999999999999999", SMTP_EXT_SIZE, 9999999999999999999ull, 0, 0 },
    { "size overflow", "SIZE 99999999999999999999", 0, 0, 0, 0 },
    { "size garbage", "SIZE 10MB", 0, 0, 0, 0 },
    { "size negative", "SIZE -1", 0, 0, 0, 0 },
    { "auth list", "AUTH LOGIN PLAIN CRAM-MD5 DIGEST-MD5 GSSAPI MSN NTLM", SMTP_EXT_AUTH, 0,
      SMTP_AUTH_LOGIN | SMTP_AUTH_PLAIN | SMTP_AUTH_CRAM_MD5 | SMTP_AUTH_OTHER, 7 },
    { "auth lower", "auth plain xoauth2", SMTP_EXT_AUTH, 0, SMTP_AUTH_PLAIN | SMTP_AUTH_XOAUTH2, 2 },
    { "auth old syntax", "AUTH=LOGIN PLAIN", SMTP_EXT_AUTH, 0, SMTP_AUTH_LOGIN | SMTP_AUTH_PLAIN, 2 },
    { "auth none", "AUTH", SMTP_EXT_AUTH, 0, 0, 0 },
    { "unknown VERB", "VERB", 0, 0, 0, 0 },
    { "unknown EXPN", "EXPN", 0, 0, 0, 0 },
    { "unknown ONEX", "ONEX", 0, 0, 0, 0 },
    { "unknown XUSR", "XUSR", 0, 0, 0, 0 },
    { "unknown ETRN", "ETRN", 0, 0, 0, 0 },
    { "unknown HELP", "HELP", 0, 0, 0, 0 },
    { "unknown EHLO", "EHLO", 0, 0, 0, 0 },
    { "unknown NO-SOLICITING", "NO-SOLICITING", 0, 0, 0, 0 },
    { "prefix is not a keyword", "PIPELININGX", 0, 0, 0, 0 },
    { "keyword prefix", "PIPE", 0, 0, 0, 0 },
    { "empty", "", 0, 0, 0, 0 },
    { "spaces", "   ", 0, 0, 0, 0 },
    { "leading space", " DSN", SMTP_EXT_DSN, 0, 0, 0 },
};

static void test_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct ehlo_case *c = &cases[i];
        struct smtp_ehlo e;
        smtp_ehlo_init(&e);
        smtp_ehlo_line(&e, c->line, strlen(c->line));
        if (e.ext != c->ext || e.size_max != c->size_max || e.auth != c->auth ||
            e.auth_count != c->auth_count)
            fail_msg("%s: ext %#x size %llu auth %#x/%u", c->label, e.ext,
                     (unsigned long long)e.size_max, e.auth, e.auth_count);
    }
}

/* The length bounds the read: a keyword cut by len is not the keyword. */
static void test_len_bounds(void **state)
{
    (void)state;
    struct smtp_ehlo e;
    smtp_ehlo_init(&e);
    smtp_ehlo_line(&e, "PIPELINING", 4);
    assert_int_equal(e.ext, 0);
    smtp_ehlo_line(&e, "SIZE 1000", 7);
    assert_int_equal(e.size_max, 10);
}

/* PROTOCOL.md 3.5 and 3.7 capability lists, accumulated; init forgets all. */
static void test_vectors_and_reset(void **state)
{
    (void)state;
    static const char *const v35[] = { "EXPN", "VERB", "8BITMIME", "SIZE", "DSN", "ONEX",
                                       "ETRN", "XUSR", "HELP" };
    static const char *const v37[] = { "SIZE 14680064", "PIPELINING", "HELP" };
    struct smtp_ehlo e;
    smtp_ehlo_init(&e);
    for (size_t i = 0; i < sizeof v35 / sizeof v35[0]; i++)
        smtp_ehlo_line(&e, v35[i], strlen(v35[i]));
    assert_int_equal(e.ext, SMTP_EXT_8BITMIME | SMTP_EXT_SIZE | SMTP_EXT_DSN);
    assert_false(smtp_ehlo_has(&e, SMTP_EXT_PIPELINING));
    assert_int_equal(e.size_max, 0);
    smtp_ehlo_init(&e);
    assert_int_equal(e.ext, 0);
    for (size_t i = 0; i < sizeof v37 / sizeof v37[0]; i++)
        smtp_ehlo_line(&e, v37[i], strlen(v37[i]));
    assert_true(smtp_ehlo_has(&e, SMTP_EXT_SIZE | SMTP_EXT_PIPELINING));
    assert_int_equal(e.size_max, 14680064);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_len_bounds),
        cmocka_unit_test(test_vectors_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
