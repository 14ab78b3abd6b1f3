/*
 * route_host.c - a route's hosts (one MX address each): attempts queued on
 * them, opening sessions under the shaping policy's connection and message
 * tokens, failing hosts (RFC 5321 5.1: the next MX address), hosts starved
 * by a local cap and hosts throttled by their policy, and the shaping
 * backlog each attempt counts for. The rules are in route.c's header comment.
 * Calls nothing in route.c or route_domain.c.
 *
 * Thread: the owning shard's only.
 */
#include "route_int.h"
#include "route_admin.h"

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

#define ROUTE_HOST_FAIL_MS_MAX (10u * 60u * 1000u)
#define ROUTE_STARVE_RETRY_MS    50u   /* a local cap: asked again after, at the latest */

static uint64_t route_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

/* ---- waiting for local caps (issue 9 item 7) ----------------------------- */

static void route_starve_cb(struct rx *rx, const struct rx_event *ev);
static void route_shaped_count(struct route *r, struct attempt *t);

/* While a host waits for a local cap, a timer asks again: the session close
 * that usually frees the cap may not come. */
static void route_starve_arm(struct route *r)
{
    if (r->starve_timer || !r->starved)
        return;
    if (rx_timer_add(r->rx, ROUTE_STARVE_RETRY_MS, route_starve_cb, r, &r->starve_timer) != 0)
        r->starve_timer = 0;       /* timers full: the next close asks again */
}

static void route_starve_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct route *r = ev->user;
    if (ev->h != r->starve_timer)
        return;                    /* cancelled too late */
    r->starve_timer = 0;
    route_hosts_unstarve(r);
    route_starve_arm(r);
}

/* @p h has attempts and could open no session for a local cap (@p err). */
static void route_host_starve(struct route *r, struct host *h, int err)
{
    vl_assert(h->pending != NULL && h->active == 0);   /* else its own sessions pump it */
    if (!h->starved) {
        vl_log_at(VL_LOG_INFO, "evt=local_cap_wait shard=%u ip=%s sessions=%u err=\"%s\"",
                  r->shard_idx, h->ip, r->sessions, vl_strerror(err));
        h->starved = true;
        h->snext = r->starved;
        r->starved = h;
    }
    route_starve_arm(r);
}

/* ---- hosts ------------------------------------------------------------- */

struct host *route_host_get(struct route *r, const union vl_sockaddr *a)
{
    socklen_t len = a->sa.sa_family == AF_INET6 ? sizeof a->in6 : sizeof a->in4;
    uint64_t hv = a->sa.sa_family == AF_INET6
        ? route_hash(&a->in6.sin6_addr, 16) ^ a->in6.sin6_port
        : route_hash(&a->in4.sin_addr, 4) ^ a->in4.sin_port;
    struct host **b = &r->host_tab[hv % ROUTE_HOST_BUCKETS];
    for (struct host *h = *b; h; h = h->hnext) {
        if (h->addr.sa.sa_family != a->sa.sa_family)
            continue;
        if (a->sa.sa_family == AF_INET6
            ? (!memcmp(&h->addr.in6.sin6_addr, &a->in6.sin6_addr, 16)
               && h->addr.in6.sin6_port == a->in6.sin6_port)
            : (h->addr.in4.sin_addr.s_addr == a->in4.sin_addr.s_addr
               && h->addr.in4.sin_port == a->in4.sin_port))
            return h;
    }
    if (r->host_count >= VL_HOSTS_PER_SHARD_MAX)
        return NULL;
    struct host *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    memcpy(&h->addr, a, len);
    h->addr_len = len;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->sa.sa_family == AF_INET6)
        inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof ip);
    else
        inet_ntop(AF_INET, &a->in4.sin_addr, ip, sizeof ip);
    snprintf(h->ip, sizeof h->ip, "%s", ip);
    h->pending_tail = &h->pending;
    h->policy = -1;
    h->hnext = *b;
    *b = h;
    r->host_count++;
    return h;
}

struct attempt *route_host_pop(struct host *h)
{
    struct attempt *t = h->pending;
    vl_assert(t && h->pending_count > 0);
    h->pending = t->next;
    if (!h->pending)
        h->pending_tail = &h->pending;
    h->pending_count--;
    t->next = NULL;
    return t;
}

/* Fair share (issue 14): how far route_host_take() looks past the head of a
 * host's queue for another domain, and how many domains it asks. */
#define ROUTE_TAKE_SCAN  4096u
#define ROUTE_TAKE_DOMAINS 64u

uint64_t route_domain_flow(const struct domain *d)
{
    return vl_domain_hash(d->name, strlen(d->name)) | 1u;
}

struct attempt *route_host_take(struct route *r, struct host *h, int egress, uint64_t *wait_ms)
{
    uint64_t now = vl_clock_mono_ms(), best = UINT64_MAX;
    const struct domain *tried[ROUTE_TAKE_DOMAINS];
    unsigned ntried = 0, scanned = 0;
    for (struct attempt **pp = &h->pending, *t; (t = *pp) != NULL && scanned < ROUTE_TAKE_SCAN;
         pp = &t->next, scanned++) {
        bool seen = false;
        for (unsigned i = 0; i < ntried && !seen; i++)
            seen = tried[i] == t->dom;
        if (seen)
            continue;
        uint64_t w = vl_shaper_msg_take_flow(r->shaper, t->dom->policy, egress,
                                             route_domain_flow(t->dom), now);
        if (w == 0) {
            vl_assert(h->pending_count > 0);
            *pp = t->next;
            if (!*pp)
                h->pending_tail = pp;
            h->pending_count--;
            t->next = NULL;
            return t;
        }
        if (w < best)
            best = w;
        if (ntried == ROUTE_TAKE_DOMAINS)
            break;
        tried[ntried++] = t->dom;
    }
    *wait_ms = best == UINT64_MAX ? 1 : best;
    return NULL;
}

/* Record @p why as @p h's last failure; unless another session may still get
 * through, mark it failing for a growing interval. @return true if it was
 * marked now (its queue must move on: route_host_pump()). */
bool route_host_mark_failed(struct route *r, struct host *h, const struct smtp_fate *why)
{
    h->fail_code = why->code ? why->code : 451;
    snprintf(h->fail_status, sizeof h->fail_status, "%s", why->status[0] ? why->status : "4.4.1");
    snprintf(h->fail_text, sizeof h->fail_text, "%.*s", (int)why->text_len,
             why->text ? why->text : "");
    if (h->healthy > 0)
        return false;              /* other sessions to it work: a passing failure */
    if (h->opening > 1)
        return false;              /* others still connecting may get through (a server
                                      with a connection cap): the last one decides */
    if (h->fail_until_ms > vl_clock_mono_ms())
        return false;              /* already failing: one step per episode */
    uint64_t ms = r->cfg->host_fail_ms_min << (h->fail_count < 10 ? h->fail_count : 10);
    if (ms > ROUTE_HOST_FAIL_MS_MAX)
        ms = ROUTE_HOST_FAIL_MS_MAX;
    h->fail_count++;
    h->fail_until_ms = vl_clock_mono_ms() + ms;
    vl_log_at(VL_LOG_INFO, "evt=host_failing shard=%u ip=%s code=%u status=%s for_ms=%llu "
              "text=\"%s\"", r->shard_idx, h->ip, h->fail_code, h->fail_status,
              (unsigned long long)ms, h->fail_text);
    return true;
}

/* ---- shaping (issue 14): waiting for a policy's token ----------------------- */

static void route_throttle_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct route *r = ev->user;
    if (ev->h != r->throttle_timer)
        return;                    /* cancelled too late */
    r->throttle_timer = 0;
    struct host *list = r->throttled;
    r->throttled = NULL;
    while (list) {
        struct host *h = list;
        list = h->tnext;
        h->tnext = NULL;
        h->throttled = false;
        route_host_pump(r, h);     /* may throttle it again */
    }
}

/* @p h has work its policy holds back for @p wait_ms: pump it again then. */
void route_host_throttle(struct route *r, struct host *h, uint64_t wait_ms)
{
    if (wait_ms == 0)
        wait_ms = 1;
    if (wait_ms > 3600000)
        wait_ms = 3600000;         /* a suspension: looked at again at least hourly */
    if (!h->throttled) {
        h->throttled = true;
        h->tnext = r->throttled;
        r->throttled = h;
    }
    uint64_t at = vl_clock_mono_ms() + wait_ms;
    if (r->throttle_timer && at >= r->throttle_at_ms)
        return;
    if (r->throttle_timer)
        rx_timer_cancel(r->rx, r->throttle_timer);
    r->throttle_timer = 0;
    if (rx_timer_add(r->rx, wait_ms, route_throttle_cb, r, &r->throttle_timer) == 0)
        r->throttle_at_ms = at;
    else
        r->throttle_timer = 0;     /* timers full: the next close or lease pumps it */
}

/* The policy of what waits first on @p h (the host's, if nothing waits). */
int route_host_policy(const struct host *h)
{
    return h->pending ? h->pending->dom->policy : h->policy;
}

/* Open one more session to @p h from egress @p egress. @return 0 or why not
 * (nothing opened). */
static int route_host_open(struct route *r, struct host *h, int egress)
{
    if (r->sessions >= r->sessions_max)
        return -EAGAIN;
    /* TLS level: the destination policy's, else --tls; `may` with a broken
     * handshake remembered: plaintext. */
    int p = route_host_policy(h);
    enum vl_tls_level level = p >= 0 && vl_shaper_conf(r->shaper, p)->tls_set
                              ? vl_shaper_conf(r->shaper, p)->tls : r->cfg->tls_level;
    if (level == VL_TLS_MAY && h->tls_plain_until_ms > vl_clock_mono_ms())
        level = VL_TLS_NONE;
    int rc = session_open(&r->sess, h, &h->addr.sa, h->addr_len, h->ip,
                          h->pending ? h->pending->mx_name : NULL, level, egress);
    if (rc < 0)
        return rc;
    h->active++;
    h->opening++;
    r->sessions++;
    atomic_fetch_add_explicit(&r->ctr->conns, 1, memory_order_relaxed);
    if (r->ctr->met)
        met_add(&r->ctr->met->conns_opened, 1);
    return 0;
}

/* Move @p h's queue on: to idle sessions, to new ones, or (failing) to the
 * next MX of each attempt. A host that can open no session for a local cap
 * keeps its queue and waits (route_host_starve()). */
void route_host_pump(struct route *r, struct host *h)
{
    if (h->fail_until_ms > vl_clock_mono_ms() && h->healthy == 0 && h->pending) {
        /* Failing: what waits here goes to the next MX (or is deferred). */
        struct attempt *list = h->pending;
        h->pending = NULL;
        h->pending_tail = &h->pending;
        h->pending_count = 0;
        while (list) {
            struct attempt *t = list;
            list = t->next;
            t->next = NULL;
            route_attempt_to_host(r, t);
        }
        return;
    }
    while (h->pending && h->idle && !r->paused) {
        struct session *s = h->idle;
        if (route_admin_egress_held(r, session_egress(s))) {   /* its address suspended */
            h->idle = session_pool_next(s);
            session_pool_link(s, NULL);
            session_quit_idle(s);
            continue;
        }
        uint64_t wait = 0;
        struct attempt *t = route_host_take(r, h, session_egress(s), &wait);
        if (!t) {
            route_host_throttle(r, h, wait);
            return;                /* idle sessions wait pooled for the token */
        }
        h->idle = session_pool_next(s);
        session_pool_link(s, NULL);
        t->tls = session_tls(s);
        session_begin(s, t);
    }
    /* After a failure (until a new session gets through, or a healthy one ends
     * normally), open no more: with no session left, one probe at a time;
     * with healthy ones, the host has shown its connection cap. */
    while (!(h->fail_code && (h->healthy > 0 || h->opening > 0))
           && h->pending_count > h->opening
           && h->active < r->cfg->conns_per_dest_max && !r->stopping && !r->paused) {
        uint64_t now = vl_clock_mono_ms();
        int p = h->policy;
        int egress = route_admin_egress(r, vl_shaper_egress_pick(r->shaper, p, now));
        if (egress == ROUTE_ADMIN_EGRESS_HELD) {   /* every address suspended: wait */
            while (r->cfg->until_empty && h->active == 0 && h->pending)   /* a one-shot run */
                route_attempt_fail(r, route_host_pop(h), false, 451, "4.0.0",
                                   ROUTE_ADMIN_EGRESS_TEXT);
            if (h->pending)
                route_host_throttle(r, h, ROUTE_ADMIN_EGRESS_WAIT_MS);
            return;
        }
        uint64_t wait = vl_shaper_conn_acquire(r->shaper, p, egress, now);
        if (wait) {                /* the policy's connection caps: later, or at a close */
            vl_log_at(VL_LOG_TRACE, "evt=shaping_conn_wait shard=%u ip=%s egress=%d wait_ms=%llu "
                      "active=%u", r->shard_idx, h->ip, egress, (unsigned long long)wait,
                      h->active);
            route_host_throttle(r, h, wait == VL_SHAPER_WAIT_CLOSE ? 100 : wait);
            return;
        }
        int rc = route_host_open(r, h, egress);
        if (rc == 0)
            continue;
        vl_shaper_conn_release(r->shaper, p, egress);
        /* Ours, not the host's: session_open() fails only for local reasons
         * (a refused connect is reported later, from the reactor). With
         * sessions of its own open, their end pumps it again. */
        if (h->active == 0)
            route_host_starve(r, h, rc);
        return;
    }
}

/* Sessions may be free again: pump the starved hosts (while slots remain). */
void route_hosts_unstarve(struct route *r)
{
    struct host *list = r->starved;
    r->starved = NULL;
    while (list) {
        if (r->sessions >= r->sessions_max) {
            for (struct host *h = list; h; h = h->snext)   /* still full: keep the rest */
                if (!h->snext) {
                    h->snext = r->starved;
                    break;
                }
            r->starved = list;
            break;
        }
        struct host *h = list;
        vl_assert(h->starved);
        list = h->snext;
        h->snext = NULL;
        h->starved = false;
        route_host_pump(r, h);     /* may starve it again */
    }
}

/* ---- shaping backlog: recipients in flight by policy (route_saturated) ----------- */

static void route_shaped_count(struct route *r, struct attempt *t)
{
    if (t->shaped || t->dom->policy < 0)
        return;
    t->shaped = 1 + t->dom->policy;
    r->policy_inflight[t->dom->policy] += t->rcpt_count;
    struct domain *d = t->dom;
    if (d->shaped_inflight == 0) {
        d->shaped_slot = d->policy;
        r->policy_domains[d->policy]++;
    }
    d->shaped_inflight += t->rcpt_count;
}

/* @p t leaves the route (done, failed, abandoned). */
void route_shaped_uncount(struct route *r, struct attempt *t)
{
    if (!t->shaped)
        return;
    vl_assert(r->policy_inflight[t->shaped - 1] >= t->rcpt_count);
    r->policy_inflight[t->shaped - 1] -= t->rcpt_count;
    struct domain *d = t->dom;
    t->shaped = 0;
    vl_assert(d->shaped_inflight >= t->rcpt_count);
    d->shaped_inflight -= t->rcpt_count;
    if (d->shaped_inflight == 0) {
        vl_assert(r->policy_domains[d->shaped_slot] > 0);
        r->policy_domains[d->shaped_slot]--;
    }
}

/* ---- attempts on hosts ------------------------------------------------- */

/* Every recipient of @p t gets the same local fate; @p t is done. */
void route_attempt_fail(struct route *r, struct attempt *t, bool bounce, uint16_t code,
                               const char *status, const char *text)
{
    struct smtp_fate f = { .kind = bounce ? SMTP_FATE_BOUNCED : SMTP_FATE_DEFERRED,
                           .code = code, .local = true, .text = text,
                           .text_len = (uint16_t)strlen(text) };
    snprintf(f.status, sizeof f.status, "%s", status);
    for (uint32_t i = 0; i < t->rcpt_count; i++)
        ledger_outcome(r->ledger, t, i, &f, t->host ? t->host->ip : NULL);
    route_shaped_uncount(r, t);
    ledger_attempt_done(r->ledger, t);
}

/* Queue @p t on the first usable host of its domain at or after t->host_next. */
void route_attempt_to_host(struct route *r, struct attempt *t)
{
    struct domain *d = t->dom;
    uint64_t now = vl_clock_mono_ms();
    struct host *last = t->host;   /* moved off a failing host: that one's failure */
    while (t->host_next < d->host_count) {
        struct domain_host *dh = &d->hosts[t->host_next++];
        last = dh->host;
        if (dh->host->fail_until_ms > now && dh->host->healthy == 0)
            continue;
        t->mx_name = dh->mx_name;
        t->host = dh->host;
        const struct vl_shaping_policy *pc = d->policy >= 0
                                             ? vl_shaper_conf(r->shaper, d->policy) : NULL;
        if (pc && (pc->retry_ms_base || pc->retry_ms_max)) {   /* its retry schedule */
            t->retry_ms_base = pc->retry_ms_base ? pc->retry_ms_base : r->cfg->retry_ms_base;
            t->retry_ms_max = pc->retry_ms_max ? pc->retry_ms_max : r->cfg->retry_ms_max;
            if (t->retry_ms_max < t->retry_ms_base)
                t->retry_ms_max = t->retry_ms_base;
        }
        if (dh->host->policy < 0)
            dh->host->policy = d->policy;   /* a host's connections count for one policy */
        route_shaped_count(r, t);
        *dh->host->pending_tail = t;
        dh->host->pending_tail = &t->next;
        t->next = NULL;
        dh->host->pending_count++;
        if (d->policy >= 0 && dh->host->active)   /* its sessions will ask for it */
            vl_shaper_flow_touch(r->shaper, d->policy, route_domain_flow(d), vl_clock_mono_ms());
        route_host_pump(r, dh->host);
        return;
    }
    /* Every MX address failed or is failing: defer with the last failure. */
    char text[640];
    if (last) {
        snprintf(text, sizeof text, "all %u MX addresses of %s failed; last %s: %s",
                 d->host_count, d->name, last->ip, last->fail_text);
        t->host = last;
        route_attempt_fail(r, t, false, last->fail_code ? last->fail_code : 451,
                       last->fail_status[0] ? last->fail_status : "4.4.1", text);
    } else {
        snprintf(text, sizeof text, "no usable MX address for %s", d->name);
        route_attempt_fail(r, t, false, 451, "4.4.4", text);
    }
}
