/*
 * queue.c - open/close the sharded queue, map growth, and the per-shard
 * group-commit batcher (leader/follower).
 *
 * Batcher: a writer appends its request to the shard's pending list. If no
 * leader is active it becomes the leader: it takes the whole list, runs every
 * request in ONE write transaction, commits (one fsync), marks them done and
 * wakes the followers; requests that arrived meanwhile are taken by the next
 * leader. On MDB_MAP_FULL the transaction is aborted, the map doubled (no
 * transaction open: maplock held for writing) and the group rerun. If a
 * request fails otherwise, the group is rerun one request per transaction so
 * that each caller gets its own result and no request fails for another's.
 * Invariant: a request's rc is set only after its transaction ended.
 * Diagnostics: never logs; returns codes.
 */
#include "queue_internal.h"

#include "volley/addr.h"
#include "volley/error.h"
#include "volley/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

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

void queue_lower(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
}

/* ---- map size ---------------------------------------------------------- */

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

/* Begin a transaction holding maplock for reading; MDB_MAP_RESIZED (another
 * process grew the map) is handled here. */
static int queue_txn_begin(struct vl_queue_shard *s, unsigned flags, MDB_txn **txn)
{
    for (unsigned tries = 0; tries < 8; tries++) {
        pthread_rwlock_rdlock(&s->maplock);
        int rc = mdb_txn_begin(s->env, NULL, flags, txn);
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

int queue_read_begin(struct vl_queue_shard *s, MDB_txn **txn)
{
    return queue_txn_begin(s, MDB_RDONLY, txn);
}

void queue_read_end(struct vl_queue_shard *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->maplock);
}

/* ---- batcher ----------------------------------------------------------- */

/* A commit failed with EIO: LMDB reports a short write (disk full, file-size
 * limit) as EIO. Call it VL_E_QUEUE_FULL when space is what is missing. */
static int queue_commit_err(struct vl_queue_shard *s, int rc)
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

/* Run requests [list] in one transaction. Returns 0 when committed (each rc
 * set), MDB_MAP_FULL to retry after growing, or a negative error (no rc set). */
static int queue_group_run(struct vl_queue_shard *s, struct queue_req *list, size_t limit)
{
    MDB_txn *txn;
    struct queue_stats_rec st;
    MDB_val k = { sizeof QUEUE_KEY_STATS - 1, (void *)QUEUE_KEY_STATS }, v;
    int rc = queue_txn_begin(s, 0, &txn);
    if (rc < 0)
        return rc;
    rc = mdb_get(txn, s->db_meta, &k, &v);
    if (rc == 0)
        rc = queue_stats_rec_decode(v.mv_data, v.mv_size, &st);
    else
        rc = queue_mdb_err(rc);
    size_t i = 0;
    for (struct queue_req *r = list; rc >= 0 && r && i < limit; r = r->next, i++) {
        rc = r->fn(s, txn, &st, r->arg);
        r->rc = rc;
    }
    uint8_t buf[QUEUE_STATS_REC_BYTES];
    if (rc >= 0) {
        v = (MDB_val){ queue_stats_rec_encode(buf, &st), buf };
        rc = mdb_put(txn, s->db_meta, &k, &v, 0);
        rc = rc ? rc : mdb_txn_commit(txn);
        txn = NULL;
        if (rc && rc != MDB_MAP_FULL)
            rc = queue_commit_err(s, rc);
    } else if (rc == VL_E_QUEUE_FULL) {
        rc = MDB_MAP_FULL;       /* fn saw MDB_MAP_FULL: grow and rerun */
    }
    if (txn)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->maplock);
    return rc;
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
            rc = queue_map_resize(s, true);
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
    req->next = NULL;
    pthread_mutex_lock(&s->mu);
    *s->pending_tail = req;
    s->pending_tail = &req->next;
    pthread_mutex_unlock(&s->mu);
}

int queue_submit_wait(struct vl_queue_shard *s, struct queue_req *req)
{
    pthread_mutex_lock(&s->mu);
    while (!req->done) {
        if (s->leader) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        struct queue_req *list = s->pending;
        vl_assert(list != NULL);               /* ours at least, until done */
        s->pending = NULL;
        s->pending_tail = &s->pending;
        s->leader = true;
        pthread_mutex_unlock(&s->mu);
        queue_group_commit(s, list);
        pthread_mutex_lock(&s->mu);
        for (struct queue_req *r = list, *nx; r; r = nx) {
            nx = r->next;
            r->done = true;
            s->requests++;
        }
        s->commits++;
        s->leader = false;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return req->rc;
}

int queue_submit(struct vl_queue_shard *s, struct queue_req *req)
{
    queue_submit_start(s, req);
    return queue_submit_wait(s, req);
}

/* ---- meta file --------------------------------------------------------- */

int vl_queue_shards_recorded(const char *dir)
{
    char path[4200], buf[128];
    snprintf(path, sizeof path, "%s/%s", dir, QUEUE_META_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? VL_E_NOTFOUND : -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return VL_E_CORRUPT;
    buf[n] = 0;
    unsigned version = 0, nshards = 0;
    if (sscanf(buf, QUEUE_META_MAGIC " %u shards %u", &version, &nshards) != 2)
        return VL_E_CORRUPT;
    if (version != QUEUE_FORMAT_VERSION)
        return VL_E_VERSION;
    if (nshards == 0 || nshards > VL_SHARDS_MAX)
        return VL_E_CORRUPT;
    return (int)nshards;
}

/* Create DATA/queue.meta atomically (temp file + link): a concurrent creator
 * either wins or finds ours. @return the recorded count. */
static int queue_meta_create(const char *dir, unsigned nshards)
{
    char tmp[4200], path[4200], buf[128];
    snprintf(path, sizeof path, "%s/%s", dir, QUEUE_META_FILE);
    snprintf(tmp, sizeof tmp, "%s/.%s.%d", dir, QUEUE_META_FILE, (int)getpid());
    int n = snprintf(buf, sizeof buf, "%s %u shards %u\n", QUEUE_META_MAGIC,
                     QUEUE_FORMAT_VERSION, nshards);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (write(fd, buf, (size_t)n) != n || fsync(fd) != 0)
        rc = errno == ENOSPC ? VL_E_QUEUE_FULL : -errno;
    close(fd);
    if (rc == 0 && link(tmp, path) != 0 && errno != EEXIST)
        rc = -errno;
    unlink(tmp);
    if (rc < 0)
        return rc;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return vl_queue_shards_recorded(dir);
}

/* ---- open / close ------------------------------------------------------ */

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
    };
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
        if ((rc = mdb_put(txn, s->db_meta, &k, &v, 0)) != 0)
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
    return queue_mdb_err(mdb_put(txn, s->db_meta, &k, &v, 0));
}

static int queue_shard_open(struct vl_queue *q, unsigned k, struct vl_queue_shard **out)
{
    struct vl_queue_shard *s = calloc(1, sizeof *s);
    MDB_txn *txn = NULL;
    int rc;
    if (!s)
        return -ENOMEM;
    s->q = q;
    s->index = k;
    s->pending_tail = &s->pending;
    pthread_rwlock_init(&s->maplock, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    snprintf(s->path, sizeof s->path, "%s/shard-%u", q->dir, k);
    if (mkdir(s->path, 0755) != 0 && errno != EEXIST) {
        rc = -errno;
        goto fail;
    }
    if ((rc = queue_mdb_err(mdb_env_create(&s->env))) < 0)
        goto fail;
    mdb_env_set_maxdbs(s->env, QUEUE_DBS_MAX);
    mdb_env_set_maxreaders(s->env, QUEUE_MAXREADERS);
    mdb_env_set_mapsize(s->env, QUEUE_MAP_BYTES_INITIAL);
    /* Full durability: no MDB_NOSYNC / MDB_NOMETASYNC / MDB_WRITEMAP (SIGBUS on ENOSPC). */
    if ((rc = queue_mdb_err(mdb_env_open(s->env, s->path, MDB_NOTLS | MDB_NORDAHEAD, 0644))) < 0)
        goto fail;
    if ((rc = queue_txn_begin(s, 0, &txn)) < 0)
        goto fail;
    rc = queue_dbs_open(s, txn);
    if (rc == 0)
        rc = queue_shard_meta(s, txn, q->nshards);
    if (rc == 0)
        rc = queue_mdb_err(mdb_txn_commit(txn));
    else
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->maplock);
    if (rc < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    if (s->env)
        mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->maplock);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return rc;
}

static int queue_nshards_resolve(const char *dir, unsigned nshards, unsigned flags)
{
    int rec = vl_queue_shards_recorded(dir);
    if (rec == VL_E_NOTFOUND) {
        if (!(flags & VL_QUEUE_CREATE))
            return VL_E_NOTFOUND;
        if (nshards == 0 || nshards > VL_SHARDS_MAX)
            return VL_E_INVALID;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -errno;
        rec = queue_meta_create(dir, nshards);
    }
    if (rec < 0)
        return rec;
    if (nshards != 0 && (unsigned)rec != nshards)
        return VL_E_SHARDS;
    return rec;
}

int vl_queue_open(const char *dir, unsigned nshards, unsigned flags, struct vl_queue **out)
{
    *out = NULL;
    if (!dir || strlen(dir) > 4000)
        return VL_E_INVALID;
    int n = queue_nshards_resolve(dir, nshards, flags);
    if (n < 0)
        return n;
    struct vl_queue *q = calloc(1, sizeof *q + (size_t)n * sizeof q->shards[0]);
    if (!q)
        return -ENOMEM;
    q->nshards = (unsigned)n;
    snprintf(q->dir, sizeof q->dir, "%s", dir);
    pthread_mutex_init(&q->id_mu, NULL);
    if (getrandom(&q->id_salt, sizeof q->id_salt, 0) != (ssize_t)sizeof q->id_salt)
        q->id_salt = (uint64_t)getpid() * 2654435761u;
    q->id_salt &= (1u << 20) - 1;
    for (unsigned k = 0; k < q->nshards; k++) {
        int rc = queue_shard_open(q, k, &q->shards[k]);
        if (rc < 0) {
            vl_queue_close(q);
            return rc;
        }
    }
    *out = q;
    return 0;
}

void vl_queue_close(struct vl_queue *q)
{
    if (!q)
        return;
    for (unsigned k = 0; k < q->nshards; k++) {
        struct vl_queue_shard *s = q->shards[k];
        if (!s)
            continue;
        vl_assert(s->pending == NULL && !s->leader);
        mdb_env_close(s->env);
        queue_lease_fini(&s->leases);
        pthread_rwlock_destroy(&s->maplock);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
    }
    pthread_mutex_destroy(&q->id_mu);
    free(q);
}

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

const char *vl_rcpt_state_name(enum vl_rcpt_state st)
{
    switch (st) {
    case VL_RCPT_READY:     return "ready";
    case VL_RCPT_DEFERRED:  return "deferred";
    case VL_RCPT_DELIVERED: return "delivered";
    case VL_RCPT_BOUNCED:   return "bounced";
    case VL_RCPT_EXPIRED:   return "expired";
    }
    return "?";
}
