/*
 * shaping.h - per-destination policies and egress addresses from the
 * configuration file (issue 14), parsed and validated once by
 * vl_config_load_file() into this read-only table.
 *
 * A destination policy is matched by the recipient domain (exact) or by the
 * MX host name (suffix, on a label boundary: "google.com" matches
 * "alt1.aspmx.l.google.com"), so every domain hosted by one provider shares
 * one set of limits. Zero in a limit means "not set: the global option".
 * Invariant: every field is within the range documented here; names are
 * unique; a policy's pool names an existing pool.
 */
#ifndef VOLLEY_SHAPING_H
#define VOLLEY_SHAPING_H

#include <stdbool.h>
#include <stdint.h>

#include "volley/config.h"

#define VL_SHAPING_POLICIES_MAX   64u   /* destination policy blocks */
#define VL_SHAPING_MATCH_MAX      16u   /* domains / MX suffixes per policy */
#define VL_SHAPING_PATTERNS_MAX   16u   /* reply patterns per policy */
#define VL_SHAPING_NAME_BYTES     64u
#define VL_SHAPING_PATTERN_BYTES 128u
#define VL_EGRESS_ADDRS_MAX       64u   /* source addresses */
#define VL_EGRESS_POOLS_MAX       16u
#define VL_EGRESS_WARMUP_DAYS_MAX 60u   /* steps of a warm-up plan */

/* A reply text that means "slow down" (or, with suspend_ms, "stop for a while"). */
struct vl_shaping_pattern {
    char text[VL_SHAPING_PATTERN_BYTES];   /* substring, case-insensitive */
    uint64_t suspend_ms;                   /* 0 = slow down like a 421 */
};

struct vl_shaping_policy {
    char name[VL_SHAPING_NAME_BYTES];
    unsigned domain_count, mx_count;       /* at least one of them > 0 */
    char domains[VL_SHAPING_MATCH_MAX][256];      /* lowercased */
    char mx_suffixes[VL_SHAPING_MATCH_MAX][256];  /* lowercased, no leading dot */
    unsigned conns_per_ip;                 /* connections per source address; 1..10000 */
    unsigned msgs_per_conn;                /* 1..1000000 */
    double msgs_per_s;                     /* token bucket rate, > 0 (0: unlimited) */
    double conns_per_min;                  /* new connections per minute, > 0 (0: unlimited) */
    unsigned rcpts_per_txn;                /* 1..100 */
    uint64_t retry_ms_base, retry_ms_max;  /* 0 = the global schedule */
    bool tls_set;                          /* tls given: overrides --tls */
    enum vl_tls_level tls;
    char pool[VL_SHAPING_NAME_BYTES];      /* egress pool, "" = the default pool */
    /* AIMD (adaptive): a deferral (421, 4.7.x, a pattern) multiplies the rate by
     * decrease (at most once per hold_down_ms); every increase_ms without one adds
     * increase msgs/s, up to msgs_per_s. */
    bool adaptive;
    double decrease;                       /* 0 < decrease < 1; default 0.5 */
    double increase;                       /* msgs/s per step, > 0; default msgs_per_s/10 */
    double msgs_per_s_min;                 /* floor, > 0; default 0.1 */
    uint64_t increase_ms;                  /* step; default 30 s */
    uint64_t hold_down_ms;                 /* default 60 s */
    unsigned pattern_count;
    struct vl_shaping_pattern patterns[VL_SHAPING_PATTERNS_MAX];
};

struct vl_egress_addr {
    char ip[64];                           /* IPv4 or IPv6 text, checked */
    char ehlo[256];                        /* EHLO name for connections from it */
    unsigned pool;                         /* index into pools */
    unsigned weight;                       /* 1..1000 within its pool */
    unsigned warmup_count;                 /* 0 = no plan */
    uint32_t warmup_per_day[VL_EGRESS_WARMUP_DAYS_MAX];   /* day N's cap, ascending */
};

struct vl_egress_pool {
    char name[VL_SHAPING_NAME_BYTES];
};

struct vl_shaping {
    unsigned policy_count;
    struct vl_shaping_policy policies[VL_SHAPING_POLICIES_MAX];
    unsigned pool_count;
    struct vl_egress_pool pools[VL_EGRESS_POOLS_MAX];
    unsigned addr_count;
    struct vl_egress_addr addrs[VL_EGRESS_ADDRS_MAX];
    int default_pool;                      /* index, -1 = none (no egress block) */
};

/** The policy for recipient @p domain whose MX is @p mx (either may be NULL):
 *  an exact domain match first, then the longest MX suffix. NULL = none. */
const struct vl_shaping_policy *vl_shaping_match(const struct vl_shaping *s,
                                                 const char *domain, const char *mx);

/** Live reload: do @p a and @p b have the same egress addresses (IP and EHLO
 *  name, in order)? Pools, weights and warm-up plans may differ. */
bool vl_shaping_egress_same(const struct vl_shaping *a, const struct vl_shaping *b);
/** Live reload: the egress addresses and pools of @p next's file become those
 *  of @p running (changing them needs a restart); its policies stay. */
void vl_config_keep_egress(struct vl_config *next, const struct vl_shaping *running);

#endif
