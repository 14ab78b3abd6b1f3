/* dkim_test.c - DKIM canonicalisation, header selection, key loading and the
 * signature's form and cryptographic value (verified here with the public key
 * through OpenSSL; independent verifiers run in tests/integration/dkim_test.sh). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim.h"
#include "msg.h"
#include "volley/error.h"

/* ---- canonicalisation ------------------------------------------------------------------ */

struct sbuf {
    char b[1 << 17];
    size_t n;
    unsigned calls;
};

static void sink_sbuf(void *ctx, const uint8_t *p, size_t n)
{
    struct sbuf *s = ctx;
    if (s->n + n > sizeof s->b)
        fail_msg("canonical output larger than the test buffer");
    memcpy(s->b + s->n, p, n);
    s->n += n;
    s->calls++;
}

static const struct {
    const char *label, *in, *relaxed, *simple;
} body_cases[] = {
    { "empty", "", "", "\r\n" },
    { "only empty lines", "\r\n\r\n\r\n", "", "\r\n" },
    /* RFC 6376 3.4.5 */
    { "rfc example", " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n", " C \r\nD \t E\r\n" },
    { "inner empty lines kept", "a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n" },
    { "no final CRLF", "abc", "abc\r\n", "abc\r\n" },
    { "blank-only lines at end", "x  \t \r\n  \r\n\t\r\n", "x\r\n", "x  \t \r\n  \r\n\t\r\n" },
    { "leading WSP compressed", "\t\t a  b\t\tc\r\n", " a b c\r\n", "\t\t a  b\t\tc\r\n" },
    { "8-bit", "caf\xc3\xa9  \xe2\x82\xac\r\n", "caf\xc3\xa9 \xe2\x82\xac\r\n",
      "caf\xc3\xa9  \xe2\x82\xac\r\n" },
    /* The 8-byte scan of canonical lines: runs across and inside a word. */
    { "run across 8-byte words", "1234567  x\r\nabcdefgh ijklmno\tp\r\n",
      "1234567 x\r\nabcdefgh ijklmno p\r\n", "1234567  x\r\nabcdefgh ijklmno\tp\r\n" },
    { "run across two full words", "abcdefg  hijklmnopqrstuv\r\n", "abcdefg hijklmnopqrstuv\r\n",
      "abcdefg  hijklmnopqrstuv\r\n" },
    { "single spaces stay", "a b c d e f g h i j k\r\n", "a b c d e f g h i j k\r\n",
      "a b c d e f g h i j k\r\n" },
    { "lone LF ends a line", "a  b\nc\r\n", "a b\r\nc\r\n", "a  b\nc\r\n" },
    { "dot lines (stored unstuffed)", ".\r\n..x\r\n", ".\r\n..x\r\n", ".\r\n..x\r\n" },
};

static void test_body_canon(void **state)
{
    (void)state;
    static struct sbuf s;
    for (size_t i = 0; i < sizeof body_cases / sizeof body_cases[0]; i++) {
        const char *in = body_cases[i].in;
        s.n = 0;
        dkim_body_canon(DKIM_CANON_RELAXED, (const uint8_t *)in, strlen(in), sink_sbuf, &s);
        if (s.n != strlen(body_cases[i].relaxed) || memcmp(s.b, body_cases[i].relaxed, s.n))
            fail_msg("%s: relaxed gave '%.*s'", body_cases[i].label, (int)s.n, s.b);
        s.n = 0;
        dkim_body_canon(DKIM_CANON_SIMPLE, (const uint8_t *)in, strlen(in), sink_sbuf, &s);
        if (s.n != strlen(body_cases[i].simple) || memcmp(s.b, body_cases[i].simple, s.n))
            fail_msg("%s: simple gave '%.*s'", body_cases[i].label, (int)s.n, s.b);
    }
}

/* Past the 16 KiB buffer: the output is the same bytes, in several sink calls. */
static void test_body_canon_large(void **state)
{
    (void)state;
    static struct sbuf s;
    size_t lines = 2000, n = 0;
    char *in = malloc(lines * 40);
    assert_non_null(in);
    for (size_t i = 0; i < lines; i++)
        n += (size_t)sprintf(in + n, "line %05zu  with\ttabs   \r\n", i);
    s.n = 0;
    s.calls = 0;
    dkim_body_canon(DKIM_CANON_RELAXED, (const uint8_t *)in, n, sink_sbuf, &s);
    assert_true(s.calls > 1);
    char want[64];
    size_t at = 0;
    for (size_t i = 0; i < lines; i++) {
        int w = sprintf(want, "line %05zu with tabs\r\n", i);
        assert_memory_equal(s.b + at, want, (size_t)w);
        at += (size_t)w;
    }
    assert_int_equal(at, s.n);
    free(in);
}

static void test_hdr_relaxed(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } cases[] = {
        { "A: X\r\n", "a:X\r\n" },                               /* RFC 6376 3.4.5 */
        { "B : Y\t\r\n Z  \r\n", "b:Y Z\r\n" },
        { "SUBJECT:\t  hello \t world  \r\n", "subject:hello world\r\n" },
        { "X-Empty:\r\n", "x-empty:\r\n" },
        { "Subject: caf\xc3\xa9\r\n", "subject:caf\xc3\xa9\r\n" },
    };
    uint8_t out[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = dkim_hdr_relaxed((const uint8_t *)cases[i].in, strlen(cases[i].in), true,
                                    out);
        if (n != strlen(cases[i].out) || memcmp(out, cases[i].out, n))
            fail_msg("'%s' gave '%.*s'", cases[i].in, (int)n, out);
    }
    size_t n = dkim_hdr_relaxed((const uint8_t *)"A: X\r\n", 6, false, out);
    assert_int_equal(n, 3);
}

static const char msg1[] =
    "From: Joe <Joe@Mail.Example.COM>\r\n"
    "To: a@b.org,\r\n"
    "\tc@d.org\r\n"
    "Subject : hi\r\n"
    "Received: x\r\n"
    "To: second@b.org\r\n"
    "\r\n"
    "body  \r\n\r\n";

static void test_fields_and_from(void **state)
{
    (void)state;
    struct dkim_field f[8];
    size_t body = 0;
    int n = dkim_fields_parse((const uint8_t *)msg1, strlen(msg1), f, 8, &body);
    assert_int_equal(n, 5);
    assert_string_equal(msg1 + body, "body  \r\n\r\n");
    assert_int_equal(f[1].len, strlen("To: a@b.org,\r\n\tc@d.org\r\n"));
    assert_int_equal(f[2].name_len, 7);                       /* "Subject", WSP dropped */
    assert_int_equal(dkim_fields_parse((const uint8_t *)msg1, strlen(msg1), f, 4, &body),
                     VL_E_TOOBIG);
    n = dkim_fields_parse((const uint8_t *)msg1, strlen(msg1), f, 8, &body);
    char d[256];
    assert_int_equal(dkim_from_domain((const uint8_t *)msg1, f, (unsigned)n, d, sizeof d), 16);
    assert_string_equal(d, "mail.example.com");
    static const struct { const char *from, *domain; } cases[] = {
        { "From: a@x.org\r\n\r\n", "x.org" },
        { "From: \"a@b\" <c@y.org> (comment)\r\n\r\n", "y.org" },
        { "From: a@x.org (Joe), b@z.org\r\n\r\n", "x.org" },
        { "From: =?utf-8?q?J=C3=B6?=\r\n <j@folded.net>\r\n\r\n", "folded.net" },
        { "From: no-domain\r\n\r\n", NULL },
        { "To: a@x.org\r\n\r\n", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint8_t *m = (const uint8_t *)cases[i].from;
        n = dkim_fields_parse(m, strlen(cases[i].from), f, 8, &body);
        int rc = dkim_from_domain(m, f, (unsigned)n, d, sizeof d);
        if (!cases[i].domain) {
            assert_int_equal(rc, VL_E_INVALID);
            continue;
        }
        if (rc < 0 || strcmp(d, cases[i].domain))
            fail_msg("'%s': got rc %d '%s'", cases[i].from, rc, rc < 0 ? "" : d);
    }
}

/* ---- keys ------------------------------------------------------------------------------ */

static char tmpdir[64];

static char *write_key(const char *name, EVP_PKEY *pk, bool pub)
{
    static char path[8][128];
    static unsigned slot;
    char *p = path[slot++ % 8];
    snprintf(p, 128, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(pub ? PEM_write_PUBKEY(f, pk)
                         : PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    return p;
}

static EVP_PKEY *rsa2048, *ed;
static char *rsa_path, *ed_path;

static int group_setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/vl_dkim_testXXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!rsa2048 || !ed)
        return -1;
    rsa_path = strdup(write_key("rsa.pem", rsa2048, false));
    ed_path = strdup(write_key("ed.pem", ed, false));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    int rc = system(cmd);
    EVP_PKEY_free(rsa2048);
    EVP_PKEY_free(ed);
    free(rsa_path);
    free(ed_path);
    return rc == 0 ? 0 : -1;
}

static void expect_load_error(const char *path, int rc_want, const char *why_part)
{
    struct dkim_key *k = (struct dkim_key *)1;
    char why[DKIM_WHY_BYTES];
    int rc = dkim_key_load("example.com", "s1", path, &k, why);
    if (rc != rc_want || !strstr(why, why_part))
        fail_msg("%s: rc %d (want %d), why '%s' (want '%s')", path, rc, rc_want, why,
                 why_part);
    assert_null(k);
}

static void test_key_errors(void **state)
{
    (void)state;
    char p[160];
    snprintf(p, sizeof p, "%s/missing.pem", tmpdir);
    expect_load_error(p, -ENOENT, "no such key file");
    expect_load_error(tmpdir, -EISDIR, "cannot read: Is a directory");
    EVP_PKEY *short_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(short_rsa);
    assert_non_null(ec);
    expect_load_error(write_key("short.pem", short_rsa, false), VL_E_INVALID,
                      "RSA key of 1024 bits is too short");
    expect_load_error(write_key("ec.pem", ec, false), VL_E_INVALID, "a EC key");
    expect_load_error(write_key("pub.pem", rsa2048, true), VL_E_INVALID,
                      "a public key or certificate, not the private key");
    snprintf(p, sizeof p, "%s/garbage.pem", tmpdir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("hello\n", f);
    fclose(f);
    expect_load_error(p, VL_E_INVALID, "not a PEM private key");
    snprintf(p, sizeof p, "%s/enc.pem", tmpdir);
    f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, ed, EVP_aes_128_cbc(), (unsigned char *)"pw", 2,
                                          NULL, NULL), 1);
    fclose(f);
    expect_load_error(p, VL_E_INVALID, "encrypted");
    EVP_PKEY_free(short_rsa);
    EVP_PKEY_free(ec);
}

static void test_key_load_and_txt(void **state)
{
    (void)state;
    struct dkim_key *k;
    char why[DKIM_WHY_BYTES], txt[1024];
    assert_int_equal(dkim_key_load("example.com", "r1", rsa_path, &k, why), 0);
    assert_int_equal(dkim_key_alg(k), DKIM_ALG_RSA_SHA256);
    assert_int_equal(dkim_key_bits(k), 2048);
    int n = dkim_key_dns_txt(k, txt, sizeof txt);
    assert_true(n > 300);
    assert_memory_equal(txt, "v=DKIM1; k=rsa; p=MIIBIjAN", 26);    /* SPKI of RSA-2048 */
    assert_int_equal(dkim_key_dns_txt(k, txt, 100), -ENOSPC);
    dkim_key_destroy(k);
    assert_int_equal(dkim_key_load("example.com", "e1", ed_path, &k, why), 0);
    assert_int_equal(dkim_key_alg(k), DKIM_ALG_ED25519_SHA256);
    n = dkim_key_dns_txt(k, txt, sizeof txt);
    assert_int_equal(n, (int)strlen("v=DKIM1; k=ed25519; p=") + 44);   /* 32 octets */
    dkim_key_destroy(k);
}

/* ---- signatures ------------------------------------------------------------------------ */

static const char msg2[] =
    "Received: from x by y; Sat, 5 Dec 2026 10:00:00 +0000\r\n"
    "From: Joe <joe@news.example.com>\r\n"
    "To: a@b.org\r\n"
    "Subject:  hello   \r\n"
    " world\r\n"
    "Date: Sat, 5 Dec 2026 10:00:00 +0000\r\n"
    "Message-ID: <x@y>\r\n"
    "List-Unsubscribe: <https://u.example.com/u?t=1>\r\n"
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    "X-Other: not signed\r\n"
    "\r\n"
    "Hi  there \t\r\n..dot\r\n\r\n";

/* Independent of dkim_sign.c's hashing: rebuild the signed data from the
 * field's own h= and check b= with the public key. Relaxed/relaxed only. */
static bool verify_relaxed(EVP_PKEY *pub, const char *msg, const char *sig, bool ed25519)
{
    const char *b = strstr(sig, "; b=");
    assert_non_null(b);
    const char *h = strstr(sig, "h=");
    assert_non_null(h);
    char names[512];
    size_t nn = 0;
    for (const char *p = h + 2; *p != ';'; p++)
        if (*p != '\r' && *p != '\n' && *p != '\t' && *p != ' ')
            names[nn++] = *p;
    names[nn] = '\0';
    struct dkim_field f[32];
    size_t body;
    int nf = dkim_fields_parse((const uint8_t *)msg, strlen(msg), f, 32, &body);
    assert_true(nf > 0);
    bool used[32] = { false };
    static uint8_t data[1 << 14];
    size_t dn = 0;
    for (char *save = NULL, *t = strtok_r(names, ":", &save); t; t = strtok_r(NULL, ":", &save))
        for (int i = nf; i-- > 0;)
            if (!used[i] && f[i].name_len == strlen(t)
                && !strncasecmp(msg + f[i].off, t, strlen(t))) {
                used[i] = true;
                dn += dkim_hdr_relaxed((const uint8_t *)msg + f[i].off, f[i].len, true,
                                       data + dn);
                break;
            }
    dn += dkim_hdr_relaxed((const uint8_t *)sig, (size_t)(b + 4 - sig), false, data + dn);
    uint8_t sigbin[1024];
    char b64[2048];
    size_t bn = 0;
    for (const char *p = b + 4; *p && *p != '\r'; p++)
        if (*p != '\n' && *p != '\t' && *p != ' ')
            b64[bn++] = *p;
    for (const char *p = strstr(b + 4, "\r\n"); p && p[2] == '\t'; p = strstr(p + 2, "\r\n"))
        for (const char *q = p + 3; *q && *q != '\r'; q++)
            b64[bn++] = *q;
    b64[bn] = '\0';
    int sl = EVP_DecodeBlock(sigbin, (const uint8_t *)b64, (int)bn);
    assert_true(sl > 0);
    while (bn && b64[bn - 1] == '=')
        bn--, sl--;
    uint8_t hash[32];
    assert_int_equal(EVP_Digest(data, dn, hash, NULL, EVP_sha256(), NULL), 1);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_non_null(md);
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, ed25519 ? NULL : EVP_sha256(), NULL, pub),
                     1);
    int ok = ed25519 ? EVP_DigestVerify(md, sigbin, (size_t)sl, hash, 32)
                     : EVP_DigestVerify(md, sigbin, (size_t)sl, data, dn);
    EVP_MD_CTX_free(md);
    /* bh= against this body. */
    uint8_t bh[32];
    char bh64[48];
    assert_int_equal(dkim_body_hash(DKIM_CANON_RELAXED, (const uint8_t *)msg + body,
                                    strlen(msg) - body, bh), 0);
    EVP_EncodeBlock((uint8_t *)bh64, bh, 32);
    const char *bht = strstr(sig, "bh=");
    assert_non_null(bht);
    return ok == 1 && !memcmp(bht + 3, bh64, 44);
}

static struct dkim_signer *signer_make(bool dual, uint64_t expire_ms, const char *headers,
                                       bool simple)
{
    struct vl_dkim_opts o = { 0 };
    strcpy(o.keys[0].domain, "example.com");
    strcpy(o.keys[0].selector, "rsa1");
    o.keys[0].key_path = rsa_path;
    strcpy(o.keys[1].domain, "example.com");
    strcpy(o.keys[1].selector, "ed1");
    o.keys[1].key_path = ed_path;
    o.key_count = dual ? 2 : 1;
    o.expire_ms = expire_ms;
    o.headers = headers;
    o.canon_hdr_simple = o.canon_body_simple = simple;
    struct dkim_signer *s;
    char why[DKIM_WHY_BYTES * 4];
    if (dkim_signer_create(&o, &s, why) != 0)
        fail_msg("signer: %s", why);
    return s;
}

static void check_folded(const char *sig, size_t len)
{
    assert_memory_equal(sig, "DKIM-Signature: v=1; a=", 23);
    assert_memory_equal(sig + len - 2, "\r\n", 2);
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        if (sig[i] == '\r') {
            assert_int_equal(sig[i + 1], '\n');
            assert_true(i + 2 == len || sig[i + 2] == '\t');   /* every fold is CRLF WSP */
            assert_true(col <= 78);
            col = 0;
            i++;
        } else {
            assert_true(sig[i] != '\n');
            col++;
        }
    }
}

/* The field unfolded (CR, LF, TAB dropped). */
static char *flatten(const char *sig, size_t len)
{
    char *flat = malloc(len + 1);
    size_t fn = 0;
    assert_non_null(flat);
    for (size_t i = 0; i < len; i++)
        if (sig[i] != '\r' && sig[i] != '\n' && sig[i] != '\t')
            flat[fn++] = sig[i];
    flat[fn] = '\0';
    return flat;
}

static void test_sign_dual(void **state)
{
    (void)state;
    struct dkim_signer *s = signer_make(true, 0, NULL, false);
    char *sigs;
    size_t sl;
    int n = dkim_signer_sign(s, (const uint8_t *)msg2, strlen(msg2), 1765000000, &sigs, &sl);
    assert_int_equal(n, 2);                      /* news.example.com -> example.com's keys */
    char *second = strstr(sigs + 1, "DKIM-Signature:");
    assert_non_null(second);
    size_t l1 = (size_t)(second - sigs);
    check_folded(sigs, l1);
    check_folded(second, sl - l1);
    assert_non_null(strstr(sigs, "a=rsa-sha256;"));
    assert_non_null(strstr(second, "a=ed25519-sha256;"));
    assert_non_null(strstr(sigs, "c=relaxed/relaxed;"));
    assert_non_null(strstr(sigs, "d=example.com;"));
    assert_non_null(strstr(sigs, "s=rsa1;"));
    assert_non_null(strstr(second, "s=ed1;"));
    assert_non_null(strstr(sigs, "t=1765000000;"));
    assert_null(strstr(sigs, "x="));
    /* Both signatures share one body hash. */
    const char *bh1 = strstr(sigs, "bh="), *bh2 = strstr(second, "bh=");
    assert_memory_equal(bh1, bh2, 48);
    char *flat = flatten(sigs, l1);
    assert_non_null(strstr(flat, "h=From:To:Subject:Date:Message-ID:List-Unsubscribe:"
                                 "List-Unsubscribe-Post:From;"));
    free(flat);
    char *sig1 = strndup(sigs, l1);
    assert_true(verify_relaxed(rsa2048, msg2, sig1, false));
    assert_true(verify_relaxed(ed, msg2, second, true));
    /* One signed header byte or one body byte changed: the signature no longer holds;
     * an unsigned header may change. */
    char *bad = strdup(msg2);
    *strstr(bad, "hello") = 'j';
    assert_false(verify_relaxed(rsa2048, bad, sig1, false));
    assert_false(verify_relaxed(ed, bad, second, true));
    strcpy(bad, msg2);
    *strstr(bad, "..dot") = ',';
    assert_false(verify_relaxed(rsa2048, bad, sig1, false));
    assert_false(verify_relaxed(ed, bad, second, true));
    strcpy(bad, msg2);
    *strstr(bad, "not signed") = 'N';
    assert_true(verify_relaxed(rsa2048, bad, sig1, false));
    free(bad);
    free(sig1);
    free(sigs);
    dkim_signer_destroy(s);
}

static void test_sign_options(void **state)
{
    (void)state;
    struct dkim_signer *s = signer_make(false, 7 * 86400 * 1000ull, "Subject:to", true);
    char *sigs;
    size_t sl;
    assert_int_equal(dkim_signer_sign(s, (const uint8_t *)msg2, strlen(msg2), 1000, &sigs, &sl),
                     1);
    assert_non_null(strstr(sigs, "c=simple/simple;"));
    assert_non_null(strstr(sigs, "x=605800;"));
    char *flat = flatten(sigs, sl);
    assert_non_null(strstr(flat, "h=Subject:to:From:From;"));   /* From added, over-signed */
    free(flat);
    free(sigs);
    /* No From: domain, or one without a key: not signed (no error). */
    static const char nofrom[] = "To: a@b.org\r\n\r\nx\r\n";
    assert_int_equal(dkim_signer_sign(s, (const uint8_t *)nofrom, strlen(nofrom), 1, &sigs, &sl),
                     0);
    assert_null(sigs);
    static const char other[] = "From: a@example.org\r\n\r\nx\r\n";
    assert_int_equal(dkim_signer_sign(s, (const uint8_t *)other, strlen(other), 1, &sigs, &sl),
                     0);
    assert_null(sigs);
    assert_int_equal(dkim_signer_sign(NULL, (const uint8_t *)msg2, strlen(msg2), 1, &sigs, &sl),
                     0);
    dkim_signer_destroy(s);
}

/* The stored message is the signatures on top of the unchanged bytes. */
static void test_sign_msg_keeps_body(void **state)
{
    (void)state;
    struct dkim_signer *s = signer_make(true, 0, NULL, false);
    struct msg_result m = { 0 };
    m.len = strlen(msg2);
    m.data = malloc(m.len);
    assert_non_null(m.data);
    memcpy(m.data, msg2, m.len);
    assert_int_equal(dkim_sign_msg(s, &m, 1765000000), 2);
    assert_true(m.len > strlen(msg2) + 400);
    assert_memory_equal(m.data + m.len - strlen(msg2), msg2, strlen(msg2));
    msg_result_fini(&m);
    dkim_signer_destroy(s);
}

/* Per-recipient signing: the stored header block plus the recipient's fields,
 * with the body hash computed once, signs exactly as the whole copy would. */
static void test_sign_rcpt(void **state)
{
    (void)state;
    static const char stored[] =
        "From: News <news@example.com>\r\nTo: list@example.org\r\nSubject: weekly\r\n"
        "Date: Sun, 06 Dec 2026 08:00:00 +0000\r\nMessage-ID: <w.1@example.com>\r\n\r\n"
        "The body, shared by every recipient.  \r\n\r\n";
    struct dkim_signer *s = signer_make(true, 0, NULL, false);
    size_t hl = dkim_body_offset((const uint8_t *)stored, strlen(stored));
    assert_memory_equal(stored + hl, "The body", 8);
    uint8_t bh[DKIM_BH_BYTES];
    assert_int_equal(dkim_signer_body_hash(s, (const uint8_t *)stored, strlen(stored), bh), 0);
    char extra[256], copy[2048], out[2 * DKIM_SIG_FIELD_BYTES_MAX];
    for (int token = 1; token <= 2; token++) {
        int el = snprintf(extra, sizeof extra, "List-Unsubscribe: <https://u.example.com/u?t=%d>"
                          "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", token);
        int n = dkim_signer_sign_rcpt(s, (const uint8_t *)extra, (size_t)el,
                                      (const uint8_t *)stored, hl, bh, 1765000000, out,
                                      sizeof out);
        assert_true(n > 0);
        snprintf(copy, sizeof copy, "%s%s", extra, stored);
        char *whole;
        size_t wl;
        assert_int_equal(dkim_signer_sign(s, (const uint8_t *)copy, strlen(copy), 1765000000,
                                          &whole, &wl), 2);
        assert_int_equal(wl, (size_t)n);
        assert_memory_equal(whole, out, wl);           /* deterministic: RSA v1.5, Ed25519 */
        free(whole);
        char *second = strstr(out + 1, "DKIM-Signature:");
        assert_non_null(second);
        char *sig1 = strndup(out, (size_t)(second - out));
        char *flat = flatten(sig1, strlen(sig1));
        assert_non_null(strstr(flat, "List-Unsubscribe:List-Unsubscribe-Post:From;"));
        free(flat);
        assert_true(verify_relaxed(rsa2048, copy, sig1, false));
        assert_true(verify_relaxed(ed, copy, second, true));
        copy[strlen("List-Unsubscribe: <https://u.example.com/u?t=")] ^= 1;   /* other token */
        assert_false(verify_relaxed(rsa2048, copy, sig1, false));
        assert_false(verify_relaxed(ed, copy, second, true));
        free(sig1);
    }
    dkim_signer_destroy(s);
}

static void test_signer_errors(void **state)
{
    (void)state;
    struct vl_dkim_opts o = { 0 };
    strcpy(o.keys[0].domain, "example.com");
    strcpy(o.keys[0].selector, "s1");
    o.keys[0].key_path = "/nonexistent/k.pem";
    o.key_count = 1;
    struct dkim_signer *s = (struct dkim_signer *)1;
    char why[DKIM_WHY_BYTES * 4];
    assert_int_equal(dkim_signer_create(&o, &s, why), -ENOENT);
    assert_null(s);
    assert_non_null(strstr(why, "--dkim example.com:s1:...: /nonexistent/k.pem: no such key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_canon),
        cmocka_unit_test(test_body_canon_large),
        cmocka_unit_test(test_hdr_relaxed),
        cmocka_unit_test(test_fields_and_from),
        cmocka_unit_test(test_key_errors),
        cmocka_unit_test(test_key_load_and_txt),
        cmocka_unit_test(test_sign_dual),
        cmocka_unit_test(test_sign_options),
        cmocka_unit_test(test_sign_msg_keeps_body),
        cmocka_unit_test(test_sign_rcpt),
        cmocka_unit_test(test_signer_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
