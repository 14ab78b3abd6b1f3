/*
 * commit.c - the committer thread and what the shard does around a commit
 * (see commit.h): outcomes + DSNs in one queue transaction, then the log.
 *
 * One DSN per message per kind in a commit, naming every recipient of it
 * reported there: the ledger holds an attempt's outcomes back until the
 * attempt is done, so they arrive together; outcomes are grouped by message
 * id, so attempts of one message in one commit share a DSN too; and failures
 * that owe a DSN wait in the ledger for --dsn-interval (ledger.h), so a
 * message's failures over many attempts and commits come in one commit.
 *
 * A failed commit keeps its slot: the outcomes stay owned here, their
 * leases stay held (nothing is leased again while pending), and the same
 * commit is tried again after COMMIT_RETRY_MS_MIN, doubling to _MAX; the
 * shard leases nothing and starts no attempt meanwhile (commit_failing).
 * After cfg->commit_giveup_ms of failures the committer gives up and the
 * shard stops: the outcomes were never recorded, so their recipients are
 * leased again by the next run (the remote may already have them: the
 * documented at-least-once window). A commit refused COMMIT_POISON_TRIES
 * times in a row as VL_E_INVALID / VL_E_TOOBIG is tried without its DSNs
 * (each logged evt=dsn_failed): one bad DSN cannot block the outcomes.
 * Diagnostics: evt=commit_failed (every failed try), commit_recovered,
 * commit_gave_up, dsn_failed.
 */
#include "commit.h"

#include "campaign.h"
#include "clock.h"
#include "dsn.h"
#include "log.h"
#include "metrics.h"
#include "suppress.h"
#include "supp.h"
#include "volley/addr.h"
#include "volley/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool commit_outcome_failed(const struct ledger_outcome *e)
{
    return (e->o.state == VL_RCPT_BOUNCED || e->o.state == VL_RCPT_EXPIRED) && !e->suppressed &&
           !e->purged;
}

/* Reported in a DSN of this kind: failed, or (delayed) owed a delay notice. */
static bool commit_outcome_reported(const struct ledger_outcome *e, bool delayed)
{
    return delayed ? e->warn : commit_outcome_failed(e);
}

static void commit_dsn_failed(const struct committer *com, uint64_t msg_id, unsigned rcpts,
                              bool delayed, int err)
{
    vl_log(VL_LOG_ERROR, "evt=dsn_failed shard=%u msg=%016llx rcpts=%u kind=%s err=\"%s\"",
           com->shard_idx, (unsigned long long)msg_id, rcpts, delayed ? "delayed" : "failed",
           vl_strerror(err));
}

/* One DSN for the @p n outcomes @p idx (one message, reported in this commit
 * as failed, or @p delayed owed a delay notice). @return 0 (built, or logged
 * and left out) or -ENOMEM. */
static int commit_dsn_for_msg(struct committer *com, const struct ledger_outcome *outcomes,
                              const uint32_t *idx, uint32_t n, bool delayed, uint64_t now)
{
    struct commit_dsns *b = com->slot.dsn;
    const struct vl_config *cfg = com->cfg;
    const struct vl_queue_msg *m = outcomes[idx[0]].msg;
    vl_assert(n > 0 && n <= LEDGER_OUTCOMES_MAX);
    vl_assert(b->count < LEDGER_OUTCOMES_MAX);
    for (uint32_t j = 0; j < n; j++) {
        const struct ledger_outcome *e = &outcomes[idx[j]];
        bool expired = e->o.state == VL_RCPT_EXPIRED;
        b->rs[j] = (struct dsn_rcpt){
            .addr = e->rcpt->addr, .action = delayed ? DSN_ACTION_DELAYED : DSN_ACTION_FAILED,
            .retry_until_ms = delayed ? (int64_t)(m->created_ms + cfg->age_ms_max) : 0,
            .status = expired && e->status[0] != '5' ? (e->status[0] == '4' ? e->status : "4.4.7")
                                                     : e->status,
            .remote_mta = e->local ? NULL : e->mx, .code = e->local ? 0 : e->o.code,
            .diag = e->text[0] ? e->text : (expired ? "queue lifetime expired" : NULL),
            .category = e->category,
            .last_attempt_ms = (int64_t)now,
        };
    }
    size_t k = b->count;
    uint64_t unique = (com->dsn_seq++ << 8) | com->shard_idx;
    int rc = dsn_for_message(m, cfg->ehlo_name, b->rs, n, (int64_t)now, unique, &b->bodies[k],
                             &b->rcpt[k], &b->m[k]);
    if (rc == -ENOMEM)
        return rc;
    struct vl_addr a;
    if (rc == 0 && b->m[k].body_len > VL_MSG_BYTES_MAX)
        rc = VL_E_TOOBIG;          /* the queue would refuse it: and the whole commit */
    else if (rc == 0 && vl_addr_parse(b->rcpt[k], strlen(b->rcpt[k]), &a, NULL) < 0)
        rc = VL_E_INVALID;
    if (rc < 0) {
        free(b->bodies[k]);
        b->bodies[k] = NULL;
        commit_dsn_failed(com, m->id, n, delayed, rc);
        return 0;
    }
    b->msg_id[k] = m->id;
    b->delayed[k] = delayed;
    b->count++;
    return 0;
}

/* By message id, then position: a message's recipients in commit order. */
static int commit_order_cmp(const void *pa, const void *pb, void *arg)
{
    const struct ledger_outcome *o = arg;
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    uint64_t ia = o[a].msg->id, ib = o[b].msg->id;
    if (ia != ib)
        return ia < ib ? -1 : 1;
    return a < b ? -1 : a > b;
}

static void commit_dsns_clear(struct commit_dsns *b)
{
    for (size_t k = 0; k < b->count; k++) {
        free(b->bodies[k]);
        b->bodies[k] = NULL;
    }
    b->count = 0;
}

int commit_dsns_build(struct committer *com, const struct ledger_outcome *outcomes,
                      uint32_t count)
{
    struct commit_dsns *b = com->slot.dsn;
    vl_assert(b->count == 0);
    vl_assert(count <= LEDGER_OUTCOMES_MAX);
    uint64_t now = vl_clock_wall_ms();
    for (int kind = 0; kind < 2; kind++) {     /* failures, then delay notices */
        bool delayed = kind == 1;
        uint32_t n = 0;
        for (uint32_t i = 0; i < count; i++)   /* null reverse-path: never a DSN (no loops) */
            if (commit_outcome_reported(&outcomes[i], delayed) && outcomes[i].msg->return_path_len)
                b->order[n++] = i;
        qsort_r(b->order, n, sizeof *b->order, commit_order_cmp, (void *)outcomes);
        for (uint32_t g = 0, e; g < n; g = e) {
            uint64_t id = outcomes[b->order[g]].msg->id;
            for (e = g + 1; e < n && outcomes[b->order[e]].msg->id == id; e++)
                ;
            if (commit_dsn_for_msg(com, outcomes, b->order + g, e - g, delayed, now) < 0) {
                commit_dsns_clear(b);
                return -ENOMEM;
            }
        }
    }
    return 0;
}

int commit_dsns_alloc(struct commit_dsns **out)
{
    struct commit_dsns *b = calloc(1, sizeof *b);
    *out = NULL;
    if (!b)
        return -ENOMEM;
    b->m = calloc(LEDGER_OUTCOMES_MAX, sizeof *b->m);
    b->bodies = calloc(LEDGER_OUTCOMES_MAX, sizeof *b->bodies);
    b->rcpt = calloc(LEDGER_OUTCOMES_MAX, sizeof *b->rcpt);
    b->msg_id = calloc(LEDGER_OUTCOMES_MAX, sizeof *b->msg_id);
    b->rs = calloc(LEDGER_OUTCOMES_MAX, sizeof *b->rs);
    b->order = calloc(LEDGER_OUTCOMES_MAX, sizeof *b->order);
    b->delayed = calloc(LEDGER_OUTCOMES_MAX, sizeof *b->delayed);
    if (!b->m || !b->bodies || !b->rcpt || !b->msg_id || !b->rs || !b->order || !b->delayed) {
        commit_dsns_free(b);
        return -ENOMEM;
    }
    *out = b;
    return 0;
}

void commit_dsns_free(struct commit_dsns *b)
{
    if (!b)
        return;
    if (b->bodies)
        commit_dsns_clear(b);
    free(b->m);
    free(b->bodies);
    free(b->rcpt);
    free(b->msg_id);
    free(b->rs);
    free(b->order);
    free(b->delayed);
    free(b);
}

static void commit_event_of(const struct ledger_outcome *e, int64_t ts_ms,
                            struct vl_dlog_event *out)
{
    static const char *const names[VL_RCPT_STATE_COUNT] = {
        [VL_RCPT_DELIVERED] = "delivered", [VL_RCPT_DEFERRED] = "deferred",
        [VL_RCPT_BOUNCED] = "bounced", [VL_RCPT_EXPIRED] = "expired",
    };
    *out = (struct vl_dlog_event){
        .ts_ms = ts_ms, .msg_id = e->msg->id,
        .rcpt = e->rcpt->addr, .domain = e->rcpt->domain,
        .event = e->purged ? "purged" : e->suppressed ? "suppressed"
                 : e->ambiguous && e->o.state == VL_RCPT_DEFERRED ? "ambiguous"
                                                                  : names[e->o.state],
        .mx = e->mx, .ip = e->ip, .code = e->o.code,
        .status = e->status, .reply = e->text, .attempt = e->rcpt->attempts + 1,
        .tls = e->tls, .local = e->local, .category = e->category,
        .campaign = campaign_of(e->msg), .tenant = tenant_of(e->msg),
    };
}

static void commit_log_outcome(struct committer *com, const struct ledger_outcome *e)
{
    struct vl_dlog_event ev;
    commit_event_of(e, (int64_t)vl_clock_wall_ms(), &ev);
    vl_dlog_add(com->dlog, &ev);
}

/* The delivery events of the slot's outcomes, for the outbox: the log line
 * each will get (without its newline). @return 0 or -ENOMEM (none set). */
static int commit_events_build(struct committer *com)
{
    struct commit_slot *c = &com->slot;
    int64_t now = (int64_t)vl_clock_wall_ms();
    _Static_assert(VL_DLOG_LINE_BYTES_MAX <= VL_QUEUE_EVENT_BYTES_MAX, "a log line fits an event");
    size_t off = 0;
    for (uint32_t i = 0; i < c->count; i++) {
        if (off + VL_DLOG_LINE_BYTES_MAX > c->ev_cap) {      /* grows x2: ~400 B a line */
            size_t ncap = c->ev_cap ? c->ev_cap * 2 : 64u * VL_DLOG_LINE_BYTES_MAX;
            char *nb = realloc(c->ev_buf, ncap);
            if (!nb)
                return -ENOMEM;
            c->ev_buf = nb;
            c->ev_cap = ncap;
        }
        struct vl_dlog_event ev;
        commit_event_of(&c->outcomes[i], now, &ev);
        size_t n = vl_dlog_format(&ev, c->ev_buf + off, VL_DLOG_LINE_BYTES_MAX);
        vl_assert(n >= 3 && c->ev_buf[off + n - 1] == '\n');
        c->ev_len[i] = n - 1;
        off += n;
    }
    off = 0;                        /* pointers last: the buffer may have moved */
    for (uint32_t i = 0; i < c->count; i++) {
        c->ev[i] = c->ev_buf + off;
        off += c->ev_len[i] + 1;
    }
    c->events_built = true;
    return 0;
}

static void commit_count(struct committer *com, const struct ledger_outcome *e)
{
    struct deliver_counters *c = com->ctr;
    if (!e->msg->return_path_len) {        /* a DSN's recipient: counted apart */
        if (c->met)                        /* but in flight per domain like any */
            met_domain_inflight(c->met, e->rcpt->domain, -1);
        _Atomic uint64_t *n = e->o.state == VL_RCPT_DELIVERED ? &c->dsn_delivered
                              : e->o.state == VL_RCPT_DEFERRED ? &c->dsn_deferred
                                                                : &c->dsn_failed;
        atomic_fetch_add_explicit(n, 1, memory_order_relaxed);
        return;
    }
    switch (e->o.state) {
    case VL_RCPT_DELIVERED: atomic_fetch_add_explicit(&c->delivered, 1, memory_order_relaxed); break;
    case VL_RCPT_DEFERRED:  atomic_fetch_add_explicit(&c->deferred, 1, memory_order_relaxed);  break;
    case VL_RCPT_BOUNCED:   atomic_fetch_add_explicit(&c->bounced, 1, memory_order_relaxed);   break;
    case VL_RCPT_EXPIRED:   atomic_fetch_add_explicit(&c->expired, 1, memory_order_relaxed);   break;
    default: vl_panic("bad outcome state %d", (int)e->o.state);
    }
    if (e->ambiguous)
        atomic_fetch_add_explicit(&c->ambiguous, 1, memory_order_relaxed);
    if (c->met) {
        static const enum met_outcome mo[VL_RCPT_STATE_COUNT] = {
            [VL_RCPT_DELIVERED] = MET_DELIVERED, [VL_RCPT_DEFERRED] = MET_DEFERRED,
            [VL_RCPT_BOUNCED] = MET_BOUNCED, [VL_RCPT_EXPIRED] = MET_EXPIRED,
        };
        met_outcome_committed(c->met, e->suppressed ? MET_SUPPRESSED : mo[e->o.state],
                              e->rcpt->domain, e->msg->return_path, campaign_of(e->msg), 1);
        met_outcome_tenant(c->met, e->suppressed ? MET_SUPPRESSED : mo[e->o.state],
                           tenant_of(e->msg));
        if ((e->o.state == VL_RCPT_BOUNCED || e->o.state == VL_RCPT_DEFERRED) && !e->suppressed
            && !e->purged)
            met_bounce(c->met, e->category, e->o.state == VL_RCPT_BOUNCED);   /* issue 16 */
        if (e->o.state != VL_RCPT_DELIVERED && !e->suppressed) {
            char why[MET_ERR_MAX];
            int w = snprintf(why, sizeof why, "%s %s%u %s ", vl_rcpt_state_name(e->o.state),
                             e->local ? "local " : "", (unsigned)e->o.code, e->status);
            if (w > 0 && (size_t)w < sizeof why) {    /* the reply text, cut to fit */
                size_t t = strnlen(e->text, sizeof why - 1 - (size_t)w);
                memcpy(why + w, e->text, t);
                why[(size_t)w + t] = '\0';
            }
            met_domain_error(c->met, e->rcpt->domain, why, vl_clock_wall_ms());
        }
    }
}

/* Hand the slot to the committer thread, its DSNs built first (again, if
 * an earlier try ran out of memory building them). */
static void commit_failed(struct committer *com, int rc);

static void commit_submit(struct committer *com)
{
    struct commit_slot *c = &com->slot;
    vl_assert(!com->busy && c->count > 0);
    if (!c->dsns_built && !c->dsns_dropped) {
        int rc = commit_dsns_build(com, c->outcomes, c->count);
        if (rc < 0) {
            commit_failed(com, rc);    /* back-pressure: keep the outcomes, try later */
            return;
        }
        c->dsns_built = true;
    }
    if (com->cfg->events_on && !c->events_built && commit_events_build(com) < 0) {
        commit_failed(com, -ENOMEM);   /* back-pressure, as for the DSNs */
        return;
    }
    c->extra_n = c->dsns_dropped ? 0 : c->dsn->count;
    com->busy = true;
    pthread_mutex_lock(&com->mu);
    com->todo = c;
    pthread_cond_signal(&com->cv);
    pthread_mutex_unlock(&com->mu);
}

void commit_start(struct committer *com)
{
    if (com->busy || com->gave_up)
        return;
    if (com->failing) {
        if (vl_clock_mono_ms() >= com->retry_at_ms)
            commit_submit(com);
        return;
    }
    if (!ledger_has_ready(com->ledger))
        return;
    struct commit_slot *c = &com->slot;
    c->count = ledger_take_ready(com->ledger, &c->outcomes);
    vl_assert(c->count > 0);
    c->dsns_built = c->dsns_dropped = false;
    c->events_built = false;
    vl_assert(c->dsn->count == 0);
    for (uint32_t i = 0; i < c->count; i++)
        c->outs[i] = c->outcomes[i].o;
    commit_submit(com);
}

int64_t commit_retry_wait_ms(const struct committer *com)
{
    if (!com->failing || com->gave_up)
        return -1;
    uint64_t now = vl_clock_mono_ms();
    return com->retry_at_ms > now ? (int64_t)(com->retry_at_ms - now) : 0;
}

uint32_t commit_pending(const struct committer *com)
{
    return com->slot.count;
}

/* Poison: the queue keeps refusing this commit as invalid or too big; the
 * outcomes are checked, so a DSN is to blame: commit without them, loudly. */
static void commit_drop_dsns(struct committer *com, int rc)
{
    struct commit_dsns *b = com->slot.dsn;
    for (size_t k = 0; k < b->count; k++)
        commit_dsn_failed(com, b->msg_id[k], 0, b->delayed[k], rc);
    commit_dsns_clear(b);
    com->slot.dsns_built = false;
    com->slot.dsns_dropped = true;
}

/* Shard thread: the slot's commit failed with @p rc. Keep it (outcomes,
 * leases, DSNs) and set its retry; or give up after cfg->commit_giveup_ms. */
static void commit_failed(struct committer *com, int rc)
{
    struct commit_slot *c = &com->slot;
    uint64_t now = vl_clock_mono_ms();
    vl_assert(rc < 0 && c->count > 0);
    if (!com->failing) {
        com->failing = true;
        com->fail_since_ms = now;
        com->retry_ms = COMMIT_RETRY_MS_MIN;
        com->fail_count = com->poison_count = 0;
    }
    com->fail_count++;
    com->err_last = rc;
    bool poison = rc == VL_E_INVALID || rc == VL_E_TOOBIG;
    com->poison_count = poison ? com->poison_count + 1 : 0;
    atomic_fetch_add_explicit(&com->ctr->commit_errors, 1, memory_order_relaxed);
    uint64_t failing_ms = now - com->fail_since_ms;
    vl_log(VL_LOG_ERROR, "evt=commit_failed shard=%u outcomes=%u dsns=%zu try=%u failing_ms=%llu "
           "retry_ms=%llu err=\"%s\"", com->shard_idx, c->count, c->extra_n, com->fail_count,
           (unsigned long long)failing_ms, (unsigned long long)com->retry_ms, vl_strerror(rc));
    if (poison && com->poison_count >= COMMIT_POISON_TRIES && c->dsns_built && c->dsn->count)
        commit_drop_dsns(com, rc);
    if (failing_ms >= com->cfg->commit_giveup_ms) {
        com->gave_up = true;
        vl_log(VL_LOG_ERROR, "evt=commit_gave_up shard=%u outcomes=%u failing_ms=%llu "
               "err=\"%s\"", com->shard_idx, c->count, (unsigned long long)failing_ms,
               vl_strerror(rc));
        return;
    }
    com->retry_at_ms = now + com->retry_ms;
    com->retry_ms = com->retry_ms * 2 > COMMIT_RETRY_MS_MAX ? COMMIT_RETRY_MS_MAX
                                                            : com->retry_ms * 2;
}

/* Shard thread: the committer is done with the slot: log, count, release;
 * or keep it for a retry. */
static void commit_finish(struct committer *com)
{
    struct commit_slot *c = &com->slot;
    vl_assert(com->busy);
    com->busy = false;
    if (c->rc < 0) {
        commit_failed(com, c->rc);
        return;
    }
    if (com->failing) {
        vl_log(VL_LOG_WARN, "evt=commit_recovered shard=%u outcomes=%u tries=%u failing_ms=%llu",
               com->shard_idx, c->count, com->fail_count + 1,
               (unsigned long long)(vl_clock_mono_ms() - com->fail_since_ms));
        com->failing = false;
    }
    atomic_fetch_add_explicit(&com->ctr->dsns, c->extra_n, memory_order_relaxed);
    commit_dsns_clear(c->dsn);
    for (uint32_t i = 0; i < c->count; i++) {
        const struct ledger_outcome *e = &c->outcomes[i];
        if (c->events_built)       /* issue 16: the event is the log line, formatted once */
            vl_dlog_add_line(com->dlog, c->ev[i], c->ev_len[i]);
        else
            commit_log_outcome(com, e);
        commit_count(com, e);
        /* Committed and seen here (the owner): leasable again when due, even
         * while others of its batch are still held (waiting for their DSN). */
        struct vl_queue_batch *b = e->lease->batch;
        vl_queue_batch_unlease(com->qs, b, (size_t)(e->rcpt - b->rcpts));
    }
    ledger_committed(com->ledger, c->outcomes, c->count);
    c->count = 0;
    c->dsns_built = c->dsns_dropped = false;
    vl_dlog_flush(com->dlog);
    ledger_leases_release(com->ledger, com->qs);
}

/* Committer thread, after a successful commit: permanent failures that mean
 * the mailbox does not exist (RFC 3463: 5.1.1 bad mailbox, 5.1.2 bad system,
 * 5.1.10 null MX; --suppress-codes sets the list) go on the suppression
 * list, globally, reason hard_bounce, in one write. A failure here is logged, never fatal: the
 * outcomes are committed already. */
static void commit_feed_suppression(struct committer *com, const struct commit_slot *c)
{
    const struct sup_policy *pol = sup_policy_get();
    const char *addrs[64];
    size_t n = 0;
    struct sup *sup = NULL;
    for (uint32_t i = 0; com->sup && i < c->count; i++) {
        const struct ledger_outcome *e = &c->outcomes[i];
        bool is_hard = sup_policy_feeds(pol, e->status);
        if (e->o.state != VL_RCPT_BOUNCED || e->suppressed || e->purged || !is_hard ||
            !e->msg->return_path_len)       /* a DSN's recipient is not a list member */
            continue;
        if (!sup && !(sup = deliver_sup_get(com->sup, true)))
            return;                          /* no list: logged once by supp.c */
        addrs[n++] = e->rcpt->addr;
        if (n == sizeof addrs / sizeof addrs[0]) {
            int rc = sup_add_many(sup, "", addrs, n, SUP_HARD_BOUNCE, vl_clock_wall_ms());
            if (rc < 0)
                vl_log(VL_LOG_WARN, "evt=suppress_feed_failed shard=%u rcpts=%zu err=\"%s\"",
                       com->shard_idx, n, vl_strerror(rc));
            n = 0;
        }
    }
    if (n > 0) {
        int rc = sup_add_many(sup, "", addrs, n, SUP_HARD_BOUNCE, vl_clock_wall_ms());
        if (rc < 0)
            vl_log(VL_LOG_WARN, "evt=suppress_feed_failed shard=%u rcpts=%zu err=\"%s\"",
                   com->shard_idx, n, vl_strerror(rc));
    }
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
        struct timespec m0, m1;
        clock_gettime(CLOCK_MONOTONIC, &m0);
        c->rc = vl_queue_complete_async_events(com->qs, c->outs, c->count,
                                               c->events_built ? c->ev : NULL, c->ev_len,
                                               c->dsn->m, c->extra_n, vl_clock_wall_ms());
        if (com->ctr->met) {
            clock_gettime(CLOCK_MONOTONIC, &m1);
            met_hist_add(&com->ctr->met->commit_us, met_commit_us_bounds,
                         (uint64_t)((m1.tv_sec - m0.tv_sec) * 1000000 +
                                    (m1.tv_nsec - m0.tv_nsec) / 1000));
            met_hist_add(&com->ctr->met->commit_batch, met_batch_bounds, c->count);
        }
        if (c->rc >= 0)
            commit_feed_suppression(com, c);
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
    com->slot.ev = calloc(LEDGER_OUTCOMES_MAX, sizeof *com->slot.ev);
    com->slot.ev_len = calloc(LEDGER_OUTCOMES_MAX, sizeof *com->slot.ev_len);
    if (!com->slot.outs || !com->slot.ev || !com->slot.ev_len
        || commit_dsns_alloc(&com->slot.dsn) < 0)
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
    free(com->slot.ev_buf);
    free(com->slot.ev);
    free(com->slot.ev_len);
    com->slot.ev = NULL;
    com->slot.ev_len = NULL;
    com->slot.ev_buf = NULL;
    com->slot.ev_cap = 0;
    commit_dsns_free(com->slot.dsn);
    com->slot.outs = NULL;
    com->slot.dsn = NULL;
}
