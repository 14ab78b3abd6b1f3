/*
 * dns_parse.h - raw DNS answers (RFC 1035 wire format) -> MX and address
 * records with their TTLs, and the negative-caching TTL from the SOA in the
 * authority section (RFC 2308). Pure: no I/O, no clock, no allocation, no
 * c-ares; the caller owns every buffer.
 *
 * Why: c-ares 1.18's ares_parse_mx_reply drops the TTL and
 * ares_parse_soa_reply ignores the authority section, so the resolver cache
 * (dns.c) reads both itself from the bytes c-ares hands over.
 *
 * Invariants: never reads outside [buf, buf+len); a compression pointer must
 * point strictly backwards (no loops); names come out as lower-case text
 * without the trailing dot ("" is the root), at most 253 bytes.
 * Diagnostics: never logs; a malformed message is VL_E_PROTO, an unusable
 * record (bad host name, wrong length) is skipped and counted.
 */
#ifndef VOLLEY_DNS_PARSE_H
#define VOLLEY_DNS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volley/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dns_type {
    DNS_TYPE_A     = 1,
    DNS_TYPE_CNAME = 5,
    DNS_TYPE_SOA   = 6,
    DNS_TYPE_MX    = 15,
    DNS_TYPE_AAAA  = 28,
};

enum dns_rcode {
    DNS_RCODE_NOERROR  = 0,
    DNS_RCODE_FORMERR  = 1,
    DNS_RCODE_SERVFAIL = 2,
    DNS_RCODE_NXDOMAIN = 3,
    DNS_RCODE_NOTIMP   = 4,
    DNS_RCODE_REFUSED  = 5,
};

#define DNS_HEADER_BYTES 12u
#define DNS_NAME_TEXT_BYTES_MAX (VL_DNS_NAME_BYTES_MAX - 2u)   /* 253: no trailing dot */

/** One MX record. host "" is the root: a null MX (RFC 7505) when alone at preference 0. */
struct dns_rr_mx {
    uint16_t pref;
    uint32_t ttl_s;
    char     host[DNS_NAME_TEXT_BYTES_MAX + 1];
};

/** One A (family 4, 4 bytes) or AAAA (family 6, 16 bytes) record, network order. */
struct dns_rr_addr {
    uint32_t ttl_s;
    uint8_t  family;
    uint8_t  bytes[16];
};

/** What the whole message said, besides the records. */
struct dns_parse_info {
    uint16_t id;
    uint8_t  rcode;          /* enum dns_rcode (4-bit RCODE, no EDNS extension) */
    bool     truncated;      /* TC bit */
    uint16_t qtype;          /* of the (single) question; 0 if none */
    uint32_t found;          /* answer records of the asked type, kept or not */
    uint32_t skipped;        /* of those, unusable (bad name or rdata) */
    uint32_t ttl_s_min;      /* min TTL over kept records and the CNAMEs met; UINT32_MAX if none */
    bool     has_soa;        /* an SOA was in the authority section */
    uint32_t ttl_s_negative; /* RFC 2308: min(SOA TTL, SOA MINIMUM); 0 without SOA */
};

/** Parse an answer to an MX query. Stores up to @p max records in @p out, in
 *  wire order (the caller sorts). Thread: any (pure).
 *  @return records stored (>= 0), or VL_E_PROTO if the message is malformed
 *  or its question is not of type MX. @p info is filled in either case as far
 *  as parsing got. */
int dns_parse_mx(const uint8_t *buf, size_t len, struct dns_parse_info *info,
                 struct dns_rr_mx *out, size_t max);

/** Parse an answer to an A (@p qtype DNS_TYPE_A) or AAAA query. Stores up to
 *  @p max records in @p out, in wire order. CNAMEs in the answer are
 *  followed implicitly: every record of @p qtype is taken, and the CNAMEs'
 *  TTLs bound ttl_s_min. Thread: any (pure).
 *  @return records stored (>= 0), or VL_E_PROTO (malformed, or question of
 *  another type). */
int dns_parse_addr(const uint8_t *buf, size_t len, uint16_t qtype,
                   struct dns_parse_info *info, struct dns_rr_addr *out, size_t max);

/** Read the (possibly compressed) name at @p off into @p out as lower-case
 *  text without the trailing dot. On success sets *@p next to the offset just
 *  past the name in place (not past any pointer target).
 *  @return text length (>= 0), or VL_E_PROTO (out of bounds, pointer loop,
 *  too long, or a label byte outside letters, digits, '-' and '_'). */
int dns_parse_name(const uint8_t *buf, size_t len, size_t off,
                   char out[DNS_NAME_TEXT_BYTES_MAX + 1], size_t *next);

#ifdef __cplusplus
}
#endif
#endif
