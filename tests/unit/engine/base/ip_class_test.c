/*
 * ip_class_test.c - engine/base/ip_class.c: every range's edges, IPv4-mapped
 * IPv6, text that is not an address.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
