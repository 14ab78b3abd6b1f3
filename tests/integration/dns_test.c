/* dns_test.c - the resolver against a real dnsmasq (scripts/dnsmasq.sh) on a
 * loopback high port, plus a tiny UDP responder of our own for answers
 * dnsmasq will not give (SERVFAIL, REFUSED, NXDOMAIN with an SOA) and a
 * silent socket for timeouts. Fails without dnsmasq. Stops only the
 * dnsmasq it started, by PID. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "volley/error.h"

#define WAIT_MS 5000

static pid_t dnsmasq_pid;
static char dnsmasq_addr[64];
static char tmpdir[] = "/tmp/volley-dns-test-XXXXXX";

/* ---- fixture: one lookup's outcome ---- */

struct got {
    int calls;
    const struct dns_result *res;   /* referenced */
};

static void on_result(void *ctx, const struct dns_result *res)
{
    struct got *g = ctx;
    g->calls++;
    if (g->res)
        dns_result_unref(g->res);
    g->res = dns_result_ref(res);
}

static void got_clear(struct got *g)
{
    dns_result_unref(g->res);
    memset(g, 0, sizeof *g);
}

static uint64_t fake_now_ms = 1000000;
static uint64_t fake_clock(void *ctx) { (void)ctx; return fake_now_ms; }

static struct dns *make(const char *servers, uint32_t ttl_s_min, const char *const *own, size_t nown)
{
    struct dns_config cfg = {
        .servers = servers, .port_mx = 2525, .timeout_ms_try = 500, .tries = 2,
        .ttl_s_min = ttl_s_min, .own_hosts = own, .own_hosts_count = nown,
        .seed = 42, .clock = fake_clock,
    };
    struct dns *dns = NULL;
    const char *why = NULL;
    int rc = dns_create(&cfg, &dns, &why);
    if (rc != 0)
        fail_msg("dns_create(%s): %s (%s)", servers, vl_strerror(rc), why);
    return dns;
}

/* Resolve and wait; the result stays referenced in g. */
static void resolve(struct dns *dns, const char *domain, struct got *g)
{
    got_clear(g);
    int rc = dns_resolve_mx(dns, domain, on_result, g);
    if (rc != 0)
        fail_msg("dns_resolve_mx(%s): %s", domain, vl_strerror(rc));
    assert_int_equal(g->calls, 0);                 /* never inline */
    assert_int_equal(dns_wait(dns, WAIT_MS), 0);
    assert_int_equal(g->calls, 1);
    assert_non_null(g->res);
}

static void addr_text(const union vl_sockaddr *a, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->in4.sin_addr, ip, sizeof ip);
        snprintf(out, n, "%s:%u", ip, ntohs(a->in4.sin_port));
    } else {
        inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof ip);
        snprintf(out, n, "[%s]:%u", ip, ntohs(a->in6.sin6_port));
    }
}

/* "host=addr,addr;host=addr" for compact comparisons. */
static void result_text(const struct dns_result *r, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (uint16_t i = 0; i < r->mx_count && used < n; i++) {
        used += (size_t)snprintf(out + used, n - used, "%s%s/%u=", i ? ";" : "", r->mx[i].host,
                                 r->mx[i].pref);
        for (uint16_t k = 0; k < r->mx[i].addr_count && used < n; k++) {
            char a[80];
            addr_text(&r->mx[i].addrs[k], a, sizeof a);
            used += (size_t)snprintf(out + used, n - used, "%s%s", k ? "," : "", a);
        }
    }
}

/* ---- the dnsmasq zone, table-driven ---- */

struct zone_case {
    const char *label, *domain;
    enum dns_status status;
    const char *enhanced;
    uint16_t code;
    const char *hosts;     /* result_text, or NULL for "no hosts" */
    bool implicit;
};

static const struct zone_case zone_cases[] = {
    { "two MX by pref", "example.test", DNS_OK, "2.0.0", 0,
      "mx1.example.test/10=127.0.0.2:2525;mx2.example.test/20=127.0.0.3:2525", false },
    { "case folded", "EXAMPLE.Test", DNS_OK, "2.0.0", 0,
      "mx1.example.test/10=127.0.0.2:2525;mx2.example.test/20=127.0.0.3:2525", false },
    { "implicit MX", "implicit.test", DNS_OK, "2.0.0", 0, "implicit.test/0=127.0.0.4:2525", true },
    { "v4 then v6", "v6.test", DNS_OK, "2.0.0", 0, "mx.v6.test/10=127.0.0.7:2525,[::1]:2525",
      false },
    { "null MX", "nullmx.test", DNS_BOUNCE, "5.1.10", 556, NULL, false },
    { "NXDOMAIN", "nope.test", DNS_BOUNCE, "5.1.2", 550, NULL, false },
    { "dangling MX", "dangling.test", DNS_DEFER, "4.4.4", 451, NULL, false },
    { "no MX, no address", "noaddr.test", DNS_BOUNCE, "5.4.4", 550, NULL, true },
    { "literal", "[127.0.0.9]", DNS_OK, "2.0.0", 0, "127.0.0.9/0=127.0.0.9:2525", false },
    { "literal v6", "[IPv6:::1]", DNS_OK, "2.0.0", 0, "::1/0=[::1]:2525", false },
};

static void test_zone_table(void **state)
{
    (void)state;
    struct dns *dns = make(dnsmasq_addr, 0, NULL, 0);
    struct got g = { 0 };
    for (size_t i = 0; i < sizeof zone_cases / sizeof zone_cases[0]; i++) {
        const struct zone_case *c = &zone_cases[i];
        resolve(dns, c->domain, &g);
        const struct dns_result *r = g.res;
        char text[1024];
        result_text(r, text, sizeof text);
        if (r->status != c->status || strcmp(r->enhanced, c->enhanced) != 0
            || r->smtp_code != c->code || strcmp(text, c->hosts ? c->hosts : "") != 0
            || r->implicit_mx != c->implicit)
            fail_msg("%s: got %s %u %s (%s) implicit=%d [%s]", c->label,
                     dns_status_name(r->status), r->smtp_code, r->enhanced, r->reason,
                     r->implicit_mx, text);
        assert_false(r->from_cache);
    }
    got_clear(&g);
    dns_destroy(dns);
}

static void test_equal_preferences_shuffled(void **state)
{
    (void)state;
    struct dns *dns = make(dnsmasq_addr, 1, NULL, 0);
    struct got g = { 0 };
    int a_first = 0, b_first = 0;
    for (int i = 0; i < 40; i++) {           /* cached after the first: shuffled per answer */
        resolve(dns, "equal.test", &g);
        assert_int_equal(g.res->status, DNS_OK);
        assert_int_equal(g.res->mx_count, 2);
        assert_int_equal(g.res->mx[0].pref, 10);
        assert_int_equal(g.res->mx[1].pref, 10);
        if (strcmp(g.res->mx[0].host, "mx-a.equal.test") == 0)
            a_first++;
        else
            b_first++;
    }
    struct dns_stats st;
    dns_stats_get(dns, &st);
    assert_int_equal(st.queries_sent, 1 + 2 * 2);   /* one MX, A+AAAA for two hosts */
    assert_int_equal(st.cache_hits, 39);
    if (a_first == 0 || b_first == 0)
        fail_msg("no shuffle: a first %d, b first %d", a_first, b_first);
    got_clear(&g);
    dns_destroy(dns);
}

static void test_own_host(void **state)
{
    (void)state;
    static const char *const own_name[] = { "self.mx.test" };
    static const char *const own_addr[] = { "127.0.0.3" };
    struct got g = { 0 };
    struct dns *dns = make(dnsmasq_addr, 0, own_name, 1);
    resolve(dns, "self.test", &g);                 /* best MX is us: nothing left */
    assert_int_equal(g.res->status, DNS_BOUNCE);
    assert_string_equal(g.res->enhanced, "5.4.6");
    resolve(dns, "example.test", &g);              /* not ours: untouched */
    assert_int_equal(g.res->mx_count, 2);
    dns_destroy(dns);
    dns = make(dnsmasq_addr, 0, own_addr, 1);
    resolve(dns, "example.test", &g);              /* mx2 (pref 20) is our address */
    assert_int_equal(g.res->status, DNS_OK);
    assert_int_equal(g.res->mx_count, 1);
    assert_string_equal(g.res->mx[0].host, "mx1.example.test");
    got_clear(&g);
    dns_destroy(dns);
}

static void test_ttl_zero_floor(void **state)
{
    (void)state;
    struct got g = { 0 };
    struct dns_stats st;
    /* Floor 0: dnsmasq's TTL-0 answers are not kept. */
    struct dns *dns = make(dnsmasq_addr, 0, NULL, 0);
    resolve(dns, "implicit.test", &g);
    resolve(dns, "implicit.test", &g);
    assert_false(g.res->from_cache);
    dns_stats_get(dns, &st);
    assert_int_equal(st.queries_sent, 6);
    assert_int_equal(st.cache_entries, 0);
    dns_destroy(dns);
    /* Floor 1 s: kept one second, positive and negative alike. */
    dns = make(dnsmasq_addr, 1, NULL, 0);
    resolve(dns, "implicit.test", &g);
    assert_int_equal(g.res->ttl_s, 0);
    resolve(dns, "nope.test", &g);
    fake_now_ms += 999;
    resolve(dns, "implicit.test", &g);
    assert_true(g.res->from_cache);
    resolve(dns, "nope.test", &g);
    assert_true(g.res->from_cache);
    assert_string_equal(g.res->enhanced, "5.1.2");
    dns_stats_get(dns, &st);
    assert_int_equal(st.queries_sent, 3 + 1);
    fake_now_ms += 2;
    resolve(dns, "implicit.test", &g);
    assert_false(g.res->from_cache);
    dns_stats_get(dns, &st);
    assert_int_equal(st.queries_sent, 4 + 3);
    got_clear(&g);
    dns_destroy(dns);
}

static void test_coalescing(void **state)
{
    (void)state;
    struct dns *dns = make(dnsmasq_addr, 0, NULL, 0);
    struct got g[5] = { 0 };
    for (int i = 0; i < 5; i++)
        assert_int_equal(dns_resolve_mx(dns, "example.test", on_result, &g[i]), 0);
    assert_int_equal(dns_wait(dns, WAIT_MS), 0);
    struct dns_stats st;
    dns_stats_get(dns, &st);
    assert_int_equal(st.coalesced, 4);
    assert_int_equal(st.queries_sent, 1 + 2 * 2);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(g[i].calls, 1);
        assert_int_equal(g[i].res->mx_count, 2);
        got_clear(&g[i]);
    }
    dns_destroy(dns);
}

static void test_routes(void **state)
{
    (void)state;
    struct dns *dns = make(dnsmasq_addr, 0, NULL, 0);
    struct got g = { 0 };
    const char *why = NULL;
    assert_int_equal(dns_route_add(dns, "Routed.test", "127.0.0.2:2600", &why), 0);
    assert_int_equal(dns_route_add_spec(dns, "byname.test=mx2.example.test:2601", &why), 0);
    assert_int_equal(dns_route_add_spec(dns, "v6route.test=[::1]:2602", &why), 0);
    resolve(dns, "routed.test", &g);
    assert_true(g.res->routed);
    char text[256];
    result_text(g.res, text, sizeof text);
    assert_string_equal(text, "127.0.0.2/0=127.0.0.2:2600");
    resolve(dns, "byname.test", &g);
    result_text(g.res, text, sizeof text);
    assert_string_equal(text, "mx2.example.test/0=127.0.0.3:2601");
    assert_true(g.res->routed);
    resolve(dns, "v6route.test", &g);
    result_text(g.res, text, sizeof text);
    assert_string_equal(text, "::1/0=[::1]:2602");
    resolve(dns, "example.test", &g);              /* no '*' yet: real MX */
    assert_false(g.res->routed);
    assert_int_equal(dns_route_add_spec(dns, "*=127.0.0.5:2603", &why), 0);
    resolve(dns, "example.test", &g);
    result_text(g.res, text, sizeof text);
    assert_string_equal(text, "127.0.0.5/0=127.0.0.5:2603");
    resolve(dns, "routed.test", &g);               /* its own route wins over '*' */
    result_text(g.res, text, sizeof text);
    assert_string_equal(text, "127.0.0.2/0=127.0.0.2:2600");
    got_clear(&g);
    dns_destroy(dns);
}

struct bad_case { const char *label, *spec; };

static const struct bad_case bad_routes[] = {
    { "no =",          "example.org" },
    { "no port",       "example.org=127.0.0.1" },
    { "port 0",        "example.org=127.0.0.1:0" },
    { "port too big",  "example.org=127.0.0.1:65536" },
    { "port junk",     "example.org=127.0.0.1:25x" },
    { "bad domain",    "exa mple.org=127.0.0.1:25" },
    { "empty domain",  "=127.0.0.1:25" },
    { "bad v6",        "example.org=[nope]:25" },
    { "bad host",      "example.org=bad_host!:25" },
};

static void test_bad_input(void **state)
{
    (void)state;
    struct dns *dns = make(dnsmasq_addr, 0, NULL, 0);
    for (size_t i = 0; i < sizeof bad_routes / sizeof bad_routes[0]; i++) {
        const char *why = NULL;
        int rc = dns_route_add_spec(dns, bad_routes[i].spec, &why);
        if (rc != VL_E_INVALID || !why || !*why)
            fail_msg("%s: rc %d why %s", bad_routes[i].label, rc, why ? why : "(null)");
    }
    struct got g = { 0 };
    assert_int_equal(dns_resolve_mx(dns, "bad domain", on_result, &g), VL_E_INVALID);
    assert_int_equal(dns_resolve_mx(dns, "", on_result, &g), VL_E_INVALID);
    assert_int_equal(dns_resolve_mx(dns, "trailing.dot.", on_result, &g), VL_E_INVALID);
    assert_int_equal(dns_wait(dns, 100), 0);
    assert_int_equal(g.calls, 0);
    dns_destroy(dns);
    static const char *const bad_servers[] = { "dns.example.org:53", "127.0.0.1:99999", "",
                                               "1.2.3.4,5.6.7.8,1.1.1.1,2.2.2.2,3.3.3.3" };
    for (size_t i = 0; i < sizeof bad_servers / sizeof bad_servers[0]; i++) {
        struct dns_config cfg = { .servers = bad_servers[i] };
        const char *why = NULL;
        struct dns *d = NULL;
        if (dns_create(&cfg, &d, &why) != VL_E_INVALID || !why || !*why)
            fail_msg("server list '%s' accepted", bad_servers[i]);
    }
    static const char *const bad_own[] = { "not a host" };
    struct dns_config cfg = { .servers = "127.0.0.1:53", .own_hosts = bad_own,
                              .own_hosts_count = 1 };
    const char *why = NULL;
    struct dns *d = NULL;
    assert_int_equal(dns_create(&cfg, &d, &why), VL_E_INVALID);
}

static void test_backpressure_and_destroy(void **state)
{
    (void)state;
    struct dns_config cfg = { .servers = dnsmasq_addr, .inflight_max = 1, .waiters_max = 3 };
    struct dns *dns = NULL;
    const char *why;
    assert_int_equal(dns_create(&cfg, &dns, &why), 0);
    struct got g[4] = { 0 };
    assert_int_equal(dns_resolve_mx(dns, "example.test", on_result, &g[0]), 0);
    assert_int_equal(dns_resolve_mx(dns, "implicit.test", on_result, &g[1]), -EAGAIN);
    assert_int_equal(dns_resolve_mx(dns, "example.test", on_result, &g[1]), 0);
    assert_int_equal(dns_resolve_mx(dns, "example.test", on_result, &g[2]), 0);
    assert_int_equal(dns_resolve_mx(dns, "example.test", on_result, &g[3]), -EAGAIN);
    assert_true(dns_busy(dns));
    dns_destroy(dns);                              /* pending: no callback, no leak */
    for (int i = 0; i < 4; i++)
        assert_int_equal(g[i].calls, 0);
}

/* ---- the owner's event loop: sock_state_cb + dns_process_fd, no dns_wait ---- */

struct loop { struct pollfd fds[16]; int n; int opened, closed; };

static void on_sock_state(void *ctx, int fd, bool r, bool w)
{
    struct loop *l = ctx;
    for (int i = 0; i < l->n; i++) {
        if (l->fds[i].fd != fd)
            continue;
        if (!r && !w) {
            l->fds[i] = l->fds[--l->n];
            l->closed++;
        } else {
            l->fds[i].events = (short)((r ? POLLIN : 0) | (w ? POLLOUT : 0));
        }
        return;
    }
    assert_true(r || w);
    assert_true(l->n < 16);
    l->fds[l->n++] = (struct pollfd){ .fd = fd, .events = (short)((r ? POLLIN : 0)
                                                                  | (w ? POLLOUT : 0)) };
    l->opened++;
}

static void test_owner_event_loop(void **state)
{
    (void)state;
    struct loop l = { .n = 0 };
    struct dns_config cfg = { .servers = dnsmasq_addr, .sock_state_cb = on_sock_state,
                              .sock_state_ctx = &l };
    struct dns *dns = NULL;
    const char *why;
    assert_int_equal(dns_create(&cfg, &dns, &why), 0);
    struct got g = { 0 };
    assert_int_equal(dns_resolve_mx(dns, "example.test", on_result, &g), 0);
    assert_true(l.opened >= 1);
    for (int round = 0; round < 200 && g.calls == 0; round++) {
        int64_t t = dns_next_timeout_ms(dns);
        assert_true(t >= 0);
        int rc = poll(l.fds, (nfds_t)l.n, (int)(t > 100 ? 100 : t));
        assert_true(rc >= 0);
        struct pollfd ready[16];
        int nready = 0;
        for (int i = 0; i < l.n; i++)          /* copy: callbacks edit l.fds */
            if (l.fds[i].revents)
                ready[nready++] = l.fds[i];
        for (int i = 0; i < nready; i++)
            dns_process_fd(dns, ready[i].fd, ready[i].revents & POLLIN,
                           ready[i].revents & POLLOUT);
        dns_process_timeouts(dns, 0);
    }
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.res->mx_count, 2);
    assert_int_equal(dns_next_timeout_ms(dns), -1);
    got_clear(&g);
    dns_destroy(dns);
    assert_int_equal(l.opened, l.closed);         /* every fd we polled was released */
    assert_int_equal(l.n, 0);
}

/* ---- our own responder: SERVFAIL, REFUSED, NXDOMAIN with an SOA ---- */

enum {
    RESP_SERVFAIL = 2, RESP_NXDOMAIN_SOA = 3, RESP_REFUSED = 5,   /* = the RCODE sent */
    RESP_ZONE = 16,      /* MX 10 mx.<qname> TTL 120; A 127.0.0.1 TTL 60; AAAA NODATA+SOA */
    RESP_BAD_MX = 17,    /* MX 10 "b d.<qname>": not a host name */
};

struct responder {
    int fd;
    uint16_t port;
    atomic_int mode;
    atomic_int queries;
    atomic_bool stop;
    pthread_t thread;
};

static size_t soa_append(uint8_t *b, size_t n)
{
    static const uint8_t soa[] = {
        0xC0, 0x0C, 0x00, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 30,     /* TTL 30 */
        0x00, 0x1E,                                                   /* rdlength 30 */
        2, 'n', 's', 0xC0, 0x0C,                                      /* mname */
        2, 'h', 'm', 0xC0, 0x0C,                                      /* rname */
        0, 0, 0, 1,  0, 0, 0x0E, 0x10,  0, 0, 0x02, 0x58,              /* serial refresh retry */
        0, 0x01, 0x51, 0x80,  0, 0, 0, 60,                            /* expire, MINIMUM 60 */
    };
    memcpy(b + n, soa, sizeof soa);
    return n + sizeof soa;
}

/* Answer the single question in b[0..n) as RESP_ZONE / RESP_BAD_MX describe. */
static size_t zone_answer(uint8_t *b, size_t n, int mode)
{
    size_t q = 12;
    while (q < n && b[q] != 0)
        q += 1u + b[q];
    if (q + 5 > n)
        return n;
    uint16_t qtype = (uint16_t)(b[q + 1] << 8 | b[q + 2]);
    static const uint8_t mx_good[] = { 0xC0, 0x0C, 0, 15, 0, 1, 0, 0, 0, 120, 0, 7,
                                       0, 10, 2, 'm', 'x', 0xC0, 0x0C };
    static const uint8_t mx_bad[] = { 0xC0, 0x0C, 0, 15, 0, 1, 0, 0, 0, 120, 0, 8,
                                      0, 10, 3, 'b', ' ', 'd', 0xC0, 0x0C };
    static const uint8_t a[] = { 0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1 };
    const uint8_t *rr = NULL;
    size_t rl = 0;
    if (qtype == 15) {
        rr = mode == RESP_BAD_MX ? mx_bad : mx_good;
        rl = mode == RESP_BAD_MX ? sizeof mx_bad : sizeof mx_good;
    } else if (qtype == 1) {
        rr = a;
        rl = sizeof a;
    }
    if (!rr) {
        b[9] = 1;                                                     /* NODATA + SOA */
        return soa_append(b, n);
    }
    b[7] = 1;                                                         /* ANCOUNT 1 */
    memcpy(b + n, rr, rl);
    return n + rl;
}

static void *responder_main(void *arg)
{
    struct responder *r = arg;
    for (int i = 0; i < 6000 && !atomic_load(&r->stop); i++) {      /* <= 60 s */
        struct pollfd p = { .fd = r->fd, .events = POLLIN };
        if (poll(&p, 1, 10) <= 0)
            continue;
        uint8_t b[600];
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(r->fd, b, 512, 0, (struct sockaddr *)&from, &fl);
        if (n < 12)
            continue;
        atomic_fetch_add(&r->queries, 1);
        int mode = atomic_load(&r->mode);
        b[2] = (uint8_t)(0x80 | (b[2] & 0x01));                      /* QR, keep RD */
        b[3] = (uint8_t)(0x80 | (mode < 16 ? mode : 0));              /* RA, RCODE */
        memset(b + 6, 0, 6);                                          /* no AN/NS/AR */
        size_t len = (size_t)n;
        if (mode >= 16)
            len = zone_answer(b, len, mode);
        else if (mode == RESP_NXDOMAIN_SOA) {
            b[9] = 1;                                                 /* NSCOUNT 1 */
            len = soa_append(b, len);
        }
        sendto(r->fd, b, len, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

static void responder_start(struct responder *r, int mode)
{
    memset(r, 0, sizeof *r);
    r->fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(r->fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001) };
    assert_int_equal(bind(r->fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(r->fd, (struct sockaddr *)&a, &al), 0);
    r->port = ntohs(a.sin_port);
    atomic_store(&r->mode, mode);
    assert_int_equal(pthread_create(&r->thread, NULL, responder_main, r), 0);
}

static void responder_stop(struct responder *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    close(r->fd);
}

struct fail_case { const char *label; int mode; const char *reason; };

static const struct fail_case fail_cases[] = {
    /* c-ares 1.18 turns both into ARES_ECONNREFUSED after trying every server */
    { "SERVFAIL", RESP_SERVFAIL, "DNS server failed or unreachable" },
    { "REFUSED",  RESP_REFUSED,  "DNS server failed or unreachable" },
};

static void test_server_failures_defer(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fail_cases / sizeof fail_cases[0]; i++) {
        struct responder r;
        responder_start(&r, fail_cases[i].mode);
        char srv[64];
        snprintf(srv, sizeof srv, "127.0.0.1:%u", r.port);
        struct dns *dns = make(srv, 1, NULL, 0);
        struct got g = { 0 };
        resolve(dns, "example.org", &g);
        if (g.res->status != DNS_DEFER || strcmp(g.res->enhanced, "4.4.3") != 0
            || g.res->smtp_code != 451)
            fail_msg("%s: %s %s (%s)", fail_cases[i].label, dns_status_name(g.res->status),
                     g.res->enhanced, g.res->reason);
        if (fail_cases[i].reason)
            assert_string_equal(g.res->reason, fail_cases[i].reason);
        assert_true(atomic_load(&r.queries) >= 1);
        resolve(dns, "example.org", &g);               /* deferrals are not cached */
        assert_false(g.res->from_cache);
        got_clear(&g);
        dns_destroy(dns);
        responder_stop(&r);
    }
}

static void test_nxdomain_soa_negative_ttl(void **state)
{
    (void)state;
    struct responder r;
    responder_start(&r, RESP_NXDOMAIN_SOA);
    char srv[64];
    snprintf(srv, sizeof srv, "127.0.0.1:%u", r.port);
    struct dns *dns = make(srv, 1, NULL, 0);
    struct got g = { 0 };
    resolve(dns, "gone.example.org", &g);
    assert_int_equal(g.res->status, DNS_BOUNCE);
    assert_string_equal(g.res->enhanced, "5.1.2");
    assert_int_equal(g.res->ttl_s, 30);                /* min(SOA TTL 30, MINIMUM 60) */
    fake_now_ms += 29 * 1000;
    resolve(dns, "gone.example.org", &g);
    assert_true(g.res->from_cache);
    fake_now_ms += 2 * 1000;
    resolve(dns, "gone.example.org", &g);
    assert_false(g.res->from_cache);
    assert_int_equal(atomic_load(&r.queries), 2);
    got_clear(&g);
    dns_destroy(dns);
    responder_stop(&r);
}

static void test_ttl_is_min_over_mx_and_addresses(void **state)
{
    (void)state;
    struct responder r;
    responder_start(&r, RESP_ZONE);
    char srv[64];
    snprintf(srv, sizeof srv, "127.0.0.1:%u", r.port);
    struct dns *dns = make(srv, 1, NULL, 0);
    struct got g = { 0 };
    resolve(dns, "zone.example.org", &g);
    char text[256];
    result_text(g.res, text, sizeof text);
    assert_string_equal(text, "mx.zone.example.org/10=127.0.0.1:2525");
    assert_int_equal(g.res->ttl_s, 60);                /* min(MX 120, A 60) */
    fake_now_ms += 59 * 1000;
    resolve(dns, "zone.example.org", &g);
    assert_true(g.res->from_cache);
    fake_now_ms += 2 * 1000;
    resolve(dns, "zone.example.org", &g);
    assert_false(g.res->from_cache);
    assert_int_equal(atomic_load(&r.queries), 6);
    atomic_store(&r.mode, RESP_BAD_MX);                /* only an unusable MX: defer */
    resolve(dns, "bad.example.org", &g);
    assert_int_equal(g.res->status, DNS_DEFER);
    assert_string_equal(g.res->enhanced, "4.4.4");
    got_clear(&g);
    dns_destroy(dns);
    responder_stop(&r);
}

static void test_timeout_defers(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);          /* bound, never answers */
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001) };
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    char srv[64];
    snprintf(srv, sizeof srv, "127.0.0.1:%u", ntohs(a.sin_port));
    struct dns_config cfg = { .servers = srv, .timeout_ms_try = 100, .tries = 1 };
    struct dns *dns = NULL;
    const char *why;
    assert_int_equal(dns_create(&cfg, &dns, &why), 0);
    struct got g = { 0 };
    resolve(dns, "example.org", &g);
    assert_int_equal(g.res->status, DNS_DEFER);
    assert_string_equal(g.res->enhanced, "4.4.3");
    assert_string_equal(g.res->reason, "DNS timeout");
    got_clear(&g);
    dns_destroy(dns);
    close(fd);
}

/* ---- dnsmasq lifetime ---- */

/* Run scripts/dnsmasq.sh in tmpdir/SUB with ARGS; 0 or 1 (dnsmasq missing or failed). */
static int dnsmasq_spawn(const char *sub, const char *args, pid_t *pid_out, char *addr, size_t n)
{
    const char *src = getenv("VOLLEY_SRC");
    char dir[512], cmd[2048];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    if (mkdir(dir, 0700) != 0) {
        perror("mkdir");
        return 1;
    }
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/dnsmasq.sh' --dir '%s' --watch %d %s",
             src ? src : ".", dir, (int)getpid(), args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 1;
    unsigned pid = 0, port = 0;
    int got = fscanf(p, "%u %u", &pid, &port);
    int st = pclose(p);
    if (got != 2 || pid == 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "dns_test: scripts/dnsmasq.sh %s failed (status %d)\n", args, st);
        return 1;
    }
    *pid_out = (pid_t)pid;
    snprintf(addr, n, "127.0.0.1:%u", port);
    return 0;
}

/* Not our child (the script started it): signal, then poll until it is gone. */
static void dnsmasq_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 50 && kill(pid, 0) == 0; i++)
        usleep(20000);
}

static int dnsmasq_start(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    return dnsmasq_spawn("zone", "", &dnsmasq_pid, dnsmasq_addr, sizeof dnsmasq_addr);
}

/* --local-ttl 300: real TTLs reach the result and bound the cache. */
static void test_local_ttl(void **state)
{
    (void)state;
    pid_t pid = 0;
    char addr[64];
    assert_int_equal(dnsmasq_spawn("ttl", "--ttl 300 --no-defaults 'local=/test/' "
                                   "'mx-host=ttl.test,mx.ttl.test,10' "
                                   "'host-record=mx.ttl.test,127.0.0.8'", &pid, addr,
                                   sizeof addr), 0);
    struct dns *dns = make(addr, 1, NULL, 0);
    struct got g = { 0 };
    resolve(dns, "ttl.test", &g);
    assert_int_equal(g.res->status, DNS_OK);
    assert_int_equal(g.res->ttl_s, 300);
    fake_now_ms += 299 * 1000;
    resolve(dns, "ttl.test", &g);
    assert_true(g.res->from_cache);
    assert_int_equal(g.res->ttl_s, 300);
    fake_now_ms += 2 * 1000;
    resolve(dns, "ttl.test", &g);
    assert_false(g.res->from_cache);
    struct dns_stats st;
    dns_stats_get(dns, &st);
    assert_int_equal(st.queries_sent, 6);
    got_clear(&g);
    dns_destroy(dns);
    dnsmasq_kill(pid);
}

static void dnsmasq_stop(void)
{
    dnsmasq_kill(dnsmasq_pid);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "dns_test: could not remove %s\n", tmpdir);
}

int main(void)
{
    int rc = dnsmasq_start();
    if (rc != 0) {
        dnsmasq_stop();
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zone_table),
        cmocka_unit_test(test_equal_preferences_shuffled),
        cmocka_unit_test(test_own_host),
        cmocka_unit_test(test_ttl_zero_floor),
        cmocka_unit_test(test_coalescing),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_backpressure_and_destroy),
        cmocka_unit_test(test_owner_event_loop),
        cmocka_unit_test(test_server_failures_defer),
        cmocka_unit_test(test_nxdomain_soa_negative_ttl),
        cmocka_unit_test(test_ttl_is_min_over_mx_and_addresses),
        cmocka_unit_test(test_timeout_defers),
        cmocka_unit_test(test_local_ttl),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    dnsmasq_stop();
    return rc;
}
