/*
 * route.c - where a delivery attempt goes: its domain's MX set (static route
 * or DNS), the host (one MX address) it is queued on, and the pool of
 * sessions of that host (see route.h). The glue that polls c-ares sockets
 * on the reactor is in route_dnsfd.c.
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
#include "route.h"

#include "clock.h"
#include "ip_class.h"
#include "log.h"
#include "metrics.h"

#include "volley/addr.h"
#include "volley/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_DOM_BUCKETS  16384u
#define ROUTE_HOST_BUCKETS  4096u
#define ROUTE_HOST_FAIL_MS_MAX (10u * 60u * 1000u)
#define ROUTE_DEFER_RECHECK_MS 1000u   /* a deferred DNS answer is asked again after */
#define ROUTE_LOCAL_RETRY_MS     50u   /* a local cap: asked again after, at the latest */
#define ROUTE_PUSHBACK_PAUSE_MS 250u   /* a shaped host said 421: its next connection after */

static uint64_t route_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

/* ---- waiting for local caps (issue 9 item 7) ----------------------------- */

static void route_retry_cb(struct rx *rx, const struct rx_event *ev);

/* While a domain or host waits for a local cap, a timer asks again: the DNS
 * answer or session close that usually frees the cap may not come. */
static void route_retry_arm(struct route *r)
{
    if (r->retry_timer || (!r->dom_waiting && !r->starved))
        return;
    if (rx_timer_add(r->rx, ROUTE_LOCAL_RETRY_MS, route_retry_cb, r, &r->retry_timer) != 0)
        r->retry_timer = 0;        /* timers full: the next answer or close asks again */
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
    route_retry_arm(r);
}

/* ---- hosts ------------------------------------------------------------- */

static struct host *route_host_get(struct route *r, const union vl_sockaddr *a)
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

static void route_attempt_to_host(struct route *r, struct attempt *t);

static struct attempt *route_host_pop(struct host *h)
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

/* Record @p why as @p h's last failure; unless another session may still get
 * through, mark it failing for a growing interval. @return true if it was
 * marked now (its queue must move on: route_host_pump()). */
static bool route_host_mark_failed(struct route *r, struct host *h, const struct smtp_fate *why)
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

static void route_host_pump(struct route *r, struct host *h);

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
static void route_host_throttle(struct route *r, struct host *h, uint64_t wait_ms)
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
static int route_host_policy(const struct host *h)
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
static void route_host_pump(struct route *r, struct host *h)
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
        uint64_t wait = vl_shaper_msg_take(r->shaper, h->pending->dom->policy,
                                           session_egress(s), vl_clock_mono_ms());
        if (wait) {
            route_host_throttle(r, h, wait);
            return;                /* idle sessions wait pooled for the token */
        }
        h->idle = session_pool_next(s);
        session_pool_link(s, NULL);
        struct attempt *t = route_host_pop(h);
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
        int egress = vl_shaper_egress_pick(r->shaper, p, now);
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
static void route_hosts_unstarve(struct route *r)
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

/* ---- domains ----------------------------------------------------------- */

static struct domain *route_domain_get(struct route *r, const char *name, size_t len)
{
    struct domain **b = &r->dom_tab[vl_domain_hash(name, len) % ROUTE_DOM_BUCKETS];
    for (struct domain *d = *b; d; d = d->hnext)
        if (strlen(d->name) == len && !memcmp(d->name, name, len))
            return d;
    if (r->dom_count >= VL_DOMAINS_PER_SHARD_MAX || len > VL_SMTP_DOMAIN_BYTES_MAX)
        return NULL;
    struct domain *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    memcpy(d->name, name, len);
    d->r = r;
    d->policy = -1;
    d->waiting_tail = &d->waiting;
    d->hnext = *b;
    *b = d;
    r->dom_count++;
    return d;
}

/* ---- shaping backlog (what the lease leaves in the queue) ------------------------ */

#define ROUTE_SHAPED_BACKLOG_S     10u   /* seconds of a policy's rate kept in flight */
#define ROUTE_SHAPED_BACKLOG_MIN   64u   /* ... at least this many recipients */

static void route_shaped_count(struct route *r, struct attempt *t)
{
    if (t->shaped || t->dom->policy < 0)
        return;
    t->shaped = 1 + t->dom->policy;
    r->policy_inflight[t->dom->policy] += t->rcpt_count;
}

/* @p t leaves the route (done, failed, abandoned). */
static void route_shaped_uncount(struct route *r, struct attempt *t)
{
    if (!t->shaped)
        return;
    vl_assert(r->policy_inflight[t->shaped - 1] >= t->rcpt_count);
    r->policy_inflight[t->shaped - 1] -= t->rcpt_count;
    t->shaped = 0;
}

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
    return r->policy_inflight[d->policy] >= max;
}

/* Every recipient of @p t gets the same local fate; @p t is done. */
static void route_attempt_fail(struct route *r, struct attempt *t, bool bounce, uint16_t code,
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
static void route_attempt_to_host(struct route *r, struct attempt *t)
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

static void route_dispatch(struct route *r, struct attempt *t);
static void route_dns_done(void *ctx, const struct dns_result *res);

/* Ask the resolver for @p d. @return 0 resolving, 1 refused for a local cap
 * (wait), or the error that makes its attempts fail. */
static int route_domain_resolve(struct route *r, struct domain *d)
{
    int rc = dns_resolve_mx(r->dns, d->name, route_dns_done, d);
    if (rc == 0) {
        d->state = DOMAIN_RESOLVING;
        return 0;
    }
    return rc == -EAGAIN || rc == -ENOMEM ? 1 : rc;
}

static void route_domain_wait(struct route *r, struct domain *d)
{
    vl_assert(d->state == DOMAIN_NEW && d->wnext == NULL);
    d->state = DOMAIN_WAITING;
    d->wnext = NULL;
    *r->dom_waiting_tail = d;
    r->dom_waiting_tail = &d->wnext;
    route_retry_arm(r);
}

/* The attempt @p t cannot be resolved for (@p rc): it is deferred. */
static void route_resolve_fail(struct route *r, struct attempt *t, int rc)
{
    char text[400];
    snprintf(text, sizeof text, "cannot resolve %s now: %s", t->dom->name, vl_strerror(rc));
    route_attempt_fail(r, t, false, 451, "4.4.3", text);
}

/* Resolver capacity may be free again: ask for the waiting domains, oldest
 * first, until it refuses again. */
static void route_domains_resume(struct route *r)
{
    while (r->dom_waiting) {
        struct domain *d = r->dom_waiting;
        vl_assert(d->state == DOMAIN_WAITING);
        d->state = DOMAIN_NEW;
        int rc = route_domain_resolve(r, d);
        if (rc == 1) {
            d->state = DOMAIN_WAITING;
            break;                 /* still full: the next answer or the timer */
        }
        r->dom_waiting = d->wnext;
        if (!r->dom_waiting)
            r->dom_waiting_tail = &r->dom_waiting;
        d->wnext = NULL;
        if (rc < 0) {              /* not a local cap: its attempts fail as before */
            struct attempt *w = d->waiting;
            d->waiting = NULL;
            d->waiting_tail = &d->waiting;
            while (w) {
                struct attempt *t = w;
                w = t->next;
                t->next = NULL;
                route_resolve_fail(r, t, rc);
            }
        }
    }
}

static void route_retry_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct route *r = ev->user;
    if (ev->h != r->retry_timer)
        return;                    /* cancelled too late */
    r->retry_timer = 0;
    route_domains_resume(r);
    route_hosts_unstarve(r);
    route_retry_arm(r);
}

/* Why the destination policy refuses @p a (of @p mx in @p res, class @p cls). */
static void route_dest_reason(char *out, size_t n, const struct dns_result *res,
                              const struct dns_mx *mx, const union vl_sockaddr *a,
                              enum vl_ip_class cls)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->sa.sa_family == AF_INET6)
        inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof ip);
    else
        inet_ntop(AF_INET, &a->in4.sin_addr, ip, sizeof ip);
    const char *cname = vl_ip_class_name(cls);
    char allow[48];
    if (cls == VL_IP_UNSPECIFIED || cls == VL_IP_MULTICAST)
        snprintf(allow, sizeof allow, "never allowed");
    else
        snprintf(allow, sizeof allow, "--allow-dest %s", cname);
    if (res->domain[0] == '[')
        snprintf(out, n, "address literal %.80s is %s: refused by destination policy (%s)",
                 res->domain, cname, allow);
    else
        snprintf(out, n, "%s %.255s %s is %s: refused by destination policy (%s)",
                 res->implicit_mx ? "host" : "MX", mx->host, ip, cname, allow);
}

/* @p d's hosts from the addresses of @p res that the destination policy allows
 * (static --route targets: all). @return how many it refused; the first one's
 * reason is in d->fail_reason. Logged once per domain (evt=dest_refused). */
static uint32_t route_domain_hosts(struct domain *d, const struct dns_result *res)
{
    bool check = !res->routed || res->domain[0] == '[';   /* a literal is not a route */
    uint32_t refused = 0;
    d->host_count = 0;
    for (uint16_t i = 0; i < res->mx_count; i++) {
        const struct dns_mx *mx = &res->mx[i];
        for (uint16_t k = 0; k < mx->addr_count; k++) {
            if (d->host_count == VL_ROUTE_ADDRS_PER_DOMAIN_MAX)
                break;
            enum vl_ip_class cls = vl_ip_classify_sa(&mx->addrs[k].sa);
            if (check && !vl_ip_dest_allowed(d->r->cfg->allow_dest, cls)) {
                if (refused++ == 0)
                    route_dest_reason(d->fail_reason, sizeof d->fail_reason, res, mx,
                                      &mx->addrs[k], cls);
                continue;
            }
            struct host *h = route_host_get(d->r, &mx->addrs[k]);
            if (!h)
                continue;
            snprintf(d->mx_names[d->host_count], sizeof d->mx_names[0], "%s", mx->host);
            d->hosts[d->host_count] = (struct domain_host){ h, d->mx_names[d->host_count],
                                                            mx->pref };
            d->host_count++;
        }
    }
    if (refused && !d->dest_logged) {
        d->dest_logged = true;
        vl_log_at(VL_LOG_INFO, "evt=dest_refused shard=%u domain=%s refused=%u usable=%u "
                  "why=\"%s\"", d->r->shard_idx, d->name, refused, d->host_count,
                  d->fail_reason);
    }
    return refused;
}

static void route_dns_done(void *ctx, const struct dns_result *res)
{
    struct domain *d = ctx;
    struct attempt *w = d->waiting;
    uint64_t now = vl_clock_mono_ms();
    d->host_count = 0;
    if (res->status == DNS_OK) {
        /* The shaping policy: by the domain's name, else by its best MX's suffix. */
        int before = d->policy;
        const char *mx0 = res->mx_count ? res->mx[0].host : NULL;
        d->policy = vl_shaper_policy(d->r->shaper, d->name, mx0);
        if (d->policy >= 0 && d->policy != before)
            vl_log_at(VL_LOG_INFO, "evt=shaping_match shard=%u domain=%s mx=%s policy=%s",
                      d->r->shard_idx, d->name, mx0 ? mx0 : "",
                      vl_shaper_conf(d->r->shaper, d->policy)->name);
        uint32_t refused = route_domain_hosts(d, res);
        d->state = d->host_count ? DOMAIN_READY : DOMAIN_FAILED;
        uint64_t ttl_ms = (uint64_t)(res->ttl_s ? res->ttl_s : 1u) * 1000u;
        d->expires_ms = res->routed ? UINT64_MAX : now + ttl_ms;
        if (!d->host_count && refused) {
            /* Policy, not a passing state: retrying changes nothing (5.4.4,
             * like a domain with no address), and the reason names the fix. */
            d->fail_bounce = true;
            d->fail_code = 550;
            snprintf(d->fail_status, sizeof d->fail_status, "5.4.4");
        } else if (!d->host_count) {
            d->fail_bounce = false;
            d->fail_code = 451;
            snprintf(d->fail_status, sizeof d->fail_status, "4.3.0");
            snprintf(d->fail_reason, sizeof d->fail_reason, "no MX address usable here");
        }
    } else {
        d->state = DOMAIN_FAILED;
        d->fail_bounce = res->status == DNS_BOUNCE;
        d->fail_code = res->smtp_code ? res->smtp_code : (d->fail_bounce ? 550 : 451);
        snprintf(d->fail_status, sizeof d->fail_status, "%s", res->enhanced);
        snprintf(d->fail_reason, sizeof d->fail_reason, "%.255s: %.120s", res->domain,
                 res->reason);
        d->expires_ms = now + ROUTE_DEFER_RECHECK_MS;
    }
    d->waiting = NULL;
    d->waiting_tail = &d->waiting;
    while (w) {
        struct attempt *t = w;
        w = t->next;
        t->next = NULL;
        route_dispatch(d->r, t);
    }
    route_domains_resume(d->r);    /* this lookup's slot is free */
}

/* Spread attempts over the addresses of the best preference (equal-
 * preference MX hosts and a host's several addresses, RFC 5321 5.1): rotate
 * that group by one per attempt. The order after it is untouched. */
static void route_rotate_best(struct domain *d)
{
    uint32_t g = 1;
    while (g < d->host_count && d->hosts[g].pref == d->hosts[0].pref)
        g++;
    if (g < 2)
        return;
    struct domain_host first = d->hosts[0];
    memmove(&d->hosts[0], &d->hosts[1], (g - 1) * sizeof d->hosts[0]);
    d->hosts[g - 1] = first;
}

/* Send @p t on its way according to its domain's state. */
static void route_dispatch(struct route *r, struct attempt *t)
{
    struct domain *d = t->dom;
    uint64_t now = vl_clock_mono_ms();
    if ((d->state == DOMAIN_READY || d->state == DOMAIN_FAILED) && now >= d->expires_ms)
        d->state = DOMAIN_NEW;
    switch (d->state) {
    case DOMAIN_NEW: {
        /* Domains already waiting go first: none jumps the queue. */
        int rc = r->dom_waiting ? 1 : route_domain_resolve(r, d);
        if (rc < 0) {
            route_resolve_fail(r, t, rc);
            return;
        }
        if (rc == 1)
            route_domain_wait(r, d);
    }
        /* fall through */
    case DOMAIN_WAITING:
    case DOMAIN_RESOLVING:
        *d->waiting_tail = t;
        d->waiting_tail = &t->next;
        t->next = NULL;
        return;
    case DOMAIN_READY:
        route_rotate_best(d);
        t->host_next = 0;
        route_attempt_to_host(r, t);
        return;
    case DOMAIN_FAILED:
        route_attempt_fail(r, t, d->fail_bounce, d->fail_code, d->fail_status, d->fail_reason);
        return;
    }
    vl_panic("bad domain state %d", (int)d->state);
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
        uint64_t wait = vl_shaper_msg_take(r->shaper, h->pending->dom->policy, egress,
                                           vl_clock_mono_ms());
        if (wait == 0) {
            *next = route_host_pop(h);
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
