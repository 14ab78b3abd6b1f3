/*
 * queue_evack.c - writing event sinks' acknowledgements inside a write
 * transaction (issue 16): a sink's stored position ("evack.NAME", only
 * forward), the deletion of the events every sink has, and the lazy
 * acknowledgements (vl_queue_events_ack_lazy) every group commit writes
 * (queue_commit.c). Below queue_events.c and queue_commit.c: calls neither.
 * Diagnostics: never logs; returns codes.
 */
#include "queue_evack.h"

#include "queue_codec.h"
#include "queue_schema.h"
#include "volley/error.h"

#include <stdio.h>
#include <string.h>

int queue_evack_key(const char *sink, char *kb, size_t cap)
{
    size_t n = strlen(sink);
    if (n == 0 || n >= VL_QUEUE_EVENT_SINK_BYTES_MAX)
        return VL_E_INVALID;
    return snprintf(kb, cap, "%s%s", QUEUE_KEY_EVACK, sink);
}

/* Move sink @p sink's stored position forward to @p acked (never back). */
int queue_evack_put(struct vl_queue_shard *s, MDB_txn *txn, const char *sink,
                           uint64_t acked)
{
    char kb[64];
    int kn = queue_evack_key(sink, kb, sizeof kb);
    if (kn < 0)
        return kn;
    MDB_val k = { (size_t)kn, kb }, v;
    int rc = mdb_get(txn, s->db_meta, &k, &v);
    uint64_t old = rc == 0 && v.mv_size == 8 ? queue_key_u64_get(v.mv_data) : 0;
    if (rc && rc != MDB_NOTFOUND)
        return queue_mdb_err(rc);
    if (acked > old) {
        uint8_t b[8];
        queue_key_u64(b, acked);
        v = (MDB_val){ 8, b };
        if ((rc = queue_mdb_put(txn, s->db_meta, &k, &v, 0)) != 0)
            return queue_mdb_err(rc);
    }
    return 0;
}

/* Delete the events with seq <= @p upto. */
int queue_evt_delete_upto(struct vl_queue_shard *s, MDB_txn *txn, uint64_t upto)
{
    MDB_cursor *cur;
    int rc;
    if (upto == 0)
        return 0;
    if ((rc = mdb_cursor_open(txn, s->db_evt, &cur)) != 0)
        return queue_mdb_err(rc);
    MDB_val ek, ev;
    /* Oldest first; re-seek after each delete (the cursor's position after
     * mdb_cursor_del is not worth relying on). */
    while ((rc = mdb_cursor_get(cur, &ek, &ev, MDB_FIRST)) == 0 && ek.mv_size == 8
           && queue_key_u64_get(ek.mv_data) <= upto)
        if ((rc = queue_mdb_del(txn, s->db_evt, &ek, NULL)) != 0)
            break;
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : queue_mdb_err(rc);
}

int queue_events_ack_apply(struct vl_queue_shard *s, MDB_txn *txn, uint64_t *gen)
{
    struct { char sink[32]; uint64_t acked; } a[sizeof s->evack / sizeof s->evack[0]];
    pthread_mutex_lock(&s->mu);
    *gen = s->evack_done_gen < s->evack_gen ? s->evack_gen : 0;
    unsigned n = *gen ? s->evack_n : 0;
    uint64_t upto = s->evack_delete_upto;
    for (unsigned i = 0; i < n; i++) {
        memcpy(a[i].sink, s->evack[i].sink, sizeof a[i].sink);
        a[i].acked = s->evack[i].acked;
    }
    pthread_mutex_unlock(&s->mu);
    if (!*gen)
        return 0;
    for (unsigned i = 0; i < n; i++) {
        int rc = queue_evack_put(s, txn, a[i].sink, a[i].acked);
        if (rc < 0)
            return rc;
    }
    return queue_evt_delete_upto(s, txn, upto);
}

