/*
 * shard.h - internal to the delivery engine (shard.c, route.c, session.c).
 *
 * A shard is one thread that owns: an io_uring reactor, its queue shard
 * (lease/complete), a c-ares resolver, the domains and hosts it delivers to,
 * their connection pools, and its counters. Nothing here is shared with
 * another shard; the main thread reads only the atomic counters.
 *
 * Flow of a recipient: leased (struct lease) -> grouped into a transaction
 * (struct txn: one message, <= rcpts_per_txn_max recipients of one domain)
 * -> waits for its domain's MX set (struct domain) -> queued on a host
 * (struct host: one MX address; its pool of sessions) -> a session runs the
 * SMTP transaction -> each recipient's fate becomes an outcome -> outcomes
 * are committed in one queue transaction per loop turn, then logged.
 *
 * Invariant: every leased recipient gets exactly one outcome per lease;
 * a lease is released only when all its recipients' outcomes are committed.
 */
#ifndef VOLLEY_SHARD_H
#define VOLLEY_SHARD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "volley/config.h"
#include "clock.h"
#include "dns.h"
#include "log.h"
#include "rx.h"
#include "smtp_client.h"
#include "volley/queue.h"

#define SHARD_OUTCOMES_MAX VL_INFLIGHT_RCPTS_PER_SHARD_MAX   /* one per in-flight recipient */
#define SESSION_IN_BYTES          16384u
#define SESSION_BODY_CHUNK_BYTES  32768u   /* body bytes encoded per send */
#define SESSION_WBUF_BYTES (SMTP_CLIENT_OUT_BYTES + 2u * SESSION_BODY_CHUNK_BYTES + 16u)

struct shard;
struct shard_dsn_build;
struct tls_ctx;
struct host;
struct domain;

/* Counters the main thread reads (progress line, summary). */
struct shard_counters {
    _Atomic uint64_t delivered, deferred, bounced, expired, ambiguous;
    _Atomic uint64_t leased, inflight;       /* inflight: leased, outcome not committed */
    _Atomic uint64_t conns, txns, dsns;
    _Atomic uint64_t commit_errors;
};

struct lease {
    struct lease *next;
    struct vl_queue_batch *batch;
    uint32_t open;                 /* recipients without a committed outcome */
};

struct txn {
    struct txn *next;              /* in a domain's waiting list or a host's FIFO */
    struct lease *lease;
    const struct vl_queue_msg *msg;
    struct domain *dom;
    uint32_t host_next;            /* next index in dom->hosts to try */
    const char *mx_name;           /* MX the txn was sent to (for the log) */
    struct host *host;
    const char *tls;               /* TLS protocol of the session it ran on; NULL = plaintext */
    uint32_t rcpt_count;
    uint32_t fated;                /* outcomes recorded, held until the txn is freed */
    struct vl_queue_rcpt *rcpts[VL_SMTP_RCPTS_PER_TXN_MAX];
};

enum domain_state { DOMAIN_NEW, DOMAIN_RESOLVING, DOMAIN_READY, DOMAIN_FAILED };

struct domain_host { struct host *host; const char *mx_name; uint16_t pref; };

struct domain {
    struct domain *hnext;          /* hash chain */
    struct shard *sh;
    char name[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    enum domain_state state;
    uint64_t expires_ms;           /* monotonic: resolution valid until */
    struct txn *waiting, **waiting_tail;
    /* DOMAIN_FAILED: the fate every recipient gets */
    bool fail_bounce;
    uint16_t fail_code;
    char fail_status[VL_SMTP_STATUS_BYTES_MAX];
    char fail_reason[400];
    uint32_t host_count;
    struct domain_host hosts[VL_ROUTE_ADDRS_PER_DOMAIN_MAX];
    char mx_names[VL_ROUTE_ADDRS_PER_DOMAIN_MAX][VL_SMTP_DOMAIN_BYTES_MAX + 1];
};

struct session;

struct host {
    struct host *hnext;
    union dns_sockaddr addr;
    socklen_t addr_len;
    char ip[64];                   /* text, for logs */
    struct txn *pending, **pending_tail;
    uint32_t pending_count;
    uint32_t active;               /* sessions open (connecting, busy or idle) */
    uint32_t opening;              /* sessions not READY yet (connecting, greeting) */
    uint32_t healthy;              /* sessions that reached READY and are open */
    struct session *idle;          /* idle sessions (singly linked) */
    uint64_t fail_until_ms;        /* monotonic; 0 = not failing */
    uint32_t fail_count;
    uint16_t fail_code;            /* the last failure, for deferrals while failing */
    char fail_status[VL_SMTP_STATUS_BYTES_MAX];
    char fail_text[160];
};

struct outcome_ext {
    struct vl_queue_outcome o;
    struct txn *txn;               /* non-NULL: its txn is not done yet (held back) */
    const struct vl_queue_msg *txn_msg;
    const struct vl_queue_rcpt *rcpt;
    struct lease *lease;
    const char *mx;                /* MX name or NULL (static until shard end) */
    struct host *host;             /* NULL if no host was involved */
    const char *tls;               /* "TLSv1.3"... (static string) or NULL */
    bool ambiguous;
    bool local;
    bool warn;                     /* deferred past --delay-warning: Action: delayed DSN */
    char status[VL_SMTP_STATUS_BYTES_MAX];
    char text[VL_DIAG_TEXT_BYTES_MAX + 1];
};

/* A commit handed to the shard's committer thread: outcomes (and the DSNs
 * they imply) made durable while the reactor keeps running. */
struct commit_slot {
    struct outcome_ext *outcomes;
    uint32_t count;
    int rc;
    struct vl_queue_outcome *outs;
    struct shard_dsn_build *dsn;
};

struct shard_committer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct commit_slot *todo;      /* handed over, not yet taken */
    bool busy;                     /* a slot is with the committer (shard thread's view) */
    bool done;                     /* the committer finished the slot (under mu) */
    bool quit;
    bool started;
    struct commit_slot slot;
};

struct shard {
    unsigned idx;
    const struct vl_config *cfg;
    struct vl_queue *q;
    struct vl_queue_shard *qs;
    struct rx *rx;
    struct dns *dns;
    struct smtp_client_conf client_conf;
    struct tls_ctx *tls_ctx;       /* STARTTLS client context, made at first use */
    struct vl_dlog dlog;
    struct shard_counters *ctr;
    atomic_bool *stop;             /* set by the main thread */
    bool stopping;                 /* seen: no more leasing */
    bool idle_queue;               /* the last lease found nothing due */
    bool draining;                 /* --until-empty and nothing left: pool nothing */
    uint64_t next_lease_ms;
    uint64_t body_bytes_per_rcpt;  /* of the last lease: sizes the next one */
    uint64_t inflight;
    struct lease *leases;
    uint32_t sessions;
    uint32_t txns_live;
    struct domain **dom_tab;       /* hash of domains, SHARD_DOMAINS_HASH buckets */
    uint32_t dom_count;
    struct host **host_tab;
    uint32_t host_count;
    struct txn *txn_free;
    uint32_t outcome_count;
    uint32_t outcomes_held;        /* of outcome_count: txn not done, not committable */
    struct outcome_ext *outcomes;  /* accumulating; the other buffer may be committing */
    struct outcome_ext *outcomes_spare;
    struct shard_committer com;
    uint64_t dsn_seq;
    int err;                       /* fatal error ending the shard */
    uint64_t turns, commits, commit_us;   /* loop diagnostics (evt=shard_done) */
    /* c-ares fds polled through the reactor */
    struct shard_dns_fd { int fd; rx_handle_t h; bool r, w, polling; } dns_fds[VL_DNS_FDS_PER_SHARD_MAX];
};

/* shard.c */
uint64_t shard_retry_delay_ms(const struct vl_config *cfg, uint32_t attempts, uint64_t rcpt_id);
void shard_outcome(struct shard *sh, struct txn *t, uint32_t i, const struct smtp_fate *f,
                   const char *mx, const char *ip);
void shard_txn_free(struct shard *sh, struct txn *t);
/** Drop @p t without outcomes: its recipients are leasable again. */
void shard_txn_abandon(struct shard *sh, struct txn *t);
int shard_commit_init(struct shard *sh);
void shard_commit_fini(struct shard *sh);
void shard_commit_wake_cb(struct rx *rx, const struct rx_event *ev);
int shard_loop(struct shard *sh);

/* route.c: domains, hosts, dispatch */
int route_init(struct shard *sh);
void route_fini(struct shard *sh);
void route_txn(struct shard *sh, struct txn *t);        /* start delivering t */
void route_host_pump(struct shard *sh, struct host *h); /* start sessions for pending */
void route_quit_idle_all(struct shard *sh);             /* QUIT every pooled session */
void route_abandon_pending(struct shard *sh);           /* stop: drop unstarted txns */
void route_host_failed(struct shard *sh, struct host *h, const struct smtp_fate *why);
void route_fail_txn(struct shard *sh, struct txn *t, bool bounce, uint16_t code,
                    const char *status, const char *text);

/* session.c: one outbound SMTP connection */
int session_open(struct shard *sh, struct host *h);
/** Give an idle session (from host->idle) the transaction @p t. */
void session_begin(struct shard *sh, struct session *s, struct txn *t);
void session_quit_idle(struct shard *sh, struct session *s);
struct session *session_next_idle(struct session *s);

#endif
