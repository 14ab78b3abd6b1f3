/*
 * ip_class_test.c - engine/base/ip_class.c: every range's edges, IPv4-mapped
 * IPv6, text that is not an address.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "ip_class.h"

static const struct {
    const char *ip;
    enum vl_ip_class want;
} cases[] = {
    { "8.8.8.8",          VL_IP_PUBLIC },
    { "1.1.1.1",          VL_IP_PUBLIC },
    { "0.0.0.0",          VL_IP_UNSPECIFIED },
    { "0.255.255.255",    VL_IP_UNSPECIFIED },
    { "127.0.0.1",        VL_IP_LOOPBACK },
    { "127.255.255.254",  VL_IP_LOOPBACK },
    { "126.255.255.255",  VL_IP_PUBLIC },
    { "128.0.0.1",        VL_IP_PUBLIC },
    { "10.0.0.5",         VL_IP_PRIVATE },
    { "11.0.0.1",         VL_IP_PUBLIC },
    { "172.15.255.255",   VL_IP_PUBLIC },
    { "172.16.0.0",       VL_IP_PRIVATE },
    { "172.31.255.255",   VL_IP_PRIVATE },
    { "172.32.0.0",       VL_IP_PUBLIC },
    { "192.168.1.1",      VL_IP_PRIVATE },
    { "192.169.0.1",      VL_IP_PUBLIC },
    { "100.63.255.255",   VL_IP_PUBLIC },
    { "100.64.0.1",       VL_IP_PRIVATE },
    { "100.127.255.255",  VL_IP_PRIVATE },
    { "100.128.0.0",      VL_IP_PUBLIC },
    { "169.254.0.1",      VL_IP_LINK_LOCAL },
    { "224.0.0.1",        VL_IP_MULTICAST },
    { "239.255.255.255",  VL_IP_MULTICAST },
    { "240.0.0.1",        VL_IP_RESERVED },
    { "255.255.255.255",  VL_IP_RESERVED },
    { "192.0.2.7",        VL_IP_RESERVED },
    { "198.51.100.1",     VL_IP_RESERVED },
    { "203.0.113.9",      VL_IP_RESERVED },
    { "198.18.0.1",       VL_IP_RESERVED },
    { "198.19.255.255",   VL_IP_RESERVED },
    { "198.20.0.0",       VL_IP_PUBLIC },
    { "::",               VL_IP_UNSPECIFIED },
    { "::1",              VL_IP_LOOPBACK },
    { "::2",              VL_IP_PUBLIC },
    { "fc00::1",          VL_IP_PRIVATE },
    { "fdff:ffff::1",     VL_IP_PRIVATE },
    { "fe80::1",          VL_IP_LINK_LOCAL },
    { "febf::1",          VL_IP_LINK_LOCAL },
    { "fec0::1",          VL_IP_PUBLIC },
    { "ff02::1",          VL_IP_MULTICAST },
    { "2001:db8::5",      VL_IP_RESERVED },
    { "2001:4860::8888",  VL_IP_PUBLIC },
    { "::ffff:127.0.0.1", VL_IP_LOOPBACK },
    { "::ffff:10.1.2.3",  VL_IP_PRIVATE },
    { "::ffff:8.8.4.4",   VL_IP_PUBLIC },
    { "mx.example.org",   VL_IP_RESERVED },
    { "",                 VL_IP_RESERVED },
    { "10.0.0.256",       VL_IP_RESERVED },
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum vl_ip_class got = vl_ip_classify_text(cases[i].ip);
        if (got != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].ip, vl_ip_class_name(got),
                     vl_ip_class_name(cases[i].want));
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(vl_ip_class_name(VL_IP_LOOPBACK), "loopback");
    assert_string_equal(vl_ip_class_name(VL_IP_PUBLIC), "public");
    assert_string_equal(vl_ip_class_name((enum vl_ip_class)99), "reserved");
    assert_int_equal(vl_ip_classify(12345, "\0\0\0\0"), VL_IP_RESERVED);
}

/* Issue 9 item 9: the destination policy decision. Public always; the four
 * allowable classes only when allowed; unspecified and multicast never. */
static void test_item9_dest_policy(void **state)
{
    (void)state;
    const uint32_t lo = VL_IP_ALLOW(VL_IP_LOOPBACK), pr = VL_IP_ALLOW(VL_IP_PRIVATE);
    static const struct { const char *label, *ip; uint32_t allow; bool want; } t[] = {
        { "public, default", "8.8.8.8", 0, true },
        { "loopback, default", "127.0.0.1", 0, false },
        { "private, default", "10.0.0.5", 0, false },
        { "link-local, default", "169.254.1.1", 0, false },
        { "reserved, default", "192.0.2.1", 0, false },
        { "mapped loopback, default", "::ffff:127.0.0.1", 0, false },
        { "v6 loopback, default", "::1", 0, false },
        { "loopback allowed", "127.0.0.2", VL_IP_ALLOW(VL_IP_LOOPBACK), true },
        { "private, loopback allowed", "192.168.1.1", VL_IP_ALLOW(VL_IP_LOOPBACK), false },
        { "link-local allowed", "fe80::1", VL_IP_ALLOW(VL_IP_LINK_LOCAL), true },
        { "any: reserved", "240.0.0.1", VL_IP_ALLOW_ANY, true },
        { "any: unspecified", "0.0.0.0", VL_IP_ALLOW_ANY, false },
        { "any: v6 unspecified", "::", VL_IP_ALLOW_ANY, false },
        { "any: multicast", "224.0.0.1", VL_IP_ALLOW_ANY, false },
        { "all bits: multicast", "ff02::1", 0xffffffffu, false },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bool got = vl_ip_dest_allowed(t[i].allow, vl_ip_classify_text(t[i].ip));
        if (got != t[i].want)
            fail_msg("%s (%s): got %d", t[i].label, t[i].ip, (int)got);
    }
    uint32_t a = 0;
    const char *why = NULL;
    assert_int_equal(vl_ip_allow_parse("loopback", &a, &why), 0);
    assert_int_equal(a, lo);
    assert_int_equal(vl_ip_allow_parse("private,loopback", &a, &why), 0);   /* ORs */
    assert_int_equal(a, lo | pr);
    a = 0;
    assert_int_equal(vl_ip_allow_parse("any", &a, &why), 0);
    assert_int_equal(a, VL_IP_ALLOW_ANY);
    static const char *const bad[] = { "", "public", "multicast", "unspecified", "loopback,",
                                       ",loopback", "Loopback", "loopback private" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = 7;
        why = NULL;
        if (vl_ip_allow_parse(bad[i], &a, &why) != -1 || a != 7 || !why)
            fail_msg("'%s' accepted", bad[i]);
    }
    assert_non_null(strstr((vl_ip_allow_parse("multicast", &a, &why), why), "never"));
    /* sockaddr form, as the router uses it */
    struct sockaddr_in in4 = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.9", &in4.sin_addr);
    assert_int_equal(vl_ip_classify_sa((const struct sockaddr *)&in4), VL_IP_LOOPBACK);
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
    inet_pton(AF_INET6, "fd00::1", &in6.sin6_addr);
    assert_int_equal(vl_ip_classify_sa((const struct sockaddr *)&in6), VL_IP_PRIVATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_item9_dest_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
