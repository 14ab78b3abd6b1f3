// smtp_server_bench.cc - the server state machine's hot paths: command parsing
// (commands/s, pipelined MAIL/RCPT/RSET groups) and DATA body throughput (MB/s,
// unstuffing and CRLF checks, fed in 16 KiB reads as a socket would).
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>

// volley/limits.h (included by smtp_server.h) uses C11 _Static_assert, which C++
// spells static_assert.
#ifndef _Static_assert
#define _Static_assert static_assert
#endif
#include "smtp_server.h"

namespace {

smtp_server_conf bench_conf()
{
    smtp_server_conf c{};
    c.hostname = "sink.bench";
    c.pipelining = true;
    c.eightbitmime = true;
    c.enhancedstatuscodes = true;
    return c;
}

struct Session {
    smtp_server_conf conf = bench_conf();
    smtp_server srv{};
    char out[1024];
    uint64_t commands = 0;
    uint64_t body_bytes = 0;
    uint64_t dots = 0;

    Session() { smtp_server_init(&srv, &conf); feed("EHLO bench.client\r\n", 19); }

    // Step through @p in, answering every event with the proposed reply.
    void feed(const char *in, size_t len)
    {
        size_t off = 0;
        for (;;) {
            smtp_server_event ev;
            size_t used = 0;
            smtp_server_step(&srv, in + off, len - off, &used, &ev);
            off += used;
            if (ev.type == SMTP_SEV_NEED_INPUT)
                return;
            if (ev.type == SMTP_SEV_BODY) {
                body_bytes += ev.body_len;
                continue;
            }
            smtp_server_after after;
            size_t n = smtp_server_answer(&srv, &ev.reply, out, sizeof out, &after);
            benchmark::DoNotOptimize(n);
            if (ev.type == SMTP_SEV_DOT)
                dots++;
            else
                commands++;
        }
    }
};

// One pipelined group: MAIL, @p rcpts RCPTs, RSET (no DATA: pure command parsing).
std::string command_group(int rcpts)
{
    std::string g = "MAIL FROM:<newsletter-bounces+1234@lists.example.org> SIZE=24576\r\n";
    for (int i = 0; i < rcpts; i++)
        g += "RCPT TO:<subscriber" + std::to_string(i) + "@example.com>\r\n";
    g += "RSET\r\n";
    return g;
}

void BM_server_commands(benchmark::State &state)
{
    const int rcpts = static_cast<int>(state.range(0));
    std::string buf;
    for (int i = 0; i < 16; i++)
        buf += command_group(rcpts);
    Session s;
    for (auto _ : state)
        s.feed(buf.data(), buf.size());
    state.SetItemsProcessed(static_cast<int64_t>(s.commands));
    state.counters["commands/s"] =
        benchmark::Counter(static_cast<double>(s.commands), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_server_commands)->Arg(1)->Arg(10)->Arg(100);

// A body of @p bytes: 76-octet text lines, every 10th starting with a stuffed dot;
// with @p bare_lf, lines end in a bare LF (a bad message: must stay linear).
std::string make_body(size_t bytes, bool bare_lf)
{
    std::string b;
    b.reserve(bytes + 128);
    for (unsigned line = 0; b.size() < bytes; line++) {
        if (line % 10 == 0)
            b += "..";
        b.append(74, static_cast<char>('a' + line % 26));
        b += bare_lf ? "\n" : "\r\n";
    }
    return b + "\r\n.\r\n";
}

// Args: message bytes, bytes per read (as a socket would hand them), bare LF.
void BM_server_body(benchmark::State &state)
{
    const size_t msg = static_cast<size_t>(state.range(0));
    const size_t read_bytes = static_cast<size_t>(state.range(1));
    const bool bare_lf = state.range(2) != 0;
    const std::string head = "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n";
    const std::string body = make_body(msg, bare_lf);
    Session s;
    for (auto _ : state) {
        s.feed(head.data(), head.size());
        for (size_t off = 0; off < body.size(); off += read_bytes)
            s.feed(body.data() + off, std::min(read_bytes, body.size() - off));
    }
    if (s.dots != static_cast<uint64_t>(state.iterations()))
        state.SkipWithError("messages lost");
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_server_body)
    ->ArgNames({"bytes", "read", "bare_lf"})
    ->Args({4 << 10, 16 << 10, 0})
    ->Args({64 << 10, 16 << 10, 0})
    ->Args({1 << 20, 16 << 10, 0})
    ->Args({1 << 20, 1 << 20, 0})
    ->Args({1 << 20, 1 << 20, 1});

}  // namespace
