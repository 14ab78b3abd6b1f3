/*
 * msg_mime.h - re-encoding MIME parts whose body has a line over 998 octets
 * as quoted-printable (RFC 2045 6.7), for `enqueue --long-lines encode`.
 * Pure. Input is msg_normalise's canonical form (CRLF line ends only).
 */
#ifndef VOLLEY_MSG_MIME_H
#define VOLLEY_MSG_MIME_H

#include <stddef.h>
#include <stdint.h>

/** Quoted-printable of @p n octets at @p in, where each CRLF is a hard line
 *  break (kept as CRLF) and every other octet is content. Output lines are at
 *  most 76 octets (soft breaks "=" CRLF); space and tab before a line end,
 *  '=', controls and octets above 126 become =XX. Appends to *@p out (a
 *  malloc'd buffer of *@p len octets, *@p cap allocated; NULL/0/0 to start).
 *  @return 0 or -ENOMEM (the buffer is kept for the caller to free). */
int msg_qp_encode(const uint8_t *in, size_t n, uint8_t **out, size_t *len, size_t *cap);

/** Copy the canonical message @p in, re-encoding as quoted-printable every
 *  leaf MIME part (the whole body when not multipart) that has a body line
 *  over 998 octets: its Content-Transfer-Encoding becomes quoted-printable
 *  (MIME-Version: 1.0 is added to a top-level entity without one). Nesting
 *  is followed up to 16 multipart levels.
 *  @return 0 (*@p out malloc'd, *@p out_len octets, *@p parts re-encoded),
 *  VL_E_INVALID (*@p why: a long line that cannot be re-encoded: a header
 *  line, a preamble or epilogue, a message/ part or one already encoded),
 *  -ENOMEM. */
int msg_mime_encode_long(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
                         unsigned *parts, const char **why);

#endif
