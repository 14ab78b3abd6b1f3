/*
 * route.h - where a delivery attempt goes: its domain's MX set (static route
 * or DNS), the host (one MX address) it is queued on, and the pool of
 * sessions of that host. Also polls the resolver's sockets on the reactor.
 *
 * route*.c own every struct here (route_int.h): domains, hosts, their pending FIFOs, idle
 * pools and counters are written only by route*.c. Sessions report to it
 * through their owner interface (session.h); it records outcomes in the
 * ledger (ledger.h) and never calls the shard.
 *
 * Thread: the owning shard's only.
 */
#ifndef VOLLEY_DELIVER_ROUTE_H
#define VOLLEY_DELIVER_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "counters.h"
#include "dns.h"
#include "ledger.h"
#include "rx.h"
#include "session.h"
#include "shaper.h"
#include "volley/config.h"
#include "volley/limits.h"

/* DOMAIN_WAITING: the resolver refused the lookup for a local cap (in-flight
 * or waiter limit, memory): its attempts wait on the domain, in the route's
 * FIFO of waiting domains, and the lookup is asked again when another
 * completes or the route's retry timer fires. No attempt is spent. */
enum domain_state { DOMAIN_NEW, DOMAIN_WAITING, DOMAIN_RESOLVING, DOMAIN_READY, DOMAIN_FAILED };

struct domain_host { struct host *host; const char *mx_name; uint16_t pref; };

struct domain {
    struct domain *hnext;          /* hash chain */
    struct domain *wnext;          /* DOMAIN_WAITING: the route's FIFO */
    struct route *r;
    char name[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    enum domain_state state;
    bool dest_logged;              /* evt=dest_refused: once per domain */
    uint64_t expires_ms;           /* monotonic: resolution valid until */
    struct attempt *waiting, **waiting_tail;
    /* DOMAIN_FAILED: the fate every recipient gets */
    bool fail_bounce;
    uint16_t fail_code;
    char fail_status[VL_SMTP_STATUS_BYTES_MAX];
    char fail_reason[400];
    int policy;                    /* shaping policy index (vl_shaper_policy), -1 = none */
    uint32_t shaped_inflight;      /* its recipients in the shaping backlog (route_saturated) */
    int shaped_slot;               /* the policy they count for while shaped_inflight > 0 */
    uint32_t scan_taken;           /* taken by the lease scan route.scan_gen (route_saturated) */
    uint32_t scan_gen;
    uint32_t host_count;
    struct domain_host hosts[VL_ROUTE_ADDRS_PER_DOMAIN_MAX];
    char mx_names[VL_ROUTE_ADDRS_PER_DOMAIN_MAX][VL_SMTP_DOMAIN_BYTES_MAX + 1];
};

struct host {
    struct host *hnext;
    struct host *snext;            /* starved: the route's list */
    bool starved;                  /* could open no session for a local cap: waits */
    union vl_sockaddr addr;
    socklen_t addr_len;
    char ip[64];                   /* text, for logs */
    struct attempt *pending, **pending_tail;
    uint32_t pending_count;
    uint32_t active;               /* sessions open (connecting, busy or idle) */
    uint32_t opening;              /* sessions not READY yet (connecting, greeting) */
    uint32_t healthy;              /* sessions that reached READY and are open */
    struct session *idle;          /* idle sessions (linked by session_pool_link) */
    uint64_t fail_until_ms;        /* monotonic; 0 = not failing */
    uint32_t fail_count;
    uint16_t fail_code;            /* the last failure, for deferrals while failing */
    char fail_status[VL_SMTP_STATUS_BYTES_MAX];
    char fail_text[160];
    uint64_t tls_plain_until_ms;   /* monotonic: level may, its TLS handshake failed:
                                      sessions open without STARTTLS until then */
    int policy;                    /* shaping policy of its first attempt, -1 = none */
    bool throttled;                /* waits for a shaping token (the route's list) */
    struct host *tnext;
};

/* A c-ares socket polled through the reactor. */
struct route_dns_fd { int fd; rx_handle_t h; bool r, w, polling; };

struct route {
    unsigned shard_idx;
    const struct vl_config *cfg;
    struct rx *rx;
    struct ledger *ledger;         /* where outcomes go */
    struct deliver_counters *ctr;
    struct dns *dns;
    struct session_env sess;       /* owner: this route */
    bool stopping;                 /* route_stop(): open nothing, pool nothing */
    bool draining;                 /* route_drain(): pool nothing */
    bool paused;                   /* route_pause(): start no attempt, open nothing */
    uint32_t sessions;             /* open, all hosts */
    uint32_t sessions_max;         /* <= VL_SESSIONS_PER_SHARD_MAX (--sessions-max) */
    struct domain **dom_tab;       /* hash of domains */
    uint32_t dom_count;
    struct host **host_tab;
    uint32_t host_count;
    struct route_dns_fd dns_fds[VL_DNS_FDS_PER_SHARD_MAX];
    /* Local caps make work wait, never fail (issue 9 item 7): */
    struct domain *dom_waiting, **dom_waiting_tail;   /* DOMAIN_WAITING, oldest first */
    struct host *starved;          /* hosts with attempts and no session for a local cap */
    rx_timer_t retry_timer;        /* asks waiting domains again (route_domain.c) */
    rx_timer_t starve_timer;       /* pumps starved hosts again (route_host.c) */
    /* Shaping (issue 14): hosts waiting for a token of their policy. */
    struct vl_shaper *shaper;      /* shared by the shards; set before the first attempt */
    struct host *throttled;
    rx_timer_t throttle_timer;
    uint64_t throttle_at_ms;
    uint32_t policy_inflight[VL_SHAPING_POLICIES_MAX];   /* recipients on hosts, by policy */
    uint32_t policy_domains[VL_SHAPING_POLICIES_MAX];    /* domains with some of them */
    /* The lease scan in progress (route_lease_begin): what route_saturated
     * let it take so far, not counted above until route_attempt. */
    uint32_t scan_gen;
    uint32_t scan_taken[VL_SHAPING_POLICIES_MAX];
    uint32_t scan_domains[VL_SHAPING_POLICIES_MAX];      /* ... new domains among them */
};

/** c-ares's sock_state_cb (route_dnsfd.c): poll @p fd on @p ctx's reactor
 *  for what it wants, or stop polling it (both false). */
void route_dns_sock(void *ctx, int fd, bool readable, bool writable);

/** Set up @p r (tables, resolver, static routes) for shard @p shard_idx.
 *  Borrows every pointer for its life. @return 0, -ENOMEM or a dns error. */
int route_init(struct route *r, unsigned shard_idx, const struct vl_config *cfg, struct rx *rx,
               const struct smtp_client_conf *client_conf, struct ledger *ledger,
               struct deliver_counters *ctr);
void route_fini(struct route *r);
/** Should the shard leave recipients of @p domain (lowercased, @p len bytes)
 *  in the queue for now? True when its shaping policy already has about ten
 *  seconds of its current rate in flight in this shard: leasing more would
 *  only fill the shard's in-flight cap with mail that waits, while other
 *  destinations could go (vl_queue_lease_skip). Fair among the domains of
 *  one policy: a domain with nothing in flight is never saturated, one with
 *  some is once it holds its share (the backlog / the policy's domains in
 *  flight). What the lease scan in progress took (route_lease_begin) counts
 *  as in flight. */
bool route_saturated(void *r, const char *domain, size_t len);
/** Before each lease scan that passes route_saturated: what the scan lets
 *  through counts towards the backlog at once (one scan may take up to
 *  VL_LEASE_RCPTS_MAX recipients, all of one destination otherwise). */
void route_lease_begin(struct route *r);
/** Live reload (shard_reconf): the shaper's table changed; resolved domains
 *  take the policy it gives them now (by name, else the best MX's suffix),
 *  hosts without an open connection their next attempt's. What is in flight
 *  keeps counting where it began. */
void route_rematch(struct route *r);
/** Start delivering @p a (its recipients share one domain). */
void route_attempt(struct route *r, struct attempt *a);
/** Nothing left to lease (--until-empty): QUIT pooled sessions, pool no more. */
void route_drain(struct route *r);
/** @p on: start no attempt and open no connection (commits are failing);
 *  attempts already running finish. The caller abandons what waits
 *  (route_abandon_pending). @p on false: go on as before. */
void route_pause(struct route *r, bool on);
/** Stop: QUIT pooled sessions, open none, abandon attempts not started. */
void route_stop(struct route *r);
/** While stopping: abandon attempts that reached a host since (DNS answers). */
void route_abandon_pending(struct route *r);

#endif
