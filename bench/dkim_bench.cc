// dkim_bench.cc - DKIM signing costs (engine/dkim) on a 10 KB message, next to
// OpenSSL's raw signature of a 32-octet hash with a ready context, which is
// what `openssl speed rsa2048 ed25519` measures (scripts/bench_dkim.sh runs
// both and prints the ratio):
//   BM_openssl_raw_sign/{rsa2048,ed25519}   the floor: one signature, nothing else
//   BM_dkim_sign_message/{...}              dkim_signer_sign: header split, From:
//                                           domain, key choice, body canonicalised
//                                           and hashed, header hash, signature,
//                                           folded field (what enqueue/intake do)
//   BM_dkim_sign_fields/{...}               one more signature of a message whose
//                                           body hash is known (per-recipient and
//                                           dual signing: bh once per stored body)
//   BM_dkim_sign_rcpt/{...}/threads:{1,2}   per-recipient signing at delivery: a new
//                                           List-Unsubscribe token per recipient on top
//                                           of the stored header block, bh computed once
//                                           per stored body; 2 threads = 2 shards (real
//                                           time: recipients/s of the pair)
//   BM_dkim_body_hash/{relaxed,simple}      the body hash alone (bytes/s)
// Keys are made here with OpenSSL; files live in a mkdtemp dir, removed at exit.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#ifndef _Static_assert
#define _Static_assert static_assert
#endif
#include "dkim.h"

namespace {

constexpr size_t kMsgBytes = 10240;

std::string make_message()
{
    std::string m = "From: News <news@bench.example>\r\nTo: user@dest.example\r\n"
                    "Subject: volley DKIM bench\r\nDate: Sun, 06 Dec 2026 08:00:00 +0000\r\n"
                    "Message-ID: <bench.1@bench.example>\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "List-Unsubscribe: <https://u.bench.example/u?t=0123456789abcdef>\r\n"
                    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n";
    static const char line[] = "The quick brown fox jumps over the lazy dog; a line of mail, "
                               "like most.\r\n";
    while (m.size() + sizeof line - 1 <= kMsgBytes)
        m += line;
    while (m.size() < kMsgBytes - 2)
        m += 'x';
    m += "\r\n";
    return m;
}

struct Fixture {
    std::string dir, msg;
    EVP_PKEY *pk[2] = { nullptr, nullptr };             // rsa2048, ed25519
    dkim_signer *signer[2] = { nullptr, nullptr };
    std::vector<dkim_field> fields;
    size_t body_off = 0;

    Fixture()
    {
        char tmpl[] = "/tmp/volley-dkim-bench-XXXXXX";
        if (!mkdtemp(tmpl))
            std::abort();
        dir = tmpl;
        msg = make_message();
        pk[0] = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
        pk[1] = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
        const char *names[2] = { "rsa", "ed" };
        for (int i = 0; i < 2; i++) {
            std::string path = dir + "/" + names[i] + ".pem";
            FILE *f = std::fopen(path.c_str(), "w");
            if (!f || !pk[i] || PEM_write_PrivateKey(f, pk[i], nullptr, nullptr, 0, nullptr,
                                                     nullptr) != 1)
                std::abort();
            std::fclose(f);
            vl_dkim_opts o;
            std::memset(&o, 0, sizeof o);
            o.key_count = 1;
            std::strcpy(o.keys[0].domain, "bench.example");
            std::strcpy(o.keys[0].selector, names[i]);
            o.keys[0].key_path = strdup(path.c_str());
            char why[DKIM_WHY_BYTES * 4];
            if (dkim_signer_create(&o, &signer[i], why) != 0) {
                std::fprintf(stderr, "dkim_bench: %s\n", why);
                std::abort();
            }
            std::free(const_cast<char *>(o.keys[0].key_path));
            unlink(path.c_str());
        }
        rmdir(dir.c_str());
        fields.resize(DKIM_FIELDS_MAX);
        int n = dkim_fields_parse(reinterpret_cast<const uint8_t *>(msg.data()), msg.size(),
                                  fields.data(), fields.size(), &body_off);
        if (n <= 0)
            std::abort();
        fields.resize(static_cast<size_t>(n));
    }
    ~Fixture()
    {
        for (int i = 0; i < 2; i++) {
            dkim_signer_destroy(signer[i]);
            EVP_PKEY_free(pk[i]);
        }
    }
};

Fixture &fx()
{
    static Fixture f;
    return f;
}

// As `openssl speed`: one context set up once, then sign a 32-octet hash in a loop.
void BM_openssl_raw_sign(benchmark::State &state)
{
    Fixture &f = fx();
    const bool ed = state.range(0) == 1;
    unsigned char h[32] = { 1, 2, 3 }, sig[512];
    EVP_PKEY_CTX *pc = nullptr;
    EVP_MD_CTX *mc = nullptr;
    if (ed) {
        mc = EVP_MD_CTX_new();
        if (!mc || EVP_DigestSignInit_ex(mc, nullptr, nullptr, nullptr, nullptr, f.pk[1],
                                         nullptr) != 1)
            state.SkipWithError("Ed25519 context");
    } else {
        pc = EVP_PKEY_CTX_new_from_pkey(nullptr, f.pk[0], nullptr);
        if (!pc || EVP_PKEY_sign_init(pc) != 1
            || EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) != 1
            || EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) != 1)
            state.SkipWithError("RSA context");
    }
    for (auto _ : state) {
        size_t sl = sizeof sig;
        int ok = ed ? EVP_DigestSign(mc, sig, &sl, h, sizeof h) : EVP_PKEY_sign(pc, sig, &sl, h,
                                                                               sizeof h);
        if (ok != 1) {
            state.SkipWithError("sign failed");
            break;
        }
        benchmark::DoNotOptimize(sig);
    }
    EVP_MD_CTX_free(mc);
    EVP_PKEY_CTX_free(pc);
    state.SetItemsProcessed(state.iterations());
    state.SetLabel(ed ? "ed25519" : "rsa2048");
}

void BM_dkim_sign_message(benchmark::State &state)
{
    Fixture &f = fx();
    const dkim_signer *s = f.signer[state.range(0)];
    const uint8_t *m = reinterpret_cast<const uint8_t *>(f.msg.data());
    for (auto _ : state) {
        char *sigs = nullptr;
        size_t sl = 0;
        if (dkim_signer_sign(s, m, f.msg.size(), 1765000000, &sigs, &sl) != 1) {
            state.SkipWithError("dkim_signer_sign did not sign");
            break;
        }
        benchmark::DoNotOptimize(sigs);
        std::free(sigs);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(f.msg.size()));
    state.SetLabel(state.range(0) ? "ed25519, 10 KB" : "rsa2048, 10 KB");
}

void BM_dkim_sign_fields(benchmark::State &state)
{
    Fixture &f = fx();
    const dkim_key *k = dkim_signer_key(f.signer[state.range(0)], 0);
    const uint8_t *m = reinterpret_cast<const uint8_t *>(f.msg.data());
    uint8_t bh[DKIM_BH_BYTES];
    if (dkim_body_hash(DKIM_CANON_RELAXED, m + f.body_off, f.msg.size() - f.body_off, bh) != 0)
        state.SkipWithError("body hash");
    dkim_sign_opts o;
    std::memset(&o, 0, sizeof o);
    o.canon_hdr = DKIM_CANON_RELAXED;
    o.canon_body = DKIM_CANON_RELAXED;
    char out[DKIM_SIG_FIELD_BYTES_MAX];
    for (auto _ : state) {
        int n = dkim_sign_fields(k, &o, m, f.fields.data(), static_cast<unsigned>(f.fields.size()),
                                 bh, 1765000000, out, sizeof out);
        if (n <= 0) {
            state.SkipWithError("dkim_sign_fields failed");
            break;
        }
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetLabel(state.range(0) ? "ed25519, bh known" : "rsa2048, bh known");
}

void BM_dkim_sign_rcpt(benchmark::State &state)
{
    Fixture &f = fx();
    const dkim_signer *s = f.signer[state.range(0)];
    const uint8_t *m = reinterpret_cast<const uint8_t *>(f.msg.data());
    uint8_t bh[DKIM_BH_BYTES];
    if (dkim_signer_body_hash(s, m, f.msg.size(), bh) != 0)
        state.SkipWithError("body hash");
    char extra[160], out[DKIM_SIG_FIELD_BYTES_MAX];
    unsigned long token = static_cast<unsigned long>(state.thread_index()) << 40;
    for (auto _ : state) {
        int el = std::snprintf(extra, sizeof extra, "X-Rcpt: r%lu@dest.example\r\n"
                               "List-Unsubscribe: <https://u.bench.example/u?t=%016lx>\r\n",
                               token, token);
        token++;
        int n = dkim_signer_sign_rcpt(s, reinterpret_cast<const uint8_t *>(extra),
                                      static_cast<size_t>(el), m, f.body_off, bh, 1765000000,
                                      out, sizeof out);
        if (n <= 0) {
            state.SkipWithError("dkim_signer_sign_rcpt failed");
            break;
        }
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetLabel(state.range(0) ? "ed25519, per recipient" : "rsa2048, per recipient");
}

void BM_dkim_body_hash(benchmark::State &state)
{
    Fixture &f = fx();
    const uint8_t *b = reinterpret_cast<const uint8_t *>(f.msg.data()) + f.body_off;
    size_t n = f.msg.size() - f.body_off;
    dkim_canon c = state.range(0) ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
    uint8_t bh[DKIM_BH_BYTES];
    for (auto _ : state) {
        if (dkim_body_hash(c, b, n, bh) != 0) {
            state.SkipWithError("body hash");
            break;
        }
        benchmark::DoNotOptimize(bh);
    }
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(n));
    state.SetLabel(state.range(0) ? "simple" : "relaxed");
}

}  // namespace

BENCHMARK(BM_openssl_raw_sign)->Arg(0)->Arg(1);
BENCHMARK(BM_dkim_sign_message)->Arg(0)->Arg(1);
BENCHMARK(BM_dkim_sign_fields)->Arg(0)->Arg(1);
BENCHMARK(BM_dkim_sign_rcpt)->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_dkim_body_hash)->Arg(0)->Arg(1);
