// queue_bench.cc - the persistent queue with full durability (fsync per commit):
//   BM_Enqueue/R/threads:T   R recipients per message, T threads sharing one queue
//                            handle (group commit: concurrent enqueues share a txn)
//   BM_EnqueueOnePerTxn      1 recipient per message, one thread: one txn+fsync each
//   BM_Lease                 lease 1000 ready recipients grouped by domain, release
//   BM_Complete              lease 1000, complete them (delivered) in one txn
//   BM_Restart1M             open a 1,000,000-recipient queue + first lease, its
//                            pages evicted from the page cache first (cold start)
//                            (only with VOLLEY_BENCH_BIG=1: building it takes a while)
// Counters: items_per_second = recipient records (or outcomes) per second;
// disk_B_per_rcpt = data file bytes / queued recipients.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <vector>

extern "C" {
#include "volley/error.h"
#include "volley/queue.h"
}

namespace {

const unsigned kShards = 2;
const unsigned kDomains = 50;
const uint64_t kNow = 1700000000000ull;

int rm_one(const char *p, const struct stat *, int, struct FTW *) { return remove(p); }

struct Fixture {
    char dir[64];
    struct vl_queue *q = nullptr;
    std::string body;
    Fixture(unsigned shards = kShards)
    {
        snprintf(dir, sizeof dir, "/tmp/vlq-bench-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        std::string d = std::string(dir) + "/q";
        if (vl_queue_open(d.c_str(), shards, VL_QUEUE_CREATE, &q) != 0)
            abort();
        body = "From: bench@x.org\r\nSubject: bench\r\n\r\n";
        while (body.size() < 2048)
            body += "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\r\n";
    }
    ~Fixture()
    {
        vl_queue_close(q);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    // Enqueue one message with n recipients (names from seq); returns rc.
    int enqueue(uint64_t seq, size_t n)
    {
        std::vector<std::string> a(n);
        std::vector<const char *> r(n);
        for (size_t i = 0; i < n; i++) {
            a[i] = "u" + std::to_string(seq) + "." + std::to_string(i) + "@d"
                   + std::to_string((seq + i) % kDomains) + ".example";
            r[i] = a[i].c_str();
        }
        struct vl_queue_new_msg m = { "bench@x.org", 11, body.data(), body.size(), 0,
                                      r.data(), nullptr, n };
        return vl_queue_enqueue(q, &m, kNow, nullptr);
    }
    double disk_per_rcpt()
    {
        struct vl_queue_stats st;
        vl_queue_stats(q, -1, &st);
        uint64_t n = st.by_state[VL_RCPT_READY] + st.by_state[VL_RCPT_DEFERRED];
        return n ? (double)st.disk_bytes / (double)n : 0;
    }
};

Fixture *g_fx;

void BM_Enqueue(benchmark::State &state)
{
    size_t rcpts = (size_t)state.range(0);
    if (state.thread_index() == 0)
        g_fx = new Fixture();
    uint64_t seq = (uint64_t)state.thread_index() << 40;
    for (auto _ : state)
        if (g_fx->enqueue(seq++, rcpts) != 0)
            state.SkipWithError("enqueue failed");
    state.SetItemsProcessed((int64_t)(state.iterations() * rcpts));
    if (state.thread_index() == 0) {
        struct vl_queue_stats st;
        vl_queue_stats(g_fx->q, -1, &st);
        state.counters["disk_B_per_rcpt"] = g_fx->disk_per_rcpt();
        state.counters["writes_per_commit"] = st.commits ? (double)st.requests / st.commits : 0;
        delete g_fx;
    }
}
BENCHMARK(BM_Enqueue)->Arg(1)->Arg(100)->Arg(1000)
    ->Threads(1)->Threads(16)->Threads(64)->UseRealTime();

void BM_EnqueueOnePerTxn(benchmark::State &state)
{
    Fixture fx(1);
    uint64_t seq = 0;
    for (auto _ : state)
        if (fx.enqueue(seq++, 1) != 0)
            state.SkipWithError("enqueue failed");
    state.SetItemsProcessed((int64_t)state.iterations());
}
BENCHMARK(BM_EnqueueOnePerTxn)->UseRealTime();

// Fill so that shard 0 holds about n ready recipients.
void fill(Fixture &fx, size_t n, uint64_t *seq)
{
    while (true) {
        struct vl_queue_stats st;
        vl_queue_stats(fx.q, 0, &st);
        if (st.by_state[VL_RCPT_READY] >= n)
            return;
        if (fx.enqueue((*seq)++, 1000) != 0)
            abort();
    }
}

void BM_Lease(benchmark::State &state)
{
    Fixture fx;
    uint64_t seq = 0;
    fill(fx, 20000, &seq);
    struct vl_queue_shard *s = vl_queue_shard(fx.q, 0);
    int64_t leased = 0;
    for (auto _ : state) {
        struct vl_queue_batch *b;
        int n = vl_queue_lease(s, kNow, 1000, &b);
        if (n <= 0)
            state.SkipWithError("lease failed");
        leased += n;
        vl_queue_batch_release(s, b);
    }
    state.SetItemsProcessed(leased);
}
BENCHMARK(BM_Lease)->UseRealTime();

void BM_Complete(benchmark::State &state)
{
    Fixture fx;
    uint64_t seq = 0;
    struct vl_queue_shard *s = vl_queue_shard(fx.q, 0);
    std::vector<struct vl_queue_outcome> o(1000);
    int64_t done = 0;
    for (auto _ : state) {
        state.PauseTiming();
        fill(fx, 1000, &seq);
        struct vl_queue_batch *b;
        int n = vl_queue_lease(s, kNow, 1000, &b);
        for (int i = 0; i < n; i++)
            o[i] = { b->rcpts[i].id, VL_RCPT_DELIVERED, 0, 250, "2.0.0", "ok", 2, false };
        state.ResumeTiming();
        if (vl_queue_complete(s, o.data(), (size_t)n, nullptr, 0, kNow) != n)
            state.SkipWithError("complete failed");
        done += n;
        vl_queue_batch_release(s, b);
    }
    state.SetItemsProcessed(done);
}
BENCHMARK(BM_Complete)->UseRealTime();

void BM_Restart1M(benchmark::State &state)
{
    static Fixture *fx;                               // built once, kept for repetitions
    static double disk_per_rcpt;
    if (!fx) {
        fx = new Fixture();
        for (uint64_t seq = 0; seq < 1000; seq++)    // 1000 messages x 1000 recipients
            if (fx->enqueue(seq, 1000) != 0)
                abort();
        disk_per_rcpt = fx->disk_per_rcpt();
        vl_queue_close(fx->q);
        fx->q = nullptr;
        atexit([] { delete fx; });
    }
    state.counters["disk_B_per_rcpt"] = disk_per_rcpt;
    std::string d = std::string(fx->dir) + "/q";
    for (auto _ : state) {
        state.PauseTiming();                          // cold start: evict this queue's pages
        for (unsigned k = 0; k < kShards; k++) {
            std::string f = d + "/shard-" + std::to_string(k) + "/data.mdb";
            int fd = open(f.c_str(), O_RDONLY);
            if (fd >= 0) {
                fdatasync(fd);
                posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
                close(fd);
            }
        }
        state.ResumeTiming();
        struct vl_queue *q;
        if (vl_queue_open(d.c_str(), 0, 0, &q) != 0)
            abort();
        struct vl_queue_batch *b;
        int n = vl_queue_lease(vl_queue_shard(q, 0), kNow, 1000, &b);
        if (n != 1000)
            state.SkipWithError("first lease short");
        vl_queue_batch_release(vl_queue_shard(q, 0), b);
        vl_queue_close(q);
    }
}
// Registered only with VOLLEY_BENCH_BIG=1 (it builds a 1M-recipient queue first), so
// that a default run has no benchmark that reports an error instead of a figure.
const bool kRestart1MRegistered =
    getenv("VOLLEY_BENCH_BIG") &&
    benchmark::RegisterBenchmark("BM_Restart1M", BM_Restart1M)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

}  // namespace
