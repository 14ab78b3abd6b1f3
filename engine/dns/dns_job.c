/*
 * dns_job.c - one lookup job of the resolver (dns.c): its c-ares queries and
 * the turning of their answers into one verdict (struct dns_result in a blob).
 *
 * A job asks MX for its domain (or, for a routed host name, only A/AAAA);
 * a usable MX answer is sorted by preference, cut at our own names, and its
 * hosts' A and AAAA asked; NODATA falls back to the implicit MX (RFC 5321
 * 5.1), NXDOMAIN bounces, null MX (RFC 7505) bounces, anything else defers.
 * The verdict goes to the cache (not a deferral) and to every waiter.
 *
 * Invariants: queries_pending counts the c-ares queries still pointing at
 * the job, plus a guard of 1 while queries are being sent (c-ares may answer
 * inline); the job is finished and freed exactly once, at 0. A callback that
 * runs during dns_destroy() touches nothing. An out-of-memory verdict is the
 * preallocated deferral, never a bounce. Hosts stay sorted by preference.
 * Diagnostics: never logs.
 */
#include "dns.h"
#include "dns_int.h"

#include <ares.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "dns_cache.h"
#include "dns_parse.h"
#include "dns_route.h"
#include "volley/error.h"

/* ---- jobs ---- */

struct job *dns_job_find(struct dns *dns, const char *domain, uint64_t hash)
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

struct job *dns_job_create(struct dns *dns, const char *domain, uint64_t hash)
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
            uint64_t expiry_ms = dns_now_ms(dns) + ttl * 1000ull;
            dns->stats.cache_evictions +=
                (uint64_t)dns_cache_put(dns->cache, job->domain, copy, expiry_ms);
            dns_blob_unref(copy);
        }
    }
    inflight_remove(dns, job);
    for (struct waiter *w = job->waiters, *next; w; w = next) {
        next = w->next;
        dns_blob_ref(b);
        w->blob = b;
        dns_done_push(dns, w);
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

void dns_job_start(struct job *job, const struct dns_route *route)
{
    vl_assert(job->queries_used == 0 && job->waiters != NULL);
    if (route) {                               /* route to a host name: A/AAAA only */
        job->routed = true;
        job->port = route->to.port;
        job->host_count = 1;
        memcpy(job->hosts[0].host, route->to.host, strlen(route->to.host) + 1);
        job_start_addresses(job);
    } else {
        job_query(job, 0, DNS_TYPE_MX, mx_done);
    }
}
