/*
 * net.c - CIDR networks for --allow (see config.h): parse once, match a
 * client's address. Pure: no I/O.
 */
#include "volley/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int vl_net_parse(const char *s, struct vl_net *out, const char **why)
{
    char ip[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n == 0 || n >= sizeof ip) {
        *why = "no address";
        return -1;
    }
    memcpy(ip, s, n);
    ip[n] = 0;
    struct vl_net r;
    memset(&r, 0, sizeof r);
    unsigned bits;
    if (inet_pton(AF_INET, ip, r.addr) == 1) {
        r.family = AF_INET;
        bits = 32;
    } else if (inet_pton(AF_INET6, ip, r.addr) == 1) {
        r.family = AF_INET6;
        bits = 128;
    } else {
        *why = "not an IP address";
        return -1;
    }
    unsigned prefix = bits;
    if (slash) {
        const char *p = slash + 1;
        if (!isdigit((unsigned char)*p) || strlen(p) > 3) {
            *why = "bad prefix length";
            return -1;
        }
        prefix = (unsigned)atoi(p);
        for (; *p; p++)
            if (!isdigit((unsigned char)*p))
                prefix = 999;
        if (prefix > bits) {
            *why = "bad prefix length";
            return -1;
        }
    }
    r.prefix = (uint8_t)prefix;
    for (unsigned i = 0; i < bits / 8; i++) {           /* clear the host bits */
        unsigned lo = i * 8;
        if (lo >= prefix)
            r.addr[i] = 0;
        else if (prefix - lo < 8)
            r.addr[i] &= (uint8_t)(0xffu << (8 - (prefix - lo)));
    }
    *out = r;
    return 0;
}

bool vl_net_match(const struct vl_net *n, const struct sockaddr *sa)
{
    const uint8_t *a;
    int fam = sa->sa_family;
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (fam == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (fam == AF_INET6) {
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (!memcmp(a, mapped, sizeof mapped)) {
            a += 12;
            fam = AF_INET;
        }
    } else {
        return false;
    }
    if (fam != n->family)
        return false;
    unsigned full = n->prefix / 8, rest = n->prefix % 8;
    if (memcmp(a, n->addr, full))
        return false;
    if (rest && ((a[full] ^ n->addr[full]) & (uint8_t)(0xffu << (8 - rest))))
        return false;
    return true;
}
