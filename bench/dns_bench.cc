// dns_bench.cc - DNS hot paths without the network: raw MX answer parsing,
// TTL cache lookups (hit, and hit with a tie reshuffle), and the public
// resolve+dispatch path for a static route. Each smoke run takes well under a second.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

// include/volley/limits.h uses C11 _Static_assert; C++ spells it static_assert.
#ifndef _Static_assert
#define _Static_assert static_assert
#endif
#include "dns.h"
#include "dns_cache.h"
#include "dns_parse.h"

namespace {

struct Writer {
    std::vector<uint8_t> b;
    void u8(uint8_t v) { b.push_back(v); }
    void u16(uint16_t v) { u8(uint8_t(v >> 8)); u8(uint8_t(v)); }
    void u32(uint32_t v) { u16(uint16_t(v >> 16)); u16(uint16_t(v)); }
    void name(const std::string &s) {
        size_t start = 0;
        while (start < s.size()) {
            size_t dot = s.find('.', start);
            if (dot == std::string::npos) dot = s.size();
            u8(uint8_t(dot - start));
            for (size_t i = start; i < dot; i++) u8(uint8_t(s[i]));
            start = dot + 1;
        }
        u8(0);
    }
};

// An MX answer with n records, targets compressed against the question name.
std::vector<uint8_t> mx_answer(int n)
{
    Writer w;
    w.u16(0x1234); w.u16(0x8180); w.u16(1); w.u16(uint16_t(n)); w.u16(0); w.u16(0);
    w.name("example.org");
    w.u16(DNS_TYPE_MX); w.u16(1);
    for (int i = 0; i < n; i++) {
        w.u16(0xC00C); w.u16(DNS_TYPE_MX); w.u16(1); w.u32(300);
        w.u16(2 + 1 + 3 + 2);
        w.u16(uint16_t(10 * (i / 2 + 1)));
        w.u8(3); w.u8('m'); w.u8('x'); w.u8(uint8_t('a' + i % 26));
        w.u16(0xC00C);
    }
    return w.b;
}

void BM_ParseMx(benchmark::State &state)
{
    const int n = int(state.range(0));
    std::vector<uint8_t> buf = mx_answer(n);
    struct dns_rr_mx out[VL_DNS_MX_HOSTS_MAX * 2];
    struct dns_parse_info info;
    for (auto _ : state) {
        int got = dns_parse_mx(buf.data(), buf.size(), &info, out, VL_DNS_MX_HOSTS_MAX * 2);
        benchmark::DoNotOptimize(got);
        if (got != n) state.SkipWithError("parse failed");
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(buf.size()));
}
BENCHMARK(BM_ParseMx)->Arg(1)->Arg(4)->Arg(16);

dns_blob *sample_blob(const char *domain, bool ties)
{
    union vl_sockaddr a[2];
    std::memset(a, 0, sizeof a);
    for (int i = 0; i < 2; i++) {
        a[i].in4.sin_family = AF_INET;
        a[i].in4.sin_port = htons(25);
        a[i].in4.sin_addr.s_addr = htonl(0xC0000201u + uint32_t(i));
    }
    dns_blob_host h[2] = { { "mx1.example.org", 10, 1, &a[0] },
                           { "mx2.example.org", uint16_t(ties ? 10 : 20), 1, &a[1] } };
    return dns_blob_create(domain, DNS_OK, 0, "2.0.0", "resolved", 300, h, 2);
}

// Lookup of a present key in a cache of range(0) entries.
void BM_CacheGetHit(benchmark::State &state)
{
    const uint32_t n = uint32_t(state.range(0));
    dns_cache *c = dns_cache_create(n);
    std::vector<std::string> keys;
    for (uint32_t i = 0; i < n; i++) {
        keys.push_back("d" + std::to_string(i) + ".example.org");
        dns_blob *b = sample_blob(keys.back().c_str(), false);
        dns_cache_put(c, keys.back().c_str(), b, 1u << 30);
        dns_blob_unref(b);
    }
    size_t i = 0;
    for (auto _ : state) {
        dns_blob *b = dns_cache_get(c, keys[i].c_str(), 1);
        benchmark::DoNotOptimize(b);
        if (++i == keys.size()) i = 0;
    }
    state.SetItemsProcessed(state.iterations());
    dns_cache_destroy(c);
}
BENCHMARK(BM_CacheGetHit)->Arg(1024)->Arg(65536);

// What a cache hit costs when preferences tie: clone + shuffle + release.
void BM_CloneShuffle(benchmark::State &state)
{
    dns_blob *b = sample_blob("example.org", true);
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (auto _ : state) {
        dns_blob *c = dns_blob_clone(b);
        dns_blob_shuffle(c, &rng);
        benchmark::DoNotOptimize(c);
        dns_blob_unref(c);
    }
    state.SetItemsProcessed(state.iterations());
    dns_blob_unref(b);
}
BENCHMARK(BM_CloneShuffle);

void on_result(void *ctx, const struct dns_result *res)
{
    (*static_cast<uint64_t *>(ctx)) += res->mx_count;
}

// Public API, static route: dns_resolve_mx + deferred callback dispatch.
void BM_ResolveRouted(benchmark::State &state)
{
    dns_config cfg{};
    cfg.servers = "127.0.0.1:9";        // never queried: every domain is routed
    dns *d = nullptr;
    const char *why = nullptr;
    if (dns_create(&cfg, &d, &why) != 0 || dns_route_add(d, "*", "127.0.0.2:2525", &why) != 0) {
        state.SkipWithError("dns_create/route failed");
        return;
    }
    uint64_t hosts = 0;
    for (auto _ : state) {
        dns_resolve_mx(d, "example.org", on_result, &hosts);
        dns_process_timeouts(d, 0);
    }
    if (hosts != uint64_t(state.iterations())) state.SkipWithError("callbacks missing");
    state.SetItemsProcessed(state.iterations());
    dns_destroy(d);
}
BENCHMARK(BM_ResolveRouted);

}  // namespace
