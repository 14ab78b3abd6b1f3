/*
 * dkim_fuzz.c - DKIM canonicalisation and header splitting (engine/dkim/dkim.h)
 * over arbitrary message bytes.
 *
 * Invariants: header fields lie in order inside the input, end where the next
 * begins, and the body starts after them; relaxed body output holds no tab,
 * no two spaces in a row, no space before a CRLF, ends with CRLF when not
 * empty and never with an empty line; simple body output ends with exactly
 * one CRLF; both are idempotent (canonicalising the output again changes
 * nothing); a relaxed header has a lower-case name, no tab, no two spaces,
 * and no space before its CRLF; a From: domain, when found, is lower case
 * with no blank.
 */
#include <string.h>

#include "dkim.h"
#include "fuzz.h"
#include "volley/error.h"

struct cbuf {
    uint8_t *b;
    size_t n, cap;
};

static void sink_cbuf(void *ctx, const uint8_t *p, size_t n)
{
    struct cbuf *c = ctx;
    FUZZ_CHECK(c->n + n <= c->cap);
    memcpy(c->b + c->n, p, n);
    c->n += n;
}

/* The relaxed body the slow, obvious way (RFC 6376 3.4.4), to compare with
 * the fast path: lines end at LF (one CR before it belongs to the end); each
 * run of WSP becomes one SP, WSP at a line end goes, empty lines at the end
 * go, every kept line ends with CRLF. */
static size_t ref_relaxed(const uint8_t *in, size_t len, uint8_t *out)
{
    size_t o = 0, keep = 0, i = 0;          /* keep: output length up to the last non-empty line */
    while (i < len) {
        size_t e = i;
        while (e < len && in[e] != '\n')
            e++;
        size_t ce = e < len && e > i && in[e - 1] == '\r' ? e - 1 : e;
        size_t start = o;
        bool ws = false;
        for (size_t k = i; k < ce; k++) {
            if (in[k] == ' ' || in[k] == '\t') {
                ws = true;
                continue;
            }
            if (ws)
                out[o++] = ' ';
            ws = false;
            out[o++] = in[k];
        }
        bool empty = o == start;
        out[o++] = '\r';
        out[o++] = '\n';
        if (!empty)
            keep = o;
        i = e < len ? e + 1 : len;
    }
    return keep;
}

static void check_body(enum dkim_canon cn, const uint8_t *in, size_t len)
{
    static uint8_t out1[FUZZ_INPUT_MAX * 2 + 4], out2[FUZZ_INPUT_MAX * 2 + 4];
    struct cbuf a = { out1, 0, sizeof out1 }, b = { out2, 0, sizeof out2 };
    dkim_body_canon(cn, in, len, sink_cbuf, &a);
    dkim_body_canon(cn, a.b, a.n, sink_cbuf, &b);
    FUZZ_CHECK(a.n == b.n && memcmp(a.b, b.b, a.n) == 0);          /* idempotent */
    if (cn == DKIM_CANON_RELAXED) {
        size_t rn = ref_relaxed(in, len, out2);
        FUZZ_CHECK(rn == a.n && memcmp(out2, a.b, rn) == 0);       /* = the slow way */
    }
    if (cn == DKIM_CANON_SIMPLE) {
        FUZZ_CHECK(a.n >= 2 && a.b[a.n - 2] == '\r' && a.b[a.n - 1] == '\n');
        FUZZ_CHECK(a.n < 4 || memcmp(a.b + a.n - 4, "\r\n\r\n", 4) != 0 || a.n == 2);
        return;
    }
    if (a.n) {
        FUZZ_CHECK(a.n >= 2 && a.b[a.n - 2] == '\r' && a.b[a.n - 1] == '\n');
        FUZZ_CHECK(a.n < 4 || memcmp(a.b + a.n - 4, "\r\n\r\n", 4) != 0 || a.n == 2);
        FUZZ_CHECK(!(a.n == 2));                    /* only empty lines -> empty output */
    }
    for (size_t i = 0; i < a.n; i++) {
        FUZZ_CHECK(a.b[i] != '\t');
        if (a.b[i] == ' ' && i + 1 < a.n)
            FUZZ_CHECK(a.b[i + 1] != ' ' && !(a.b[i + 1] == '\r' && i + 2 < a.n
                                               && a.b[i + 2] == '\n'));
        if (a.b[i] == '\n')
            FUZZ_CHECK(i > 0 && a.b[i - 1] == '\r');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dkim_field f[DKIM_FIELDS_MAX];
    static uint8_t h[FUZZ_INPUT_MAX + 3];
    if (size > FUZZ_INPUT_MAX)
        return 0;
    size_t body = (size_t)-1;
    int n = dkim_fields_parse(data, size, f, DKIM_FIELDS_MAX, &body);
    if (n == VL_E_TOOBIG)
        return 0;
    FUZZ_CHECK(n >= 0 && body <= size);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(f[i].off == at && f[i].len > 0 && f[i].name_len <= f[i].len);
        at = f[i].off + f[i].len;
        size_t hl = dkim_hdr_relaxed(data + f[i].off, f[i].len, true, h);
        FUZZ_CHECK(hl >= 3 && hl <= f[i].len + 3 && h[hl - 2] == '\r' && h[hl - 1] == '\n');
        bool in_name = true;
        for (size_t k = 0; k + 2 < hl; k++) {
            if (in_name && h[k] == ':')
                in_name = false;
            else if (in_name)
                FUZZ_CHECK(!(h[k] >= 'A' && h[k] <= 'Z'));
            else
                FUZZ_CHECK(h[k] != '\t' && h[k] != '\r' && h[k] != '\n'
                           && !(h[k] == ' ' && (h[k + 1] == ' ' || k + 3 == hl)));
        }
    }
    FUZZ_CHECK(at <= body);
    char dom[256];
    int dl = dkim_from_domain(data, f, (unsigned)n, dom, sizeof dom);
    if (dl >= 0) {
        FUZZ_CHECK((size_t)dl == strlen(dom) && dl > 0);
        for (int k = 0; k < dl; k++)
            FUZZ_CHECK(dom[k] != ' ' && dom[k] != '\t' && !(dom[k] >= 'A' && dom[k] <= 'Z'));
    }
    check_body(DKIM_CANON_RELAXED, data + body, size - body);
    check_body(DKIM_CANON_SIMPLE, data + body, size - body);
    return 0;
}
