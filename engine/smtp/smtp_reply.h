/*
 * smtp_reply.h - streaming SMTP reply parser (RFC 5321 4.2). Pure: no I/O, no
 * clock, no allocation, never logs.
 *
 * Use: smtp_reply_parser_init(), then smtp_reply_feed() with bytes as they
 * arrive, in any split. Each call consumes bytes up to the end of at most one
 * reply, so pipelined replies in one buffer come out one by one: call again
 * with the rest. A reply is kept in a bounded form (code, enhanced status,
 * first line's text); with @c ehlo set, the text of every line after the
 * first of a 2xx reply goes to smtp_ehlo_line() as it streams by.
 *
 * Invariants: every line carries the same 3-digit code, first digit 2-5;
 * every line ends in CRLF; caps VL_SMTP_REPLY_LINE_BYTES_MAX (CRLF included),
 * VL_SMTP_REPLY_LINES_MAX, VL_SMTP_REPLY_BYTES_MAX. Anything else is
 * VL_E_PROTO and the parser stays failed until re-initialised (the session
 * drops the connection: CVE-2020-8794 class).
 */
#ifndef VOLLEY_SMTP_REPLY_H
#define VOLLEY_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volley/limits.h"
#include "smtp_ehlo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Raw bytes of a line kept for parsing: code, separator, status, text. */
#define SMTP_REPLY_KEEP_BYTES (4u + VL_SMTP_STATUS_BYTES_MAX + VL_DIAG_TEXT_BYTES_MAX)

struct smtp_reply {
    uint16_t code;                         /* 200..599 */
    uint16_t lines;                        /* 1..VL_SMTP_REPLY_LINES_MAX */
    uint32_t bytes;                        /* on the wire, CRLFs included */
    char status[VL_SMTP_STATUS_BYTES_MAX];    /* enhanced status "x.y.z", or "" if none/ignored */
    uint16_t text_len;                     /* <= VL_DIAG_TEXT_BYTES_MAX */
    /* First line's text after the code and the enhanced status, sanitised:
     * controls and non-ASCII octets become '?'. NUL-terminated. */
    char text[VL_DIAG_TEXT_BYTES_MAX + 1];
};

struct smtp_reply_parser {
    /* Optional: capabilities of a 2xx reply go here (set it while awaiting EHLO). */
    struct smtp_ehlo *ehlo;
    /* Private. */
    int err;                  /* sticky VL_E_PROTO once failed */
    bool done;                /* the last call completed a reply: reset on next feed */
    bool cr;                  /* the current line's last byte was CR */
    uint32_t line_bytes;      /* bytes of the current line so far (CR included) */
    uint32_t line_kept;       /* bytes of it in line[] */
    struct smtp_reply reply;
    char line[SMTP_REPLY_KEEP_BYTES];
};

/** Start (or restart, after an error) a parser; @p ehlo may be NULL. */
void smtp_reply_parser_init(struct smtp_reply_parser *p, struct smtp_ehlo *ehlo);

/** Consume up to @p len bytes of @p buf, stopping right after the end of a reply.
 *  Sets *@p consumed to the bytes used.
 *  @return 1: a reply is complete, read it with smtp_reply_get() (valid until
 *          the next feed); 0: all bytes consumed, no complete reply yet;
 *          VL_E_PROTO: malformed reply (bare CR/LF, bad or changing code, over
 *          a cap); sticky. */
int smtp_reply_feed(struct smtp_reply_parser *p, const char *buf, size_t len, size_t *consumed);

/** The reply completed by the last feed that returned 1. */
static inline const struct smtp_reply *smtp_reply_get(const struct smtp_reply_parser *p)
{
    return &p->reply;
}

/** Parse @p s (@p len bytes) as an RFC 3463 enhanced status code "c.s.d"
 *  (c in 2,4,5; s and d 1-3 digits). @return 1 and copy it NUL-terminated into
 *  @p out, else 0. */
int smtp_reply_status_parse(const char *s, size_t len, char out[VL_SMTP_STATUS_BYTES_MAX]);

#ifdef __cplusplus
}
#endif
#endif
