/*
 * smtp_ehlo.h - EHLO capability parser (RFC 5321 4.1.1.1). Pure: no I/O, no
 * allocation, never logs.
 *
 * Use: smtp_ehlo_init(), then smtp_ehlo_line() for each line of a 2xx EHLO
 * reply after the first (the first names the server). The reply parser does
 * this as lines stream by (smtp_reply_parser.ehlo), so no line is kept.
 * Keywords are case-insensitive; unknown ones are ignored. Everything is
 * forgotten at STARTTLS: init again.
 */
#ifndef VOLLEY_SMTP_EHLO_H
#define VOLLEY_SMTP_EHLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SMTP_EXT_SIZE                 (1u << 0)  /* RFC 1870 */
#define SMTP_EXT_PIPELINING           (1u << 1)  /* RFC 2920 */
#define SMTP_EXT_8BITMIME             (1u << 2)  /* RFC 6152 */
#define SMTP_EXT_STARTTLS             (1u << 3)  /* RFC 3207 */
#define SMTP_EXT_ENHANCEDSTATUSCODES  (1u << 4)  /* RFC 2034 */
#define SMTP_EXT_SMTPUTF8             (1u << 5)  /* RFC 6531 */
#define SMTP_EXT_CHUNKING             (1u << 6)  /* RFC 3030 */
#define SMTP_EXT_DSN                  (1u << 7)  /* RFC 3461 */
#define SMTP_EXT_AUTH                 (1u << 8)  /* RFC 4954 */

#define SMTP_AUTH_PLAIN       (1u << 0)
#define SMTP_AUTH_LOGIN       (1u << 1)
#define SMTP_AUTH_CRAM_MD5    (1u << 2)
#define SMTP_AUTH_XOAUTH2     (1u << 3)
#define SMTP_AUTH_OTHER       (1u << 4)  /* any mechanism not named above */

struct smtp_ehlo {
    uint32_t ext;            /* SMTP_EXT_* offered */
    uint32_t auth;           /* SMTP_AUTH_* offered (with SMTP_EXT_AUTH) */
    uint32_t auth_count;     /* mechanisms listed, known or not */
    uint64_t size_max;       /* SIZE n: octets; 0 = no limit (bare SIZE, SIZE 0) */
};

/** Forget every capability (start of EHLO, or after STARTTLS). */
void smtp_ehlo_init(struct smtp_ehlo *e);

/** Parse one capability line: the text after "250-"/"250 " (no CRLF), @p len
 *  bytes. Unknown keywords and malformed parameters (SIZE x) are ignored: a
 *  capability we cannot read is one we do not use. Never fails. */
void smtp_ehlo_line(struct smtp_ehlo *e, const char *text, size_t len);

/** True if @p e offers every extension in @p ext_mask. */
static inline bool smtp_ehlo_has(const struct smtp_ehlo *e, uint32_t ext_mask)
{
    return (e->ext & ext_mask) == ext_mask;
}

#ifdef __cplusplus
}
#endif
#endif
