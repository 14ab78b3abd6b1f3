/*
 * http_mime.h - the message builder of the HTTP injection API (pure: time,
 * host name and a unique number are parameters).
 *
 * It writes an RFC 5322 message with MIME (RFC 2045-2049): one text/plain or
 * text/html part, or multipart/alternative with both (plain first: the
 * preferred one last, RFC 2046 5.1.4), wrapped in multipart/mixed when there
 * are attachments. Text parts are 7bit when they are ASCII with lines of at
 * most 998 octets, else quoted-printable, charset utf-8; attachments are
 * base64 in 76-column lines. Header values with non-ASCII octets become RFC
 * 2047 encoded words (UTF-8, B encoding, at most 75 columns each, never
 * splitting a UTF-8 sequence); a non-ASCII attachment file name uses RFC 2231
 * (filename*=UTF-8''...). Boundaries contain "=_", which quoted-printable and
 * base64 output never do; a 7bit part holding "=_" is sent quoted-printable,
 * so a boundary can never occur inside a part. Line ends are CRLF throughout
 * (bare LF or CR in the text become CRLF).
 */
#ifndef VOLLEY_HTTP_MIME_H
#define VOLLEY_HTTP_MIME_H

#include "http_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mime_str {
    const char *p;                /* NULL: absent */
    size_t len;
};

struct mime_hdr {
    const char *name;             /* a valid field name (checked by the caller) */
    struct mime_str value;        /* unstructured; encoded if non-ASCII */
};

struct mime_msg {
    struct mime_str from_email, from_name;
    struct mime_str to_email, to_name;       /* To: (skipped when headers name To) */
    struct mime_str reply_to_email, reply_to_name;
    struct mime_str subject;
    const struct mime_hdr *hdrs;
    size_t hdr_count;
    struct mime_str text, html;               /* at least one, or an empty text part */
    const struct hbuf *atts;                  /* prebuilt parts (mime_attachment_part) */
    size_t att_count;
    uint64_t now_ms;                          /* Date: */
    const char *hostname;                     /* Message-ID: right side */
    uint64_t unique;                          /* Message-ID: and boundaries */
};

/** Write the message to @p out (its max bounds the size).
 *  @return 0, VL_E_TOOBIG, -ENOMEM. */
int mime_build(const struct mime_msg *m, struct hbuf *out);

/** Build an attachment part once per request: its headers (Content-Type
 *  @p ctype, Content-Disposition with @p fname), a blank line and @p data in
 *  base64. @return 0, VL_E_TOOBIG, -ENOMEM. */
int mime_attachment_part(const uint8_t *data, size_t n, const char *ctype, const char *fname,
                         struct hbuf *out);

/** Decode base64 (RFC 4648 alphabet, padding optional, whitespace ignored).
 *  @return 0 (*@p out malloc'd, *@p out_len bytes), VL_E_INVALID, -ENOMEM. */
int mime_b64_decode(const char *in, size_t n, uint8_t **out, size_t *out_len);

/** Append "Name: value" CRLF, as RFC 2047 encoded words when @p v has
 *  non-ASCII octets. @return 0, VL_E_TOOBIG, -ENOMEM. */
int mime_header_unstructured(struct hbuf *out, const char *name, const char *v, size_t n);

/** Is @p s (NUL-terminated) a valid header field name (RFC 5322 ftext)? */
bool mime_field_name_ok(const char *s);

#endif
