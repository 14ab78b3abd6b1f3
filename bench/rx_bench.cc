// rx_bench.cc - reactor hot paths: CQE harvest+dispatch per completion (NOP
// batches), a 64-byte echo round trip over loopback through the ring (send,
// recv, linked timeouts on both), and timer heap add+pop. Skips (with a
// message) when io_uring is blocked here.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

// volley/limits.h and rx_tag.h use C11 _Static_assert, which C++ spells static_assert.
#ifndef _Static_assert
#define _Static_assert static_assert
#endif
#include "rx.h"
#include "timer.h"

namespace {

// Run the ring until *count reaches want; bounded (100 turns of <= 100 ms).
bool run_until(struct rx *rx, const unsigned *count, unsigned want)
{
    for (int turn = 0; turn < 100 && *count < want; turn++)
        rx_run_once(rx, 100);
    return *count >= want;
}

struct rx *bench_rx(benchmark::State &state, uint32_t handles)
{
    struct rx *rx = nullptr;
    struct rx_conf conf = {};
    conf.handles_max = handles;
    conf.timers_max = 64;
    conf.sq_entries = 1024;
    int rc = rx_create(&rx, &conf);
    if (rc < 0) {
        state.SkipWithError(rc == -ENOSYS || rc == -EPERM ? "io_uring blocked here"
                                                          : "rx_create failed");
        return nullptr;
    }
    return rx;
}

// N completions per iteration: submit, harvest, dispatch (counted stale NOPs).
void BM_rx_nop_batch(benchmark::State &state)
{
    struct rx *rx = bench_rx(state, 4);
    if (!rx)
        return;
    const unsigned n = static_cast<unsigned>(state.range(0));
    const uint64_t tag = rx_tag(RX_OP_NOP, 0, 0);   // generation 0 is never live
    for (auto _ : state) {
        uint64_t want = rx_stats(rx).cqes_stale + n;
        for (unsigned i = 0; i < n; i++)
            rx_nop_raw(rx, tag);
        for (int turn = 0; turn < 100 && rx_stats(rx).cqes_stale < want; turn++)
            rx_run_once(rx, 100);
        if (rx_stats(rx).cqes_stale < want) {
            state.SkipWithError("NOP completions missing");
            break;
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
    rx_destroy(rx);
}
BENCHMARK(BM_rx_nop_batch)->Arg(1)->Arg(32)->Arg(256);

struct echo {
    unsigned events;
    int last_res;
};

void echo_cb(struct rx *, const struct rx_event *ev)
{
    auto *e = static_cast<struct echo *>(ev->user);
    e->events++;
    e->last_res = ev->res;
}

// One 64-byte message client -> server -> client per iteration.
void BM_rx_echo_roundtrip(benchmark::State &state)
{
    struct rx *rx = bench_rx(state, 4);
    if (!rx)
        return;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    bind(lfd, reinterpret_cast<struct sockaddr *>(&sa), sizeof sa);
    getsockname(lfd, reinterpret_cast<struct sockaddr *>(&sa), &len);
    listen(lfd, 4);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cfd, reinterpret_cast<struct sockaddr *>(&sa), sizeof sa) != 0) {
        state.SkipWithError("loopback connect failed");
        return;
    }
    int sfd = accept(lfd, nullptr, nullptr);
    close(lfd);
    struct echo ec = {}, es = {};
    rx_handle_t hc, hs;
    rx_open(rx, cfd, echo_cb, &ec, &hc);
    rx_open(rx, sfd, echo_cb, &es, &hs);
    char out[64], in_s[64], in_c[64];
    memset(out, 'x', sizeof out);
    for (auto _ : state) {
        ec.events = es.events = 0;
        rx_recv(rx, hs, in_s, sizeof in_s, 5000);
        rx_send(rx, hc, out, sizeof out, 5000);
        if (!run_until(rx, &es.events, 1) || es.last_res <= 0) {
            state.SkipWithError("echo: server recv failed");
            break;
        }
        rx_send(rx, hs, in_s, static_cast<size_t>(es.last_res), 5000);
        rx_recv(rx, hc, in_c, sizeof in_c, 5000);
        if (!run_until(rx, &ec.events, 2) || !run_until(rx, &es.events, 2)) {
            state.SkipWithError("echo: round trip incomplete");
            break;
        }
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
    rx_destroy(rx);
}
BENCHMARK(BM_rx_echo_roundtrip);

// Add N timers with scattered deadlines, then pop them all.
void BM_timer_add_pop(benchmark::State &state)
{
    const uint32_t n = static_cast<uint32_t>(state.range(0));
    struct timer_heap t;
    timer_heap_init(&t, n);
    uint64_t id, cookie;
    for (auto _ : state) {
        for (uint32_t i = 0; i < n; i++)
            timer_add(&t, (i * 2654435761u) % 100000u, i, &id);
        while (timer_pop_due(&t, UINT64_MAX - 1, &cookie, &id))
            benchmark::DoNotOptimize(cookie);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
    timer_heap_fini(&t);
}
BENCHMARK(BM_timer_add_pop)->Arg(64)->Arg(16384);

}  // namespace
