/*
 * queue_quar.h - the quarantine: recipients (and their messages) that a lease
 * found unreadable are moved out of the queue into the quar sub-database,
 * kept there as found for inspection, counted, and never leased again (as
 * Postfix moves an unreadable queue file to its corrupt queue). Not public.
 *
 * A lease (queue_lease.c) reads in a read transaction and collects what it
 * could not use: recipient records that do not decode (or fail their
 * checksum), and messages whose record is missing or corrupt or whose body is
 * missing, of the wrong size or fails its checksum. queue_quar_apply() then
 * moves them in ONE group-committed write request: every decision is taken
 * again inside the write transaction (a record rewritten meanwhile is left
 * alone), so the request is correct whatever ran between the two.
 */
#ifndef VOLLEY_QUEUE_QUAR_H
#define VOLLEY_QUEUE_QUAR_H

#include "queue_codec.h"
#include "queue_env.h"

#include <stdbool.h>
#include <stdint.h>

#define QUEUE_QUAR_ITEMS_MAX 256u        /* per lease: more wait for the next one */

/* A recipient the lease could not use. */
struct queue_quar_rcpt {
    uint64_t id;
    uint64_t sched_key;                  /* the sched entry the lease met (next_ms) */
    uint64_t msg_id;                     /* its message, when its record decoded; else 0 */
    bool record_bad;                     /* its own record is unreadable (else: its message) */
    /* Out (set by queue_quar_apply): */
    bool moved;                          /* quarantined */
    uint8_t reason;                      /* enum queue_quar_reason, when moved */
};

/* A message the lease could not use (its recipients follow it). */
struct queue_quar_msg {
    uint64_t id;
    uint8_t reason;                      /* as the lease saw it */
    /* Out: */
    bool moved;                          /* its record and body were quarantined */
    uint8_t reason_now;                  /* as found in the write transaction */
    uint32_t rcpts;                      /* its recipients quarantined with it */
};

struct queue_quar_req {
    struct queue_quar_rcpt *rcpts;
    size_t rcpt_n;
    struct queue_quar_msg *msgs;
    size_t msg_n;
    const struct queue_lease_set *leased;  /* in flight: never moved (their attempt
                                              completes them); read while the owner
                                              waits for this request */
    uint64_t now_ms;
    uint64_t moved;                      /* out: recipients quarantined */
};

/** Quarantine what @p req names, in one group-commit request on @p s (blocks
 *  until committed). Thread: the shard's owner (its lease set is read).
 *  @return recipients quarantined (>= 0) or an error (nothing moved). */
int queue_quar_apply(struct vl_queue_shard *s, struct queue_quar_req *req);

/** Why message @p id (record @p mv, body @p bv, NULL when missing) cannot be
 *  used: an enum queue_quar_reason, or 0 if it can (then *@p m is its record,
 *  borrowing @p mv). Verifies the body's checksum when the record has one:
 *  O(body). */
unsigned queue_quar_msg_check(const MDB_val *mv, const MDB_val *bv, uint64_t id,
                              struct queue_msg_rec *m);

/** Why recipient record @p rv cannot be used (it does not decode): RECORD,
 *  RECORD_CRC or VERSION. */
unsigned queue_quar_rcpt_reason(const MDB_val *rv);

#endif
