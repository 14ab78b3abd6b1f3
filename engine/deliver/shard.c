/*
 * shard.c - one delivery shard: a thread with its own reactor, queue shard,
 * resolver and pools (see shard.h for the flow).
 *
 * Loop turn: lease ready recipients (if below the in-flight cap) and start
 * their transactions; run the reactor once; commit every outcome gathered in
 * this turn in ONE queue transaction (with the DSNs it implies), then write
 * their delivery-log lines and release finished leases. Outcomes are logged
 * only after they are durable.
 *
 * Retry schedule (4xx, transient failures): attempt n waits
 * retry_base * 2^(n-1), capped at retry_max, with +-10% jitter derived from
 * the recipient id (no thundering herd, reproducible). A deferral whose next
 * attempt would fall after created + max_age expires instead (a DSN with the
 * last transient status).
 *
 * One DSN per message per attempt: outcomes are held back from commits until
 * their transaction is done (shard_txn_free), so the recipients of one
 * transaction that fail at RCPT and those that fail at the final dot land in
 * the same commit and share one DSN.
 *
 * Delay notices (--delay-warning W, off by default): a deferral is warned
 * about (a separate DSN, Action: delayed) when it is the first attempt at or
 * past created + W. "First" is decided without stored state: the previous
 * attempt was at least one retry delay ago (the delay that scheduled this
 * attempt, a pure function of (id, attempts)), so a warning goes out when
 * now - that delay < created + W <= now. Two successive deferrals cannot
 * both pass; the notice is enqueued in the deferral's commit (never twice).
 * `volley queue retry` (an early attempt) can make it repeat once. Known gap:
 * an attempt that runs late (after downtime) overestimates the previous
 * attempt by its lateness, so a W falling inside that lateness is skipped;
 * the lease does not carry the scheduled time that would make this exact.
 */
#include "shard.h"

#include "dsn.h"
#include "smtp_data.h"
#include "volley/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/** Delay before attempt @p attempts + 1 (attempts >= 1 made so far). */
uint64_t shard_retry_delay_ms(const struct vl_config *cfg, uint32_t attempts, uint64_t rcpt_id)
{
    uint64_t d = cfg->retry_ms_base;
    for (uint32_t i = 1; i < attempts && d < cfg->retry_ms_max; i++)
        d *= 2;
    if (d > cfg->retry_ms_max)
        d = cfg->retry_ms_max;
    /* +-10% jitter, a pure function of (id, attempt) */
    uint64_t x = (rcpt_id ^ ((uint64_t)attempts << 48)) * 0x9e3779b97f4a7c15ull;
    int64_t span = (int64_t)(d / 10u);
    int64_t j = span ? (int64_t)(x >> 11) % (2 * span + 1) - span : 0;
    return (uint64_t)((int64_t)d + j);
}

static struct txn *shard_txn_alloc(struct shard *sh)
{
    struct txn *t = sh->txn_free;
    if (t)
        sh->txn_free = t->next;
    else
        t = malloc(sizeof *t);
    if (t) {
        memset(t, 0, offsetof(struct txn, rcpts));
        sh->txns_live++;
    }
    return t;
}

/* @p t is done: its held outcomes may be committed now. The search runs
 * backwards, where a just-finished transaction's outcomes usually are. */
static void shard_txn_release_outcomes(struct shard *sh, struct txn *t)
{
    vl_assert(sh->outcomes_held >= t->fated);
    uint32_t left = t->fated;
    for (uint32_t i = sh->outcome_count; i-- > 0 && left > 0;) {
        if (sh->outcomes[i].txn == t) {
            sh->outcomes[i].txn = NULL;
            left--;
        }
    }
    vl_assert(left == 0);
    sh->outcomes_held -= t->fated;
    t->fated = 0;
}

void shard_txn_free(struct shard *sh, struct txn *t)
{
    vl_assert(sh->txns_live > 0);
    if (t->fated)
        shard_txn_release_outcomes(sh, t);
    sh->txns_live--;
    t->next = sh->txn_free;
    sh->txn_free = t;
}

void shard_txn_abandon(struct shard *sh, struct txn *t)
{
    vl_assert(t->fated == 0);      /* only transactions that never ran are abandoned */
    vl_assert(t->lease->open >= t->rcpt_count);
    t->lease->open -= t->rcpt_count;
    sh->inflight -= t->rcpt_count;
    atomic_fetch_sub_explicit(&sh->ctr->inflight, t->rcpt_count, memory_order_relaxed);
    shard_txn_free(sh, t);
}

/* Does this deferral (at @p now) owe a delay notice? See the file comment. */
static bool shard_delay_warn(const struct vl_config *cfg, const struct vl_queue_msg *m,
                             const struct vl_queue_rcpt *r, uint64_t now)
{
    if (cfg->delay_warning_ms == 0)
        return false;
    uint64_t at = m->created_ms + cfg->delay_warning_ms;
    uint64_t prev = r->attempts ? now - shard_retry_delay_ms(cfg, r->attempts, r->id)
                                : m->created_ms;
    return now >= at && prev < at;
}

void shard_outcome(struct shard *sh, struct txn *t, uint32_t i, const struct smtp_fate *f,
                   const char *mx, const char *ip)
{
    (void)mx;
    (void)ip;
    vl_assert(i < t->rcpt_count);
    vl_assert(sh->outcome_count < SHARD_OUTCOMES_MAX);
    const struct vl_queue_rcpt *r = t->rcpts[i];
    struct outcome_ext *e = &sh->outcomes[sh->outcome_count++];
    memset(&e->o, 0, sizeof e->o);
    e->txn = t;
    t->fated++;
    sh->outcomes_held++;
    vl_assert(t->fated <= t->rcpt_count);
    e->txn_msg = t->msg;
    e->rcpt = r;
    e->lease = t->lease;
    e->mx = t->mx_name;
    e->host = t->host;
    e->tls = t->tls;
    e->ambiguous = f->ambiguous;
    e->local = f->local;
    e->warn = false;
    snprintf(e->status, sizeof e->status, "%s", f->status[0] ? f->status : "4.0.0");
    size_t n = f->text ? f->text_len : 0;
    if (n > VL_DIAG_TEXT_BYTES_MAX)
        n = VL_DIAG_TEXT_BYTES_MAX;
    if (n)
        memcpy(e->text, f->text, n);
    e->text[n] = '\0';
    e->o.rcpt_id = r->id;
    e->o.code = f->code;
    e->o.status = e->status;
    e->o.text = e->text;
    e->o.text_len = n;
    e->o.ambiguous = f->ambiguous && f->kind == SMTP_FATE_DEFERRED;
    uint64_t now = vl_clock_wall_ms();
    switch (f->kind) {
    case SMTP_FATE_DELIVERED: e->o.state = VL_RCPT_DELIVERED; break;
    case SMTP_FATE_BOUNCED:   e->o.state = VL_RCPT_BOUNCED;   break;
    case SMTP_FATE_DEFERRED: {
        uint64_t next = now + shard_retry_delay_ms(sh->cfg, r->attempts + 1, r->id);
        if (next > t->msg->created_ms + sh->cfg->age_ms_max) {
            e->o.state = VL_RCPT_EXPIRED;
        } else {
            e->o.state = VL_RCPT_DEFERRED;
            e->o.next_ms = next;
            e->warn = shard_delay_warn(sh->cfg, t->msg, r, now);
        }
        break;
    }
    default:
        vl_panic("recipient without a fate kind");
    }
}

/* ---- commit: outcomes + DSNs in one queue transaction, then the log ---- */

struct shard_dsn_build {
    struct vl_queue_new_msg m[VL_DSNS_PER_COMMIT_MAX];
    char *bodies[VL_DSNS_PER_COMMIT_MAX];
    const char *rcpt[VL_DSNS_PER_COMMIT_MAX];
    size_t count;
};

static bool shard_outcome_failed(const struct outcome_ext *e)
{
    return e->o.state == VL_RCPT_BOUNCED || e->o.state == VL_RCPT_EXPIRED;
}

/* Reported in a DSN of this kind: failed, or (delayed) owed a delay notice. */
static bool shard_outcome_reported(const struct outcome_ext *e, bool delayed)
{
    return delayed ? e->warn : shard_outcome_failed(e);
}

/* One DSN per message covering its recipients that failed in this commit
 * (or, @p delayed, one delay notice for those owed one). */
static void shard_dsn_for_msg(struct shard *sh, struct shard_dsn_build *b,
                              const struct outcome_ext *outcomes, uint32_t count, size_t first,
                              bool delayed)
{
    const struct vl_queue_msg *m = outcomes[first].txn_msg;
    if (m->return_path_len == 0 || b->count == VL_DSNS_PER_COMMIT_MAX)
        return;                    /* null reverse-path: never a DSN (no loops) */
    struct dsn_rcpt rs[VL_SMTP_RCPTS_PER_TXN_MAX];
    unsigned n = 0;
    uint64_t now = vl_clock_wall_ms();
    for (size_t i = first; i < count && n < VL_SMTP_RCPTS_PER_TXN_MAX; i++) {
        const struct outcome_ext *e = &outcomes[i];
        if (e->txn_msg != m || !shard_outcome_reported(e, delayed))
            continue;
        bool expired = e->o.state == VL_RCPT_EXPIRED;
        rs[n++] = (struct dsn_rcpt){
            .addr = e->rcpt->addr, .action = delayed ? DSN_ACTION_DELAYED : DSN_ACTION_FAILED,
            .retry_until_ms = delayed ? (int64_t)(m->created_ms + sh->cfg->age_ms_max) : 0,
            .status = expired && e->status[0] != '5' ? (e->status[0] == '4' ? e->status : "4.4.7")
                                                     : e->status,
            .remote_mta = e->local ? NULL : e->mx, .code = e->local ? 0 : e->o.code,
            .diag = e->text[0] ? e->text : (expired ? "queue lifetime expired" : NULL),
            .last_attempt_ms = (int64_t)now,
        };
    }
    char postmaster[300];
    snprintf(postmaster, sizeof postmaster, "postmaster@%s", sh->cfg->ehlo_name);
    struct dsn_input in = {
        .reporting_mta = sh->cfg->ehlo_name, .postmaster = postmaster,
        .return_path = m->return_path, .arrival_ms = (int64_t)m->created_ms,
        .now_ms = (int64_t)now, .orig = (const char *)m->body, .orig_len = m->body_len,
        .rcpts = rs, .rcpt_count = n, .unique = (sh->dsn_seq++ << 8) | sh->idx,
    };
    size_t cap = dsn_size_max(&in);
    char *body = malloc(cap);
    if (!body)
        return;
    long len = dsn_build(&in, body, cap);
    if (len < 0) {
        free(body);
        return;
    }
    struct smtp_data_info info;
    smtp_data_measure(body, (size_t)len, &info);
    size_t k = b->count++;
    b->bodies[k] = body;
    b->rcpt[k] = m->return_path;
    b->m[k] = (struct vl_queue_new_msg){
        .return_path = "", .return_path_len = 0, .body = body, .body_len = (size_t)len,
        .flags = info.is_8bit ? VL_QUEUE_MSG_8BIT : 0, .rcpts = &b->rcpt[k], .rcpt_count = 1,
    };
}

static void shard_log_outcome(struct shard *sh, const struct outcome_ext *e)
{
    static const char *const names[VL_RCPT_STATE_COUNT] = {
        [VL_RCPT_DELIVERED] = "delivered", [VL_RCPT_DEFERRED] = "deferred",
        [VL_RCPT_BOUNCED] = "bounced", [VL_RCPT_EXPIRED] = "expired",
    };
    struct vl_dlog_event ev = {
        .ts_ms = (int64_t)vl_clock_wall_ms(), .msg_id = e->txn_msg->id,
        .rcpt = e->rcpt->addr, .domain = e->rcpt->domain,
        .event = e->ambiguous && e->o.state == VL_RCPT_DEFERRED ? "ambiguous"
                                                                 : names[e->o.state],
        .mx = e->mx, .ip = e->host ? e->host->ip : NULL, .code = e->o.code,
        .status = e->status, .reply = e->text, .attempt = e->rcpt->attempts + 1,
        .tls = e->tls,
    };
    vl_dlog_add(&sh->dlog, &ev);
}

static void shard_count(struct shard *sh, const struct outcome_ext *e)
{
    struct shard_counters *c = sh->ctr;
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

static void shard_release_leases(struct shard *sh)
{
    struct lease **pp = &sh->leases;
    while (*pp) {
        struct lease *l = *pp;
        if (l->open) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        vl_queue_batch_release(sh->qs, l->batch);
        free(l);
    }
}

/* Shard thread: hand what accumulated to the committer if it is idle. */
static void shard_commit_start(struct shard *sh)
{
    struct shard_committer *com = &sh->com;
    if (sh->outcome_count == sh->outcomes_held || com->busy)
        return;
    struct commit_slot *c = &com->slot;
    /* Ready outcomes stay (compacted) in this buffer, which goes to the
     * committer; held ones move to the spare, which accumulates next. */
    uint32_t ready = 0, held = 0;
    for (uint32_t i = 0; i < sh->outcome_count; i++) {
        struct outcome_ext *e = &sh->outcomes[i];
        if (e->txn)
            sh->outcomes_spare[held++] = *e;
        else if (ready++ != i)
            sh->outcomes[ready - 1] = *e;
    }
    vl_assert(held == sh->outcomes_held && ready > 0);
    c->outcomes = sh->outcomes;
    c->count = ready;
    sh->outcomes = sh->outcomes_spare;
    sh->outcomes_spare = c->outcomes;
    sh->outcome_count = held;
    struct shard_dsn_build *dsn = c->dsn;
    dsn->count = 0;
    for (uint32_t i = 0; i < c->count; i++) {
        c->outs[i] = c->outcomes[i].o;
        for (int kind = 0; kind < 2; kind++) {     /* failures, then delay notices */
            bool delayed = kind == 1;
            if (!shard_outcome_reported(&c->outcomes[i], delayed))
                continue;
            bool first = true;     /* first such outcome of its message in this commit */
            for (uint32_t k = 0; k < i && first; k++)
                first = !(c->outcomes[k].txn_msg == c->outcomes[i].txn_msg
                          && shard_outcome_reported(&c->outcomes[k], delayed));
            if (first)
                shard_dsn_for_msg(sh, dsn, c->outcomes, c->count, i, delayed);
        }
    }
    com->busy = true;
    pthread_mutex_lock(&com->mu);
    com->todo = c;
    pthread_cond_signal(&com->cv);
    pthread_mutex_unlock(&com->mu);
}

/* Shard thread: the committer is done with the slot: log, count, release. */
static void shard_commit_finish(struct shard *sh)
{
    struct commit_slot *c = &sh->com.slot;
    int rc = c->rc;
    for (size_t k = 0; k < c->dsn->count; k++)
        free(c->dsn->bodies[k]);
    if (rc < 0) {
        /* Not durable: log nothing, keep nothing. The leases are dropped, so
         * these recipients are leased again (at-least-once). */
        atomic_fetch_add_explicit(&sh->ctr->commit_errors, 1, memory_order_relaxed);
        vl_log(VL_LOG_ERROR, "evt=commit_failed shard=%u outcomes=%u err=\"%s\"", sh->idx,
               c->count, vl_strerror(rc));
    } else {
        atomic_fetch_add_explicit(&sh->ctr->dsns, c->dsn->count, memory_order_relaxed);
    }
    for (uint32_t i = 0; i < c->count; i++) {
        struct outcome_ext *e = &c->outcomes[i];
        if (rc >= 0) {
            shard_log_outcome(sh, e);
            shard_count(sh, e);
        }
        vl_assert(e->lease->open > 0);
        e->lease->open--;
    }
    atomic_fetch_sub_explicit(&sh->ctr->inflight, c->count, memory_order_relaxed);
    sh->inflight -= c->count;
    c->count = 0;
    sh->com.busy = false;
    vl_dlog_flush(&sh->dlog);
    shard_release_leases(sh);
}

void shard_commit_wake_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct shard *sh = ev->user;
    pthread_mutex_lock(&sh->com.mu);
    bool done = sh->com.done;
    sh->com.done = false;
    pthread_mutex_unlock(&sh->com.mu);
    if (done) {
        shard_commit_finish(sh);
        shard_commit_start(sh);
    }
}

static void *shard_committer_main(void *arg)
{
    struct shard *sh = arg;
    struct shard_committer *com = &sh->com;
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
        c->rc = vl_queue_complete_async(sh->qs, c->outs, c->count, c->dsn->m, c->dsn->count,
                                        vl_clock_wall_ms());
        pthread_mutex_lock(&com->mu);
        sh->commits++;
        sh->commit_us += (vl_clock_mono_ms() - t0) * 1000u;
        com->done = true;
        pthread_mutex_unlock(&com->mu);
        rx_wake(sh->rx);
        pthread_mutex_lock(&com->mu);
    }
    pthread_mutex_unlock(&com->mu);
    return NULL;
}

int shard_commit_init(struct shard *sh)
{
    struct shard_committer *com = &sh->com;
    sh->outcomes = calloc(SHARD_OUTCOMES_MAX, sizeof *sh->outcomes);
    sh->outcomes_spare = calloc(SHARD_OUTCOMES_MAX, sizeof *sh->outcomes_spare);
    com->slot.outs = calloc(SHARD_OUTCOMES_MAX, sizeof *com->slot.outs);
    com->slot.dsn = calloc(1, sizeof *com->slot.dsn);
    if (!sh->outcomes || !sh->outcomes_spare || !com->slot.outs || !com->slot.dsn)
        return -ENOMEM;
    pthread_mutex_init(&com->mu, NULL);
    pthread_cond_init(&com->cv, NULL);
    int rc = pthread_create(&com->thread, NULL, shard_committer_main, sh);
    if (rc != 0)
        return -rc;
    com->started = true;
    return 0;
}

void shard_commit_fini(struct shard *sh)
{
    struct shard_committer *com = &sh->com;
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
    free(sh->outcomes);
    free(sh->outcomes_spare);
    free(com->slot.outs);
    free(com->slot.dsn);
    sh->outcomes = sh->outcomes_spare = NULL;
}

/* ---- leasing ------------------------------------------------------------ */

/* Lease what is due and start its transactions. */
static int shard_lease(struct shard *sh)
{
    uint64_t now = vl_clock_mono_ms();
    if (sh->inflight >= VL_INFLIGHT_RCPTS_PER_SHARD_MAX / 2 || now < sh->next_lease_ms)
        return 0;
    size_t max = VL_INFLIGHT_RCPTS_PER_SHARD_MAX - sh->inflight;
    if (max > VL_LEASE_RCPTS_MAX)
        max = VL_LEASE_RCPTS_MAX;
    /* Large bodies: lease fewer at a time, so a batch copies a bounded amount. */
    if (sh->body_bytes_per_rcpt && max > VL_LEASE_BYTES_MAX / sh->body_bytes_per_rcpt)
        max = VL_LEASE_BYTES_MAX / sh->body_bytes_per_rcpt;
    if (max < 16)
        max = 16;
    struct vl_queue_batch *b = NULL;
    int n = vl_queue_lease(sh->qs, vl_clock_wall_ms(), max, &b);
    if (n < 0)
        return n;
    if (n == 0) {
        sh->next_lease_ms = now + 50;   /* poll: other processes may enqueue */
        if (sh->inflight == 0) {
            sh->idle_queue = true;
            if (sh->cfg->until_empty && !sh->draining) {
                sh->draining = true;
                route_quit_idle_all(sh);
            }
        }
        vl_queue_batch_release(sh->qs, b);
        return 0;
    }
    sh->idle_queue = false;
    uint64_t body_bytes = 0;
    for (size_t i = 0; i < b->msg_count; i++)
        body_bytes += b->msgs[i].body_len;
    sh->body_bytes_per_rcpt = body_bytes / (uint64_t)n + 1;
    struct lease *l = malloc(sizeof *l);
    if (!l) {
        vl_queue_batch_release(sh->qs, b);
        return -ENOMEM;
    }
    l->batch = b;
    l->open = (uint32_t)n;
    l->next = sh->leases;
    sh->leases = l;
    sh->inflight += (uint64_t)n;
    atomic_fetch_add_explicit(&sh->ctr->inflight, (uint64_t)n, memory_order_relaxed);
    atomic_fetch_add_explicit(&sh->ctr->leased, (uint64_t)n, memory_order_relaxed);
    /* Recipients come grouped by domain, then message: cut transactions. */
    struct txn *t = NULL;
    for (size_t i = 0; i < b->count; i++) {
        struct vl_queue_rcpt *r = &b->rcpts[i];
        if (t && (t->msg != r->msg || t->rcpt_count == sh->cfg->rcpts_per_txn_max
                  || t->rcpts[0]->domain_len != r->domain_len
                  || memcmp(t->rcpts[0]->domain, r->domain, r->domain_len) != 0)) {
            route_txn(sh, t);
            t = NULL;
        }
        if (!t) {
            t = shard_txn_alloc(sh);
            if (!t)
                vl_panic("out of memory for a transaction");
            t->lease = l;
            t->msg = r->msg;
        }
        t->rcpts[t->rcpt_count++] = r;
    }
    if (t)
        route_txn(sh, t);
    return n;
}

/* ---- the loop ----------------------------------------------------------- */

static bool shard_done(struct shard *sh)
{
    if (sh->inflight || sh->outcome_count || sh->sessions || sh->com.busy)
        return false;
    return sh->stopping || (sh->cfg->until_empty && sh->draining);
}

static int shard_wait_ms(struct shard *sh)
{
    if (sh->outcome_count > sh->outcomes_held && !sh->com.busy)
        return 0;
    int wait = 100;
    int64_t d = dns_next_timeout_ms(sh->dns);
    if (d >= 0 && d < wait)
        wait = (int)d;
    if (!sh->stopping && !sh->draining && sh->inflight < VL_INFLIGHT_RCPTS_PER_SHARD_MAX / 2) {
        uint64_t now = vl_clock_mono_ms();
        int until = sh->next_lease_ms > now ? (int)(sh->next_lease_ms - now) : 0;
        if (until < wait)
            wait = until;
    }
    return wait;
}

int shard_loop(struct shard *sh)
{
    uint64_t stop_seen_ms = 0;
    while (!shard_done(sh)) {
        if (!sh->stopping && atomic_load_explicit(sh->stop, memory_order_relaxed)) {
            sh->stopping = true;
            stop_seen_ms = vl_clock_mono_ms();
            route_quit_idle_all(sh);
            route_abandon_pending(sh);
        }
        if (!sh->stopping) {
            int rc = shard_lease(sh);
            if (rc < 0) {
                vl_log(VL_LOG_ERROR, "evt=lease_failed shard=%u err=\"%s\"", sh->idx,
                       vl_strerror(rc));
                sh->next_lease_ms = vl_clock_mono_ms() + 1000;
            }
        }
        sh->turns++;
        int rc = rx_run_once(sh->rx, shard_wait_ms(sh));
        if (rc < 0 && rc != -EINTR) {
            vl_log(VL_LOG_ERROR, "evt=reactor_failed shard=%u err=\"%s\"", sh->idx,
                   vl_strerror(rc));
            return rc;
        }
        if (dns_busy(sh->dns))
            dns_process_timeouts(sh->dns, vl_clock_mono_ms());
        shard_commit_start(sh);
        if (sh->stopping) {
            route_abandon_pending(sh);     /* e.g. DNS answers that came in since */
            shard_release_leases(sh);
        }
        if (sh->stopping && vl_clock_mono_ms() - stop_seen_ms > 60000) {
            vl_log(VL_LOG_WARN, "evt=stop_timeout shard=%u inflight=%llu", sh->idx,
                   (unsigned long long)sh->inflight);
            return VL_E_TIMEOUT;   /* uncommitted leases are simply ready again */
        }
    }
    vl_log_at(VL_LOG_INFO, "evt=shard_done shard=%u turns=%llu commits=%llu commit_ms=%llu",
              sh->idx, (unsigned long long)sh->turns, (unsigned long long)sh->commits,
              (unsigned long long)(sh->commit_us / 1000u));
    return 0;
}
