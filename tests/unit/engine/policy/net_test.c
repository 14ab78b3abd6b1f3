/* net_test.c - the intake's options (--listen, --allow, --max-msg-size, ...)
 * and CIDR parsing and matching (vl_net_parse, vl_net_match). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <string.h>

#include "volley/config.h"

static struct sockaddr_storage sa_of(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    return ss;
}

static bool in_net(const char *net, const char *ip)
{
    struct vl_net n;
    const char *why = NULL;
    if (vl_net_parse(net, &n, &why) != 0)
        fail_msg("%s did not parse: %s", net, why);
    struct sockaddr_storage ss = sa_of(ip);
    return vl_net_match(&n, (struct sockaddr *)&ss);
}

static void test_match(void **state)
{
    (void)state;
    assert_true(in_net("127.0.0.1/32", "127.0.0.1"));
    assert_false(in_net("127.0.0.1/32", "127.0.0.2"));
    assert_true(in_net("127.0.0.1", "127.0.0.1"));
    assert_false(in_net("127.0.0.1", "127.0.0.2"));
    assert_true(in_net("10.0.0.0/8", "10.255.1.2"));
    assert_false(in_net("10.0.0.0/8", "11.0.0.1"));
    assert_true(in_net("192.168.1.77/28", "192.168.1.64"));   /* host bits cleared */
    assert_true(in_net("192.168.1.64/28", "192.168.1.79"));
    assert_false(in_net("192.168.1.64/28", "192.168.1.80"));
    assert_true(in_net("0.0.0.0/0", "203.0.113.9"));
    assert_false(in_net("0.0.0.0/0", "::1"));                 /* families differ */
    assert_true(in_net("::1", "::1"));
    assert_true(in_net("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(in_net("2001:db8::/33", "2001:db8:8000::1"));
    assert_true(in_net("127.0.0.0/8", "::ffff:127.0.0.9"));    /* v4-mapped counts as v4 */
    assert_false(in_net("::ffff:0:0/96", "::1"));
}

static void test_parse_errors(void **state)
{
    (void)state;
    const char *bad[] = { "", "/8", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8x",
                          "10.0.0.0/-1", "host.example", "10.0.0.0/1234", "1.2.3/8" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct vl_net n;
        const char *why = NULL;
        assert_int_equal(vl_net_parse(bad[i], &n, &why), -1);
        assert_non_null(why);
    }
}

static void test_options(void **state)
{
    (void)state;
    static struct vl_config c;
    char *argv[] = { "run", "--listen", "127.0.0.1:2525", "--listen", "[::1]:0",
                     "--allow", "10.0.0.0/8", "--allow=::1", "--max-msg-size", "10k",
                     "--max-rcpts-per-msg", "7", "--max-conns-per-ip", "3",
                     "--intake-timeout", "2s" };
    char *rest[8];
    int rest_n;
    vl_config_defaults(&c);
    assert_int_equal(c.msg_bytes_max, 32u << 20);
    assert_int_equal(c.rcpts_per_msg_max, 100);
    assert_int_equal(c.allow_count, 0);
    assert_int_equal(vl_config_parse(&c, "run", (int)(sizeof argv / sizeof argv[0]), argv, rest,
                                     &rest_n), 0);
    assert_int_equal(rest_n, 0);
    assert_int_equal(c.listen_count, 2);
    assert_int_equal(c.listens[0].port, 2525);
    assert_int_equal(c.listens[1].port, 0);
    assert_int_equal(c.listens[1].addr.sa.sa_family, AF_INET6);
    assert_int_equal(c.listens[1].addr.in6.sin6_port, 0);
    assert_string_equal(c.listen, "127.0.0.1:2525");
    assert_int_equal(c.allow_count, 2);
    assert_int_equal(c.allow[0].prefix, 8);
    assert_int_equal(c.allow[1].prefix, 128);
    assert_int_equal(c.msg_bytes_max, 10240);
    assert_int_equal(c.rcpts_per_msg_max, 7);
    assert_int_equal(c.conns_per_ip_max, 3);
    assert_int_equal(c.intake_ms_timeout, 2000);
}

static void test_option_errors(void **state)
{
    (void)state;
    static struct vl_config c;
    char *rest[8];
    int rest_n;
    char *bad[][3] = {
        { "run", "--listen", "localhost:25" }, { "run", "--listen", "127.0.0.1" },
        { "run", "--listen", "127.0.0.1:99999" }, { "run", "--allow", "10/8" },
        { "run", "--max-msg-size", "0" }, { "run", "--max-msg-size", "65M" },
        { "run", "--max-msg-size", "1G" }, { "run", "--max-msg-size", "-1" },
        { "run", "--max-rcpts-per-msg", "0" }, { "run", "--max-conns-per-ip", "0" },
        { "run", "--intake-timeout", "0" }, { "run", "--intake-timeout", "2h" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vl_config_defaults(&c);
        if (vl_config_parse(&c, "run", 3, bad[i], rest, &rest_n) != -1)
            fail_msg("accepted %s %s", bad[i][1], bad[i][2]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_option_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
