/*
 * queue_commit.c - the per-shard group-commit batcher (leader/follower).
 *
 * A writer appends its request to the shard's pending list. If no leader is
 * active it becomes the leader: it takes the whole list, runs every request in
 * ONE write transaction, commits (one fsync), marks them done and wakes the
 * followers; requests that arrived meanwhile are taken by the next leader.
 * On MDB_MAP_FULL the transaction is aborted, the map doubled (no transaction
 * open: maplock held for writing) and the group rerun. If a request fails
 * otherwise, the group is rerun one request per transaction so that each
 * caller gets its own result and no request fails for another's.
 * Wake-ups: each waiter sleeps on its request's own condition variable; a
 * leader done wakes the requests it carried and one sleeping pending request
 * to lead next (never every waiter of the shard).
 * Each group transaction also drops the multi-shard enqueue decisions that
 * queue_commit_forget() queued (cheaper than a commit of their own), and
 * writes the event sinks' lazy acknowledgements (vl_queue_events_ack_lazy).
 * Invariants: a request's rc is final only after its transaction ended; every
 * transaction begun here is committed or aborted before the leader moves on.
 * Diagnostics: never logs; returns codes.
 */
#include "queue_commit.h"

#include "queue_evack.h"
#include "queue_store.h"
#include "volley/error.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* Delete the decisions waiting in s->forget (a snapshot: *n of them). */
static int queue_forget_apply(struct vl_queue_shard *s, MDB_txn *txn, size_t *n)
{
    uint64_t ids[QUEUE_FORGET_MAX];
    pthread_mutex_lock(&s->mu);
    *n = s->forget_n;
    memcpy(ids, s->forget, *n * sizeof ids[0]);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < *n; i++) {
        int rc = queue_pend_put(s, txn, ids[i], NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Run requests [list, limit) in one transaction. @return 0 when committed
 * (each rc set), MDB_MAP_FULL to retry after growing, or a negative error
 * (the transaction aborted; rcs to be ignored). */
static int queue_group_run(struct vl_queue_shard *s, struct queue_req *list, size_t limit)
{
    MDB_txn *txn;
    struct queue_stats_rec st;
    int rc = queue_txn_begin(s, true, &txn);
    if (rc < 0)
        return rc;
    rc = queue_stats_get(s, txn, &st);
    size_t forgets = 0;
    uint64_t evack_gen = 0;
    if (rc >= 0)
        rc = queue_forget_apply(s, txn, &forgets);
    if (rc >= 0)
        rc = queue_events_ack_apply(s, txn, &evack_gen);    /* issue 16: lazy acks */
    size_t i = 0;
    for (struct queue_req *r = list; rc >= 0 && r && i < limit; r = r->next, i++) {
        rc = r->fn(s, txn, &st, r->arg);
        r->rc = rc;
    }
    if (rc >= 0)
        rc = queue_stats_put(s, txn, &st);
    if (rc < 0) {
        queue_txn_abort(s, txn);         /* never drop it: it holds the writer lock */
        return rc == VL_E_QUEUE_FULL ? MDB_MAP_FULL : rc;   /* grow and rerun */
    }
    rc = queue_txn_commit(s, txn);
    if (rc == 0) {
        pthread_mutex_lock(&s->mu);
        s->txns++;
        vl_assert(forgets <= s->forget_n);     /* only the leader removes */
        s->forget_n -= forgets;
        memmove(s->forget, s->forget + forgets, s->forget_n * sizeof s->forget[0]);
        if (evack_gen > s->evack_done_gen)
            s->evack_done_gen = evack_gen;
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    return rc == MDB_MAP_FULL ? rc : queue_commit_err(s, rc);
}

/* Leader: run @p list to completion, growing the map as needed. */
static void queue_group_commit(struct vl_queue_shard *s, struct queue_req *list)
{
    size_t n = 0;
    for (struct queue_req *r = list; r; r = r->next)
        n++;
    size_t limit = n;
    struct queue_req *head = list;
    for (unsigned guard = 0; head && guard < 64 + 2 * n; guard++) {
        int rc = queue_group_run(s, head, limit);
        if (rc == MDB_MAP_FULL) {
            rc = queue_map_grow(s);
            if (rc == 0)
                continue;
        }
        if (rc < 0 && limit > 1) {
            limit = 1;           /* isolate the failing request */
            continue;
        }
        for (size_t i = 0; i < limit && head; i++, head = head->next)
            if (rc < 0)
                head->rc = rc;
    }
    for (; head; head = head->next)
        head->rc = VL_E_STORAGE;
}

void queue_submit_start(struct vl_queue_shard *s, struct queue_req *req)
{
    req->done = false;
    req->waiting = false;
    req->next = NULL;
    pthread_cond_init(&req->cv, NULL);
    pthread_mutex_lock(&s->mu);
    *s->pending_tail = req;
    s->pending_tail = &req->next;
    s->pending_n++;
    if (s->hold_n)
        pthread_cond_broadcast(&s->cv);  /* a holding leader counts again */
    pthread_mutex_unlock(&s->mu);
}

/* With the hold hook on, wait (mu held) until hold_n requests are pending or
 * the deadline passed. @return true to lead now. */
static bool queue_hold_wait(struct vl_queue_shard *s, struct timespec *deadline)
{
    if (s->hold_n == 0 || s->pending_n >= s->hold_n)
        return true;
    if (deadline->tv_sec == 0) {
        clock_gettime(CLOCK_REALTIME, deadline);
        deadline->tv_sec += QUEUE_HOLD_MS_MAX / 1000u;
    }
    s->hold_waiters++;
    bool lead = pthread_cond_timedwait(&s->cv, &s->mu, deadline) == ETIMEDOUT;
    s->hold_waiters--;
    return lead;
}

int queue_submit_wait(struct vl_queue_shard *s, struct queue_req *req)
{
    struct timespec deadline = { 0, 0 };
    pthread_mutex_lock(&s->mu);
    while (!req->done) {
        if (s->leader) {
            req->waiting = true;
            pthread_cond_wait(&req->cv, &s->mu);   /* done, or chosen to lead */
            req->waiting = false;
            continue;
        }
        if (!queue_hold_wait(s, &deadline))
            continue;
        struct queue_req *list = s->pending;
        vl_assert(list != NULL);               /* ours at least, until done */
        s->pending = NULL;
        s->pending_tail = &s->pending;
        s->pending_n = 0;
        s->hold_n = 0;
        s->leader = true;
        pthread_mutex_unlock(&s->mu);
        queue_group_commit(s, list);
        pthread_mutex_lock(&s->mu);
        /* Wake only the requests of this group (each on its own cv) and the
         * first pending one, to lead the next group: no thundering herd of
         * every waiter per commit. mu is held, so no woken waiter returns
         * (and frees its request) before this loop is done with it. */
        for (struct queue_req *r = list, *nx; r; r = nx) {
            nx = r->next;
            r->done = true;
            s->requests++;
            if (r != req)
                pthread_cond_signal(&r->cv);
        }
        s->commits++;
        s->leader = false;
        /* The next leader: the first pending request whose thread sleeps on
         * it (a thread that is busy elsewhere, e.g. waiting on another shard,
         * leads when it comes to wait; none sleeping: nobody to wake). */
        for (struct queue_req *r = s->pending; r; r = r->next)
            if (r->waiting) {
                pthread_cond_signal(&r->cv);
                break;
            }
        if (s->hold_waiters)
            pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&req->cv);
    return req->rc;
}

int queue_submit(struct vl_queue_shard *s, struct queue_req *req)
{
    queue_submit_start(s, req);
    return queue_submit_wait(s, req);
}

static int queue_forget_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                           void *arg)
{
    (void)st;
    return queue_pend_put(s, txn, *(const uint64_t *)arg, NULL);
}

static int queue_noop_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                         void *arg)
{
    (void)s; (void)txn; (void)st; (void)arg;
    return 0;
}

void queue_commit_forget(struct vl_queue_shard *s, uint64_t msg_id)
{
    pthread_mutex_lock(&s->mu);
    bool queued = s->forget_n < QUEUE_FORGET_MAX;
    if (queued)
        s->forget[s->forget_n++] = msg_id;
    pthread_mutex_unlock(&s->mu);
    if (!queued) {
        struct queue_req req = { .fn = queue_forget_fn, .arg = &msg_id };
        (void)queue_submit(s, &req);
    }
}

void queue_commit_flush(struct vl_queue_shard *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->forget_n;
    pthread_mutex_unlock(&s->mu);
    if (n) {
        struct queue_req req = { .fn = queue_noop_fn, .arg = NULL };
        (void)queue_submit(s, &req);
    }
}

void queue_commit_hold(struct vl_queue_shard *s, unsigned n)
{
    pthread_mutex_lock(&s->mu);
    s->hold_n = n;
    pthread_mutex_unlock(&s->mu);
}

void queue_commit_counts(struct vl_queue_shard *s, uint64_t *groups, uint64_t *requests,
                         uint64_t *txns)
{
    pthread_mutex_lock(&s->mu);
    *groups = s->commits;
    *requests = s->requests;
    *txns = s->txns;
    pthread_mutex_unlock(&s->mu);
}
