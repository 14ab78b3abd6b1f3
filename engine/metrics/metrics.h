/*
 * metrics.h - the engine's metrics registry (issue 15): counters, gauges and
 * histograms the delivery shards and the listeners update on their hot path,
 * summed only when scraped (GET /metrics, http_metrics.c).
 *
 * Design. One struct met_shard per delivery shard (cache-line aligned, so
 * shards never share a line), updated with relaxed atomic adds by that
 * shard's own threads (the shard thread; its committer thread for the commit
 * histograms); a scrape sums them with relaxed loads. No lock anywhere. The
 * listeners' injection counters are global relaxed atomics (one add per
 * message accepted).
 *
 * Bounded label cardinality: each shard keeps the outcomes per destination
 * domain in a fixed open-addressed table of MET_DOMAINS slots, and per source
 * (the envelope sender's address) in MET_SOURCES slots; a name that finds no
 * free slot is counted under "other". Only the shard thread writes a slot's
 * name (then publishes it with a release store of `used`); readers load
 * `used` with acquire. A scrape merges the shards' tables by name and shows
 * the MET_TOP_N largest, the rest summed as "other".
 *
 * Off switch: VOLLEY_METRICS=off in the environment (for the cost
 * benchmark, scripts/bench.sh metrics): met_init() does nothing, met_get()
 * returns NULL and every update is one predictable branch.
 */
#ifndef VOLLEY_METRICS_H
#define VOLLEY_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MET_DOMAINS   128u          /* per shard: destination domains with a label */
#define MET_SOURCES   32u           /* per shard: sources (envelope senders) with a label */
#define MET_CAMPAIGNS 32u           /* per shard: campaign ids with a label */
#define MET_TENANTS   32u           /* per shard: tenant ids with a label */
#define MET_TOP_N     20u           /* labels shown per metric; the rest is "other" */
#define MET_NAME_MAX  256u
#define MET_HIST_MAX  16u           /* buckets, +Inf not counted */

enum met_outcome {
    MET_DELIVERED, MET_DEFERRED, MET_BOUNCED, MET_EXPIRED, MET_SUPPRESSED, MET_OUTCOMES
};

enum met_listener { MET_L_SMTP, MET_L_HTTP, MET_LISTENERS };

#define MET_ERR_MAX   120u          /* last error text kept per domain */

struct met_label {
    _Atomic uint32_t used;         /* 0 free; 1 name set (release) */
    uint32_t hash;
    char name[MET_NAME_MAX];
    _Atomic uint64_t n[MET_OUTCOMES];
    /* domains only: the last failure (deferred, bounced, expired), under a
     * seqlock: the shard thread makes seq odd, writes, makes it even */
    _Atomic uint32_t seq;
    _Atomic uint64_t err_ms;
    _Atomic char err[MET_ERR_MAX];  /* byte-wise atomics: a torn read is seen by seq */
    _Atomic int64_t inflight;       /* domains only: recipients leased, outcome not committed */
};

struct met_hist {
    _Atomic uint64_t bucket[MET_HIST_MAX];   /* not cumulative: summed at render */
    _Atomic uint64_t sum, count;
};

/* Issue 16: failures by bounce category (engine/bounce's names; the shard
 * thread claims a slot by name, as the label tables). kind 0 permanent
 * (bounced), 1 temporary (deferred). */
#define MET_BOUNCE_CATS 16u
#define MET_BOUNCE_NAME 24u
struct met_bounce_cat {
    _Atomic uint32_t used;
    char name[MET_BOUNCE_NAME];
    _Atomic uint64_t n[2];
};

struct met_shard {
    _Alignas(64) _Atomic uint64_t out[MET_OUTCOMES];
    _Atomic uint64_t out_other_dom[MET_OUTCOMES];   /* domain table full */
    _Atomic uint64_t out_other_src[MET_OUTCOMES];   /* source table full */
    _Atomic uint64_t out_other_camp[MET_OUTCOMES];  /* campaign table full */
    _Atomic uint64_t out_other_ten[MET_OUTCOMES];   /* tenant table full */
    _Atomic uint64_t conns_opened, conns_open;
    _Atomic uint64_t txns_tls, txns_plain;          /* SMTP transactions by session TLS */
    _Atomic uint64_t dns_lookups, dns_hits;         /* published by the shard thread */
    _Atomic uint64_t inflight;
    struct met_hist commit_us;     /* committer thread: one queue commit's latency */
    struct met_hist commit_batch;  /* outcomes per commit */
    struct met_bounce_cat bounce[MET_BOUNCE_CATS];   /* issue 16, met_bounce() */
    _Atomic uint64_t bounce_other[2];               /* no slot left */
    _Atomic uint64_t evt_outbox_full;               /* 1 while the events outbox is at its cap */
    _Atomic uint64_t evt_outbox_pauses;             /* times delivery paused for it */
    struct met_label dom[MET_DOMAINS];
    struct met_label src[MET_SOURCES];
    struct met_label camp[MET_CAMPAIGNS];
    struct met_label ten[MET_TENANTS];
};

struct met {
    unsigned nshards;
    uint64_t started_ms;           /* wall clock at met_init */
    _Atomic uint64_t inject_msgs[MET_LISTENERS], inject_rcpts[MET_LISTENERS];
    struct met_shard *shard;       /* [nshards] */
};

/* Bucket upper bounds (inclusive): commit latency in microseconds, batch in outcomes. */
extern const uint64_t met_commit_us_bounds[MET_HIST_MAX];
extern const uint64_t met_batch_bounds[MET_HIST_MAX];

/** Create the registry for @p nshards delivery shards (once per process,
 *  before the shards start; later calls are no-ops). Nothing when
 *  VOLLEY_METRICS=off. @return 0 or -ENOMEM. */
int met_init(unsigned nshards);
/** The registry, or NULL (off or not initialised). */
struct met *met_get(void);
/** Free the registry (at exit, after every user stopped). */
void met_fini(void);

/** The shard's slot, or NULL (off). */
static inline struct met_shard *met_shard(unsigned idx)
{
    struct met *m = met_get();
    return m && idx < m->nshards ? &m->shard[idx] : NULL;
}

/** Shard thread: count one final or deferral outcome of a recipient of
 *  @p domain, from @p source (envelope sender; "" for the null path), of
 *  @p campaign ("" or NULL: none). */
void met_outcome(struct met_shard *s, enum met_outcome o, const char *domain, const char *source,
                 const char *campaign);
/** met_outcome, and @p inflight_done fewer recipients of @p domain in flight
 *  (met_domain_inflight; one slot lookup for both: the commit path). */
void met_outcome_committed(struct met_shard *s, enum met_outcome o, const char *domain,
                           const char *source, const char *campaign, int64_t inflight_done);

/** Shard thread: count one outcome of a recipient of @p tenant (X-Volley-Tenant;
 *  "" or NULL: none, nothing counted). */
void met_outcome_tenant(struct met_shard *s, enum met_outcome o, const char *tenant);

/** Shard thread: record @p why ("4.4.1 451 text"...) as @p domain's last
 *  failure at @p now_ms (wall clock). */
void met_domain_error(struct met_shard *s, const char *domain, const char *why, uint64_t now_ms);
/** Shard thread: @p delta more (or fewer) recipients of @p domain in flight
 *  (leased, outcome not committed). Slots are never freed, so a domain past
 *  the table's MET_DOMAINS is not counted either way. */
void met_domain_inflight(struct met_shard *s, const char *domain, int64_t delta);

/** Shard thread: a failure of category @p category ("bad_mailbox"...; NULL
 *  or "" = "other"), permanent (bounced) or temporary (deferred). Issue 16. */
void met_bounce(struct met_shard *s, const char *category, bool permanent);

/** One destination domain merged over the shards (GET /api/v1/admin/domains). */
struct met_domain_row {
    char domain[MET_NAME_MAX];
    uint64_t n[MET_OUTCOMES];
    uint64_t err_ms;               /* 0: no failure seen */
    char err[MET_ERR_MAX];
    int64_t inflight;              /* recipients in flight now */
};

/** A shaping policy's message rate (volley_shaping_*_messages_per_second). */
#define MET_RATES_MAX 64u          /* = VL_SHAPING_POLICIES_MAX: the label's bound */
struct met_rate {
    char policy[64];
    double rate;                   /* current (AIMD-adjusted), msgs/s; 0 = unlimited */
    double limit;                  /* configured msgs-per-sec; 0 = unlimited */
};
/** Fills up to @p max rates of @p ctx. @return how many. Called from
 *  met_render (any thread) under the registry's source lock. */
typedef size_t (*met_rates_fn)(void *ctx, struct met_rate *out, size_t max);
/** Where met_render gets the shaping rates (the delivery engine's shaper),
 *  or NULL: none. Clearing waits for a render in progress, so the source may
 *  go away on return. */
void met_rates_source(met_rates_fn fn, void *ctx);

/** Up to @p max domains with the most outcomes, most first (no "other").
 *  @return how many were filled, or -1 (ENOMEM). */
int met_domain_rows(const struct met *m, struct met_domain_row *out, size_t max);

/** Any thread: add @p v to @p h (bounds: @p bounds). */
void met_hist_add(struct met_hist *h, const uint64_t *bounds, uint64_t v);

static inline void met_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/** A listener accepted a message of @p rcpts recipients. */
static inline void met_inject(enum met_listener l, uint64_t rcpts)
{
    struct met *m = met_get();
    if (m) {
        met_add(&m->inject_msgs[l], 1);
        met_add(&m->inject_rcpts[l], rcpts);
    }
}

/* ---- rendering (Prometheus text format 0.0.4) --------------------------- */

/** Queue figures the caller read for the scrape (the queue is not a layer
 *  below this one). */
struct met_queue {
    bool ok;
    uint64_t ready, deferred, quarantined, messages, body_bytes;
    uint64_t commits, writes;
    bool oldest_ok;                /* an open message exists */
    double oldest_open_age_s;      /* the oldest message with open recipients */
    uint64_t age_le[6];            /* open messages (of the first scanned) by age */
    uint64_t age_scanned;
};
extern const double met_age_bounds_s[6];

/** Render the registry and @p q as Prometheus text into a malloc'd,
 *  NUL-terminated buffer (*@p len bytes). @return it or NULL (ENOMEM). */
char *met_render(const struct met *m, const struct met_queue *q, size_t *len);

#endif
