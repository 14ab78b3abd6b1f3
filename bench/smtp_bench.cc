// smtp_bench.cc - SMTP client hot paths: reply parsing, EHLO capabilities,
// DATA encoding (dot-stuffing + CRLF normalisation) next to memcpy of the
// same bytes, and the client state machine for a pipelined 1-recipient
// transaction. Pure code: no I/O in any loop.
#include <benchmark/benchmark.h>

#include <algorithm>

#include <cstring>
#include <string>
#include <vector>

// The C headers use C11 _Static_assert (include/volley/limits.h too); C++17 spells it
// static_assert.
#ifndef _Static_assert
#define _Static_assert static_assert
#endif
#include "smtp_client.h"
#include "smtp_data.h"
#include "smtp_ehlo.h"
#include "smtp_reply.h"

namespace {

const char kEhlo[] =
    "250-mx.example.org Hello mta.example.net [192.0.2.1]\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 52428800\r\n"
    "250-ETRN\r\n"
    "250-STARTTLS\r\n"
    "250-AUTH PLAIN LOGIN\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250-8BITMIME\r\n"
    "250-DSN\r\n"
    "250-SMTPUTF8\r\n"
    "250 CHUNKING\r\n";

void ParseAll(benchmark::State &state, const char *in, bool ehlo)
{
    const size_t len = std::strlen(in);
    smtp_reply_parser p;
    smtp_ehlo caps;
    int64_t replies = 0;
    for (auto _ : state) {
        smtp_ehlo_init(&caps);
        smtp_reply_parser_init(&p, ehlo ? &caps : nullptr);
        size_t off = 0, used = 0;
        while (off < len) {
            int rc = smtp_reply_feed(&p, in + off, len - off, &used);
            off += used;
            if (rc != 1) {
                state.SkipWithError("parse failed");
                return;
            }
            replies++;
            benchmark::DoNotOptimize(smtp_reply_get(&p)->code);
        }
        benchmark::DoNotOptimize(caps.ext);
    }
    state.SetItemsProcessed(replies);
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(len));
}

void BM_reply_single(benchmark::State &state)
{
    ParseAll(state, "250 2.1.5 Ok\r\n", false);
}
BENCHMARK(BM_reply_single);

void BM_reply_pipelined_group(benchmark::State &state)
{
    ParseAll(state, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with "
                    "<CR><LF>.<CR><LF>\r\n", false);
}
BENCHMARK(BM_reply_pipelined_group);

void BM_reply_ehlo_multiline(benchmark::State &state)
{
    ParseAll(state, kEhlo, true);
}
BENCHMARK(BM_reply_ehlo_multiline);

void BM_ehlo_caps(benchmark::State &state)
{
    static const char *const lines[] = { "PIPELINING", "SIZE 52428800", "ETRN", "STARTTLS",
        "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING" };
    size_t lens[10];
    for (int i = 0; i < 10; i++)
        lens[i] = std::strlen(lines[i]);
    smtp_ehlo e;
    for (auto _ : state) {
        smtp_ehlo_init(&e);
        for (int i = 0; i < 10; i++)
            smtp_ehlo_line(&e, lines[i], lens[i]);
        benchmark::DoNotOptimize(e.ext);
    }
    state.SetItemsProcessed(int64_t(state.iterations()) * 10);   // lines
}
BENCHMARK(BM_ehlo_caps);

// Ordinary text: CRLF lines of 40-90 octets, one in 50 starting with '.'.
std::string MakeBody(size_t n)
{
    std::string s;
    s.reserve(n + 128);
    uint32_t x = 12345;
    while (s.size() < n) {
        x = x * 1103515245u + 12345u;
        size_t len = 40 + (x >> 16) % 51;
        if ((x >> 8) % 50 == 0)
            s += '.';
        for (size_t i = 0; i < len; i++)
            s += char('a' + (i * 7 + (x >> 20)) % 26);
        s += "\r\n";
    }
    s.resize(n);
    return s;
}

void BM_data_encode(benchmark::State &state)
{
    const std::string body = MakeBody(size_t(state.range(0)));
    std::vector<char> out(2 * body.size() + SMTP_DATA_END_OUT_MAX);
    for (auto _ : state) {
        smtp_data_enc e;
        smtp_data_enc_init(&e);
        size_t n = smtp_data_enc_chunk(&e, body.data(), body.size(), out.data(), out.size());
        n += smtp_data_enc_end(&e, out.data() + n, SMTP_DATA_END_OUT_MAX);
        benchmark::DoNotOptimize(n);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
}
BENCHMARK(BM_data_encode)->Arg(10 << 10)->Arg(1 << 20);

// The same body fed in 16 KiB chunks, as a session streaming from a buffer would.
void BM_data_encode_chunked(benchmark::State &state)
{
    const std::string body = MakeBody(size_t(state.range(0)));
    const size_t chunk = 16 << 10;
    std::vector<char> out(2 * chunk + SMTP_DATA_END_OUT_MAX);
    for (auto _ : state) {
        smtp_data_enc e;
        smtp_data_enc_init(&e);
        size_t total = 0;
        for (size_t off = 0; off < body.size(); off += chunk) {
            size_t len = std::min(chunk, body.size() - off);
            total += smtp_data_enc_chunk(&e, body.data() + off, len, out.data(), out.size());
            benchmark::ClobberMemory();
        }
        total += smtp_data_enc_end(&e, out.data(), SMTP_DATA_END_OUT_MAX);
        benchmark::DoNotOptimize(total);
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
}
BENCHMARK(BM_data_encode_chunked)->Arg(1 << 20);

void BM_memcpy(benchmark::State &state)
{
    const std::string body = MakeBody(size_t(state.range(0)));
    std::vector<char> out(2 * body.size() + SMTP_DATA_END_OUT_MAX);
    for (auto _ : state) {
        std::memcpy(out.data(), body.data(), body.size());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
}
BENCHMARK(BM_memcpy)->Arg(10 << 10)->Arg(1 << 20);

void BM_data_measure(benchmark::State &state)
{
    const std::string body = MakeBody(size_t(state.range(0)));
    for (auto _ : state) {
        smtp_data_info m;
        smtp_data_measure(body.data(), body.size(), &m);
        benchmark::DoNotOptimize(m.size);
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
}
BENCHMARK(BM_data_measure)->Arg(10 << 10)->Arg(1 << 20);

bool HasAct(const smtp_actions &a, smtp_action_kind k)
{
    for (uint32_t i = 0; i < a.count; i++)
        if (a.a[i].kind == k)
            return true;
    return false;
}

void Feed(smtp_client *c, const char *s, smtp_actions *acts, smtp_actions *last)
{
    size_t len = std::strlen(s), off = 0, used = 0;
    while (off < len) {
        smtp_client_on_bytes(c, s + off, len - off, &used, acts);
        off += used;
        *last = *acts;
    }
}

// A full pipelined 1-recipient transaction: begin, 3 replies, body sent, final reply.
void BM_client_txn_pipelined(benchmark::State &state)
{
    static smtp_client c;
    static smtp_actions acts, last;
    smtp_client_conf conf{};
    conf.helo_name = "mta.example.net";
    conf.helo_name_len = std::strlen(conf.helo_name);
    smtp_client_init(&c, &conf);
    Feed(&c, "220 mx.example.org ESMTP\r\n", &acts, &last);
    Feed(&c, kEhlo, &acts, &last);
    if (!HasAct(last, SMTP_ACT_READY)) {
        state.SkipWithError("not ready");
        return;
    }
    const smtp_msg_rcpt r{ "alice@example.org", 17, 0, nullptr, 0 };
    smtp_msg m{};
    m.from = "news@example.net";
    m.from_len = 16;
    m.size = 4096;
    m.rcpts = &r;
    m.rcpt_count = 1;
    for (auto _ : state) {
        smtp_client_txn_begin(&c, &m, &acts);
        Feed(&c, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
             &acts, &last);
        smtp_client_body_sent(&c, &acts);
        Feed(&c, "250 2.0.0 Ok: queued as 4F2A1\r\n", &acts, &last);
        if (!HasAct(last, SMTP_ACT_READY)) {
            state.SkipWithError("transaction did not complete");
            return;
        }
    }
    state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_client_txn_pipelined);

}  // namespace
