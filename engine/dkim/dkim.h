/*
 * dkim.h - DKIM signing (RFC 6376; rsa-sha256, and ed25519-sha256 of RFC 8463)
 * through OpenSSL 3 EVP. Canonicalisation and header selection are our own
 * (dkim_canon.c, pure); keys and signatures are dkim_key.c and dkim_sign.c.
 *
 * Input is a stored message: canonical CRLF line ends, a header block, an
 * empty line, the body (msg.h). Signing never changes those bytes: it only
 * produces DKIM-Signature header fields to put on top.
 *
 * Thread rules: a loaded key and a signer are immutable after creation and may
 * sign from any number of threads at once (each key keeps a small locked pool
 * of OpenSSL contexts). The body hash is computed once per message and shared
 * by every key that signs it (dual signing).
 */
#ifndef VOLLEY_DKIM_H
#define VOLLEY_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volley/config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DKIM_BH_BYTES            32u    /* SHA-256 */
#define DKIM_RSA_BITS_MIN      2048u    /* issue 13; RFC 8301 3.2 allows 1024 to verify only */
#define DKIM_RSA_BITS_MAX      8192u    /* policy: beyond that signing is too slow to be sane */
#define DKIM_SIG_FIELD_BYTES_MAX 4096u  /* one folded DKIM-Signature field: b= of 8192-bit
                                           RSA is 1366 chars, h= of 64 names, tags */
#define DKIM_FIELDS_MAX         1024u   /* policy: header fields of a message we sign */
#define DKIM_WHY_BYTES          256u

enum dkim_canon { DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED };
enum dkim_alg { DKIM_ALG_RSA_SHA256, DKIM_ALG_ED25519_SHA256 };

/* ---- canonicalisation (pure) ------------------------------------------------------ */

/** Receives canonical bytes in order; chunks of at most 16 KiB. */
typedef void (*dkim_sink_fn)(void *ctx, const uint8_t *p, size_t n);

/** Canonicalise the body @p body (@p len octets, CRLF line ends) by @p c
 *  (RFC 6376 3.4.3, 3.4.4) into @p sink. A lone LF also ends a line. */
void dkim_body_canon(enum dkim_canon c, const uint8_t *body, size_t len, dkim_sink_fn sink,
                     void *ctx);

/** Relaxed header canonicalisation (RFC 6376 3.4.2) of one field @p f (@p len
 *  octets: "Name: value" with its folds and, optionally, its final CRLF) into
 *  @p out (capacity >= len + 3: a field without a colon or a line end becomes
 *  "name:" CRLF). Appends CRLF when @p crlf. @return length. */
size_t dkim_hdr_relaxed(const uint8_t *f, size_t len, bool crlf, uint8_t *out);

/** One header field of a message: [off, off+len) includes its final CRLF. */
struct dkim_field {
    uint32_t off, len;
    uint16_t name_len;
};

/** Split the header block of @p msg into @p fields (capacity @p cap).
 *  *@p body_off is where the body starts (after the empty line; @p len when
 *  there is none). @return the field count, or VL_E_TOOBIG past @p cap. */
int dkim_fields_parse(const uint8_t *msg, size_t len, struct dkim_field *fields, size_t cap,
                      size_t *body_off);

/** Where the body of @p msg starts (after the first empty line; @p len when
 *  there is none), as dkim_fields_parse() finds it. */
size_t dkim_body_offset(const uint8_t *msg, size_t len);

/* ---- keys -------------------------------------------------------------------------- */

struct dkim_key;

/** Load the PEM private key at @p path for d=@p domain, s=@p selector.
 *  Refused, with a reason in @p why: a missing or unreadable file, a file
 *  that is not a PEM private key, a key type other than RSA or Ed25519, an RSA
 *  key under DKIM_RSA_BITS_MIN bits. @return 0 and *@p out (owned by the
 *  caller: dkim_key_destroy), or -errno / VL_E_INVALID. */
int dkim_key_load(const char *domain, const char *selector, const char *path,
                  struct dkim_key **out, char why[DKIM_WHY_BYTES]);
void dkim_key_destroy(struct dkim_key *k);

enum dkim_alg dkim_key_alg(const struct dkim_key *k);
unsigned dkim_key_bits(const struct dkim_key *k);
const char *dkim_key_domain(const struct dkim_key *k);
const char *dkim_key_selector(const struct dkim_key *k);
/** The DNS TXT record that publishes @p k's public key: "v=DKIM1; k=rsa;
 *  p=BASE64" (or k=ed25519). @return its length, or -ENOSPC / -ENOMEM. */
int dkim_key_dns_txt(const struct dkim_key *k, char *out, size_t cap);

/* ---- one signature ----------------------------------------------------------------- */

struct dkim_sign_opts {
    enum dkim_canon canon_hdr, canon_body;
    uint64_t expire_s;                /* x= t= + this; 0 = no x= */
    const char *const *headers;       /* names to sign, in order; NULL = dkim_default_headers */
    unsigned header_count;
};

/** The default list (issue 13): From, To, Cc, Subject, Date, Message-ID,
 *  Reply-To, MIME-Version, Content-Type, Content-Transfer-Encoding,
 *  List-Unsubscribe, List-Unsubscribe-Post, List-Id, Feedback-ID. */
extern const char *const dkim_default_headers[];
extern const unsigned dkim_default_header_count;

/** bh=: SHA-256 of the body canonicalised by @p c. @return 0 or -ENOMEM. */
int dkim_body_hash(enum dkim_canon c, const uint8_t *body, size_t len,
                   uint8_t bh[DKIM_BH_BYTES]);

/** Sign the message @p msg (@p len octets; its @p nfields header fields from
 *  dkim_fields_parse) with @p k, given its body hash @p bh (by o->canon_body)
 *  and the signing time @p now_s (t=). Every listed name present is signed
 *  once per instance (bottom-most first) and From once more (over-signed).
 *  Writes one folded "DKIM-Signature: ...\r\n" field into @p out.
 *  Thread: any. @return its length, or -ENOSPC / -ENOMEM / VL_E_INVALID (no
 *  From: field). */
int dkim_sign_fields(const struct dkim_key *k, const struct dkim_sign_opts *o,
                     const uint8_t *msg, const struct dkim_field *fields, unsigned nfields,
                     const uint8_t bh[DKIM_BH_BYTES], uint64_t now_s, char *out, size_t cap);

/* ---- the signer: keys by domain, as configured -------------------------------------- */

struct dkim_signer;

/** Load every key of @p o (a clear reason in @p why, naming the --dkim
 *  option, for the first that fails). @return 0 and *@p out, or < 0. */
int dkim_signer_create(const struct vl_dkim_opts *o, struct dkim_signer **out,
                       char why[DKIM_WHY_BYTES * 4]);
void dkim_signer_destroy(struct dkim_signer *s);
unsigned dkim_signer_key_count(const struct dkim_signer *s);
const struct dkim_key *dkim_signer_key(const struct dkim_signer *s, unsigned i);

/** The keys that sign mail From: @p domain: those of the domain itself, else
 *  of its nearest configured parent (DMARC relaxed alignment). @return the
 *  count (0..DKIM keys), written as indexes into @p idx (capacity
 *  VL_DKIM_KEYS_MAX). */
unsigned dkim_signer_keys_for(const struct dkim_signer *s, const char *domain,
                              unsigned idx[VL_DKIM_KEYS_MAX]);

/** The domain of the (first) address of the From: field of @p msg, lowercased,
 *  into @p out. @return its length, or VL_E_INVALID (no From: / no domain). */
int dkim_from_domain(const uint8_t *msg, const struct dkim_field *fields, unsigned nfields,
                     char *out, size_t cap);

/** Sign @p msg with every key of its From: domain: the body hash once per
 *  body canonicalisation, one DKIM-Signature per key. The fields are written
 *  to *@p sigs (malloc'd, owned by the caller; NULL when none).
 *  @return the number of signatures (0: no From: domain, no key for it, or
 *  @p s NULL), or -ENOMEM / VL_E_TOOBIG (over DKIM_FIELDS_MAX fields). */
int dkim_signer_sign(const struct dkim_signer *s, const uint8_t *msg, size_t len,
                     uint64_t now_s, char **sigs, size_t *sigs_len);

/** The body hash of @p msg (whole message) by the signer's body
 *  canonicalisation: compute it once per stored body for dkim_signer_sign_rcpt.
 *  @return 0, -ENOMEM. */
int dkim_signer_body_hash(const struct dkim_signer *s, const uint8_t *msg, size_t len,
                          uint8_t bh[DKIM_BH_BYTES]);

/** Per-recipient signing (at delivery, when per-recipient fields exist, e.g. a
 *  List-Unsubscribe token, RFC 8058): sign the fields @p extra (@p extra_len
 *  octets of CRLF-ended fields, put on top of the message) plus the stored
 *  header block @p hdrs (@p hdr_len octets, up to and including its empty
 *  line), with the body hash @p bh from dkim_signer_body_hash() of the stored
 *  message. Writes the DKIM-Signature fields (one per key of the From: domain)
 *  into @p out; the recipient's copy is those, then @p extra, then the stored
 *  message. Thread: any. @return their length (0: no key for the domain), or
 *  -ENOSPC / -ENOMEM / VL_E_TOOBIG / VL_E_INVALID. */
int dkim_signer_sign_rcpt(const struct dkim_signer *s, const uint8_t *extra, size_t extra_len,
                          const uint8_t *hdrs, size_t hdr_len, const uint8_t bh[DKIM_BH_BYTES],
                          uint64_t now_s, char *out, size_t cap);

struct msg_result;

/** The intake's hook: sign the normalised message @p m (msg.h) with
 *  dkim_signer_sign() and put the signatures on top of m->data (m->len grows;
 *  the old buffer is freed). No key for the From: domain, or @p s NULL: @p m
 *  unchanged. @return signatures added (>= 0), or < 0 with @p m unchanged. */
int dkim_sign_msg(const struct dkim_signer *s, struct msg_result *m, uint64_t now_s);

#ifdef __cplusplus
}
#endif

#endif
