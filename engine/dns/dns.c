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
 */
#include "dns.h"
#include "clock.h"

#include <ares.h>
#include <arpa/inet.h>
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

#define QUERIES_PER_JOB_MAX (1u + 2u * VL_DNS_MX_HOSTS_MAX)

struct waiter {
    dns_result_fn cb;
    void *ctx;
    struct dns_blob *blob;          /* set when moved to the done FIFO */
    struct waiter *next;
};

struct job_host {
    char host[DNS_NAME_TEXT_BYTES_MAX + 1];
    uint16_t pref;
    uint16_t n4, n6;
    bool tempfail;                  /* an A/AAAA query failed temporarily */
    struct dns_rr_addr v4[VL_DNS_ADDRS_PER_HOST_MAX];
    struct dns_rr_addr v6[VL_DNS_ADDRS_PER_HOST_MAX];
};

struct job;
struct query { struct job *job; uint16_t host; uint16_t qtype; };

struct job {
    struct dns *dns;
    char domain[DNS_NAME_TEXT_BYTES_MAX + 1];
    uint64_t hash;
    struct job *chain;              /* inflight hash chain */
    struct waiter *waiters, **waiters_tail;
    uint32_t queries_pending;
    uint32_t queries_used;
    bool implicit_mx, routed, own_dropped;
    uint16_t port;
    uint32_t ttl_s_min;             /* positive data seen so far */
    uint32_t ttl_s_negative;        /* RFC 2308, from SOAs seen; UINT32_MAX = none */
    uint16_t host_count;
    struct job_host hosts[VL_DNS_MX_HOSTS_MAX];
    struct query q[QUERIES_PER_JOB_MAX];
    union vl_sockaddr addrs[VL_DNS_MX_HOSTS_MAX][VL_DNS_ADDRS_PER_HOST_MAX];  /* build area */
};

struct dns {
    ares_channel channel;
    struct dns_config cfg;
    struct dns_cache *cache;
    struct dns_routes routes;
    struct dns_own own;
    struct job **inflight;          /* hash buckets */
    uint32_t inflight_mask;
    struct waiter *done, **done_tail;
    struct dns_blob *oom_blob;      /* "4.3.0 out of memory", preallocated */
    uint64_t rng;
    bool destroying;
    struct dns_stats stats;
};

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_rc;
static void ares_init_once(void) { ares_init_rc = ares_library_init(ARES_LIB_INIT_ALL); }

static uint64_t dns_now_ms(const struct dns *dns)
{
    return dns->cfg.clock ? dns->cfg.clock(dns->cfg.clock_ctx) : vl_clock_mono_ms();
}

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

static void done_push(struct dns *dns, struct waiter *w)
{
    vl_assert(w->blob != NULL);
    w->next = NULL;
    *dns->done_tail = w;
    dns->done_tail = &w->next;
}

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

/* ---- jobs ---- */

static struct job *inflight_find(struct dns *dns, const char *domain, uint64_t hash)
{
    for (struct job *j = dns->inflight[hash & dns->inflight_mask]; j; j = j->chain)
        if (j->hash == hash && strcmp(j->domain, domain) == 0)
            return j;
    return NULL;
}

static void inflight_remove(struct dns *dns, struct job *job)
{
    struct job **link = &dns->inflight[job->hash & dns->inflight_mask];
    while (*link != job) {
        vl_assert(*link != NULL);
        link = &(*link)->chain;
    }
    *link = job->chain;
    vl_assert(dns->stats.inflight > 0);
    dns->stats.inflight--;
}

static struct job *job_create(struct dns *dns, const char *domain, uint64_t hash)
{
    struct job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->dns = dns;
    memcpy(job->domain, domain, strlen(domain) + 1);
    job->hash = hash;
    job->waiters_tail = &job->waiters;
    job->ttl_s_min = UINT32_MAX;
    job->ttl_s_negative = UINT32_MAX;
    job->port = dns->cfg.port_mx;
    job->chain = dns->inflight[hash & dns->inflight_mask];
    dns->inflight[hash & dns->inflight_mask] = job;
    dns->stats.inflight++;
    return job;
}

static void job_note_negative(struct job *job, const struct dns_parse_info *info)
{
    if (info->has_soa && info->ttl_s_negative < job->ttl_s_negative)
        job->ttl_s_negative = info->ttl_s_negative;
}

static void job_query(struct job *job, uint16_t host, uint16_t qtype, ares_callback cb)
{
    vl_assert(job->queries_used < QUERIES_PER_JOB_MAX);
    struct query *q = &job->q[job->queries_used++];
    *q = (struct query){ .job = job, .host = host, .qtype = qtype };
    const char *name = qtype == DNS_TYPE_MX ? job->domain : job->hosts[host].host;
    job->queries_pending++;
    job->dns->stats.queries_sent++;
    ares_query(job->dns->channel, name, 1 /* C_IN */, qtype, cb, q);
}

/* ---- finishing a job ---- */

/* Bounce/defer/ok as a blob; NULL on ENOMEM (the waiters then get a static deferral). */
static struct dns_blob *job_verdict(struct job *job, enum dns_status st, uint16_t code,
                                    const char *enh, const char *why, uint32_t ttl_s)
{
    struct dns_blob *b = dns_blob_create(job->domain, st, code, enh, why, ttl_s, NULL, 0);
    if (b) {
        struct dns_result *r = dns_blob_result(b);
        r->implicit_mx = job->implicit_mx;
        r->routed = job->routed;
    }
    return b;
}

static void addr_fill(union vl_sockaddr *sa, const struct dns_rr_addr *a, uint16_t port)
{
    memset(sa, 0, sizeof *sa);
    if (a->family == 4) {
        sa->in4.sin_family = AF_INET;
        sa->in4.sin_port = htons(port);
        memcpy(&sa->in4.sin_addr, a->bytes, 4);
    } else {
        sa->in6.sin6_family = AF_INET6;
        sa->in6.sin6_port = htons(port);
        memcpy(&sa->in6.sin6_addr, a->bytes, 16);
    }
}

/* Own address among a host's? Then it and every host of equal or higher
 * preference value go (PROTOCOL.md 1.6). Hosts are sorted by preference. */
static void job_drop_own_addresses(struct job *job)
{
    for (uint16_t i = 0; i < job->host_count; i++) {
        const struct job_host *h = &job->hosts[i];
        bool own = false;
        for (uint16_t k = 0; k < h->n4 && !own; k++)
            own = dns_own_addr(&job->dns->own, &h->v4[k]);
        for (uint16_t k = 0; k < h->n6 && !own; k++)
            own = dns_own_addr(&job->dns->own, &h->v6[k]);
        if (!own)
            continue;
        uint16_t keep = i;
        while (keep > 0 && job->hosts[keep - 1].pref == h->pref)
            keep--;
        job->host_count = keep;
        job->own_dropped = true;
        return;
    }
}

/* The usable hosts as a DNS_OK blob in *out (NULL on ENOMEM). @return usable hosts. */
static uint16_t job_build_ok(struct job *job, struct dns_blob **out)
{
    union vl_sockaddr (*addrs)[VL_DNS_ADDRS_PER_HOST_MAX] = job->addrs;
    struct dns_blob_host bh[VL_DNS_MX_HOSTS_MAX];
    uint16_t n = 0;
    uint32_t ttl = job->ttl_s_min;
    for (uint16_t i = 0; i < job->host_count; i++) {
        const struct job_host *h = &job->hosts[i];
        uint16_t k = 0;
        for (uint16_t a = 0; a < h->n4 && k < VL_DNS_ADDRS_PER_HOST_MAX; a++, k++) {
            addr_fill(&addrs[n][k], &h->v4[a], job->port);
            ttl = h->v4[a].ttl_s < ttl ? h->v4[a].ttl_s : ttl;
        }
        for (uint16_t a = 0; a < h->n6 && k < VL_DNS_ADDRS_PER_HOST_MAX; a++, k++) {
            addr_fill(&addrs[n][k], &h->v6[a], job->port);
            ttl = h->v6[a].ttl_s < ttl ? h->v6[a].ttl_s : ttl;
        }
        if (h->tempfail)
            ttl = 0;                           /* partial answer: keep it only the floor */
        if (k == 0)
            continue;                          /* dangling host: skipped */
        bh[n] = (struct dns_blob_host){ h->host, h->pref, k, addrs[n] };
        n++;
    }
    *out = NULL;
    if (n == 0)
        return 0;
    struct dns_blob *b = dns_blob_create(job->domain, DNS_OK, 0, "2.0.0", "resolved",
                                         ttl == UINT32_MAX ? 0 : ttl, bh, n);
    if (b) {
        struct dns_result *r = dns_blob_result(b);
        r->implicit_mx = job->implicit_mx;
        r->routed = job->routed;
        dns_blob_shuffle(b, &job->dns->rng);
    }
    *out = b;
    return n;
}

static uint32_t ttl_effective(const struct dns *dns, uint32_t ttl_s, uint32_t cap)
{
    if (ttl_s < dns->cfg.ttl_s_min)
        ttl_s = dns->cfg.ttl_s_min;
    return ttl_s > cap ? cap : ttl_s;
}

/* Hand the blob (one reference, ours) to the cache and every waiter; free the job. */
static void job_finish(struct job *job, struct dns_blob *b)
{
    struct dns *dns = job->dns;
    vl_assert(job->queries_pending == 0);
    if (!b) {                                  /* ENOMEM: the deferral made at start-up */
        b = dns->oom_blob;
        dns_blob_ref(b);
    }
    struct dns_result *r = dns_blob_result(b);
    if (r->status != DNS_DEFER) {
        uint32_t cap = r->status == DNS_OK ? dns->cfg.ttl_s_max : dns->cfg.ttl_s_negative_max;
        uint32_t ttl = ttl_effective(dns, r->ttl_s, cap);
        struct dns_blob *copy = ttl ? dns_blob_clone(b) : NULL;
        if (copy) {                            /* the cache's copy says from_cache */
            dns_blob_result(copy)->from_cache = true;
            dns->stats.cache_evictions += (uint64_t)dns_cache_put(dns->cache, job->domain,
                                                                  copy, dns_now_ms(dns) + ttl * 1000ull);
            dns_blob_unref(copy);
        }
    }
    inflight_remove(dns, job);
    for (struct waiter *w = job->waiters, *next; w; w = next) {
        next = w->next;
        dns_blob_ref(b);
        w->blob = b;
        done_push(dns, w);
    }
    dns_blob_unref(b);
    free(job);
}

static void job_addresses_done(struct job *job)
{
    job_drop_own_addresses(job);
    struct dns_blob *ok = NULL;
    if (job_build_ok(job, &ok) > 0) {
        job_finish(job, ok);                   /* NULL (ENOMEM): a deferral, never a bounce */
        return;
    }
    bool tempfail = false;
    for (uint16_t i = 0; i < job->host_count; i++)
        tempfail |= job->hosts[i].tempfail;
    uint32_t neg = job->ttl_s_negative == UINT32_MAX ? 0 : job->ttl_s_negative;
    struct dns_blob *b;
    if (job->own_dropped && job->host_count == 0)
        b = job_verdict(job, DNS_BOUNCE, 550, "5.4.6", "MX list points back to this host", 0);
    else if (tempfail)
        b = job_verdict(job, DNS_DEFER, 451, "4.4.3", "MX host address lookup failed", 0);
    else if (job->implicit_mx)
        b = job_verdict(job, DNS_BOUNCE, 550, "5.4.4", "no MX and no address for domain", neg);
    else if (job->routed)
        b = job_verdict(job, DNS_DEFER, 451, "4.4.4", "route host has no address", 0);
    else
        b = job_verdict(job, DNS_DEFER, 451, "4.4.4", "no MX host has an address", 0);
    job_finish(job, b);
}

/* ---- c-ares callbacks ---- */

static void addr_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct query *q = arg;
    struct job *job = q->job;
    if (job->dns->destroying)
        return;
    vl_assert(job->queries_pending > 0);
    job->queries_pending--;
    struct job_host *h = &job->hosts[q->host];
    struct dns_parse_info info;
    if (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND) {
        struct dns_rr_addr *out = q->qtype == DNS_TYPE_A ? h->v4 : h->v6;
        int n = abuf ? dns_parse_addr(abuf, (size_t)alen, q->qtype, &info, out,
                                      VL_DNS_ADDRS_PER_HOST_MAX) : 0;
        if (n < 0) {
            h->tempfail = true;                /* malformed: treat as a server failure */
        } else {
            if (q->qtype == DNS_TYPE_A)
                h->n4 = (uint16_t)n;
            else
                h->n6 = (uint16_t)n;
            if (abuf)
                job_note_negative(job, &info);
        }
    } else {
        h->tempfail = true;
    }
    if (job->queries_pending == 0)
        job_addresses_done(job);
}

static void job_start_addresses(struct job *job)
{
    vl_assert(job->host_count > 0);
    job->queries_pending++;                    /* guard: c-ares may fail a query inline */
    for (uint16_t i = 0; i < job->host_count; i++) {
        job_query(job, i, DNS_TYPE_A, addr_done);
        job_query(job, i, DNS_TYPE_AAAA, addr_done);
    }
    if (--job->queries_pending == 0)
        job_addresses_done(job);
}

static int mx_cmp(const void *a, const void *b)
{
    const struct dns_rr_mx *x = a, *y = b;
    return (int)x->pref - (int)y->pref;
}

/* A usable MX answer: sort, drop the root target and our own names, query addresses. */
static void mx_use(struct job *job, struct dns_rr_mx *mx, int n, uint32_t ttl_s)
{
    qsort(mx, (size_t)n, sizeof *mx, mx_cmp);
    job->ttl_s_min = ttl_s;
    uint16_t kept = 0;
    for (int i = 0; i < n && kept < VL_DNS_MX_HOSTS_MAX; i++) {
        if (mx[i].host[0] == '\0')
            continue;                          /* "." beside real MX: unusable, skip */
        if (dns_own_name(&job->dns->own, mx[i].host)) {
            while (kept > 0 && job->hosts[kept - 1].pref == mx[i].pref)
                kept--;
            job->own_dropped = true;
            break;
        }
        struct job_host *h = &job->hosts[kept++];
        memcpy(h->host, mx[i].host, strlen(mx[i].host) + 1);
        h->pref = mx[i].pref;
    }
    job->host_count = kept;
    if (kept == 0) {
        if (job->own_dropped)
            job_finish(job, job_verdict(job, DNS_BOUNCE, 550, "5.4.6",
                                        "MX list points back to this host", ttl_s));
        else
            job_finish(job, job_verdict(job, DNS_DEFER, 451, "4.4.4", "no usable MX host", 0));
        return;
    }
    job_start_addresses(job);
}

static void job_implicit_mx(struct job *job)
{
    job->implicit_mx = true;
    job->host_count = 1;
    memcpy(job->hosts[0].host, job->domain, strlen(job->domain) + 1);
    job->hosts[0].pref = 0;
    job_start_addresses(job);
}

static const char *ares_reason(int status)
{
    switch (status) {
    case ARES_ETIMEOUT:     return "DNS timeout";
    case ARES_ESERVFAIL:    return "DNS server failure (SERVFAIL)";
    case ARES_EREFUSED:     return "DNS query refused";
    /* c-ares 1.18 reports SERVFAIL/REFUSED from every server as ECONNREFUSED */
    case ARES_ECONNREFUSED: return "DNS server failed or unreachable";
    case ARES_EBADRESP:     return "malformed DNS answer";
    default:                return "DNS lookup failed";
    }
}

static void mx_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct query *q = arg;
    struct job *job = q->job;
    if (job->dns->destroying)
        return;
    vl_assert(job->queries_pending == 1);
    job->queries_pending--;
    struct dns_rr_mx mx[VL_DNS_MX_HOSTS_MAX * 2];
    struct dns_parse_info info;
    int n = 0;
    if (abuf && (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND)) {
        n = dns_parse_mx(abuf, (size_t)alen, &info, mx, sizeof mx / sizeof mx[0]);
        if (n < 0)
            status = ARES_EBADRESP;
        else
            job_note_negative(job, &info);
    }
    uint32_t neg = job->ttl_s_negative == UINT32_MAX ? 0 : job->ttl_s_negative;
    if (status == ARES_SUCCESS && n == 0 && info.found > 0)
        job_finish(job, job_verdict(job, DNS_DEFER, 451, "4.4.4", "no usable MX host", 0));
    else if (status == ARES_SUCCESS && n == 1 && mx[0].host[0] == '\0')
        job_finish(job, job_verdict(job, DNS_BOUNCE, 556, "5.1.10",
                                    "domain accepts no mail (null MX)", info.ttl_s_min));
    else if (status == ARES_SUCCESS && n > 0)
        mx_use(job, mx, n, info.ttl_s_min);
    else if (status == ARES_SUCCESS || status == ARES_ENODATA)
        job_implicit_mx(job);                  /* NODATA (or only a CNAME): RFC 5321 5.1 */
    else if (status == ARES_ENOTFOUND)
        job_finish(job, job_verdict(job, DNS_BOUNCE, 550, "5.1.2", "domain does not exist", neg));
    else
        job_finish(job, job_verdict(job, DNS_DEFER, 451, "4.4.3", ares_reason(status), 0));
}

/* ---- public API ---- */

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *dns = data;
    if (dns->cfg.sock_state_cb)
        dns->cfg.sock_state_cb(dns->cfg.sock_state_ctx, fd, readable != 0, writable != 0);
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
    done_push(dns, w);
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
    done_push(dns, w);
    return 0;
}

static int resolve_start(struct dns *dns, const char *key, uint64_t hash,
                         const struct dns_route *route, struct waiter *w)
{
    if (dns->stats.inflight >= dns->cfg.inflight_max)
        return -EAGAIN;
    struct job *job = job_create(dns, key, hash);
    if (!job)
        return -ENOMEM;
    *job->waiters_tail = w;
    job->waiters_tail = &w->next;
    if (route) {                               /* route to a host name: A/AAAA only */
        job->routed = true;
        job->port = route->to.port;
        job->host_count = 1;
        memcpy(job->hosts[0].host, route->to.host, strlen(route->to.host) + 1);
        job_start_addresses(job);
    } else {
        job_query(job, 0, DNS_TYPE_MX, mx_done);
    }
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
    struct job *job = inflight_find(dns, key, hash);
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
