/*
 * smtp_ehlo.c - EHLO capability parser. Pure.
 * Invariants: reads at most @p len bytes of a line; an unreadable SIZE value
 * leaves SIZE unoffered (we then never send SIZE= nor enforce a limit).
 * Diagnostics: none; never logs.
 */
#include "smtp_ehlo.h"

#include <string.h>

struct ehlo_kw { const char *name; uint8_t len; uint32_t ext; };

static const struct ehlo_kw ehlo_kws[] = {
    { "SIZE", 4, SMTP_EXT_SIZE },
    { "PIPELINING", 10, SMTP_EXT_PIPELINING },
    { "8BITMIME", 8, SMTP_EXT_8BITMIME },
    { "STARTTLS", 8, SMTP_EXT_STARTTLS },
    { "ENHANCEDSTATUSCODES", 19, SMTP_EXT_ENHANCEDSTATUSCODES },
    { "SMTPUTF8", 8, SMTP_EXT_SMTPUTF8 },
    { "CHUNKING", 8, SMTP_EXT_CHUNKING },
    { "DSN", 3, SMTP_EXT_DSN },
    { "AUTH", 4, SMTP_EXT_AUTH },
};

static const struct ehlo_kw ehlo_auth[] = {
    { "PLAIN", 5, SMTP_AUTH_PLAIN },
    { "LOGIN", 5, SMTP_AUTH_LOGIN },
    { "CRAM-MD5", 8, SMTP_AUTH_CRAM_MD5 },
    { "XOAUTH2", 7, SMTP_AUTH_XOAUTH2 },
};

void smtp_ehlo_init(struct smtp_ehlo *e)
{
    memset(e, 0, sizeof *e);
}

static bool ehlo_eq(const char *s, size_t len, const char *upper, size_t ulen)
{
    if (len != ulen)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        if (c != upper[i])
            return false;
    }
    return true;
}

/* Next space-separated token of [*p, end); empty when none is left. */
static size_t ehlo_token(const char **p, const char *end, const char **tok)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    const char *t = s;
    while (s < end && *s != ' ' && *s != '\t')
        s++;
    *tok = t;
    *p = s;
    return (size_t)(s - t);
}

/* SIZE parameter: digits only, at most 19 of them (fits uint64 without overflow). */
static bool ehlo_size(const char *s, size_t len, uint64_t *out)
{
    if (len == 0) {
        *out = 0;
        return true;
    }
    if (len > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10u + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static void ehlo_auth_mechs(struct smtp_ehlo *e, const char *p, const char *end)
{
    const char *tok;
    size_t n;
    while ((n = ehlo_token(&p, end, &tok)) > 0) {
        uint32_t bit = SMTP_AUTH_OTHER;
        for (size_t i = 0; i < sizeof ehlo_auth / sizeof ehlo_auth[0]; i++)
            if (ehlo_eq(tok, n, ehlo_auth[i].name, ehlo_auth[i].len))
                bit = ehlo_auth[i].ext;
        e->auth |= bit;
        e->auth_count++;
    }
}

void smtp_ehlo_line(struct smtp_ehlo *e, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    const char *kw;
    size_t kw_len = ehlo_token(&p, end, &kw);
    if (kw_len == 0)
        return;
    /* Old servers write "AUTH=LOGIN PLAIN" (pre-RFC 4954 syntax). */
    if (kw_len > 5 && ehlo_eq(kw, 5, "AUTH=", 5)) {
        e->ext |= SMTP_EXT_AUTH;
        ehlo_auth_mechs(e, kw + 5, end);
        return;
    }
    for (size_t i = 0; i < sizeof ehlo_kws / sizeof ehlo_kws[0]; i++) {
        if (!ehlo_eq(kw, kw_len, ehlo_kws[i].name, ehlo_kws[i].len))
            continue;
        if (ehlo_kws[i].ext == SMTP_EXT_SIZE) {
            const char *arg;
            size_t arg_len = ehlo_token(&p, end, &arg);
            uint64_t v;
            if (!ehlo_size(arg, arg_len, &v))
                return;
            e->size_max = v;
        } else if (ehlo_kws[i].ext == SMTP_EXT_AUTH) {
            ehlo_auth_mechs(e, p, end);
        }
        e->ext |= ehlo_kws[i].ext;
        return;
    }
}
