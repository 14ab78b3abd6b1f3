/*
 * queue_store.c - record primitives of one shard (see queue_store.h).
 * LMDB data is borrowed until the next write: records that are read and then
 * written back are copied out first. Diagnostics: never logs.
 */
#include "queue_store.h"

#include "volley/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void queue_lower(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
}

int queue_stats_get(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st)
{
    MDB_val k = { sizeof QUEUE_KEY_STATS - 1, (void *)QUEUE_KEY_STATS }, v;
    int rc = mdb_get(txn, s->db_meta, &k, &v);
    if (rc)
        return queue_mdb_err(rc);
    return queue_stats_rec_decode(v.mv_data, v.mv_size, st);
}

int queue_stats_put(struct vl_queue_shard *s, MDB_txn *txn, const struct queue_stats_rec *st)
{
    uint8_t buf[QUEUE_STATS_REC_BYTES];
    MDB_val k = { sizeof QUEUE_KEY_STATS - 1, (void *)QUEUE_KEY_STATS };
    MDB_val v = { queue_stats_rec_encode(buf, st), buf };
    return queue_mdb_err(queue_mdb_put(txn, s->db_meta, &k, &v, 0));
}

int queue_index_del(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, uint64_t id)
{
    uint8_t vb[8];
    queue_key_u64(vb, id);
    MDB_val k = { klen, (void *)key }, v = { 8, vb };
    int rc = queue_mdb_del(txn, dbi, &k, &v);
    return rc == MDB_NOTFOUND ? 0 : queue_mdb_err(rc);
}

int queue_index_put(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, uint64_t id)
{
    uint8_t vb[8];
    queue_key_u64(vb, id);
    MDB_val k = { klen, (void *)key }, v = { 8, vb };
    return queue_mdb_err(queue_mdb_put(txn, dbi, &k, &v, 0));
}

int queue_rcpt_get(struct vl_queue_shard *s, MDB_txn *txn, uint64_t id, uint8_t *buf,
                   struct queue_rcpt_rec *r)
{
    uint8_t kb[8];
    queue_key_u64(kb, id);
    MDB_val k = { 8, kb }, v;
    int rc = mdb_get(txn, s->db_rcpt, &k, &v);
    if (rc)
        return queue_mdb_err(rc);
    if (v.mv_size > QUEUE_RCPT_BUF_BYTES)
        return VL_E_CORRUPT;
    memcpy(buf, v.mv_data, v.mv_size);   /* LMDB data is borrowed until the next write */
    return queue_rcpt_rec_decode(buf, v.mv_size, r);
}

int queue_rcpt_put_hidden(struct vl_queue_shard *s, MDB_txn *txn, uint64_t id,
                          const struct queue_rcpt_rec *r, unsigned put_flags)
{
    uint8_t kb[8], buf[QUEUE_RCPT_BUF_BYTES];
    vl_assert(r->state == VL_RCPT_READY || r->state == VL_RCPT_DEFERRED);
    queue_key_u64(kb, id);
    MDB_val k = { 8, kb }, v = { queue_rcpt_rec_encode(buf, r), buf };
    int rc = queue_mdb_put(txn, s->db_rcpt, &k, &v, put_flags);
    if (rc == MDB_KEYEXIST)
        return VL_E_CORRUPT;             /* MDB_APPEND out of order: id counter went back */
    return queue_mdb_err(rc);
}

int queue_rcpt_put(struct vl_queue_shard *s, MDB_txn *txn, uint64_t id,
                   const struct queue_rcpt_rec *r, unsigned put_flags)
{
    uint8_t tb[8];
    int rc = queue_rcpt_put_hidden(s, txn, id, r, put_flags);
    if (rc < 0)
        return rc;
    queue_key_u64(tb, r->next_ms);
    return queue_index_put(txn, s->db_sched, tb, 8, id);
}

int queue_msg_release(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                             uint64_t msg_id)
{
    uint8_t kb[8], buf[QUEUE_MSG_BUF_BYTES];
    struct queue_msg_rec m;
    int rc = queue_msg_get(s, txn, msg_id, buf, &m);
    if (rc == VL_E_NOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    queue_key_u64(kb, msg_id);
    MDB_val k = { 8, kb }, v;
    if (m.rcpt_open > 1) {
        m.rcpt_open--;
        uint8_t out[QUEUE_MSG_BUF_BYTES];
        v = (MDB_val){ queue_msg_rec_encode(out, &m), out };
        return queue_mdb_err(queue_mdb_put(txn, s->db_msg, &k, &v, 0));
    }
    st->messages -= st->messages > 0;
    st->body_bytes -= st->body_bytes >= m.size ? m.size : st->body_bytes;
    if ((rc = queue_mdb_del(txn, s->db_msg, &k, NULL)) != 0)
        return queue_mdb_err(rc);
    rc = queue_mdb_del(txn, s->db_body, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : queue_mdb_err(rc);
}

int queue_rcpt_remove(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                      uint64_t id, const struct queue_rcpt_rec *r)
{
    uint8_t kb[8], tb[8];
    char dom[VL_SMTP_DOMAIN_BYTES_MAX];
    vl_assert(r->domain_len <= sizeof dom);
    queue_key_u64(tb, r->next_ms);
    int rc = queue_index_del(txn, s->db_sched, tb, 8, id);
    queue_lower(dom, r->addr + r->domain_off, r->domain_len);
    if (rc == 0)
        rc = queue_index_del(txn, s->db_dom, dom, r->domain_len, id);
    if (rc < 0)
        return rc;
    queue_key_u64(kb, id);
    MDB_val k = { 8, kb };
    if ((rc = queue_mdb_del(txn, s->db_rcpt, &k, NULL)) != 0)
        return queue_mdb_err(rc);
    st->by_state[r->state] -= st->by_state[r->state] > 0;
    return queue_msg_release(s, txn, st, r->msg_id);
}

int queue_msg_get(struct vl_queue_shard *s, MDB_txn *txn, uint64_t id, uint8_t *buf,
                  struct queue_msg_rec *m)
{
    uint8_t kb[8];
    queue_key_u64(kb, id);
    MDB_val k = { 8, kb }, v;
    int rc = mdb_get(txn, s->db_msg, &k, &v);
    if (rc)
        return queue_mdb_err(rc);
    if (v.mv_size > QUEUE_MSG_BUF_BYTES)
        return VL_E_CORRUPT;
    memcpy(buf, v.mv_data, v.mv_size);
    return queue_msg_rec_decode(buf, v.mv_size, m);
}

int queue_msg_rcpts(struct vl_queue_shard *s, MDB_txn *txn, const struct queue_msg_rec *m,
                    uint64_t **ids, size_t *n)
{
    MDB_cursor *cur;
    uint8_t kb[8];
    queue_key_u64(kb, m->first_rcpt);
    MDB_val k = { 8, kb }, v;
    *n = 0;
    if (!(*ids = malloc((m->rcpt_count ? m->rcpt_count : 1) * sizeof **ids)))
        return -ENOMEM;
    int rc = mdb_cursor_open(txn, s->db_rcpt, &cur);
    if (rc)
        return queue_mdb_err(rc);
    uint64_t end = m->first_rcpt + m->rcpt_count;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && *n < m->rcpt_count;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t id = queue_key_u64_get(k.mv_data);
        if (k.mv_size != 8 || id >= end)
            break;
        (*ids)[(*n)++] = id;
    }
    mdb_cursor_close(cur);
    return (rc == 0 || rc == MDB_NOTFOUND) ? 0 : queue_mdb_err(rc);
}

int queue_pend_get(struct vl_queue_shard *s, MDB_txn *txn, uint64_t msg_id,
                   struct queue_pend_rec *p)
{
    uint8_t kb[8];
    queue_key_u64(kb, msg_id);
    MDB_val k = { 8, kb }, v;
    int rc = mdb_get(txn, s->db_pend, &k, &v);
    if (rc)
        return queue_mdb_err(rc);
    return queue_pend_rec_decode(v.mv_data, v.mv_size, p);
}

int queue_pend_put(struct vl_queue_shard *s, MDB_txn *txn, uint64_t msg_id,
                   const struct queue_pend_rec *p)
{
    uint8_t kb[8], buf[QUEUE_PEND_REC_BYTES];
    queue_key_u64(kb, msg_id);
    MDB_val k = { 8, kb };
    if (!p) {
        int rc = queue_mdb_del(txn, s->db_pend, &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : queue_mdb_err(rc);
    }
    MDB_val v = { queue_pend_rec_encode(buf, p), buf };
    return queue_mdb_err(queue_mdb_put(txn, s->db_pend, &k, &v, 0));
}

int queue_pend_hidden(struct vl_queue_shard *s, MDB_txn *txn, uint64_t msg_id)
{
    struct queue_pend_rec p;
    int rc = queue_pend_get(s, txn, msg_id, &p);
    if (rc == VL_E_NOTFOUND)
        return 0;
    return rc < 0 ? rc : p.state == QUEUE_PEND_PREPARED;
}

int queue_msg_publish(struct vl_queue_shard *s, MDB_txn *txn, uint64_t msg_id)
{
    uint8_t mb[QUEUE_MSG_BUF_BYTES], rb[QUEUE_RCPT_BUF_BYTES], tb[8];
    struct queue_msg_rec m;
    uint64_t *ids = NULL;
    size_t n = 0;
    int rc = queue_pend_hidden(s, txn, msg_id);
    if (rc <= 0)
        return rc;                         /* already visible */
    if ((rc = queue_pend_put(s, txn, msg_id, NULL)) < 0)
        return rc;
    rc = queue_msg_get(s, txn, msg_id, mb, &m);
    if (rc == VL_E_NOTFOUND)
        return 0;                          /* purged meanwhile */
    if (rc == 0)
        rc = queue_msg_rcpts(s, txn, &m, &ids, &n);
    for (size_t i = 0; rc >= 0 && i < n; i++) {
        struct queue_rcpt_rec r;
        if ((rc = queue_rcpt_get(s, txn, ids[i], rb, &r)) < 0)
            break;
        queue_key_u64(tb, r.next_ms);
        rc = queue_index_put(txn, s->db_sched, tb, 8, ids[i]);
    }
    free(ids);
    return rc < 0 ? rc : (int)n;
}

int queue_msg_purge(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                    uint64_t msg_id)
{
    uint8_t mb[QUEUE_MSG_BUF_BYTES], rb[QUEUE_RCPT_BUF_BYTES], kb[8];
    struct queue_msg_rec m;
    uint64_t *ids = NULL;
    size_t n = 0;
    int rc = queue_pend_put(s, txn, msg_id, NULL);   /* a part never published, too */
    if (rc < 0)
        return rc;
    rc = queue_msg_get(s, txn, msg_id, mb, &m);
    if (rc < 0)
        return rc == VL_E_NOTFOUND ? 0 : rc;
    rc = queue_msg_rcpts(s, txn, &m, &ids, &n);
    int removed = 0;
    for (size_t i = 0; rc >= 0 && i < n; i++) {
        struct queue_rcpt_rec r;
        if ((rc = queue_rcpt_get(s, txn, ids[i], rb, &r)) < 0)
            break;
        if ((rc = queue_rcpt_remove(s, txn, st, ids[i], &r)) < 0)
            break;
        st->purged++;
        removed++;
    }
    free(ids);
    if (rc < 0)
        return rc;
    queue_key_u64(kb, msg_id);             /* a message left without recipients */
    MDB_val k = { 8, kb };
    rc = queue_mdb_del(txn, s->db_msg, &k, NULL);
    if (rc == 0) {
        rc = queue_mdb_del(txn, s->db_body, &k, NULL);
        st->messages -= st->messages > 0;
        st->body_bytes -= st->body_bytes >= m.size ? m.size : st->body_bytes;
    }
    if (rc && rc != MDB_NOTFOUND)
        return queue_mdb_err(rc);
    return removed + 1;                    /* + 1: the message was here */
}
