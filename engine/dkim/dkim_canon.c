/*
 * dkim_canon.c - DKIM canonicalisation (RFC 6376 3.4) and header splitting.
 * Pure: no I/O, no allocation, no clock.
 *
 * The body is canonicalised in one pass into a 16 KiB buffer that is handed
 * to the sink when full, so a digest sees few, large updates: the common line
 * (no tab, no double space, no trailing blank) costs one scan and one memcpy.
 * Invariants: relaxed output holds no WSP before a CRLF and no run of two WSP;
 * neither output ends with an empty line (simple: exactly one CRLF at the end).
 */
#include "dkim.h"

#include "volley/error.h"

#include <string.h>

#define CANON_BUF_BYTES 16384u

struct canon_out {
    dkim_sink_fn sink;
    void *ctx;
    size_t n;
    uint8_t b[CANON_BUF_BYTES];
};

static void out_flush(struct canon_out *o)
{
    if (o->n)
        o->sink(o->ctx, o->b, o->n);
    o->n = 0;
}

static inline void out_put(struct canon_out *o, const uint8_t *p, size_t n)
{
    if (o->n + n > sizeof o->b) {
        out_flush(o);
        if (n > sizeof o->b) {            /* a line longer than the buffer: pass it on */
            o->sink(o->ctx, p, n);
            return;
        }
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static inline bool is_wsp(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* One line's content [p, e) (no line end, no trailing WSP, not empty): each run
 * of WSP becomes one SP. */
static void relaxed_line(struct canon_out *o, const uint8_t *p, const uint8_t *e)
{
    const uint8_t *seg = p;
    for (const uint8_t *q = p; q < e; q++) {
        if (*q == '\t' || (*q == ' ' && is_wsp(q[1]))) {   /* q + 1 < e: e ends on non-WSP */
            out_put(o, seg, (size_t)(q - seg));
            out_put(o, (const uint8_t *)" ", 1);
            while (is_wsp(*q))
                q++;
            seg = q;
        }
    }
    out_put(o, seg, (size_t)(e - seg));
}

#define SWAR_LO7 0x7f7f7f7f7f7f7f7full
#define SWAR_HI  0x8080808080808080ull

/* The high bit of each byte of @p x that equals the byte @p b (exact). */
static inline uint64_t swar_eq(uint64_t x, uint8_t b)
{
    uint64_t y = x ^ (0x0101010101010101ull * b);
    return ~((((y & SWAR_LO7) + SWAR_LO7) | y)) & SWAR_HI;
}

/* Is the line [p, e) (content before its CRLF, no trailing WSP) already
 * relaxed-canonical: no tab, no two spaces in a row? Eight bytes at a time
 * (bytes are loaded little-endian: byte i is bits 8i..8i+7). */
static bool line_is_canonical(const uint8_t *p, const uint8_t *e)
{
    size_t n = (size_t)(e - p), i = 0;
    uint64_t prev_sp = 0;                   /* 1: the previous word's last byte was a space */
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t sp = swar_eq(x, ' ');
        if (swar_eq(x, '\t') | (sp & (sp >> 8)) | (prev_sp & (sp >> 7)))
            return false;
        prev_sp = sp >> 63;
    }
    for (uint8_t last = prev_sp ? ' ' : 0; i < n; i++) {
        if (p[i] == '\t' || (p[i] == ' ' && last == ' '))
            return false;
        last = p[i];
    }
    return true;
}

/* Runs of lines that are canonical as they stand go to the sink straight from
 * the message (no copy); the rest is rewritten through o's buffer. Order is
 * kept by flushing the buffer before each direct run. */
static void span_close(struct canon_out *o, const uint8_t **span, const uint8_t *end)
{
    if (!*span)
        return;
    out_flush(o);
    if (end > *span)
        o->sink(o->ctx, *span, (size_t)(end - *span));
    *span = NULL;
}

static void body_relaxed(struct canon_out *o, const uint8_t *body, size_t len)
{
    static const uint8_t crlf[2] = { '\r', '\n' };
    const uint8_t *p = body, *end = body + len, *span = NULL;
    size_t empties = 0;                        /* empty lines not yet known to be inner */
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        bool crlf_end = nl && le > p && le[-1] == '\r';
        if (crlf_end)
            le--;
        const uint8_t *content_end = le;
        while (le > p && is_wsp(le[-1]))
            le--;
        if (le == p) {                         /* empty: emitted only if a line follows */
            span_close(o, &span, p);
            empties++;
            p = next;
            continue;
        }
        for (; empties; empties--)
            out_put(o, crlf, 2);
        if (crlf_end && le == content_end && line_is_canonical(p, le)) {
            if (!span)
                span = p;
        } else {
            span_close(o, &span, p);
            relaxed_line(o, p, le);
            out_put(o, crlf, 2);
        }
        p = next;
    }
    span_close(o, &span, p);
}

void dkim_body_canon(enum dkim_canon c, const uint8_t *body, size_t len, dkim_sink_fn sink,
                     void *ctx)
{
    if (c == DKIM_CANON_SIMPLE) {
        /* RFC 6376 3.4.3: drop the empty lines at the end; an empty body is one CRLF. */
        size_t n = len;
        while (n >= 2 && body[n - 2] == '\r' && body[n - 1] == '\n')
            n -= 2;
        if (n)
            sink(ctx, body, n);
        sink(ctx, (const uint8_t *)"\r\n", 2);
        return;
    }
    vl_assert(c == DKIM_CANON_RELAXED);
    struct canon_out o;
    o.sink = sink;
    o.ctx = ctx;
    o.n = 0;
    body_relaxed(&o, body, len);
    out_flush(&o);
}

size_t dkim_hdr_relaxed(const uint8_t *f, size_t len, bool crlf, uint8_t *out)
{
    size_t i = 0, o = 0;
    while (i < len && f[i] != ':')
        i++;
    size_t ne = i;
    while (ne > 0 && is_wsp(f[ne - 1]))
        ne--;
    for (size_t k = 0; k < ne; k++) {
        uint8_t ch = f[k];
        out[o++] = ch >= 'A' && ch <= 'Z' ? (uint8_t)(ch + 32) : ch;
    }
    out[o++] = ':';
    bool ws = false, started = false;
    for (i++; i < len; i++) {
        uint8_t ch = f[i];
        if (ch == '\r' || ch == '\n')          /* unfold */
            continue;
        if (is_wsp(ch)) {
            ws = true;
            continue;
        }
        if (ws && started)
            out[o++] = ' ';
        ws = false;
        started = true;
        out[o++] = ch;
    }
    if (crlf) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    vl_assert(o <= len + 3);             /* no colon, no line end: name ":" CRLF */
    return o;
}

int dkim_fields_parse(const uint8_t *msg, size_t len, struct dkim_field *fields, size_t cap,
                      size_t *body_off)
{
    size_t i = 0, n = 0;
    while (i < len) {
        if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')) {
            *body_off = i + (msg[i] == '\r' ? 2 : 1);
            return (int)n;
        }
        size_t start = i;
        for (;;) {                             /* the field and its continuation lines */
            const uint8_t *nl = memchr(msg + i, '\n', len - i);
            i = nl ? (size_t)(nl - msg) + 1 : len;
            if (i >= len || !is_wsp(msg[i]))
                break;
        }
        if (n == cap)
            return VL_E_TOOBIG;
        const uint8_t *colon = memchr(msg + start, ':', i - start);
        size_t nl_len = colon ? (size_t)(colon - (msg + start)) : 0;
        while (nl_len > 0 && is_wsp(msg[start + nl_len - 1]))
            nl_len--;
        if (i - start > UINT32_MAX || start > UINT32_MAX || nl_len > UINT16_MAX)
            return VL_E_TOOBIG;
        fields[n++] = (struct dkim_field){ (uint32_t)start, (uint32_t)(i - start),
                                           (uint16_t)nl_len };
    }
    *body_off = len;
    return (int)n;
}

size_t dkim_body_offset(const uint8_t *msg, size_t len)
{
    size_t i = 0;
    while (i < len) {                          /* i is at a line start */
        if (msg[i] == '\n')
            return i + 1;
        if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')
            return i + 2;
        const uint8_t *nl = memchr(msg + i, '\n', len - i);
        if (!nl)
            break;
        i = (size_t)(nl - msg) + 1;
    }
    return len;
}
