/*
 * dns_parse.c - raw DNS answers -> MX / A / AAAA records with TTLs, and the
 * RFC 2308 negative TTL from the authority section's SOA. Pure (see
 * dns_parse.h for the contract).
 *
 * Invariants: every read is bounds-checked against len before it happens; a
 * compression pointer must point before the label that holds it, so a name
 * walk ends in at most len steps; a TTL with the top bit set counts as 0
 * (RFC 2181 8).
 */
#include "dns_parse.h"

#include <string.h>

#include "volley/error.h"

#define NAME_ERR_MALFORMED (-1)
#define NAME_ERR_CHARS     (-2)

/* The parts of a resource record the walkers need. */
struct rr {
    uint16_t type;
    uint16_t klass;
    uint32_t ttl_s;
    size_t   rdata_off;
    uint16_t rdlength;
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool label_byte_ok(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '-' || c == '_';
}

/* Walk the name at off. With out, copy it as lower-case text; with strict,
 * refuse label bytes a host name cannot hold (checked even without out). */
static int name_read(const uint8_t *buf, size_t len, size_t off, char *out, bool strict,
                     size_t *next)
{
    size_t pos = off, text = 0, wire = 1;      /* wire: bytes of the uncompressed form */
    size_t floor = off;                        /* a pointer must go below this */
    bool jumped = false, bad_chars = false;

    for (;;) {
        if (pos >= len)
            return NAME_ERR_MALFORMED;
        uint8_t l = buf[pos];
        if ((l & 0xC0) == 0xC0) {
            if (pos + 1 >= len)
                return NAME_ERR_MALFORMED;
            size_t target = (size_t)(l & 0x3F) << 8 | buf[pos + 1];
            if (target >= floor)
                return NAME_ERR_MALFORMED;      /* forward or self pointer: maybe a loop */
            if (!jumped)
                *next = pos + 2;
            jumped = true;
            floor = target;
            pos = target;
            continue;
        }
        if (l & 0xC0)
            return NAME_ERR_MALFORMED;          /* 0x40/0x80: obsolete label types */
        if (l == 0)
            break;
        if (pos + 1 + l > len)
            return NAME_ERR_MALFORMED;
        wire += 1u + l;
        if (wire > VL_DNS_NAME_BYTES_MAX)
            return NAME_ERR_MALFORMED;
        for (size_t i = 0; i < l; i++) {
            uint8_t c = buf[pos + 1 + i];
            if (strict && !label_byte_ok(c))
                bad_chars = true;
            if (out) {
                if (text > 0 && i == 0)
                    out[text++] = '.';
                out[text++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
            }
        }
        pos += 1u + l;
    }
    if (!jumped)
        *next = pos + 1;
    if (out)
        out[text] = '\0';
    if (bad_chars)
        return NAME_ERR_CHARS;
    return (int)text;
}

int dns_parse_name(const uint8_t *buf, size_t len, size_t off,
                   char out[DNS_NAME_TEXT_BYTES_MAX + 1], size_t *next)
{
    size_t n = 0;
    int rc = name_read(buf, len, off, out, true, &n);
    if (rc < 0) {
        out[0] = '\0';
        return VL_E_PROTO;
    }
    vl_assert((size_t)rc <= DNS_NAME_TEXT_BYTES_MAX);
    *next = n;
    return rc;
}

/* Read one RR header at *pos and step *pos past the whole record. */
static int rr_read(const uint8_t *buf, size_t len, size_t *pos, struct rr *rr)
{
    size_t p = 0;
    if (name_read(buf, len, *pos, NULL, false, &p) < 0)
        return VL_E_PROTO;
    if (p + 10 > len)
        return VL_E_PROTO;
    rr->type = rd16(buf + p);
    rr->klass = rd16(buf + p + 2);
    rr->ttl_s = rd32(buf + p + 4);
    if (rr->ttl_s & 0x80000000u)
        rr->ttl_s = 0;                          /* RFC 2181 8 */
    rr->rdlength = rd16(buf + p + 8);
    rr->rdata_off = p + 10;
    if (rr->rdata_off + rr->rdlength > len)
        return VL_E_PROTO;
    *pos = rr->rdata_off + rr->rdlength;
    return 0;
}

/* Header and question; leaves *pos at the answer section. */
static int header_read(const uint8_t *buf, size_t len, struct dns_parse_info *info,
                       size_t *pos, uint16_t *ancount, uint16_t *nscount)
{
    memset(info, 0, sizeof *info);
    info->ttl_s_min = UINT32_MAX;
    if (len < DNS_HEADER_BYTES)
        return VL_E_PROTO;
    info->id = rd16(buf);
    uint16_t flags = rd16(buf + 2);
    if (!(flags & 0x8000u))
        return VL_E_PROTO;                      /* QR clear: a query, not a response */
    info->truncated = (flags & 0x0200u) != 0;
    info->rcode = (uint8_t)(flags & 0x000Fu);
    uint16_t qdcount = rd16(buf + 4);
    *ancount = rd16(buf + 6);
    *nscount = rd16(buf + 8);
    if (qdcount > 1)
        return VL_E_PROTO;                      /* no server sends more than one */
    *pos = DNS_HEADER_BYTES;
    if (qdcount == 1) {
        size_t p = 0;
        if (name_read(buf, len, *pos, NULL, false, &p) < 0 || p + 4 > len)
            return VL_E_PROTO;
        info->qtype = rd16(buf + p);
        *pos = p + 4;
    }
    return 0;
}

/* Authority section: the SOA gives the negative TTL (RFC 2308 5). */
static int authority_read(const uint8_t *buf, size_t len, size_t pos, uint16_t nscount,
                          struct dns_parse_info *info)
{
    for (uint16_t i = 0; i < nscount; i++) {
        struct rr rr;
        if (rr_read(buf, len, &pos, &rr) < 0)
            return VL_E_PROTO;
        if (rr.type != DNS_TYPE_SOA || info->has_soa)
            continue;
        size_t p = 0, q = 0;
        if (name_read(buf, len, rr.rdata_off, NULL, false, &p) < 0
            || name_read(buf, len, p, NULL, false, &q) < 0
            || q + 20 != rr.rdata_off + rr.rdlength)
            return VL_E_PROTO;
        uint32_t minimum = rd32(buf + q + 16);
        if (minimum & 0x80000000u)
            minimum = 0;
        info->has_soa = true;
        info->ttl_s_negative = rr.ttl_s < minimum ? rr.ttl_s : minimum;
    }
    return 0;
}

static void ttl_note(struct dns_parse_info *info, uint32_t ttl_s)
{
    if (ttl_s < info->ttl_s_min)
        info->ttl_s_min = ttl_s;
}

int dns_parse_mx(const uint8_t *buf, size_t len, struct dns_parse_info *info,
                 struct dns_rr_mx *out, size_t max)
{
    size_t pos = 0;
    uint16_t ancount = 0, nscount = 0;
    if (header_read(buf, len, info, &pos, &ancount, &nscount) < 0)
        return VL_E_PROTO;
    if (info->qtype != DNS_TYPE_MX)
        return VL_E_PROTO;
    size_t kept = 0;
    for (uint16_t i = 0; i < ancount; i++) {
        struct rr rr;
        if (rr_read(buf, len, &pos, &rr) < 0)
            return VL_E_PROTO;
        if (rr.type == DNS_TYPE_CNAME)
            ttl_note(info, rr.ttl_s);
        if (rr.type != DNS_TYPE_MX || rr.klass != 1)
            continue;
        info->found++;
        size_t next = 0;
        char host[DNS_NAME_TEXT_BYTES_MAX + 1];
        if (rr.rdlength < 3 || name_read(buf, len, rr.rdata_off + 2, host, true, &next) < 0
            || next != rr.rdata_off + rr.rdlength) {
            info->skipped++;
            continue;
        }
        if (kept >= max)
            continue;
        out[kept].pref = rd16(buf + rr.rdata_off);
        out[kept].ttl_s = rr.ttl_s;
        memcpy(out[kept].host, host, strlen(host) + 1);
        ttl_note(info, rr.ttl_s);
        kept++;
    }
    if (authority_read(buf, len, pos, nscount, info) < 0)
        return VL_E_PROTO;
    vl_assert(kept <= max);
    return (int)kept;
}

int dns_parse_addr(const uint8_t *buf, size_t len, uint16_t qtype,
                   struct dns_parse_info *info, struct dns_rr_addr *out, size_t max)
{
    vl_assert(qtype == DNS_TYPE_A || qtype == DNS_TYPE_AAAA);
    size_t pos = 0;
    uint16_t ancount = 0, nscount = 0;
    if (header_read(buf, len, info, &pos, &ancount, &nscount) < 0)
        return VL_E_PROTO;
    if (info->qtype != qtype)
        return VL_E_PROTO;
    const uint16_t rdlen_want = qtype == DNS_TYPE_A ? 4 : 16;
    size_t kept = 0;
    for (uint16_t i = 0; i < ancount; i++) {
        struct rr rr;
        if (rr_read(buf, len, &pos, &rr) < 0)
            return VL_E_PROTO;
        if (rr.type == DNS_TYPE_CNAME)
            ttl_note(info, rr.ttl_s);
        if (rr.type != qtype || rr.klass != 1)
            continue;
        info->found++;
        if (rr.rdlength != rdlen_want) {
            info->skipped++;
            continue;
        }
        if (kept >= max)
            continue;
        out[kept].ttl_s = rr.ttl_s;
        out[kept].family = qtype == DNS_TYPE_A ? 4 : 6;
        memset(out[kept].bytes, 0, sizeof out[kept].bytes);
        memcpy(out[kept].bytes, buf + rr.rdata_off, rdlen_want);
        ttl_note(info, rr.ttl_s);
        kept++;
    }
    if (authority_read(buf, len, pos, nscount, info) < 0)
        return VL_E_PROTO;
    vl_assert(kept <= max);
    return (int)kept;
}
