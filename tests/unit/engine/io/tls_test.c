/*
 * tls_test.c - engine/io/tls.c: two tls_conn objects talking through memory
 * (handshake, data both ways, close_notify), bad peer bytes (an error, not
 * a crash), and server contexts with missing or mismatched files. The
 * certificate is a self-signed P-256 one made here with OpenSSL in a mkdtemp dir.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls.h"
#include "volley/error.h"

#define PUMP_ROUNDS_MAX 64

struct fixture {
    char dir[64], cert[128], key[128], key2[128];
    struct tls_ctx *sctx, *cctx;
};

static int write_key(EVP_PKEY *k, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* A self-signed certificate for "mx.test.example" and its key, plus an unrelated key. */
static int make_cert(struct fixture *fx)
{
    EVP_PKEY *k = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int rc = -1;
    if (!k || !k2 || !x)
        goto out;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"mx.test.example",
                               -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (X509_sign(x, k, EVP_sha256()) <= 0)
        goto out;
    FILE *f = fopen(fx->cert, "w");
    if (!f)
        goto out;
    int ok = PEM_write_X509(f, x);
    if (fclose(f) != 0 || !ok)
        goto out;
    if (write_key(k, fx->key) < 0 || write_key(k2, fx->key2) < 0)
        goto out;
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
    return rc;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/volley-tls-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->cert, sizeof fx->cert, "%s/cert.pem", fx->dir);
    snprintf(fx->key, sizeof fx->key, "%s/key.pem", fx->dir);
    snprintf(fx->key2, sizeof fx->key2, "%s/other.pem", fx->dir);
    char err[300];
    if (make_cert(fx) < 0 || tls_ctx_client_create(&fx->cctx) != 0 ||
        tls_ctx_server_create(&fx->sctx, fx->cert, fx->key, err, sizeof err) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    tls_ctx_destroy(fx->cctx);
    tls_ctx_destroy(fx->sctx);
    unlink(fx->cert);
    unlink(fx->key);
    unlink(fx->key2);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Move every pending ciphertext byte from @p from to @p to. @return bytes moved. */
static size_t shuttle(struct tls_conn *from, struct tls_conn *to)
{
    char buf[4096];
    size_t total = 0, n;
    while ((n = tls_conn_take(from, buf, sizeof buf)) > 0) {
        assert_int_equal(tls_conn_feed(to, buf, n), 0);
        total += n;
    }
    assert_int_equal(tls_conn_pending(from), 0);
    return total;
}

static void handshake_pair(struct fixture *fx, struct tls_conn **c, struct tls_conn **s)
{
    assert_int_equal(tls_conn_create(c, fx->cctx, false, "mx.test.example."), 0);
    assert_int_equal(tls_conn_create(s, fx->sctx, true, NULL), 0);
    assert_false(tls_conn_established(*c));
    assert_string_equal(tls_conn_protocol(*c), "none");
    int rc_c = 0, rc_s = 0;
    for (int i = 0; i < PUMP_ROUNDS_MAX && (rc_c != 1 || rc_s != 1); i++) {
        rc_c = tls_conn_handshake(*c);
        assert_true(rc_c == 0 || rc_c == 1);
        shuttle(*c, *s);
        rc_s = tls_conn_handshake(*s);
        assert_true(rc_s == 0 || rc_s == 1);
        shuttle(*s, *c);
    }
    assert_int_equal(rc_c, 1);
    assert_int_equal(rc_s, 1);
    assert_true(tls_conn_established(*c));
    assert_string_equal(tls_conn_protocol(*c), "TLSv1.3");
    assert_string_equal(tls_conn_protocol(*s), "TLSv1.3");
}

/* Send @p len patterned bytes from @p a to @p b; check @p b reads them back exactly. */
static void transfer(struct tls_conn *a, struct tls_conn *b, size_t len, unsigned seed)
{
    char *out = malloc(len), *in = malloc(len + 1);
    assert_non_null(out);
    assert_non_null(in);
    for (size_t i = 0; i < len; i++)
        out[i] = (char)((i * 31u + seed) & 0xff);
    assert_int_equal(tls_conn_write(a, out, len), 0);
    size_t wire = shuttle(a, b);
    assert_true(wire > len);                     /* encrypted: headers and tags added */
    assert_true(wire <= TLS_SEAL_OUT_MAX(len));
    size_t got = 0;
    for (int i = 0; i < 100000 && got < len; i++) {
        int n = tls_conn_read(b, in + got, len + 1 - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(got, len);
    assert_memory_equal(in, out, len);
    assert_int_equal(tls_conn_read(b, in, len + 1), 0);   /* nothing more */
    free(out);
    free(in);
}

static void test_handshake_and_data(void **state)
{
    static const struct { const char *label; size_t len; } sizes[] = {
        { "one byte", 1 }, { "a reply", 40 }, { "one record", 16384 },
        { "a body chunk", 70000 }, { "a large body", 1u << 20 },
    };
    struct fixture *fx = *state;
    struct tls_conn *c, *s;
    handshake_pair(fx, &c, &s);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        print_message("size: %s\n", sizes[i].label);
        transfer(c, s, sizes[i].len, (unsigned)i);
        transfer(s, c, sizes[i].len, (unsigned)i + 7u);
    }
    /* close_notify: the server reads "closed", not an error. */
    assert_int_equal(tls_conn_shutdown(c), 0);
    assert_true(shuttle(c, s) > 0);
    char buf[64];
    assert_int_equal(tls_conn_read(s, buf, sizeof buf), -EPIPE);
    tls_conn_destroy(c);
    tls_conn_destroy(s);
}

static void test_bad_peer_bytes(void **state)
{
#define BAD(label, lit) { label, lit, sizeof lit - 1 }
    static const struct { const char *label; const char *bytes; size_t len; } bad[] = {
        BAD("SMTP instead of TLS", "220 mx.test.example ESMTP\r\n"),
        BAD("a bogus record header", "\x16\x03\x01\xff\xff garbage"),
        BAD("a fatal alert", "\x15\x03\x03\x00\x02\x02\x28"),
    };
#undef BAD
    struct fixture *fx = *state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("bad: %s\n", bad[i].label);
        struct tls_conn *c, *s;
        assert_int_equal(tls_conn_create(&c, fx->cctx, false, "127.0.0.2"), 0);
        assert_int_equal(tls_conn_create(&s, fx->sctx, true, NULL), 0);
        assert_int_equal(tls_conn_handshake(c), 0);             /* ClientHello out */
        assert_true(tls_conn_pending(c) > 0);
        /* The client gets junk where the ServerHello belongs ... */
        assert_int_equal(tls_conn_feed(c, bad[i].bytes, bad[i].len), 0);
        assert_int_equal(tls_conn_handshake(c), VL_E_TLS);
        assert_true(strlen(tls_conn_error(c)) > 0);
        /* ... and the server gets it where the ClientHello belongs. */
        assert_int_equal(tls_conn_feed(s, bad[i].bytes, bad[i].len), 0);
        assert_int_equal(tls_conn_handshake(s), VL_E_TLS);
        assert_false(tls_conn_established(s));
        tls_conn_destroy(c);
        tls_conn_destroy(s);
    }
}

static void test_bad_bytes_after_handshake(void **state)
{
    struct fixture *fx = *state;
    struct tls_conn *c, *s;
    handshake_pair(fx, &c, &s);
    static const char junk[] = "\x17\x03\x03\x00\x20 not a valid encrypted record....";
    assert_int_equal(tls_conn_feed(s, junk, sizeof junk - 1), 0);
    char buf[64];
    assert_int_equal(tls_conn_read(s, buf, sizeof buf), VL_E_TLS);
    assert_true(strlen(tls_conn_error(s)) > 0);
    tls_conn_destroy(c);
    tls_conn_destroy(s);
}

static void test_incomplete_record_waits(void **state)
{
    struct fixture *fx = *state;
    struct tls_conn *c, *s;
    handshake_pair(fx, &c, &s);
    assert_int_equal(tls_conn_write(c, "EHLO x\r\n", 8), 0);
    char wire[512], buf[64];
    size_t n = tls_conn_take(c, wire, sizeof wire);
    assert_true(n > 8);
    assert_int_equal(tls_conn_feed(s, wire, n - 1), 0);      /* all but the last byte */
    assert_int_equal(tls_conn_read(s, buf, sizeof buf), 0);
    assert_int_equal(tls_conn_feed(s, wire + n - 1, 1), 0);
    assert_int_equal(tls_conn_read(s, buf, sizeof buf), 8);
    assert_memory_equal(buf, "EHLO x\r\n", 8);
    tls_conn_destroy(c);
    tls_conn_destroy(s);
}

static void test_server_ctx_errors(void **state)
{
    struct fixture *fx = *state;
    char missing[160], err[400];
    snprintf(missing, sizeof missing, "%s/nope.pem", fx->dir);
    const struct { const char *label, *cert, *key, *named; } cases[] = {
        { "missing cert", missing, fx->key, missing },
        { "missing key", fx->cert, missing, missing },
        { "key of another cert", fx->cert, fx->key2, fx->key2 },
        { "key file as cert", fx->key, fx->key, fx->key },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("ctx: %s\n", cases[i].label);
        struct tls_ctx *ctx = (struct tls_ctx *)1;
        err[0] = 0;
        assert_int_equal(tls_ctx_server_create(&ctx, cases[i].cert, cases[i].key, err,
                                               sizeof err), VL_E_TLS);
        assert_null(ctx);
        assert_non_null(strstr(err, cases[i].named));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_and_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_peer_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bytes_after_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incomplete_record_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ctx_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
