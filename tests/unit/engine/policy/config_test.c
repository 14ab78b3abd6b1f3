/* config_test.c - run/send option parsing: values, ranges, routes, leftovers, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "ip_class.h"
#include "volley/config.h"

static int parse(struct vl_config *c, char **argv, int argc, char **rest, int *rest_n)
{
    vl_config_defaults(c);
    return vl_config_parse(c, "run", argc, argv, rest, rest_n);
}

static void test_values(void **state)
{
    (void)state;
    static struct vl_config c;
    char *argv[] = { "run", "--data", "/tmp/q", "--shards=3", "--mx-port", "2525",
                     "--route", "Example.org=127.0.0.2:2525", "--route", "*=[::1]:25",
                     "--max-rcpts", "1", "--retry-base", "250ms", "--max-age", "2d",
                     "--until-empty", "--from", "a@b.org", "msg.eml", "--timeout-scale", "0.01",
                     "--host-backoff=2s" };
    char *rest[32];
    int rest_n;
    assert_int_equal(parse(&c, argv, (int)(sizeof argv / sizeof argv[0]), rest, &rest_n), 0);
    assert_string_equal(c.data_dir, "/tmp/q");
    assert_int_equal(c.shards, 3);
    assert_int_equal(c.mx_port, 2525);
    assert_int_equal(c.rcpts_per_txn_max, 1);
    assert_int_equal(c.retry_ms_base, 250);
    assert_int_equal(c.age_ms_max, 2ull * 86400 * 1000);
    assert_true(c.until_empty);
    assert_int_equal(c.host_fail_ms_min, 2000);
    assert_true(c.timeout_scale > 0.0099 && c.timeout_scale < 0.0101);
    assert_int_equal(c.route_count, 2);
    const struct vl_route *r = vl_config_route(&c, "EXAMPLE.org");
    assert_non_null(r);
    assert_string_equal(r->to.host, "127.0.0.2");
    assert_int_equal(r->to.port, 2525);
    r = vl_config_route(&c, "other.net");
    assert_non_null(r);
    assert_string_equal(r->to.host, "::1");
    assert_int_equal(r->to.port, 25);
    assert_int_equal(rest_n, 3);
    assert_string_equal(rest[0], "--from");
    assert_string_equal(rest[2], "msg.eml");
}

static void test_errors(void **state)
{
    (void)state;
    static struct vl_config c;
    char *rest[8];
    int rest_n;
    char *bad[][3] = {
        { "run", "--shards", "0" }, { "run", "--shards", "x" }, { "run", "--mx-port", "70000" },
        { "run", "--route", "example.org" }, { "run", "--route", "bad_dom=1.2.3.4:25" },
        { "run", "--route", "a.org=host" }, { "run", "--retry-base", "5y" },
        { "run", "--dns", "127.0.0.1" }, { "run", "--max-rcpts", "101" },
        { "run", "--timeout-scale", "0" }, { "run", "--max-age", "0" },
        { "run", "--host-backoff", "0" }, { "run", "--host-backoff", "2d" },
        { "run", "--tls", "sometimes" }, { "run", "--tls", "MAYBE" }, { "run", "--tls", "" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(&c, bad[i], 3, rest, &rest_n) != -1)
            fail_msg("accepted %s %s", bad[i][1], bad[i][2]);
    }
    char *missing[] = { "run", "--data" };
    assert_int_equal(parse(&c, missing, 2, rest, &rest_n), -1);
}

static void test_tls_level(void **state)
{
    (void)state;
    static struct vl_config c;
    static const struct { const char *arg; enum vl_tls_level want; } cases[] = {
        { NULL, VL_TLS_MAY }, { "may", VL_TLS_MAY }, { "none", VL_TLS_NONE },
        { "--tls=none", VL_TLS_NONE },
    };
    char *rest[8];
    int rest_n;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *a = cases[i].arg;
        char *argv[3] = { "run", (char *)"--tls", (char *)a };
        int argc = a ? 3 : 1;
        if (a && !strncmp(a, "--", 2)) {
            argv[1] = (char *)a;
            argc = 2;
        }
        assert_int_equal(parse(&c, argv, argc, rest, &rest_n), 0);
        assert_int_equal(c.tls_level, cases[i].want);
        assert_int_equal(rest_n, 0);
    }
}

static void test_durations(void **state)
{
    (void)state;
    uint64_t ms;
    assert_int_equal(vl_parse_duration_ms("300", &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(vl_parse_duration_ms("1.5s", &ms), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(vl_parse_duration_ms("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(vl_parse_duration_ms("-1", &ms), -1);
    assert_int_equal(vl_parse_duration_ms("5 m", &ms), -1);
    assert_int_equal(vl_parse_duration_ms("", &ms), -1);
}

/* Issue 9 item 10: "--retry-base nan" was accepted (and cast NaN to an integer). */
static void test_item10_duration_nan_inf_overflow(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "nan", "NaN", "-nan", "nan(1)", "inf", "-inf", "infinity", "Infinity", "-1", "-1s",
        "-0", "+5s", " 5s", "5s ", "0x10", "0x1p4s", "1e3", "5e2s", "1e400", ".5s", "5.s",
        "1.2.3s", "99999999999999999999", "18446744073709551616ms", "1e12d", "36501d",
        "3153600000001ms", "5y", "s", "ms",
    };
    uint64_t ms = 77;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (vl_parse_duration_ms(bad[i], &ms) != -1)
            fail_msg("accepted duration '%s' as %llu ms", bad[i], (unsigned long long)ms);
        assert_int_equal(ms, 77);                  /* untouched on failure */
    }
    static const struct { const char *s; uint64_t ms; } good[] = {
        { "0", 0 }, { "0.5s", 500 }, { "250ms", 250 }, { "1.25m", 75000 }, { "2h", 7200000 },
        { "5d", 432000000ull }, { "36500d", 3153600000000ull },
        { "3153600000000ms", 3153600000000ull }, { "007s", 7000 },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (vl_parse_duration_ms(good[i].s, &ms) != 0)
            fail_msg("refused duration '%s'", good[i].s);
        assert_int_equal(ms, good[i].ms);
    }
    static struct vl_config c;
    char *rest[8];
    int rest_n;
    static const char *const opts[] = { "--retry-base", "--retry-max", "--max-age", "--idle",
                                        "--connect-timeout", "--delay-warning" };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        for (size_t k = 0; k < 3; k++) {
            char *argv[3] = { "run", (char *)opts[i], (char *)(k == 0 ? "nan" : k == 1 ? "inf"
                                                                          : "-5m") };
            if (parse(&c, argv, 3, rest, &rest_n) != -1)
                fail_msg("accepted %s %s", argv[1], argv[2]);
        }
    }
}

/* Issue 9 items 7 and 9: --allow-dest (repeatable, ORs), the default (public
 * only), bad values; the hidden test/tuning caps --dns-inflight-max and
 * --sessions-max (ranges). */
static void test_item9_allow_dest_and_caps(void **state)
{
    (void)state;
    static struct vl_config c;
    char *rest[8];
    int rest_n;
    char *none[] = { "run" };
    assert_int_equal(parse(&c, none, 1, rest, &rest_n), 0);
    assert_int_equal(c.allow_dest, 0);
    assert_int_equal(c.dns_inflight_max, 0);
    assert_int_equal(c.sessions_max, 0);
    char *ok[] = { "run", "--allow-dest", "loopback", "--allow-dest=private,link-local",
                   "--dns-inflight-max", "1", "--sessions-max=2" };
    assert_int_equal(parse(&c, ok, 7, rest, &rest_n), 0);
    assert_int_equal(c.allow_dest, VL_IP_ALLOW(VL_IP_LOOPBACK) | VL_IP_ALLOW(VL_IP_PRIVATE) |
                                   VL_IP_ALLOW(VL_IP_LINK_LOCAL));
    assert_int_equal(c.dns_inflight_max, 1);
    assert_int_equal(c.sessions_max, 2);
    assert_int_equal(rest_n, 0);
    char *any[] = { "run", "--allow-dest", "any" };
    assert_int_equal(parse(&c, any, 3, rest, &rest_n), 0);
    assert_int_equal(c.allow_dest, VL_IP_ALLOW_ANY);
    char *bad[][3] = {
        { "run", "--allow-dest", "multicast" }, { "run", "--allow-dest", "public" },
        { "run", "--allow-dest", "" }, { "run", "--allow-dest", "loopback,,private" },
        { "run", "--dns-inflight-max", "0" }, { "run", "--dns-inflight-max", "4097" },
        { "run", "--sessions-max", "0" }, { "run", "--sessions-max", "4097" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse(&c, bad[i], 3, rest, &rest_n) != -1)
            fail_msg("accepted %s '%s'", bad[i][1], bad[i][2]);
    assert_null(strstr(vl_config_usage, "--dns-inflight-max"));   /* test/tuning only */
    assert_non_null(strstr(vl_config_usage, "--allow-dest"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_tls_level),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_item10_duration_nan_inf_overflow),
        cmocka_unit_test(test_item9_allow_dest_and_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
