/*
 * hostport.c - the "HOST:PORT" grammar (see volley/hostport.h).
 * Invariant: an accepted host is an IP address or a valid domain name, in
 * lower case; an accepted port is 1..65535.
 */
#include "volley/hostport.h"

#include "volley/addr.h"
#include "volley/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void hostport_lower_copy(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)((src[i] >= 'A' && src[i] <= 'Z') ? src[i] + 32 : src[i]);
    dst[n] = '\0';
}

static int hostport_port(const char *s, uint16_t *port, const char **why)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v == 0 || v > 65535 || s[0] == '-' || s[0] == '+') {
        *why = "port must be a number from 1 to 65535";
        return VL_E_INVALID;
    }
    *port = (uint16_t)v;
    return 0;
}

/* Split s into host text and port text; brackets only around IPv6. */
static int hostport_split(const char *s, char *host, size_t host_max, const char **port_s,
                          bool *bracketed, const char **why)
{
    const char *h = s, *colon = NULL;
    size_t hl;
    *bracketed = false;
    *port_s = NULL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || (close[1] != '\0' && close[1] != ':')) {
            *why = "expected [IPv6] or [IPv6]:PORT";
            return VL_E_INVALID;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        *bracketed = true;
        if (close[1] == ':')
            *port_s = close + 2;
    } else {
        colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':'))
            colon = NULL;                       /* bare IPv6: no port */
        hl = colon ? (size_t)(colon - s) : strlen(s);
        if (colon)
            *port_s = colon + 1;
    }
    if (hl == 0 || hl >= host_max) {
        *why = hl == 0 ? "host is empty" : "host is too long";
        return VL_E_INVALID;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    return 0;
}

int vl_hostport_parse(const char *s, uint16_t port_default, bool names_ok,
                      struct vl_hostport *out, const char **why)
{
    char host[VL_HOSTPORT_HOST_BYTES_MAX + 1];
    const char *port_s = NULL;
    bool bracketed = false;
    memset(out, 0, sizeof *out);
    if (!s || hostport_split(s, host, sizeof host, &port_s, &bracketed, why) < 0)
        return s ? VL_E_INVALID : (*why = "missing HOST:PORT", VL_E_INVALID);
    out->port = port_default;
    if (port_s && hostport_port(port_s, &out->port, why) < 0)
        return VL_E_INVALID;
    if (out->port == 0) {
        *why = "a port is required (HOST:PORT)";
        return VL_E_INVALID;
    }
    if (inet_pton(AF_INET6, host, &out->addr.in6.sin6_addr) == 1) {
        out->addr.in6.sin6_family = AF_INET6;
        out->addr.in6.sin6_port = htons(out->port);
        out->is_ip = true;
    } else if (!bracketed && inet_pton(AF_INET, host, &out->addr.in4.sin_addr) == 1) {
        out->addr.in4.sin_family = AF_INET;
        out->addr.in4.sin_port = htons(out->port);
        out->is_ip = true;
    } else if (bracketed) {
        *why = "not an IPv6 address inside [ ]";
        return VL_E_INVALID;
    } else if (!names_ok) {
        *why = "expected an IP address (a resolver cannot be given by name)";
        return VL_E_INVALID;
    } else if (vl_domain_check(host, strlen(host), why) < 0) {
        return VL_E_INVALID;
    }
    hostport_lower_copy(out->host, host, strlen(host));
    return 0;
}
