/* dns_route_test.c - HOST:PORT parsing, the route table and the own-host
 * list, table-driven. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dns_route.h"
#include "volley/error.h"

struct hp_case {
    const char *label, *in;
    uint16_t port_default;
    bool names_ok;
    int want;
    const char *host;
    uint16_t port;
    int family;            /* 0: a name */
};

static const struct hp_case hp_cases[] = {
    { "v4 port",        "127.0.0.2:2525",      0, true,  0, "127.0.0.2", 2525, AF_INET },
    { "v4 default",     "127.0.0.2",          53, false, 0, "127.0.0.2", 53, AF_INET },
    { "v6 bracket",     "[::1]:5353",          0, false, 0, "::1", 5353, AF_INET6 },
    { "v6 bare",        "2001:db8::1",        53, false, 0, "2001:db8::1", 53, AF_INET6 },
    { "v6 no port",     "[::1]",              53, false, 0, "::1", 53, AF_INET6 },
    { "name",           "MX.Example.org:25",   0, true,  0, "mx.example.org", 25, 0 },
    { "name refused",   "mx.example.org:53",  53, false, VL_E_INVALID, NULL, 0, 0 },
    { "port required",  "127.0.0.1",           0, true,  VL_E_INVALID, NULL, 0, 0 },
    { "port zero",      "127.0.0.1:0",         0, true,  VL_E_INVALID, NULL, 0, 0 },
    { "port 65536",     "127.0.0.1:65536",     0, true,  VL_E_INVALID, NULL, 0, 0 },
    { "port sign",      "127.0.0.1:+25",       0, true,  VL_E_INVALID, NULL, 0, 0 },
    { "port empty",     "127.0.0.1:",          0, true,  VL_E_INVALID, NULL, 0, 0 },
    { "empty host",     ":25",                 0, true,  VL_E_INVALID, NULL, 0, 0 },
    { "v4 in brackets", "[127.0.0.1]:25",      0, true,  VL_E_INVALID, NULL, 0, 0 },
    { "unclosed",       "[::1:25",             0, true,  VL_E_INVALID, NULL, 0, 0 },
    { "junk after ]",   "[::1]x25",            0, true,  VL_E_INVALID, NULL, 0, 0 },
    { "bad name",       "m x.org:25",          0, true,  VL_E_INVALID, NULL, 0, 0 },
    { "bad v4",         "300.1.1.1:25",        0, false, VL_E_INVALID, NULL, 0, 0 },
};

static void test_hostport_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof hp_cases / sizeof hp_cases[0]; i++) {
        const struct hp_case *c = &hp_cases[i];
        struct dns_hostport hp;
        const char *why = NULL;
        int rc = dns_hostport_parse(c->in, c->port_default, c->names_ok, &hp, &why);
        if (rc != c->want)
            fail_msg("%s: rc %d want %d (%s)", c->label, rc, c->want, why ? why : "");
        if (rc < 0) {
            if (!why || !*why)
                fail_msg("%s: no reason given", c->label);
            continue;
        }
        assert_string_equal(hp.host, c->host);
        assert_int_equal(hp.port, c->port);
        assert_int_equal(hp.is_ip, c->family != 0);
        if (c->family == AF_INET)
            assert_int_equal(ntohs(hp.addr.in4.sin_port), c->port);
        if (c->family)
            assert_int_equal(hp.addr.sa.sa_family, c->family);
    }
}

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
        struct dns_hostport hp;
        int rc = dns_literal_parse(lit_cases[i].in, 2525, &hp);
        if (rc != lit_cases[i].want)
            fail_msg("%s: rc %d", lit_cases[i].in, rc);
        if (rc == 0) {
            assert_string_equal(hp.host, lit_cases[i].host);
            assert_int_equal(hp.addr.sa.sa_family, lit_cases[i].family);
            assert_int_equal(hp.port, 2525);
        }
    }
    struct dns_hostport hp[VL_DNS_SERVERS_MAX];
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
        cmocka_unit_test(test_hostport_table),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_routes_cap),
        cmocka_unit_test(test_own_hosts),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_literal_and_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
