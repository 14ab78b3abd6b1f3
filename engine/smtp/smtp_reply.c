/*
 * smtp_reply.c - streaming SMTP reply parser. Pure.
 * Invariants: at most one reply per feed call; nothing past the reply's last
 * CRLF is consumed; at most SMTP_REPLY_KEEP_BYTES of any line are kept; the
 * error state is sticky.
 * Diagnostics: none; the caller turns VL_E_PROTO into a connection failure.
 */
#include "smtp_reply.h"

#include <string.h>

#include "volley/error.h"

static void reply_reset(struct smtp_reply_parser *p);

void smtp_reply_parser_init(struct smtp_reply_parser *p, struct smtp_ehlo *ehlo)
{
    memset(p, 0, offsetof(struct smtp_reply_parser, reply));
    p->ehlo = ehlo;
    reply_reset(p);
}

static int reply_digit(char c)
{
    return c >= '0' && c <= '9';
}

int smtp_reply_status_parse(const char *s, size_t len, char out[VL_SMTP_STATUS_BYTES_MAX])
{
    if (len < 5 || len > 9 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    size_t i = 2, digits = 0;
    for (; i < len && reply_digit(s[i]); i++)
        digits++;
    if (digits < 1 || digits > 3 || i >= len || s[i] != '.')
        return 0;
    i++;
    digits = 0;
    for (; i < len && reply_digit(s[i]); i++)
        digits++;
    if (digits < 1 || digits > 3 || i != len)
        return 0;
    memcpy(out, s, len);
    out[len] = '\0';
    return 1;
}

/* First line: split out the enhanced status (if its class matches the code's)
 * and keep the sanitised text after it. @p t is the text after "NNN[ -]". */
static void reply_first_line(struct smtp_reply *r, const char *t, size_t n)
{
    size_t tok = 0;
    while (tok < n && t[tok] != ' ')
        tok++;
    if (smtp_reply_status_parse(t, tok, r->status) && r->status[0] == (char)('0' + r->code / 100)) {
        while (tok < n && t[tok] == ' ')
            tok++;
        t += tok;
        n -= tok;
    } else {
        r->status[0] = '\0';
    }
    if (n > VL_DIAG_TEXT_BYTES_MAX)
        n = VL_DIAG_TEXT_BYTES_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        r->text[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    r->text[n] = '\0';
    r->text_len = (uint16_t)n;
}

/* A complete line (CRLF stripped) is in p->line. @return 1 if it was the last
 * line of the reply, 0 if more follow, VL_E_PROTO if malformed. */
static int reply_line_end(struct smtp_reply_parser *p)
{
    const char *l = p->line;
    size_t len = p->line_bytes - 2;          /* without CRLF */
    if (len < 3 || l[0] < '2' || l[0] > '5' || !reply_digit(l[1]) || !reply_digit(l[2]))
        return VL_E_PROTO;
    if (len > 3 && l[3] != ' ' && l[3] != '-')
        return VL_E_PROTO;
    uint16_t code = (uint16_t)((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0'));
    struct smtp_reply *r = &p->reply;
    if (r->lines == 0)
        r->code = code;
    else if (code != r->code)
        return VL_E_PROTO;
    if (++r->lines > VL_SMTP_REPLY_LINES_MAX)
        return VL_E_PROTO;
    size_t text_len = p->line_kept > 4 ? p->line_kept - 4 : 0;
    if (r->lines == 1)
        reply_first_line(r, l + 4, text_len);
    else if (p->ehlo && l[0] == '2')
        smtp_ehlo_line(p->ehlo, l + 4, text_len);
    p->line_bytes = 0;
    p->line_kept = 0;
    p->cr = false;
    return len == 3 || l[3] == ' ';
}

/* Append @p n bytes of a line (no LF among them). A CR may only be the last. */
static int reply_append(struct smtp_reply_parser *p, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (p->cr)
        return VL_E_PROTO;                   /* CR not followed by LF */
    const char *cr = memchr(s, '\r', n);
    if (cr && cr != s + n - 1)
        return VL_E_PROTO;
    p->line_bytes += (uint32_t)n;
    if (p->line_bytes + 1u > VL_SMTP_REPLY_LINE_BYTES_MAX)
        return VL_E_PROTO;
    if (cr) {
        p->cr = true;
        n--;
    }
    size_t room = SMTP_REPLY_KEEP_BYTES - p->line_kept;
    size_t take = n < room ? n : room;
    memcpy(p->line + p->line_kept, s, take);
    p->line_kept += (uint32_t)take;
    return 0;
}

static void reply_reset(struct smtp_reply_parser *p)
{
    p->done = false;
    p->reply.code = 0;
    p->reply.lines = 0;
    p->reply.bytes = 0;
    p->reply.status[0] = '\0';
    p->reply.text_len = 0;
    p->reply.text[0] = '\0';
}

int smtp_reply_feed(struct smtp_reply_parser *p, const char *buf, size_t len, size_t *consumed)
{
    *consumed = 0;
    if (p->err)
        return p->err;
    if (p->done)
        reply_reset(p);
    size_t off = 0;
    int rc = 0;
    while (off < len && rc == 0) {
        const char *lf = memchr(buf + off, '\n', len - off);
        size_t seg = lf ? (size_t)(lf - (buf + off)) : len - off;
        rc = reply_append(p, buf + off, seg);
        if (rc == 0 && lf) {
            if (!p->cr)
                rc = VL_E_PROTO;             /* bare LF */
            else {
                p->line_bytes++;
                seg++;
                rc = reply_line_end(p);
            }
        }
        if (rc >= 0) {
            off += seg;
            p->reply.bytes += (uint32_t)seg;
            if (p->reply.bytes > VL_SMTP_REPLY_BYTES_MAX)
                rc = VL_E_PROTO;
        }
    }
    *consumed = off;
    if (rc < 0) {
        p->err = rc;
        return rc;
    }
    p->done = rc == 1;
    return rc;
}
