/*
 * shard.c - one delivery shard: its thread's set-up, loop and leasing (see
 * shard.h for the parts).
 *
 * Loop turn: lease ready recipients (if below the in-flight cap) and start
 * their delivery attempts; run the reactor once; hand every outcome gathered
 * and committable to the committer, which commits them in ONE queue
 * transaction (with the DSNs they imply) while the reactor keeps running;
 * their delivery-log lines are written once durable (commit.h).
 *
 * While a commit fails (commit.c retries it with backoff) the shard leases
 * nothing and starts no attempt: what waits is abandoned (its recipients
 * stay in the queue, unsent), running attempts finish and their outcomes
 * queue behind the failing commit. If the committer gives up, the shard
 * stops like on SIGTERM, tells the other shards to stop, and returns the
 * commit error; the outcomes never recorded are counted (uncommitted).
 *
 * Diagnostics: evt=reactor_init_failed, lease_failed, reactor_failed,
 * stop_timeout, shard_done.
 */
#include "shard.h"

#include "campaign.h"
#include "clock.h"
#include "dkim_rcpt.h"
#include "metrics.h"
#include "volley/error.h"

#include "suppress.h"
#include "supp.h"
#include "unsub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Recipients of @p b on the suppression list (checked again at delivery: one
 * may have been added since it was queued) get their outcome now, event
 * "suppressed", never sent; *@p out[i] marks them. One read transaction per
 * lease. @return 0, or < 0 (nothing marked; logged: the batch is sent). */
static int shard_suppressed(struct shard *sh, struct lease *ls, struct vl_queue_batch *b,
                            bool *out)
{
    struct sup *sup = sh->sup ? deliver_sup_get(sh->sup, false) : NULL;
    if (!sup)
        return 0;
    const char **addrs = malloc(b->count * sizeof *addrs);
    size_t *lens = malloc(b->count * sizeof *lens);
    struct sup_entry *e = malloc(b->count * sizeof *e);
    int rc = addrs && lens && e ? 0 : -ENOMEM;
    /* one sending domain per lookup: recipients come grouped by message */
    for (size_t i = 0, j; rc == 0 && i < b->count; i = j) {
        const struct vl_queue_msg *m = b->rcpts[i].msg;
        for (j = i; j < b->count && b->rcpts[j].msg == m; j++) {
            addrs[j - i] = b->rcpts[j].addr;
            lens[j - i] = b->rcpts[j].addr_len;
        }
        const char *at = strrchr(m->return_path, '@');
        rc = sup_lookup_many(sup, at ? at + 1 : NULL, addrs, lens, j - i, e + i);
    }
    for (size_t i = 0; rc == 0 && i < b->count; i++) {
        out[i] = e[i].reason != SUP_NONE;
        if (!out[i])
            continue;
        struct attempt *a = ledger_attempt_alloc(&sh->ledger, ls, b->rcpts[i].msg);
        if (!a)
            vl_panic("out of memory for a delivery attempt");
        a->rcpts[a->rcpt_count++] = &b->rcpts[i];
        char why[SUP_SCOPE_BYTES_MAX + 64];
        snprintf(why, sizeof why, "suppressed: %s (%s%s)", sup_reason_name(e[i].reason),
                 e[i].scope[0] ? "for " : "global", e[i].scope);
        ledger_suppressed(&sh->ledger, a, 0, why);
        ledger_attempt_done(&sh->ledger, a);
    }
    if (rc < 0)
        vl_log(VL_LOG_WARN, "evt=suppress_check_failed shard=%u err=\"%s\"", sh->idx,
               vl_strerror(rc));
    free(addrs);
    free(lens);
    free(e);
    return rc;
}

/* @p a (for @p r alone) gets the RFC 8058 header lines as its prefix. A
 * failure (no memory, a field too long for a token) sends it without them,
 * logged. */
static void shard_unsub_prefix(const struct unsub_conf *uc, const struct unsub_dom *ud,
                               struct attempt *a, const struct vl_queue_rcpt *r,
                               const struct dkim_signer *dkim)
{
    const char *camp;
    size_t camp_len = unsub_campaign_of(r->msg->body, r->msg->body_len, &camp);
    char *p = malloc(UNSUB_HEADERS_BYTES_MAX);
    int n = p ? unsub_headers(uc, ud, r->addr, camp, camp_len, p, UNSUB_HEADERS_BYTES_MAX)
              : -ENOMEM;
    if (n < 0) {
        free(p);
        vl_log(VL_LOG_WARN, "evt=unsub_header_failed rcpt=%s err=\"%s\"", r->addr,
               vl_strerror(n));
        return;
    }
    a->prefix = p;
    a->prefix_len = (uint32_t)n;
    /* --dkim: sign the recipient's lines with the stored headers (issue 13, RFC 8058 3.3) */
    int rc = deliver_dkim_prefix(dkim, r->msg, vl_clock_wall_ms() / 1000, &a->prefix,
                                 &a->prefix_len);
    if (rc < 0)
        vl_log(VL_LOG_WARN, "evt=dkim_rcpt_failed rcpt=%s err=\"%s\"", r->addr, vl_strerror(rc));
}

/* Lease what is due and start its attempts. */
/* Recipients per transaction for @p r's domain: a shaping policy that names
 * the domain may lower --max-rcpts (policies matched by MX suffix cannot: the
 * MX is not known yet when attempts are cut). */
static uint32_t shard_rcpts_max(struct shard *sh, const struct vl_queue_rcpt *r)
{
    uint32_t max = sh->cfg->rcpts_per_txn_max;
    char domain[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    if (!sh->cfg->shaping || r->domain_len >= sizeof domain)
        return max;
    memcpy(domain, r->domain, r->domain_len);
    domain[r->domain_len] = '\0';
    int p = vl_shaper_policy(sh->shaper, domain, NULL);
    if (p >= 0 && vl_shaper_conf(sh->shaper, p)->rcpts_per_txn &&
        vl_shaper_conf(sh->shaper, p)->rcpts_per_txn < max)
        max = vl_shaper_conf(sh->shaper, p)->rcpts_per_txn;
    return max;
}

/* With shaping, a lease passes over the recipients of saturated destinations
 * (route_saturated): at most this often, so that the scan costs little. */
#define SHARD_SHAPED_LEASE_MS 100u
/* ... and when it found little to lease (the destinations are saturated: each
 * holds about ten seconds of its rate in flight), this often: a scan reads up
 * to VL_QUEUE_LEASE_SKIPS_MAX queue records, which at 100 ms costs more CPU
 * than the deliveries it waits for (bench_shaping.py, 100,000 recipients). */
#define SHARD_SHAPED_LEASE_IDLE_MS 500u
#define SHARD_SHAPED_LEASE_FEW     64

/* Issue 16, back-pressure: each recipient leased adds one event to the
 * shard's outbox when its outcome commits, so lease at most what keeps
 * stored + in flight <= events.outbox_max. At the cap no new delivery starts
 * (nothing is dropped: the mail waits in the queue, the events in the
 * outbox) until the sinks take events and it falls below 3/4 of the cap.
 * @return how many recipients may be leased (SIZE_MAX: no cap). */
static size_t shard_outbox_room(struct shard *sh)
{
    uint64_t cap = sh->cfg->events.outbox_max, stored = 0;
    if (!sh->cfg->events_on || cap == 0
        || vl_queue_events_state(sh->qs, NULL, NULL, &stored, NULL) < 0)
        return SIZE_MAX;           /* no cap, or cannot tell: never stop delivery for it */
    uint64_t pending = stored + sh->ledger.inflight;
    bool full = sh->ev_full ? pending >= cap - cap / 4 : pending >= cap;
    if (full != sh->ev_full) {
        sh->ev_full = full;
        struct met_shard *m = sh->ctr->met;
        if (m) {
            atomic_store_explicit(&m->evt_outbox_full, full ? 1u : 0u, memory_order_relaxed);
            if (full)
                met_add(&m->evt_outbox_pauses, 1);
        }
        if (full)
            vl_log(VL_LOG_WARN, "evt=events_outbox_full shard=%u stored=%llu max=%llu "
                   "why=\"the event sinks are behind: no new deliveries until the outbox is "
                   "below 3/4 of events.outbox-max\"", sh->idx, (unsigned long long)stored,
                   (unsigned long long)cap);
        else
            vl_log(VL_LOG_INFO, "evt=events_outbox_resumed shard=%u stored=%llu max=%llu",
                   sh->idx, (unsigned long long)stored, (unsigned long long)cap);
    }
    return full ? 0 : (size_t)(cap - pending);
}

/* How often a shard whose outbox is full looks again. */
#define SHARD_OUTBOX_POLL_MS 100u

/* Held failures (ledger.h) wait out their DSN interval when the queue holds
 * recipients due before it ends (the same message's, deferred again soon,
 * may fail too and belong in the same DSN): the last lease's view of the
 * next due time. Unknown (the lease stopped early): not waited for. */
static bool shard_dsn_more_soon(const struct shard *sh)
{
    const struct ledger *l = &sh->ledger;
    if (l->dsn_waiting == 0)
        return false;
    uint64_t next = vl_queue_lease_next_due(sh->qs);
    if (next == 0 || next == UINT64_MAX)
        return false;
    uint64_t waited = vl_clock_mono_ms() - l->dsn_wait_since_ms;
    uint64_t left = waited < l->cfg->dsn_interval_ms ? l->cfg->dsn_interval_ms - waited : 0;
    return next <= vl_clock_wall_ms() + left;
}

static int shard_lease(struct shard *sh)
{
    struct ledger *l = &sh->ledger;
    uint64_t now = vl_clock_mono_ms();
    sh->lease_none = false;
    if (atomic_exchange_explicit(&sh->mail_new, false, memory_order_acquire))
        sh->next_lease_ms = 0;     /* new mail (shard_mail_notify): lease now, no poll wait */
    if (l->inflight >= VL_INFLIGHT_RCPTS_PER_SHARD_MAX / 2 || now < sh->next_lease_ms
        || sh->com.failing)
        return 0;                  /* full, not due, or commits failing: nothing new */
    size_t max = VL_INFLIGHT_RCPTS_PER_SHARD_MAX - l->inflight;
    if (max > VL_LEASE_RCPTS_MAX)
        max = VL_LEASE_RCPTS_MAX;
    /* Large bodies: lease fewer at a time, so a batch copies a bounded amount. */
    if (sh->body_bytes_per_rcpt && max > VL_LEASE_BYTES_MAX / sh->body_bytes_per_rcpt)
        max = VL_LEASE_BYTES_MAX / sh->body_bytes_per_rcpt;
    if (max < 16)
        max = 16;
    size_t room = shard_outbox_room(sh);          /* issue 16: events back-pressure */
    if (room == 0) {
        sh->next_lease_ms = now + SHARD_OUTBOX_POLL_MS;
        return 0;
    }
    if (max > room)
        max = room;
    struct vl_queue_batch *b = NULL;
    /* Shaping: leave what a saturated destination cannot send soon in the queue. */
    if (sh->cfg->shaping)
        route_lease_begin(&sh->route);
    int n = vl_queue_lease_skip(sh->qs, vl_clock_wall_ms(), max,
                                sh->cfg->shaping ? route_saturated : NULL, &sh->route, &b);
    if (n < 0)
        return n;
    if (sh->cfg->shaping)
        sh->next_lease_ms = now + (n < SHARD_SHAPED_LEASE_FEW ? SHARD_SHAPED_LEASE_IDLE_MS
                                                              : SHARD_SHAPED_LEASE_MS);
    if (n == 0) {
        sh->lease_none = true;
        if (!sh->cfg->shaping)          /* (shaped: all saturated, or nothing due) */
            sh->next_lease_ms = now + 50;   /* poll: other processes may enqueue */
        if (l->inflight == 0) {
            sh->idle_queue = true;
            if (sh->cfg->until_empty && !sh->draining) {
                sh->draining = true;
                route_drain(&sh->route);
            }
        }
        vl_queue_batch_release(sh->qs, b);
        return 0;
    }
    sh->idle_queue = false;
    uint64_t body_bytes = 0;
    for (size_t i = 0; i < b->msg_count; i++) {
        campaign_strip(&b->msgs[i]);   /* X-Volley-Campaign/-Tenant: never sent, ids kept */
        body_bytes += b->msgs[i].body_len;
    }
    sh->body_bytes_per_rcpt = body_bytes / (uint64_t)n + 1;
    struct lease *ls = ledger_lease_add(l, b, (uint32_t)n);
    if (!ls) {
        vl_queue_batch_release(sh->qs, b);
        return -ENOMEM;
    }
    atomic_fetch_add_explicit(&sh->ctr->leased, (uint64_t)n, memory_order_relaxed);
    bool *dropped = calloc(b->count, sizeof *dropped);
    if (dropped && shard_suppressed(sh, ls, b, dropped) < 0)
        memset(dropped, 0, b->count * sizeof *dropped);
    if (dropped)
        shard_admin_holds(sh, ls, b, dropped);  /* operator holds: suspend, bounce, purge */
    /* Recipients come grouped by domain, then message: cut attempts. A
     * message whose sender's domain has --unsub goes one recipient per
     * attempt, its List-Unsubscribe lines made here (the body is stored once). */
    const struct unsub_conf *uc = unsub_conf_get();
    struct attempt *a = NULL;
    uint32_t rcpts_max = sh->cfg->rcpts_per_txn_max;
    for (size_t i = 0; i < b->count; i++) {
        struct vl_queue_rcpt *r = &b->rcpts[i];
        if (dropped && dropped[i])
            continue;                  /* suppressed: its outcome is given */
        const struct unsub_dom *ud = unsub_conf_for(uc, r->msg->return_path,
                                                    r->msg->return_path_len);
        if (a && (a->msg != r->msg || a->rcpt_count == rcpts_max || ud
                  || a->rcpts[0]->domain_len != r->domain_len
                  || memcmp(a->rcpts[0]->domain, r->domain, r->domain_len) != 0)) {
            route_attempt(&sh->route, a);
            a = NULL;
        }
        if (!a) {
            a = ledger_attempt_alloc(l, ls, r->msg);
            if (!a)
                vl_panic("out of memory for a delivery attempt");
            if (ud)
                shard_unsub_prefix(uc, ud, a, r, sh->cfg->dkim_signer);
            rcpts_max = shard_rcpts_max(sh, r);
        }
        a->rcpts[a->rcpt_count++] = r;
    }
    if (a)
        route_attempt(&sh->route, a);
    free(dropped);
    return n;
}

static bool shard_done(struct shard *sh)
{
    if (sh->com.gave_up)           /* what is not recorded stays queued */
        return sh->route.sessions == 0 && !sh->com.busy;
    if (sh->ledger.inflight || sh->ledger.outcome_count || sh->route.sessions || sh->com.busy)
        return false;
    return sh->stopping || (sh->cfg->until_empty && sh->draining);
}

static int shard_wait_ms(struct shard *sh)
{
    if (ledger_has_ready(&sh->ledger) && !sh->com.busy && !sh->com.failing)
        return 0;
    int wait = 100;
    int64_t retry = commit_retry_wait_ms(&sh->com);
    if (retry >= 0 && retry < wait)
        wait = (int)retry;
    int64_t d = dns_next_timeout_ms(sh->route.dns);
    if (d >= 0 && d < wait)
        wait = (int)d;
    if (!sh->stopping && !sh->draining && !sh->com.failing
        && sh->ledger.inflight < VL_INFLIGHT_RCPTS_PER_SHARD_MAX / 2) {
        uint64_t now = vl_clock_mono_ms();
        int until = sh->next_lease_ms > now ? (int)(sh->next_lease_ms - now) : 0;
        if (until < wait)
            wait = until;
    }
    return wait;
}

/* Follow the committer: pause the routes while its commit fails (and drop
 * what waits: never sent, so leasable again later), resume once it is
 * through. */
/* Publish the shard's gauges and DNS figures to its metrics slot (relaxed
 * stores: a scrape reads them whenever it comes). */
static void shard_met_publish(struct shard *sh)
{
    struct met_shard *m = sh->ctr->met;
    if (!m)
        return;
    atomic_store_explicit(&m->conns_open, sh->route.sessions, memory_order_relaxed);
    atomic_store_explicit(&m->inflight, sh->ledger.inflight, memory_order_relaxed);
    if (sh->route.dns) {
        struct dns_stats ds;
        dns_stats_get(sh->route.dns, &ds);
        atomic_store_explicit(&m->dns_lookups, ds.lookups, memory_order_relaxed);
        atomic_store_explicit(&m->dns_hits, ds.cache_hits, memory_order_relaxed);
    }
}

static void shard_commit_state(struct shard *sh)
{
    if (sh->com.failing) {
        route_pause(&sh->route, true);
        route_abandon_pending(&sh->route);
        ledger_leases_release(&sh->ledger, sh->qs);
    } else if (sh->route.paused) {
        route_abandon_pending(&sh->route);  /* what came in since the last turn */
        route_pause(&sh->route, false);
    }
}

static int shard_loop(struct shard *sh)
{
    uint64_t stop_seen_ms = 0;
    while (!shard_done(sh)) {
        if (sh->live) {            /* live reload: a safe point, between turns */
            const struct shard_live *lv = __atomic_load_n(sh->live, __ATOMIC_ACQUIRE);
            if (lv->gen != sh->live_gen) {
                shard_reconf(sh, lv->cfg);
                sh->live_gen = lv->gen;
                __atomic_store_n(&sh->live_seen, lv->gen, __ATOMIC_RELEASE);
            }
        }
        if (!sh->stopping && atomic_load_explicit(sh->stop, memory_order_relaxed)) {
            sh->stopping = true;
            stop_seen_ms = vl_clock_mono_ms();
            route_stop(&sh->route);
        }
        if (!sh->stopping) {
            int rc = shard_lease(sh);
            if (rc < 0) {
                vl_log(VL_LOG_ERROR, "evt=lease_failed shard=%u err=\"%s\"", sh->idx,
                       vl_strerror(rc));
                sh->next_lease_ms = vl_clock_mono_ms() + 1000;
            }
        }
        /* Failures held for their message's DSN (ledger.h): due, stopping, or
         * nothing else leased and nothing due within the interval: let them
         * commit with the DSN. */
        ledger_dsn_release(&sh->ledger, sh->stopping || sh->com.gave_up
                           || (sh->lease_none && sh->ledger.inflight == sh->ledger.dsn_waiting
                               && !shard_dsn_more_soon(sh)));
        sh->turns++;
        int rc = rx_run_once(sh->rx, shard_wait_ms(sh));
        if (rc < 0 && rc != -EINTR) {
            vl_log(VL_LOG_ERROR, "evt=reactor_failed shard=%u err=\"%s\"", sh->idx,
                   vl_strerror(rc));
            return rc;
        }
        if (dns_busy(sh->route.dns))
            dns_process_timeouts(sh->route.dns, vl_clock_mono_ms());
        atomic_store_explicit(&sh->ctr->sessions_open, sh->route.sessions,
                              memory_order_relaxed);
        shard_met_publish(sh);
        commit_start(&sh->com);
        shard_commit_state(sh);
        if (sh->com.gave_up && !sh->stopping) {
            sh->stopping = true;   /* like SIGTERM, and the other shards stop too */
            stop_seen_ms = vl_clock_mono_ms();
            atomic_store_explicit(sh->stop, true, memory_order_relaxed);
            route_stop(&sh->route);
        }
        if (sh->stopping) {
            route_abandon_pending(&sh->route);     /* e.g. DNS answers that came in since */
            ledger_leases_release(&sh->ledger, sh->qs);
        }
        if (sh->stopping && vl_clock_mono_ms() - stop_seen_ms > 60000) {
            vl_log(VL_LOG_WARN, "evt=stop_timeout shard=%u inflight=%llu", sh->idx,
                   (unsigned long long)sh->ledger.inflight);
            return VL_E_TIMEOUT;   /* uncommitted leases are simply ready again */
        }
    }
    if (sh->com.gave_up)
        return sh->com.err_last;
    vl_log_at(VL_LOG_INFO, "evt=shard_done shard=%u turns=%llu commits=%llu commit_ms=%llu",
              sh->idx, (unsigned long long)sh->turns, (unsigned long long)sh->com.commits,
              (unsigned long long)(sh->com.commit_us / 1000u));
    return 0;
}

/* vl_queue_shard_notify_set() hook, on the enqueuing thread (e.g. the SMTP
 * intake's): flag new mail and wake this shard's reactor. */
static void shard_mail_notify(void *arg)
{
    struct shard *sh = arg;
    atomic_store_explicit(&sh->mail_new, true, memory_order_release);
    rx_wake(sh->rx);
}

int shard_run(struct shard *sh)
{
    struct rx_conf rc_conf = { .handles_max = VL_SESSIONS_PER_SHARD_MAX + VL_RX_HANDLES_SPARE,
                               .timers_max = 2 * VL_SESSIONS_PER_SHARD_MAX + VL_RX_HANDLES_SPARE,
                               .sq_entries = 1024,
                               .wake_cb = commit_wake_cb, .wake_user = &sh->com };
    int rc = rx_create(&sh->rx, &rc_conf);
    if (rc < 0) {
        vl_log(VL_LOG_ERROR, "evt=reactor_init_failed shard=%u err=\"%s\"%s", sh->idx,
               vl_strerror(rc), rc == -ENOSYS || rc == -EPERM
               ? " hint=\"io_uring is blocked (seccomp or kernel.io_uring_disabled)\"" : "");
        return rc;
    }
    sh->com = (struct committer){
        .shard_idx = sh->idx, .cfg = sh->cfg_base ? sh->cfg_base : sh->cfg, .qs = sh->qs,
        .rx = sh->rx,
        .ledger = &sh->ledger, .dlog = &sh->dlog, .ctr = sh->ctr, .sup = sh->sup,
    };
    rc = ledger_init(&sh->ledger, sh->cfg, sh->ctr);
    if (rc == 0)
        rc = commit_init(&sh->com);
    if (rc == 0)
        rc = route_init(&sh->route, sh->idx, sh->cfg, sh->rx, &sh->client_conf, &sh->ledger,
                        sh->ctr);
    sh->route.shaper = sh->shaper;
    if (rc == 0) {
        vl_queue_shard_notify_set(sh->qs, shard_mail_notify, sh);
        rc = shard_loop(sh);
        vl_queue_shard_notify_set(sh->qs, NULL, NULL);
    }
    uint64_t uncommitted = sh->ledger.outcome_count;
    if (sh->com.failing || sh->com.busy)
        uncommitted += commit_pending(&sh->com);
    atomic_store_explicit(&sh->ctr->uncommitted, uncommitted, memory_order_relaxed);
    atomic_store_explicit(&sh->ctr->sessions_open, 0, memory_order_relaxed);
    commit_fini(&sh->com);         /* waits for a commit in flight */
    vl_dlog_flush(&sh->dlog);
    if (rc == 0 && sh->dlog.err) {   /* delivered, committed, but not all logged */
        vl_log(VL_LOG_ERROR, "evt=dlog_lines_lost shard=%u lines=%llu err=\"%s\"", sh->idx,
               (unsigned long long)sh->dlog.lines_lost, vl_strerror(sh->dlog.err));
        rc = VL_E_DLOG;
    }
    route_fini(&sh->route);
    rx_destroy(sh->rx);
    ledger_fini(&sh->ledger, sh->qs);
    return rc;
}
