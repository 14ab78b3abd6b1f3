/*
 * ip_class.c - classify an IP address for the destination policy (see
 * ip_class.h for the sources of each range). Table-driven: one row per range.
 */
#include "ip_class.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

struct ip_range {
    uint8_t prefix[16];
    uint8_t bits;
    enum vl_ip_class cls;
};

static const struct ip_range v4_ranges[] = {
    { { 0 },             8,  VL_IP_UNSPECIFIED },  /* RFC 1122: "this network" */
    { { 127 },           8,  VL_IP_LOOPBACK },
    { { 10 },            8,  VL_IP_PRIVATE },
    { { 172, 16 },       12, VL_IP_PRIVATE },
    { { 192, 168 },      16, VL_IP_PRIVATE },
    { { 100, 64 },       10, VL_IP_PRIVATE },      /* RFC 6598 shared (CGNAT) */
    { { 169, 254 },      16, VL_IP_LINK_LOCAL },
    { { 224 },           4,  VL_IP_MULTICAST },
    { { 240 },           4,  VL_IP_RESERVED },     /* and 255.255.255.255 */
    { { 192, 0, 0 },     24, VL_IP_RESERVED },     /* RFC 6890 IETF protocol assignments */
    { { 192, 0, 2 },     24, VL_IP_RESERVED },     /* RFC 5737 TEST-NET-1 */
    { { 198, 51, 100 },  24, VL_IP_RESERVED },     /* RFC 5737 TEST-NET-2 */
    { { 203, 0, 113 },   24, VL_IP_RESERVED },     /* RFC 5737 TEST-NET-3 */
    { { 198, 18 },       15, VL_IP_RESERVED },     /* RFC 2544 benchmarking */
};

static const struct ip_range v6_ranges[] = {
    { { 0 },                      128, VL_IP_UNSPECIFIED },  /* :: */
    { { [15] = 1 },               128, VL_IP_LOOPBACK },     /* ::1 */
    { { 0xfc },                   7,   VL_IP_PRIVATE },      /* RFC 4193 ULA */
    { { 0xfe, 0x80 },             10,  VL_IP_LINK_LOCAL },
    { { 0xff },                   8,   VL_IP_MULTICAST },
    { { 0x20, 0x01, 0x0d, 0xb8 }, 32,  VL_IP_RESERVED },     /* RFC 3849 documentation */
    { { 0x01 },                   64,  VL_IP_RESERVED },     /* RFC 6666 discard 100::/64 */
};

static bool ip_in(const uint8_t *a, const struct ip_range *r)
{
    unsigned full = r->bits / 8u, rest = r->bits % 8u;
    if (memcmp(a, r->prefix, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8u - rest));
    return (a[full] & mask) == (r->prefix[full] & mask);
}

static enum vl_ip_class ip_match(const uint8_t *a, const struct ip_range *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ip_in(a, &t[i]))
            return t[i].cls;
    return VL_IP_PUBLIC;
}

enum vl_ip_class vl_ip_classify(int family, const void *addr)
{
    const uint8_t *a = addr;
    if (family == AF_INET)
        return ip_match(a, v4_ranges, sizeof v4_ranges / sizeof v4_ranges[0]);
    if (family != AF_INET6)
        return VL_IP_RESERVED;
    static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
    if (memcmp(a, mapped, sizeof mapped) == 0)     /* ::ffff:a.b.c.d */
        return ip_match(a + 12, v4_ranges, sizeof v4_ranges / sizeof v4_ranges[0]);
    return ip_match(a, v6_ranges, sizeof v6_ranges / sizeof v6_ranges[0]);
}

enum vl_ip_class vl_ip_classify_text(const char *ip)
{
    uint8_t a[16];
    if (inet_pton(AF_INET, ip, a) == 1)
        return vl_ip_classify(AF_INET, a);
    if (inet_pton(AF_INET6, ip, a) == 1)
        return vl_ip_classify(AF_INET6, a);
    return VL_IP_RESERVED;
}

const char *vl_ip_class_name(enum vl_ip_class c)
{
    switch (c) {
    case VL_IP_PUBLIC:      return "public";
    case VL_IP_LOOPBACK:    return "loopback";
    case VL_IP_PRIVATE:     return "private";
    case VL_IP_LINK_LOCAL:  return "link-local";
    case VL_IP_UNSPECIFIED: return "unspecified";
    case VL_IP_MULTICAST:   return "multicast";
    case VL_IP_RESERVED:    return "reserved";
    }
    return "reserved";
}

enum vl_ip_class vl_ip_classify_sa(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return vl_ip_classify(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family == AF_INET6)
        return vl_ip_classify(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr);
    return VL_IP_RESERVED;
}

bool vl_ip_dest_allowed(uint32_t allow, enum vl_ip_class c)
{
    if (c == VL_IP_PUBLIC)
        return true;
    if (c == VL_IP_UNSPECIFIED || c == VL_IP_MULTICAST)
        return false;              /* whatever --allow-dest says */
    return (allow & VL_IP_ALLOW(c)) != 0;
}

int vl_ip_allow_parse(const char *list, uint32_t *allow, const char **why)
{
    static const struct { const char *name; uint32_t bits; } names[] = {
        { "loopback", VL_IP_ALLOW(VL_IP_LOOPBACK) },
        { "private", VL_IP_ALLOW(VL_IP_PRIVATE) },
        { "link-local", VL_IP_ALLOW(VL_IP_LINK_LOCAL) },
        { "reserved", VL_IP_ALLOW(VL_IP_RESERVED) },
        { "any", VL_IP_ALLOW_ANY },
    };
    uint32_t bits = 0;
    const char *p = list;
    for (unsigned n = 0; n < 64; n++) {        /* words in one value, bounded */
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        size_t k = 0;
        while (k < sizeof names / sizeof names[0]
               && !(strlen(names[k].name) == len && !memcmp(names[k].name, p, len)))
            k++;
        if (k == sizeof names / sizeof names[0]) {
            bool never = (len == 9 && !memcmp(p, "multicast", 9))
                         || (len == 11 && !memcmp(p, "unspecified", 11));
            *why = never ? "unspecified and multicast destinations are never allowed"
                         : "expected a comma list of loopback, private, link-local, reserved "
                           "or any";
            return -1;
        }
        bits |= names[k].bits;
        if (!end) {
            *allow |= bits;
            return 0;
        }
        p = end + 1;
    }
    *why = "too many classes";
    return -1;
}
