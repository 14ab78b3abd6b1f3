/*
 * dns_parse_fuzz.c - the raw DNS answer parser (engine/dns/dns_parse.h).
 *
 * Input: a DNS message (ASan catches any read outside it). It is parsed as an
 * answer to MX, A and AAAA, and names are read at the question and at a few
 * offsets. Invariants: counts within bounds (stored <= max, skipped <= found);
 * MX hosts are lower-case host names of at most 253 bytes (letters, digits,
 * '-', '_', dots between non-empty labels); A is 4 bytes, AAAA 16, zero
 * padded; ttl_s_min bounds every kept TTL and no TTL has its top bit set; a
 * smaller max stores a prefix of the same records.
 */
#include <string.h>

#include "dns_parse.h"
#include "fuzz.h"
#include "volley/error.h"

#define RR_MAX 24u

static void check_info(const struct dns_parse_info *info, int n)
{
    FUZZ_CHECK(info->skipped <= info->found);
    FUZZ_CHECK((uint32_t)n + info->skipped <= info->found);
    if (info->has_soa)
        FUZZ_CHECK(info->ttl_s_negative < 0x80000000u);
    else
        FUZZ_CHECK(info->ttl_s_negative == 0);
}

static void check_name(const char *h, int len)
{
    FUZZ_CHECK(len >= 0 && len <= (int)DNS_NAME_TEXT_BYTES_MAX && h[len] == '\0');
    FUZZ_CHECK((int)strlen(h) == len);
    for (int i = 0; i < len; i++) {
        char c = h[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
                  || (c == '.' && i > 0 && i + 1 < len && h[i - 1] != '.');
        FUZZ_CHECK(ok);
    }
}

static void fuzz_mx(const uint8_t *d, size_t size)
{
    static struct dns_rr_mx mx[RR_MAX], few[2];
    struct dns_parse_info info, info2;
    int n = dns_parse_mx(d, size, &info, mx, RR_MAX);
    int m = dns_parse_mx(d, size, &info2, few, 2);
    FUZZ_CHECK((n < 0) == (m < 0));
    if (n < 0) {
        FUZZ_CHECK(n == VL_E_PROTO);
        return;
    }
    FUZZ_CHECK(n <= (int)RR_MAX && m == (n < 2 ? n : 2));
    FUZZ_CHECK(info.qtype == DNS_TYPE_MX);
    FUZZ_CHECK(info.found == info2.found && info.skipped == info2.skipped);
    check_info(&info, n);
    for (int i = 0; i < n; i++) {
        check_name(mx[i].host, (int)strlen(mx[i].host));
        FUZZ_CHECK(mx[i].ttl_s < 0x80000000u && mx[i].ttl_s >= info.ttl_s_min);
        if (i < m)
            FUZZ_CHECK(mx[i].pref == few[i].pref && mx[i].ttl_s == few[i].ttl_s
                       && strcmp(mx[i].host, few[i].host) == 0);
    }
}

static void fuzz_addr(const uint8_t *d, size_t size, uint16_t qtype)
{
    static struct dns_rr_addr a[RR_MAX], few[1];
    struct dns_parse_info info, info2;
    int n = dns_parse_addr(d, size, qtype, &info, a, RR_MAX);
    int m = dns_parse_addr(d, size, qtype, &info2, few, 1);
    FUZZ_CHECK((n < 0) == (m < 0));
    if (n < 0) {
        FUZZ_CHECK(n == VL_E_PROTO);
        return;
    }
    FUZZ_CHECK(n <= (int)RR_MAX && m == (n < 1 ? n : 1));
    FUZZ_CHECK(info.qtype == qtype);
    check_info(&info, n);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(a[i].family == (qtype == DNS_TYPE_A ? 4 : 6));
        FUZZ_CHECK(a[i].ttl_s < 0x80000000u && a[i].ttl_s >= info.ttl_s_min);
        if (qtype == DNS_TYPE_A)
            for (int k = 4; k < 16; k++)
                FUZZ_CHECK(a[i].bytes[k] == 0);
    }
    if (m == 1)
        FUZZ_CHECK(memcmp(&a[0], &few[0], sizeof a[0]) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_INPUT_MAX)
        return 0;
    fuzz_mx(data, size);
    fuzz_addr(data, size, DNS_TYPE_A);
    fuzz_addr(data, size, DNS_TYPE_AAAA);
    /* Names at the question and at offsets named by the first two bytes. */
    size_t offs[3] = { DNS_HEADER_BYTES, 0, 0 };
    if (size >= 2) {
        offs[1] = data[0] % (size + 1);
        offs[2] = data[1] % (size + 1);
    }
    for (int i = 0; i < 3; i++) {
        char name[DNS_NAME_TEXT_BYTES_MAX + 1];
        size_t next = (size_t)-1;
        int rc = dns_parse_name(data, size, offs[i], name, &next);
        if (rc < 0) {
            FUZZ_CHECK(rc == VL_E_PROTO && name[0] == '\0');
            continue;
        }
        check_name(name, rc);
        FUZZ_CHECK(next > offs[i] && next <= size);
    }
    return 0;
}
