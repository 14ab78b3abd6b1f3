/* queue_fx.h - the queue unit tests' shared fixture (header only: each test
 * is an executable of one file). fx_setup opens a fresh queue of
 * QUEUE_FX_SHARDS shards (define it before including; default 4) on real
 * LMDB files in a mkdtemp dir; fx_teardown fails the test unless every
 * invariant holds (vl_queue_check, the first problem printed), then closes
 * the queue and removes the dir. Include after <cmocka.h>. */
#ifndef VOLLEY_TEST_QUEUE_FX_H
#define VOLLEY_TEST_QUEUE_FX_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volley/error.h"
#include "volley/queue.h"

#ifndef QUEUE_FX_SHARDS
#define QUEUE_FX_SHARDS 4u
#endif
#define T0 1700000000000ull            /* the tests' "now" (ms) */

struct fx { char dir[64]; struct vl_queue *q; };

static inline int fx_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/** Remove the tree at @p dir (the fixture's, or a test's own mkdtemp dir). */
static inline void fx_rmtree(const char *dir)
{
    nftw(dir, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/vlq-test-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    strcat(f->dir, "/q");
    if (vl_queue_open(f->dir, QUEUE_FX_SHARDS, VL_QUEUE_CREATE, &f->q) != 0)
        return -1;
    *state = f;
    return 0;
}

/* Every test ends with every invariant checked (queue_check.c). */
static inline int fx_teardown(void **state)
{
    struct fx *f = *state;
    struct vl_queue_check chk;
    int rc = vl_queue_check(f->q, &chk);
    if (rc != 0 || chk.problems != 0)
        fprintf(stderr, "queue check: rc %d, %llu problems, first: %s\n", rc,
                (unsigned long long)chk.problems, chk.first);
    vl_queue_close(f->q);
    f->dir[strlen(f->dir) - 2] = 0;                  /* the mkdtemp dir, "/q" cut */
    fx_rmtree(f->dir);
    free(f);
    return (rc != 0 || chk.problems != 0) ? -1 : 0;
}

/** The stats summed over every shard. */
static inline struct vl_queue_stats fx_stats(struct vl_queue *q)
{
    struct vl_queue_stats s;
    assert_int_equal(vl_queue_stats(q, -1, &s), 0);
    return s;
}

/** Enqueue @p body from sender@x.org to @p rcpts at @p now; fails the test on
 *  an error. @return the message id. */
static inline uint64_t fx_enq(struct vl_queue *q, const char *body, const char *const *rcpts,
                              size_t n, uint64_t now)
{
    struct vl_queue_new_msg m = { "sender@x.org", 12, body, strlen(body), 0, rcpts, NULL, n };
    uint64_t id = 0;
    int rc = vl_queue_enqueue(q, &m, now, &id);
    if (rc != 0)
        fail_msg("enqueue: %s", vl_strerror(rc));
    return id;
}

#endif
