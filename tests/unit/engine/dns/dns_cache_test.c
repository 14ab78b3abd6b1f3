/* dns_cache_test.c - result blobs (layout, clone, shuffle, refs) and the LRU
 * TTL cache (expiry, replacement, eviction order, bounds). Time is a
 * parameter: no clock is read. VOLLEY_SEED replays the shuffle and churn. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_cache.h"

static uint64_t seed_get(void)
{
    const char *env = getenv("VOLLEY_SEED");
    uint64_t s = env ? strtoull(env, NULL, 0) : 0xC0FFEEull;
    return s ? s : 1;
}

static union vl_sockaddr v4(const char *ip, uint16_t port)
{
    union vl_sockaddr a;
    memset(&a, 0, sizeof a);
    a.in4.sin_family = AF_INET;
    a.in4.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.in4.sin_addr);
    return a;
}

/* Hosts a(10) b(10) c(10) d(20), one or two addresses each. */
static struct dns_blob *blob_sample(void)
{
    static union vl_sockaddr addrs[5];
    addrs[0] = v4("192.0.2.1", 25);
    addrs[1] = v4("192.0.2.2", 25);
    addrs[2] = v4("192.0.2.3", 25);
    addrs[3] = v4("192.0.2.4", 25);
    addrs[4] = v4("192.0.2.5", 25);
    const struct dns_blob_host h[4] = {
        { "a.example.org", 10, 2, &addrs[0] },
        { "b.example.org", 10, 1, &addrs[2] },
        { "c.example.org", 10, 1, &addrs[3] },
        { "d.example.org", 20, 1, &addrs[4] },
    };
    return dns_blob_create("example.org", DNS_OK, 0, "2.0.0", "resolved", 300, h, 4);
}

static void check_sample_hosts(const struct dns_result *r)
{
    /* Whatever the order, every host keeps its own addresses. */
    for (uint16_t i = 0; i < r->mx_count; i++) {
        const struct dns_mx *m = &r->mx[i];
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &m->addrs[0].in4.sin_addr, ip, sizeof ip);
        char want = (char)('1' + (m->host[0] == 'a' ? 0 : m->host[0] == 'b' ? 2
                                  : m->host[0] == 'c' ? 3 : 4));
        if (ip[8] != want)
            fail_msg("host %s has address %s", m->host, ip);
        assert_int_equal(m->addr_count, m->host[0] == 'a' ? 2 : 1);
    }
}

static void test_blob_layout_and_clone(void **state)
{
    (void)state;
    struct dns_blob *b = blob_sample();
    assert_non_null(b);
    const struct dns_result *r = dns_blob_result(b);
    assert_string_equal(r->domain, "example.org");
    assert_int_equal(r->mx_count, 4);
    assert_int_equal(r->ttl_s, 300);
    assert_ptr_equal(dns_blob_of(r), b);
    check_sample_hosts(r);
    struct dns_blob *c = dns_blob_clone(b);
    assert_non_null(c);
    dns_blob_unref(b);                        /* the clone owns its own memory */
    const struct dns_result *rc = dns_blob_result(c);
    assert_string_equal(rc->domain, "example.org");
    assert_string_equal(rc->mx[3].host, "d.example.org");
    check_sample_hosts(rc);
    dns_blob_unref(c);
}

static void test_blob_shuffle_ties_only(void **state)
{
    (void)state;
    uint64_t seed = seed_get(), rng = seed;
    int first_seen[3] = { 0 };
    struct dns_blob *base = blob_sample();
    assert_true(dns_blob_has_ties(base));
    for (int i = 0; i < 300; i++) {
        struct dns_blob *c = dns_blob_clone(base);
        dns_blob_shuffle(c, &rng);
        const struct dns_result *r = dns_blob_result(c);
        assert_string_equal(r->mx[3].host, "d.example.org");   /* pref 20 stays last */
        for (int k = 0; k < 3; k++)
            assert_int_equal(r->mx[k].pref, 10);
        first_seen[r->mx[0].host[0] - 'a']++;
        check_sample_hosts(r);
        dns_blob_unref(c);
    }
    for (int k = 0; k < 3; k++)
        if (first_seen[k] < 50)              /* expected 100 each */
            fail_msg("seed %llu: host %c first only %d/300 times",
                     (unsigned long long)seed, 'a' + k, first_seen[k]);
    dns_blob_unref(base);
    const struct dns_blob_host one = { "x.example.org", 5, 0, NULL };
    struct dns_blob *single = dns_blob_create("x.org", DNS_OK, 0, "2.0.0", "r", 0, &one, 1);
    assert_false(dns_blob_has_ties(single));
    dns_blob_unref(single);
}

static void test_blob_refs(void **state)
{
    (void)state;
    struct dns_blob *b = dns_blob_create("x.org", DNS_BOUNCE, 550, "5.1.2", "nx", 60, NULL, 0);
    assert_int_equal(dns_blob_result(b)->mx_count, 0);
    dns_blob_ref(b);
    dns_blob_unref(b);
    assert_string_equal(dns_blob_result(b)->enhanced, "5.1.2");  /* still alive */
    dns_blob_unref(b);                         /* ASan: freed exactly once */
}

static struct dns_blob *blob_named(const char *d)
{
    return dns_blob_create(d, DNS_BOUNCE, 550, "5.1.2", "nx", 1, NULL, 0);
}

static void test_cache_expiry_and_replace(void **state)
{
    (void)state;
    struct dns_cache *c = dns_cache_create(4);
    struct dns_blob *b1 = blob_named("a.org"), *b2 = blob_named("a.org");
    assert_int_equal(dns_cache_put(c, "a.org", b1, 2000), 0);
    dns_blob_unref(b1);                        /* the cache holds its own ref */
    assert_ptr_equal(dns_cache_get(c, "a.org", 1999), b1);
    assert_null(dns_cache_get(c, "a.org", 2000));      /* expires_ms is exclusive */
    assert_int_equal(dns_cache_count(c), 0);           /* dropped on the miss */
    assert_int_equal(dns_cache_put(c, "a.org", b2, 5000), 0);
    struct dns_blob *b3 = blob_named("a.org");
    assert_int_equal(dns_cache_put(c, "a.org", b3, 9000), 0);   /* replace */
    assert_int_equal(dns_cache_count(c), 1);
    assert_ptr_equal(dns_cache_get(c, "a.org", 6000), b3);
    assert_null(dns_cache_get(c, "b.org", 0));
    dns_blob_unref(b2);
    dns_blob_unref(b3);
    dns_cache_destroy(c);
}

static void test_cache_lru_eviction(void **state)
{
    (void)state;
    struct dns_cache *c = dns_cache_create(3);
    const char *names[] = { "a.org", "b.org", "c.org", "d.org", "e.org" };
    struct dns_blob *b[5];
    for (int i = 0; i < 5; i++)
        b[i] = blob_named(names[i]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(dns_cache_put(c, names[i], b[i], 10000), 0);
    assert_non_null(dns_cache_get(c, "a.org", 0));     /* a is now most recent: b is LRU */
    assert_int_equal(dns_cache_put(c, "d.org", b[3], 10000), 1);
    assert_null(dns_cache_get(c, "b.org", 0));
    assert_non_null(dns_cache_get(c, "a.org", 0));
    assert_non_null(dns_cache_get(c, "c.org", 0));     /* order now: c a d -> d is LRU */
    assert_int_equal(dns_cache_put(c, "e.org", b[4], 10000), 1);
    assert_null(dns_cache_get(c, "d.org", 0));
    assert_int_equal(dns_cache_count(c), 3);
    dns_cache_clear(c);
    assert_int_equal(dns_cache_count(c), 0);
    assert_null(dns_cache_get(c, "a.org", 0));
    for (int i = 0; i < 5; i++)
        dns_blob_unref(b[i]);
    dns_cache_destroy(c);
}

static void test_cache_churn_bounded(void **state)
{
    (void)state;
    uint64_t s = seed_get();
    struct dns_cache *c = dns_cache_create(64);
    struct dns_blob *b = blob_named("x.org");
    for (int i = 0; i < 20000; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        char name[32];
        snprintf(name, sizeof name, "d%u.org", (unsigned)(s % 200));
        uint64_t now = (uint64_t)i;
        if (s & 1)
            dns_cache_put(c, name, b, now + (s >> 8) % 50);
        else
            (void)dns_cache_get(c, name, now);
        assert_true(dns_cache_count(c) <= 64);
    }
    dns_cache_destroy(c);
    dns_blob_unref(b);                         /* last ref: the cache released all of its */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blob_layout_and_clone),
        cmocka_unit_test(test_blob_shuffle_ties_only),
        cmocka_unit_test(test_blob_refs),
        cmocka_unit_test(test_cache_expiry_and_replace),
        cmocka_unit_test(test_cache_lru_eviction),
        cmocka_unit_test(test_cache_churn_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
