/*
 * queue_quar.c - the quarantine (see queue_quar.h): move unreadable
 * recipients and messages out of the queue into quar, list them, purge them.
 *
 * Moving a recipient keeps queue_schema.h's invariants: its record, sched and
 * dom entries go, its message loses it (queue_msg_release), the stats lose it
 * from its state and count it in quarantined. A record that does not decode
 * tells neither its domain nor its message: its dom entry is found by a scan
 * of dom, its message by a scan of msg for the id range holding it (O(queue),
 * but only for a record that is already corrupt). Its state is read from its
 * state byte when that is valid, else taken as ready.
 * A message entry keeps the message record and body as found; a message
 * whose record decodes takes all its open recipients of this shard with it
 * (except those leased: their attempt is running and completes them). A
 * message whose record does not decode or is missing takes only the
 * recipients the lease met (the others are met later); its stats count goes
 * with its record, or with its orphan body if only that was left.
 * Diagnostics: never logs (the lease logs what was moved, once committed).
 * Layer: on queue_commit (the request) and queue_store (records).
 */
#include "queue_quar.h"

#include "queue_commit.h"
#include "queue_crc.h"
#include "queue_lease_set.h"
#include "queue_store.h"

#include "volley/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define QUAR_TAG_RCPT 'r'
#define QUAR_TAG_MSG  'm'
#define QUAR_SCRUB_HITS_MAX 4u               /* an id appears once per index */

unsigned queue_quar_rcpt_reason(const MDB_val *rv)
{
    const uint8_t *b = rv->mv_data;
    if (rv->mv_size >= 1 && (b[0] < QUEUE_REC_V1 || b[0] > QUEUE_REC_V2))
        return QUEUE_QUAR_VERSION;
    if (queue_rec_crc_state(b, rv->mv_size) == QUEUE_CRC_BAD)
        return QUEUE_QUAR_RECORD_CRC;
    return QUEUE_QUAR_RECORD;
}

unsigned queue_quar_msg_check(const MDB_val *mv, const MDB_val *bv, uint64_t id,
                              struct queue_msg_rec *m)
{
    if (!mv)
        return QUEUE_QUAR_MSG_MISSING;
    if (queue_msg_rec_decode(mv->mv_data, mv->mv_size, m) < 0 || m->id != id)
        return QUEUE_QUAR_MSG_CORRUPT;
    if (!bv)
        return QUEUE_QUAR_BODY_MISSING;
    if (bv->mv_size != m->size)
        return QUEUE_QUAR_BODY_SIZE;
    if (m->body_crc_set && queue_crc32c(0, bv->mv_data, bv->mv_size) != m->body_crc)
        return QUEUE_QUAR_BODY_CRC;
    return 0;
}

/* ---- moving ------------------------------------------------------------ */

struct quar_ctx {
    struct vl_queue_shard *s;
    MDB_txn *txn;
    struct queue_stats_rec *st;
    struct queue_quar_req *req;
};

/* Copy the value of @p key in @p dbi into a new buffer *out (caller frees;
 * NULL when missing). LMDB data is borrowed until the next write. */
static int quar_copy(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, void **out,
                     size_t *len)
{
    MDB_val k = { klen, (void *)key }, v;
    *out = NULL;
    *len = 0;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return queue_mdb_err(rc);
    if (!(*out = malloc(v.mv_size ? v.mv_size : 1)))
        return -ENOMEM;
    memcpy(*out, v.mv_data, v.mv_size);
    *len = v.mv_size;
    return 0;
}

/* Write quar[tag + id] = @p r with its raw record and body (MDB_RESERVE: the
 * bytes are copied once, into the page). */
static int quar_put(struct quar_ctx *c, char tag, uint64_t id, struct queue_quar_rec *r,
                    const void *raw, const void *body)
{
    uint8_t kb[QUEUE_QUAR_KEY_BYTES];
    kb[0] = (uint8_t)tag;
    queue_key_u64(kb + 1, id);
    r->time_ms = c->req->now_ms;
    MDB_val k = { sizeof kb, kb }, v = { queue_quar_rec_size(r), NULL };
    int rc = queue_mdb_put(c->txn, c->s->db_quar, &k, &v, MDB_RESERVE);
    if (rc)
        return queue_mdb_err(rc);
    uint8_t *p = v.mv_data;
    p += queue_quar_rec_encode_head(p, r);
    if (r->raw_len)
        memcpy(p, raw, r->raw_len);
    if (r->body_len)
        memcpy(p + r->raw_len, body, r->body_len);
    return 0;
}

/* Delete every entry of DUPSORT index @p dbi whose value is @p id (a full
 * scan: the key is unknown). */
static int quar_scrub(struct quar_ctx *c, MDB_dbi dbi, uint64_t id)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t keys[QUAR_SCRUB_HITS_MAX][VL_SMTP_DOMAIN_BYTES_MAX];
    size_t klen[QUAR_SCRUB_HITS_MAX], hits = 0;
    int rc = mdb_cursor_open(c->txn, dbi, &cur);
    if (rc)
        return queue_mdb_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && hits < QUAR_SCRUB_HITS_MAX;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != 8 || queue_key_u64_get(v.mv_data) != id
            || k.mv_size > sizeof keys[0])
            continue;
        memcpy(keys[hits], k.mv_data, k.mv_size);
        klen[hits++] = k.mv_size;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return queue_mdb_err(rc);
    for (size_t i = 0; i < hits; i++)
        if ((rc = queue_index_del(c->txn, dbi, keys[i], klen[i], id)) < 0)
            return rc;
    return 0;
}

/* The message of this shard whose recipient id range holds @p id, or 0. */
static uint64_t quar_msg_owner(struct quar_ctx *c, uint64_t id)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t owner = 0;
    if (mdb_cursor_open(c->txn, c->s->db_msg, &cur) != 0)
        return 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && owner == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct queue_msg_rec m;
        if (queue_msg_rec_decode(v.mv_data, v.mv_size, &m) == 0 && id >= m.first_rcpt
            && id - m.first_rcpt < m.rcpt_count)
            owner = m.id;
    }
    mdb_cursor_close(cur);
    return owner;
}

/* Remove recipient @p id whose record (@p raw) does not decode. */
static int quar_rcpt_unreadable(struct quar_ctx *c, uint64_t id, uint64_t sched_key,
                                const uint8_t *raw, size_t len, uint64_t *owner)
{
    uint8_t kb[8], tb[8];
    uint8_t state = len >= 3 ? raw[2] : 0;
    if (state != VL_RCPT_READY && state != VL_RCPT_DEFERRED)
        state = c->st->by_state[VL_RCPT_READY] ? VL_RCPT_READY : VL_RCPT_DEFERRED;
    int rc;
    if (sched_key != UINT64_MAX) {
        queue_key_u64(tb, sched_key);
        rc = queue_index_del(c->txn, c->s->db_sched, tb, 8, id);
    } else {
        rc = quar_scrub(c, c->s->db_sched, id);
    }
    if (rc == 0)
        rc = quar_scrub(c, c->s->db_dom, id);
    if (rc < 0)
        return rc;
    queue_key_u64(kb, id);
    MDB_val k = { 8, kb };
    if ((rc = queue_mdb_del(c->txn, c->s->db_rcpt, &k, NULL)) != 0)
        return queue_mdb_err(rc);
    c->st->by_state[state] -= c->st->by_state[state] > 0;
    *owner = quar_msg_owner(c, id);
    return *owner ? queue_msg_release(c->s, c->txn, c->st, *owner) : 0;
}

/* Move recipient @p id to quarantine: always if its record does not decode;
 * with reason @p why (its message's problem) if it does and @p why != 0.
 * @p sched_key: its sched entry, UINT64_MAX if unknown.
 * @return 1 moved (*reason set), 0 left alone, < 0 error. */
static int quar_rcpt(struct quar_ctx *c, uint64_t id, uint64_t sched_key, unsigned why,
                     uint8_t *reason)
{
    uint8_t kb[8];
    void *raw;
    size_t len;
    queue_key_u64(kb, id);
    int rc = quar_copy(c->txn, c->s->db_rcpt, kb, 8, &raw, &len);
    if (rc < 0 || !raw)
        return rc;                       /* gone meanwhile: nothing to do */
    struct queue_rcpt_rec r;
    struct queue_quar_rec q = { .what = QUEUE_QUAR_RCPT, .raw_len = (uint32_t)len };
    if (queue_rcpt_rec_decode(raw, len, &r) == 0) {
        if (why != 0) {
            q.reason = (uint8_t)why;
            q.msg_id = r.msg_id;
            rc = queue_rcpt_remove(c->s, c->txn, c->st, id, &r);
        }
    } else {
        MDB_val rv = { len, raw };
        q.reason = (uint8_t)queue_quar_rcpt_reason(&rv);
        rc = quar_rcpt_unreadable(c, id, sched_key, raw, len, &q.msg_id);
    }
    if (rc == 0 && q.reason != 0)
        rc = quar_put(c, QUAR_TAG_RCPT, id, &q, raw, NULL);
    free(raw);
    if (rc < 0 || q.reason == 0)
        return rc;
    c->st->quarantined++;
    c->req->moved++;
    *reason = q.reason;
    return 1;
}

/* A message record that decodes: move its open recipients (not leased). */
static int quar_msg_rcpts(struct quar_ctx *c, struct queue_quar_msg *qm,
                          const struct queue_msg_rec *m)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    int rc = queue_msg_rcpts(c->s, c->txn, m, &ids, &n);
    for (size_t i = 0; rc >= 0 && i < n; i++) {
        uint8_t reason;
        if (c->req->leased && queue_lease_has(c->req->leased, ids[i]))
            continue;
        rc = quar_rcpt(c, ids[i], UINT64_MAX, qm->reason_now, &reason);
        qm->rcpts += rc > 0;
    }
    free(ids);
    return rc < 0 ? rc : 0;
}

/* Quarantine message @p qm if it is still unusable. */
static int quar_msg(struct quar_ctx *c, struct queue_quar_msg *qm)
{
    uint8_t kb[8];
    void *raw = NULL, *body = NULL;
    size_t raw_len = 0, body_len = 0;
    struct queue_msg_rec m;
    queue_key_u64(kb, qm->id);
    int rc = quar_copy(c->txn, c->s->db_msg, kb, 8, &raw, &raw_len);
    if (rc == 0)
        rc = quar_copy(c->txn, c->s->db_body, kb, 8, &body, &body_len);
    MDB_val mv = { raw_len, raw }, bv = { body_len, body };
    unsigned why = rc < 0 ? 0 : queue_quar_msg_check(raw ? &mv : NULL, body ? &bv : NULL,
                                                     qm->id, &m);
    qm->reason_now = (uint8_t)why;
    if (why != 0 && (raw || body)) {
        struct queue_quar_rec q = { .what = QUEUE_QUAR_MSG, .reason = (uint8_t)why,
            .raw_len = (uint32_t)raw_len, .body_len = (uint32_t)body_len,
            .body_found = body != NULL, .msg_id = qm->id };
        rc = quar_put(c, QUAR_TAG_MSG, qm->id, &q, raw, body);
    }
    qm->moved = rc == 0 && why != 0;
    MDB_val k = { 8, kb };
    if (rc == 0 && why != 0 && why != QUEUE_QUAR_MSG_CORRUPT && why != QUEUE_QUAR_MSG_MISSING)
        rc = quar_msg_rcpts(c, qm, &m);   /* they release it: gone at rcpt_open 0 */
    else if (rc == 0 && why == QUEUE_QUAR_MSG_CORRUPT) {
        if ((rc = queue_mdb_err(queue_mdb_del(c->txn, c->s->db_msg, &k, NULL))) == 0) {
            c->st->messages -= c->st->messages > 0;
            c->st->body_bytes -= c->st->body_bytes >= body_len ? body_len : c->st->body_bytes;
        }
    }
    if (rc == 0 && (why == QUEUE_QUAR_MSG_CORRUPT || why == QUEUE_QUAR_MSG_MISSING) && body) {
        if ((rc = queue_mdb_err(queue_mdb_del(c->txn, c->s->db_body, &k, NULL))) == 0
            && why == QUEUE_QUAR_MSG_MISSING) {
            /* The record vanished but the stats still count it: the orphan
             * body says so (once: it is gone now). */
            c->st->messages -= c->st->messages > 0;
            c->st->body_bytes -= c->st->body_bytes >= body_len ? body_len : c->st->body_bytes;
        }
    }
    free(raw);
    free(body);
    return rc;
}

static int quar_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st, void *arg)
{
    struct queue_quar_req *req = arg;
    struct quar_ctx c = { s, txn, st, req };
    int rc = 0;
    req->moved = 0;                       /* this may be a rerun: outputs start over */
    for (size_t i = 0; i < req->msg_n; i++) {
        struct queue_quar_msg *qm = &req->msgs[i];
        qm->moved = false;
        qm->rcpts = 0;
        qm->reason_now = 0;
        if ((rc = quar_msg(&c, qm)) < 0)
            return rc;
    }
    for (size_t i = 0; i < req->rcpt_n; i++) {
        struct queue_quar_rcpt *qr = &req->rcpts[i];
        struct queue_quar_msg *qm = NULL;
        qr->moved = false;
        qr->reason = 0;
        for (size_t j = 0; !qr->record_bad && j < req->msg_n && !qm; j++)
            if (req->msgs[j].id == qr->msg_id)
                qm = &req->msgs[j];
        if (!qr->record_bad && (!qm || !qm->moved))
            continue;                     /* its message is fine after all */
        rc = quar_rcpt(&c, qr->id, qr->sched_key, qm ? qm->reason_now : 0, &qr->reason);
        if (rc < 0)
            return rc;
        qr->moved = rc > 0;
        if (qm && qr->moved)
            qm->rcpts++;
    }
    return req->moved > INT32_MAX ? INT32_MAX : (int)req->moved;
}

int queue_quar_apply(struct vl_queue_shard *s, struct queue_quar_req *req)
{
    vl_assert(req->rcpt_n <= QUEUE_QUAR_ITEMS_MAX && req->msg_n <= QUEUE_QUAR_ITEMS_MAX);
    if (req->rcpt_n == 0 && req->msg_n == 0)
        return 0;
    struct queue_req r = { .fn = quar_fn, .arg = req };
    return queue_submit(s, &r);
}

/* ---- operator views ---------------------------------------------------- */

static void quar_info_fill(struct vl_queue_quar_info *d, unsigned shard, const MDB_val *k,
                           const MDB_val *v)
{
    struct queue_quar_rec q;
    const uint8_t *kb = k->mv_data;
    *d = (struct vl_queue_quar_info){ .shard = shard };
    d->is_msg = k->mv_size == QUEUE_QUAR_KEY_BYTES && kb[0] == QUAR_TAG_MSG;
    d->id = k->mv_size == QUEUE_QUAR_KEY_BYTES ? queue_key_u64_get(kb + 1) : 0;
    if (queue_quar_rec_decode(v->mv_data, v->mv_size, &q) < 0) {
        strcpy(d->reason, "unreadable_entry");
        return;
    }
    d->msg_id = q.msg_id;
    d->time_ms = q.time_ms;
    d->raw_bytes = q.raw_len;
    d->body_bytes = q.body_len;
    d->body_kept = q.body_found;
    strcpy(d->reason, queue_quar_reason_name(q.reason));
    struct queue_rcpt_rec r;
    if (!d->is_msg && queue_rcpt_rec_decode(q.raw, q.raw_len, &r) == 0) {
        memcpy(d->addr, r.addr, r.addr_len);
        d->addr[r.addr_len] = 0;
    }
}

int vl_queue_quarantine_list(struct vl_queue *q, struct vl_queue_quar_info *out, size_t max)
{
    size_t n = 0;
    for (unsigned sk = 0; sk < q->nshards && n < max; sk++) {
        struct vl_queue_shard *s = q->shards[sk];
        MDB_txn *txn;
        MDB_cursor *cur;
        MDB_val k, v;
        int rc = queue_txn_begin(s, false, &txn);
        if (rc < 0)
            return rc;
        if ((rc = mdb_cursor_open(txn, s->db_quar, &cur)) != 0) {
            queue_txn_abort(s, txn);
            return queue_mdb_err(rc);
        }
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < max;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            quar_info_fill(&out[n++], sk, &k, &v);
        mdb_cursor_close(cur);
        queue_txn_abort(s, txn);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return queue_mdb_err(rc);
    }
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

static int quar_purge_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                         void *arg)
{
    (void)arg;
    int rc = queue_mdb_drop(txn, s->db_quar);
    if (rc)
        return queue_mdb_err(rc);
    uint64_t n = st->quarantined;
    st->purged += n;
    st->quarantined = 0;
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

int vl_queue_quarantine_purge(struct vl_queue *q)
{
    int total = 0;
    for (unsigned k = 0; k < q->nshards; k++) {
        struct queue_req req = { .fn = quar_purge_fn, .arg = NULL };
        int rc = queue_submit(q->shards[k], &req);
        if (rc < 0)
            return rc;
        total += rc;
    }
    return total;
}
