/*
 * msg.c - message validation and normalisation (see msg.h). Pure.
 * Invariant: the output holds only CRLF line ends, no NUL, no line over
 * VL_MSG_LINE_BYTES_MAX octets, and exactly one From and one Date field.
 * Line ends in the input: CR...CR LF (CRLF, or CRLF after bare CRs) is one; a
 * bare LF is one; a CR not followed by CRs and an LF is one. So "\r\r\n" never
 * makes an empty line, and cannot end the header block early.
 */
#include "msg.h"
#include "msg_mime.h"

#include "volley/error.h"
#include "volley/limits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct msg_out { uint8_t *p; size_t len, cap; bool oom; };

struct msg_ctx {
    const struct msg_opts *o;
    struct msg_result *res;
    struct msg_problem *probs;
    size_t probs_max;
    struct msg_out out;
    unsigned n_from, n_date, n_msgid;
    bool in_headers, dropping, have_field;
    bool long_body;             /* a body line over 998 octets, to re-encode */
};

static void msg_put(struct msg_out *o, const void *src, size_t n)
{
    if (o->oom)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n)
            cap *= 2;
        uint8_t *p = realloc(o->p, cap);
        if (!p) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, src, n);
    o->len += n;
}

static void msg_problem(struct msg_ctx *c, unsigned line, const char *why)
{
    if (c->res->problems < c->probs_max)
        c->probs[c->res->problems] = (struct msg_problem){ line, why };
    c->res->problems++;
}

/* Length of a field name ending in ':' (printable ASCII but ':'), 0 if none. */
static size_t msg_field_name(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] > 32 && s[i] < 127 && s[i] != ':')
        i++;
    return (i > 0 && i < n && s[i] == ':') ? i : 0;
}

static bool msg_name_is(const uint8_t *s, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp((const char *)s, name, n) == 0;
}

static void msg_added_fields(struct msg_ctx *c)
{
    char buf[600];
    int n;
    if (c->n_date == 0) {
        time_t t = (time_t)(c->o->now_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        n = (int)strftime(buf, sizeof buf, "Date: %a, %d %b %Y %H:%M:%S +0000\r\n", &tm);
        msg_put(&c->out, buf, (size_t)n);
        c->res->added_date = true;
    }
    if (c->n_msgid == 0) {
        n = snprintf(buf, sizeof buf, "Message-ID: <%" PRIx64 ".%016" PRIx64 "@%s>\r\n",
                     c->o->now_ms, c->o->unique, c->o->hostname);
        msg_put(&c->out, buf, (size_t)n);
        c->res->added_msgid = true;
    }
    if (c->n_from == 0) {
        const char *f = c->o->env_from;
        if (f && *f)
            n = snprintf(buf, sizeof buf, "From: <%s>\r\n", f);
        else
            n = snprintf(buf, sizeof buf, "From: <MAILER-DAEMON@%s>\r\n", c->o->hostname);
        msg_put(&c->out, buf, (size_t)n);
        c->res->added_from = true;
    }
}

/* One header-block line (not empty). */
static void msg_header_line(struct msg_ctx *c, const uint8_t *s, size_t n, unsigned line)
{
    if (s[0] == ' ' || s[0] == '\t') {
        if (!c->have_field)
            msg_problem(c, line, "continuation line before any header field");
        else if (!c->dropping)
            msg_put(&c->out, s, n), msg_put(&c->out, "\r\n", 2);
        return;
    }
    size_t name = msg_field_name(s, n);
    if (name == 0) {
        msg_problem(c, line, line == 1 ? "no header block: the first line is not 'Name: value'"
                                       : "not a header field 'Name: value' "
                                         "(an empty line must separate headers and body)");
        c->have_field = false;
        return;
    }
    c->have_field = true;
    c->dropping = msg_name_is(s, name, "Bcc") || msg_name_is(s, name, "Return-Path");
    if (msg_name_is(s, name, "From") && ++c->n_from == 2)
        msg_problem(c, line, "duplicate From: field");
    if (msg_name_is(s, name, "Date") && ++c->n_date == 2)
        msg_problem(c, line, "duplicate Date: field");
    if (msg_name_is(s, name, "Message-ID"))
        c->n_msgid++;
    if (!c->dropping)
        msg_put(&c->out, s, n), msg_put(&c->out, "\r\n", 2);
}

static void msg_line(struct msg_ctx *c, const uint8_t *s, size_t n, unsigned line)
{
    if (memchr(s, 0, n))
        msg_problem(c, line, "NUL octet");
    if (n > VL_MSG_LINE_BYTES_MAX && !c->in_headers && c->o->long_lines_encode)
        c->long_body = true;
    else if (n > VL_MSG_LINE_BYTES_MAX)
        msg_problem(c, line, "line longer than 998 octets");
    if (c->in_headers && n == 0) {
        c->in_headers = false;
        msg_added_fields(c);
        msg_put(&c->out, "\r\n", 2);
        return;
    }
    if (c->in_headers) {
        msg_header_line(c, s, n, line);
        return;
    }
    msg_put(&c->out, s, n);
    msg_put(&c->out, "\r\n", 2);
}

static bool msg_has_8bit(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {                   /* 8 octets a step */
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ull)
            return true;
    }
    for (; i < n; i++)
        if (p[i] > 127)
            return true;
    return false;
}

/* Index of the first CR or LF at or after @p i (@p len if none). *cr and *lf
 * cache the next of each (SIZE_MAX: not looked for yet), so that every octet
 * is scanned at most once for each: linear. */
static size_t msg_line_end(const uint8_t *p, size_t len, size_t i, size_t *cr, size_t *lf)
{
    if (*lf == SIZE_MAX || *lf < i) {
        const uint8_t *q = memchr(p + i, '\n', len - i);
        *lf = q ? (size_t)(q - p) : len;
    }
    if (*cr == SIZE_MAX || *cr < i) {
        const uint8_t *q = memchr(p + i, '\r', *lf - i);   /* a CR after the LF: later */
        *cr = q ? (size_t)(q - p) : *lf;
    }
    return *cr < *lf ? *cr : *lf;
}

int msg_normalise(const void *in, size_t len, const struct msg_opts *o, struct msg_result *out,
                  struct msg_problem *probs, size_t probs_max)
{
    const uint8_t *p = in;
    memset(out, 0, sizeof *out);
    if (len > VL_MSG_BYTES_MAX)
        return VL_E_TOOBIG;
    struct msg_ctx c = { .o = o, .res = out, .probs = probs, .probs_max = probs_max,
                         .in_headers = true };
    if (len == 0)
        msg_problem(&c, 0, "empty message");
    unsigned line = 0;
    size_t bare_cr_end = 0;                        /* CRs before it lead to no LF */
    size_t next_cr = SIZE_MAX, next_lf = SIZE_MAX;
    /* one allocation as a rule: the output is the input plus a few fields */
    c.out.cap = len + len / 32 + 1024;
    c.out.p = malloc(c.out.cap);
    if (!c.out.p)
        c.out.cap = 0;                             /* msg_put() tries again */
    for (size_t i = 0; i < len;) {
        size_t j = msg_line_end(p, len, i, &next_cr, &next_lf);
        msg_line(&c, p + i, j - i, ++line);
        if (j < len && p[j] == '\r' && j >= bare_cr_end) {
            size_t k = j;                          /* each CR scanned once: linear */
            while (k < len && p[k] == '\r')
                k++;
            if (k < len && p[k] == '\n')
                j = k;                             /* CR...CR LF is one line end */
            else
                bare_cr_end = k;
        }
        i = j + 1;                                 /* else bare CR or LF: one line end */
    }
    if (c.in_headers && len > 0) {                 /* all headers: add the separator */
        msg_added_fields(&c);
        msg_put(&c.out, "\r\n", 2);
    }
    if (out->problems || c.out.oom) {
        free(c.out.p);
        return out->problems ? VL_E_INVALID : -ENOMEM;
    }
    if (c.long_body) {
        uint8_t *enc = NULL;
        size_t enc_len = 0;
        const char *why = NULL;
        int rc = msg_mime_encode_long(c.out.p, c.out.len, &enc, &enc_len, &out->encoded_parts,
                                      &why);
        free(c.out.p);
        if (rc < 0) {
            if (rc == VL_E_INVALID)
                msg_problem(&c, 0, why);
            return rc;
        }
        c.out.p = enc, c.out.len = enc_len;
        out->is_8bit = msg_has_8bit(enc, enc_len);
    }
    if (c.out.len > VL_MSG_BYTES_MAX) {
        free(c.out.p);
        return VL_E_TOOBIG;
    }
    /* 8-bit is a property of what is sent: a dropped Bcc: does not count. */
    out->is_8bit = out->is_8bit || msg_has_8bit(c.out.p, c.out.len);
    out->data = c.out.p;
    out->len = c.out.len;
    return 0;
}

void msg_result_fini(struct msg_result *r)
{
    free(r->data);
    r->data = NULL;
    r->len = 0;
}
