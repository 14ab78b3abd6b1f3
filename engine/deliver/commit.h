/*
 * commit.h - a shard's committer: a thread that makes the shard's outcomes
 * (and the DSNs they imply) durable in one queue transaction while the
 * reactor keeps running; back on the shard thread, the committed outcomes
 * are logged (one delivery-log line each), counted, and their leases
 * released. Outcomes are logged only after they are durable.
 *
 * Thread: commit_* on the shard thread; the committer thread only runs
 * vl_queue_complete_async() on a slot handed over under the mutex, and wakes
 * the reactor (rx_wake) when done.
 */
#ifndef VOLLEY_DELIVER_COMMIT_H
#define VOLLEY_DELIVER_COMMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "counters.h"
#include "ledger.h"
#include "log.h"
#include "rx.h"
#include "volley/config.h"
#include "volley/limits.h"
#include "volley/queue.h"

/* The DSNs of one commit: one per message and kind (failed, delayed). */
struct commit_dsns {
    struct vl_queue_new_msg m[VL_DSNS_PER_COMMIT_MAX];
    char *bodies[VL_DSNS_PER_COMMIT_MAX];
    const char *rcpt[VL_DSNS_PER_COMMIT_MAX];
    size_t count;
};

/* A commit handed to the committer thread. */
struct commit_slot {
    struct ledger_outcome *outcomes;   /* borrowed from the ledger until finished */
    uint32_t count;
    int rc;
    struct vl_queue_outcome *outs;
    struct commit_dsns *dsn;
};

struct committer {
    /* set by the shard before commit_init(); read-only after */
    unsigned shard_idx;
    const struct vl_config *cfg;
    struct vl_queue_shard *qs;
    struct rx *rx;
    struct ledger *ledger;
    struct vl_dlog *dlog;
    struct deliver_counters *ctr;
    /* the committer thread */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct commit_slot *todo;      /* handed over, not yet taken */
    bool busy;                     /* a slot is with the committer (shard thread's view) */
    bool done;                     /* the committer finished the slot (under mu) */
    bool quit;
    bool started;
    struct commit_slot slot;
    uint64_t dsn_seq;
    uint64_t commits, commit_us;   /* loop diagnostics (evt=shard_done), under mu */
};

/** Allocate the slot and start the thread. @return 0, -ENOMEM or -errno. */
int commit_init(struct committer *com);
/** Wait for a commit in flight, stop the thread, free the slot. */
void commit_fini(struct committer *com);
/** If the committer is idle and the ledger has committable outcomes, hand
 *  them (and their DSNs) over. Shard thread. */
void commit_start(struct committer *com);
/** The reactor's wake callback (wake_user: the committer): finish a done
 *  commit (log, count, release leases), then start the next. */
void commit_wake_cb(struct rx *rx, const struct rx_event *ev);

#endif
