/*
 * queue_recover.c - resolve multi-shard enqueues interrupted by a crash.
 *
 * A multi-shard enqueue (queue_write.c) is two-phase: every part but the
 * coordinator's (its lowest shard) is written PREPARED (records, no sched
 * entries: not leasable); then the coordinator's part is written visible
 * with a COMMITTED record in one transaction (the decision); then the other
 * parts are published; the decision is dropped later. So after a crash: a
 * COMMITTED record means every part was written (publish the PREPARED ones,
 * drop the decision); PREPARED parts without it were never visible anywhere
 * (remove them). An enqueue in flight in a live
 * process holds DATA/enqueue.lock shared; recovery needs it exclusive and
 * never waits for it.
 * Diagnostics: never logs; returns codes.
 */
#include "queue_recover.h"

#include "queue_commit.h"
#include "queue_store.h"
#include "volley/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

struct recover_ent {
    uint64_t msg_id;
    unsigned shard;
    struct queue_pend_rec rec;
};

struct recover_set {
    struct recover_ent *v;
    size_t n, cap;
};

/* Append every pend record of shard @p s. */
static int recover_collect(struct vl_queue_shard *s, struct recover_set *set)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = queue_txn_begin(s, false, &txn);
    if (rc < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->db_pend, &cur)) != 0) {
        queue_txn_abort(s, txn);
        return queue_mdb_err(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (set->n == set->cap) {
            size_t cap = set->cap ? set->cap * 2 : 64;
            void *p = cap <= QUEUE_RECOVER_PENDS_MAX ? realloc(set->v, cap * sizeof *set->v)
                                                     : NULL;
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            set->v = p;
            set->cap = cap;
        }
        struct recover_ent *e = &set->v[set->n];
        if (k.mv_size != 8 || queue_pend_rec_decode(v.mv_data, v.mv_size, &e->rec) < 0) {
            rc = VL_E_CORRUPT;
            break;
        }
        e->msg_id = queue_key_u64_get(k.mv_data);
        e->shard = s->index;
        set->n++;
    }
    mdb_cursor_close(cur);
    queue_txn_abort(s, txn);
    return rc == MDB_NOTFOUND ? 0 : (rc < 0 ? rc : queue_mdb_err(rc));
}

static int recover_by_msg(const void *a, const void *b)
{
    const struct recover_ent *x = a, *y = b;
    if (x->msg_id != y->msg_id)
        return x->msg_id < y->msg_id ? -1 : 1;
    return (x->shard > y->shard) - (x->shard < y->shard);
}

enum recover_act { RECOVER_PUBLISH, RECOVER_REMOVE, RECOVER_FORGET };
struct recover_arg { uint64_t msg_id; enum recover_act act; };

static int recover_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                      void *arg)
{
    const struct recover_arg *a = arg;
    switch (a->act) {
    case RECOVER_PUBLISH: return queue_msg_publish(s, txn, a->msg_id);
    case RECOVER_REMOVE:  return queue_msg_purge(s, txn, st, a->msg_id);
    case RECOVER_FORGET:  return queue_pend_put(s, txn, a->msg_id, NULL);
    }
    vl_panic("bad recover action %d", (int)a->act);
}

static int recover_do(struct vl_queue *q, unsigned shard, uint64_t msg_id, enum recover_act act)
{
    struct recover_arg a = { msg_id, act };
    struct queue_req req = { .fn = recover_fn, .arg = &a };
    if (VL_NEVER(shard >= q->nshards))
        return VL_E_CORRUPT;
    return queue_submit(q->shards[shard], &req);
}

/* Resolve the records [e, e + n) of one message. */
static int recover_msg(struct vl_queue *q, const struct recover_ent *e, size_t n)
{
    const struct recover_ent *decision = NULL;
    for (size_t i = 0; i < n; i++)
        if (e[i].rec.state == QUEUE_PEND_COMMITTED)
            decision = &e[i];
    for (size_t i = 0; i < n; i++) {
        if (e[i].rec.state != QUEUE_PEND_PREPARED)
            continue;
        int rc = recover_do(q, e[i].shard, e[i].msg_id,
                            decision ? RECOVER_PUBLISH : RECOVER_REMOVE);
        if (rc < 0)
            return rc;                     /* the decision stays for the next pass */
    }
    if (decision) {
        int rc = recover_do(q, decision->shard, decision->msg_id, RECOVER_FORGET);
        if (rc < 0)
            return rc;
    }
    return 1;
}

/* Take DATA/enqueue.lock exclusively. @return the fd, -1 if an enqueue is in
 * flight, or -errno. */
static int recover_lock(struct vl_queue *q)
{
    char path[QUEUE_PATH_BYTES_MAX];
    snprintf(path, sizeof path, "%s/%s", q->dir, QUEUE_ENQ_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == EROFS || errno == EACCES ? -1 : -errno;   /* cannot write anyway */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return fd;
    int rc = errno == EWOULDBLOCK ? -1 : -errno;
    close(fd);
    return rc;
}

int queue_recover(struct vl_queue *q)
{
    struct recover_set set = { 0 };
    int fd = recover_lock(q);
    if (fd < 0)
        return fd == -1 ? 0 : fd;
    int rc = 0, resolved = 0;
    for (unsigned k = 0; k < q->nshards && rc == 0; k++)
        rc = recover_collect(q->shards[k], &set);
    if (rc == 0 && set.n)
        qsort(set.v, set.n, sizeof set.v[0], recover_by_msg);
    for (size_t i = 0, j; rc >= 0 && i < set.n; i = j) {
        for (j = i; j < set.n && set.v[j].msg_id == set.v[i].msg_id; j++)
            ;
        rc = recover_msg(q, &set.v[i], j - i);
        resolved += rc > 0;
    }
    free(set.v);
    close(fd);                             /* releases the lock */
    return rc < 0 ? rc : resolved;
}
