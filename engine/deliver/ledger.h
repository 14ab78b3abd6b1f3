/*
 * ledger.h - a shard's accounting of leased recipients: leases, delivery
 * attempts and recipient outcomes. Thread: the owning shard's only.
 *
 * Flow of a recipient: leased (struct lease) -> grouped into a delivery
 * attempt (struct attempt: one message, <= rcpts_per_txn_max recipients of
 * one domain; route*.c sends it to a host, where a session runs it as one SMTP
 * transaction) -> each recipient's fate becomes an outcome (ledger_outcome)
 * -> outcomes are committed by commit.c in one queue transaction, then
 * logged -> the lease is released once all its recipients are committed.
 *
 * Invariants: every leased recipient gets exactly one outcome per lease, or
 * its attempt is abandoned (no outcome: leasable again). One DSN per message
 * per attempt: an attempt's outcomes are held back (not committable) until
 * the attempt is done (ledger_attempt_done), so the recipients of one attempt
 * that fail at RCPT and those that fail at the final dot land in the same
 * commit and share one DSN.
 *
 * One DSN per message per report interval (cfg->dsn_interval_ms): a failed
 * outcome (bounced, expired) that implies a DSN stays held after its
 * attempt is done ("waiting": uncommitted, its recipient still leased) until
 * ledger_dsn_release() lets every waiting outcome go at once: the interval
 * since the first is over, the shard stops, nothing else is in flight, or
 * LEDGER_DSN_WAIT_MAX are waiting. They commit together, so each message gets
 * one DSN naming all its recipients that failed in the interval. Durability:
 * the bounced state and its DSN still commit in one queue transaction; a
 * crash before loses neither (the recipient is simply leased again).
 */
#ifndef VOLLEY_DELIVER_LEDGER_H
#define VOLLEY_DELIVER_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "counters.h"
#include "smtp_client.h"
#include "volley/config.h"
#include "volley/limits.h"
#include "volley/queue.h"

#define LEDGER_OUTCOMES_MAX VL_INFLIGHT_RCPTS_PER_SHARD_MAX   /* one per in-flight recipient */
#define LEDGER_DSN_WAIT_MAX (LEDGER_OUTCOMES_MAX / 4)   /* waiting failures released at once:
                                   leasing (capped at half the in-flight cap) goes on */

struct domain;                     /* route.h */
struct host;                       /* route.h */

struct lease {
    struct lease *next;
    struct vl_queue_batch *batch;
    uint32_t open;                 /* recipients without a committed outcome */
};

/* One delivery attempt. The route fields are route*.c's; the rest is set at
 * allocation (shard.c) and read by sessions. */
struct attempt {
    struct attempt *next;          /* in a domain's waiting list or a host's FIFO (route*.c) */
    struct lease *lease;
    const struct vl_queue_msg *msg;
    struct domain *dom;            /* route*.c */
    uint32_t host_next;            /* route*.c: next index in dom->hosts to try */
    const char *mx_name;           /* MX the attempt was sent to (for the log) */
    struct host *host;             /* route*.c: host it is queued on or ran on */
    const char *tls;               /* TLS protocol of the session it ran on; NULL = plaintext */
    uint32_t rcpt_count;
    uint32_t fated;                /* outcomes recorded, held until the attempt is done */
    bool copy_counted;             /* a recipient was delivered: one message copy counted */
    char *prefix;                  /* malloc'd header lines sent before the body (its one
                                      recipient's List-Unsubscribe), or NULL; freed when
                                      the attempt is done */
    uint32_t prefix_len;
    int shaped;                    /* route*.c: 1 + the policy whose in-flight count has its
                                      recipients (route_saturated), 0 = none */
    uint64_t retry_ms_base;        /* route*.c: its shaping policy's schedule; 0 = --retry-* */
    uint64_t retry_ms_max;
    struct vl_queue_rcpt *rcpts[VL_SMTP_RCPTS_PER_TXN_MAX];
};

/* A recipient's outcome, as committed (o) and logged (the rest). */
struct ledger_outcome {
    struct vl_queue_outcome o;
    struct attempt *attempt;       /* non-NULL: its attempt is not done yet (held back) */
    const struct vl_queue_msg *msg;
    const struct vl_queue_rcpt *rcpt;
    struct lease *lease;
    const char *mx;                /* MX name or NULL (static until shard end) */
    const char *ip;                /* host address text or NULL (static until shard end) */
    const char *tls;               /* "TLSv1.3"... (static string) or NULL */
    bool ambiguous;
    bool local;
    bool warn;                     /* deferred past --delay-warning: Action: delayed DSN */
    bool dsn_wait;                 /* failed, owes a DSN: held until ledger_dsn_release() */
    bool suppressed;               /* dropped: on the suppression list (no DSN; logged
                                      as event "suppressed", stored as bounced 5.7.1) */
    const char *category;          /* bounce category of a failure (static), NULL if delivered */
    bool purged;                   /* dropped by an operator (adm.h): no DSN, logged as
                                      event "purged", stored as bounced 5.0.0 */
    char status[VL_SMTP_STATUS_BYTES_MAX];
    char text[VL_DIAG_TEXT_BYTES_MAX + 1];
};

struct ledger {
    const struct vl_config *cfg;
    struct deliver_counters *ctr;
    uint64_t inflight;             /* leased recipients without a committed outcome */
    struct lease *leases;
    struct attempt *attempt_free;
    uint32_t attempts_live;
    uint32_t outcome_count;
    uint32_t outcomes_held;        /* of outcome_count: attempt not done, or waiting for
                                      the DSN interval: not committable */
    uint32_t dsn_waiting;          /* of outcomes_held: attempt done, waiting (dsn_wait) */
    uint64_t dsn_wait_since_ms;    /* monotonic: the first of them became waiting */
    struct ledger_outcome *outcomes;        /* accumulating */
    struct ledger_outcome *outcomes_spare;  /* the last ledger_take_ready() buffer */
};

/** Allocate the outcome buffers. @return 0 or -ENOMEM. */
int ledger_init(struct ledger *l, const struct vl_config *cfg, struct deliver_counters *ctr);
/** Free everything; release the leases still held to @p qs. */
void ledger_fini(struct ledger *l, struct vl_queue_shard *qs);

/** Account for @p n recipients leased in @p b. @return the lease, or NULL (ENOMEM). */
struct lease *ledger_lease_add(struct ledger *l, struct vl_queue_batch *b, uint32_t n);
/** Release to @p qs every lease whose recipients are all committed. */
void ledger_leases_release(struct ledger *l, struct vl_queue_shard *qs);

/** An empty attempt of @p lease for @p msg. @return NULL on ENOMEM. */
struct attempt *ledger_attempt_alloc(struct ledger *l, struct lease *lease,
                                     const struct vl_queue_msg *msg);
/** @p a is over (every recipient has an outcome, or none was recorded and
 *  the attempt is dropped as is): its held outcomes become committable. */
void ledger_attempt_done(struct ledger *l, struct attempt *a);
/** Drop @p a without outcomes: its recipients are leasable again. */
void ledger_attempt_abandon(struct ledger *l, struct attempt *a);

/** Record the fate @p f of recipient @p i of @p a, sent to @p ip (or NULL). */
void ledger_outcome(struct ledger *l, struct attempt *a, uint32_t i, const struct smtp_fate *f,
                    const char *ip);

/** Let the failed outcomes waiting for their DSN go (committable now) if
 *  @p force, the DSN interval since the first is over, or LEDGER_DSN_WAIT_MAX
 *  wait. @return how many were let go. */
uint32_t ledger_dsn_release(struct ledger *l, bool force);

/** Committable outcomes waiting? */
bool ledger_has_ready(const struct ledger *l);
/** Move the committable outcomes out: *@p out gets them (valid until the next
 *  call), held ones stay. @return their count (> 0 if ledger_has_ready()). */
uint32_t ledger_take_ready(struct ledger *l, struct ledger_outcome **out);
/** @p count outcomes taken earlier are committed (or dropped): their leases
 *  and the in-flight count go down. */
void ledger_committed(struct ledger *l, const struct ledger_outcome *outcomes, uint32_t count);

/** Recipient @p i of @p a is on the suppression list: give it its outcome
 *  now (bounced 5.7.1, local, @p why as text; no DSN), never sent. */
void ledger_suppressed(struct ledger *l, struct attempt *a, uint32_t i, const char *why);
/** An operator hold's outcome (shard_admin.c) for @p a's one recipient:
 *  @p f as given; deferred: retried at @p next_ms (not the retry schedule);
 *  @p purged: no DSN, logged as event "purged". */
void ledger_admin_outcome(struct ledger *l, struct attempt *a, const struct smtp_fate *f,
                          bool purged, uint64_t next_ms);

#endif
