/* addr_test.c - RFC 5321 mailbox validation, table-driven. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
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
    /* Found by tests/fuzz/addr_fuzz.c: an 8-bit octet in a quoted-pair. */
    s = "\"-\\\x8d\"@u";
    assert_int_equal(vl_addr_parse(s, strlen(s), &a, NULL), 0);
    assert_true(a.quoted);
    assert_true(a.utf8);
    assert_true(vl_domain_hash("Example.ORG", 11) == vl_domain_hash("example.org", 11));
    assert_true(vl_domain_hash("example.org", 11) != vl_domain_hash("example.net", 11));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_utf8_flag_and_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
