/*
 * msg_mime.c - long lines become quoted-printable (see msg_mime.h).
 *
 * One pass over the lines, alternating two modes with an explicit stack of
 * multipart boundaries (no recursion): ENTITY reads a header block and either
 * pushes a boundary (multipart) or copies/re-encodes a leaf body up to the
 * next delimiter line; TEXT copies preambles, delimiters and epilogues, and
 * hands the line after an opening delimiter back to ENTITY. Each step
 * consumes at least one line or ends, so the loop is bounded by the lines.
 */
#include "msg_mime.h"

#include "volley/error.h"
#include "volley/limits.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MIME_DEPTH_MAX      16u
#define MIME_BOUNDARY_MAX   70u     /* RFC 2046 5.1.1 */
#define MIME_QP_LINE_MAX    76u     /* RFC 2045 6.7 (5) */
#define MIME_FIELD_BYTES_MAX 2048u  /* unfolded Content-Type kept for parsing */

struct mime_buf { uint8_t *p; size_t len, cap; };

static int mime_put(struct mime_buf *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

int msg_qp_encode(const uint8_t *in, size_t n, uint8_t **out, size_t *len, size_t *cap)
{
    static const char hex[] = "0123456789ABCDEF";
    struct mime_buf b = { *out, *len, *cap };
    size_t col = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t c = in[i];
        if (c == '\r' && i + 1 < n && in[i + 1] == '\n') {   /* hard line break */
            rc = mime_put(&b, "\r\n", 2);
            col = 0;
            i++;
            continue;
        }
        bool at_eol = i + 1 == n || (in[i + 1] == '\r' && i + 2 < n && in[i + 2] == '\n');
        bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol);
        char tok[3] = { (char)c, 0, 0 };
        size_t k = 1;
        if (!literal)
            tok[0] = '=', tok[1] = hex[c >> 4], tok[2] = hex[c & 15], k = 3;
        if (col + k > MIME_QP_LINE_MAX - 1) {               /* room for the soft '=' */
            rc = mime_put(&b, "=\r\n", 3);
            col = 0;
        }
        if (rc == 0)
            rc = mime_put(&b, tok, k);
        col += k;
        vl_assert(col <= MIME_QP_LINE_MAX - 1);
    }
    *out = b.p, *len = b.len, *cap = b.cap;
    return rc;
}

/* The line at @p pos: its end (the CR of its CRLF, or @p len). */
static size_t mime_eol(const uint8_t *in, size_t len, size_t pos)
{
    const uint8_t *cr = pos < len ? memchr(in + pos, '\r', len - pos) : NULL;
    while (cr && (size_t)(cr - in) + 1 < len && cr[1] != '\n')
        cr = memchr(cr + 1, '\r', len - (size_t)(cr + 1 - in));
    return cr ? (size_t)(cr - in) : len;
}

static size_t mime_next(size_t len, size_t eol)
{
    return eol + 2 <= len ? eol + 2 : len;
}

struct mime_stack {
    char b[MIME_DEPTH_MAX][MIME_BOUNDARY_MAX + 1];
    size_t blen[MIME_DEPTH_MAX];
    unsigned depth;
};

/* The deepest boundary (index + 1) whose delimiter is the line [s, s+n);
 * *close: it is the close delimiter. 0 if none. */
static unsigned mime_delim(const struct mime_stack *st, const uint8_t *s, size_t n, bool *close)
{
    for (unsigned k = st->depth; k > 0; k--) {
        size_t bl = st->blen[k - 1];
        if (n < bl + 2 || s[0] != '-' || s[1] != '-' || memcmp(s + 2, st->b[k - 1], bl))
            continue;
        size_t i = bl + 2;
        *close = n >= i + 2 && s[i] == '-' && s[i + 1] == '-';
        if (*close)
            i += 2;
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == n)
            return k;
    }
    return 0;
}

struct mime_ent {
    size_t body;                 /* where the body starts (after the empty line) */
    size_t sep;                  /* the empty line, or body if there is none */
    size_t cte_at, cte_end;      /* the Content-Transfer-Encoding field, or 0, 0 */
    bool multipart, message, cte_identity, has_mime_version;
    char boundary[MIME_BOUNDARY_MAX + 1];
    size_t boundary_len;
};

static bool mime_prefix(const char *v, const char *p)
{
    return strncasecmp(v, p, strlen(p)) == 0;
}

/* boundary= of an unfolded Content-Type value (quoted or a token). */
static void mime_boundary(const char *v, struct mime_ent *e)
{
    for (const char *p = v; (p = strcasestr(p, "boundary")) != NULL; p += 8) {
        if (p > v && p[-1] != ';' && p[-1] != ' ' && p[-1] != '\t')
            continue;
        const char *q = p + 8;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q++ != '=')
            continue;
        while (*q == ' ' || *q == '\t')
            q++;
        size_t n = 0;
        if (*q == '"') {
            q++;
            while (q[n] && q[n] != '"')
                n++;
        } else {
            while (q[n] && q[n] != ';' && q[n] != ' ' && q[n] != '\t')
                n++;
        }
        if (n >= 1 && n <= MIME_BOUNDARY_MAX) {
            memcpy(e->boundary, q, n);
            e->boundary[n] = 0;
            e->boundary_len = n;
        }
        return;
    }
}

/* The value of the field starting at @p s (through its continuation lines up
 * to @p end), unfolded into @p out; leading blanks dropped. */
static void mime_value(const uint8_t *s, size_t end, size_t name, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = name + 1; i < end && o + 1 < cap; i++)
        if (s[i] != '\r' && s[i] != '\n' && (o > 0 || (s[i] != ' ' && s[i] != '\t')))
            out[o++] = (char)s[i];
    out[o] = 0;
}

/* Read the header block at @p pos (it ends at an empty line, a delimiter of
 * @p st or the end). @return 0, or VL_E_INVALID for a header line too long. */
static int mime_headers(const uint8_t *in, size_t len, size_t pos, const struct mime_stack *st,
                        struct mime_ent *e)
{
    memset(e, 0, sizeof *e);
    e->cte_identity = true;
    char v[MIME_FIELD_BYTES_MAX];
    size_t at = pos;
    for (;;) {
        if (at >= len) {
            e->sep = e->body = len;
            return 0;
        }
        size_t eol = mime_eol(in, len, at);
        bool close;
        if (eol == at) {
            e->sep = at;
            e->body = mime_next(len, eol);
            return 0;
        }
        if (mime_delim(st, in + at, eol - at, &close)) {
            e->sep = e->body = at;
            return 0;
        }
        if (eol - at > VL_MSG_LINE_BYTES_MAX)
            return VL_E_INVALID;
        size_t end = mime_next(len, eol);          /* the field with its continuations */
        while (end < len && (in[end] == ' ' || in[end] == '\t'))
            end = mime_next(len, mime_eol(in, len, end));
        const uint8_t *f = in + at;
        const uint8_t *colon = memchr(f, ':', eol - at);
        size_t name = colon ? (size_t)(colon - f) : 0;
        if (name == 12 && !strncasecmp((const char *)f, "Content-Type", 12)) {
            mime_value(f, end - at, name, v, sizeof v);
            e->multipart = mime_prefix(v, "multipart/");
            e->message = mime_prefix(v, "message/");
            if (e->multipart)
                mime_boundary(v, e);
        } else if (name == 25 && !strncasecmp((const char *)f, "Content-Transfer-Encoding", 25)) {
            mime_value(f, end - at, name, v, sizeof v);
            size_t n = strcspn(v, " \t;(");
            e->cte_identity = n == 0 || (n == 4 && (mime_prefix(v, "7bit")
                              || mime_prefix(v, "8bit"))) || (n == 6 && mime_prefix(v, "binary"));
            e->cte_at = at, e->cte_end = end;
        } else if (name == 12 && !strncasecmp((const char *)f, "MIME-Version", 12)) {
            e->has_mime_version = true;
        }
        at = end;
    }
}

struct mime_ctx {
    const uint8_t *in;
    size_t len;
    struct mime_buf out;
    struct mime_stack st;
    unsigned parts;
    const char *why;
};

/* A leaf at @p pos: copy it, or re-encode it when a body line is too long.
 * @return where its body ends (a delimiter line or the end), or < 0. */
static long mime_leaf(struct mime_ctx *c, size_t pos, const struct mime_ent *e)
{
    const uint8_t *in = c->in;
    size_t dl = e->body, longest = 0;
    bool close;
    while (dl < c->len) {
        size_t eol = mime_eol(in, c->len, dl);
        if (mime_delim(&c->st, in + dl, eol - dl, &close))
            break;
        if (eol - dl > longest)
            longest = eol - dl;
        dl = mime_next(c->len, eol);
    }
    if (longest <= VL_MSG_LINE_BYTES_MAX)
        return mime_put(&c->out, in + pos, dl - pos) < 0 ? -ENOMEM : (long)dl;
    if (e->message || e->multipart || !e->cte_identity) {
        c->why = e->message ? "line longer than 998 octets in a message/* part (cannot be "
                              "re-encoded)"
                 : e->multipart ? "line longer than 998 octets in a multipart without a "
                                  "usable boundary (or nested too deep)"
                 : "line longer than 998 octets in a part that is already encoded (base64 "
                   "or quoted-printable)";
        return VL_E_INVALID;
    }
    size_t bend = dl < c->len && dl >= e->body + 2 ? dl - 2 : dl;  /* CRLF of the delimiter */
    int rc = 0;
    if (e->cte_at) {
        rc |= mime_put(&c->out, in + pos, e->cte_at - pos);
        rc |= mime_put(&c->out, in + e->cte_end, e->sep - e->cte_end);
    } else {
        rc |= mime_put(&c->out, in + pos, e->sep - pos);
    }
    if (c->st.depth == 0 && !e->has_mime_version)
        rc |= mime_put(&c->out, "MIME-Version: 1.0\r\n", 19);
    rc |= mime_put(&c->out, "Content-Transfer-Encoding: quoted-printable\r\n\r\n", 47);
    if (rc == 0)
        rc = msg_qp_encode(in + e->body, bend - e->body, &c->out.p, &c->out.len, &c->out.cap);
    if (rc == 0)
        rc = mime_put(&c->out, in + bend, dl - bend);
    c->parts++;
    return rc < 0 ? -ENOMEM : (long)dl;
}

/* TEXT mode from @p pos: @return the line after an opening delimiter, or len. */
static long mime_text(struct mime_ctx *c, size_t pos)
{
    while (pos < c->len) {
        size_t eol = mime_eol(c->in, c->len, pos), next = mime_next(c->len, eol);
        bool close = false;
        unsigned k = mime_delim(&c->st, c->in + pos, eol - pos, &close);
        if (!k && eol - pos > VL_MSG_LINE_BYTES_MAX) {
            c->why = "line longer than 998 octets outside any MIME part (a preamble or "
                     "epilogue)";
            return VL_E_INVALID;
        }
        if (mime_put(&c->out, c->in + pos, next - pos) < 0)
            return -ENOMEM;
        pos = next;
        if (k) {
            c->st.depth = close ? k - 1 : k;     /* unclosed inner parts end here too */
            if (!close)
                return (long)pos;
        }
    }
    return (long)c->len;
}

int msg_mime_encode_long(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len,
                         unsigned *parts, const char **why)
{
    struct mime_ctx c = { .in = in, .len = len };
    long pos = 0;
    *why = NULL;
    while (pos >= 0 && (size_t)pos < len) {          /* one entity, then its text */
        struct mime_ent e;
        if (mime_headers(in, len, (size_t)pos, &c.st, &e) < 0) {
            c.why = "header line longer than 998 octets in a MIME part";
            pos = VL_E_INVALID;
            break;
        }
        if (e.multipart && e.boundary_len && c.st.depth < MIME_DEPTH_MAX) {
            memcpy(c.st.b[c.st.depth], e.boundary, e.boundary_len + 1);
            c.st.blen[c.st.depth++] = e.boundary_len;
            pos = mime_put(&c.out, in + pos, e.body - (size_t)pos) < 0 ? -ENOMEM
                  : (long)e.body;
        } else {
            pos = mime_leaf(&c, (size_t)pos, &e);
        }
        if (pos >= 0)
            pos = mime_text(&c, (size_t)pos);
    }
    if (pos < 0) {
        free(c.out.p);
        *why = c.why;
        return pos == -ENOMEM ? -ENOMEM : VL_E_INVALID;
    }
    vl_assert(c.parts > 0 || c.out.len == len);
    *out = c.out.p;
    *out_len = c.out.len;
    *parts = c.parts;
    return 0;
}
