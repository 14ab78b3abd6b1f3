// tls_bench.cc - engine/io/tls.c costs, in memory (no sockets): a full TLS 1.3
// handshake between a client and a server tls_conn (what every STARTTLS
// connection pays today: no resumption), and sealing plaintext (what the
// session does per send) next to memcpy of the same bytes. The server key is a
// P-256 one made here with OpenSSL; files live in a mkdtemp dir, removed at exit.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#ifndef _Static_assert
#define _Static_assert static_assert
#endif
#include "tls.h"

namespace {

struct Fixture {
    std::string dir, cert, key;
    tls_ctx *cctx = nullptr, *sctx = nullptr;

    Fixture()
    {
        char tmpl[] = "/tmp/volley-tls-bench-XXXXXX";
        if (!mkdtemp(tmpl))
            std::abort();
        dir = tmpl;
        cert = dir + "/cert.pem";
        key = dir + "/key.pem";
        EVP_PKEY *k = EVP_EC_gen("P-256");
        X509 *x = X509_new();
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, k);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char *>("bench"), -1, -1, 0);
        X509_set_issuer_name(x, n);
        X509_sign(x, k, EVP_sha256());
        FILE *f = std::fopen(cert.c_str(), "w");
        PEM_write_X509(f, x);
        std::fclose(f);
        f = std::fopen(key.c_str(), "w");
        PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
        std::fclose(f);
        X509_free(x);
        EVP_PKEY_free(k);
        char err[400];
        if (tls_ctx_client_create(&cctx) != 0 ||
            tls_ctx_server_create(&sctx, cert.c_str(), key.c_str(), err, sizeof err) != 0) {
            std::fprintf(stderr, "tls_bench: %s\n", err);
            std::abort();
        }
    }
    ~Fixture()
    {
        tls_ctx_destroy(cctx);
        tls_ctx_destroy(sctx);
        unlink(cert.c_str());
        unlink(key.c_str());
        rmdir(dir.c_str());
    }
};

Fixture &fx()
{
    static Fixture f;
    return f;
}

void Shuttle(tls_conn *from, tls_conn *to)
{
    char buf[8192];
    size_t n;
    while ((n = tls_conn_take(from, buf, sizeof buf)) > 0)
        tls_conn_feed(to, buf, n);
}

bool Handshake(tls_conn *c, tls_conn *s)
{
    int rc = 0, rs = 0;
    for (int i = 0; i < 16 && (rc != 1 || rs != 1); i++) {
        rc = tls_conn_handshake(c);
        Shuttle(c, s);
        rs = tls_conn_handshake(s);
        Shuttle(s, c);
    }
    return rc == 1 && rs == 1;
}

void BM_Handshake(benchmark::State &state)
{
    Fixture &f = fx();
    for (auto _ : state) {
        tls_conn *c, *s;
        tls_conn_create(&c, f.cctx, false, "mx.example.org.");
        tls_conn_create(&s, f.sctx, true, nullptr);
        if (!Handshake(c, s))
            state.SkipWithError("handshake failed");
        tls_conn_destroy(c);
        tls_conn_destroy(s);
    }
}
BENCHMARK(BM_Handshake)->Unit(benchmark::kMicrosecond);

// Seal state.range(0) bytes and take the ciphertext (one session send).
void BM_Seal(benchmark::State &state)
{
    Fixture &f = fx();
    tls_conn *c, *s;
    tls_conn_create(&c, f.cctx, false, nullptr);
    tls_conn_create(&s, f.sctx, true, nullptr);
    if (!Handshake(c, s))
        state.SkipWithError("handshake failed");
    const size_t len = static_cast<size_t>(state.range(0));
    std::vector<char> in(len, 'x'), out(TLS_SEAL_OUT_MAX(len) + 4096);
    for (auto _ : state) {
        tls_conn_write(c, in.data(), len);
        size_t n = tls_conn_take(c, out.data(), out.size());
        benchmark::DoNotOptimize(n);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(len));
    tls_conn_destroy(c);
    tls_conn_destroy(s);
}
BENCHMARK(BM_Seal)->Arg(64)->Arg(4096)->Arg(65536);

void BM_Memcpy(benchmark::State &state)
{
    const size_t len = static_cast<size_t>(state.range(0));
    std::vector<char> in(len, 'x'), out(len);
    for (auto _ : state) {
        std::memcpy(out.data(), in.data(), len);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(len));
}
BENCHMARK(BM_Memcpy)->Arg(64)->Arg(4096)->Arg(65536);

}  // namespace
