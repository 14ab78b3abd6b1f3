/*
 * dns_int.h - private to the resolver's files (dns.c, dns_job.c): the
 * resolver, its jobs and waiters. Nothing outside engine/dns/ includes it;
 * the public contract is dns.h.
 *
 * Ownership: the resolver owns its jobs (inflight hash) and waiters (on a job,
 * or on the done FIFO holding one blob reference each); a job owns its hosts
 * and queries. A waiter's callback runs only from dns_dispatch() (dns.c),
 * never inside a c-ares callback.
 */
#ifndef VOLLEY_DNS_INT_H
#define VOLLEY_DNS_INT_H

#include <ares.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "dns.h"
#include "dns_cache.h"
#include "dns_parse.h"
#include "dns_route.h"
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

/* The resolver's clock (the config's, or the monotonic clock). Inline, like
 * dns_done_push: both files use them, and calls go one way (dns.c -> dns_job.c). */
static inline uint64_t dns_now_ms(const struct dns *dns)
{
    return dns->cfg.clock ? dns->cfg.clock(dns->cfg.clock_ctx) : vl_clock_mono_ms();
}

/* Queue @p w (its blob set) for the next dns_dispatch() (dns.c). */
static inline void dns_done_push(struct dns *dns, struct waiter *w)
{
    vl_assert(w->blob != NULL);
    w->next = NULL;
    *dns->done_tail = w;
    dns->done_tail = &w->next;
}

/* dns_job.c: the job in flight for @p domain (lower case; @p hash its
 * vl_domain_hash), or NULL. */
struct job *dns_job_find(struct dns *dns, const char *domain, uint64_t hash);

/* dns_job.c: a new job for @p domain, in the inflight hash; NULL on ENOMEM.
 * The caller adds its first waiter, then calls dns_job_start(). */
struct job *dns_job_create(struct dns *dns, const char *domain, uint64_t hash);

/* dns_job.c: send the job's first queries: A/AAAA of the route's host if
 * @p route (a host-name route), else MX. The job may finish before this returns. */
void dns_job_start(struct job *job, const struct dns_route *route);

#endif
