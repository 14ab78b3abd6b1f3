/* hostport_test.c - the one HOST:PORT parser (vl_hostport_parse), table-driven:
 * IPv4, bracketed and bare IPv6, names (when allowed), default and required
 * ports, and the malformed forms with a reason each. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "volley/error.h"
#include "volley/hostport.h"

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
        struct vl_hostport hp;
        const char *why = NULL;
        int rc = vl_hostport_parse(c->in, c->port_default, c->names_ok, &hp, &why);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostport_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
