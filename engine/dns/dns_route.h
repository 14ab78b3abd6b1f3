/*
 * dns_route.h - internal to dns.c: config defaults, the --dns list, the static
 * route table (--route DOMAIN=HOST:PORT, '*' = every domain) and the list of
 * our own host names and addresses (MX loop detection). No I/O, no clock.
 * HOST:PORT itself is parsed by vl_hostport_parse (volley/hostport.h).
 */
#ifndef VOLLEY_DNS_ROUTE_H
#define VOLLEY_DNS_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns_result.h"
#include "dns_parse.h"

_Static_assert(VL_HOSTPORT_HOST_BYTES_MAX == DNS_NAME_TEXT_BYTES_MAX, "a route host is a name");

/** Parse the --dns list "IP[:PORT][,IP[:PORT]...]" (port 53 by default, no
 *  names). @return 0 and *@p count >= 1, or VL_E_INVALID with *@p why. */
int dns_servers_parse(const char *list, struct vl_hostport out[VL_DNS_SERVERS_MAX],
                      size_t *count, const char **why);

/** An address-literal domain ("[192.0.2.1]", "[IPv6:2001:db8::1]", lower or
 *  upper case) as an address with @p port. @return 0 or VL_E_INVALID. */
int dns_literal_parse(const char *key, uint16_t port, struct vl_hostport *hp);

struct dns_route {
    char domain[DNS_NAME_TEXT_BYTES_MAX + 1];  /* lower case, or "*" */
    struct vl_hostport to;
};

struct dns_routes {
    uint32_t count, cap;
    struct dns_route *r;
    int32_t star;                              /* index of '*', or -1 */
};

void dns_routes_init(struct dns_routes *rt);
void dns_routes_fini(struct dns_routes *rt);
/** Add or replace the route of @p domain to @p to (parsed: vl_hostport_parse).
 *  @return 0, VL_E_INVALID (*@p why), VL_E_TOOBIG, -ENOMEM. */
int dns_routes_put(struct dns_routes *rt, const char *domain, const struct vl_hostport *to,
                   const char **why);
/** dns_routes_put() of @p hostport text ("HOST:PORT", port required). */
int dns_routes_add(struct dns_routes *rt, const char *domain, const char *hostport,
                   const char **why);
/** The route for @p domain (lower case): its own, else '*', else NULL. */
const struct dns_route *dns_routes_find(const struct dns_routes *rt, const char *domain);

struct dns_own {
    size_t names_count, addrs_count;
    char (*names)[DNS_NAME_TEXT_BYTES_MAX + 1];
    struct dns_rr_addr *addrs;
};

/** Each entry an IP address or a host name. @return 0, VL_E_INVALID, -ENOMEM. */
int dns_own_init(struct dns_own *own, const char *const *list, size_t n, const char **why);
void dns_own_fini(struct dns_own *own);
bool dns_own_name(const struct dns_own *own, const char *host);
bool dns_own_addr(const struct dns_own *own, const struct dns_rr_addr *a);

#endif
