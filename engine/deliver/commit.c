/*
 * commit.c - the committer thread and what the shard does around a commit
 * (see commit.h): outcomes + DSNs in one queue transaction, then the log.
 *
 * One DSN per message per kind in a commit: the ledger holds an attempt's
 * outcomes back until the attempt is done, so they arrive together.
 * Diagnostics: evt=commit_failed (the commit is not durable: nothing is
 * logged, the leases go back to the queue, at-least-once).
 */
#include "commit.h"

#include "clock.h"
#include "dsn.h"
#include "volley/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool commit_outcome_failed(const struct ledger_outcome *e)
{
    return e->o.state == VL_RCPT_BOUNCED || e->o.state == VL_RCPT_EXPIRED;
}

/* Reported in a DSN of this kind: failed, or (delayed) owed a delay notice. */
static bool commit_outcome_reported(const struct ledger_outcome *e, bool delayed)
{
    return delayed ? e->warn : commit_outcome_failed(e);
}

/* One DSN per message covering its recipients that failed in this commit
 * (or, @p delayed, one delay notice for those owed one). */
static void commit_dsn_for_msg(struct committer *com, const struct ledger_outcome *outcomes,
                               uint32_t count, size_t first, bool delayed)
{
    struct commit_dsns *b = com->slot.dsn;
    const struct vl_config *cfg = com->cfg;
    const struct vl_queue_msg *m = outcomes[first].msg;
    if (m->return_path_len == 0 || b->count == VL_DSNS_PER_COMMIT_MAX)
        return;                    /* null reverse-path: never a DSN (no loops) */
    struct dsn_rcpt rs[VL_SMTP_RCPTS_PER_TXN_MAX];
    unsigned n = 0;
    uint64_t now = vl_clock_wall_ms();
    for (size_t i = first; i < count && n < VL_SMTP_RCPTS_PER_TXN_MAX; i++) {
        const struct ledger_outcome *e = &outcomes[i];
        if (e->msg != m || !commit_outcome_reported(e, delayed))
            continue;
        bool expired = e->o.state == VL_RCPT_EXPIRED;
        rs[n++] = (struct dsn_rcpt){
            .addr = e->rcpt->addr, .action = delayed ? DSN_ACTION_DELAYED : DSN_ACTION_FAILED,
            .retry_until_ms = delayed ? (int64_t)(m->created_ms + cfg->age_ms_max) : 0,
            .status = expired && e->status[0] != '5' ? (e->status[0] == '4' ? e->status : "4.4.7")
                                                     : e->status,
            .remote_mta = e->local ? NULL : e->mx, .code = e->local ? 0 : e->o.code,
            .diag = e->text[0] ? e->text : (expired ? "queue lifetime expired" : NULL),
            .last_attempt_ms = (int64_t)now,
        };
    }
    size_t k = b->count;
    uint64_t unique = (com->dsn_seq++ << 8) | com->shard_idx;
    if (dsn_for_message(m, cfg->ehlo_name, rs, n, (int64_t)now, unique, &b->bodies[k],
                        &b->rcpt[k], &b->m[k]) == 0)
        b->count++;
}

static void commit_log_outcome(struct committer *com, const struct ledger_outcome *e)
{
    static const char *const names[VL_RCPT_STATE_COUNT] = {
        [VL_RCPT_DELIVERED] = "delivered", [VL_RCPT_DEFERRED] = "deferred",
        [VL_RCPT_BOUNCED] = "bounced", [VL_RCPT_EXPIRED] = "expired",
    };
    struct vl_dlog_event ev = {
        .ts_ms = (int64_t)vl_clock_wall_ms(), .msg_id = e->msg->id,
        .rcpt = e->rcpt->addr, .domain = e->rcpt->domain,
        .event = e->ambiguous && e->o.state == VL_RCPT_DEFERRED ? "ambiguous"
                                                                 : names[e->o.state],
        .mx = e->mx, .ip = e->ip, .code = e->o.code,
        .status = e->status, .reply = e->text, .attempt = e->rcpt->attempts + 1,
        .tls = e->tls,
    };
    vl_dlog_add(com->dlog, &ev);
}

static void commit_count(struct committer *com, const struct ledger_outcome *e)
{
    struct deliver_counters *c = com->ctr;
    switch (e->o.state) {
    case VL_RCPT_DELIVERED: atomic_fetch_add_explicit(&c->delivered, 1, memory_order_relaxed); break;
    case VL_RCPT_DEFERRED:  atomic_fetch_add_explicit(&c->deferred, 1, memory_order_relaxed);  break;
    case VL_RCPT_BOUNCED:   atomic_fetch_add_explicit(&c->bounced, 1, memory_order_relaxed);   break;
    case VL_RCPT_EXPIRED:   atomic_fetch_add_explicit(&c->expired, 1, memory_order_relaxed);   break;
    default: vl_panic("bad outcome state %d", (int)e->o.state);
    }
    if (e->ambiguous)
        atomic_fetch_add_explicit(&c->ambiguous, 1, memory_order_relaxed);
}

void commit_start(struct committer *com)
{
    if (!ledger_has_ready(com->ledger) || com->busy)
        return;
    struct commit_slot *c = &com->slot;
    c->count = ledger_take_ready(com->ledger, &c->outcomes);
    vl_assert(c->count > 0);
    c->dsn->count = 0;
    for (uint32_t i = 0; i < c->count; i++) {
        c->outs[i] = c->outcomes[i].o;
        for (int kind = 0; kind < 2; kind++) {     /* failures, then delay notices */
            bool delayed = kind == 1;
            if (!commit_outcome_reported(&c->outcomes[i], delayed))
                continue;
            bool first = true;     /* first such outcome of its message in this commit */
            for (uint32_t k = 0; k < i && first; k++)
                first = !(c->outcomes[k].msg == c->outcomes[i].msg
                          && commit_outcome_reported(&c->outcomes[k], delayed));
            if (first)
                commit_dsn_for_msg(com, c->outcomes, c->count, i, delayed);
        }
    }
    com->busy = true;
    pthread_mutex_lock(&com->mu);
    com->todo = c;
    pthread_cond_signal(&com->cv);
    pthread_mutex_unlock(&com->mu);
}

/* Shard thread: the committer is done with the slot: log, count, release. */
static void commit_finish(struct committer *com)
{
    struct commit_slot *c = &com->slot;
    int rc = c->rc;
    for (size_t k = 0; k < c->dsn->count; k++)
        free(c->dsn->bodies[k]);
    if (rc < 0) {
        /* Not durable: log nothing, keep nothing. The leases are dropped, so
         * these recipients are leased again (at-least-once). */
        atomic_fetch_add_explicit(&com->ctr->commit_errors, 1, memory_order_relaxed);
        vl_log(VL_LOG_ERROR, "evt=commit_failed shard=%u outcomes=%u err=\"%s\"",
               com->shard_idx, c->count, vl_strerror(rc));
    } else {
        atomic_fetch_add_explicit(&com->ctr->dsns, c->dsn->count, memory_order_relaxed);
        for (uint32_t i = 0; i < c->count; i++) {
            commit_log_outcome(com, &c->outcomes[i]);
            commit_count(com, &c->outcomes[i]);
        }
    }
    ledger_committed(com->ledger, c->outcomes, c->count);
    c->count = 0;
    com->busy = false;
    vl_dlog_flush(com->dlog);
    ledger_leases_release(com->ledger, com->qs);
}

void commit_wake_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct committer *com = ev->user;
    pthread_mutex_lock(&com->mu);
    bool done = com->done;
    com->done = false;
    pthread_mutex_unlock(&com->mu);
    if (done) {
        commit_finish(com);
        commit_start(com);
    }
}

static void *commit_thread_main(void *arg)
{
    struct committer *com = arg;
    pthread_mutex_lock(&com->mu);
    for (;;) {
        while (!com->todo && !com->quit)
            pthread_cond_wait(&com->cv, &com->mu);
        struct commit_slot *c = com->todo;
        if (!c)
            break;
        com->todo = NULL;
        pthread_mutex_unlock(&com->mu);
        uint64_t t0 = vl_clock_mono_ms();
        c->rc = vl_queue_complete_async(com->qs, c->outs, c->count, c->dsn->m, c->dsn->count,
                                        vl_clock_wall_ms());
        pthread_mutex_lock(&com->mu);
        com->commits++;
        com->commit_us += (vl_clock_mono_ms() - t0) * 1000u;
        com->done = true;
        pthread_mutex_unlock(&com->mu);
        rx_wake(com->rx);
        pthread_mutex_lock(&com->mu);
    }
    pthread_mutex_unlock(&com->mu);
    return NULL;
}

int commit_init(struct committer *com)
{
    com->slot.outs = calloc(LEDGER_OUTCOMES_MAX, sizeof *com->slot.outs);
    com->slot.dsn = calloc(1, sizeof *com->slot.dsn);
    if (!com->slot.outs || !com->slot.dsn)
        return -ENOMEM;
    pthread_mutex_init(&com->mu, NULL);
    pthread_cond_init(&com->cv, NULL);
    int rc = pthread_create(&com->thread, NULL, commit_thread_main, com);
    if (rc != 0)
        return -rc;
    com->started = true;
    return 0;
}

void commit_fini(struct committer *com)
{
    if (com->started) {
        pthread_mutex_lock(&com->mu);
        com->quit = true;
        pthread_cond_signal(&com->cv);
        pthread_mutex_unlock(&com->mu);
        pthread_join(com->thread, NULL);
        pthread_mutex_destroy(&com->mu);
        pthread_cond_destroy(&com->cv);
        com->started = false;
    }
    free(com->slot.outs);
    free(com->slot.dsn);
    com->slot.outs = NULL;
    com->slot.dsn = NULL;
}
