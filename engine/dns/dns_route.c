/*
 * dns_route.c - the --dns list, static routes, own host list (see
 * dns_route.h). Invariants: routes hold validated, lower-case domains; at
 * most one route per domain (a later add replaces); count <= VL_ROUTES_MAX.
 */
#include "dns_route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "volley/addr.h"
#include "volley/error.h"

static void lower_copy(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)((src[i] >= 'A' && src[i] <= 'Z') ? src[i] + 32 : src[i]);
    dst[n] = '\0';
}

void dns_routes_init(struct dns_routes *rt)
{
    memset(rt, 0, sizeof *rt);
    rt->star = -1;
}

void dns_routes_fini(struct dns_routes *rt)
{
    free(rt->r);
    dns_routes_init(rt);
}

int dns_routes_add(struct dns_routes *rt, const char *domain, const char *hostport,
                   const char **why)
{
    struct vl_hostport to;
    if (vl_hostport_parse(hostport, 0, true, &to, why) < 0)
        return VL_E_INVALID;
    return dns_routes_put(rt, domain, &to, why);
}

int dns_routes_put(struct dns_routes *rt, const char *domain, const struct vl_hostport *to,
                   const char **why)
{
    struct dns_route r;
    size_t dl = domain ? strlen(domain) : 0;
    if (dl == 0 || dl > DNS_NAME_TEXT_BYTES_MAX) {
        *why = "route domain is empty or too long";
        return VL_E_INVALID;
    }
    if (strcmp(domain, "*") != 0 && vl_domain_check(domain, dl, why) < 0)
        return VL_E_INVALID;
    lower_copy(r.domain, domain, dl);
    r.to = *to;
    for (uint32_t i = 0; i < rt->count; i++) {
        if (strcmp(rt->r[i].domain, r.domain) == 0) {
            rt->r[i] = r;
            return 0;
        }
    }
    if (rt->count >= VL_ROUTES_MAX) {
        *why = "too many routes";
        return VL_E_TOOBIG;
    }
    if (rt->count == rt->cap) {
        uint32_t cap = rt->cap ? rt->cap * 2 : 8;
        struct dns_route *nr = realloc(rt->r, cap * sizeof *nr);
        if (!nr)
            return -ENOMEM;
        rt->r = nr;
        rt->cap = cap;
    }
    if (r.domain[0] == '*')
        rt->star = (int32_t)rt->count;
    rt->r[rt->count++] = r;
    return 0;
}

const struct dns_route *dns_routes_find(const struct dns_routes *rt, const char *domain)
{
    for (uint32_t i = 0; i < rt->count; i++)
        if (strcmp(rt->r[i].domain, domain) == 0)
            return &rt->r[i];
    return rt->star >= 0 ? &rt->r[rt->star] : NULL;
}

int dns_own_init(struct dns_own *own, const char *const *list, size_t n, const char **why)
{
    memset(own, 0, sizeof *own);
    if (n == 0)
        return 0;
    own->names = calloc(n, sizeof *own->names);
    own->addrs = calloc(n, sizeof *own->addrs);
    if (!own->names || !own->addrs) {
        dns_own_fini(own);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = list[i];
        struct dns_rr_addr *a = &own->addrs[own->addrs_count];
        if (inet_pton(AF_INET, s, a->bytes) == 1) {
            a->family = 4;
            own->addrs_count++;
        } else if (inet_pton(AF_INET6, s, a->bytes) == 1) {
            a->family = 6;
            own->addrs_count++;
        } else {
            size_t l = strlen(s);
            if (l > 0 && s[l - 1] == '.')
                l--;                             /* accept a trailing dot */
            if (l == 0 || l > DNS_NAME_TEXT_BYTES_MAX || vl_domain_check(s, l, why) < 0) {
                *why = "own host is neither an IP address nor a host name";
                dns_own_fini(own);
                return VL_E_INVALID;
            }
            lower_copy(own->names[own->names_count++], s, l);
        }
    }
    return 0;
}

void dns_own_fini(struct dns_own *own)
{
    free(own->names);
    free(own->addrs);
    memset(own, 0, sizeof *own);
}

bool dns_own_name(const struct dns_own *own, const char *host)
{
    for (size_t i = 0; i < own->names_count; i++)
        if (strcmp(own->names[i], host) == 0)
            return true;
    return false;
}

bool dns_own_addr(const struct dns_own *own, const struct dns_rr_addr *a)
{
    for (size_t i = 0; i < own->addrs_count; i++)
        if (own->addrs[i].family == a->family
            && memcmp(own->addrs[i].bytes, a->bytes, a->family == 4 ? 4 : 16) == 0)
            return true;
    return false;
}

int dns_servers_parse(const char *list, struct vl_hostport out[VL_DNS_SERVERS_MAX],
                      size_t *count, const char **why)
{
    char buf[512];
    size_t n = 0, len = strlen(list);
    if (len >= sizeof buf) {
        *why = "--dns list is too long";
        return VL_E_INVALID;
    }
    memcpy(buf, list, len + 1);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == VL_DNS_SERVERS_MAX) {
            *why = "too many --dns servers (at most 4)";
            return VL_E_INVALID;
        }
        if (vl_hostport_parse(tok, 53, false, &out[n], why) < 0)
            return VL_E_INVALID;
        n++;
    }
    if (n == 0) {
        *why = "--dns needs an IP address";
        return VL_E_INVALID;
    }
    *count = n;
    return 0;
}

int dns_literal_parse(const char *key, uint16_t port, struct vl_hostport *hp)
{
    const char *why;
    size_t len = strlen(key);
    if (len < 3 || key[0] != '[' || key[len - 1] != ']')
        return VL_E_INVALID;
    const char *s = key + 1;
    if (strncasecmp(s, "ipv6:", 5) == 0)
        s += 5;
    size_t n = (size_t)(key + len - 1 - s);
    char text[DNS_NAME_TEXT_BYTES_MAX + 16];
    if (n == 0 || n > DNS_NAME_TEXT_BYTES_MAX)
        return VL_E_INVALID;
    bool v6 = memchr(s, ':', n) != NULL;
    snprintf(text, sizeof text, v6 ? "[%.*s]:%u" : "%.*s:%u", (int)n, s, (unsigned)port);
    return vl_hostport_parse(text, 0, false, hp, &why);
}
