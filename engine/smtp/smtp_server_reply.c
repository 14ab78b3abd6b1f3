/*
 * smtp_server_reply.c - the replies of the server machine (smtp_server.c):
 * proposing one (code, enhanced status, text) in an event, and formatting the
 * answer to the wire, multi-line with the capabilities for EHLO. Pure.
 *
 * Invariants:
 *  - A proposed text always fits struct smtp_server_reply.text (truncated);
 *    with ENHANCEDSTATUSCODES on it starts with x.y.z, except on a 3xx.
 *  - A formatted line is "DDD" SP/"-" text CRLF with every control byte of the
 *    text turned into SP, so no reply text (the policy's either) can inject a
 *    line; the output never passes the caller's capacity (asserted).
 */
#include "smtp_server.h"
#include "smtp_server_int.h"

#include "volley/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Propose @p code with enhanced status @p esc (NULL: none) and @p text. */
void ss_reply(const struct smtp_server *s, struct smtp_server_event *ev, unsigned code,
                     const char *esc, const char *text)
{
    char *t = ev->reply.text;
    size_t n = 0, cap = sizeof ev->reply.text - 1;
    ev->reply.code = (uint16_t)code;
    if (esc && s->conf->enhancedstatuscodes && code / 100 != 3) {
        n = strlen(esc);                 /* "x.y.z": far below cap */
        memcpy(t, esc, n);
        t[n++] = ' ';
    }
    size_t tl = strnlen(text, cap - n);  /* the hostname may be long: truncate */
    memcpy(t + n, text, tl);
    t[n + tl] = '\0';
}

/* Append one reply line to @p out; control characters in @p text become SP so
 * that no policy text can inject a line. Returns the new length. */
static size_t ss_line_put(char *out, size_t cap, size_t n, unsigned code, char sep,
                          const char *text, size_t text_max)
{
    size_t tl = strnlen(text, text_max);
    vl_assert(n + 4 + tl + 2 <= cap);
    out[n++] = (char)('0' + code / 100);
    out[n++] = (char)('0' + code / 10 % 10);
    out[n++] = (char)('0' + code % 10);
    out[n++] = sep;
    for (size_t i = 0; i < tl; i++) {
        unsigned char c = (unsigned char)text[i];
        out[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    out[n++] = '\r';
    out[n++] = '\n';
    return n;
}

/* The EHLO capability lines, per conf and TLS state; returns how many. */
static unsigned ss_ehlo_caps(const struct smtp_server *s, char caps[][32])
{
    const struct smtp_server_conf *c = s->conf;
    const struct { bool on; const char *kw; } opt[] = {
        { c->pipelining, "PIPELINING" }, { c->eightbitmime, "8BITMIME" },
        { c->enhancedstatuscodes, "ENHANCEDSTATUSCODES" }, { c->smtputf8, "SMTPUTF8" },
        { c->dsn, "DSN" }, { c->starttls && !s->tls_active, "STARTTLS" },
        { c->chunking, "CHUNKING" }, { c->auth && s->tls_active, "AUTH PLAIN LOGIN" },
    };
    unsigned n = 1;
    if (c->size_max)             /* RFC 1870: a bare SIZE announces no limit */
        snprintf(caps[0], 32, "SIZE %llu", (unsigned long long)c->size_max);
    else
        snprintf(caps[0], 32, "SIZE");
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++)
        if (opt[i].on)
            snprintf(caps[n++], 32, "%s", opt[i].kw);
    return n;
}

size_t ss_format(const struct smtp_server *s, const struct smtp_server_reply *r,
                 char *out, size_t cap)
{
    size_t tmax = sizeof r->text;
    if (s->pending != SMTP_SCMD_EHLO || r->code != 250)
        return ss_line_put(out, cap, 0, r->code, ' ', r->text, tmax);
    char caps[10][32];
    unsigned ncaps = ss_ehlo_caps(s, caps);
    size_t n = ss_line_put(out, cap, 0, r->code, ncaps ? '-' : ' ', r->text, tmax);
    for (unsigned i = 0; i < ncaps; i++)
        n = ss_line_put(out, cap, n, r->code, i + 1 < ncaps ? '-' : ' ', caps[i], 32);
    return n;
}

