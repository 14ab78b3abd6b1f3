/*
 * dns_result.h - the value types of a resolver answer (struct dns_result and
 * the addresses it carries), shared by the resolver (dns.h), its cache
 * (dns_cache.h) and static routes (dns_route.h). Data only: no functions, no
 * c-ares, so the pure cache can include it without the resolver.
 *
 * Ownership: a dns_result and everything it points to live in one blob
 * (dns_cache.h); see dns.h for who may keep it and how long.
 */
#ifndef VOLLEY_DNS_RESULT_H
#define VOLLEY_DNS_RESULT_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "volley/hostport.h"   /* union vl_sockaddr: an address to connect to */
#include "volley/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

enum dns_status {
    DNS_OK = 0,      /* mx[] holds at least one host with at least one address */
    DNS_DEFER,       /* temporary: retry later (4.4.3, 4.4.4) */
    DNS_BOUNCE,      /* permanent: 5.1.2, 5.1.10, 5.4.4, 5.4.6 */
};

struct dns_mx {
    char     host[VL_SMTP_DOMAIN_BYTES_MAX + 1];   /* lower case, no trailing dot */
    uint16_t pref;
    uint16_t addr_count;                           /* >= 1 in a DNS_OK result */
    union vl_sockaddr *addrs;   /* IPv4 first, then IPv6; the port is already set */
};

struct dns_result {
    enum dns_status status;
    uint16_t smtp_code;         /* 0 for DNS_OK; 451 defer; 550 / 556 (null MX) bounce */
    const char *enhanced;       /* "4.4.3" ...; "2.0.0" for DNS_OK (static) */
    const char *reason;         /* short English text (static) */
    const char *domain;         /* as asked, lower case ("" in the out-of-memory deferral) */
    uint32_t ttl_s;             /* as received (not what remains), before the floor;
                                   0 for routes and deferrals */
    bool from_cache;            /* served without a query */
    bool routed;                /* a static --route, no DNS */
    bool implicit_mx;           /* no MX record: the domain's own addresses */
    uint16_t mx_count;          /* hosts, best preference first */
    struct dns_mx *mx;
};

#ifdef __cplusplus
}
#endif
#endif
