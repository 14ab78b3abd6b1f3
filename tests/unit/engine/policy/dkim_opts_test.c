/* dkim_opts_test.c - the --dkim* options: accepted forms and the errors named. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "volley/config.h"

static void test_dkim_key_option(void **state)
{
    (void)state;
    struct vl_dkim_opts o = { 0 };
    assert_int_equal(vl_dkim_opt_parse(&o, "run", "--dkim", "Example.COM:s2026:/k/rsa.pem", stderr), 1);
    assert_int_equal(o.key_count, 1);
    assert_string_equal(o.keys[0].domain, "example.com");
    assert_string_equal(o.keys[0].selector, "s2026");
    assert_string_equal(o.keys[0].key_path, "/k/rsa.pem");
    assert_int_equal(vl_dkim_opt_parse(&o, "run", "--dkim", "example.com:ed.2026:k:with:colons", stderr),
                     1);
    assert_string_equal(o.keys[1].key_path, "k:with:colons");
    static const char *const bad[] = {
        "example.com", "example.com:sel", "example.com:sel:", ":sel:k", "example.com::k",
        "exa mple.com:sel:k", "example.com:s el:k", "example.com:.s:k", "example.com:s2026:x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (vl_dkim_opt_parse(&o, "run", "--dkim", bad[i], stderr) != -1)
            fail_msg("--dkim '%s' accepted", bad[i]);
    assert_int_equal(o.key_count, 2);
    assert_int_equal(vl_dkim_opt_parse(&o, "run", "--route", "x", stderr), 0);   /* not ours */
}

static void test_dkim_other_options(void **state)
{
    (void)state;
    struct vl_dkim_opts o = { 0 };
    assert_int_equal(vl_dkim_opt_parse(&o, "send", "--dkim-canon", "simple/relaxed", stderr), 1);
    assert_true(o.canon_hdr_simple);
    assert_false(o.canon_body_simple);
    assert_int_equal(vl_dkim_opt_parse(&o, "send", "--dkim-canon", "relaxed", stderr), 1);
    assert_false(o.canon_hdr_simple);
    assert_true(o.canon_body_simple);                 /* RFC 6376 3.5: body defaults simple */
    assert_int_equal(vl_dkim_opt_parse(&o, "send", "--dkim-canon", "loose/simple", stderr), -1);
    assert_int_equal(vl_dkim_opt_parse(&o, "send", "--dkim-expire", "7d", stderr), 0);  /* config.c */
    assert_int_equal(vl_dkim_opt_parse(&o, "send", "--dkim-headers", "From:To:X-Campaign", stderr), 1);
    assert_string_equal(o.headers, "From:To:X-Campaign");
    assert_int_equal(vl_dkim_opt_parse(&o, "send", "--dkim-headers", "From::To", stderr), -1);
    assert_int_equal(vl_dkim_opt_parse(&o, "send", "--dkim-headers", "From:T o", stderr), -1);
    assert_int_equal(vl_dkim_opt_parse(&o, "send", "--dkim-headers", "", stderr), -1);
}

/* Through the run/send parser: every --dkim* option lands in cfg.dkim. */
static void test_dkim_config_parse(void **state)
{
    (void)state;
    static struct vl_config c;
    vl_config_defaults(&c);
    char *argv[] = { "volley", "--dkim", "a.test:s1:/k1", "--dkim=a.test:s2:/k2",
                     "--dkim-canon", "simple/simple", "--dkim-expire", "2d",
                     "--dkim-headers", "From:Subject", "x.eml" };
    char *rest[12];
    int rest_n = 0;
    assert_int_equal(vl_config_parse(&c, "send", 11, argv, rest, &rest_n), 0);
    assert_int_equal(rest_n, 1);
    assert_int_equal(c.dkim.key_count, 2);
    assert_string_equal(c.dkim.keys[1].selector, "s2");
    assert_true(c.dkim.canon_hdr_simple && c.dkim.canon_body_simple);
    assert_int_equal(c.dkim.expire_ms, 2ull * 86400 * 1000);
    assert_string_equal(c.dkim.headers, "From:Subject");
    char *bad[] = { "volley", "--dkim-expire", "soon" };
    vl_config_defaults(&c);
    assert_int_equal(vl_config_parse(&c, "send", 3, bad, rest, &rest_n), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dkim_key_option),
        cmocka_unit_test(test_dkim_other_options),
        cmocka_unit_test(test_dkim_config_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
