/*
 * route_domain.c - a route's domains: asking the resolver for a domain's MX
 * set (or waiting for resolver capacity, a local cap that never fails an
 * attempt), turning the answer into the domain's shaping policy and its
 * hosts (those the destination policy, --allow-dest, allows), and sending
 * each attempt on according to its domain's state. Calls route_host.c,
 * nothing in route.c.
 *
 * Thread: the owning shard's only.
 */
#include "route_int.h"
#include "route_admin.h"

#include "clock.h"
#include "ip_class.h"
#include "log.h"

#include "volley/addr.h"
#include "volley/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_DEFER_RECHECK_MS 1000u   /* a deferred DNS answer is asked again after */
#define ROUTE_LOCAL_RETRY_MS     50u   /* a local cap: asked again after, at the latest */

static void route_dns_done(void *ctx, const struct dns_result *res);
static void route_domains_resume(struct route *r);

/* ---- waiting for local caps (issue 9 item 7) ----------------------------- */

static void route_retry_cb(struct rx *rx, const struct rx_event *ev);

/* While a domain waits for resolver capacity, a timer asks again: the DNS
 * answer that usually frees it may not come. */
static void route_retry_arm(struct route *r)
{
    if (r->retry_timer || !r->dom_waiting)
        return;
    if (rx_timer_add(r->rx, ROUTE_LOCAL_RETRY_MS, route_retry_cb, r, &r->retry_timer) != 0)
        r->retry_timer = 0;        /* timers full: the next answer asks again */
}

static void route_retry_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct route *r = ev->user;
    if (ev->h != r->retry_timer)
        return;                    /* cancelled too late */
    r->retry_timer = 0;
    route_domains_resume(r);
    route_retry_arm(r);
}

/* ---- domains ----------------------------------------------------------- */

struct domain *route_domain_get(struct route *r, const char *name, size_t len)
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

void route_rematch(struct route *r)
{
    uint32_t changed = 0;
    for (uint32_t b = 0; r->dom_tab && b < ROUTE_DOM_BUCKETS; b++)
        for (struct domain *d = r->dom_tab[b]; d; d = d->hnext) {
            if (d->state != DOMAIN_READY)
                continue;          /* the others match when their answer comes */
            int p = vl_shaper_policy(r->shaper, d->name, d->host_count ? d->mx_names[0] : NULL);
            if (p != d->policy) {
                vl_log_at(VL_LOG_INFO, "evt=shaping_match shard=%u domain=%s policy=%s why=reload",
                          r->shard_idx, d->name,
                          p >= 0 ? vl_shaper_conf(r->shaper, p)->name : "(none)");
                d->policy = p;
                changed++;
            }
        }
    /* A host's connections count for one policy: one with none open and
     * nothing queued takes its policy again from its next attempt. */
    for (uint32_t b = 0; r->host_tab && b < ROUTE_HOST_BUCKETS; b++)
        for (struct host *h = r->host_tab[b]; h; h = h->hnext)
            if (!h->active && !h->pending)
                h->policy = -1;
    if (changed)
        vl_log_at(VL_LOG_INFO, "evt=shaping_rematched shard=%u domains=%u", r->shard_idx,
                  changed);
}

/* Recipients per transaction of a policy matched by MX suffix (issue 14):
 * the shard cut @p t before the MX was known, so an attempt over the policy's
 * rcpts-per-txn is cut here, once its domain resolved: the first recipients
 * stay in @p t, each further slice becomes an attempt of the same lease and
 * message sent on its way now. Without memory for one, the rest stays in @p t
 * (the receiver's 452 defers what it will not take). */
static void route_attempt_split(struct route *r, struct attempt *t)
{
    const struct domain *d = t->dom;
    uint32_t max = d->policy >= 0 ? vl_shaper_conf(r->shaper, d->policy)->rcpts_per_txn : 0;
    if (!max || t->rcpt_count <= max)
        return;
    vl_assert(!t->prefix && !t->fated && !t->shaped);   /* prefixes go one recipient each */
    uint32_t keep = max;
    for (uint32_t i = max; i < t->rcpt_count; i += max) {
        struct attempt *a = ledger_attempt_alloc(r->ledger, t->lease, t->msg);
        if (!a) {
            vl_log(VL_LOG_WARN, "evt=rcpts_split_failed shard=%u domain=%s err=\"out of "
                   "memory\"", r->shard_idx, d->name);
            keep = i;
            break;
        }
        a->dom = t->dom;
        a->rcpt_count = t->rcpt_count - i < max ? t->rcpt_count - i : max;
        memcpy(a->rcpts, &t->rcpts[i], a->rcpt_count * sizeof a->rcpts[0]);
        keep = i + a->rcpt_count;
        a->host_next = 0;
        route_attempt_to_host(r, a);
    }
    if (keep > max) {              /* a failed allocation: the rest stays with t */
        memmove(&t->rcpts[max], &t->rcpts[keep], (t->rcpt_count - keep) * sizeof t->rcpts[0]);
        t->rcpt_count = max + (t->rcpt_count - keep);
    } else {
        t->rcpt_count = max;
    }
}

/* Send @p t on its way according to its domain's state. */
void route_dispatch(struct route *r, struct attempt *t)
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
        if (route_admin_mx_hold(r, t))
            return;                /* an operator's MX group hold: deferred */
        route_rotate_best(d);
        route_attempt_split(r, t);
        t->host_next = 0;
        route_attempt_to_host(r, t);
        return;
    case DOMAIN_FAILED:
        route_attempt_fail(r, t, d->fail_bounce, d->fail_code, d->fail_status, d->fail_reason);
        return;
    }
    vl_panic("bad domain state %d", (int)d->state);
}
