/*
 * engine.h - the delivery engine: N shard threads delivering the queue.
 *
 * vl_engine_run() starts one shard thread per queue shard (each owns its
 * reactor, resolver, pools and queue shard), reports progress from the
 * calling thread, and returns when every shard is done: with
 * cfg->until_empty once nothing is ready or in flight, otherwise once
 * *stop is set (SIGTERM/SIGINT) and in-flight transactions are finished and
 * committed. Transactions not started when stopping are abandoned: their
 * recipients stay ready in the queue. Nothing half-sent counts as sent.
 */
#ifndef VOLLEY_ENGINE_H
#define VOLLEY_ENGINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "volley/config.h"
#include "volley/queue.h"

struct vl_engine_totals {
    /* Recipients of messages with a return path (DSNs are counted apart):
     * delivered, bounced, expired: reached that final state in this run (each
     * recipient once); deferred: deferral outcomes (attempts, not recipients). */
    uint64_t delivered, deferred, bounced, expired, ambiguous;
    /* Recipients of DSNs (null return path) delivered, deferred (attempts),
     * failed (bounced or expired: never a DSN about a DSN). */
    uint64_t dsn_delivered, dsn_deferred, dsn_failed;
    uint64_t sessions_open;  /* connections open now */
    uint64_t msg_copies;     /* messages (not DSNs) accepted: transactions that delivered
                                to at least one recipient (one copy per transaction) */
    uint64_t dsn_waiting;    /* failed recipients held until their message's DSN is due
                                (--dsn-interval): leased, outcome not yet committed */
    uint64_t leased, inflight, conns, txns, dsns, commit_errors;
    uint64_t uncommitted;    /* outcomes never recorded (commits failed until the
                                engine gave up): those recipients stay queued */
};

/** Called on the calling thread about every @p interval_ms given to run. */
typedef void vl_engine_progress_fn(const struct vl_engine_totals *t, double elapsed_s,
                                   void *ctx);

/** Deliver @p q (opened by the caller) per @p cfg until done (see above).
 *  @p stop may be set from a signal handler. @p out (may be NULL) gets the
 *  final totals. @return 0, or the first shard's fatal error (-errno, VL_E_*). */
int vl_engine_run(const struct vl_config *cfg, struct vl_queue *q, atomic_bool *stop,
                  vl_engine_progress_fn *progress, void *ctx, unsigned interval_ms,
                  struct vl_engine_totals *out);

/** Live reload (SIGHUP), from the progress callback of a running
 *  vl_engine_run() (its thread): the shards move to @p next's live settings
 *  - limits, retry schedule, TLS policy, shaping policies and egress pools
 *  (shard_reconf.c, vl_shaper_update: AIMD state carries over by policy
 *  name) - each at its next reactor turn, without touching what is in
 *  flight. The rest of @p next (listeners, data dir, shards, ...) is not
 *  applied: the caller reports it as needing a restart. @p next must be
 *  valid (vl_config_check) with the egress addresses of the running table.
 *  On 0 the engine owns @p next and frees it with @p cfg_free once no shard
 *  reads it; @p out gets the shaping changes ("" if none).
 *  @return 0, -ESRCH (no engine running), -ENOMEM, -ENOSPC (too many policy
 *  names since start: restart). */
int vl_engine_reload(struct vl_config *next, void (*cfg_free)(struct vl_config *),
                     char *out, size_t cap);

#endif
