/*
 * queue.c - open and close the sharded queue: the top of queue/. Resolves the
 * shard count from DATA/queue.meta (creating it and DATA when asked), opens
 * every shard (queue_env.c) and closes them. Holds DATA/lock for an engine
 * or an operator's change (see queue.h: one leasing process per directory).
 *
 * Durability of creation: DATA, DATA/queue.meta and each DATA/shard-K with
 * LMDB's files in it are fsynced (the directories too) before open returns.
 * Diagnostics: never logs; returns codes.
 */
#include "queue_commit.h"
#include "queue_env.h"
#include "queue_recover.h"

#include "queue_schema.h"
#include "volley/error.h"
#include "volley/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#define QUEUE_META_FILE_BYTES_MAX 128u
#define QUEUE_LOCK_FILE           "lock"
#define QUEUE_LOCK_FILE_BYTES_MAX 64u   /* "PID ROLE\n" */

int vl_queue_shards_recorded(const char *dir)
{
    char path[QUEUE_PATH_BYTES_MAX], buf[QUEUE_META_FILE_BYTES_MAX];
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

/* unlink/rmdir @p path; ENOENT is not an error. Keeps the first error in *first. */
static void queue_remove_one(const char *path, bool is_dir, int *first)
{
    int rc = is_dir ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT && *first == 0)
        *first = -errno;
}

int vl_queue_remove(const char *dir)
{
    int n = vl_queue_shards_recorded(dir);
    if (n < 0)
        return n;
    static const char *const shard_files[] = { "data.mdb", "lock.mdb" };
    static const char *const top_files[] = { QUEUE_LOCK_FILE, QUEUE_ENQ_LOCK_FILE,
                                             QUEUE_META_FILE };   /* meta last: "a queue" */
    char path[QUEUE_PATH_BYTES_MAX];
    int first = 0;
    for (int k = 0; k < n; k++) {
        for (size_t i = 0; i < sizeof shard_files / sizeof shard_files[0]; i++) {
            snprintf(path, sizeof path, "%s/shard-%d/%s", dir, k, shard_files[i]);
            queue_remove_one(path, false, &first);
        }
        snprintf(path, sizeof path, "%s/shard-%d", dir, k);
        queue_remove_one(path, true, &first);
    }
    for (size_t i = 0; i < sizeof top_files / sizeof top_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, top_files[i]);
        queue_remove_one(path, false, &first);
    }
    return first;
}

/* Create DATA/queue.meta atomically (temp file + link): a concurrent creator
 * either wins or finds ours. @return the recorded count. */
static int queue_meta_create(const char *dir, unsigned nshards)
{
    char tmp[QUEUE_PATH_BYTES_MAX], path[QUEUE_PATH_BYTES_MAX], buf[QUEUE_META_FILE_BYTES_MAX];
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
    if (rc == 0)
        rc = queue_dir_sync(dir);
    if (rc < 0)
        return rc;
    return vl_queue_shards_recorded(dir);
}

static int queue_nshards_resolve(const char *dir, unsigned nshards, unsigned flags)
{
    int rec = vl_queue_shards_recorded(dir);
    if (rec == VL_E_NOTFOUND) {
        if (!(flags & VL_QUEUE_CREATE))
            return VL_E_NOTFOUND;
        if (nshards == 0 || nshards > VL_SHARDS_MAX)
            return VL_E_INVALID;
        int rc = queue_dir_create(dir);
        if (rc < 0)
            return rc;
        rec = queue_meta_create(dir, nshards);
    }
    if (rec < 0)
        return rec;
    if (nshards != 0 && (unsigned)rec != nshards)
        return VL_E_SHARDS;
    return rec;
}

/* Take DATA/lock (exclusive flock, never waiting) for @p role and record
 * "PID ROLE" in it. The lock lives with q->lock_fd: closing it (or dying)
 * releases it. */
static int queue_lock_take(struct vl_queue *q, const char *role)
{
    char path[QUEUE_PATH_BYTES_MAX], buf[QUEUE_LOCK_FILE_BYTES_MAX];
    snprintf(path, sizeof path, "%s/%s", q->dir, QUEUE_LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int rc = errno == EWOULDBLOCK ? VL_E_LOCKED : -errno;
        close(fd);
        return rc;
    }
    /* The flock is the lock; "PID ROLE" only names the holder. On a full disk
     * the name cannot be written: the engine must still start (to deliver and
     * free space), and a second taker then hears "pid unknown". */
    int n = snprintf(buf, sizeof buf, "%d %s\n", (int)getpid(), role);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        int rc = -errno;
        if (rc != -ENOSPC && rc != -EDQUOT) {
            close(fd);
            return rc;
        }
        if (ftruncate(fd, 0) != 0) { /* best effort: an empty file names nobody */ }
    }
    vl_assert(q->lock_fd < 0);
    q->lock_fd = fd;
    return 0;
}

int vl_queue_lock_holder(const char *dir, char *role, size_t role_cap)
{
    char path[QUEUE_PATH_BYTES_MAX], buf[QUEUE_LOCK_FILE_BYTES_MAX], r[16] = "";
    vl_assert(role_cap >= 8);
    role[0] = 0;
    snprintf(path, sizeof path, "%s/%s", dir, QUEUE_LOCK_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? VL_E_NOTFOUND : -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    int pid = 0;
    if (sscanf(buf, "%d %15s", &pid, r) != 2 || pid <= 0)
        return 0;
    snprintf(role, role_cap, "%s", r);
    return pid;
}

int vl_queue_open(const char *dir, unsigned nshards, unsigned flags, struct vl_queue **out)
{
    *out = NULL;
    if (!dir || strlen(dir) > QUEUE_DIR_BYTES_MAX)
        return VL_E_INVALID;
    int n = queue_nshards_resolve(dir, nshards, flags);
    if (n < 0)
        return n;
    struct vl_queue *q = calloc(1, sizeof *q + (size_t)n * sizeof q->shards[0]);
    if (!q)
        return -ENOMEM;
    q->nshards = (unsigned)n;
    q->flags = flags;
    q->lock_fd = -1;
    q->enq_fd = -1;
    pthread_mutex_init(&q->enq_mu, NULL);
    snprintf(q->dir, sizeof q->dir, "%s", dir);
    pthread_mutex_init(&q->id_mu, NULL);
    if (getrandom(&q->id_salt, sizeof q->id_salt, 0) != (ssize_t)sizeof q->id_salt)
        q->id_salt = (uint64_t)getpid() * 2654435761u;
    q->id_salt &= (1u << 20) - 1;
    if (flags & (VL_QUEUE_ENGINE | VL_QUEUE_ADMIN)) {
        int rc = queue_lock_take(q, (flags & VL_QUEUE_ENGINE) ? "engine" : "admin");
        if (rc < 0) {
            vl_queue_close(q);
            return rc;
        }
    }
    for (unsigned k = 0; k < q->nshards; k++) {
        int rc = queue_shard_create(q, k, &q->shards[k]);
        if (rc < 0) {
            vl_queue_close(q);
            return rc;
        }
    }
    /* Writers resolve what a crash left half-enqueued (never visible). */
    if (flags & (VL_QUEUE_CREATE | VL_QUEUE_ENGINE | VL_QUEUE_ADMIN)) {
        int rc = queue_recover(q);
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
    for (unsigned k = 0; k < q->nshards; k++)
        if (q->shards[k])
            queue_commit_flush(q->shards[k]);  /* decisions no longer needed */
    for (unsigned k = 0; k < q->nshards; k++)
        queue_shard_destroy(q->shards[k]);
    if (q->lock_fd >= 0)
        close(q->lock_fd);
    if (q->enq_fd >= 0)
        close(q->enq_fd);
    pthread_mutex_destroy(&q->enq_mu);
    pthread_mutex_destroy(&q->id_mu);
    free(q);
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
