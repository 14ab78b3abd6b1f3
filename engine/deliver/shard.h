/*
 * shard.h - one delivery shard: a thread that owns an io_uring reactor, its
 * queue shard (lease/complete), its ledger of leased recipients (ledger.h),
 * its routes, hosts and sessions (route.h, session.h) and its committer
 * (commit.h). Nothing here is shared with another shard; the main thread
 * reads only the atomic counters (counters.h).
 *
 * Calls go down only: engine.c -> shard.c -> route.c -> session.c, with
 * ledger.c and commit.c beside them; sessions report to route.c through
 * struct session_owner, and route.c records outcomes in the ledger.
 *
 * Invariant: every leased recipient gets exactly one outcome per lease (or
 * its attempt is abandoned unstarted); a lease is released only when all its
 * recipients' outcomes are committed.
 */
#ifndef VOLLEY_DELIVER_SHARD_H
#define VOLLEY_DELIVER_SHARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "commit.h"
#include "counters.h"
#include "ledger.h"
#include "log.h"
#include "route.h"
#include "rx.h"
#include "smtp_client.h"
#include "volley/config.h"
#include "volley/queue.h"

/* A configuration in force (live reload, engine.c): published by the engine
 * by pointer swap; each shard moves to it at the top of a reactor turn
 * (shard_reconf) and acknowledges its generation. Immutable. */
struct shard_live {
    uint64_t gen;
    const struct vl_config *cfg;
};

struct shard {
    /* set by engine.c before shard_run() */
    unsigned idx;
    const struct vl_config *cfg;   /* &cfg_own when run by the engine */
    const struct vl_config *cfg_base;   /* the config the engine started with (committer) */
    struct vl_config cfg_own;      /* the shard's copy: its live settings follow reloads */
    struct shard_live *const *live;   /* the engine's current one (atomic), or NULL */
    uint64_t live_gen;             /* the generation applied (shard thread) */
    uint64_t live_seen;            /* = live_gen, atomic: read by the engine */
    struct vl_queue_shard *qs;
    struct smtp_client_conf client_conf;
    struct vl_dlog dlog;
    struct deliver_counters *ctr;
    struct deliver_sup *sup;       /* the suppression list (checked at lease) */
    struct vl_shaper *shaper;      /* shared shaping state (issue 14), never NULL */
    atomic_bool *stop;             /* set by the main thread */
    /* shard.c */
    struct rx *rx;
    bool stopping;                 /* seen: no more leasing */
    bool idle_queue;               /* the last lease found nothing due */
    bool lease_none;               /* this turn's lease ran and found nothing due */
    bool draining;                 /* --until-empty and nothing left: pool nothing */
    uint64_t next_lease_ms;
    atomic_bool mail_new;          /* set (with a wake) when this process enqueued here */
    uint64_t body_bytes_per_rcpt;  /* of the last lease: sizes the next one */
    uint64_t turns;                /* loop diagnostics (evt=shard_done) */
    bool ev_full;                  /* issue 16: events outbox at its cap, no leasing */
    struct ledger ledger;
    struct route route;
    struct committer com;
};

/** Run the shard on the calling thread until done (see engine.h): create its
 *  reactor, ledger, committer and routes, loop, tear down. @return 0 or the
 *  fatal error that ended it (-errno, VL_E_*). */
int shard_run(struct shard *sh);

/** shard_reconf.c: move to @p next's live settings (limits, retry schedule,
 *  TLS policy, shaping table); the rest of @p next (listeners, data dir,
 *  shard count, ...) is ignored: it needs a restart. Shard thread, between
 *  reactor turns: nothing in flight is touched. */
void shard_reconf(struct shard *sh, const struct vl_config *next);
/** @p cc: the SMTP client settings @p cfg gives (EHLO name, recipients per
 *  transaction, STARTTLS, command timeouts). */
void shard_client_conf(struct smtp_client_conf *cc, const struct vl_config *cfg);

/** shard_admin.c: recipients of @p b whose domain an operator holds (adm.h)
 *  and not marked in @p out yet get their outcome now; marked in @p out. */
void shard_admin_holds(struct shard *sh, struct lease *ls, struct vl_queue_batch *b,
                       bool *out);

#endif
