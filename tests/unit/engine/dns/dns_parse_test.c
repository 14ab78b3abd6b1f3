/* dns_parse_test.c - raw DNS answers -> MX/A/AAAA with TTLs, SOA negative TTL.
 * Messages are built byte by byte with a tiny writer, so each test states the
 * exact wire form it feeds. VOLLEY_SEED replays the mutation test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_parse.h"
#include "volley/error.h"

/* ---- a minimal DNS message writer ---- */

struct pk { uint8_t b[1024]; size_t n; };

static void put8(struct pk *p, uint8_t v) { assert_true(p->n < sizeof p->b); p->b[p->n++] = v; }
static void put16(struct pk *p, uint16_t v) { put8(p, (uint8_t)(v >> 8)); put8(p, (uint8_t)v); }
static void put32(struct pk *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p, (uint16_t)v); }

/* Name as labels; "" is the root. */
static void put_name(struct pk *p, const char *s)
{
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t l = dot ? (size_t)(dot - s) : strlen(s);
        put8(p, (uint8_t)l);
        for (size_t i = 0; i < l; i++)
            put8(p, (uint8_t)s[i]);
        s += l + (dot ? 1 : 0);
    }
    put8(p, 0);
}

static void put_ptr(struct pk *p, uint16_t off) { put16(p, (uint16_t)(0xC000u | off)); }

static void put_header(struct pk *p, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns)
{
    p->n = 0;
    put16(p, 0x1234);
    put16(p, flags);
    put16(p, qd); put16(p, an); put16(p, ns); put16(p, 0);
}

/* Question at offset 12, so its name can be pointed to with put_ptr(p, 12). */
static void put_question(struct pk *p, const char *name, uint16_t type)
{
    put_name(p, name);
    put16(p, type);
    put16(p, 1);
}

static void put_rr_head(struct pk *p, uint16_t type, uint32_t ttl, uint16_t rdlen)
{
    put_ptr(p, 12);
    put16(p, type);
    put16(p, 1);
    put32(p, ttl);
    put16(p, rdlen);
}

static void put_mx(struct pk *p, uint32_t ttl, uint16_t pref, const char *host)
{
    size_t len_at = p->n + 10;
    put_rr_head(p, DNS_TYPE_MX, ttl, 0);
    size_t start = p->n;
    put16(p, pref);
    put_name(p, host);
    uint16_t rdlen = (uint16_t)(p->n - start);
    p->b[len_at] = (uint8_t)(rdlen >> 8);
    p->b[len_at + 1] = (uint8_t)rdlen;
}

static void put_soa(struct pk *p, uint32_t ttl, uint32_t minimum)
{
    struct pk tmp = { .n = 0 };
    put_name(&tmp, "ns.example.org");
    put_name(&tmp, "hostmaster.example.org");
    put32(&tmp, 2026010101); put32(&tmp, 3600); put32(&tmp, 600); put32(&tmp, 86400);
    put32(&tmp, minimum);
    put_rr_head(p, DNS_TYPE_SOA, ttl, (uint16_t)tmp.n);
    memcpy(p->b + p->n, tmp.b, tmp.n);
    p->n += tmp.n;
}

#define RESP 0x8180u   /* QR, RD, RA, NOERROR */

/* ---- MX ---- */

static void test_mx_basic(void **state)
{
    (void)state;
    struct pk p;
    put_header(&p, RESP, 1, 3, 0);
    put_question(&p, "Example.ORG", DNS_TYPE_MX);
    put_mx(&p, 300, 20, "MX2.example.org");
    put_mx(&p, 120, 10, "mx1.example.org");
    put_mx(&p, 600, 10, "mx1b.example.org");
    struct dns_rr_mx mx[4];
    struct dns_parse_info info;
    int n = dns_parse_mx(p.b, p.n, &info, mx, 4);
    assert_int_equal(n, 3);
    assert_int_equal(info.id, 0x1234);
    assert_int_equal(info.rcode, DNS_RCODE_NOERROR);
    assert_int_equal(info.qtype, DNS_TYPE_MX);
    assert_int_equal(info.found, 3);
    assert_int_equal(info.skipped, 0);
    assert_int_equal(info.ttl_s_min, 120);
    assert_false(info.has_soa);
    assert_int_equal(mx[0].pref, 20);
    assert_string_equal(mx[0].host, "mx2.example.org");   /* lower-cased */
    assert_int_equal(mx[0].ttl_s, 300);
    assert_int_equal(mx[1].pref, 10);
    assert_string_equal(mx[1].host, "mx1.example.org");
    assert_string_equal(mx[2].host, "mx1b.example.org");
}

static void test_mx_compressed_target(void **state)
{
    (void)state;
    struct pk p;
    put_header(&p, RESP, 1, 1, 0);
    put_question(&p, "example.org", DNS_TYPE_MX);
    put_rr_head(&p, DNS_TYPE_MX, 60, 2 + 6);
    put16(&p, 5);
    put8(&p, 3); put8(&p, 'm'); put8(&p, 'x'); put8(&p, '1');
    put_ptr(&p, 12);                        /* "mx1" + -> "example.org" */
    struct dns_rr_mx mx[1];
    struct dns_parse_info info;
    assert_int_equal(dns_parse_mx(p.b, p.n, &info, mx, 1), 1);
    assert_string_equal(mx[0].host, "mx1.example.org");
    assert_int_equal(mx[0].pref, 5);
}

static void test_mx_null(void **state)
{
    (void)state;
    struct pk p;
    put_header(&p, RESP, 1, 1, 0);
    put_question(&p, "nullmx.test", DNS_TYPE_MX);
    put_mx(&p, 3600, 0, "");
    struct dns_rr_mx mx[2];
    struct dns_parse_info info;
    assert_int_equal(dns_parse_mx(p.b, p.n, &info, mx, 2), 1);
    assert_int_equal(mx[0].pref, 0);
    assert_string_equal(mx[0].host, "");
}

static void test_mx_cap_and_skips(void **state)
{
    (void)state;
    struct pk p;
    put_header(&p, RESP, 1, 4, 0);
    put_question(&p, "example.org", DNS_TYPE_MX);
    put_mx(&p, 10, 1, "a.example.org");
    put_mx(&p, 20, 2, "b d.example.org");          /* space: not a host name */
    put_mx(&p, 0x80000005u, 3, "c.example.org");   /* top bit: counts as 0 */
    put_mx(&p, 40, 4, "d.example.org");            /* past the cap */
    struct dns_rr_mx mx[2];
    struct dns_parse_info info;
    assert_int_equal(dns_parse_mx(p.b, p.n, &info, mx, 2), 2);
    assert_int_equal(info.found, 4);
    assert_int_equal(info.skipped, 1);
    assert_string_equal(mx[1].host, "c.example.org");
    assert_int_equal(mx[1].ttl_s, 0);
    assert_int_equal(info.ttl_s_min, 0);
}

struct neg_case { const char *label; uint16_t flags; uint32_t soa_ttl, minimum, want; };

static const struct neg_case neg_cases[] = {
    { "nodata, ttl < minimum",   RESP,        30,  300,  30 },
    { "nodata, minimum < ttl",   RESP,      3600,   60,  60 },
    { "nxdomain",                RESP | 3,   900,  900, 900 },
    { "nxdomain, minimum 0",     RESP | 3,   900,    0,   0 },
};

static void test_negative_ttl_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof neg_cases / sizeof neg_cases[0]; i++) {
        const struct neg_case *c = &neg_cases[i];
        struct pk p;
        put_header(&p, c->flags, 1, 0, 1);
        put_question(&p, "nodata.example.org", DNS_TYPE_MX);
        put_soa(&p, c->soa_ttl, c->minimum);
        struct dns_rr_mx mx[1];
        struct dns_parse_info info;
        int n = dns_parse_mx(p.b, p.n, &info, mx, 1);
        if (n != 0 || !info.has_soa || info.ttl_s_negative != c->want)
            fail_msg("%s: n=%d soa=%d neg=%u want %u", c->label, n, info.has_soa,
                     info.ttl_s_negative, c->want);
        assert_int_equal(info.rcode, c->flags & 0xF);
        assert_int_equal(info.ttl_s_min, UINT32_MAX);
    }
}

static void test_servfail_no_sections(void **state)
{
    (void)state;
    struct pk p;
    put_header(&p, RESP | 2, 1, 0, 0);
    put_question(&p, "example.org", DNS_TYPE_MX);
    struct dns_rr_mx mx[1];
    struct dns_parse_info info;
    assert_int_equal(dns_parse_mx(p.b, p.n, &info, mx, 1), 0);
    assert_int_equal(info.rcode, DNS_RCODE_SERVFAIL);
    assert_false(info.has_soa);
    assert_int_equal(info.ttl_s_negative, 0);
}

/* ---- malformed messages ---- */

static void test_reject_query_and_wrong_type(void **state)
{
    (void)state;
    struct pk p;
    struct dns_rr_mx mx[1];
    struct dns_rr_addr a[1];
    struct dns_parse_info info;
    put_header(&p, 0x0100, 1, 0, 0);                   /* QR clear */
    put_question(&p, "example.org", DNS_TYPE_MX);
    assert_int_equal(dns_parse_mx(p.b, p.n, &info, mx, 1), VL_E_PROTO);
    put_header(&p, RESP, 1, 0, 0);
    put_question(&p, "example.org", DNS_TYPE_A);
    assert_int_equal(dns_parse_mx(p.b, p.n, &info, mx, 1), VL_E_PROTO);
    assert_int_equal(dns_parse_addr(p.b, p.n, DNS_TYPE_AAAA, &info, a, 1), VL_E_PROTO);
    assert_int_equal(dns_parse_addr(p.b, p.n, DNS_TYPE_A, &info, a, 1), 0);
    put_header(&p, RESP, 2, 0, 0);                     /* two questions */
    put_question(&p, "example.org", DNS_TYPE_MX);
    put_question(&p, "example.org", DNS_TYPE_MX);
    assert_int_equal(dns_parse_mx(p.b, p.n, &info, mx, 1), VL_E_PROTO);
    assert_int_equal(dns_parse_mx(p.b, 5, &info, mx, 1), VL_E_PROTO);   /* short header */
}

static void test_every_truncation(void **state)
{
    (void)state;
    struct pk p;
    put_header(&p, RESP, 1, 2, 1);
    put_question(&p, "example.org", DNS_TYPE_MX);
    put_mx(&p, 300, 10, "mx1.example.org");
    put_mx(&p, 300, 20, "mx2.example.org");
    put_soa(&p, 60, 60);
    struct dns_rr_mx mx[2];
    struct dns_parse_info info;
    assert_int_equal(dns_parse_mx(p.b, p.n, &info, mx, 2), 2);
    for (size_t len = 0; len < p.n; len++) {
        uint8_t *copy = malloc(len ? len : 1);       /* exact size: ASan sees overreads */
        assert_non_null(copy);
        memcpy(copy, p.b, len);
        int n = dns_parse_mx(copy, len, &info, mx, 2);
        free(copy);
        if (n != VL_E_PROTO)
            fail_msg("prefix of %zu/%zu bytes parsed as %d", len, p.n, n);
    }
}

struct name_case { const char *label; uint8_t wire[40]; size_t len; size_t off; int want; const char *text; size_t next; };

static const struct name_case name_cases[] = {
    { "root",          { 0 },                                  1, 0,  0, "",        1 },
    { "one label",     { 2, 'A', 'b', 0 },                     4, 0,  2, "ab",      4 },
    { "two labels",    { 1, 'a', 2, 'b', 'c', 0 },             6, 0,  4, "a.bc",    6 },
    { "pointer back",  { 1, 'a', 0, 1, 'b', 0xC0, 0 },         7, 3,  3, "b.a",     7 },
    { "self pointer",  { 0xC0, 0 },                            2, 0, VL_E_PROTO, "", 0 },
    { "fwd pointer",   { 0xC0, 2, 1, 'a', 0 },                 5, 0, VL_E_PROTO, "", 0 },
    { "loop",          { 1, 'a', 0xC0, 0 },                    4, 0, VL_E_PROTO, "", 0 },
    { "label past end",{ 5, 'a', 'b' },                        3, 0, VL_E_PROTO, "", 0 },
    { "no terminator", { 1, 'a' },                             2, 0, VL_E_PROTO, "", 0 },
    { "half pointer",  { 1, 'a', 0, 0xC0 },                    4, 3, VL_E_PROTO, "", 0 },
    { "ext label",     { 0x41, 'a', 0 },                       3, 0, VL_E_PROTO, "", 0 },
    { "bad byte",      { 1, '/', 0 },                          3, 0, VL_E_PROTO, "", 0 },
    { "underscore ok", { 4, '_', 't', 'c', 'p', 0 },           6, 0,  4, "_tcp",    6 },
};

static void test_name_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof name_cases / sizeof name_cases[0]; i++) {
        const struct name_case *c = &name_cases[i];
        char out[DNS_NAME_TEXT_BYTES_MAX + 1];
        size_t next = 999;
        int rc = dns_parse_name(c->wire, c->len, c->off, out, &next);
        if (rc != c->want)
            fail_msg("%s: rc %d, want %d", c->label, rc, c->want);
        if (rc >= 0) {
            assert_string_equal(out, c->text);
            assert_int_equal(next, c->next);
        }
    }
}

static void test_name_length_limit(void **state)
{
    (void)state;
    /* 4 labels of 63 = 256 wire bytes with the root: one too many. */
    uint8_t wire[300];
    size_t n = 0;
    for (int l = 0; l < 4; l++) {
        wire[n++] = 63;
        memset(wire + n, 'a', 63);
        n += 63;
    }
    wire[n++] = 0;
    char out[DNS_NAME_TEXT_BYTES_MAX + 1];
    size_t next;
    assert_int_equal(dns_parse_name(wire, n, 0, out, &next), VL_E_PROTO);
    /* 3 x 63 + 61: 255 wire bytes, 253 text: the largest legal name. */
    n = 0;
    for (int l = 0; l < 4; l++) {
        uint8_t ll = l < 3 ? 63 : 61;
        wire[n++] = ll;
        memset(wire + n, 'a', ll);
        n += ll;
    }
    wire[n++] = 0;
    assert_int_equal(n, 255);
    assert_int_equal(dns_parse_name(wire, n, 0, out, &next), 253);
    assert_int_equal(strlen(out), 253);
}

/* ---- A / AAAA ---- */

static void test_addr_cname_chain(void **state)
{
    (void)state;
    struct pk p;
    put_header(&p, RESP, 1, 3, 0);
    put_question(&p, "www.example.org", DNS_TYPE_A);
    put_rr_head(&p, DNS_TYPE_CNAME, 30, 6);          /* www -> host.<ptr> */
    put8(&p, 4); put8(&p, 'h'); put8(&p, 'o'); put8(&p, 's'); put8(&p, 't'); put8(&p, 0);
    put_rr_head(&p, DNS_TYPE_A, 300, 4);
    put8(&p, 192); put8(&p, 0); put8(&p, 2); put8(&p, 7);
    put_rr_head(&p, DNS_TYPE_A, 200, 3);             /* bad rdlength: skipped */
    put8(&p, 1); put8(&p, 2); put8(&p, 3);
    struct dns_rr_addr a[4];
    struct dns_parse_info info;
    assert_int_equal(dns_parse_addr(p.b, p.n, DNS_TYPE_A, &info, a, 4), 1);
    assert_int_equal(a[0].family, 4);
    assert_int_equal(a[0].ttl_s, 300);
    static const uint8_t want[4] = { 192, 0, 2, 7 };
    assert_memory_equal(a[0].bytes, want, 4);
    assert_int_equal(info.ttl_s_min, 30);            /* the CNAME bounds it */
    assert_int_equal(info.found, 2);
    assert_int_equal(info.skipped, 1);
}

static void test_addr_aaaa(void **state)
{
    (void)state;
    struct pk p;
    put_header(&p, RESP, 1, 2, 0);
    put_question(&p, "mx.example.org", DNS_TYPE_AAAA);
    static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
    for (int i = 0; i < 2; i++) {
        put_rr_head(&p, DNS_TYPE_AAAA, (uint32_t)(100 + i), 16);
        for (int j = 0; j < 16; j++)
            put8(&p, (uint8_t)(v6[j] + i));
    }
    struct dns_rr_addr a[2];
    struct dns_parse_info info;
    assert_int_equal(dns_parse_addr(p.b, p.n, DNS_TYPE_AAAA, &info, a, 2), 2);
    assert_int_equal(a[0].family, 6);
    assert_memory_equal(a[0].bytes, v6, 16);
    assert_int_equal(a[1].bytes[15], 2);
    assert_int_equal(info.ttl_s_min, 100);
}

/* ---- random mutations: no crash, results within bounds ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_mutations(void **state)
{
    (void)state;
    const char *env = getenv("VOLLEY_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed0dd5ull;
    if (seed == 0)
        seed = 1;
    uint64_t s = seed;
    struct pk base;
    put_header(&base, RESP, 1, 2, 1);
    put_question(&base, "example.org", DNS_TYPE_MX);
    put_mx(&base, 300, 10, "mx1.example.org");
    put_mx(&base, 300, 20, "mx2.example.org");
    put_soa(&base, 60, 60);
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t buf[1024];
        memcpy(buf, base.b, base.n);
        int flips = 1 + (int)(rng_next(&s) % 4);
        for (int f = 0; f < flips; f++)
            buf[rng_next(&s) % base.n] = (uint8_t)rng_next(&s);
        size_t len = base.n - rng_next(&s) % 4;
        struct dns_rr_mx mx[3];
        struct dns_parse_info info;
        int n = dns_parse_mx(buf, len, &info, mx, 3);
        if (n != VL_E_PROTO && (n < 0 || n > 3))
            fail_msg("seed %llu iter %d: n=%d", (unsigned long long)seed, iter, n);
        for (int i = 0; i < n; i++)
            assert_true(strlen(mx[i].host) <= DNS_NAME_TEXT_BYTES_MAX);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mx_basic),
        cmocka_unit_test(test_mx_compressed_target),
        cmocka_unit_test(test_mx_null),
        cmocka_unit_test(test_mx_cap_and_skips),
        cmocka_unit_test(test_negative_ttl_table),
        cmocka_unit_test(test_servfail_no_sections),
        cmocka_unit_test(test_reject_query_and_wrong_type),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_name_table),
        cmocka_unit_test(test_name_length_limit),
        cmocka_unit_test(test_addr_cname_chain),
        cmocka_unit_test(test_addr_aaaa),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
