/*
 * queue_env.h - the queue's handles and its LMDB environment layer: the
 * lowest LMDB layer of queue/, used by every other file. Not public.
 *
 * Owns struct vl_queue (the whole queue) and struct vl_queue_shard (one LMDB
 * environment DATA/shard-K with its sub-databases, its group-commit state run
 * by queue_commit.c, and its in-memory leases run by queue_lease.c).
 *
 * Threads: a shard's write transactions run in whichever thread is the
 * group-commit leader at the time (queue_commit.c); read transactions run in
 * the caller. Every transaction holds the shard's maplock for reading, so the
 * map can only be resized (write lock) while no transaction of this process
 * is open, as LMDB requires. Every transaction begun here ends here
 * (queue_txn_commit / queue_txn_abort): no path may drop an MDB_txn.
 *
 * Faults: every LMDB write (put, del, drop, commit) of queue/ goes through the
 * queue_mdb_* wrappers, so a test can make the n-th one fail
 * (queue_fault_arm). Compiled in always; disarmed it costs one atomic load.
 */
#ifndef VOLLEY_QUEUE_ENV_H
#define VOLLEY_QUEUE_ENV_H

#include "queue_lease_set.h"
#include "volley/queue.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define QUEUE_PATH_BYTES_MAX 4200u
#define QUEUE_DIR_BYTES_MAX  4000u       /* the DATA argument; shard paths fit after */
#define QUEUE_FORGET_MAX     1024u       /* decisions pending removal per shard */

struct queue_req;                        /* queue_commit.h */

struct vl_queue_shard {
    struct vl_queue *q;
    unsigned index;
    MDB_env *env;
    MDB_dbi db_meta, db_msg, db_body, db_rcpt, db_sched, db_dom, db_pend, db_quar, db_evt;
    pthread_rwlock_t maplock;
    /* Group commit (queue_commit.c); all guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct queue_req *pending, **pending_tail;
    size_t pending_n;
    bool leader;
    unsigned hold_n;                     /* test hook: leader waits for this many */
    unsigned hold_waiters;               /* threads in the hook's wait on cv */
    uint64_t commits, requests;          /* groups led, requests they carried */
    uint64_t txns;                       /* write transactions committed */
    uint64_t *forget;                    /* decisions to drop with the next commit */
    size_t forget_n;                     /* (queue_commit_forget), QUEUE_FORGET_MAX */
    /* Event sinks' acknowledgements written by the next commit (issue 16,
     * vl_queue_events_ack_lazy); guarded by mu. */
    struct { char sink[32]; uint64_t acked; } evack[4];
    unsigned evack_n;
    uint64_t evack_delete_upto;
    uint64_t evack_gen, evack_done_gen;  /* pending while they differ */
    struct queue_lease_set leases;       /* owning thread only (queue_lease.c) */
    uint64_t lease_next_due;             /* owning thread: vl_queue_lease_next_due() */
    void (*notify_fn)(void *arg);        /* guarded by mu: vl_queue_shard_notify_set() */
    void *notify_arg;
    char path[QUEUE_PATH_BYTES_MAX];
};

#define QUEUE_ENQ_LOCK_FILE  "enqueue.lock"   /* shared: multi-shard enqueues in flight */

struct vl_queue {
    unsigned nshards;
    unsigned flags;                      /* VL_QUEUE_* given to vl_queue_open() */
    int lock_fd;                         /* DATA/lock, held (flock) or -1 */
    pthread_mutex_t enq_mu;              /* guards enq_fd, enq_users */
    int enq_fd;                          /* DATA/enqueue.lock, or -1 until needed */
    unsigned enq_users;                  /* enqueues holding its shared lock */
    pthread_mutex_t id_mu;
    uint64_t last_msg_id;
    uint64_t id_salt;
    char dir[QUEUE_DIR_BYTES_MAX + 1];
    struct vl_queue_shard *shards[];
};

/** Map an LMDB return code (0, MDB_*, positive errno) to 0 / -errno / VL_E_*. */
int queue_mdb_err(int rc);

/** A failed write commit's code: as queue_mdb_err(), but EIO (LMDB's short
 *  write) is VL_E_QUEUE_FULL when the disk or a file-size limit is full. */
int queue_commit_err(struct vl_queue_shard *s, int rc);

/* LMDB writes with a fault-injection point each; raw LMDB return codes. */
int queue_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags);
int queue_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v);
int queue_mdb_drop(MDB_txn *txn, MDB_dbi dbi);

/** Test hook: the @p nth LMDB write (put/del/drop/commit) from now, in any
 *  thread of this process, fails with @p mdb_rc (an MDB_* code or a positive
 *  errno) without touching LMDB (a failed commit aborts the transaction, as
 *  LMDB's does); then the hook stops failing. @p nth 0: only count writes. */
void queue_fault_arm(unsigned nth, int mdb_rc);
/** Disarm; *@p writes (if not NULL) = writes seen since the arm.
 *  @return true if the armed fault fired. */
bool queue_fault_disarm(unsigned *writes);

/** Begin a transaction (write if @p write) holding maplock for reading;
 *  MDB_MAP_RESIZED (another process grew the map) is handled here.
 *  @return 0 or an error (nothing held). */
int queue_txn_begin(struct vl_queue_shard *s, bool write, MDB_txn **txn);
/** Abort @p txn and drop maplock. */
void queue_txn_abort(struct vl_queue_shard *s, MDB_txn *txn);
/** Commit @p txn (ended either way: LMDB frees a failed commit) and drop
 *  maplock. @return the raw LMDB code (0, MDB_MAP_FULL, errno...). */
int queue_txn_commit(struct vl_queue_shard *s, MDB_txn *txn);

/** Double the map. No transaction of this process may be open (none is: the
 *  maplock write lock waits for them). @return 0, VL_E_QUEUE_FULL at
 *  QUEUE_MAP_BYTES_MAX, or an error. */
int queue_map_grow(struct vl_queue_shard *s);

/** Create directory @p path (mode 0755) if missing; when created, fsync it
 *  and its parent so that the new entry survives a crash.
 *  @return 1 created, 0 existed, -errno. */
int queue_dir_create(const char *path);
/** fsync the directory @p path (its entries: new files, links). @return 0, -errno. */
int queue_dir_sync(const char *path);

/** Allocate shard @p k of @p q and open (creating when missing) its
 *  environment DATA/shard-K; checks or writes its shard and stats records.
 *  @return 0, VL_E_SHARDS, VL_E_CORRUPT, VL_E_VERSION, -errno. */
int queue_shard_create(struct vl_queue *q, unsigned k, struct vl_queue_shard **out);
/** Close the environment and free @p s (NULL: no-op). No transaction or
 *  request may be pending; leases are forgotten. */
void queue_shard_destroy(struct vl_queue_shard *s);

#endif
