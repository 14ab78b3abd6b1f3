/*
 * blast_mx.h - a target given as a domain: its MX hosts (RFC 5321 5.1), so
 * `volley blast example.org` loads the servers that take example.org's mail.
 * Blocking (libresolv), once at startup, before any thread runs.
 *
 * The most preferred MX hosts are used (every host of the lowest preference,
 * each of their IPv4 and IPv6 addresses); no MX means the implicit MX, the
 * domain's own addresses; a null MX (RFC 7505) is an error.
 */
#ifndef VOLLEY_BLAST_MX_H
#define VOLLEY_BLAST_MX_H

#include <stddef.h>
#include <stdint.h>

#include "blast.h"

/** Add the targets for @p domain on @p port to @p c (at most BLAST_TARGETS_MAX
 *  in all). @p dns: an IPv4 "ADDR:PORT" to ask instead of /etc/resolv.conf, or
 *  NULL. Writes what was chosen, or what is wrong, to @p msg.
 *  @return the number of targets added (> 0), or VL_E_DNS (lookup failed, null
 *  MX, nothing resolves) / VL_E_INVALID (bad @p dns) with @p msg saying why. */
int blast_mx_targets(struct blast_conf *c, const char *domain, uint16_t port, const char *dns,
                     char *msg, size_t msg_cap);

#endif
