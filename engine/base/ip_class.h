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

/** Class of the address in @p sa (AF_INET or AF_INET6; others: reserved). */
enum vl_ip_class vl_ip_classify_sa(const struct sockaddr *sa);

/*
 * Destination policy (issue 9 item 9). By default mail goes only to public
 * addresses (MX/A answers and address literals such as x@[10.0.0.5]); an
 * operator allows more classes with --allow-dest (a set of VL_IP_ALLOW bits).
 * Unspecified and multicast addresses are never allowed: no SMTP server is
 * there (0.0.0.0 reaches this very host, multicast is not TCP). Static
 * --route targets are the operator's own choice and are not checked.
 */
#define VL_IP_ALLOW(c) (1u << (unsigned)(c))
#define VL_IP_ALLOW_ANY (VL_IP_ALLOW(VL_IP_LOOPBACK) | VL_IP_ALLOW(VL_IP_PRIVATE) | \
                         VL_IP_ALLOW(VL_IP_LINK_LOCAL) | VL_IP_ALLOW(VL_IP_RESERVED))

/** May mail go to an address of class @p c when the classes in @p allow
 *  (VL_IP_ALLOW bits) are allowed besides public ones? */
bool vl_ip_dest_allowed(uint32_t allow, enum vl_ip_class c);

/** Parse an --allow-dest value: a comma list of "loopback", "private",
 *  "link-local", "reserved", or "any" (all four), OR'ed into *@p allow.
 *  @return 0, or -1 with *@p why (a static text) and *@p allow untouched. */
int vl_ip_allow_parse(const char *list, uint32_t *allow, const char **why);

#ifdef __cplusplus
}
#endif

#endif
