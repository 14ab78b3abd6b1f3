/*
 * commit.h - a shard's committer: a thread that makes the shard's outcomes
 * (and the DSNs they imply) durable in one queue transaction while the
 * reactor keeps running; back on the shard thread, the committed outcomes
 * are logged (one delivery-log line each), counted, and their leases
 * released. Outcomes are logged only after they are durable.
 *
 * A commit that fails keeps its slot and is retried with backoff (commit.c);
 * while it fails the shard leases nothing and starts no attempt.
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
#include "supp.h"
#include "volley/config.h"
#include "volley/limits.h"
#include "volley/queue.h"

/* The DSNs of one commit: one per message and kind (failed, delayed), naming
 * every recipient of that message reported in the commit. Sized at start-up
 * for the worst case (at most one DSN per outcome, one message's recipients
 * at most all outcomes), so no DSN is ever dropped for want of room. */
struct commit_dsns {
    struct vl_queue_new_msg *m;    /* [LEDGER_OUTCOMES_MAX] */
    char **bodies;                 /* malloc'd, freed once the slot is committed */
    const char **rcpt;             /* the DSN's one recipient: the return path */
    uint64_t *msg_id;              /* the message each DSN is about (for the log) */
    bool *delayed;                 /* a delay notice (else a failure report) */
    size_t count;
    struct dsn_rcpt *rs;           /* scratch [LEDGER_OUTCOMES_MAX]: one DSN's recipients */
    uint32_t *order;               /* scratch [LEDGER_OUTCOMES_MAX]: outcomes by message */
};

/* A commit handed to the committer thread. While its commit fails, the slot
 * keeps its outcomes (and their leases) and is committed again with backoff. */
struct commit_slot {
    struct ledger_outcome *outcomes;   /* borrowed from the ledger until committed */
    uint32_t count;
    int rc;
    bool dsns_built;               /* dsn holds this slot's DSNs */
    bool dsns_dropped;             /* poison: commit without them (each logged dsn_failed) */
    size_t extra_n;                /* DSNs handed to the queue with the outcomes */
    struct vl_queue_outcome *outs;
    struct commit_dsns *dsn;
    /* cfg->events_on: each outcome's delivery event (its log line as JSON),
     * committed with it into the shard's outbox (outs[i].event points here) */
    bool events_built;
    char *ev_buf;                  /* malloc'd, grown as needed; kept across commits */
    size_t ev_cap;
    const char **ev;               /* [LEDGER_OUTCOMES_MAX]: outcome i's event, in ev_buf */
    size_t *ev_len;
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
    struct deliver_sup *sup;       /* suppression list, fed by hard bounces (supp.h) */
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
    /* a failing commit (shard thread): the slot is kept and retried */
    bool failing;                  /* the slot's last commit failed: lease nothing new */
    bool gave_up;                  /* failing for cfg->commit_giveup_ms: the shard stops */
    int err_last;                  /* the last commit error */
    uint32_t fail_count;           /* failed tries of the current slot */
    uint32_t poison_count;         /* of them, in a row with VL_E_INVALID / VL_E_TOOBIG */
    uint64_t fail_since_ms;        /* monotonic: the slot's first failure */
    uint64_t retry_ms;             /* backoff: COMMIT_RETRY_MS_MIN doubling to _MAX */
    uint64_t retry_at_ms;          /* monotonic: when the slot is committed again */
};

#define COMMIT_RETRY_MS_MIN 100u
#define COMMIT_RETRY_MS_MAX 5000u
#define COMMIT_POISON_TRIES 2u     /* VL_E_INVALID/TOOBIG in a row: drop the DSNs */

struct dsn_rcpt;                   /* dsn.h */

/** Allocate the slot and start the thread. @return 0, -ENOMEM or -errno. */
int commit_init(struct committer *com);
/** Wait for a commit in flight, stop the thread, free the slot. */
void commit_fini(struct committer *com);
/** If the committer is idle and the ledger has committable outcomes, hand
 *  them (and their DSNs) over; if a commit is failing and its retry is due,
 *  hand the same slot over again. Shard thread. */
void commit_start(struct committer *com);
/** The reactor's wake callback (wake_user: the committer): finish a done
 *  commit (log, count, release leases; or, failed, keep the slot and set
 *  its retry), then start the next. */
void commit_wake_cb(struct rx *rx, const struct rx_event *ev);
/** Milliseconds until a failing commit is retried (0 = due), or -1 if no
 *  commit is failing. Shard thread. */
int64_t commit_retry_wait_ms(const struct committer *com);
/** Outcomes taken by the committer and not committed (a failing slot). */
uint32_t commit_pending(const struct committer *com);

/** Allocate the DSN tables and scratch (sized for LEDGER_OUTCOMES_MAX
 *  outcomes). @return 0 or -ENOMEM (nothing allocated). */
int commit_dsns_alloc(struct commit_dsns **out);
/** Free the bodies still held and the tables. NULL is a no-op. */
void commit_dsns_free(struct commit_dsns *b);
/** Build into com->slot.dsn the DSNs that @p count @p outcomes imply: per
 *  message (by id) and kind, one DSN naming every recipient of it reported
 *  in these outcomes. A DSN that cannot be built or stored (VL_E_INVALID,
 *  VL_E_TOOBIG) is logged (evt=dsn_failed, naming the message) and left out;
 *  its outcomes still commit. @return 0, or -ENOMEM: no DSN is kept (all
 *  bodies freed), so the caller keeps the outcomes for a later try. */
int commit_dsns_build(struct committer *com, const struct ledger_outcome *outcomes,
                      uint32_t count);

#endif
