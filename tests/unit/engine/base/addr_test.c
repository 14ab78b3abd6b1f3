/* addr_test.c - RFC 5321 mailbox validation, table-driven. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "volley/addr.h"
#include "volley/error.h"

struct addr_case { const char *label; const char *in; int ok; const char *domain; };

static const struct addr_case cases[] = {
    { "plain",          "a@example.org",            1, "example.org" },
    { "dots",           "first.last@ex-ample.co.uk", 1, "ex-ample.co.uk" },
    { "atext",          "a+tag!#$%&'*/=?^_`{|}~-@x.org", 1, "x.org" },
    { "quoted @",       "\"a@b\"@example.org",      1, "example.org" },
    { "quoted space",   "\"a b\"@example.org",      1, "example.org" },
    { "literal v4",     "a@[127.0.0.1]",             1, "[127.0.0.1]" },
    { "literal v6",     "a@[IPv6:::1]",              1, "[IPv6:::1]" },
    { "utf8 local",     "j\xc3\xb6rg@example.org",  1, "example.org" },
    { "no at",          "example.org",               0, NULL },
    { "empty local",    "@example.org",              0, NULL },
    { "empty domain",   "a@",                        0, NULL },
    { "double dot",     "a..b@example.org",          0, NULL },
    { "lead dot",       ".a@example.org",            0, NULL },
    { "trail dot",      "a.@example.org",            0, NULL },
    { "space",          "a b@example.org",           0, NULL },
    { "CR",             "a\r@example.org",           0, NULL },
    { "LF in domain",   "a@exa\nmple.org",           0, NULL },
    { "CRLF smuggle",   "a@b.org>\r\nRCPT TO:<c@d.org", 0, NULL },
    { "angle",          "<a@example.org>",           0, NULL },
    { "label dash",     "a@-example.org",            0, NULL },
    { "label dash end", "a@example-.org",            0, NULL },
    { "empty label",    "a@example..org",            0, NULL },
    { "trailing dot",   "a@example.org.",            0, NULL },
    { "utf8 domain",    "a@j\xc3\xb6rg.org",        0, NULL },
    { "underscore dom", "a@ex_ample.org",            0, NULL },
    { "unterminated q", "\"ab@example.org",          0, NULL },
    { "DEL",            "a\x7f@example.org",         0, NULL },
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct addr_case *c = &cases[i];
        struct vl_addr a;
        const char *why = NULL;
        int rc = vl_addr_parse(c->in, strlen(c->in), &a, &why);
        if (c->ok) {
            if (rc != 0)
                fail_msg("%s: rejected (%s)", c->label, why);
            assert_int_equal(a.domain_len, strlen(c->domain));
            assert_memory_equal(c->in + a.domain_off, c->domain, a.domain_len);
        } else {
            if (rc != VL_E_INVALID)
                fail_msg("%s: accepted", c->label);
            assert_non_null(why);
        }
    }
}

static void test_lengths(void **state)
{
    (void)state;
    char buf[400];
    memset(buf, 'a', 64);
    strcpy(buf + 64, "@example.org");
    assert_int_equal(vl_addr_parse(buf, strlen(buf), NULL, NULL), 0);
    memset(buf, 'a', 65);
    strcpy(buf + 65, "@example.org");
    assert_int_equal(vl_addr_parse(buf, strlen(buf), NULL, NULL), VL_E_INVALID);
    /* a 64-octet label is refused, 63 accepted */
    strcpy(buf, "a@");
    memset(buf + 2, 'b', 63);
    strcpy(buf + 65, ".org");
    assert_int_equal(vl_addr_parse(buf, strlen(buf), NULL, NULL), 0);
    memset(buf + 2, 'b', 64);
    strcpy(buf + 66, ".org");
    assert_int_equal(vl_addr_parse(buf, strlen(buf), NULL, NULL), VL_E_INVALID);
    /* whole path over 254 */
    strcpy(buf, "a@");
    for (int i = 0; i < 5; i++)
        strcat(buf, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.");
    strcat(buf, "org");
    assert_int_equal(vl_addr_parse(buf, strlen(buf), NULL, NULL), VL_E_INVALID);
}

static void test_utf8_flag_and_hash(void **state)
{
    (void)state;
    struct vl_addr a;
    const char *s = "j\xc3\xb6rg@example.org";
    assert_int_equal(vl_addr_parse(s, strlen(s), &a, NULL), 0);
    assert_true(a.utf8);
    assert_int_equal(vl_addr_parse("a@b.org", 7, &a, NULL), 0);
    assert_false(a.utf8);
    /* Found by tests/fuzz/addr_fuzz.c: an 8-bit octet in a quoted-pair was
     * accepted without the utf8 flag. quoted-pairSMTP is ASCII (RFC 6531 3.3):
     * it is refused. */
    s = "\"-\\\x8d\"@u";
    assert_true(vl_addr_parse(s, strlen(s), &a, NULL) < 0);
    assert_true(vl_domain_hash("Example.ORG", 11) == vl_domain_hash("example.org", 11));
    assert_true(vl_domain_hash("example.org", 11) != vl_domain_hash("example.net", 11));
}

/* Issue 9 item 10: addr.c accepted any octet >= 0x80 in a local part. Only
 * well-formed UTF-8 (RFC 3629) is UTF8-non-ascii (RFC 6531), and C1 controls
 * (U+0080..U+009F) are controls. Each case is tried unquoted and quoted. */
static void test_item10_addr_utf8(void **state)
{
    (void)state;
    static const struct { const char *label; const char *local; } bad[] = {
        { "lone continuation",     "a\x80" },
        { "lone 0xbf",             "\xbf" },
        { "0xff",                  "a\xff" },
        { "0xfe",                  "\xfe" "b" },
        { "overlong / (C0 AF)",    "\xc0\xaf" },
        { "overlong A (C1 81)",    "\xc1\x81" },
        { "overlong 3-byte",       "\xe0\x80\xaf" },
        { "overlong 3-byte 7FF",   "\xe0\x9f\xbf" },
        { "overlong 4-byte",       "\xf0\x80\x80\xaf" },
        { "overlong 4-byte FFFF",  "\xf0\x8f\xbf\xbf" },
        { "surrogate D800",        "\xed\xa0\x80" },
        { "surrogate DFFF",        "\xed\xbf\xbf" },
        { "surrogate pair",        "\xed\xa0\xbd\xed\xb8\x80" },
        { "U+110000",              "\xf4\x90\x80\x80" },
        { "F5 lead",               "\xf5\x80\x80\x80" },
        { "F8 5-byte",             "\xf8\x88\x80\x80\x80" },
        { "truncated 2 at end",    "ab\xc3" },
        { "truncated 2 mid",       "\xc3" "b" },
        { "truncated 3",           "\xe2\x82" },
        { "truncated 3 mid",       "\xe2\x82x" },
        { "truncated 4",           "\xf0\x9f\x98" },
        { "C1 U+0080",             "a\xc2\x80" },
        { "C1 U+0085 NEL",         "\xc2\x85" "b" },
        { "C1 U+009F",             "\xc2\x9f" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int quoted = 0; quoted < 2; quoted++) {
            char in[64];
            int n = snprintf(in, sizeof in, quoted ? "\"%s\"@example.org" : "%s@example.org",
                             bad[i].local);
            const char *why = NULL;
            if (vl_addr_parse(in, (size_t)n, NULL, &why) != VL_E_INVALID)
                fail_msg("%s (%s): accepted", bad[i].label, quoted ? "quoted" : "dot-atom");
            assert_non_null(why);
        }
    }
    /* an escaped octet in a quoted local part is ASCII only (quoted-pairSMTP) */
    const char *qp = "\"a\\\xc3\xb6\"@example.org";
    assert_int_equal(vl_addr_parse(qp, strlen(qp), NULL, NULL), VL_E_INVALID);
    static const char *const good[] = {
        "j\xc3\xb6rg",                     /* U+00F6 */
        "\xc2\xa0x",                       /* U+00A0, the first after C1 */
        "\xdf\xbf",                        /* U+07FF */
        "\xe0\xa0\x80",                    /* U+0800, the smallest 3-byte */
        "\xed\x9f\xbf",                    /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",                    /* U+E000, just above */
        "\xef\xbf\xbd",                    /* U+FFFD */
        "\xf0\x90\x80\x80",                /* U+10000 */
        "\xf0\x9f\x98\x80",                /* U+1F600 */
        "\xf4\x8f\xbf\xbf",                /* U+10FFFF, the last */
        "\xe7\x94\xa8\xe6\x88\xb7.\xd0\xb8\xd0\xbc\xd1\x8f",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        for (int quoted = 0; quoted < 2; quoted++) {
            char in[64];
            int n = snprintf(in, sizeof in, quoted ? "\"%s\"@example.org" : "%s@example.org",
                             good[i]);
            struct vl_addr a;
            const char *why = "";
            if (vl_addr_parse(in, (size_t)n, &a, &why) != 0)
                fail_msg("refused valid UTF-8 #%zu (%s): %s", i, quoted ? "quoted" : "dot-atom",
                         why);
            assert_true(a.utf8);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_utf8_flag_and_hash),
        cmocka_unit_test(test_item10_addr_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
