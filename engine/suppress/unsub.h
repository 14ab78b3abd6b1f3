/*
 * unsub.h - one-click unsubscribe (RFC 8058, RFC 2369): the sending domains
 * that have it (--unsub DOMAIN=URL, --unsub-secret-file), their per-recipient
 * header lines, and tokens. A token
 * names a recipient, the sending domain and a campaign, and carries an HMAC
 * (SHA-256, OpenSSL) over them, so POST /u/TOKEN needs no database lookup to
 * verify it and a changed byte makes it invalid. Pure apart from OpenSSL's
 * HMAC (no I/O).
 *
 * Token: base64url(version "1" LF rcpt LF domain LF campaign) "." base64url(
 * first 16 octets of HMAC-SHA256(secret, that payload)), no padding: URL-safe
 * as a path segment.
 */
#ifndef VOLLEY_UNSUB_H
#define VOLLEY_UNSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#define UNSUB_DOMAINS_MAX 64u         /* policy: --unsub domains */
#define UNSUB_HEADERS_BYTES_MAX (2u * UNSUB_TOKEN_BYTES_MAX + 1024u + 512u)

struct unsub_dom {
    char domain[256];                 /* lowercased */
    char base[1024];                  /* URL the /u/TOKEN path is appended to */
};

struct unsub_conf {
    unsigned n;
    struct unsub_dom dom[UNSUB_DOMAINS_MAX];
    char secret[UNSUB_SECRET_BYTES_MAX];
    size_t secret_len;
};

/** Build @p c from "DOMAIN=URL" @p specs and the first line of @p secret_file.
 *  @return 0, or -1 with *@p why (a static or @p buf text). */
int unsub_conf_parse(struct unsub_conf *c, const char *const *specs, unsigned n,
                     const char *secret_file, char *buf, size_t cap, const char **why);

/** The process's configuration: set once before the engine and the HTTP API
 *  start, read-only afterwards. NULL: no unsubscribe. */
void unsub_conf_set(const struct unsub_conf *c);
const struct unsub_conf *unsub_conf_get(void);

/** The entry for the domain of @p return_path (@p len octets), or NULL. */
const struct unsub_dom *unsub_conf_for(const struct unsub_conf *c, const char *return_path,
                                       size_t len);

#define UNSUB_MAILTO_LOCAL "unsubscribe"   /* mailto:unsubscribe@DOMAIN?subject=TOKEN */

/** "List-Unsubscribe: <BASE/u/TOKEN>," CRLF " <mailto:unsubscribe@DOMAIN?
 *  subject=TOKEN>" CRLF "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
 *  CRLF for @p rcpt into @p out (@p cap >= UNSUB_HEADERS_BYTES_MAX).
 *  @return the length, or VL_E_INVALID (a field too long: a line would pass
 *  998 octets). */
int unsub_headers(const struct unsub_conf *c, const struct unsub_dom *d, const char *rcpt,
                  const char *campaign, size_t campaign_len, char *out, size_t cap);

/** Is @p addr the mailto address (unsubscribe@DOMAIN) of an --unsub domain? */
bool unsub_mailto_addr(const struct unsub_conf *c, const char *addr, size_t len);

/** The Subject of canonical message @p m, unfolded, blanks removed (the
 *  mailto form's token), into @p out. @return its length (0: none or too
 *  long). */
size_t unsub_subject_token(const uint8_t *m, size_t len, char *out, size_t cap);

/** The value of the first X-Campaign field in the header block of the
 *  canonical message @p m (CRLF lines), trimmed; length 0 if none. */
size_t unsub_campaign_of(const uint8_t *m, size_t len, const char **out);

#endif
