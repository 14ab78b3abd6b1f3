/*
 * route.c - where a transaction goes: its domain's MX set (static route or
 * DNS), the host (one MX address) it is queued on, and the pool of sessions
 * of that host. Also the glue that polls c-ares sockets on the reactor.
 *
 * Host failure (RFC 5321 5.1: try the next address): a host whose
 * connection fails before the greeting completes, or that says 421, while
 * no other session to it is healthy, is marked failing for a growing
 * interval; its queued transactions move to the next MX address of their
 * domain, and are deferred when none is left. While other sessions to it are
 * still connecting, the last of them to fail decides (no new ones are opened
 * meanwhile). A host that recovers (a session reaches READY) is used again at
 * once.
 *
 * Invariant: a transaction is in exactly one place: a domain's waiting list,
 * a host's pending FIFO, a session, or failed (its recipients have fates).
 */
#include "shard.h"

#include "volley/addr.h"
#include "volley/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_DOM_BUCKETS  16384u
#define ROUTE_HOST_BUCKETS  4096u
#define ROUTE_HOST_FAIL_MS_MAX (10u * 60u * 1000u)
#define ROUTE_DEFER_RECHECK_MS 1000u   /* a deferred DNS answer is asked again after */

static uint64_t route_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

/* ---- c-ares sockets on the reactor ------------------------------------ */

static void route_dns_poll_cb(struct rx *rx, const struct rx_event *ev);

static void route_dns_poll_arm(struct shard *sh, struct shard_dns_fd *e)
{
    if (e->polling || !e->h || (!e->r && !e->w))
        return;
    unsigned mask = (e->r ? POLLIN : 0u) | (e->w ? POLLOUT : 0u);
    if (rx_poll(sh->rx, e->h, mask) == 0)
        e->polling = true;
}

static void route_dns_sock(void *ctx, int fd, bool readable, bool writable)
{
    struct shard *sh = ctx;
    struct shard_dns_fd *e = NULL, *free_e = NULL;
    for (size_t i = 0; i < sizeof sh->dns_fds / sizeof sh->dns_fds[0]; i++) {
        if (sh->dns_fds[i].h && sh->dns_fds[i].fd == fd)
            e = &sh->dns_fds[i];
        else if (!sh->dns_fds[i].h && !free_e)
            free_e = &sh->dns_fds[i];
    }
    if (!readable && !writable) {
        if (e) {
            rx_detach(sh->rx, e->h);   /* cancels the poll; c-ares closes the fd */
            e->h = 0;
        }
        return;
    }
    if (!e) {
        if (!free_e) {
            vl_log(VL_LOG_ERROR, "evt=dns_fd_table_full shard=%u fd=%d", sh->idx, fd);
            return;
        }
        e = free_e;
        *e = (struct shard_dns_fd){ .fd = fd };
        if (rx_open(sh->rx, fd, route_dns_poll_cb, sh, &e->h) != 0) {
            e->h = 0;
            return;
        }
    }
    bool changed = e->r != readable || e->w != writable;
    e->r = readable;
    e->w = writable;
    if (e->polling && changed)
        rx_cancel(sh->rx, e->h, RX_OP_POLL);   /* re-armed with the new mask */
    else
        route_dns_poll_arm(sh, e);
}

static void route_dns_poll_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct shard *sh = ev->user;
    struct shard_dns_fd *e = NULL;
    for (size_t i = 0; i < sizeof sh->dns_fds / sizeof sh->dns_fds[0]; i++)
        if (sh->dns_fds[i].h == ev->h)
            e = &sh->dns_fds[i];
    if (!e || ev->op != RX_OP_POLL)
        return;                    /* detached meanwhile, or its CLOSE event */
    e->polling = false;
    if (ev->res > 0)
        dns_process_fd(sh->dns, e->fd, (ev->res & (POLLIN | POLLERR | POLLHUP)) != 0,
                       (ev->res & POLLOUT) != 0);
    if (e->h == ev->h)             /* still wanted after c-ares ran */
        route_dns_poll_arm(sh, e);
}

/* ---- hosts ------------------------------------------------------------- */

static struct host *route_host_get(struct shard *sh, const union dns_sockaddr *a)
{
    socklen_t len = a->sa.sa_family == AF_INET6 ? sizeof a->in6 : sizeof a->in4;
    uint64_t hv = a->sa.sa_family == AF_INET6
        ? route_hash(&a->in6.sin6_addr, 16) ^ a->in6.sin6_port
        : route_hash(&a->in4.sin_addr, 4) ^ a->in4.sin_port;
    struct host **b = &sh->host_tab[hv % ROUTE_HOST_BUCKETS];
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
    if (sh->host_count >= VL_HOSTS_PER_SHARD_MAX)
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
    h->hnext = *b;
    *b = h;
    sh->host_count++;
    return h;
}

static void route_txn_to_host(struct shard *sh, struct txn *t);

void route_host_pump(struct shard *sh, struct host *h)
{
    uint64_t now = vl_clock_mono_ms();
    if (h->fail_until_ms > now && h->healthy == 0 && h->pending) {
        /* Failing: what waits here goes to the next MX (or is deferred). */
        struct txn *list = h->pending;
        h->pending = NULL;
        h->pending_tail = &h->pending;
        h->pending_count = 0;
        while (list) {
            struct txn *t = list;
            list = t->next;
            t->next = NULL;
            route_txn_to_host(sh, t);
        }
        return;
    }
    while (h->pending && h->idle) {
        struct session *s = h->idle;
        h->idle = session_next_idle(s);
        struct txn *t = h->pending;
        h->pending = t->next;
        if (!h->pending)
            h->pending_tail = &h->pending;
        h->pending_count--;
        t->next = NULL;
        session_begin(sh, s, t);
    }
    /* After a failure (until a new session gets through, or a healthy one ends
     * normally), open no more: with no session left, one probe at a time;
     * with healthy ones, the host has shown its connection cap. */
    while (!(h->fail_code && (h->healthy > 0 || h->opening > 0))
           && h->pending_count > h->opening
           && h->active < sh->cfg->conns_per_dest_max && !sh->stopping) {
        int rc = session_open(sh, h);
        if (rc < 0) {
            if (h->active == 0) {
                char text[128];
                snprintf(text, sizeof text, "cannot open a connection: %s", vl_strerror(rc));
                struct smtp_fate f = { .kind = SMTP_FATE_DEFERRED, .code = 451, .local = true,
                                       .text = text, .text_len = (uint16_t)strlen(text) };
                memcpy(f.status, "4.3.0", 6);
                route_host_failed(sh, h, &f);
            }
            return;
        }
    }
}

void route_host_failed(struct shard *sh, struct host *h, const struct smtp_fate *why)
{
    h->fail_code = why->code ? why->code : 451;
    snprintf(h->fail_status, sizeof h->fail_status, "%s", why->status[0] ? why->status : "4.4.1");
    snprintf(h->fail_text, sizeof h->fail_text, "%.*s", (int)why->text_len,
             why->text ? why->text : "");
    if (h->healthy > 0)
        return;                    /* other sessions to it work: a passing failure */
    if (h->opening > 1)
        return;                    /* others still connecting may get through (a server
                                      with a connection cap): the last one decides */
    if (h->fail_until_ms > vl_clock_mono_ms())
        return;                    /* already failing: one step per episode */
    uint64_t ms = sh->cfg->host_fail_ms_min << (h->fail_count < 10 ? h->fail_count : 10);
    if (ms > ROUTE_HOST_FAIL_MS_MAX)
        ms = ROUTE_HOST_FAIL_MS_MAX;
    h->fail_count++;
    h->fail_until_ms = vl_clock_mono_ms() + ms;
    vl_log_at(VL_LOG_INFO, "evt=host_failing shard=%u ip=%s code=%u status=%s for_ms=%llu "
              "text=\"%s\"", sh->idx, h->ip, h->fail_code, h->fail_status,
              (unsigned long long)ms, h->fail_text);
    route_host_pump(sh, h);
}

/* ---- domains ----------------------------------------------------------- */

static struct domain *route_domain_get(struct shard *sh, const char *name, size_t len)
{
    struct domain **b = &sh->dom_tab[vl_domain_hash(name, len) % ROUTE_DOM_BUCKETS];
    for (struct domain *d = *b; d; d = d->hnext)
        if (strlen(d->name) == len && !memcmp(d->name, name, len))
            return d;
    if (sh->dom_count >= VL_DOMAINS_PER_SHARD_MAX || len > VL_SMTP_DOMAIN_BYTES_MAX)
        return NULL;
    struct domain *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    memcpy(d->name, name, len);
    d->sh = sh;
    d->waiting_tail = &d->waiting;
    d->hnext = *b;
    *b = d;
    sh->dom_count++;
    return d;
}

void route_fail_txn(struct shard *sh, struct txn *t, bool bounce, uint16_t code,
                    const char *status, const char *text)
{
    struct smtp_fate f = { .kind = bounce ? SMTP_FATE_BOUNCED : SMTP_FATE_DEFERRED,
                           .code = code, .local = true, .text = text,
                           .text_len = (uint16_t)strlen(text) };
    snprintf(f.status, sizeof f.status, "%s", status);
    for (uint32_t i = 0; i < t->rcpt_count; i++)
        shard_outcome(sh, t, i, &f, t->mx_name, t->host ? t->host->ip : NULL);
    shard_txn_free(sh, t);
}

/* Queue @p t on the first usable host of its domain at or after t->host_next. */
static void route_txn_to_host(struct shard *sh, struct txn *t)
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
        *dh->host->pending_tail = t;
        dh->host->pending_tail = &t->next;
        t->next = NULL;
        dh->host->pending_count++;
        route_host_pump(sh, dh->host);
        return;
    }
    /* Every MX address failed or is failing: defer with the last failure. */
    char text[640];
    if (last) {
        snprintf(text, sizeof text, "all %u MX addresses of %s failed; last %s: %s",
                 d->host_count, d->name, last->ip, last->fail_text);
        t->host = last;
        route_fail_txn(sh, t, false, last->fail_code ? last->fail_code : 451,
                       last->fail_status[0] ? last->fail_status : "4.4.1", text);
    } else {
        snprintf(text, sizeof text, "no usable MX address for %s", d->name);
        route_fail_txn(sh, t, false, 451, "4.4.4", text);
    }
}

static void route_dispatch(struct shard *sh, struct txn *t);

static void route_dns_done(void *ctx, const struct dns_result *res)
{
    struct domain *d = ctx;
    struct txn *w = d->waiting;
    uint64_t now = vl_clock_mono_ms();
    d->host_count = 0;
    if (res->status == DNS_OK) {
        for (uint16_t i = 0; i < res->mx_count; i++) {
            const struct dns_mx *mx = &res->mx[i];
            for (uint16_t k = 0; k < mx->addr_count; k++) {
                if (d->host_count == VL_ROUTE_ADDRS_PER_DOMAIN_MAX)
                    break;
                struct host *h = route_host_get(d->sh, &mx->addrs[k]);
                if (!h)
                    continue;
                snprintf(d->mx_names[d->host_count], sizeof d->mx_names[0], "%s", mx->host);
                d->hosts[d->host_count] = (struct domain_host){ h, d->mx_names[d->host_count],
                                                                mx->pref };
                d->host_count++;
            }
        }
        d->state = d->host_count ? DOMAIN_READY : DOMAIN_FAILED;
        uint64_t ttl_ms = (uint64_t)(res->ttl_s ? res->ttl_s : 1u) * 1000u;
        d->expires_ms = res->routed ? UINT64_MAX : now + ttl_ms;
        if (!d->host_count) {
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
        struct txn *t = w;
        w = t->next;
        t->next = NULL;
        route_dispatch(d->sh, t);
    }
}

/* Spread transactions over the addresses of the best preference (equal-
 * preference MX hosts and a host's several addresses, RFC 5321 5.1): rotate
 * that group by one per transaction. The order after it is untouched. */
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
static void route_dispatch(struct shard *sh, struct txn *t)
{
    struct domain *d = t->dom;
    uint64_t now = vl_clock_mono_ms();
    if ((d->state == DOMAIN_READY || d->state == DOMAIN_FAILED) && now >= d->expires_ms)
        d->state = DOMAIN_NEW;
    switch (d->state) {
    case DOMAIN_NEW: {
        int rc = dns_resolve_mx(sh->dns, d->name, route_dns_done, d);
        if (rc < 0) {
            char text[400];
            snprintf(text, sizeof text, "cannot resolve %s now: %s", d->name, vl_strerror(rc));
            route_fail_txn(sh, t, false, 451, "4.4.3", text);
            return;
        }
        d->state = DOMAIN_RESOLVING;
    }
        /* fall through */
    case DOMAIN_RESOLVING:
        *d->waiting_tail = t;
        d->waiting_tail = &t->next;
        t->next = NULL;
        return;
    case DOMAIN_READY:
        route_rotate_best(d);
        t->host_next = 0;
        route_txn_to_host(sh, t);
        return;
    case DOMAIN_FAILED:
        route_fail_txn(sh, t, d->fail_bounce, d->fail_code, d->fail_status, d->fail_reason);
        return;
    }
    vl_panic("bad domain state %d", (int)d->state);
}

void route_txn(struct shard *sh, struct txn *t)
{
    const struct vl_queue_rcpt *r = t->rcpts[0];
    t->dom = route_domain_get(sh, r->domain, r->domain_len);
    if (!t->dom) {
        route_fail_txn(sh, t, false, 451, "4.3.0", "too many destination domains in memory");
        return;
    }
    route_dispatch(sh, t);
}

/* ---- set-up ------------------------------------------------------------ */

int route_init(struct shard *sh)
{
    const struct vl_config *cfg = sh->cfg;
    sh->dom_tab = calloc(ROUTE_DOM_BUCKETS, sizeof *sh->dom_tab);
    sh->host_tab = calloc(ROUTE_HOST_BUCKETS, sizeof *sh->host_tab);
    if (!sh->dom_tab || !sh->host_tab)
        return -ENOMEM;
    const char *own[] = { cfg->ehlo_name };
    struct dns_config dc = {
        .servers = cfg->dns, .port_mx = cfg->mx_port, .ttl_s_min = DNS_TTL_MIN_DEFAULT,
        .own_hosts = own, .own_hosts_count = 1,
        .sock_state_cb = route_dns_sock, .sock_state_ctx = sh,
    };
    const char *why = NULL;
    int rc = dns_create(&dc, &sh->dns, &why);
    if (rc < 0) {
        vl_log(VL_LOG_ERROR, "evt=dns_init_failed shard=%u err=\"%s\" why=\"%s\"", sh->idx,
               vl_strerror(rc), why ? why : "");
        return rc;
    }
    for (unsigned i = 0; i < cfg->route_count; i++) {
        const struct vl_route *r = &cfg->routes[i];
        char hp[300];
        snprintf(hp, sizeof hp, strchr(r->host, ':') ? "[%s]:%u" : "%s:%u", r->host, r->port);
        rc = dns_route_add(sh->dns, r->domain, hp, &why);
        if (rc < 0) {
            vl_log(VL_LOG_ERROR, "evt=route_invalid domain=%s to=%s why=\"%s\"", r->domain, hp,
                   why ? why : "");
            return rc;
        }
    }
    return 0;
}

void route_fini(struct shard *sh)
{
    if (sh->dns)
        dns_destroy(sh->dns);
    sh->dns = NULL;
    for (uint32_t b = 0; sh->dom_tab && b < ROUTE_DOM_BUCKETS; b++) {
        while (sh->dom_tab[b]) {
            struct domain *d = sh->dom_tab[b];
            sh->dom_tab[b] = d->hnext;
            free(d);
        }
    }
    for (uint32_t b = 0; sh->host_tab && b < ROUTE_HOST_BUCKETS; b++) {
        while (sh->host_tab[b]) {
            struct host *h = sh->host_tab[b];
            sh->host_tab[b] = h->hnext;
            free(h);
        }
    }
    free(sh->dom_tab);
    free(sh->host_tab);
    sh->dom_tab = NULL;
    sh->host_tab = NULL;
}

void route_quit_idle_all(struct shard *sh)
{
    for (uint32_t b = 0; b < ROUTE_HOST_BUCKETS; b++)
        for (struct host *h = sh->host_tab[b]; h; h = h->hnext)
            while (h->idle)
                session_quit_idle(sh, h->idle);
}

/* Stop: transactions not started yet are abandoned (no attempt was made, so
 * no outcome: their recipients stay ready in the queue). */
void route_abandon_pending(struct shard *sh)
{
    for (uint32_t b = 0; b < ROUTE_HOST_BUCKETS; b++) {
        for (struct host *h = sh->host_tab[b]; h; h = h->hnext) {
            while (h->pending) {
                struct txn *t = h->pending;
                h->pending = t->next;
                shard_txn_abandon(sh, t);
            }
            h->pending_tail = &h->pending;
            h->pending_count = 0;
        }
    }
    for (uint32_t b = 0; b < ROUTE_DOM_BUCKETS; b++) {
        for (struct domain *d = sh->dom_tab[b]; d; d = d->hnext) {
            /* A domain still resolving keeps its list: the DNS callback will
             * dispatch into hosts, whose pump opens nothing while stopping. */
            if (d->state == DOMAIN_RESOLVING)
                continue;
            while (d->waiting) {
                struct txn *t = d->waiting;
                d->waiting = t->next;
                shard_txn_abandon(sh, t);
            }
            d->waiting_tail = &d->waiting;
        }
    }
}
