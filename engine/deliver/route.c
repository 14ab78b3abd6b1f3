/*
 * route.c - where a delivery attempt goes: its domain's MX set (static route
 * or DNS), the host (one MX address) it is queued on, and the pool of
 * sessions of that host (see route.h). Three files, each calling only the
 * ones below it (route_int.h): route.c (what sessions report, set-up, stop),
 * route_domain.c (domains, the resolver, dispatch) and route_host.c (hosts,
 * their sessions and shaping tokens); route_dnsfd.c polls c-ares sockets.
 *
 * Host failure (RFC 5321 5.1: try the next address): a host whose
 * connection fails before the greeting completes, or that says 421, while
 * no other session to it is healthy, is marked failing for a growing
 * interval; its queued attempts move to the next MX address of their
 * domain, and are deferred when none is left. While other sessions to it are
 * still connecting, the last of them to fail decides (no new ones are opened
 * meanwhile). A host that recovers (a session reaches READY) is used again at
 * once. Sessions report failures from reactor events (session.h), so a
 * failure never re-enters route_host_pump() from inside its own loop.
 *
 * Local caps make work wait, never fail (issue 9 item 7): an attempt costs
 * a delivery attempt (and a retry) only for what the destination did. When
 * the resolver refuses a lookup for a cap of ours (in-flight or waiter
 * limit, memory), the domain waits (DOMAIN_WAITING, in a FIFO) and asks again
 * when another lookup completes or the retry timer fires; when a host can
 * open no session for a cap of ours (sessions per shard, reactor handles,
 * file descriptors, memory: session_open() fails only for local reasons), it
 * is "starved" and pumped again when a session closes or the timer fires.
 * Neither counts an attempt, logs a deferral or schedules a retry.
 *
 * Shaping (issue 14; engine/policy/shaper.h): a domain gets its policy when
 * its MX answer arrives (by name, else the best MX's suffix); a host counts
 * its connections for the policy of its first attempt. Before an attempt
 * starts on a session the policy gives a message token, before a session
 * opens a connection slot and a source address (egress): when it says "wait",
 * the host is throttled (the route's list, one timer) and pumped again then;
 * sessions wait pooled meanwhile. A 421 or 4.7.x from a shaped host slows its
 * policy down instead of marking the host failing. The lease leaves in the
 * queue what a saturated policy could not send for ten seconds
 * (route_saturated).
 *
 * Invariant: an attempt is in exactly one place: a domain's waiting list,
 * a host's pending FIFO, a session, or done (its recipients have outcomes).
 */
#include "route_int.h"

#include "clock.h"
#include "log.h"
#include "metrics.h"

#include "volley/addr.h"
#include "volley/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_PUSHBACK_PAUSE_MS 250u   /* a shaped host said 421: its next connection after */

/* ---- shaping backlog (what the lease leaves in the queue) ------------------------ */

#define ROUTE_SHAPED_BACKLOG_S     10u   /* seconds of a policy's rate kept in flight */
#define ROUTE_SHAPED_BACKLOG_MIN   64u   /* ... at least this many recipients */

bool route_saturated(void *ctx, const char *domain, size_t len)
{
    struct route *r = ctx;
    if (!r->shaper)
        return false;
    struct domain *d = r->dom_tab[vl_domain_hash(domain, len) % ROUTE_DOM_BUCKETS];
    for (; d; d = d->hnext)
        if (strlen(d->name) == len && !memcmp(d->name, domain, len))
            break;
    if (!d || d->policy < 0)
        return false;
    double rate = vl_shaper_rate(r->shaper, d->policy);
    if (rate <= 0)
        return false;                  /* no message rate: nothing waits for long */
    double max = rate * ROUTE_SHAPED_BACKLOG_S;
    if (max < ROUTE_SHAPED_BACKLOG_MIN)
        max = ROUTE_SHAPED_BACKLOG_MIN;
    /* Fair share: a domain with nothing in flight may always start (none
     * starves behind a bigger one); one with some may hold its share of the
     * policy's backlog among the domains that have some. What this scan
     * already took counts (route_lease_begin): a scan takes up to
     * VL_LEASE_RCPTS_MAX, and without it a domain below its share would take
     * all of its recipients the scan meets - seconds or minutes of its rate
     * holding the shard's in-flight cap while the other destinations run dry. */
    if (d->scan_gen != r->scan_gen) {
        d->scan_gen = r->scan_gen;
        d->scan_taken = 0;
    }
    uint32_t have = d->shaped_inflight + d->scan_taken;
    if (have > 0) {
        uint32_t n = r->policy_domains[d->policy] + r->scan_domains[d->policy];
        if (have >= max / (n ? n : 1))
            return true;
        if (r->policy_inflight[d->policy] + r->scan_taken[d->policy] >= max)
            return true;
    }
    if (d->shaped_inflight == 0 && d->scan_taken == 0)
        r->scan_domains[d->policy]++;
    d->scan_taken++;
    r->scan_taken[d->policy]++;
    return false;
}

void route_lease_begin(struct route *r)
{
    if (++r->scan_gen == 0)
        r->scan_gen = 1;           /* 0: a domain's "never" */
    memset(r->scan_taken, 0, sizeof r->scan_taken);
    memset(r->scan_domains, 0, sizeof r->scan_domains);
}

void route_attempt(struct route *r, struct attempt *t)
{
    const struct vl_queue_rcpt *rcpt = t->rcpts[0];
    t->dom = route_domain_get(r, rcpt->domain, rcpt->domain_len);
    if (!t->dom) {
        route_attempt_fail(r, t, false, 451, "4.3.0", "too many destination domains in memory");
        return;
    }
    route_dispatch(r, t);
}

/* ---- what sessions report (struct session_owner) ----------------------- */

static void route_on_fate(void *ctx, struct attempt *t, uint32_t i, const struct smtp_fate *f)
{
    struct route *r = ctx;
    if (f->kind == SMTP_FATE_DEFERRED && !f->local && t->dom->policy >= 0)
        vl_shaper_feedback(r->shaper, t->dom->policy, f->code, f->status, f->text, f->text_len,
                           vl_clock_mono_ms());
    ledger_outcome(r->ledger, t, i, f, t->host ? t->host->ip : NULL);
}

static void route_on_attempt_done(void *ctx, struct attempt *t, bool by_close)
{
    struct route *r = ctx;
    if (!by_close) {
        atomic_fetch_add_explicit(&r->ctr->txns, 1, memory_order_relaxed);
        if (r->ctr->met)
            met_add(t->tls ? &r->ctr->met->txns_tls : &r->ctr->met->txns_plain, 1);
    }
    route_shaped_uncount(r, t);
    ledger_attempt_done(r->ledger, t);
}

static void route_on_host_failed(void *ctx, struct host *h, const struct smtp_fate *why)
{
    struct route *r = ctx;
    int p = route_host_policy(h);
    if (p >= 0 && !why->local &&
        vl_shaper_feedback(r->shaper, p, why->code, why->status, why->text, why->text_len,
                           vl_clock_mono_ms()) &&
        vl_shaper_conf(r->shaper, p)->adaptive) {
        /* A shaped destination pushing back: the policy slows down; the host
         * is not failing (its MX peers would get the same answer). A short
         * pause keeps a provider refusing at its banner from a reconnect loop. */
        route_host_throttle(r, h, ROUTE_PUSHBACK_PAUSE_MS);
        return;
    }
    if (route_host_mark_failed(r, h, why))
        route_host_pump(r, h);
}

/* Level may: @p h's TLS is broken. Remember it (--tls-fallback) so that the
 * next sessions, opened at once as this one closes, skip STARTTLS. */
static void route_on_tls_broken(void *ctx, struct host *h, const char *why)
{
    struct route *r = ctx;
    uint64_t now = vl_clock_mono_ms();
    bool known = h->tls_plain_until_ms > now;
    h->tls_plain_until_ms = now + (r->cfg->tls_fallback_ms ? r->cfg->tls_fallback_ms : 1);
    if (!known)
        vl_log(VL_LOG_WARN, "evt=tls_fallback shard=%u ip=%s action=plaintext for_ms=%llu "
               "err=\"%s\"", r->shard_idx, h->ip, (unsigned long long)r->cfg->tls_fallback_ms,
               why);
}

static enum session_next route_on_ready(void *ctx, struct session *s, struct host *h,
                                        bool first, uint32_t attempts_done,
                                        struct attempt **next)
{
    struct route *r = ctx;
    if (first) {
        vl_assert(h->opening > 0);
        h->opening--;
        h->healthy++;
        h->fail_code = 0;          /* got through: no failure pending */
    }
    h->fail_count = 0;
    h->fail_until_ms = 0;
    int p = route_host_policy(h), egress = session_egress(s);
    unsigned mpc = p >= 0 && vl_shaper_conf(r->shaper, p)->msgs_per_conn
                   ? vl_shaper_conf(r->shaper, p)->msgs_per_conn : r->cfg->msgs_per_conn_max;
    bool used_up = attempts_done >= mpc || vl_shaper_conn_surplus(r->shaper, h->policy, egress);
    if (!r->stopping && !r->paused && !used_up && h->pending) {
        uint64_t wait = 0;
        struct attempt *t = route_host_take(r, h, egress, &wait);
        if (t) {
            *next = t;
            (*next)->tls = session_tls(s);
            return SESSION_NEXT_BEGIN;
        }
        route_host_throttle(r, h, wait);   /* pooled below until the token */
    }
    if (r->stopping || used_up || (r->draining && !h->pending))
        return SESSION_NEXT_QUIT;
    session_pool_link(s, h->idle);
    h->idle = s;
    return SESSION_NEXT_IDLE;
}

static void route_on_unpooled(void *ctx, struct session *s, struct host *h)
{
    (void)ctx;
    struct session *prev = NULL, *cur = h->idle;
    while (cur && cur != s) {
        prev = cur;
        cur = session_pool_next(cur);
    }
    if (cur && prev)
        session_pool_link(prev, session_pool_next(s));
    else if (cur)
        h->idle = session_pool_next(s);
    session_pool_link(s, NULL);
}

static void route_on_closed(void *ctx, struct host *h, bool ever_ready, bool failed,
                            int egress)
{
    struct route *r = ctx;
    vl_shaper_conn_release(r->shaper, h->policy, egress);
    vl_assert(h->active > 0);
    h->active--;
    if (ever_ready) {
        vl_assert(h->healthy > 0);
        h->healthy--;
        if (!failed)
            h->fail_code = 0;      /* ended normally: the pool may grow again */
    } else {
        vl_assert(h->opening > 0);
        h->opening--;
    }
    vl_assert(r->sessions > 0);
    r->sessions--;
    route_host_pump(r, h);
    route_hosts_unstarve(r);       /* a session slot is free */
}

static struct session_owner route_session_owner(struct route *r)
{
    return (struct session_owner){
        .ctx = r, .fate = route_on_fate, .attempt_done = route_on_attempt_done,
        .host_failed = route_on_host_failed, .ready = route_on_ready,
        .tls_broken = route_on_tls_broken,
        .unpooled = route_on_unpooled, .closed = route_on_closed,
    };
}

/* ---- set-up ------------------------------------------------------------ */

int route_init(struct route *r, unsigned shard_idx, const struct vl_config *cfg, struct rx *rx,
               const struct smtp_client_conf *client_conf, struct ledger *ledger,
               struct deliver_counters *ctr)
{
    memset(r, 0, sizeof *r);
    r->dom_waiting_tail = &r->dom_waiting;
    r->shard_idx = shard_idx;
    r->cfg = cfg;
    r->rx = rx;
    r->ledger = ledger;
    r->ctr = ctr;
    r->sessions_max = cfg->sessions_max && cfg->sessions_max < VL_SESSIONS_PER_SHARD_MAX
                      ? cfg->sessions_max : VL_SESSIONS_PER_SHARD_MAX;
    r->sess = (struct session_env){
        .rx = rx, .shard_idx = shard_idx, .client_conf = client_conf,
        .connect_ms_timeout = cfg->connect_ms_timeout, .idle_ms_max = cfg->idle_ms_max,
        .owner = route_session_owner(r),
        .tls_level = cfg->tls_level, .tls_ca_file = cfg->tls_ca_file,
    };
    session_conf_levels(r->sess.conf, client_conf);
    r->sess.levels_ready = true;
    /* Egress addresses (issue 14): each with its EHLO name, bound before connect. */
    const struct vl_shaping *tab = cfg->shaping;
    for (unsigned i = 0; tab && i < tab->addr_count; i++) {
        struct session_egress *e = &r->sess.egress[i];
        memset(&e->addr, 0, sizeof e->addr);
        if (inet_pton(AF_INET, tab->addrs[i].ip, &e->addr.in4.sin_addr) == 1) {
            e->addr.in4.sin_family = AF_INET;
            e->addr_len = sizeof e->addr.in4;
        } else if (inet_pton(AF_INET6, tab->addrs[i].ip, &e->addr.in6.sin6_addr) == 1) {
            e->addr.in6.sin6_family = AF_INET6;
            e->addr_len = sizeof e->addr.in6;
        } else {
            vl_panic("egress address %s: config validation missed it", tab->addrs[i].ip);
        }
        session_conf_levels(e->conf, client_conf);
        for (unsigned l = 0; l < VL_TLS_LEVEL_COUNT; l++) {
            e->conf[l].helo_name = tab->addrs[i].ehlo;
            e->conf[l].helo_name_len = strlen(tab->addrs[i].ehlo);
        }
        r->sess.egress_count = i + 1;
    }
    r->dom_tab = calloc(ROUTE_DOM_BUCKETS, sizeof *r->dom_tab);
    r->host_tab = calloc(ROUTE_HOST_BUCKETS, sizeof *r->host_tab);
    if (!r->dom_tab || !r->host_tab)
        return -ENOMEM;
    const char *own[] = { cfg->ehlo_name };
    struct dns_config dc = {
        .servers = cfg->dns, .port_mx = cfg->mx_port, .ttl_s_min = DNS_TTL_MIN_DEFAULT,
        .inflight_max = cfg->dns_inflight_max,
        .own_hosts = own, .own_hosts_count = 1,
        .sock_state_cb = route_dns_sock, .sock_state_ctx = r,
    };
    const char *why = NULL;
    int rc = dns_create(&dc, &r->dns, &why);
    if (rc < 0) {
        vl_log(VL_LOG_ERROR, "evt=dns_init_failed shard=%u err=\"%s\" why=\"%s\"", shard_idx,
               vl_strerror(rc), why ? why : "");
        return rc;
    }
    for (unsigned i = 0; i < cfg->route_count; i++) {
        const struct vl_route *rt = &cfg->routes[i];
        rc = dns_route_put(r->dns, rt->domain, &rt->to, &why);   /* parsed once, by config */
        if (rc < 0) {
            vl_log(VL_LOG_ERROR, "evt=route_invalid domain=%s to=%s:%u why=\"%s\"", rt->domain,
                   rt->to.host, rt->to.port, why ? why : "");
            return rc;
        }
    }
    return 0;
}

void route_fini(struct route *r)
{
    if (r->retry_timer)
        rx_timer_cancel(r->rx, r->retry_timer);
    r->retry_timer = 0;
    if (r->starve_timer)
        rx_timer_cancel(r->rx, r->starve_timer);
    r->starve_timer = 0;
    if (r->throttle_timer)
        rx_timer_cancel(r->rx, r->throttle_timer);
    r->throttle_timer = 0;
    r->throttled = NULL;
    if (r->dns)
        dns_destroy(r->dns);
    r->dns = NULL;
    for (uint32_t b = 0; r->dom_tab && b < ROUTE_DOM_BUCKETS; b++) {
        while (r->dom_tab[b]) {
            struct domain *d = r->dom_tab[b];
            r->dom_tab[b] = d->hnext;
            free(d);
        }
    }
    for (uint32_t b = 0; r->host_tab && b < ROUTE_HOST_BUCKETS; b++) {
        while (r->host_tab[b]) {
            struct host *h = r->host_tab[b];
            r->host_tab[b] = h->hnext;
            free(h);
        }
    }
    free(r->dom_tab);
    free(r->host_tab);
    r->dom_tab = NULL;
    r->host_tab = NULL;
    session_env_fini(&r->sess);
}

static void route_quit_idle_all(struct route *r, bool keep_busy)
{
    for (uint32_t b = 0; b < ROUTE_HOST_BUCKETS; b++) {
        for (struct host *h = r->host_tab[b]; h; h = h->hnext) {
            while (h->idle && !(keep_busy && h->pending)) {   /* pending: waits for a token */
                struct session *s = h->idle;
                h->idle = session_pool_next(s);
                session_pool_link(s, NULL);
                session_quit_idle(s);
            }
        }
    }
}

void route_drain(struct route *r)
{
    r->draining = true;
    route_quit_idle_all(r, true);
}

void route_pause(struct route *r, bool on)
{
    r->paused = on;
}

void route_stop(struct route *r)
{
    r->stopping = true;
    route_quit_idle_all(r, false);
    route_abandon_pending(r);
}

/* Stop: attempts not started yet are abandoned (no attempt was made, so
 * no outcome: their recipients stay ready in the queue). */
void route_abandon_pending(struct route *r)
{
    for (uint32_t b = 0; b < ROUTE_HOST_BUCKETS; b++) {
        for (struct host *h = r->host_tab[b]; h; h = h->hnext) {
            while (h->pending) {
                struct attempt *t = h->pending;
                h->pending = t->next;
                route_shaped_uncount(r, t);
                ledger_attempt_abandon(r->ledger, t);
            }
            h->pending_tail = &h->pending;
            h->pending_count = 0;
        }
    }
    r->dom_waiting = NULL;         /* each one's attempts are abandoned below */
    r->dom_waiting_tail = &r->dom_waiting;
    for (uint32_t b = 0; b < ROUTE_DOM_BUCKETS; b++) {
        for (struct domain *d = r->dom_tab[b]; d; d = d->hnext) {
            /* A domain still resolving keeps its list: the DNS callback will
             * dispatch into hosts, whose pump opens nothing while stopping. */
            if (d->state == DOMAIN_RESOLVING)
                continue;
            if (d->state == DOMAIN_WAITING)
                d->state = DOMAIN_NEW;
            while (d->waiting) {
                struct attempt *t = d->waiting;
                d->waiting = t->next;
                route_shaped_uncount(r, t);
                ledger_attempt_abandon(r->ledger, t);
            }
            d->waiting_tail = &d->waiting;
        }
    }
}
