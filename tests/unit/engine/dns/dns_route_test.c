/* dns_route_test.c - the route table, address literals, the --dns list and
 * the own-host list, table-driven (HOST:PORT itself: base/hostport_test.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dns.h"
#include "dns_route.h"
#include "volley/error.h"

static void test_routes(void **state)
{
    (void)state;
    struct dns_routes rt;
    const char *why = NULL;
    dns_routes_init(&rt);
    assert_null(dns_routes_find(&rt, "example.org"));
    assert_int_equal(dns_routes_add(&rt, "Example.ORG", "127.0.0.2:2525", &why), 0);
    const struct dns_route *r = dns_routes_find(&rt, "example.org");
    assert_non_null(r);
    assert_int_equal(r->to.port, 2525);
    assert_null(dns_routes_find(&rt, "other.org"));
    assert_int_equal(dns_routes_add(&rt, "*", "127.0.0.3:26", &why), 0);
    assert_int_equal(dns_routes_find(&rt, "other.org")->to.port, 26);
    assert_int_equal(dns_routes_find(&rt, "example.org")->to.port, 2525);
    assert_int_equal(dns_routes_add(&rt, "example.org", "127.0.0.4:27", &why), 0);  /* replace */
    assert_int_equal(rt.count, 2);
    assert_int_equal(dns_routes_find(&rt, "example.org")->to.port, 27);
    for (unsigned i = 0; i < 20; i++) {        /* growth keeps '*' and earlier routes */
        char d[32];
        snprintf(d, sizeof d, "d%u.org", i);
        assert_int_equal(dns_routes_add(&rt, d, "127.0.0.5:28", &why), 0);
    }
    assert_int_equal(dns_routes_find(&rt, "zzz.org")->to.port, 26);
    assert_int_equal(dns_routes_find(&rt, "d19.org")->to.port, 28);
    assert_int_equal(dns_routes_add(&rt, "bad domain", "127.0.0.1:25", &why), VL_E_INVALID);
    assert_int_equal(dns_routes_add(&rt, "", "127.0.0.1:25", &why), VL_E_INVALID);
    assert_int_equal(dns_routes_add(&rt, "x.org", "127.0.0.1", &why), VL_E_INVALID);
    dns_routes_fini(&rt);
}

static void test_routes_cap(void **state)
{
    (void)state;
    struct dns_routes rt;
    const char *why = NULL;
    dns_routes_init(&rt);
    for (unsigned i = 0; i < VL_ROUTES_MAX; i++) {
        char d[32];
        snprintf(d, sizeof d, "r%u.org", i);
        assert_int_equal(dns_routes_add(&rt, d, "127.0.0.1:25", &why), 0);
    }
    assert_int_equal(dns_routes_add(&rt, "one-more.org", "127.0.0.1:25", &why), VL_E_TOOBIG);
    dns_routes_fini(&rt);
}

static void test_own_hosts(void **state)
{
    (void)state;
    static const char *const list[] = { "MX.Example.org.", "192.0.2.1", "2001:db8::1" };
    struct dns_own own;
    const char *why = NULL;
    assert_int_equal(dns_own_init(&own, list, 3, &why), 0);
    assert_true(dns_own_name(&own, "mx.example.org"));
    assert_false(dns_own_name(&own, "mx2.example.org"));
    struct dns_rr_addr a = { .family = 4, .bytes = { 192, 0, 2, 1 } };
    assert_true(dns_own_addr(&own, &a));
    a.bytes[3] = 2;
    assert_false(dns_own_addr(&own, &a));
    struct dns_rr_addr a6 = { .family = 6, .bytes = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } };
    assert_true(dns_own_addr(&own, &a6));
    dns_own_fini(&own);
    static const char *const bad[] = { "not a host!" };
    assert_int_equal(dns_own_init(&own, bad, 1, &why), VL_E_INVALID);
    assert_non_null(why);
}

struct lit_case { const char *in; int want; const char *host; int family; };

static const struct lit_case lit_cases[] = {
    { "[192.0.2.1]",          0, "192.0.2.1", AF_INET },
    { "[IPv6:2001:db8::1]",   0, "2001:db8::1", AF_INET6 },
    { "[ipv6:::1]",           0, "::1", AF_INET6 },
    { "[]",                   VL_E_INVALID, NULL, 0 },
    { "[192.0.2.300]",        VL_E_INVALID, NULL, 0 },
    { "[mx.example.org]",     VL_E_INVALID, NULL, 0 },
    { "192.0.2.1",            VL_E_INVALID, NULL, 0 },
    { "[192.0.2.1",           VL_E_INVALID, NULL, 0 },
};

static void test_literal_and_servers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof lit_cases / sizeof lit_cases[0]; i++) {
        struct vl_hostport hp;
        int rc = dns_literal_parse(lit_cases[i].in, 2525, &hp);
        if (rc != lit_cases[i].want)
            fail_msg("%s: rc %d", lit_cases[i].in, rc);
        if (rc == 0) {
            assert_string_equal(hp.host, lit_cases[i].host);
            assert_int_equal(hp.addr.sa.sa_family, lit_cases[i].family);
            assert_int_equal(hp.port, 2525);
        }
    }
    struct vl_hostport hp[VL_DNS_SERVERS_MAX];
    size_t n = 0;
    const char *why = NULL;
    assert_int_equal(dns_servers_parse("127.0.0.1:5353,[::1],10.0.0.1", hp, &n, &why), 0);
    assert_int_equal(n, 3);
    assert_int_equal(hp[0].port, 5353);
    assert_int_equal(hp[1].port, 53);
    assert_int_equal(hp[1].addr.sa.sa_family, AF_INET6);
    assert_int_equal(dns_servers_parse("", hp, &n, &why), VL_E_INVALID);
    assert_int_equal(dns_servers_parse("ns.example.org", hp, &n, &why), VL_E_INVALID);
    assert_int_equal(dns_servers_parse("1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5", hp, &n, &why),
                     VL_E_INVALID);
    assert_non_null(strstr(why, "at most"));
}

struct cfg_case { const char *label; struct dns_config cfg; int want; };

static void test_config_defaults(void **state)
{
    (void)state;
    const struct cfg_case cases[] = {
        { "all defaults", { .servers = NULL }, 0 },
        { "cache over cap", { .cache_entries_max = VL_DNS_CACHE_ENTRIES_MAX + 1 }, VL_E_INVALID },
        { "inflight over cap", { .inflight_max = VL_DNS_INFLIGHT_MAX + 1 }, VL_E_INVALID },
        { "timeout too long", { .timeout_ms_try = 60001 }, VL_E_INVALID },
        { "too many tries", { .tries = 11 }, VL_E_INVALID },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dns_config c = cases[i].cfg;
        const char *why = NULL;
        int rc = dns_config_defaults(&c, &why);
        if (rc != cases[i].want)
            fail_msg("%s: rc %d", cases[i].label, rc);
        if (rc == 0) {
            assert_int_equal(c.port_mx, 25);
            assert_int_equal(c.cache_entries_max, 4096);
            assert_int_equal(c.timeout_ms_try, 2000);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_routes_cap),
        cmocka_unit_test(test_own_hosts),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_literal_and_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
