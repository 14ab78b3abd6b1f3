/*
 * http_mime.c - the HTTP API's message builder (see http_mime.h). Pure.
 * Invariant: everything written has CRLF line ends and header lines under
 * 998 octets for values the caller checked; parts are only ever 7bit (ASCII,
 * short lines, no "=_"), quoted-printable or base64.
 */
#include "http_mime.h"

#include "msg_mime.h"
#include "volley/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIME_EW_RAW_BYTES 45u   /* 45 octets -> 60 base64 chars: a 72-column encoded word */
#define MIME_B64_LINE      76u  /* RFC 2045 6.8 */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Append base64 of @p n octets; with @p wrap, CRLF after each 76 columns. */
static int b64_encode(struct hbuf *out, const uint8_t *in, size_t n, bool wrap)
{
    size_t groups = (n + 2) / 3, chars = groups * 4;
    int rc = hbuf_reserve(out, chars + (wrap ? (chars / MIME_B64_LINE + 1) * 2 : 0));
    if (rc < 0)
        return rc;
    char *o = out->p + out->len;
    size_t col = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        *o++ = B64[v >> 18 & 63];
        *o++ = B64[v >> 12 & 63];
        *o++ = i + 1 < n ? B64[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? B64[v & 63] : '=';
        col += 4;
        if (wrap && col == MIME_B64_LINE) {
            *o++ = '\r';
            *o++ = '\n';
            col = 0;
        }
    }
    if (wrap && col) {
        *o++ = '\r';
        *o++ = '\n';
    }
    out->len = (size_t)(o - out->p);
    return 0;
}

int mime_b64_decode(const char *in, size_t n, uint8_t **out, size_t *out_len)
{
    uint8_t *o = malloc(n / 4 * 3 + 3);
    if (!o)
        return -ENOMEM;
    uint32_t acc = 0;
    unsigned bits = 0, pad = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        const char *p = pad ? NULL : memchr(B64, c, 64);   /* data after '=' is refused */
        if (!p || !c)
            goto bad;
        acc = acc << 6 | (uint32_t)(p - B64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[len++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6 || pad > 2 || (acc & ((1u << bits) - 1)))   /* 1 stray char, bad padding */
        goto bad;
    *out = o;
    *out_len = len;
    return 0;
bad:
    free(o);
    return VL_E_INVALID;
}

static bool all_ascii(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] > 127)
            return false;
    return true;
}

bool mime_field_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 33 || (unsigned char)*s > 126 || *s == ':')
            return false;
    return true;
}

/* RFC 2047 encoded words for @p n octets, folded with CRLF SP between words. */
static int encoded_words(struct hbuf *out, const char *p, size_t n)
{
    size_t i = 0;
    bool first = true;
    while (i < n || first) {
        size_t take = n - i < MIME_EW_RAW_BYTES ? n - i : MIME_EW_RAW_BYTES;
        while (take > 0 && i + take < n && ((unsigned char)p[i + take] & 0xC0) == 0x80)
            take--;                                /* never split a UTF-8 sequence */
        if (take == 0 && i < n)
            take = n - i < MIME_EW_RAW_BYTES ? n - i : MIME_EW_RAW_BYTES;
        int rc = hbuf_adds(out, first ? "=?UTF-8?B?" : "\r\n =?UTF-8?B?");
        if (rc == 0)
            rc = b64_encode(out, (const uint8_t *)p + i, take, false);
        if (rc == 0)
            rc = hbuf_add(out, "?=", 2);
        if (rc < 0)
            return rc;
        i += take;
        first = false;
    }
    return 0;
}

int mime_header_unstructured(struct hbuf *out, const char *name, const char *v, size_t n)
{
    int rc = hbuf_adds(out, name);
    if (rc == 0)
        rc = hbuf_add(out, ": ", 2);
    if (rc == 0)
        rc = all_ascii(v, n) ? hbuf_add(out, v, n) : encoded_words(out, v, n);
    return rc < 0 ? rc : hbuf_add(out, "\r\n", 2);
}

static bool atext_phrase(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ' ' || strchr("!#$%&'*+-/=?^_`{|}~", c)))
            return false;
    }
    return n > 0 && p[0] != ' ' && p[n - 1] != ' ';
}

/* "Name: phrase <email>" CRLF, or "Name: email" without a display name. */
static int addr_header(struct hbuf *out, const char *name, struct mime_str email,
                       struct mime_str disp)
{
    int rc = hbuf_adds(out, name);
    if (rc == 0)
        rc = hbuf_add(out, ": ", 2);
    if (rc == 0 && disp.p && disp.len) {
        if (!all_ascii(disp.p, disp.len))
            rc = encoded_words(out, disp.p, disp.len);
        else if (atext_phrase(disp.p, disp.len))
            rc = hbuf_add(out, disp.p, disp.len);
        else {
            rc = hbuf_add(out, "\"", 1);
            for (size_t i = 0; rc == 0 && i < disp.len; i++) {
                if (disp.p[i] == '"' || disp.p[i] == '\\')
                    rc = hbuf_add(out, "\\", 1);
                if (rc == 0)
                    rc = hbuf_add(out, disp.p + i, 1);
            }
            if (rc == 0)
                rc = hbuf_add(out, "\"", 1);
        }
        if (rc == 0)
            rc = hbuf_add(out, " <", 2);
        if (rc == 0)
            rc = hbuf_add(out, email.p, email.len);
        if (rc == 0)
            rc = hbuf_add(out, ">", 1);
    } else if (rc == 0) {
        rc = hbuf_add(out, email.p, email.len);
    }
    return rc < 0 ? rc : hbuf_add(out, "\r\n", 2);
}

/* @p in with every line end made CRLF, into @p tmp; reports whether the
 * result can go as 7bit (printable ASCII or tab, lines <= 998, no "=_"). */
static int crlf_text(const char *in, size_t n, struct hbuf *tmp, bool *is7)
{
    tmp->len = 0;
    int rc = hbuf_reserve(tmp, 2 * n + 2);        /* worst case: every octet a bare LF */
    if (rc < 0)
        return rc;
    char *o = tmp->p;
    bool ok = true;
    size_t line = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 32 && c <= 126) {                /* the common case first */
            ok &= !(c == '_' && i > 0 && in[i - 1] == '=');
            line++;
            *o++ = (char)c;
            continue;
        }
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < n && in[i + 1] == '\n')
                i++;
            ok &= line <= 998;
            line = 0;
            *o++ = '\r';
            *o++ = '\n';
            continue;
        }
        ok &= c == '\t';
        line++;
        *o++ = (char)c;
    }
    ok &= line <= 998;
    tmp->len = (size_t)(o - tmp->p);
    *is7 = ok;
    return 0;
}

/* Content-Type and Content-Transfer-Encoding, a blank line and the text. */
static int text_part(struct hbuf *out, const char *subtype, struct mime_str s)
{
    struct hbuf tmp = { .max = out->max };
    bool is7 = true;
    int rc = crlf_text(s.p ? s.p : "", s.p ? s.len : 0, &tmp, &is7);
    if (rc == 0)
        rc = hbuf_addf(out, "Content-Type: text/%s; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: %s\r\n\r\n", subtype,
                       is7 ? "7bit" : "quoted-printable");
    if (rc == 0 && is7) {
        rc = hbuf_add(out, tmp.p, tmp.len);
    } else if (rc == 0) {
        uint8_t *q = NULL;
        size_t ql = 0, qc = 0;
        rc = msg_qp_encode((const uint8_t *)tmp.p, tmp.len, &q, &ql, &qc);
        if (rc == 0)
            rc = hbuf_add(out, q, ql);
        free(q);
    }
    hbuf_fini(&tmp);
    return rc;
}

/* The body entity (text, html or alternative) with its Content-* headers. */
static int body_entity(const struct mime_msg *m, struct hbuf *out)
{
    if (!(m->text.p && m->html.p))
        return text_part(out, m->html.p ? "html" : "plain", m->html.p ? m->html : m->text);
    int rc = hbuf_addf(out, "Content-Type: multipart/alternative; boundary=\"=_vla%016llx\""
                       "\r\n\r\n--=_vla%016llx\r\n", (unsigned long long)m->unique,
                       (unsigned long long)m->unique);
    if (rc == 0)
        rc = text_part(out, "plain", m->text);
    if (rc == 0)
        rc = hbuf_addf(out, "\r\n--=_vla%016llx\r\n", (unsigned long long)m->unique);
    if (rc == 0)
        rc = text_part(out, "html", m->html);
    if (rc == 0)
        rc = hbuf_addf(out, "\r\n--=_vla%016llx--\r\n", (unsigned long long)m->unique);
    return rc;
}

static bool hdrs_name(const struct mime_msg *m, const char *name)
{
    for (size_t i = 0; i < m->hdr_count; i++)
        if (!strcasecmp(m->hdrs[i].name, name))
            return true;
    return false;
}

static int top_headers(const struct mime_msg *m, struct hbuf *out)
{
    int rc = 0;
    if (m->from_email.p && !hdrs_name(m, "From"))
        rc = addr_header(out, "From", m->from_email, m->from_name);
    if (rc == 0 && m->to_email.p && !hdrs_name(m, "To"))
        rc = addr_header(out, "To", m->to_email, m->to_name);
    if (rc == 0 && m->reply_to_email.p && !hdrs_name(m, "Reply-To"))
        rc = addr_header(out, "Reply-To", m->reply_to_email, m->reply_to_name);
    if (rc == 0 && m->subject.p && !hdrs_name(m, "Subject"))
        rc = mime_header_unstructured(out, "Subject", m->subject.p, m->subject.len);
    if (rc == 0 && !hdrs_name(m, "Date")) {
        time_t t = (time_t)(m->now_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char date[64];
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
        rc = hbuf_addf(out, "Date: %s\r\n", date);
    }
    if (rc == 0 && !hdrs_name(m, "Message-ID"))
        rc = hbuf_addf(out, "Message-ID: <%016llx.%llx@%s>\r\n", (unsigned long long)m->unique,
                       (unsigned long long)m->now_ms, m->hostname);
    for (size_t i = 0; rc == 0 && i < m->hdr_count; i++)
        rc = mime_header_unstructured(out, m->hdrs[i].name, m->hdrs[i].value.p,
                                      m->hdrs[i].value.len);
    if (rc == 0)
        rc = hbuf_adds(out, "MIME-Version: 1.0\r\n");
    return rc;
}

int mime_build(const struct mime_msg *m, struct hbuf *out)
{
    int rc = top_headers(m, out);
    if (rc < 0 || m->att_count == 0)
        return rc < 0 ? rc : body_entity(m, out);
    unsigned long long u = (unsigned long long)m->unique;
    rc = hbuf_addf(out, "Content-Type: multipart/mixed; boundary=\"=_vlm%016llx\"\r\n\r\n"
                   "This is a multi-part message in MIME format.\r\n--=_vlm%016llx\r\n", u, u);
    if (rc == 0)
        rc = body_entity(m, out);
    for (size_t i = 0; rc == 0 && i < m->att_count; i++) {
        rc = hbuf_addf(out, "\r\n--=_vlm%016llx\r\n", u);
        if (rc == 0)
            rc = hbuf_add(out, m->atts[i].p, m->atts[i].len);
    }
    if (rc == 0)
        rc = hbuf_addf(out, "\r\n--=_vlm%016llx--\r\n", u);
    return rc;
}

static bool fname_plain(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 32 || (unsigned char)*s > 126 || *s == '"' || *s == '\\')
            return false;
    return true;
}

int mime_attachment_part(const uint8_t *data, size_t n, const char *ctype, const char *fname,
                         struct hbuf *out)
{
    int rc = hbuf_addf(out, "Content-Type: %s\r\n", ctype);
    if (rc == 0 && fname && *fname) {
        if (fname_plain(fname) && strlen(fname) < 900) {
            rc = hbuf_addf(out, "Content-Disposition: attachment; filename=\"%s\"\r\n", fname);
        } else {                                  /* RFC 2231: charset'lang'%XX */
            rc = hbuf_adds(out, "Content-Disposition: attachment;\r\n filename*=UTF-8''");
            size_t col = 20;
            for (const unsigned char *p = (const unsigned char *)fname; rc == 0 && *p; p++) {
                bool lit = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                           (*p >= '0' && *p <= '9') || strchr("!#$&+-.^_`|~", *p);
                rc = lit ? hbuf_add(out, p, 1) : hbuf_addf(out, "%%%02X", *p);
                col += lit ? 1 : 3;
                if (rc == 0 && col > 900)
                    rc = VL_E_TOOBIG;            /* no continuations: names stay short */
            }
            if (rc == 0)
                rc = hbuf_add(out, "\r\n", 2);
        }
    } else if (rc == 0) {
        rc = hbuf_adds(out, "Content-Disposition: attachment\r\n");
    }
    if (rc == 0)
        rc = hbuf_adds(out, "Content-Transfer-Encoding: base64\r\n\r\n");
    if (rc == 0)
        rc = b64_encode(out, data, n, true);
    if (rc == 0 && n > 0)
        out->len -= 2;               /* the CRLF before the next boundary belongs to it */
    return rc;
}
