/*
 * counters.h - a shard's counters, the only shard state another thread reads.
 *
 * Owner: engine.c allocates one struct per shard and sums them for progress
 * lines and the summary (relaxed atomic loads). The shard thread's files add
 * to them (relaxed atomic adds); nothing else is shared between threads.
 */
#ifndef VOLLEY_DELIVER_COUNTERS_H
#define VOLLEY_DELIVER_COUNTERS_H

#include <stdatomic.h>
#include <stdint.h>

struct met_shard;                  /* engine/metrics/metrics.h */

struct deliver_counters {
    /* commit.c, recipients of messages with a return path (not DSNs): delivered,
     * bounced, expired count final states (once per recipient); deferred counts
     * deferral outcomes (attempts: one recipient may be deferred many times). */
    _Atomic uint64_t delivered, deferred, bounced, expired, ambiguous;
    _Atomic uint64_t dsn_delivered, dsn_deferred, dsn_failed;  /* commit.c: DSN recipients
                                                 (null return path), kept apart */
    _Atomic uint64_t sessions_open;          /* shard.c: connections open now (gauge) */
    _Atomic uint64_t msg_copies;             /* ledger.c: transactions that delivered a
                                                message (not a DSN) to >= 1 recipient */
    _Atomic uint64_t dsn_waiting;            /* ledger.c: failures held for their DSN (gauge) */
    _Atomic uint64_t leased;                 /* shard.c */
    _Atomic uint64_t inflight;               /* ledger.c: leased, outcome not committed */
    _Atomic uint64_t conns, txns;            /* route*.c: connections, SMTP transactions */
    _Atomic uint64_t dsns, commit_errors;    /* commit.c */
    _Atomic uint64_t uncommitted;            /* shard.c, at exit: outcomes never recorded */
    struct met_shard *met;                   /* engine.c: this shard's metrics slot, NULL
                                                when metrics are off (issue 15) */
};

#endif
