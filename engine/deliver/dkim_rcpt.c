/*
 * dkim_rcpt.c - per-recipient DKIM signing at delivery (issue 13): when an
 * attempt carries its own header lines (the RFC 8058 List-Unsubscribe pair,
 * made per recipient by shard.c), a DKIM-Signature covering them and the
 * stored header block goes on top, so the one-click unsubscribe fields are
 * signed as RFC 8058 3.3 requires. The stored body's hash is computed once per
 * stored body: each shard thread keeps the last message's (id, length) and bh.
 * Thread: the shard's own. Diagnostics: a failure is logged by the caller and
 * the recipient's copy goes unsigned by this key (an enqueue-time signature,
 * if any, still stands).
 */
#include "dkim_rcpt.h"

#include "dkim.h"
#include "volley/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct bh_cache {
    uint64_t msg_id;
    size_t body_len;
    const struct dkim_signer *signer;
    uint8_t bh[DKIM_BH_BYTES];
    bool valid;
};

static _Thread_local struct bh_cache dkim_rcpt_bh;

int deliver_dkim_prefix(const struct dkim_signer *s, const struct vl_queue_msg *m,
                        uint64_t now_s, char **prefix, uint32_t *prefix_len)
{
    if (!s || !dkim_signer_key_count(s))
        return 0;
    struct bh_cache *c = &dkim_rcpt_bh;
    if (!c->valid || c->msg_id != m->id || c->body_len != m->body_len || c->signer != s) {
        c->valid = false;
        int rc = dkim_signer_body_hash(s, m->body, m->body_len, c->bh);
        if (rc < 0)
            return rc;
        c->msg_id = m->id;
        c->body_len = m->body_len;
        c->signer = s;
        c->valid = true;
    }
    size_t hdr_len = dkim_body_offset(m->body, m->body_len);
    size_t cap = VL_DKIM_KEYS_MAX * (size_t)DKIM_SIG_FIELD_BYTES_MAX;
    char *out = malloc(cap + *prefix_len);
    if (!out)
        return -ENOMEM;
    int n = dkim_signer_sign_rcpt(s, (const uint8_t *)*prefix, *prefix_len, m->body, hdr_len,
                                  c->bh, now_s, out, cap);
    if (n <= 0) {
        free(out);
        return n;
    }
    memcpy(out + n, *prefix, *prefix_len);     /* signatures, then the recipient's lines */
    free(*prefix);
    *prefix = out;
    *prefix_len += (uint32_t)n;
    return 1;
}
