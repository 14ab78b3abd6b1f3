/*
 * queue_events.c - the delivery events outbox of a shard (see volley/queue.h,
 * "delivery events outbox", and queue_schema.h's evt database).
 *
 * Invariants: seq values are given in commit order from meta "evseq" (read and
 * written in the same transaction as the events, so a rolled-back group gives
 * none away and a committed one never repeats); events are appended with
 * MDB_APPEND (keys only grow); a sink's "evack.NAME" only moves forward.
 * Diagnostics: never logs; returns codes.
 */
#include "queue_events.h"

#include "queue_codec.h"
#include "queue_evack.h"
#include "queue_commit.h"
#include "queue_schema.h"
#include "volley/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int queue_evseq_get(struct vl_queue_shard *s, MDB_txn *txn, uint64_t *next)
{
    MDB_val k = { sizeof QUEUE_KEY_EVSEQ - 1, (void *)QUEUE_KEY_EVSEQ }, v;
    int rc = mdb_get(txn, s->db_meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *next = 1;
        return 0;
    }
    if (rc)
        return queue_mdb_err(rc);
    if (v.mv_size != 8)
        return VL_E_CORRUPT;
    *next = queue_key_u64_get(v.mv_data);
    return 0;
}

static int queue_evseq_put(struct vl_queue_shard *s, MDB_txn *txn, uint64_t next)
{
    uint8_t b[8];
    queue_key_u64(b, next);
    MDB_val k = { sizeof QUEUE_KEY_EVSEQ - 1, (void *)QUEUE_KEY_EVSEQ }, v = { 8, b };
    return queue_mdb_err(queue_mdb_put(txn, s->db_meta, &k, &v, 0));
}

static bool queue_event_valid(const char *json, size_t len)
{
    return json && len >= 2 && len <= VL_QUEUE_EVENT_BYTES_MAX && json[0] == '{';
}

int queue_events_append(struct vl_queue_shard *s, MDB_txn *txn, const char *const *json,
                        const size_t *len, size_t n)
{
    uint64_t seq = 0;              /* set by queue_evseq_get (gcc -O3 cannot tell) */
    int rc = queue_evseq_get(s, txn, &seq);
    if (rc < 0)
        return rc;
    uint64_t first = seq;
    for (size_t i = 0; i < n; i++) {
        if (!json[i])
            continue;
        if (!queue_event_valid(json[i], len[i]))
            return VL_E_INVALID;
        uint8_t kb[8];
        queue_key_u64(kb, seq++);
        MDB_val k = { 8, kb }, v = { len[i], (void *)json[i] };
        if ((rc = queue_mdb_put(txn, s->db_evt, &k, &v, MDB_APPEND)) != 0)
            return rc == MDB_KEYEXIST ? VL_E_CORRUPT : queue_mdb_err(rc);
    }
    return seq == first ? 0 : queue_evseq_put(s, txn, seq);
}

struct queue_evadd { const char *const *json; const size_t *len; size_t n; };

static int queue_evadd_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                          void *arg)
{
    (void)st;
    const struct queue_evadd *a = arg;
    return queue_events_append(s, txn, a->json, a->len, a->n);
}

int vl_queue_events_add(struct vl_queue_shard *s, const char *const *json, const size_t *len,
                        size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!queue_event_valid(json[i], len[i]))
            return VL_E_INVALID;
    if (n == 0)
        return 0;
    struct queue_evadd a = { json, len, n };
    struct queue_req req = { .fn = queue_evadd_fn, .arg = &a };
    int rc = queue_submit(s, &req);
    return rc < 0 ? rc : 0;
}

int vl_queue_events_read(struct vl_queue_shard *s, uint64_t after_seq, size_t max,
                         size_t bytes_max, vl_queue_event_fn *fn, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = queue_txn_begin(s, false, &txn);
    if (rc < 0)
        return rc;
    rc = mdb_cursor_open(txn, s->db_evt, &cur);
    if (rc) {
        queue_txn_abort(s, txn);
        return queue_mdb_err(rc);
    }
    uint8_t kb[8];
    queue_key_u64(kb, after_seq + 1);
    MDB_val k = { 8, kb }, v;
    size_t count = 0, bytes = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && count < max && (count == 0 || bytes + v.mv_size <= bytes_max)) {
        if (k.mv_size != 8) {
            rc = VL_E_CORRUPT;
            break;
        }
        fn(arg, queue_key_u64_get(k.mv_data), v.mv_data, v.mv_size);
        count++;
        bytes += v.mv_size;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    queue_txn_abort(s, txn);
    if (rc != 0 && rc != MDB_NOTFOUND && count < max)
        return rc < 0 ? rc : queue_mdb_err(rc);
    return (int)count;
}

struct queue_evack { const char *sink; uint64_t acked, delete_upto; };

static int queue_evack_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                          void *arg)
{
    (void)st;
    const struct queue_evack *a = arg;
    int rc = queue_evack_put(s, txn, a->sink, a->acked);
    return rc < 0 ? rc : queue_evt_delete_upto(s, txn, a->delete_upto);
}

int vl_queue_events_ack(struct vl_queue_shard *s, const char *sink, uint64_t acked_seq,
                        uint64_t delete_upto)
{
    char kb[64];
    if (queue_evack_key(sink, kb, sizeof kb) < 0 || delete_upto > acked_seq)
        return VL_E_INVALID;
    struct queue_evack a = { sink, acked_seq, delete_upto };
    struct queue_req req = { .fn = queue_evack_fn, .arg = &a };
    int rc = queue_submit(s, &req);
    return rc < 0 ? rc : 0;
}

int vl_queue_events_ack_lazy(struct vl_queue_shard *s, const char *sink, uint64_t acked_seq,
                             uint64_t delete_upto)
{
    char kb[64];
    if (queue_evack_key(sink, kb, sizeof kb) < 0 || delete_upto > acked_seq)
        return VL_E_INVALID;
    const size_t cap = sizeof s->evack / sizeof s->evack[0];
    int rc = VL_E_INVALID;
    pthread_mutex_lock(&s->mu);
    unsigned i = 0;
    while (i < s->evack_n && strcmp(s->evack[i].sink, sink) != 0)
        i++;
    if (i < s->evack_n || s->evack_n < cap) {
        if (i == s->evack_n) {
            snprintf(s->evack[i].sink, sizeof s->evack[i].sink, "%s", sink);
            s->evack[i].acked = 0;
            s->evack_n++;
        }
        if (acked_seq > s->evack[i].acked)
            s->evack[i].acked = acked_seq;
        if (delete_upto > s->evack_delete_upto)
            s->evack_delete_upto = delete_upto;
        s->evack_gen++;
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

bool vl_queue_events_ack_pending(struct vl_queue_shard *s)
{
    pthread_mutex_lock(&s->mu);
    bool p = s->evack_done_gen < s->evack_gen;
    pthread_mutex_unlock(&s->mu);
    return p;
}

static int queue_evnoop_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                           void *arg)
{
    (void)s; (void)txn; (void)st; (void)arg;
    return 0;                      /* the group's transaction writes the pending acks */
}

int vl_queue_events_ack_flush(struct vl_queue_shard *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t want = s->evack_gen;  /* acks recorded from now on are the next flush's */
    bool pending = s->evack_done_gen < want;
    pthread_mutex_unlock(&s->mu);
    if (!pending)
        return 0;
    struct queue_req req = { .fn = queue_evnoop_fn, .arg = NULL };
    int rc = queue_submit(s, &req);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->mu);
    pending = s->evack_done_gen < want;
    pthread_mutex_unlock(&s->mu);
    return pending ? VL_E_STORAGE : 0;
}

int vl_queue_events_state(struct vl_queue_shard *s, const char *sink, uint64_t *acked,
                          uint64_t *stored, uint64_t *next_seq)
{
    MDB_txn *txn;
    int rc = queue_txn_begin(s, false, &txn);
    if (rc < 0)
        return rc;
    if (acked) {
        char kb[64];
        int kn = queue_evack_key(sink ? sink : "", kb, sizeof kb);
        MDB_val k = { (size_t)(kn > 0 ? kn : 0), kb }, v;
        *acked = 0;
        if (kn < 0)
            rc = kn;
        else if ((rc = mdb_get(txn, s->db_meta, &k, &v)) == 0 && v.mv_size == 8)
            *acked = queue_key_u64_get(v.mv_data);
        rc = rc == MDB_NOTFOUND ? 0 : rc > 0 ? queue_mdb_err(rc) : rc;
    }
    if (rc >= 0 && stored) {
        MDB_stat ms;
        rc = queue_mdb_err(mdb_stat(txn, s->db_evt, &ms));
        *stored = ms.ms_entries;
    }
    if (rc >= 0 && next_seq)
        rc = queue_evseq_get(s, txn, next_seq);
    queue_txn_abort(s, txn);
    return rc < 0 ? rc : 0;
}
