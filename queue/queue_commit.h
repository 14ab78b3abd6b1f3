/*
 * queue_commit.h - the per-shard group commit: every write to a shard runs as
 * a request in a write transaction shared with the requests queued beside it
 * (one commit, one fsync for all). Not public.
 */
#ifndef VOLLEY_QUEUE_COMMIT_H
#define VOLLEY_QUEUE_COMMIT_H

#include "queue_codec.h"
#include "queue_env.h"

#include <pthread.h>
#include <stdbool.h>

/** A write to run in a group-commit transaction. @p fn returns >= 0 (its
 *  result) or a negative error; VL_E_QUEUE_FULL is retried after growing the
 *  map. @p fn may run more than once (each time in a new transaction, the
 *  earlier one aborted): it must not change anything outside the transaction
 *  except the stats copy @p st it is given. */
struct queue_req {
    int (*fn)(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st, void *arg);
    void *arg;
    int rc;
    bool done;
    struct queue_req *next;
    pthread_cond_t cv;           /* its waiter sleeps here: a commit wakes only the
                                    requests it carried and the next leader */
    bool waiting;                /* its thread sleeps on cv now (guarded by mu) */
};

/** Run @p req in a group-commit write transaction on @p s; blocks until it is
 *  committed (or failed). Thread: any. @return req's result. */
int queue_submit(struct vl_queue_shard *s, struct queue_req *req);
/** queue_submit() in two halves: queue @p req (never blocks on a commit)... */
void queue_submit_start(struct vl_queue_shard *s, struct queue_req *req);
/** ...then lead or wait until it is done. @return req's result. */
int queue_submit_wait(struct vl_queue_shard *s, struct queue_req *req);

/** Drop the decision record of multi-shard enqueue @p msg_id from @p s (its
 *  coordinator) in the next commit on @p s, or now if QUEUE_FORGET_MAX are
 *  waiting. A crash before that leaves the record to recovery, which drops
 *  it. Call only once every part is published. Thread: any. */
void queue_commit_forget(struct vl_queue_shard *s, uint64_t msg_id);
/** Commit what queue_commit_forget() left waiting (before close). */
void queue_commit_flush(struct vl_queue_shard *s);

/** Test hook: the next leader on @p s waits until @p n requests are queued
 *  (at most QUEUE_HOLD_MS_MAX) before it takes them all into one group;
 *  then the hook is off again. n = 0 turns it off. */
void queue_commit_hold(struct vl_queue_shard *s, unsigned n);
#define QUEUE_HOLD_MS_MAX 10000u

/** Counters of @p s: groups led, requests they carried, write transactions
 *  committed (a group whose requests fail alone takes several). */
void queue_commit_counts(struct vl_queue_shard *s, uint64_t *groups, uint64_t *requests,
                         uint64_t *txns);

#endif
