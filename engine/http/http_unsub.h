/*
 * http_unsub.h - one-click unsubscribe (RFC 8058, RFC 2369) tokens: a token
 * names a recipient, the sending domain and a campaign, and carries an HMAC
 * (SHA-256, OpenSSL) over them, so POST /u/TOKEN needs no database lookup to
 * verify it and a changed byte makes it invalid. Pure apart from OpenSSL's
 * HMAC (no I/O).
 *
 * Token: base64url(version "1" LF rcpt LF domain LF campaign) "." base64url(
 * first 16 octets of HMAC-SHA256(secret, that payload)), no padding: URL-safe
 * as a path segment.
 */
#ifndef VOLLEY_HTTP_UNSUB_H
#define VOLLEY_HTTP_UNSUB_H

#include <stdbool.h>
#include <stddef.h>

#define UNSUB_TOKEN_BYTES_MAX 1400u      /* 254 + 255 + 255 octets of payload, encoded */
#define UNSUB_CAMPAIGN_BYTES_MAX 255u
#define UNSUB_SECRET_BYTES_MAX 512u

struct unsub_claims {
    char rcpt[255];
    char domain[256];
    char campaign[UNSUB_CAMPAIGN_BYTES_MAX + 1];
};

/** Write the token for @p c into @p out (capacity UNSUB_TOKEN_BYTES_MAX).
 *  @return its length, or VL_E_INVALID (a field too long or holding LF). */
int unsub_token_make(const char *secret, size_t secret_len, const struct unsub_claims *c,
                     char *out);

/** Verify @p tok (@p n octets) and fill @p c. @return 0, or VL_E_INVALID
 *  (malformed, or the MAC does not match). */
int unsub_token_check(const char *secret, size_t secret_len, const char *tok, size_t n,
                      struct unsub_claims *c);

#endif
