/*
 * dns_cache.h - internal to dns.c: immutable, reference-counted result blobs
 * and the bounded LRU TTL cache that holds them. Not thread-safe (one per
 * shard), no I/O, no clock (callers pass now_ms).
 *
 * A blob is one allocation: header, struct dns_result, its dns_mx array, the
 * addresses, the domain text. Cloning is memcpy plus a pointer rebase, so a
 * cache hit with equal preferences can be reshuffled without touching the
 * cached copy.
 */
#ifndef VOLLEY_DNS_CACHE_H
#define VOLLEY_DNS_CACHE_H

#include <stdint.h>

#include "dns_result.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dns_blob;

/** One host for dns_blob_create: @p addrs has @p addr_count entries. */
struct dns_blob_host {
    const char *host;
    uint16_t pref;
    uint16_t addr_count;
    const union vl_sockaddr *addrs;
};

/** Build a blob (refs = 1). @p enhanced and @p reason must be static.
 *  @return NULL on ENOMEM. */
struct dns_blob *dns_blob_create(const char *domain, enum dns_status status, uint16_t smtp_code,
                                 const char *enhanced, const char *reason, uint32_t ttl_s,
                                 const struct dns_blob_host *hosts, uint16_t host_count);
/** Copy (refs = 1), or NULL on ENOMEM. */
struct dns_blob *dns_blob_clone(const struct dns_blob *b);
struct dns_result *dns_blob_result(struct dns_blob *b);
struct dns_blob *dns_blob_of(const struct dns_result *res);
void dns_blob_ref(struct dns_blob *b);
void dns_blob_unref(struct dns_blob *b);
/** True if two hosts share a preference (their order is to be shuffled). */
bool dns_blob_has_ties(const struct dns_blob *b);
/** Shuffle each run of equal preferences with @p rng (xorshift64 state). */
void dns_blob_shuffle(struct dns_blob *b, uint64_t *rng);

struct dns_cache;

/** @return NULL on ENOMEM. @p entries_max >= 1. */
struct dns_cache *dns_cache_create(uint32_t entries_max);
void dns_cache_destroy(struct dns_cache *c);
/** Fresh entry for @p key (lower case) at @p now_ms, or NULL. Borrowed: valid
 *  until the next cache call; ref it to keep it. Expired entries are dropped. */
struct dns_blob *dns_cache_get(struct dns_cache *c, const char *key, uint64_t now_ms);
/** Insert or replace; takes a reference on @p b. May evict the least recently
 *  used entry. @return 1 if an entry was evicted, else 0. */
int dns_cache_put(struct dns_cache *c, const char *key, struct dns_blob *b, uint64_t expires_ms);
void dns_cache_clear(struct dns_cache *c);
uint32_t dns_cache_count(const struct dns_cache *c);

#ifdef __cplusplus
}
#endif
#endif
