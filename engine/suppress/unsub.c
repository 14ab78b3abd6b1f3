/*
 * unsub.c - one-click unsubscribe: configuration, header lines, tokens (see
 * unsub.h).
 * Invariant: a token verifies only if its payload is byte for byte the one
 * the MAC was made over; the MAC is compared in constant time.
 */
#include "unsub.h"

#include "volley/addr.h"
#include "volley/error.h"

#include <ctype.h>
#include <errno.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define UNSUB_MAC_BYTES 16u
#define UNSUB_PAYLOAD_BYTES_MAX (2u + 255u + 256u + UNSUB_CAMPAIGN_BYTES_MAX + 4u)

static const char B64U[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64u_enc(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = B64U[v >> 18 & 63];
        out[o++] = B64U[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = B64U[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = B64U[v & 63];
    }
    return o;
}

/* @return decoded length, or -1 (bad character, or bits left over). */
static long b64u_dec(const char *in, size_t n, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = memchr(B64U, in[i], 64);
        if (!p || !in[i])
            return -1;
        acc = acc << 6 | (uint32_t)(p - B64U);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6 || (acc & ((1u << bits) - 1)))
        return -1;
    return (long)o;
}

static int mac(const char *secret, size_t sl, const uint8_t *p, size_t n,
               uint8_t out[UNSUB_MAC_BYTES])
{
    uint8_t full[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!HMAC(EVP_sha256(), secret, (int)sl, p, n, full, &len) || len < UNSUB_MAC_BYTES)
        return VL_E_INVALID;
    memcpy(out, full, UNSUB_MAC_BYTES);
    return 0;
}

int unsub_token_make(const char *secret, size_t secret_len, const struct unsub_claims *c,
                     char *out)
{
    char payload[UNSUB_PAYLOAD_BYTES_MAX + 1];
    if (strchr(c->rcpt, '\n') || strchr(c->domain, '\n') || strchr(c->campaign, '\n'))
        return VL_E_INVALID;
    int n = snprintf(payload, sizeof payload, "1\n%s\n%s\n%s", c->rcpt, c->domain, c->campaign);
    if (n < 0 || (size_t)n >= sizeof payload)
        return VL_E_INVALID;
    uint8_t m[UNSUB_MAC_BYTES];
    if (mac(secret, secret_len, (const uint8_t *)payload, (size_t)n, m) < 0)
        return VL_E_INVALID;
    size_t o = b64u_enc((const uint8_t *)payload, (size_t)n, out);
    out[o++] = '.';
    o += b64u_enc(m, sizeof m, out + o);
    out[o] = '\0';
    return (int)o;
}

static int claim_field(const char **p, const char *end, char *out, size_t cap, bool last)
{
    const char *nl = last ? end : memchr(*p, '\n', (size_t)(end - *p));
    if (!nl || (size_t)(nl - *p) >= cap)
        return -1;
    memcpy(out, *p, (size_t)(nl - *p));
    out[nl - *p] = '\0';
    *p = last ? end : nl + 1;
    return 0;
}

int unsub_token_check(const char *secret, size_t secret_len, const char *tok, size_t n,
                      struct unsub_claims *c)
{
    const char *dot = memchr(tok, '.', n);
    if (!dot || n > UNSUB_TOKEN_BYTES_MAX)
        return VL_E_INVALID;
    uint8_t payload[UNSUB_PAYLOAD_BYTES_MAX], got[UNSUB_MAC_BYTES + 2], want[UNSUB_MAC_BYTES];
    long pl = b64u_dec(tok, (size_t)(dot - tok), payload, sizeof payload);
    long ml = b64u_dec(dot + 1, n - (size_t)(dot - tok) - 1, got, sizeof got);
    if (pl < 2 || ml != UNSUB_MAC_BYTES || mac(secret, secret_len, payload, (size_t)pl, want) < 0
        || CRYPTO_memcmp(got, want, UNSUB_MAC_BYTES) != 0)
        return VL_E_INVALID;
    const char *p = (const char *)payload, *end = p + pl;
    if (memchr(p, '\0', (size_t)pl) || p[0] != '1' || p[1] != '\n')
        return VL_E_INVALID;
    p += 2;
    if (claim_field(&p, end, c->rcpt, sizeof c->rcpt, false) < 0 ||
        claim_field(&p, end, c->domain, sizeof c->domain, false) < 0 ||
        claim_field(&p, end, c->campaign, sizeof c->campaign, true) < 0)
        return VL_E_INVALID;
    return 0;
}

int unsub_conf_parse(struct unsub_conf *c, const char *const *specs, unsigned n,
                     const char *secret_file, char *buf, size_t cap, const char **why)
{
    memset(c, 0, sizeof *c);
    if (n > UNSUB_DOMAINS_MAX) {
        *why = "--unsub: more than 64 domains";
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        const char *v = specs[i], *eq = strchr(v, '=');
        struct unsub_dom *u = &c->dom[i];
        size_t dl = eq ? (size_t)(eq - v) : 0;
        const char *url = eq ? eq + 1 : "";
        bool url_ok = (!strncmp(url, "https://", 8) || !strncmp(url, "http://", 7)) &&
                      strlen(url) < sizeof u->base && !strpbrk(url, " \t\r\n<>\"");
        if (!eq || dl == 0 || dl >= sizeof u->domain || vl_domain_check(v, dl, NULL) < 0 ||
            !url_ok) {
            snprintf(buf, cap, "--unsub '%s': expected DOMAIN=http(s)://HOST[/PATH]", v);
            *why = buf;
            return -1;
        }
        for (size_t k = 0; k < dl; k++)
            u->domain[k] = (char)tolower((unsigned char)v[k]);
        size_t ul = strlen(url);
        while (ul > 0 && url[ul - 1] == '/')
            ul--;                                       /* "/u/" is appended */
        memcpy(u->base, url, ul);
        c->n++;
    }
    FILE *f = secret_file ? fopen(secret_file, "re") : NULL;
    if (!f) {
        snprintf(buf, cap, "--unsub-secret-file '%s': %s", secret_file ? secret_file : "",
                 secret_file ? strerror(errno) : "missing");
        *why = buf;
        return -1;
    }
    char line[UNSUB_SECRET_BYTES_MAX + 2];
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    size_t l = ok ? strcspn(line, "\r\n") : 0;
    line[l] = '\0';
    if (l < 16 || l >= sizeof c->secret || strpbrk(line, " \t")) {
        snprintf(buf, cap, "--unsub-secret-file '%s': the first line must be 16 to %u "
                 "characters without blanks", secret_file, UNSUB_SECRET_BYTES_MAX - 1);
        *why = buf;
        return -1;
    }
    memcpy(c->secret, line, l + 1);
    c->secret_len = l;
    return 0;
}

static const struct unsub_conf *unsub_conf_global;

void unsub_conf_set(const struct unsub_conf *c)
{
    unsub_conf_global = c;
}

const struct unsub_conf *unsub_conf_get(void)
{
    return unsub_conf_global;
}

const struct unsub_dom *unsub_conf_for(const struct unsub_conf *c, const char *return_path,
                                       size_t len)
{
    const char *at = c && return_path ? memchr(return_path, '@', len) : NULL;
    if (!at)
        return NULL;                        /* the null sender: no list to leave */
    size_t dl = len - (size_t)(at + 1 - return_path);
    for (unsigned i = 0; i < c->n; i++)
        if (strlen(c->dom[i].domain) == dl && !strncasecmp(c->dom[i].domain, at + 1, dl))
            return &c->dom[i];
    return NULL;
}

int unsub_headers(const struct unsub_conf *c, const struct unsub_dom *d, const char *rcpt,
                  const char *campaign, size_t campaign_len, char *out, size_t cap)
{
    struct unsub_claims cl;
    char tok[UNSUB_TOKEN_BYTES_MAX];
    size_t rl = strlen(rcpt);
    if (rl >= sizeof cl.rcpt || campaign_len >= sizeof cl.campaign)
        return VL_E_INVALID;
    memcpy(cl.rcpt, rcpt, rl + 1);
    snprintf(cl.domain, sizeof cl.domain, "%s", d->domain);
    memcpy(cl.campaign, campaign, campaign_len);
    cl.campaign[campaign_len] = '\0';
    if (unsub_token_make(c->secret, c->secret_len, &cl, tok) < 0)
        return VL_E_INVALID;
    int n = snprintf(out, cap, "List-Unsubscribe: <%s/u/%s>,\r\n <mailto:%s@%s?subject=%s>\r\n"
                     "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", d->base, tok,
                     UNSUB_MAILTO_LOCAL, d->domain, tok);
    if (n <= 0 || (size_t)n >= cap)
        return VL_E_INVALID;
    for (const char *l = out, *e; (e = strstr(l, "\r\n")) != NULL; l = e + 2)
        if (e - l > 998)
            return VL_E_INVALID;            /* RFC 5322 2.1.1: a token this long is not sent */
    return n;
}

size_t unsub_campaign_of(const uint8_t *m, size_t len, const char **out)
{
    const char *p = (const char *)m, *end = p + len;
    *out = "";
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol || eol == p)
            return 0;                       /* end of the header block */
        if (eol - p > 11 && !strncasecmp(p, "X-Campaign:", 11)) {
            const char *v = p + 11;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = eol;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (memchr(v, '\n', (size_t)(e - v)))
                return 0;
            *out = v;
            return (size_t)(e - v) < UNSUB_CAMPAIGN_BYTES_MAX ? (size_t)(e - v) : 0;
        }
        p = eol + 2;
    }
    return 0;
}

bool unsub_mailto_addr(const struct unsub_conf *c, const char *addr, size_t len)
{
    size_t ll = strlen(UNSUB_MAILTO_LOCAL);
    return c && len > ll + 1 && !strncasecmp(addr, UNSUB_MAILTO_LOCAL, ll) && addr[ll] == '@' &&
           unsub_conf_for(c, addr, len) != NULL;
}

size_t unsub_subject_token(const uint8_t *m, size_t len, char *out, size_t cap)
{
    const char *p = (const char *)m, *end = p + len;
    size_t n = 0;
    bool in_subject = false;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol || eol == p)
            break;                              /* end of the header block */
        bool cont = *p == ' ' || *p == '\t';
        if (!cont)
            in_subject = eol - p >= 8 && !strncasecmp(p, "Subject:", 8);
        if (in_subject)
            for (const char *q = cont ? p : p + 8; q < eol; q++)
                if (*q != ' ' && *q != '\t') {
                    if (n + 1 >= cap)
                        return 0;
                    out[n++] = *q;
                }
        p = eol + 2;
    }
    out[n] = '\0';
    return n;
}
