/*
 * dns_cache.c - result blobs and the per-shard LRU TTL cache (see dns_cache.h).
 *
 * Invariants: a blob is immutable once shared (refs > 1 or in the cache);
 * only a fresh clone is shuffled. The cache holds at most entries_max
 * entries, all preallocated; every used entry is on exactly one hash chain
 * and on the LRU list, every free one on the free list.
 */
#include "dns_cache.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "volley/addr.h"
#include "volley/error.h"

struct dns_blob {
    uint32_t refs;
    size_t bytes;
    struct dns_result res;
    struct dns_mx mx[];
    /* then union vl_sockaddr addrs[], then char domain[] */
};

static size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

struct dns_blob *dns_blob_create(const char *domain, enum dns_status status, uint16_t smtp_code,
                                 const char *enhanced, const char *reason, uint32_t ttl_s,
                                 const struct dns_blob_host *hosts, uint16_t host_count)
{
    size_t addr_total = 0;
    for (uint16_t i = 0; i < host_count; i++)
        addr_total += hosts[i].addr_count;
    size_t off_addrs = align_up(sizeof(struct dns_blob) + host_count * sizeof(struct dns_mx),
                                alignof(union vl_sockaddr));
    size_t off_domain = off_addrs + addr_total * sizeof(union vl_sockaddr);
    size_t dlen = strlen(domain);
    size_t bytes = off_domain + dlen + 1;
    struct dns_blob *b = calloc(1, bytes);
    if (!b)
        return NULL;
    b->refs = 1;
    b->bytes = bytes;
    union vl_sockaddr *addrs = (union vl_sockaddr *)((char *)b + off_addrs);
    char *dom = (char *)b + off_domain;
    memcpy(dom, domain, dlen + 1);
    b->res = (struct dns_result){
        .status = status, .smtp_code = smtp_code, .enhanced = enhanced, .reason = reason,
        .domain = dom, .ttl_s = ttl_s, .mx_count = host_count, .mx = b->mx,
    };
    for (uint16_t i = 0; i < host_count; i++) {
        struct dns_mx *m = &b->mx[i];
        size_t hl = strlen(hosts[i].host);
        vl_assert(hl <= VL_SMTP_DOMAIN_BYTES_MAX);
        memcpy(m->host, hosts[i].host, hl + 1);
        m->pref = hosts[i].pref;
        m->addr_count = hosts[i].addr_count;
        m->addrs = addrs;
        if (hosts[i].addr_count > 0)           /* addrs may be NULL when empty */
            memcpy(addrs, hosts[i].addrs, hosts[i].addr_count * sizeof *addrs);
        addrs += hosts[i].addr_count;
    }
    vl_assert((char *)addrs == dom);
    return b;
}

struct dns_blob *dns_blob_clone(const struct dns_blob *b)
{
    struct dns_blob *c = malloc(b->bytes);
    if (!c)
        return NULL;
    memcpy(c, b, b->bytes);
    c->refs = 1;
    const char *ob = (const char *)b;
    char *nb = (char *)c;
    c->res.mx = c->mx;
    c->res.domain = nb + (b->res.domain - ob);
    for (uint16_t i = 0; i < c->res.mx_count; i++)
        c->mx[i].addrs = (union vl_sockaddr *)(nb + ((const char *)b->mx[i].addrs - ob));
    return c;
}

struct dns_result *dns_blob_result(struct dns_blob *b) { return &b->res; }

struct dns_blob *dns_blob_of(const struct dns_result *res)
{
    return (struct dns_blob *)((char *)(uintptr_t)res - offsetof(struct dns_blob, res));
}

void dns_blob_ref(struct dns_blob *b)
{
    vl_assert(b->refs > 0);
    b->refs++;
}

void dns_blob_unref(struct dns_blob *b)
{
    if (!b)
        return;
    vl_assert(b->refs > 0);
    if (--b->refs == 0)
        free(b);
}

bool dns_blob_has_ties(const struct dns_blob *b)
{
    for (uint16_t i = 1; i < b->res.mx_count; i++)
        if (b->mx[i].pref == b->mx[i - 1].pref)
            return true;
    return false;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void dns_blob_shuffle(struct dns_blob *b, uint64_t *rng)
{
    vl_assert(b->refs == 1);                  /* never reorder a shared blob */
    uint16_t n = b->res.mx_count;
    for (uint16_t start = 0; start < n;) {
        uint16_t end = start + 1;
        while (end < n && b->mx[end].pref == b->mx[start].pref)
            end++;
        for (uint16_t i = (uint16_t)(end - 1); i > start; i--) {   /* Fisher-Yates */
            uint16_t j = (uint16_t)(start + rng_next(rng) % (uint64_t)(i - start + 1));
            struct dns_mx t = b->mx[i];
            b->mx[i] = b->mx[j];
            b->mx[j] = t;
        }
        start = end;
    }
}

/* ---- the cache ---- */

#define NIL UINT32_MAX

struct entry {
    char key[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    uint64_t hash;
    uint64_t expires_ms;
    struct dns_blob *blob;      /* NULL: free */
    uint32_t chain, prev, next; /* hash chain (or free list); LRU links */
};

struct dns_cache {
    uint32_t entries_max, count, bucket_mask;
    uint32_t free_head, lru_head, lru_tail;   /* head = most recently used */
    uint32_t *buckets;
    struct entry *e;
};

struct dns_cache *dns_cache_create(uint32_t entries_max)
{
    vl_assert(entries_max >= 1 && entries_max <= VL_DNS_CACHE_ENTRIES_MAX);
    struct dns_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    uint32_t nb = 1;
    while (nb < 2 * entries_max)
        nb <<= 1;
    c->buckets = malloc(nb * sizeof *c->buckets);
    c->e = calloc(entries_max, sizeof *c->e);
    if (!c->buckets || !c->e) {
        free(c->buckets);
        free(c->e);
        free(c);
        return NULL;
    }
    c->entries_max = entries_max;
    c->bucket_mask = nb - 1;
    for (uint32_t i = 0; i < nb; i++)
        c->buckets[i] = NIL;
    for (uint32_t i = 0; i < entries_max; i++)
        c->e[i].chain = i + 1 < entries_max ? i + 1 : NIL;
    c->free_head = 0;
    c->lru_head = c->lru_tail = NIL;
    return c;
}

static void lru_unlink(struct dns_cache *c, uint32_t i)
{
    struct entry *e = &c->e[i];
    if (e->prev != NIL) c->e[e->prev].next = e->next; else c->lru_head = e->next;
    if (e->next != NIL) c->e[e->next].prev = e->prev; else c->lru_tail = e->prev;
    e->prev = e->next = NIL;
}

static void lru_push_front(struct dns_cache *c, uint32_t i)
{
    struct entry *e = &c->e[i];
    e->prev = NIL;
    e->next = c->lru_head;
    if (c->lru_head != NIL)
        c->e[c->lru_head].prev = i;
    c->lru_head = i;
    if (c->lru_tail == NIL)
        c->lru_tail = i;
}

static void entry_remove(struct dns_cache *c, uint32_t i)
{
    struct entry *e = &c->e[i];
    vl_assert(e->blob != NULL);
    uint32_t *link = &c->buckets[e->hash & c->bucket_mask];
    while (*link != i) {
        vl_assert(*link != NIL);              /* a used entry is on its chain */
        link = &c->e[*link].chain;
    }
    *link = e->chain;
    lru_unlink(c, i);
    dns_blob_unref(e->blob);
    e->blob = NULL;
    e->chain = c->free_head;
    c->free_head = i;
    c->count--;
}

static uint32_t entry_find(const struct dns_cache *c, const char *key, uint64_t hash)
{
    for (uint32_t i = c->buckets[hash & c->bucket_mask]; i != NIL; i = c->e[i].chain)
        if (c->e[i].hash == hash && strcmp(c->e[i].key, key) == 0)
            return i;
    return NIL;
}

struct dns_blob *dns_cache_get(struct dns_cache *c, const char *key, uint64_t now_ms)
{
    uint64_t h = vl_domain_hash(key, strlen(key));
    uint32_t i = entry_find(c, key, h);
    if (i == NIL)
        return NULL;
    if (c->e[i].expires_ms <= now_ms) {
        entry_remove(c, i);
        return NULL;
    }
    lru_unlink(c, i);
    lru_push_front(c, i);
    return c->e[i].blob;
}

int dns_cache_put(struct dns_cache *c, const char *key, struct dns_blob *b, uint64_t expires_ms)
{
    size_t klen = strlen(key);
    vl_assert(klen <= VL_SMTP_DOMAIN_BYTES_MAX);
    uint64_t h = vl_domain_hash(key, klen);
    int evicted = 0;
    uint32_t i = entry_find(c, key, h);
    if (i != NIL)
        entry_remove(c, i);
    if (c->free_head == NIL) {
        vl_assert(c->lru_tail != NIL && c->count == c->entries_max);
        entry_remove(c, c->lru_tail);
        evicted = 1;
    }
    i = c->free_head;
    struct entry *e = &c->e[i];
    c->free_head = e->chain;
    memcpy(e->key, key, klen + 1);
    e->hash = h;
    e->expires_ms = expires_ms;
    dns_blob_ref(b);
    e->blob = b;
    e->chain = c->buckets[h & c->bucket_mask];
    c->buckets[h & c->bucket_mask] = i;
    lru_push_front(c, i);
    c->count++;
    return evicted;
}

void dns_cache_clear(struct dns_cache *c)
{
    while (c->lru_head != NIL)
        entry_remove(c, c->lru_head);
    vl_assert(c->count == 0);
}

uint32_t dns_cache_count(const struct dns_cache *c) { return c->count; }

void dns_cache_destroy(struct dns_cache *c)
{
    if (!c)
        return;
    dns_cache_clear(c);
    free(c->buckets);
    free(c->e);
    free(c);
}
