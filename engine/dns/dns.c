/*
 * dns.c - per-shard MX resolution over one c-ares channel (see dns.h for the
 * rules and the event-loop contract).
 *
 * A lookup is a job keyed by domain: an MX query, then A and AAAA queries
 * for every MX host (or for the domain itself: implicit MX, or for a route's
 * host name). A second lookup of a domain with a job in flight joins it as a
 * waiter. When a job's last query answers, the result blob goes to the cache
 * (unless it is a deferral) and every waiter moves to the done FIFO, which
 * dns_dispatch() drains outside c-ares.
 *
 * Invariants: a job's queries_pending counts the c-ares queries that still
 * point at it; the job is freed only at 0. Each waiter gets exactly one
 * callback, or none if dns_destroy() comes first. inflight <= inflight_max,
 * waiters <= waiters_max.
 * Diagnostics: never logs; outcomes are data in struct dns_result.
 *
 * Files: this one is the resolver's shell (c-ares channel set-up, the entry
 * point dns_resolve_mx with its direct/cached/coalesced paths, the done FIFO,
 * the event-loop hooks); dns_job.c turns a job's answers into a verdict. The
 * structs they share are in dns_int.h.
 */
#include "dns.h"
#include "dns_int.h"
#include "clock.h"

#include <ares.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "dns_cache.h"
#include "dns_parse.h"
#include "dns_route.h"
#include "volley/addr.h"
#include "volley/error.h"

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_rc;
static void ares_init_once(void) { ares_init_rc = ares_library_init(ARES_LIB_INIT_ALL); }

const char *dns_status_name(enum dns_status s)
{
    switch (s) {
    case DNS_OK:     return "ok";
    case DNS_DEFER:  return "defer";
    case DNS_BOUNCE: return "bounce";
    }
    return "?";
}

/* ---- done FIFO and dispatch ---- */

/* Run the callbacks queued before this call; ones queued by them wait for
 * the next call, so a callback that resolves again cannot loop here. */
static void dns_dispatch(struct dns *dns)
{
    struct waiter *w = dns->done;
    dns->done = NULL;
    dns->done_tail = &dns->done;
    while (w) {
        struct waiter *next = w->next;
        w->cb(w->ctx, dns_blob_result(w->blob));
        dns_blob_unref(w->blob);
        vl_assert(dns->stats.waiters > 0);
        dns->stats.waiters--;
        free(w);
        w = next;
    }
}

/* ---- public API ---- */

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *dns = data;
    if (dns->cfg.sock_state_cb)
        dns->cfg.sock_state_cb(dns->cfg.sock_state_ctx, fd, readable != 0, writable != 0);
}

int dns_config_defaults(struct dns_config *c, const char **why)
{
    if (c->port_mx == 0) c->port_mx = 25;
    if (c->timeout_ms_try == 0) c->timeout_ms_try = 2000;
    if (c->tries == 0) c->tries = 2;
    if (c->ttl_s_max == 0) c->ttl_s_max = 86400;
    if (c->ttl_s_negative_max == 0) c->ttl_s_negative_max = 3600;
    if (c->cache_entries_max == 0) c->cache_entries_max = 4096;
    if (c->inflight_max == 0) c->inflight_max = 256;
    if (c->waiters_max == 0) c->waiters_max = 4096;
    if (c->cache_entries_max > VL_DNS_CACHE_ENTRIES_MAX || c->inflight_max > VL_DNS_INFLIGHT_MAX
        || c->waiters_max > VL_DNS_WAITERS_MAX) {
        *why = "DNS cache, in-flight or waiter limit above its compile-time cap";
        return VL_E_INVALID;
    }
    if (c->timeout_ms_try > 60000 || c->tries > 10) {
        *why = "DNS timeout above 60000 ms or more than 10 tries";
        return VL_E_INVALID;
    }
    return 0;
}

static int servers_set(struct dns *dns, const char *list, const char **why)
{
    struct vl_hostport hp[VL_DNS_SERVERS_MAX];
    struct ares_addr_port_node nodes[VL_DNS_SERVERS_MAX];
    size_t n = 0;
    if (dns_servers_parse(list, hp, &n, why) < 0)
        return VL_E_INVALID;
    memset(nodes, 0, sizeof nodes);
    for (size_t i = 0; i < n; i++) {
        nodes[i].family = hp[i].addr.sa.sa_family;
        if (nodes[i].family == AF_INET)
            memcpy(&nodes[i].addr.addr4, &hp[i].addr.in4.sin_addr, 4);
        else
            memcpy(&nodes[i].addr.addr6, &hp[i].addr.in6.sin6_addr, 16);
        nodes[i].udp_port = nodes[i].tcp_port = hp[i].port;
        nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
    }
    return ares_set_servers_ports(dns->channel, nodes) == ARES_SUCCESS ? 0 : VL_E_DNS;
}

static int channel_init(struct dns *dns)
{
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.flags = ARES_FLAG_NOSEARCH;
    o.timeout = (int)dns->cfg.timeout_ms_try;
    o.tries = (int)dns->cfg.tries;
    o.ndomains = 0;
    o.domains = NULL;
    o.lookups = (char *)"b";                   /* DNS only, never /etc/hosts */
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = dns;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_DOMAINS
               | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB;
    return ares_init_options(&dns->channel, &o, mask) == ARES_SUCCESS ? 0 : VL_E_DNS;
}

int dns_create(const struct dns_config *cfg, struct dns **out, const char **why)
{
    static const char *unused;
    if (!why)
        why = &unused;
    *why = "";
    pthread_once(&ares_once, ares_init_once);
    if (ares_init_rc != ARES_SUCCESS) {
        *why = "c-ares library init failed";
        return VL_E_DNS;
    }
    struct dns *dns = calloc(1, sizeof *dns);
    if (!dns)
        return -ENOMEM;
    dns->cfg = *cfg;
    dns->done_tail = &dns->done;
    dns_routes_init(&dns->routes);
    int rc = dns_config_defaults(&dns->cfg, why);
    if (rc == 0)
        rc = dns_own_init(&dns->own, cfg->own_hosts, cfg->own_hosts_count, why);
    if (rc < 0)
        goto fail;
    dns->cfg.own_hosts = NULL;                 /* copied: the caller's list may go */
    uint32_t nb = 1;
    while (nb < dns->cfg.inflight_max)
        nb <<= 1;
    dns->inflight_mask = nb - 1;
    dns->inflight = calloc(nb, sizeof *dns->inflight);
    dns->cache = dns_cache_create(dns->cfg.cache_entries_max);
    dns->oom_blob = dns_blob_create("", DNS_DEFER, 451, "4.3.0", "out of memory in resolver",
                                    0, NULL, 0);
    rc = -ENOMEM;
    if (!dns->inflight || !dns->cache || !dns->oom_blob)
        goto fail;
    rc = channel_init(dns);
    if (rc < 0) {
        *why = "c-ares channel init failed";
        goto fail;
    }
    if (cfg->servers && (rc = servers_set(dns, cfg->servers, why)) < 0)
        goto fail;
    dns->rng = cfg->seed;
    if (dns->rng == 0 && getrandom(&dns->rng, sizeof dns->rng, 0) != sizeof dns->rng)
        dns->rng = dns_now_ms(dns) | 1;
    if (dns->rng == 0)
        dns->rng = 0x9E3779B97F4A7C15ull;
    *out = dns;
    return 0;
fail:
    dns_destroy(dns);
    return rc;
}

void dns_destroy(struct dns *dns)
{
    if (!dns)
        return;
    dns->destroying = true;
    if (dns->channel)
        ares_destroy(dns->channel);            /* callbacks see destroying: no-ops */
    for (uint32_t i = 0; dns->inflight && i <= dns->inflight_mask; i++) {
        for (struct job *j = dns->inflight[i], *jn; j; j = jn) {
            jn = j->chain;
            for (struct waiter *w = j->waiters, *wn; w; w = wn) {
                wn = w->next;
                free(w);
            }
            free(j);
        }
    }
    for (struct waiter *w = dns->done, *wn; w; w = wn) {
        wn = w->next;
        dns_blob_unref(w->blob);
        free(w);
    }
    free(dns->inflight);
    dns_cache_destroy(dns->cache);
    dns_blob_unref(dns->oom_blob);
    dns_routes_fini(&dns->routes);
    dns_own_fini(&dns->own);
    free(dns);
}

int dns_route_add(struct dns *dns, const char *domain, const char *hostport, const char **why)
{
    static const char *unused;
    return dns_routes_add(&dns->routes, domain, hostport, why ? why : &unused);
}

int dns_route_put(struct dns *dns, const char *domain, const struct vl_hostport *to,
                  const char **why)
{
    static const char *unused;
    return dns_routes_put(&dns->routes, domain, to, why ? why : &unused);
}

int dns_route_add_spec(struct dns *dns, const char *spec, const char **why)
{
    static const char *unused;
    if (!why)
        why = &unused;
    const char *eq = spec ? strchr(spec, '=') : NULL;
    char domain[DNS_NAME_TEXT_BYTES_MAX + 1];
    if (!eq || eq == spec || (size_t)(eq - spec) > DNS_NAME_TEXT_BYTES_MAX) {
        *why = "--route wants DOMAIN=HOST:PORT";
        return VL_E_INVALID;
    }
    memcpy(domain, spec, (size_t)(eq - spec));
    domain[eq - spec] = '\0';
    return dns_routes_add(&dns->routes, domain, eq + 1, why);
}

/* Route or address literal: the answer needs no DNS. */
static struct dns_blob *blob_direct(const char *domain, const struct vl_hostport *hp)
{
    struct dns_blob_host h = { hp->host, 0, 1, &hp->addr };
    struct dns_blob *b = dns_blob_create(domain, DNS_OK, 0, "2.0.0", "static route", 0, &h, 1);
    if (b)
        dns_blob_result(b)->routed = true;
    return b;
}

static int waiter_add(struct dns *dns, dns_result_fn cb, void *ctx, struct waiter **out)
{
    if (dns->stats.waiters >= dns->cfg.waiters_max)
        return -EAGAIN;
    struct waiter *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->cb = cb;
    w->ctx = ctx;
    dns->stats.waiters++;
    *out = w;
    return 0;
}

/* Literal "[1.2.3.4]" / "[IPv6:...]" domains and IP routes: answered at once. */
static int resolve_direct(struct dns *dns, const char *key, dns_result_fn cb, void *ctx,
                          const struct vl_hostport *hp)
{
    struct waiter *w;
    int rc = waiter_add(dns, cb, ctx, &w);
    if (rc < 0)
        return rc;
    w->blob = blob_direct(key, hp);
    if (!w->blob) {
        w->blob = dns->oom_blob;
        dns_blob_ref(w->blob);
    }
    dns->stats.routed++;
    dns_done_push(dns, w);
    return 0;
}

/* Cache hit: share the cached blob, or a reshuffled copy when preferences tie. */
static int resolve_cached(struct dns *dns, struct dns_blob *hit, dns_result_fn cb, void *ctx)
{
    struct waiter *w;
    int rc = waiter_add(dns, cb, ctx, &w);
    if (rc < 0)
        return rc;
    struct dns_blob *b = NULL;
    if (dns_blob_has_ties(hit) && (b = dns_blob_clone(hit)) != NULL)
        dns_blob_shuffle(b, &dns->rng);
    if (!b) {
        b = hit;
        dns_blob_ref(b);
    }
    w->blob = b;
    dns->stats.cache_hits++;
    dns_done_push(dns, w);
    return 0;
}

static int resolve_start(struct dns *dns, const char *key, uint64_t hash,
                         const struct dns_route *route, struct waiter *w)
{
    if (dns->stats.inflight >= dns->cfg.inflight_max)
        return -EAGAIN;
    struct job *job = dns_job_create(dns, key, hash);
    if (!job)
        return -ENOMEM;
    *job->waiters_tail = w;
    job->waiters_tail = &w->next;
    dns_job_start(job, route);
    return 0;
}

int dns_resolve_mx(struct dns *dns, const char *domain, dns_result_fn cb, void *ctx)
{
    const char *why;
    size_t len = domain ? strlen(domain) : 0;
    if (len == 0 || len > DNS_NAME_TEXT_BYTES_MAX || vl_domain_check(domain, len, &why) < 0)
        return VL_E_INVALID;
    char key[DNS_NAME_TEXT_BYTES_MAX + 1];
    for (size_t i = 0; i <= len; i++)
        key[i] = (char)((domain[i] >= 'A' && domain[i] <= 'Z') ? domain[i] + 32 : domain[i]);
    dns->stats.lookups++;
    struct vl_hostport hp;
    if (key[0] == '[')
        return dns_literal_parse(key, dns->cfg.port_mx, &hp) < 0 ? VL_E_INVALID
                                                             : resolve_direct(dns, key, cb, ctx, &hp);
    const struct dns_route *route = dns_routes_find(&dns->routes, key);
    if (route && route->to.is_ip)
        return resolve_direct(dns, key, cb, ctx, &route->to);
    struct dns_blob *hit = dns_cache_get(dns->cache, key, dns_now_ms(dns));
    if (hit)
        return resolve_cached(dns, hit, cb, ctx);
    uint64_t hash = vl_domain_hash(key, len);
    struct job *job = dns_job_find(dns, key, hash);
    struct waiter *w;
    int rc = waiter_add(dns, cb, ctx, &w);
    if (rc < 0)
        return rc;
    if (job) {
        *job->waiters_tail = w;
        job->waiters_tail = &w->next;
        dns->stats.coalesced++;
        return 0;
    }
    rc = resolve_start(dns, key, hash, route, w);
    if (rc < 0) {
        dns->stats.waiters--;
        free(w);
    }
    return rc;
}

void dns_process_fd(struct dns *dns, int fd, bool readable, bool writable)
{
    ares_process_fd(dns->channel, readable ? fd : ARES_SOCKET_BAD,
                    writable ? fd : ARES_SOCKET_BAD);
    dns_dispatch(dns);
}

void dns_process_timeouts(struct dns *dns, uint64_t now_ms_unused)
{
    (void)now_ms_unused;
    ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_dispatch(dns);
}

int64_t dns_next_timeout_ms(struct dns *dns)
{
    if (dns->done)
        return 0;
    if (dns->stats.inflight == 0)
        return -1;
    struct timeval tv, *t = ares_timeout(dns->channel, NULL, &tv);
    if (!t)
        return -1;
    return (int64_t)t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
}

bool dns_busy(const struct dns *dns)
{
    return dns->done != NULL || dns->stats.inflight > 0;
}

int dns_wait(struct dns *dns, int timeout_ms)
{
    struct timespec ts0;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    for (unsigned round = 0; round < 1000000u; round++) {
        dns_dispatch(dns);
        if (!dns_busy(dns))
            return 0;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t spent = (ts.tv_sec - ts0.tv_sec) * 1000 + (ts.tv_nsec - ts0.tv_nsec) / 1000000;
        if (spent >= timeout_ms)
            return VL_E_TIMEOUT;
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        /* ARES_GETSOCK_WRITABLE shifts a signed 1 by up to 31: UB; test bits ourselves */
        unsigned bits = (unsigned)ares_getsock(dns->channel, socks, ARES_GETSOCK_MAXNUM);
        nfds_t n = 0;
        for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = (short)((bits & (1u << i) ? POLLIN : 0)
                               | (bits & (1u << (i + ARES_GETSOCK_MAXNUM)) ? POLLOUT : 0));
            if (ev)
                pfd[n++] = (struct pollfd){ .fd = socks[i], .events = ev };
        }
        int64_t wait = dns_next_timeout_ms(dns);
        if (wait < 0 || wait > timeout_ms - spent)
            wait = timeout_ms - spent;
        int rc = poll(pfd, n, (int)wait);
        if (rc < 0 && errno != EINTR)
            return -errno;
        for (nfds_t i = 0; rc > 0 && i < n; i++)
            if (pfd[i].revents)
                ares_process_fd(dns->channel,
                                pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd
                                                                             : ARES_SOCKET_BAD,
                                pfd[i].revents & POLLOUT ? pfd[i].fd : ARES_SOCKET_BAD);
        ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
    return VL_E_TIMEOUT;
}

const struct dns_result *dns_result_ref(const struct dns_result *res)
{
    dns_blob_ref(dns_blob_of(res));
    return res;
}

void dns_result_unref(const struct dns_result *res)
{
    if (res)
        dns_blob_unref(dns_blob_of(res));
}

void dns_stats_get(const struct dns *dns, struct dns_stats *out)
{
    *out = dns->stats;
    out->cache_entries = dns_cache_count(dns->cache);
}

void dns_cache_flush(struct dns *dns)
{
    dns_cache_clear(dns->cache);
}
