/*
 * addr.h - RFC 5321 mailbox validation (pure: no I/O, no allocation).
 *
 * An address is validated once, where it enters volley (CLI, listener), and
 * stored in its validated form; nothing that fails here can reach the wire.
 * CR, LF, NUL and every other control character are always refused.
 */
#ifndef VOLLEY_ADDR_H
#define VOLLEY_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vl_addr {
    uint16_t local_len;     /* bytes of the local part (quotes included, if quoted) */
    uint16_t domain_off;    /* offset of the domain (after '@') */
    uint16_t domain_len;
    bool     utf8;          /* local part has octets > 127: needs SMTPUTF8 */
    bool     quoted;        /* local part is a Quoted-string */
    bool     literal;       /* domain is an address literal [...] */
};

/** Validate @p s (@p len bytes, no angle brackets) as an RFC 5321 Mailbox:
 *  Local-part "@" (Domain | address-literal), within the 64/255/254 limits.
 *  On success fills @p out and returns 0. On failure returns VL_E_INVALID and,
 *  if @p why is not NULL, sets it to a static English reason. */
int vl_addr_parse(const char *s, size_t len, struct vl_addr *out, const char **why);

/** Validate a bare domain (LDH labels, A-labels for IDN, or an address literal). */
int vl_domain_check(const char *s, size_t len, const char **why);

/** 64-bit FNV-1a hash of a domain, ASCII-case-folded: the shard key. */
uint64_t vl_domain_hash(const char *s, size_t len);

#ifdef __cplusplus
}
#endif
#endif
