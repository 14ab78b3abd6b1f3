/*
 * hostport.h - "HOST:PORT" as given on the command line (--route, --dns,
 * --listen), parsed once into a struct that is passed on as such (pure: no
 * I/O, no allocation, no name resolution).
 *
 * The one parser of this grammar: config (policy) and the resolver (dns)
 * both use it.
 */
#ifndef VOLLEY_HOSTPORT_H
#define VOLLEY_HOSTPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "volley/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A socket address to connect to (IPv4 or IPv6), the port already set. */
union vl_sockaddr {
    struct sockaddr     sa;
    struct sockaddr_in  in4;
    struct sockaddr_in6 in6;
};

#define VL_HOSTPORT_HOST_BYTES_MAX (VL_DNS_NAME_BYTES_MAX - 2u)   /* 253: text, no dot */

struct vl_hostport {
    char host[VL_HOSTPORT_HOST_BYTES_MAX + 1];   /* IP text or lower-case host name */
    uint16_t port;
    bool is_ip;                                  /* addr is valid */
    union vl_sockaddr addr;
};

/** Parse "IP", "IP:PORT", "[IPv6]", "[IPv6]:PORT", a bare IPv6, or (if
 *  @p names_ok) "NAME[:PORT]". A missing port is @p port_default; if that is 0
 *  the port is required. @return 0 or VL_E_INVALID with *@p why (static). */
int vl_hostport_parse(const char *s, uint16_t port_default, bool names_ok,
                      struct vl_hostport *out, const char **why);

#ifdef __cplusplus
}
#endif
#endif
