/*
 * queue_lease.c - in-memory leases and vl_queue_lease(): ready recipients out
 * of the sched index, grouped by domain, then message.
 *
 * Leases are never written to LMDB: a crash forgets them, so every leased but
 * uncompleted recipient is ready again at the next open (at-least-once).
 * Start-up is O(ready): the sched index is ordered by next attempt time, so
 * a lease reads only due entries (plus the ones already leased, skipped).
 * Content checks happen here, as records are leased, not at open (which stays
 * O(ready)): a recipient record is verified as it is decoded (its CRC32C),
 * a message's body once per batch (its CRC32C, O(body), while it is copied
 * anyway). What fails is not leased: it is quarantined (queue_quar.c) in one
 * group-committed write after the read, logged once (evt=quarantined), and
 * the lease returns the rest. If that write fails (evt=quarantine_failed)
 * the bad records stay where they are and the next lease tries again.
 * A batch owns copies of everything it returns: addresses, domains, return
 * paths and each message's body (copied once per message per batch), so no
 * LMDB read transaction stays open while the engine delivers (one would also
 * block map growth).
 * Thread: the shard's owner only (the lease set has no lock).
 * Diagnostics: evt=quarantined (warn: shard, key, reason), evt=quarantine_failed
 * (error); nothing else.
 * Layer: on queue_store (records), queue_lease_set (the ids leased) and
 * queue_quar (what cannot be leased).
 */
#include "queue_env.h"
#include "queue_lease_set.h"
#include "queue_quar.h"
#include "queue_store.h"

#include "clock.h"
#include "log.h"
#include "volley/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- lease ------------------------------------------------------------- */

struct lease_buf { uint8_t *p; size_t len, cap; };

struct lease_ent {
    uint64_t id, msg_id;
    uint64_t sched_key;                  /* its sched entry (next_ms) */
    uint32_t attempts;
    uint32_t msg_idx;
    uint8_t state;
    size_t addr_off, dom_off;
    uint16_t addr_len, dom_len;
};

struct lease_msg {
    uint64_t id, created_ms;
    uint32_t flags;
    size_t rp_off, rp_len, body_off, body_len;
};

struct lease_ctx {
    struct lease_buf buf;
    struct lease_ent *ents;
    size_t n;
    struct lease_msg *msgs;
    size_t msg_n;
    struct queue_quar_req quar;          /* what could not be leased (arrays on demand) */
    uint64_t next_due;                   /* vl_queue_lease_next_due() of this scan */
};

struct queue_batch_impl {
    struct vl_queue_batch pub;
    uint8_t *bytes;
    uint8_t *unleased;                   /* [pub.count] on the first vl_queue_batch_unlease */
};

/* Append @p n bytes and a NUL; *off = where they start. */
static int lease_buf_add(struct lease_buf *b, const void *src, size_t n, size_t *off)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    *off = b->len;
    if (n)
        memcpy(b->p + b->len, src, n);
    b->p[b->len + n] = 0;
    b->len += n + 1;
    return 0;
}

static int lease_by_msg(const void *a, const void *b)
{
    const struct lease_ent *x = a, *y = b;
    if (x->msg_id != y->msg_id)
        return x->msg_id < y->msg_id ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int lease_by_domain(const void *a, const void *b, void *arg)
{
    const struct lease_ent *x = a, *y = b;
    const uint8_t *base = arg;
    size_t n = x->dom_len < y->dom_len ? x->dom_len : y->dom_len;
    int c = memcmp(base + x->dom_off, base + y->dom_off, n);
    if (c || x->dom_len != y->dom_len)
        return c ? c : (x->dom_len < y->dom_len ? -1 : 1);
    return lease_by_msg(a, b);
}

/* Note recipient @p id (met in sched at @p sched_key) as unusable: its own
 * record (@p msg_id 0: unknown) or its message @p msg_id's (never 0). Past
 * QUEUE_QUAR_ITEMS_MAX it is only skipped: the next lease meets it again. */
static int lease_bad_rcpt(struct lease_ctx *c, uint64_t id, uint64_t sched_key, uint64_t msg_id)
{
    struct queue_quar_req *q = &c->quar;
    if (!q->rcpts && !(q->rcpts = calloc(QUEUE_QUAR_ITEMS_MAX, sizeof *q->rcpts)))
        return -ENOMEM;
    if (q->rcpt_n < QUEUE_QUAR_ITEMS_MAX)
        q->rcpts[q->rcpt_n++] = (struct queue_quar_rcpt){ .id = id, .sched_key = sched_key,
                                                          .msg_id = msg_id,
                                                          .record_bad = msg_id == 0 };
    return 0;
}

/* Note message @p id as unusable for @p reason. @return 1 noted, 0 no room. */
static int lease_bad_msg(struct lease_ctx *c, uint64_t id, unsigned reason)
{
    struct queue_quar_req *q = &c->quar;
    if (!q->msgs && !(q->msgs = calloc(QUEUE_QUAR_ITEMS_MAX, sizeof *q->msgs)))
        return -ENOMEM;
    if (q->msg_n == QUEUE_QUAR_ITEMS_MAX)
        return 0;
    q->msgs[q->msg_n++] = (struct queue_quar_msg){ .id = id, .reason = (uint8_t)reason };
    return 1;
}

/* Collect up to @p max due, unleased recipients from the sched index. */
static int lease_scan(struct vl_queue_shard *s, MDB_txn *txn, uint64_t now_ms, size_t max,
                      bool (*skip)(void *ctx, const char *domain, size_t len), void *skip_ctx,
                      struct lease_ctx *c)
{
    size_t skipped = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t rb[QUEUE_RCPT_BUF_BYTES];
    char dom[256];
    int rc = mdb_cursor_open(txn, s->db_sched, &cur);
    if (rc)
        return queue_mdb_err(rc);
    c->next_due = 0;                     /* not known unless the scan gets past now */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && c->n < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || v.mv_size != 8) {
            rc = VL_E_CORRUPT;
            break;
        }
        if (queue_key_u64_get(k.mv_data) > now_ms) {
            c->next_due = queue_key_u64_get(k.mv_data);   /* sorted: the earliest not due */
            break;
        }
        uint64_t id = queue_key_u64_get(v.mv_data);
        if (queue_lease_has(&s->leases, id))
            continue;
        struct queue_rcpt_rec r;
        int grc = queue_rcpt_get(s, txn, id, rb, &r);
        if (grc == VL_E_NOTFOUND)
            continue;                    /* index entry without record: skip */
        if (grc == VL_E_CORRUPT || grc == VL_E_VERSION) {
            rc = lease_bad_rcpt(c, id, queue_key_u64_get(k.mv_data), 0);
            if (rc < 0)
                break;
            continue;                    /* quarantined after the read */
        }
        if (grc < 0) {
            rc = grc;
            break;
        }
        queue_lower(dom, r.addr + r.domain_off, r.domain_len);
        if (skip && skip(skip_ctx, dom, r.domain_len)) {
            if (++skipped >= VL_QUEUE_LEASE_SKIPS_MAX)
                break;                   /* bounded: the next lease looks again */
            continue;                    /* left ready in the queue, not leased */
        }
        struct lease_ent *e = &c->ents[c->n];
        *e = (struct lease_ent){ .id = id, .msg_id = r.msg_id, .attempts = r.attempts,
                                 .sched_key = queue_key_u64_get(k.mv_data),
                                 .state = r.state, .addr_len = r.addr_len,
                                 .dom_len = r.domain_len };
        if (lease_buf_add(&c->buf, r.addr, r.addr_len, &e->addr_off) < 0
            || lease_buf_add(&c->buf, dom, r.domain_len, &e->dom_off) < 0) {
            rc = -ENOMEM;
            break;
        }
        c->n++;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) {
        c->next_due = UINT64_MAX;        /* the end: nothing scheduled later */
        return 0;
    }
    if (rc == 0)
        return 0;
    return rc < 0 ? rc : queue_mdb_err(rc);
}

/* Grow @p b so that @p more bytes fit without another realloc. */
static int lease_buf_reserve(struct lease_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    uint8_t *p = realloc(b->p, b->len + more);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = b->len + more;
    return 0;
}

/* Copy each distinct message (record + body) once, checking it (body
 * checksum included) first; the recipients of a message that fails are
 * dropped from the lease and noted for quarantine. Two passes: find the
 * messages and their sizes, reserve the buffer once, then copy (a batch of
 * large bodies is copied once, never moved again by realloc). */
static int lease_msgs(struct vl_queue_shard *s, MDB_txn *txn, struct lease_ctx *c)
{
    qsort(c->ents, c->n, sizeof c->ents[0], lease_by_msg);
    c->msgs = malloc((c->n ? c->n : 1) * sizeof c->msgs[0]);
    MDB_val *bodies = malloc((c->n ? c->n : 1) * sizeof *bodies);
    struct queue_msg_rec *recs = malloc((c->n ? c->n : 1) * sizeof *recs);
    int rc = (!c->msgs || !bodies || !recs) ? -ENOMEM : 0;
    size_t need = 0, kept = 0;
    for (size_t i = 0, j; i < c->n && rc == 0; i = j) {
        uint64_t id = c->ents[i].msg_id;
        for (j = i + 1; j < c->n && c->ents[j].msg_id == id; j++)
            ;
        uint8_t kb[8];
        queue_key_u64(kb, id);
        MDB_val k = { 8, kb }, v;
        MDB_val *bv = &bodies[c->msg_n];
        struct queue_msg_rec *m = &recs[c->msg_n];
        int mrc = mdb_get(txn, s->db_msg, &k, &v);
        int brc = mdb_get(txn, s->db_body, &k, bv);
        if ((mrc && mrc != MDB_NOTFOUND) || (brc && brc != MDB_NOTFOUND)) {
            rc = queue_mdb_err(mrc && mrc != MDB_NOTFOUND ? mrc : brc);
            break;
        }
        unsigned why = queue_quar_msg_check(mrc ? NULL : &v, brc ? NULL : bv, id, m);
        if (why != 0) {
            int noted = lease_bad_msg(c, id, why);
            for (size_t e = i; noted > 0 && e < j; e++)
                noted = lease_bad_rcpt(c, c->ents[e].id, c->ents[e].sched_key, id) < 0 ? -ENOMEM
                                                                                        : 1;
            rc = noted < 0 ? noted : 0;
            continue;                    /* not leased */
        }
        c->msgs[c->msg_n] = (struct lease_msg){ .id = m->id, .created_ms = m->created_ms,
                                                .flags = m->flags, .rp_len = m->return_path_len,
                                                .body_len = bv->mv_size };
        need += m->return_path_len + bv->mv_size + 2;
        for (size_t e = i; e < j; e++) {
            c->ents[e].msg_idx = (uint32_t)c->msg_n;
            c->ents[kept++] = c->ents[e];          /* kept <= e: in place */
        }
        c->msg_n++;
    }
    c->n = kept;
    if (rc == 0)
        rc = lease_buf_reserve(&c->buf, need);
    for (size_t j = 0; j < c->msg_n && rc == 0; j++) {
        struct lease_msg *lm = &c->msgs[j];
        if (lease_buf_add(&c->buf, recs[j].return_path, recs[j].return_path_len, &lm->rp_off) < 0
            || lease_buf_add(&c->buf, bodies[j].mv_data, bodies[j].mv_size, &lm->body_off) < 0)
            rc = -ENOMEM;
    }
    free(bodies);
    free(recs);
    return rc;
}

/* Quarantine what the read found unusable (read transaction closed: the
 * write may grow the map) and log each move once it is committed. */
static void lease_quarantine(struct vl_queue_shard *s, struct lease_ctx *c)
{
    struct queue_quar_req *q = &c->quar;
    q->leased = &s->leases;
    q->now_ms = vl_clock_wall_ms();
    int rc = queue_quar_apply(s, q);
    if (rc < 0) {
        vl_log_at(VL_LOG_ERROR, "evt=quarantine_failed shard=%u rcpts=%zu msgs=%zu err=\"%s\"",
                  s->index, q->rcpt_n, q->msg_n, vl_strerror(rc));
        return;
    }
    for (size_t i = 0; i < q->msg_n; i++)
        if (q->msgs[i].moved)
            vl_log_at(VL_LOG_WARN, "evt=quarantined shard=%u key=msg:%016" PRIx64
                      " reason=%s rcpts=%u", s->index, q->msgs[i].id,
                      queue_quar_reason_name(q->msgs[i].reason_now), q->msgs[i].rcpts);
    for (size_t i = 0; i < q->rcpt_n; i++)
        if (q->rcpts[i].moved && q->rcpts[i].record_bad)
            vl_log_at(VL_LOG_WARN, "evt=quarantined shard=%u key=rcpt:%016" PRIx64
                      " reason=%s", s->index, q->rcpts[i].id,
                      queue_quar_reason_name(q->rcpts[i].reason));
}

/* Build the public batch; the byte buffer moves into it. */
static struct vl_queue_batch *lease_build(struct lease_ctx *c)
{
    qsort_r(c->ents, c->n, sizeof c->ents[0], lease_by_domain, c->buf.p);
    struct queue_batch_impl *b = malloc(sizeof *b + c->n * sizeof(struct vl_queue_rcpt)
                                        + c->msg_n * sizeof(struct vl_queue_msg));
    if (!b)
        return NULL;
    b->unleased = NULL;
    struct vl_queue_rcpt *rcpts = (struct vl_queue_rcpt *)(b + 1);
    struct vl_queue_msg *msgs = (struct vl_queue_msg *)(rcpts + c->n);
    const uint8_t *base = c->buf.p;
    for (size_t i = 0; i < c->msg_n; i++) {
        const struct lease_msg *m = &c->msgs[i];
        msgs[i] = (struct vl_queue_msg){ .id = m->id, .created_ms = m->created_ms,
            .flags = m->flags, .return_path = (const char *)base + m->rp_off,
            .return_path_len = m->rp_len, .body = base + m->body_off, .body_len = m->body_len };
    }
    for (size_t i = 0; i < c->n; i++) {
        const struct lease_ent *e = &c->ents[i];
        vl_assert(e->msg_idx < c->msg_n);
        rcpts[i] = (struct vl_queue_rcpt){ .id = e->id, .msg = &msgs[e->msg_idx],
            .addr = (const char *)base + e->addr_off, .addr_len = e->addr_len,
            .domain = (const char *)base + e->dom_off, .domain_len = e->dom_len,
            .attempts = e->attempts, .state = (enum vl_rcpt_state)e->state };
    }
    b->pub = (struct vl_queue_batch){ c->n, rcpts, c->msg_n, msgs };
    b->bytes = c->buf.p;
    c->buf.p = NULL;
    return &b->pub;
}

int vl_queue_lease(struct vl_queue_shard *s, uint64_t now_ms, size_t max,
                   struct vl_queue_batch **out)
{
    return vl_queue_lease_skip(s, now_ms, max, NULL, NULL, out);
}

int vl_queue_lease_skip(struct vl_queue_shard *s, uint64_t now_ms, size_t max,
                        bool (*skip)(void *ctx, const char *domain, size_t len), void *ctx,
                        struct vl_queue_batch **out)
{
    struct lease_ctx c = { 0 };
    MDB_txn *txn;
    *out = NULL;
    if (max == 0 || max > VL_QUEUE_LEASE_MAX)
        return VL_E_INVALID;
    if (!(c.ents = malloc(max * sizeof c.ents[0])))
        return -ENOMEM;
    int rc = queue_txn_begin(s, false, &txn);
    s->lease_next_due = 0;
    if (rc == 0) {
        rc = lease_scan(s, txn, now_ms, max, skip, ctx, &c);
        s->lease_next_due = rc == 0 ? c.next_due : 0;
        if (rc == 0 && c.n)
            rc = lease_msgs(s, txn, &c);
        queue_txn_abort(s, txn);
    }
    if (rc == 0 && (c.quar.rcpt_n || c.quar.msg_n))
        lease_quarantine(s, &c);
    if (rc == 0 && c.n) {
        *out = lease_build(&c);
        if (!*out)
            rc = -ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < c.n; i++)
        rc = queue_lease_add(&s->leases, c.ents[i].id);
    if (rc < 0 && *out) {
        vl_queue_batch_release(s, *out);
        *out = NULL;
    }
    free(c.ents);
    free(c.msgs);
    free(c.buf.p);
    free(c.quar.rcpts);
    free(c.quar.msgs);
    return rc < 0 ? rc : (int)c.n;
}

void vl_queue_batch_release(struct vl_queue_shard *s, struct vl_queue_batch *b)
{
    if (!b)
        return;
    struct queue_batch_impl *impl = (struct queue_batch_impl *)b;
    for (size_t i = 0; i < b->count; i++)
        if (!impl->unleased || !impl->unleased[i])   /* else: maybe leased again since */
            queue_lease_del(&s->leases, b->rcpts[i].id);
    free(impl->unleased);
    free(impl->bytes);
    free(impl);
}

void vl_queue_batch_unlease(struct vl_queue_shard *s, struct vl_queue_batch *b, size_t i)
{
    struct queue_batch_impl *impl = (struct queue_batch_impl *)b;
    vl_assert(i < b->count);
    if (!impl->unleased && !(impl->unleased = calloc(b->count, 1)))
        return;                          /* no memory: leased until the batch goes */
    if (impl->unleased[i])
        return;
    impl->unleased[i] = 1;
    queue_lease_del(&s->leases, b->rcpts[i].id);
}

uint64_t vl_queue_lease_next_due(const struct vl_queue_shard *s)
{
    return s->lease_next_due;
}
