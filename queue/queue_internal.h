/*
 * queue_internal.h - what queue.c, queue_lease.c and queue_admin.c share:
 * the shard handle, the group-commit request, LMDB helpers. Not public.
 *
 * Threads: a shard's write transactions run in whichever thread is the
 * batcher's leader at the time (see queue.c); read transactions run in the
 * caller. Every transaction holds the shard's maplock for reading, so the map
 * can only be resized (write lock) while no transaction of this process is
 * open, as LMDB requires.
 */
#ifndef VOLLEY_QUEUE_INTERNAL_H
#define VOLLEY_QUEUE_INTERNAL_H

#include "queue_codec.h"
#include "volley/queue.h"
#include "volley/limits.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>

struct queue_lease_set {             /* open addressing, linear probing; 0 = empty */
    uint64_t *slots;
    size_t cap;                      /* power of two, or 0 */
    size_t count;
};

/** A write to run in a group-commit transaction. @p fn returns >= 0 (its
 *  result) or a negative error; MDB_MAP_FULL is retried after growing. */
struct queue_req {
    int (*fn)(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st, void *arg);
    void *arg;
    int rc;
    bool done;
    struct queue_req *next;
};

struct vl_queue_shard {
    struct vl_queue *q;
    unsigned index;
    MDB_env *env;
    MDB_dbi db_meta, db_msg, db_body, db_rcpt, db_sched, db_dom;
    pthread_rwlock_t maplock;
    pthread_mutex_t mu;              /* batcher: guards pending, leader */
    pthread_cond_t cv;
    struct queue_req *pending, **pending_tail;
    bool leader;
    uint64_t commits, requests;      /* guarded by mu: group-commit effect */
    struct queue_lease_set leases;   /* owning thread only */
    char path[4200];
};

struct vl_queue {
    unsigned nshards;
    pthread_mutex_t id_mu;
    uint64_t last_msg_id;
    uint64_t id_salt;
    char dir[4096];
    struct vl_queue_shard *shards[];
};

/* A recipient address validated and routed. */
struct queue_prcpt {
    const char *addr;
    uint16_t addr_len;
    uint16_t domain_off;
    uint16_t domain_len;
    uint16_t shard;
    uint32_t order;                  /* index in the caller's list */
};

/** Map an LMDB return code (0, MDB_*, positive errno) to 0 / -errno / VL_E_*. */
int queue_mdb_err(int rc);

/** Run @p req in a group-commit write transaction on @p s; blocks until it is
 *  committed (or failed). @return req's result. */
int queue_submit(struct vl_queue_shard *s, struct queue_req *req);
/** queue_submit() in two halves: queue @p req (never blocks on a commit)... */
void queue_submit_start(struct vl_queue_shard *s, struct queue_req *req);
/** ...then lead or wait until it is done. @return req's result. */
int queue_submit_wait(struct vl_queue_shard *s, struct queue_req *req);

/** Begin a read-only transaction (takes maplock for reading). */
int queue_read_begin(struct vl_queue_shard *s, MDB_txn **txn);
/** End it (abort) and drop maplock. */
void queue_read_end(struct vl_queue_shard *s, MDB_txn *txn);

/** Lowercase @p n bytes of @p src into @p dst (n <= 255). */
void queue_lower(char *dst, const char *src, size_t n);

/** Read and copy a recipient record @p id into @p buf (>= 2048 bytes) and decode it.
 *  @return 0, VL_E_NOTFOUND, VL_E_CORRUPT, ... */
int queue_rcpt_get(struct vl_queue_shard *s, MDB_txn *txn, uint64_t id, uint8_t *buf,
                   struct queue_rcpt_rec *r);

/** Remove open recipient @p id (record, sched, dom) and update its message
 *  (deleted with its body at rcpt_open 0) and @p st: by_state[old]--. */
int queue_rcpt_remove(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                      uint64_t id, const struct queue_rcpt_rec *r);

/** Store @p r for @p id and index it in sched at r->next_ms (dom untouched). */
int queue_rcpt_put(struct vl_queue_shard *s, MDB_txn *txn, uint64_t id,
                   const struct queue_rcpt_rec *r, unsigned put_flags);

/** Delete message @p msg_id (0 = all) from shard @p s. @return recipients removed. */
int queue_purge_shard(struct vl_queue_shard *s, uint64_t msg_id);

/* Leases (queue_lease.c) */
bool queue_lease_has(const struct queue_lease_set *ls, uint64_t id);
int queue_lease_add(struct queue_lease_set *ls, uint64_t id);
void queue_lease_del(struct queue_lease_set *ls, uint64_t id);
void queue_lease_fini(struct queue_lease_set *ls);

#define QUEUE_RCPT_BUF_BYTES 2048u
_Static_assert(QUEUE_RCPT_REC_HEAD_BYTES + VL_SMTP_STATUS_BYTES_MAX + VL_DIAG_TEXT_BYTES_MAX
               + VL_SMTP_PATH_BYTES_MAX <= QUEUE_RCPT_BUF_BYTES, "a recipient record fits");

#endif
