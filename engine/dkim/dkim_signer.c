/*
 * dkim_signer.c - the configured keys (--dkim), chosen by the From: domain,
 * and the once-per-message signing used at enqueue and at SMTP intake.
 * Invariants: a signer is immutable once created; each message's body is
 * hashed once per body canonicalisation however many keys sign it.
 * Diagnostics: never logs; load failures name the --dkim option.
 */
#include "dkim_int.h"

#include "msg.h"
#include "volley/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dkim_signer {
    unsigned key_count;
    struct dkim_key *keys[VL_DKIM_KEYS_MAX];
    struct dkim_sign_opts opts;
    const char *names[VL_DKIM_HEADERS_MAX];
    char names_buf[VL_DKIM_HEADERS_MAX * 80];
};

static int signer_headers(struct dkim_signer *s, const char *list, char *why)
{
    size_t n = strlen(list);
    if (n >= sizeof s->names_buf) {
        snprintf(why, DKIM_WHY_BYTES * 4, "--dkim-headers: list too long");
        return VL_E_INVALID;
    }
    memcpy(s->names_buf, list, n + 1);
    unsigned c = 0;
    for (char *tok = s->names_buf, *save = NULL; (tok = strtok_r(tok, ":", &save)); tok = NULL) {
        if (c == VL_DKIM_HEADERS_MAX) {
            snprintf(why, DKIM_WHY_BYTES * 4, "--dkim-headers: more than %u names",
                     VL_DKIM_HEADERS_MAX);
            return VL_E_INVALID;
        }
        s->names[c++] = tok;
    }
    s->opts.headers = s->names;
    s->opts.header_count = c;
    return 0;
}

int dkim_signer_create(const struct vl_dkim_opts *o, struct dkim_signer **out,
                       char why[DKIM_WHY_BYTES * 4])
{
    *out = NULL;
    why[0] = '\0';
    struct dkim_signer *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(why, DKIM_WHY_BYTES * 4, "out of memory");
        return -ENOMEM;
    }
    s->opts.canon_hdr = o->canon_hdr_simple ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
    s->opts.canon_body = o->canon_body_simple ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
    s->opts.expire_s = o->expire_ms / 1000;
    int rc = o->headers ? signer_headers(s, o->headers, why) : 0;
    for (unsigned i = 0; i < o->key_count && rc == 0; i++) {
        const struct vl_dkim_key_opt *ko = &o->keys[i];
        char kwhy[DKIM_WHY_BYTES];
        rc = dkim_key_load(ko->domain, ko->selector, ko->key_path, &s->keys[i], kwhy);
        if (rc < 0)
            snprintf(why, DKIM_WHY_BYTES * 4, "--dkim %s:%s:...: %s", ko->domain,
                     ko->selector, kwhy);
        else
            s->key_count++;
    }
    if (rc < 0) {
        dkim_signer_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

void dkim_signer_destroy(struct dkim_signer *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->key_count; i++)
        dkim_key_destroy(s->keys[i]);
    free(s);
}

unsigned dkim_signer_key_count(const struct dkim_signer *s)
{
    return s ? s->key_count : 0;
}

const struct dkim_key *dkim_signer_key(const struct dkim_signer *s, unsigned i)
{
    vl_assert(i < s->key_count);
    return s->keys[i];
}

unsigned dkim_signer_keys_for(const struct dkim_signer *s, const char *domain,
                              unsigned idx[VL_DKIM_KEYS_MAX])
{
    if (!s)
        return 0;
    /* The domain itself, else each parent in turn (never the bare TLD's parent). */
    for (const char *d = domain; d && *d;) {
        unsigned n = 0;
        for (unsigned i = 0; i < s->key_count; i++)
            if (!strcmp(s->keys[i]->domain, d))
                idx[n++] = i;
        if (n)
            return n;
        d = strchr(d, '.');
        if (d)
            d++;
    }
    return 0;
}

int dkim_from_domain(const uint8_t *msg, const struct dkim_field *fields, unsigned nfields,
                     char *out, size_t cap)
{
    for (unsigned i = 0; i < nfields; i++) {
        const struct dkim_field *f = &fields[i];
        if (f->name_len != 4 || strncasecmp((const char *)msg + f->off, "from", 4))
            continue;
        const char *v = memchr(msg + f->off, ':', f->len);
        const char *e = (const char *)msg + f->off + f->len;
        if (!v)
            return VL_E_INVALID;
        v++;
        /* The first address: inside <...> when there is one, else up to a ','. */
        const char *lt = memchr(v, '<', (size_t)(e - v));
        const char *a = lt ? lt + 1 : v;
        const char *ae = lt ? memchr(a, '>', (size_t)(e - a)) : memchr(a, ',', (size_t)(e - a));
        if (!ae)
            ae = e;
        const char *at = NULL;
        for (const char *p = a; p < ae; p++)
            if (*p == '@')
                at = p;
        if (!at)
            return VL_E_INVALID;
        size_t n = 0;
        for (const char *p = at + 1; p < ae && !strchr(" \t\r\n()>;,", *p); p++) {
            if (n + 1 >= cap)
                return VL_E_INVALID;
            out[n++] = (char)tolower((unsigned char)*p);
        }
        out[n] = '\0';
        return n ? (int)n : VL_E_INVALID;
    }
    return VL_E_INVALID;
}

int dkim_signer_sign(const struct dkim_signer *s, const uint8_t *msg, size_t len,
                     uint64_t now_s, char **sigs, size_t *sigs_len)
{
    *sigs = NULL;
    *sigs_len = 0;
    if (!s || !s->key_count)
        return 0;
    struct dkim_field *fields = malloc(DKIM_FIELDS_MAX * sizeof *fields);
    char domain[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    unsigned idx[VL_DKIM_KEYS_MAX], nk = 0;
    size_t body_off = 0;
    if (!fields)
        return -ENOMEM;
    int nf = dkim_fields_parse(msg, len, fields, DKIM_FIELDS_MAX, &body_off);
    int rc = nf < 0 ? nf : dkim_from_domain(msg, fields, (unsigned)nf, domain, sizeof domain);
    if (rc == VL_E_INVALID)
        rc = 0;                             /* no From: domain: no key can be chosen */
    else if (rc >= 0)
        nk = dkim_signer_keys_for(s, domain, idx);
    if (rc < 0 || nk == 0) {
        free(fields);
        return rc < 0 ? rc : 0;
    }
    uint8_t bh[DKIM_BH_BYTES];
    char *out = malloc(nk * DKIM_SIG_FIELD_BYTES_MAX);
    rc = out ? dkim_body_hash(s->opts.canon_body, msg + body_off, len - body_off, bh) : -ENOMEM;
    size_t at = 0;
    for (unsigned i = 0; i < nk && rc >= 0; i++) {
        rc = dkim_sign_fields(s->keys[idx[i]], &s->opts, msg, fields, (unsigned)nf, bh, now_s,
                              out + at, DKIM_SIG_FIELD_BYTES_MAX);
        if (rc > 0)
            at += (size_t)rc;
    }
    free(fields);
    if (rc < 0) {
        free(out);
        return rc;
    }
    *sigs = out;
    *sigs_len = at;
    return (int)nk;
}

int dkim_sign_msg(const struct dkim_signer *s, struct msg_result *m, uint64_t now_s)
{
    char *sigs;
    size_t sl;
    int n = dkim_signer_sign(s, m->data, m->len, now_s, &sigs, &sl);
    if (n <= 0)
        return n;
    uint8_t *full = malloc(sl + m->len);
    if (!full) {
        free(sigs);
        return -ENOMEM;
    }
    memcpy(full, sigs, sl);
    memcpy(full + sl, m->data, m->len);
    free(sigs);
    free(m->data);
    m->data = full;
    m->len += sl;
    return n;
}

int dkim_signer_body_hash(const struct dkim_signer *s, const uint8_t *msg, size_t len,
                          uint8_t bh[DKIM_BH_BYTES])
{
    size_t body_off = dkim_body_offset(msg, len);
    return dkim_body_hash(s->opts.canon_body, msg + body_off, len - body_off, bh);
}

int dkim_signer_sign_rcpt(const struct dkim_signer *s, const uint8_t *extra, size_t extra_len,
                          const uint8_t *hdrs, size_t hdr_len, const uint8_t bh[DKIM_BH_BYTES],
                          uint64_t now_s, char *out, size_t cap)
{
    if (!s || !s->key_count)
        return 0;
    uint8_t stack[8192];
    size_t len = extra_len + hdr_len;
    uint8_t *m = len <= sizeof stack ? stack : malloc(len);
    struct dkim_field *fields = malloc(DKIM_FIELDS_MAX * sizeof *fields);
    char domain[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    unsigned idx[VL_DKIM_KEYS_MAX], nk = 0;
    size_t body_off, at = 0;
    int rc = m && fields ? 0 : -ENOMEM;
    if (rc == 0) {
        memcpy(m, extra, extra_len);        /* the recipient's fields on top */
        memcpy(m + extra_len, hdrs, hdr_len);
        rc = dkim_fields_parse(m, len, fields, DKIM_FIELDS_MAX, &body_off);
    }
    int nf = rc;
    if (rc >= 0)
        rc = dkim_from_domain(m, fields, (unsigned)nf, domain, sizeof domain);
    if (rc >= 0)
        nk = dkim_signer_keys_for(s, domain, idx);
    for (unsigned i = 0; i < nk && rc >= 0; i++) {
        rc = dkim_sign_fields(s->keys[idx[i]], &s->opts, m, fields, (unsigned)nf, bh, now_s,
                              out + at, cap - at);
        if (rc > 0)
            at += (size_t)rc;
    }
    if (m != stack)
        free(m);
    free(fields);
    return rc < 0 ? rc : (int)at;
}
