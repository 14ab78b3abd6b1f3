/*
 * dkim_sign.c - one DKIM-Signature (RFC 6376 3.5, 3.7, 5.4; RFC 8463 3).
 *
 * The header hash covers the selected fields in h= order (bottom-most
 * instance first for a repeated name; a name with no instance left adds
 * nothing, which is how From is over-signed), then this DKIM-Signature field
 * up to and including "b=" with no CRLF. rsa-sha256 signs that hash with
 * RSASSA-PKCS1-v1_5; ed25519-sha256 signs the 32-octet hash with PureEdDSA.
 * Folding: tags are separated by SP or, past 78 columns, by CRLF TAB; h= folds
 * after a colon and b= anywhere inside the base64 (all FWS the grammar allows).
 * Invariant: the bytes hashed are exactly the field's bytes before the b= value.
 */
#include "dkim_int.h"

#include "volley/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>

#define FOLD_COLS 78u                  /* RFC 5322 2.1.1 SHOULD */
#define HASH_CANON_STACK_BYTES 4096u   /* a relaxed field this long or shorter: no malloc */

const char *const dkim_default_headers[] = {
    "From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To", "MIME-Version",
    "Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe", "List-Unsubscribe-Post",
    "List-Id", "Feedback-ID",
};
const unsigned dkim_default_header_count =
    sizeof dkim_default_headers / sizeof dkim_default_headers[0];

static void sink_digest(void *ctx, const uint8_t *p, size_t n)
{
    EVP_DigestUpdate(ctx, p, n);
}

int dkim_body_hash(enum dkim_canon c, const uint8_t *body, size_t len,
                   uint8_t bh[DKIM_BH_BYTES])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned outl = 0;
    if (!md || !dkim_sha256() || EVP_DigestInit_ex(md, dkim_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        ERR_clear_error();
        return -ENOMEM;
    }
    dkim_body_canon(c, body, len, sink_digest, md);
    int ok = EVP_DigestFinal_ex(md, bh, &outl) == 1 && outl == DKIM_BH_BYTES;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -ENOMEM;
}

/* ---- the folded field ----------------------------------------------------------------- */

struct fold {
    char *p;
    size_t n, cap, col;
    bool full;
};

static void fold_raw(struct fold *f, const char *s, size_t n)
{
    if (f->n + n + 1 > f->cap) {
        f->full = true;
        return;
    }
    memcpy(f->p + f->n, s, n);
    f->n += n;
    f->col += n;
}

/* A token, after SP (@p space) or glued on; CRLF TAB first when it would pass
 * FOLD_COLS and the line already holds something. */
static void fold_tok(struct fold *f, const char *s, size_t n, bool space)
{
    if (f->col + n + space > FOLD_COLS && f->col > 8) {
        fold_raw(f, "\r\n\t", 3);
        f->col = 8;
    } else if (space) {
        fold_raw(f, " ", 1);
    }
    fold_raw(f, s, n);
}

static void fold_tag(struct fold *f, const char *fmt, const char *a, unsigned long long u)
{
    char t[VL_SMTP_DOMAIN_BYTES_MAX + 32];
    int n = a ? snprintf(t, sizeof t, fmt, a) : snprintf(t, sizeof t, fmt, u);
    if (n < 0 || (size_t)n >= sizeof t) {
        f->full = true;
        return;
    }
    fold_tok(f, t, (size_t)n, true);
}

/* ---- header selection ----------------------------------------------------------------- */

struct pick {
    const char *name;
    int field;                         /* index into fields, or -1: over-signed, no instance */
};

/* h=: each name (From added when absent; a repeated name counts once) once
 * per instance, bottom-most first; then From once more. @return count, <= cap.
 * Each field is matched against the list once (length first, then the bytes). */
static unsigned pick_fields(const struct dkim_sign_opts *o, const uint8_t *msg,
                            const struct dkim_field *fields, unsigned nfields,
                            struct pick *picks, unsigned cap)
{
    const char *const *names = o->headers ? o->headers : dkim_default_headers;
    unsigned nn = o->headers ? o->header_count : dkim_default_header_count, np = 0;
    size_t len[VL_DKIM_HEADERS_MAX + 1];
    int from = -1;
    vl_assert(nn <= VL_DKIM_HEADERS_MAX);
    for (unsigned i = 0; i < nn; i++) {
        len[i] = strlen(names[i]);
        if (from < 0 && len[i] == 4 && !strcasecmp(names[i], "From"))
            from = (int)i;
    }
    unsigned total = nn;
    if (from < 0) {                       /* From is always signed */
        from = (int)nn;
        len[nn] = 4;
        total = nn + 1;
    }
    uint8_t which[DKIM_FIELDS_MAX];       /* list index of each field; 255 = not listed */
    vl_assert(nfields <= DKIM_FIELDS_MAX && total < 255);
    for (unsigned f = 0; f < nfields; f++) {
        which[f] = 255;
        const char *fname = (const char *)msg + fields[f].off;
        for (unsigned i = 0; i < total; i++) {
            const char *name = (int)i == from ? "From" : names[i];
            if (fields[f].name_len == len[i] && !strncasecmp(fname, name, len[i])) {
                which[f] = (uint8_t)i;    /* the first of repeated names wins */
                break;
            }
        }
    }
    for (unsigned i = 0; i < total; i++)
        for (unsigned f = nfields; f-- > 0 && np < cap;)
            if (which[f] == i)
                picks[np++] = (struct pick){ (int)i == from ? "From" : names[i], (int)f };
    if (np < cap)
        picks[np++] = (struct pick){ "From", -1 };     /* over-sign (RFC 6376 5.4.2) */
    return np;
}

/* ---- hashing and signing -------------------------------------------------------------- */

static int hash_field(EVP_MD_CTX *md, enum dkim_canon c, const uint8_t *f, size_t len, bool crlf)
{
    if (c == DKIM_CANON_SIMPLE)
        return EVP_DigestUpdate(md, f, len) == 1 ? 0 : -ENOMEM;   /* as is, CRLF and all */
    uint8_t stack[HASH_CANON_STACK_BYTES];
    uint8_t *buf = len + 3 <= sizeof stack ? stack : malloc(len + 3);
    if (!buf)
        return -ENOMEM;
    size_t n = dkim_hdr_relaxed(f, len, crlf, buf);
    int ok = EVP_DigestUpdate(md, buf, n) == 1;
    if (buf != stack)
        free(buf);
    return ok ? 0 : -ENOMEM;
}

static int sign_hash(const struct dkim_key *k, const uint8_t h[32], uint8_t *sig, size_t *sl)
{
    void *c = dkim_key_ctx_acquire(k);
    if (!c)
        return -ENOMEM;
    int ok = k->alg == DKIM_ALG_ED25519_SHA256
             ? EVP_DigestSign(c, sig, sl, h, 32) == 1
             : EVP_PKEY_sign(c, sig, sl, h, 32) == 1;
    if (!ok) {
        ERR_clear_error();
        if (k->alg == DKIM_ALG_RSA_SHA256)
            EVP_PKEY_CTX_free(c);
        else
            EVP_MD_CTX_free(c);
        return -ENOMEM;
    }
    dkim_key_ctx_release(k, c);
    return 0;
}

/* The field up to "b=": tags, h= folded at colons, bh=. */
static void build_head(struct fold *f, const struct dkim_key *k, const struct dkim_sign_opts *o,
                       const struct pick *picks, unsigned np, const uint8_t bh[DKIM_BH_BYTES],
                       uint64_t now_s)
{
    static const char *const cn[] = { "simple", "relaxed" };
    char c[32], bh64[48];
    fold_raw(f, "DKIM-Signature: v=1;", 20);
    fold_tag(f, "a=%s;", k->alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256", 0);
    snprintf(c, sizeof c, "%s/%s", cn[o->canon_hdr], cn[o->canon_body]);
    fold_tag(f, "c=%s;", c, 0);
    fold_tag(f, "d=%s;", k->domain, 0);
    fold_tag(f, "s=%s;", k->selector, 0);
    fold_tag(f, "t=%llu;", NULL, (unsigned long long)now_s);
    if (o->expire_s)
        fold_tag(f, "x=%llu;", NULL, (unsigned long long)(now_s + o->expire_s));
    for (unsigned i = 0; i < np; i++) {
        char t[VL_SMTP_TEXT_LINE_BYTES_MAX];
        size_t nl = strlen(picks[i].name), n = 0;
        if (nl + 4 > sizeof t) {
            f->full = true;
            return;
        }
        if (i == 0) {
            memcpy(t, "h=", 2);
            n = 2;
        }
        memcpy(t + n, picks[i].name, nl);
        n += nl;
        t[n++] = i + 1 < np ? ':' : ';';
        fold_tok(f, t, n, i == 0);
    }
    EVP_EncodeBlock((unsigned char *)bh64, bh, DKIM_BH_BYTES);
    fold_tag(f, "bh=%s;", bh64, 0);
    fold_tok(f, "b=", 2, true);
}

static int hash_head(const struct dkim_sign_opts *o, const uint8_t *msg,
                     const struct dkim_field *fields, const struct pick *picks, unsigned np,
                     const struct fold *f, uint8_t h[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned hl = 0;
    int rc = md && EVP_DigestInit_ex(md, dkim_sha256(), NULL) == 1 ? 0 : -ENOMEM;
    for (unsigned i = 0; i < np && rc == 0; i++)
        if (picks[i].field >= 0) {
            const struct dkim_field *fl = &fields[picks[i].field];
            rc = hash_field(md, o->canon_hdr, msg + fl->off, fl->len, true);
        }
    if (rc == 0)
        rc = hash_field(md, o->canon_hdr, (const uint8_t *)f->p, f->n, false);
    if (rc == 0 && (EVP_DigestFinal_ex(md, h, &hl) != 1 || hl != 32))
        rc = -ENOMEM;
    EVP_MD_CTX_free(md);
    return rc;
}

int dkim_sign_fields(const struct dkim_key *k, const struct dkim_sign_opts *o,
                     const uint8_t *msg, const struct dkim_field *fields, unsigned nfields,
                     const uint8_t bh[DKIM_BH_BYTES], uint64_t now_s, char *out, size_t cap)
{
    struct pick picks[VL_DKIM_HEADERS_MAX * 2 + 2];
    unsigned np = pick_fields(o, msg, fields, nfields, picks, sizeof picks / sizeof picks[0]);
    bool has_from = false;
    for (unsigned i = 0; i < np; i++)
        has_from |= picks[i].field >= 0 && !strcasecmp(picks[i].name, "From");
    if (!has_from)
        return VL_E_INVALID;                           /* no From: to sign */
    struct fold f = { out, 0, cap, 0, false };
    build_head(&f, k, o, picks, np, bh, now_s);
    if (f.full)
        return -ENOSPC;
    uint8_t h[32], sig[DKIM_RSA_BITS_MAX / 8];
    size_t sl = sizeof sig;
    int rc = hash_head(o, msg, fields, picks, np, &f, h);
    if (rc == 0)
        rc = sign_hash(k, h, sig, &sl);
    if (rc < 0)
        return rc;
    char b64[4 * (sizeof sig + 2) / 3 + 4];
    size_t bl = (size_t)EVP_EncodeBlock((unsigned char *)b64, sig, (int)sl);
    for (size_t at = 0; at < bl;) {        /* b= value: as much as fits, then fold */
        size_t room = f.col < FOLD_COLS ? FOLD_COLS - f.col : 0;
        if (room < 8) {
            fold_raw(&f, "\r\n\t", 3);
            f.col = 8;
            continue;
        }
        size_t n = bl - at < room ? bl - at : room;
        fold_raw(&f, b64 + at, n);
        at += n;
    }
    fold_raw(&f, "\r\n", 2);
    if (f.full)
        return -ENOSPC;
    vl_assert(f.n < cap);
    out[f.n] = '\0';
    return (int)f.n;
}
