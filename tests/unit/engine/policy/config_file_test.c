/* config_file_test.c - volley.conf (engine/policy/config_file.c): values reach the
 * same fields as the command-line options, every error is reported with its
 * file:line (not only the first), unknown keys get a "did you mean", the
 * command line overrides the file, shaping/egress blocks are validated and
 * matched, and the repository's example file passes. Real files in a temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "volley/config.h"
#include "volley/shaping.h"

#include "config_fx.h"


static void test_values(void **state)
{
    (void)state;
    static struct vl_config c;
    char *errs = NULL;
    unsigned n = cfx_load(&c,
        "# comment\n"
        "data = \"/tmp/q\";\n"
        "shards = 3;\n"
        "max-rcpts = 7;\n"
        "retry-base = \"250ms\";\n"
        "max-age = 172800;\n"                       /* a number: seconds, as on the CLI */
        "timeout-scale = 0.5;\n"
        "quiet = true;\n"
        "tls = \"verify\";\n"
        "tls-fallback = \"10m\";\n"
        "route = [ \"Example.org=127.0.0.2:2525\", \"*=[::1]:25\" ];\n"
        "listeners = ( { address = \"127.0.0.1:2525\"; } );\n", &errs);
    assert_string_equal(errs, "");
    assert_int_equal(n, 0);
    assert_string_equal(c.data_dir, "/tmp/q");
    assert_int_equal(c.shards, 3);
    assert_int_equal(c.rcpts_per_txn_max, 7);
    assert_int_equal(c.retry_ms_base, 250);
    assert_int_equal(c.age_ms_max, 172800ull * 1000);
    assert_true(c.timeout_scale > 0.49 && c.timeout_scale < 0.51);
    assert_true(c.quiet);
    assert_int_equal(c.tls_level, VL_TLS_VERIFY);
    assert_int_equal(c.tls_fallback_ms, 600000);
    assert_int_equal(c.route_count, 2);
    assert_string_equal(vl_config_route(&c, "example.ORG")->to.host, "127.0.0.2");
    assert_int_equal(c.listen_count, 1);
    assert_false(c.listen_tls[0]);
    assert_non_null(c.config_path);
    free(errs);
    vl_config_fini(&c);
}

/* Every error, each with its line; the file is refused. */
static void test_every_error_with_line(void **state)
{
    (void)state;
    static struct vl_config c;
    char *errs = NULL;
    unsigned n = cfx_load(&c,
        "retry-bse = \"5m\";\n"                                  /* 1: typo */
        "max-rcpts = 500;\n"                                     /* 2: range */
        "tls = \"sometimes\";\n"                                 /* 3: enum */
        "route = [ \"nodomain\" ];\n"                            /* 4: format */
        "until-empty = true;\n"                                  /* 5: CLI only */
        "quiet = 1;\n"                                           /* 6: type */
        "retry-base = \"2h\";\n"                                 /* 7: rule with retry-max */
        "listeners = ( { adress = \"127.0.0.1:25\"; } );\n",     /* 8: typo in a block */
        &errs);
    assert_int_equal(n, 9);             /* the listener: the typo and "address missing" */
    const char *want[] = {
        ":1: unknown key 'retry-bse' (did you mean 'retry-base'?)",
        ":2: max-rcpts: --max-rcpts '500': expected a whole number from 1 to 100",
        ":3: tls: --tls 'sometimes': expected one of none, may, encrypt, verify",
        ":4: route: --route 'nodomain': expected DOMAIN=HOST:PORT",
        ":5: until-empty: only on the command line",
        ":6: quiet: expected true or false",
        ":7: --retry-base must be > 0 and <= --retry-max",
        ":8: unknown key 'adress' in a listener (did you mean 'address'?)",
        ":8: listeners: address missing",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(errs, want[i]))
            fail_msg("missing \"%s\" in:\n%s", want[i], errs);
    }
    assert_non_null(strstr(errs, cfx_dir));          /* the path is in each line */
    free(errs);
    vl_config_fini(&c);
}

static void test_syntax_error(void **state)
{
    (void)state;
    static struct vl_config c;
    char *errs = NULL;
    unsigned n = cfx_load(&c, "shards = 2;\n\nlog = \"x\";\nquiet = = true;\n", &errs);
    assert_int_equal(n, 1);
    if (!strstr(errs, "t.conf:4: syntax error"))
        fail_msg("%s", errs);
    free(errs);
    vl_config_fini(&c);
}

static void test_unknown_without_suggestion(void **state)
{
    (void)state;
    static struct vl_config c;
    char *errs = NULL;
    assert_int_equal(cfx_load(&c, "zzzzzzzzzzzz = 1;\n", &errs), 1);
    assert_non_null(strstr(errs, ":1: unknown key 'zzzzzzzzzzzz'\n"));
    assert_null(strstr(errs, "did you mean"));
    free(errs);
    vl_config_fini(&c);
}

/* run --config FILE --max-rcpts 3: the command line wins. */
static void test_cli_overrides(void **state)
{
    (void)state;
    static struct vl_config c;
    const char *path = cfx_write_file("o.conf", "max-rcpts = 50;\nmsgs-per-conn = 9;\n");
    char *argv[] = { "run", "--max-rcpts", "3", "--config", (char *)path };
    char *rest[8];
    int rest_n = 0;
    vl_config_defaults(&c);
    assert_int_equal(vl_config_parse(&c, "run", 5, argv, rest, &rest_n), 0);
    assert_int_equal(rest_n, 0);
    assert_int_equal(c.rcpts_per_txn_max, 3);      /* CLI */
    assert_int_equal(c.msgs_per_conn_max, 9);      /* file */
    vl_config_fini(&c);
    /* a repeatable option on the command line replaces the file's list */
    path = cfx_write_file("l.conf", "route = [ \"a.example=127.0.0.1:25\", \"b.example=127.0.0.1:26\" ];\n"
                                "listeners = ( { address = \"127.0.0.1:2525\"; } );\n");
    char *argv3[] = { "run", "--config", (char *)path, "--route", "c.example=127.0.0.1:27",
                      "--listen", "127.0.0.1:0" };
    vl_config_defaults(&c);
    assert_int_equal(vl_config_parse(&c, "run", 7, argv3, rest, &rest_n), 0);
    assert_int_equal(c.route_count, 1);
    assert_string_equal(c.routes[0].domain, "c.example");
    assert_int_equal(c.listen_count, 1);
    assert_int_equal(c.listens[0].port, 0);
    vl_config_fini(&c);
    /* a bad file makes the parse fail */
    path = cfx_write_file("b.conf", "max-rcpts = 0;\n");
    char *argv2[] = { "run", "--config", (char *)path };
    vl_config_defaults(&c);
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    assert_int_equal(vl_config_parse_err(&c, "run", 3, argv2, rest, &rest_n, devnull), -1);
    fclose(devnull);
    vl_config_fini(&c);
}

static void test_shaping(void **state)
{
    (void)state;
    static struct vl_config c;
    char *errs = NULL;
    unsigned n = cfx_load(&c,
        "egress = { addresses = ( { ip = \"127.0.0.2\"; ehlo = \"a.example\"; pool = \"p\"; "
        "warmup = [ 10, 20 ]; } ); };\n"
        "shaping = {\n"
        "  gmail = { mx = [ \"google.com\" ]; domains = \"gmail.com\"; msgs-per-sec = 20.0;\n"
        "            conns-per-ip = 4; tls = \"encrypt\"; pool = \"p\";\n"
        "            adaptive = { decrease = 0.5; defer-patterns = [ \"4.7.28\" ];\n"
        "                         suspend = ( { pattern = \"blocked\"; for = \"1h\"; } ); }; };\n"
        "  l = { mx = \"l.google.com\"; msgs-per-sec = 1; };\n"
        "};\n", &errs);
    assert_string_equal(errs, "");
    assert_int_equal(n, 0);
    const struct vl_shaping *s = c.shaping;
    assert_non_null(s);
    assert_int_equal(s->policy_count, 2);
    assert_int_equal(s->addr_count, 1);
    assert_int_equal(s->addrs[0].warmup_count, 2);
    assert_int_equal(s->default_pool, 0);
    const struct vl_shaping_policy *g = &s->policies[0];
    assert_int_equal(g->conns_per_ip, 4);
    assert_true(g->tls_set && g->tls == VL_TLS_ENCRYPT);
    assert_true(g->adaptive);
    assert_int_equal(g->pattern_count, 2);
    assert_int_equal(g->patterns[1].suspend_ms, 3600000);
    /* matching: exact domain first, then the longest MX suffix on a label boundary */
    assert_ptr_equal(vl_shaping_match(s, "gmail.com", NULL), g);
    assert_ptr_equal(vl_shaping_match(s, "corp.example", "aspmx.L.google.com."), &s->policies[1]);
    assert_ptr_equal(vl_shaping_match(s, "corp.example", "alt1.aspmx.google.com"), g);
    assert_null(vl_shaping_match(s, "corp.example", "notgoogle.com"));
    assert_null(vl_shaping_match(s, "x.example", NULL));
    free(errs);
    vl_config_fini(&c);

    n = cfx_load(&c,
        "shaping = { a = { msgs-per-sec = 0; }; b = { mx = \"x.test\"; pool = \"none\"; };\n"
        "            c = { mx = \"x.test\"; adaptive = { decrease = 2; }; }; };\n", &errs);
    const char *want[] = {
        ":1: msgs-per-sec: expected a number > 0",
        ":1: shaping.a: matches nothing",
        ":1: shaping.b: pool 'none' has no egress address",
        ":2: adaptive.decrease: expected a number > 0 and <= 1",
        ":2: shaping.c: mx 'x.test' is already in shaping.b",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(errs, want[i]))
            fail_msg("missing \"%s\" in:\n%s", want[i], errs);
    assert_true(n >= 5);
    free(errs);
    vl_config_fini(&c);
}

/* The dkim { } block reaches the same fields as --dkim, --dkim-canon,
 * --dkim-expire and --dkim-headers; its errors have lines. */
static void test_dkim_block(void **state)
{
    (void)state;
    static struct vl_config c;
    char key1[300], key2[300];
    snprintf(key1, sizeof key1, "%s", cfx_write_file("s1.pem", "not checked here\n"));
    snprintf(key2, sizeof key2, "%s", cfx_write_file("ed1.pem", "not checked here\n"));
    char text[2000];
    snprintf(text, sizeof text,
             "dkim = {\n"
             "  keys = ( { domain = \"Example.COM\"; selector = \"s1\"; key = \"%s\"; },\n"
             "           { domain = \"example.com\"; selector = \"ed1\"; key = \"%s\"; } );\n"
             "  canon = \"simple/relaxed\";\n"
             "  expire = \"7d\";\n"
             "  headers = [ \"From\", \"To\", \"Subject\" ];\n"
             "};\n", key1, key2);
    char *errs = NULL;
    assert_int_equal(cfx_load(&c, text, &errs), 0);
    assert_string_equal(errs, "");
    free(errs);
    assert_int_equal(c.dkim.key_count, 2);
    assert_string_equal(c.dkim.keys[0].domain, "example.com");
    assert_string_equal(c.dkim.keys[0].selector, "s1");
    assert_string_equal(c.dkim.keys[0].key_path, key1);
    assert_string_equal(c.dkim.keys[1].selector, "ed1");
    assert_true(c.dkim.canon_hdr_simple && !c.dkim.canon_body_simple);
    assert_int_equal(c.dkim.expire_ms, 7ull * 86400 * 1000);
    assert_string_equal(c.dkim.headers, "From:To:Subject");
    vl_config_fini(&c);
    /* errors, each on its line */
    snprintf(text, sizeof text,
             "dkim = {\n"
             "  keys = ( { domain = \"example.com\"; selecter = \"s1\"; key = \"%s\"; },\n"
             "           { domain = \"example.com\"; selector = \"s2\";\n"
             "             key = \"%s/missing.pem\"; },\n"
             "           { domain = \"bad_domain\"; selector = \"s3\"; key = \"%s\"; } );\n"
             "  canon = \"loose\";\n"
             "  headers = [ \"From\", \"\" ];\n"
             "  sign = true;\n"
             "};\n", key1, cfx_dir, key1);
    unsigned n = cfx_load(&c, text, &errs);
    const char *want[] = {
        ":2: unknown key 'selecter' in a dkim key (did you mean 'selector'?)",
        ":4: dkim.keys.key '",
        ":5: dkim: --dkim 'bad_domain:s3:",
        ":6: dkim-canon: --dkim-canon 'loose': expected HDR/BODY",
        ":7: dkim.headers: element 2: expected a field name",
        ":8: unknown key 'sign' in dkim",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(errs, want[i]))
            fail_msg("missing \"%s\" in:\n%s", want[i], errs);
    }
    assert_non_null(strstr(errs, "missing.pem': cannot read: No such file or directory"));
    assert_int_equal(n, 6);
    free(errs);
    vl_config_fini(&c);
}

static void test_example_passes(void **state)
{
    (void)state;
    const char *src = getenv("VOLLEY_SRC");
    if (!src)
        fail_msg("VOLLEY_SRC is not set (run through ctest)");
    char path[512];
    snprintf(path, sizeof path, "%s/etc/volley.conf.example", src);
    static struct vl_config c;
    char *errs = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&errs, &len);
    assert_non_null(m);
    vl_config_defaults(&c);
    unsigned n = vl_config_load_file(&c, path, m);
    fclose(m);
    if (n)
        fail_msg("%s", errs);
    assert_non_null(c.shaping);
    assert_int_equal(c.shaping->policy_count, 7);   /* the big providers */
    assert_non_null(vl_shaping_match(c.shaping, "corp.example", "aspmx.l.google.com"));
    assert_non_null(vl_shaping_match(c.shaping, "aol.com", NULL));
    free(errs);
    vl_config_fini(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_every_error_with_line),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_unknown_without_suggestion),
        cmocka_unit_test(test_cli_overrides),
        cmocka_unit_test(test_shaping),
        cmocka_unit_test(test_dkim_block),
        cmocka_unit_test(test_example_passes),
    };
    return cmocka_run_group_tests(tests, cfx_setup, cfx_teardown);
}
