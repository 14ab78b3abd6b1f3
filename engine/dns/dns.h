/*
 * dns.h - per-shard MX resolution with c-ares: static routes, MX then A/AAAA,
 * a bounded TTL cache with negative entries, and in-flight coalescing.
 *
 * Event-loop agnostic: c-ares's socket interest goes to the owner through
 * dns_config.sock_state_cb (add/remove a poll for fd), the owner calls
 * dns_process_fd() when an fd is ready and dns_process_timeouts() when
 * dns_next_timeout_ms() has passed. dns_wait() is a blocking poll(2) loop for
 * the CLI and tests only, never for a shard's hot path.
 *
 * sock_state_cb reports changes of interest only: with a one-shot poll
 * (io_uring POLL_ADD without multishot) the owner re-arms the poll after each
 * dns_process_fd() for as long as the interest stands, and cancels it on
 * (fd, 0, 0) before the fd number can be reused.
 *
 * Callbacks are always deferred: dns_resolve_mx() never calls back inline,
 * even on a cache hit or a static route. They run from dns_process_fd(),
 * dns_process_timeouts() or dns_wait(), outside c-ares, and may call
 * dns_resolve_mx() again (that answer comes on a later call), but never
 * dns_destroy().
 *
 * Rules (PROTOCOL.md 1.6): MX sorted by preference, equal preferences
 * shuffled on every answer (cache hits included); no MX (NODATA) -> the
 * domain's own A/AAAA; null MX -> bounce 5.1.10; NXDOMAIN -> bounce 5.1.2;
 * SERVFAIL/REFUSED/timeout -> defer 4.4.3; MX present but none has an
 * address -> defer 4.4.4; no MX and no address -> bounce 5.4.4; our own host
 * in the list -> drop it and every MX of equal or higher preference value,
 * none left -> bounce 5.4.6.
 *
 * TTL 0 (dnsmasq's default): an answer is kept for max(TTL, ttl_s_min);
 * ttl_s_min defaults to 1 s, so a burst of lookups for one domain costs one
 * query per second; 0 turns caching of TTL-0 answers off (in-flight
 * coalescing still shares one query among concurrent callers). Negative
 * answers (bounces) are kept for the SOA's RFC 2308 TTL, with the same floor
 * and at most ttl_s_negative_max; deferrals are never cached.
 *
 * Thread: one struct dns per shard; every function on the owning thread.
 */
#ifndef VOLLEY_DNS_H
#define VOLLEY_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dns_result.h"
#include "volley/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dns;

/** c-ares wants (readable, writable) interest on @p fd; (0, 0) = stop polling it
 *  (the fd may be closed and reused right after). */
typedef void (*dns_sock_state_fn)(void *ctx, int fd, bool readable, bool writable);

/** Monotonic clock in ms; tests pass their own to step the cache's time. */
typedef uint64_t (*dns_clock_fn)(void *ctx);

struct dns_config {
    const char *servers;            /* "IP[:PORT][,IP[:PORT]...]" ([v6]:port); NULL = resolv.conf */
    uint16_t port_mx;               /* port stored in MX addresses; 0 = 25 */
    uint32_t timeout_ms_try;        /* per try; 0 = 2000 */
    uint32_t tries;                 /* 0 = 2 */
    uint32_t ttl_s_min;             /* cache floor (see above); use DNS_TTL_MIN_DEFAULT */
    uint32_t ttl_s_max;             /* cache cap; 0 = 86400 */
    uint32_t ttl_s_negative_max;    /* cap on negative entries; 0 = 3600 */
    uint32_t cache_entries_max;     /* 0 = 4096; <= VL_DNS_CACHE_ENTRIES_MAX */
    uint32_t inflight_max;          /* domains resolving at once; 0 = 256; <= VL_DNS_INFLIGHT_MAX */
    uint32_t waiters_max;           /* callers awaiting answers; 0 = 4096; <= VL_DNS_WAITERS_MAX */
    const char *const *own_hosts;   /* our own host names and IP addresses (text) */
    size_t own_hosts_count;
    uint64_t seed;                  /* tie shuffling; 0 = random */
    dns_sock_state_fn sock_state_cb;/* NULL: only dns_wait() drives the channel */
    void *sock_state_ctx;
    dns_clock_fn clock;             /* NULL = CLOCK_MONOTONIC */
    void *clock_ctx;
};

#define DNS_TTL_MIN_DEFAULT 1u

/** Called once per dns_resolve_mx(). @p res is valid until the callback
 *  returns; dns_result_ref() keeps it longer. */
typedef void (*dns_result_fn)(void *ctx, const struct dns_result *res);

struct dns_stats {
    uint64_t lookups, cache_hits, coalesced, routed;
    uint64_t queries_sent;      /* MX, A and AAAA queries handed to c-ares */
    uint64_t cache_evictions;
    uint32_t cache_entries, inflight, waiters;
};

/** Create a resolver. Validates @p cfg->servers (an IP address with an
 *  optional port; names are refused: a resolver cannot resolve itself).
 *  @return 0 and *@p out, VL_E_INVALID (bad config, *@p why names it),
 *  -ENOMEM or VL_E_DNS (c-ares init failed). */
int dns_create(const struct dns_config *cfg, struct dns **out, const char **why);

/** Destroy; pending callbacks are NOT called, c-ares sockets are closed
 *  (sock_state_cb gets (fd, 0, 0) for each). Results still referenced by the
 *  caller stay valid until their dns_result_unref(). */
void dns_destroy(struct dns *dns);

/** Add a static route: mail for @p domain ("*" = every domain without a
 *  route of its own) goes to @p hostport ("IP:PORT", "[IPv6]:PORT" or
 *  "HOST:PORT" with HOST resolved by A/AAAA), skipping the MX lookup.
 *  @return 0, VL_E_INVALID (with *@p why), VL_E_TOOBIG (table full). */
int dns_route_add(struct dns *dns, const char *domain, const char *hostport, const char **why);

/** Add a static route already parsed (vl_hostport_parse, names allowed, port
 *  required): mail for @p domain goes to @p to. Same returns. */
int dns_route_put(struct dns *dns, const char *domain, const struct vl_hostport *to,
                  const char **why);

/** Parse "DOMAIN=HOST:PORT" (the --route option) and add it. Same returns. */
int dns_route_add_spec(struct dns *dns, const char *spec, const char **why);

/** Resolve @p domain's mail hosts; @p cb gets the result later, once.
 *  @return 0 (queued), VL_E_INVALID (not a domain), -EAGAIN (in-flight or
 *  waiter cap reached: back-pressure, retry later) or -ENOMEM. On error
 *  @p cb is never called. */
int dns_resolve_mx(struct dns *dns, const char *domain, dns_result_fn cb, void *ctx);

/** Handle readiness of @p fd (from sock_state_cb), then run due callbacks. */
void dns_process_fd(struct dns *dns, int fd, bool readable, bool writable);

/** Handle c-ares timeouts and run due callbacks. @p now_ms is unused by
 *  c-ares (it reads its own clock) and kept for the engine's timer API. */
void dns_process_timeouts(struct dns *dns, uint64_t now_ms);

/** ms until dns_process_timeouts() must run: 0 if callbacks are waiting,
 *  -1 if nothing is pending at all. */
int64_t dns_next_timeout_ms(struct dns *dns);

/** True while a lookup is in flight or a callback is waiting to run. */
bool dns_busy(const struct dns *dns);

/** Blocking convenience (CLI, tests; not the shard hot path): poll(2) and
 *  process until nothing is pending or @p timeout_ms passes.
 *  @return 0 idle, VL_E_TIMEOUT still busy, -errno from poll. */
int dns_wait(struct dns *dns, int timeout_ms);

/** Keep / release a result beyond its callback. */
const struct dns_result *dns_result_ref(const struct dns_result *res);
void dns_result_unref(const struct dns_result *res);

/** Counters for logs and tests. */
void dns_stats_get(const struct dns *dns, struct dns_stats *out);

/** Drop every cache entry (tests; config reload). */
void dns_cache_flush(struct dns *dns);

/** Status name: "ok", "defer", "bounce". */
const char *dns_status_name(enum dns_status s);

/** Fill the zero fields of @p c with their defaults (see above) and check the
 *  caps (dns_create does it). @return 0 or VL_E_INVALID with *@p why. */
int dns_config_defaults(struct dns_config *c, const char **why);

#ifdef __cplusplus
}
#endif
#endif
