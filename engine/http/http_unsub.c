/*
 * http_unsub.c - one-click unsubscribe tokens (see http_unsub.h).
 * Invariant: a token verifies only if its payload is byte for byte the one
 * the MAC was made over; the MAC is compared in constant time.
 */
#include "http_unsub.h"

#include "volley/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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
