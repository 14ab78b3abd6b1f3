/*
 * fbl_arf.c - ARF (RFC 5965) report parser. Pure: no I/O, no allocation.
 * Accepts multipart/report; report-type=feedback-report with a
 * message/feedback-report part (Feedback-Type required) and, optionally, the
 * original as message/rfc822 or text/rfc822-headers. The recipient is
 * Original-Rcpt-To, else the original's To:, else its Received: "for <x>".
 * Header lines are unfolded; names compare case-insensitively.
 */
#include "fbl.h"

#include "volley/error.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct span { const char *p; size_t n; };

/* End of the header block starting at @p p: the offset of the blank line's
 * CRLF (or n), and the body start in *@p body. */
static size_t arf_header_end(const char *p, size_t n, size_t *body)
{
    if (n >= 2 && p[0] == '\r' && p[1] == '\n') {
        *body = 2;
        return 0;
    }
    for (size_t i = 0; i + 3 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
            *body = i + 4;
            return i + 2;
        }
    *body = n;
    return n;
}

/* The first header @p name in the block [p, p+n), unfolded, blanks trimmed,
 * into @p out (cap). @return true if found. */
static bool arf_header(const char *p, size_t n, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n;) {
        const char *e = memchr(p + i, '\n', n - i);
        size_t le = e ? (size_t)(e - p) + 1 : n;
        if (le - i > nl && !strncasecmp(p + i, name, nl) && p[i + nl] == ':') {
            size_t o = 0;
            size_t j = i + nl + 1;
            for (;;) {
                for (; j < le && o + 1 < cap; j++)
                    if (p[j] != '\r' && p[j] != '\n')
                        out[o++] = p[j] == '\t' ? ' ' : p[j];
                j = le;
                if (j < n && (p[j] == ' ' || p[j] == '\t')) {    /* folded */
                    const char *e2 = memchr(p + j, '\n', n - j);
                    le = e2 ? (size_t)(e2 - p) + 1 : n;
                    continue;
                }
                break;
            }
            while (o && out[o - 1] == ' ')
                o--;
            size_t s = 0;
            while (s < o && out[s] == ' ')
                s++;
            memmove(out, out + s, o - s);
            out[o - s] = '\0';
            return true;
        }
        i = le;
    }
    if (cap)
        out[0] = '\0';
    return false;
}

/* Parameter @p key of a Content-Type value (quoted or not) into @p out. */
static bool arf_param(const char *ct, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = strchr(ct, ';'); p; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ')
            q++;
        if (strncasecmp(q, key, kl) || q[kl] != '=')
            continue;
        q += kl + 1;
        size_t o = 0;
        if (*q == '"') {
            for (q++; *q && *q != '"' && o + 1 < cap; q++)
                out[o++] = *q;
        } else {
            for (; *q && *q != ';' && *q != ' ' && o + 1 < cap; q++)
                out[o++] = *q;
        }
        out[o] = '\0';
        return o > 0;
    }
    return false;
}

static bool arf_type_is(const char *ct, const char *type)
{
    size_t n = strlen(type);
    return !strncasecmp(ct, type, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* An addr-spec out of "rfc822; a@b", "<a@b>", "Name <a@b>, c@d" (the first). */
static bool arf_addr(const char *v, char *out, size_t cap)
{
    const char *s = strchr(v, ';');
    if (s && !strncasecmp(v, "rfc822", 6))
        v = s + 1;
    const char *lt = strchr(v, '<');
    const char *b = lt ? lt + 1 : v;
    while (*b == ' ')
        b++;
    size_t n = 0;
    while (b[n] && b[n] != '>' && b[n] != ',' && b[n] != ' ' && b[n] != ';')
        n++;
    if (n == 0 || n >= cap || !memchr(b, '@', n))
        return false;
    memcpy(out, b, n);
    out[n] = '\0';
    return true;
}

/* The parts of a multipart body [p, p+n) with @p boundary: calls into @p parts
 * (at most @p max). @return the count. */
static size_t arf_parts(const char *p, size_t n, const char *boundary, struct span *parts,
                        size_t max)
{
    char delim[FBL_FIELD_BYTES_MAX + 8];
    int dl = snprintf(delim, sizeof delim, "--%s", boundary);
    size_t count = 0;
    const char *start = NULL;
    for (size_t i = 0; i < n;) {
        const char *e = memchr(p + i, '\n', n - i);
        size_t le = e ? (size_t)(e - p) + 1 : n;
        bool at_line = (size_t)dl <= le - i && !memcmp(p + i, delim, (size_t)dl);
        if (at_line) {
            if (start && count < max)
                parts[count++] = (struct span){ start, (size_t)(p + i - start) };
            if (le - i >= (size_t)dl + 2 && p[i + dl] == '-' && p[i + dl + 1] == '-')
                return count;     /* closing delimiter */
            start = p + le;
        }
        i = le;
    }
    return count;
}

int fbl_arf_parse(const char *msg, size_t len, struct fbl_report *out, const char **why)
{
    memset(out, 0, sizeof *out);
    char ct[512], boundary[FBL_FIELD_BYTES_MAX], rt[64];
    size_t body;
    size_t he = arf_header_end(msg, len, &body);
    if (!arf_header(msg, he, "Content-Type", ct, sizeof ct) || !arf_type_is(ct, "multipart/report")) {
        *why = "not multipart/report";
        return VL_E_INVALID;
    }
    if (!arf_param(ct, "report-type", rt, sizeof rt) || strcasecmp(rt, "feedback-report")) {
        *why = "report-type is not feedback-report";
        return VL_E_INVALID;
    }
    if (!arf_param(ct, "boundary", boundary, sizeof boundary)) {
        *why = "no MIME boundary";
        return VL_E_INVALID;
    }
    struct span parts[16];
    size_t np = arf_parts(msg + body, len - body, boundary, parts, 16);
    bool have_fb = false;
    char orig_to[512] = "", orig_recv[512] = "";
    for (size_t i = 0; i < np; i++) {
        size_t pb;
        size_t phe = arf_header_end(parts[i].p, parts[i].n, &pb);
        char pct[256];
        if (!arf_header(parts[i].p, phe, "Content-Type", pct, sizeof pct))
            snprintf(pct, sizeof pct, "text/plain");
        const char *b = parts[i].p + pb;
        size_t bn = parts[i].n - pb;
        if (arf_type_is(pct, "message/feedback-report")) {
            size_t fe = arf_header_end(b, bn, &(size_t){ 0 });
            have_fb = arf_header(b, fe, "Feedback-Type", out->feedback_type,
                                 sizeof out->feedback_type);
            arf_header(b, fe, "User-Agent", out->user_agent, sizeof out->user_agent);
            arf_header(b, fe, "Version", out->version, sizeof out->version);
            arf_header(b, fe, "Source-IP", out->source_ip, sizeof out->source_ip);
            arf_header(b, fe, "Arrival-Date", out->arrival_date, sizeof out->arrival_date);
            arf_header(b, fe, "Reported-Domain", out->reported_domain,
                       sizeof out->reported_domain);
            char v[512];
            if (arf_header(b, fe, "Original-Mail-From", v, sizeof v))
                arf_addr(v, out->mail_from, sizeof out->mail_from);
            if (arf_header(b, fe, "Original-Rcpt-To", v, sizeof v)
                && arf_addr(v, out->rcpt, sizeof out->rcpt))
                snprintf(out->rcpt_source, sizeof out->rcpt_source, "Original-Rcpt-To");
        } else if (arf_type_is(pct, "message/rfc822") || arf_type_is(pct, "text/rfc822-headers")) {
            size_t oe = arf_header_end(b, bn, &(size_t){ 0 });
            arf_header(b, oe, "To", orig_to, sizeof orig_to);
            arf_header(b, oe, "Message-ID", out->message_id, sizeof out->message_id);
            char r[512];
            if (arf_header(b, oe, "Received", r, sizeof r)) {
                char *f = strstr(r, "for <");
                if (f)
                    snprintf(orig_recv, sizeof orig_recv, "%s", f + 4);
            }
        }
    }
    if (!have_fb || !out->feedback_type[0]) {
        *why = "no message/feedback-report part with a Feedback-Type";
        return VL_E_INVALID;
    }
    for (char *c = out->feedback_type; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (!out->rcpt[0] && orig_to[0] && arf_addr(orig_to, out->rcpt, sizeof out->rcpt))
        snprintf(out->rcpt_source, sizeof out->rcpt_source, "original To");
    if (!out->rcpt[0] && orig_recv[0] && arf_addr(orig_recv, out->rcpt, sizeof out->rcpt))
        snprintf(out->rcpt_source, sizeof out->rcpt_source, "original Received");
    if (!out->rcpt[0]) {
        *why = "no complained-about recipient (Original-Rcpt-To, or To: of the original)";
        return VL_E_INVALID;
    }
    return 0;
}
