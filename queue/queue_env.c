/*
 * queue_env.c - LMDB environments of the shards: error mapping, transactions
 * under the maplock, map growth, fault-injection points, directory creation
 * with fsync, shard open/close and the handle accessors.
 *
 * Invariant: a transaction begun by queue_txn_begin() is ended exactly once,
 * by queue_txn_commit() or queue_txn_abort(), which also drop the maplock.
 * A dropped write transaction would keep LMDB's writer lock: every later
 * write on the shard would block forever, and the map could never grow.
 * Diagnostics: never logs; returns codes.
 */
#include "queue_env.h"

#include "queue_codec.h"
#include "volley/addr.h"
#include "volley/error.h"
#include "volley/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define QUEUE_TXN_BEGIN_TRIES_MAX 8u     /* MDB_MAP_RESIZED: adopt the size, retry */

int queue_mdb_err(int rc)
{
    switch (rc) {
    case 0:                     return 0;
    case MDB_NOTFOUND:          return VL_E_NOTFOUND;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:     return VL_E_CORRUPT;
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID:           return VL_E_VERSION;
    case MDB_MAP_FULL:          return VL_E_QUEUE_FULL;
    case ENOSPC: case EFBIG: case EDQUOT: return VL_E_QUEUE_FULL;
    default: break;
    }
    if (rc > 0)
        return -rc;
    return VL_E_STORAGE;
}

/* LMDB reports a short write (disk full, file-size limit) as EIO. Call it
 * VL_E_QUEUE_FULL when space is what is missing. */
int queue_commit_err(struct vl_queue_shard *s, int rc)
{
    struct statvfs vfs;
    struct rlimit rl;
    if (rc != EIO)
        return queue_mdb_err(rc);
    if (statvfs(s->path, &vfs) == 0
        && (uint64_t)vfs.f_bavail * vfs.f_frsize < QUEUE_DISK_LOW_BYTES)
        return VL_E_QUEUE_FULL;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        return VL_E_QUEUE_FULL;
    return -EIO;
}

/* ---- fault injection --------------------------------------------------- */

static atomic_uint queue_fault_countdown;   /* 0: disarmed; 1: the next write fails */
static atomic_int queue_fault_rc;
static atomic_bool queue_fault_fired;
static atomic_bool queue_fault_counting;
static atomic_uint queue_fault_writes;      /* since the last queue_fault_arm() */

void queue_fault_arm(unsigned nth, int mdb_rc)
{
    vl_assert(nth == 0 || mdb_rc != 0);
    atomic_store(&queue_fault_rc, mdb_rc);
    atomic_store(&queue_fault_fired, false);
    atomic_store(&queue_fault_writes, 0);
    atomic_store(&queue_fault_counting, true);
    atomic_store(&queue_fault_countdown, nth);
}

bool queue_fault_disarm(unsigned *writes)
{
    atomic_store(&queue_fault_countdown, 0);
    atomic_store(&queue_fault_counting, false);
    if (writes)
        *writes = atomic_load(&queue_fault_writes);
    return atomic_load(&queue_fault_fired);
}

/* @return 0, or the armed code when this write is the n-th. */
static int queue_fault(void)
{
    if (atomic_load_explicit(&queue_fault_counting, memory_order_relaxed))
        atomic_fetch_add(&queue_fault_writes, 1);
    unsigned n = atomic_load_explicit(&queue_fault_countdown, memory_order_relaxed);
    while (n != 0 && !atomic_compare_exchange_weak(&queue_fault_countdown, &n, n - 1))
        ;
    if (n != 1)
        return 0;
    atomic_store(&queue_fault_fired, true);
    return atomic_load(&queue_fault_rc);
}

int queue_mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags)
{
    int rc = queue_fault();
    return rc ? rc : mdb_put(txn, dbi, k, v, flags);
}

int queue_mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v)
{
    int rc = queue_fault();
    return rc ? rc : mdb_del(txn, dbi, k, v);
}

int queue_mdb_drop(MDB_txn *txn, MDB_dbi dbi)
{
    int rc = queue_fault();
    return rc ? rc : mdb_drop(txn, dbi, 0);
}

/* ---- transactions and the map ------------------------------------------ */

/* Double the map (grow) or adopt another process's size (grow = false).
 * Holds maplock for writing: no transaction of this process is open. */
static int queue_map_resize(struct vl_queue_shard *s, bool grow)
{
    MDB_envinfo info;
    int rc = 0;
    pthread_rwlock_wrlock(&s->maplock);
    if (!grow) {
        rc = queue_mdb_err(mdb_env_set_mapsize(s->env, 0));
    } else {
        mdb_env_info(s->env, &info);
        if (info.me_mapsize >= QUEUE_MAP_BYTES_MAX)
            rc = VL_E_QUEUE_FULL;
        else
            rc = queue_mdb_err(mdb_env_set_mapsize(s->env, info.me_mapsize * 2));
    }
    pthread_rwlock_unlock(&s->maplock);
    return rc;
}

int queue_map_grow(struct vl_queue_shard *s)
{
    return queue_map_resize(s, true);
}

int queue_txn_begin(struct vl_queue_shard *s, bool write, MDB_txn **txn)
{
    for (unsigned tries = 0; tries < QUEUE_TXN_BEGIN_TRIES_MAX; tries++) {
        pthread_rwlock_rdlock(&s->maplock);
        int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, txn);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&s->maplock);
        if (rc != MDB_MAP_RESIZED)
            return queue_mdb_err(rc);
        rc = queue_map_resize(s, false);
        if (rc < 0)
            return rc;
    }
    return VL_E_STORAGE;
}

void queue_txn_abort(struct vl_queue_shard *s, MDB_txn *txn)
{
    vl_assert(txn != NULL);
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->maplock);
}

int queue_txn_commit(struct vl_queue_shard *s, MDB_txn *txn)
{
    vl_assert(txn != NULL);
    int rc = queue_fault();
    if (rc)
        mdb_txn_abort(txn);              /* as a failed mdb_txn_commit() does */
    else
        rc = mdb_txn_commit(txn);
    pthread_rwlock_unlock(&s->maplock);
    return rc;
}

/* ---- directories ------------------------------------------------------- */

int queue_dir_sync(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int queue_dir_create(const char *path)
{
    char parent[QUEUE_PATH_BYTES_MAX];
    if (mkdir(path, 0755) != 0)
        return errno == EEXIST ? 0 : -errno;
    int rc = queue_dir_sync(path);
    size_t n = strnlen(path, sizeof parent - 1);
    memcpy(parent, path, n);
    parent[n] = 0;
    while (n > 1 && parent[n - 1] == '/')        /* "a/b/" -> "a/b" */
        parent[--n] = 0;
    char *slash = strrchr(parent, '/');
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else
        slash[slash == parent] = 0;              /* "/x" -> "/", "a/b" -> "a" */
    if (rc == 0)
        rc = queue_dir_sync(parent);
    return rc < 0 ? rc : 1;
}

/* ---- shards ------------------------------------------------------------ */

static int queue_dbs_open(struct vl_queue_shard *s, MDB_txn *txn)
{
    const unsigned dupf = MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED;
    struct { const char *name; unsigned flags; MDB_dbi *dbi; } dbs[] = {
        { QUEUE_DB_META,  MDB_CREATE, &s->db_meta },
        { QUEUE_DB_MSG,   MDB_CREATE, &s->db_msg },
        { QUEUE_DB_BODY,  MDB_CREATE, &s->db_body },
        { QUEUE_DB_RCPT,  MDB_CREATE, &s->db_rcpt },
        { QUEUE_DB_SCHED, dupf,       &s->db_sched },
        { QUEUE_DB_DOM,   dupf,       &s->db_dom },
        { QUEUE_DB_PEND,  MDB_CREATE, &s->db_pend },
        { QUEUE_DB_QUAR,  MDB_CREATE, &s->db_quar },
        { QUEUE_DB_EVT,   MDB_CREATE, &s->db_evt },
    };
    _Static_assert(sizeof dbs / sizeof dbs[0] <= QUEUE_DBS_MAX, "maxdbs covers every db");
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        int rc = mdb_dbi_open(txn, dbs[i].name, dbs[i].flags, dbs[i].dbi);
        if (rc)
            return queue_mdb_err(rc);
    }
    return 0;
}

/* Check (or write, when new) the shard record and the stats record. */
static int queue_shard_meta(struct vl_queue_shard *s, MDB_txn *txn, unsigned nshards)
{
    MDB_val k = { sizeof QUEUE_KEY_SHARD - 1, (void *)QUEUE_KEY_SHARD }, v;
    struct queue_shard_rec sr = { .shard = s->index, .nshards = nshards }, got;
    uint8_t buf[QUEUE_STATS_REC_BYTES];
    int rc = mdb_get(txn, s->db_meta, &k, &v);
    if (rc == 0) {
        rc = queue_shard_rec_decode(v.mv_data, v.mv_size, &got);
        if (rc < 0)
            return rc;
        if (got.nshards != nshards || got.shard != s->index)
            return VL_E_SHARDS;
    } else if (rc == MDB_NOTFOUND) {
        v = (MDB_val){ queue_shard_rec_encode(buf, &sr), buf };
        if ((rc = queue_mdb_put(txn, s->db_meta, &k, &v, 0)) != 0)
            return queue_mdb_err(rc);
    } else {
        return queue_mdb_err(rc);
    }
    k = (MDB_val){ sizeof QUEUE_KEY_STATS - 1, (void *)QUEUE_KEY_STATS };
    rc = mdb_get(txn, s->db_meta, &k, &v);
    if (rc == 0) {
        struct queue_stats_rec st;
        return queue_stats_rec_decode(v.mv_data, v.mv_size, &st);
    }
    if (rc != MDB_NOTFOUND)
        return queue_mdb_err(rc);
    struct queue_stats_rec st = { .next_rcpt = 1 };
    v = (MDB_val){ queue_stats_rec_encode(buf, &st), buf };
    return queue_mdb_err(queue_mdb_put(txn, s->db_meta, &k, &v, 0));
}

/* Open the environment of @p s, its databases and records. A new shard
 * directory and LMDB's new files in it are made durable (directory fsync). */
static int queue_shard_env_open(struct vl_queue_shard *s)
{
    MDB_txn *txn;
    int created = queue_dir_create(s->path);
    if (created < 0)
        return created;
    int rc = queue_mdb_err(mdb_env_create(&s->env));
    if (rc < 0)
        return rc;
    mdb_env_set_maxdbs(s->env, QUEUE_DBS_MAX);
    mdb_env_set_maxreaders(s->env, QUEUE_MAXREADERS);
    mdb_env_set_mapsize(s->env, QUEUE_MAP_BYTES_INITIAL);
    /* Full durability: no MDB_NOSYNC / MDB_NOMETASYNC / MDB_WRITEMAP (SIGBUS on ENOSPC). */
    rc = queue_mdb_err(mdb_env_open(s->env, s->path, MDB_NOTLS | MDB_NORDAHEAD, 0644));
    if (rc < 0)
        return rc;
    if ((rc = queue_txn_begin(s, true, &txn)) < 0)
        return rc;
    rc = queue_dbs_open(s, txn);
    if (rc == 0)
        rc = queue_shard_meta(s, txn, s->q->nshards);
    if (rc == 0)
        rc = queue_mdb_err(queue_txn_commit(s, txn));
    else
        queue_txn_abort(s, txn);
    if (rc == 0 && created)
        rc = queue_dir_sync(s->path);    /* data.mdb and lock.mdb entries */
    return rc;
}

int queue_shard_create(struct vl_queue *q, unsigned k, struct vl_queue_shard **out)
{
    struct vl_queue_shard *s = calloc(1, sizeof *s);
    uint64_t *forget = malloc(QUEUE_FORGET_MAX * sizeof *forget);
    if (!s || !forget) {
        free(s);
        free(forget);
        return -ENOMEM;
    }
    s->forget = forget;
    s->q = q;
    s->index = k;
    s->pending_tail = &s->pending;
    pthread_rwlock_init(&s->maplock, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    snprintf(s->path, sizeof s->path, "%s/shard-%u", q->dir, k);
    int rc = queue_shard_env_open(s);
    if (rc < 0) {
        queue_shard_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

void queue_shard_destroy(struct vl_queue_shard *s)
{
    if (!s)
        return;
    vl_assert(s->pending == NULL && !s->leader);
    free(s->forget);
    if (s->env)
        mdb_env_close(s->env);
    queue_lease_fini(&s->leases);
    pthread_rwlock_destroy(&s->maplock);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ---- handle accessors -------------------------------------------------- */

unsigned vl_queue_nshards(const struct vl_queue *q)
{
    return q->nshards;
}

struct vl_queue_shard *vl_queue_shard(struct vl_queue *q, unsigned k)
{
    vl_assert(k < q->nshards);
    return q->shards[k];
}

unsigned vl_queue_shard_of(const struct vl_queue *q, const char *domain, size_t len)
{
    return (unsigned)(vl_domain_hash(domain, len) % q->nshards);
}
