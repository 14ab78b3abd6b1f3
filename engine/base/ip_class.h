/*
 * ip_class.h - what kind of address an IP is, for the destination policy
 * (which addresses a sender may connect to). Pure: no I/O, no clock.
 *
 * Sources: RFC 6890 (special-purpose address registries), RFC 1122 3.2.1.3
 * (this host, loopback), RFC 1918 (private IPv4), RFC 6598 (shared address
 * space 100.64/10), RFC 3927 (IPv4 link-local), RFC 4291 (IPv6 loopback,
 * unspecified, link-local, multicast, IPv4-mapped), RFC 4193 (unique local
 * fc00::/7), RFC 5737 and RFC 3849 (documentation), RFC 2544 (benchmarking).
 */
#ifndef VOLLEY_IP_CLASS_H
#define VOLLEY_IP_CLASS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vl_ip_class {
    VL_IP_PUBLIC = 0,     /* anything not listed below */
    VL_IP_LOOPBACK,       /* 127/8, ::1 */
    VL_IP_PRIVATE,        /* 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7 */
    VL_IP_LINK_LOCAL,     /* 169.254/16, fe80::/10 */
    VL_IP_UNSPECIFIED,    /* 0/8, :: */
    VL_IP_MULTICAST,      /* 224/4, ff00::/8 */
    VL_IP_RESERVED,       /* 240/4 incl. broadcast, documentation, benchmarking */
};

/** Class of the address @p addr (AF_INET: 4 bytes, AF_INET6: 16 bytes, network
 *  order). An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is classed as its IPv4
 *  address. Unknown families are VL_IP_RESERVED. */
enum vl_ip_class vl_ip_classify(int family, const void *addr);

/** Class of a textual address ("192.0.2.1", "::1"); VL_IP_RESERVED if it is not
 *  an IP literal. */
enum vl_ip_class vl_ip_classify_text(const char *ip);

/** "public", "loopback", "private", "link-local", "unspecified", "multicast",
 *  "reserved". Never NULL. */
const char *vl_ip_class_name(enum vl_ip_class c);

#ifdef __cplusplus
}
#endif

#endif
