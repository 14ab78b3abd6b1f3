/*
 * dkim_key.c - DKIM private keys: load and check (RSA >= 2048 bits or
 * Ed25519), publish (the DNS TXT record), and lend signing contexts.
 *
 * OpenSSL contexts are not thread-safe but cost microseconds to set up, as
 * much as an Ed25519 signature: each key keeps a small pool of ready ones
 * (EVP_PKEY_CTX for RSA, EVP_MD_CTX for Ed25519) behind a mutex, so a
 * signature costs one uncontended lock, not a context build.
 * Diagnostics: never logs; load failures are explained in the caller's buffer.
 */
#include "dkim_int.h"

#include "volley/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#define DKIM_KEY_FILE_BYTES_MAX (64u << 10)   /* policy: a PEM key of 8192 bits is ~6.5 KiB */

static EVP_MD *dkim_sha256_md;
static pthread_once_t dkim_sha256_once = PTHREAD_ONCE_INIT;

static void dkim_sha256_fetch(void)
{
    dkim_sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *dkim_sha256(void)
{
    pthread_once(&dkim_sha256_once, dkim_sha256_fetch);
    return dkim_sha256_md;
}

/* Encrypted keys are refused rather than prompted for. */
static int dkim_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

static int key_read_file(const char *path, char **data, size_t *len, char *why)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(why, DKIM_WHY_BYTES, "%s: %s", path,
                 e == ENOENT ? "no such key file" : strerror(e));
        return -e;
    }
    char *buf = malloc(DKIM_KEY_FILE_BYTES_MAX + 1);
    size_t n = buf ? fread(buf, 1, DKIM_KEY_FILE_BYTES_MAX + 1, f) : 0;
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (!buf || e) {
        snprintf(why, DKIM_WHY_BYTES, "%s: cannot read: %s", path, buf ? strerror(e)
                 : "out of memory");
        free(buf);
        return buf ? -e : -ENOMEM;
    }
    if (n > DKIM_KEY_FILE_BYTES_MAX) {
        snprintf(why, DKIM_WHY_BYTES, "%s: larger than %u octets: not a PEM private key",
                 path, DKIM_KEY_FILE_BYTES_MAX);
        free(buf);
        return VL_E_INVALID;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

static int key_parse(const char *path, const char *pem, size_t len, EVP_PKEY **out, char *why)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, dkim_no_passphrase, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!pk) {
        const char *what = strstr(pem, "ENCRYPTED") ? "an encrypted private key (give it "
                           "unencrypted: openssl pkey -in KEY -out KEY.plain)"
                         : strstr(pem, "PUBLIC KEY-----") || strstr(pem, "CERTIFICATE-----")
                           ? "a public key or certificate, not the private key"
                         : "not a PEM private key";
        snprintf(why, DKIM_WHY_BYTES, "%s: %s", path, what);
        return VL_E_INVALID;
    }
    *out = pk;
    return 0;
}

static int key_check(struct dkim_key *k, const char *path, char *why)
{
    int id = EVP_PKEY_get_base_id(k->pkey);
    if (id == EVP_PKEY_ED25519) {
        k->alg = DKIM_ALG_ED25519_SHA256;
        k->bits = 256;
        return 0;
    }
    if (id != EVP_PKEY_RSA) {
        const char *t = EVP_PKEY_get0_type_name(k->pkey);
        snprintf(why, DKIM_WHY_BYTES, "%s: a %s key: DKIM signs with RSA (rsa-sha256) or "
                 "Ed25519 (ed25519-sha256, RFC 8463) only", path, t ? t : "unknown");
        return VL_E_INVALID;
    }
    int bits = EVP_PKEY_get_bits(k->pkey);
    if (bits < (int)DKIM_RSA_BITS_MIN || bits > (int)DKIM_RSA_BITS_MAX) {
        snprintf(why, DKIM_WHY_BYTES, "%s: RSA key of %d bits is too %s: want %u to %u bits "
                 "(2048 is the norm, RFC 8301)", path, bits,
                 bits < (int)DKIM_RSA_BITS_MIN ? "short" : "long", DKIM_RSA_BITS_MIN,
                 DKIM_RSA_BITS_MAX);
        return VL_E_INVALID;
    }
    k->alg = DKIM_ALG_RSA_SHA256;
    k->bits = (unsigned)bits;
    return 0;
}

int dkim_key_load(const char *domain, const char *selector, const char *path,
                  struct dkim_key **out, char why[DKIM_WHY_BYTES])
{
    char *pem = NULL;
    size_t len = 0;
    why[0] = '\0';
    *out = NULL;
    if (!dkim_sha256()) {
        snprintf(why, DKIM_WHY_BYTES, "OpenSSL has no SHA-256");
        return VL_E_INVALID;
    }
    if (strlen(domain) >= sizeof((struct dkim_key *)0)->domain
        || strlen(selector) >= sizeof((struct dkim_key *)0)->selector) {
        snprintf(why, DKIM_WHY_BYTES, "domain or selector too long");
        return VL_E_INVALID;
    }
    int rc = key_read_file(path, &pem, &len, why);
    if (rc < 0)
        return rc;
    struct dkim_key *k = calloc(1, sizeof *k);
    if (!k) {
        free(pem);
        snprintf(why, DKIM_WHY_BYTES, "out of memory");
        return -ENOMEM;
    }
    rc = key_parse(path, pem, len, &k->pkey, why);
    OPENSSL_cleanse(pem, len);
    free(pem);
    if (rc == 0)
        rc = key_check(k, path, why);
    if (rc < 0) {
        EVP_PKEY_free(k->pkey);
        free(k);
        return rc;
    }
    strcpy(k->domain, domain);
    strcpy(k->selector, selector);
    pthread_mutex_init(&k->mu, NULL);
    *out = k;
    return 0;
}

void dkim_key_destroy(struct dkim_key *k)
{
    if (!k)
        return;
    for (unsigned i = 0; i < k->pool_n; i++) {
        if (k->alg == DKIM_ALG_RSA_SHA256)
            EVP_PKEY_CTX_free(k->pool[i]);
        else
            EVP_MD_CTX_free(k->pool[i]);
    }
    pthread_mutex_destroy(&k->mu);
    EVP_PKEY_free(k->pkey);
    free(k);
}

enum dkim_alg dkim_key_alg(const struct dkim_key *k) { return k->alg; }
unsigned dkim_key_bits(const struct dkim_key *k) { return k->bits; }
const char *dkim_key_domain(const struct dkim_key *k) { return k->domain; }
const char *dkim_key_selector(const struct dkim_key *k) { return k->selector; }

int dkim_key_dns_txt(const struct dkim_key *k, char *out, size_t cap)
{
    unsigned char raw[32], *der = NULL;
    const unsigned char *pub = raw;
    int n;
    if (k->alg == DKIM_ALG_ED25519_SHA256) {
        size_t rl = sizeof raw;              /* RFC 8463 4.2: the bare 32-octet key */
        if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &rl) != 1 || rl != 32)
            return -ENOMEM;
        n = 32;
    } else {
        n = i2d_PUBKEY(k->pkey, &der);       /* RFC 6376 3.6.1: SubjectPublicKeyInfo */
        if (n <= 0)
            return -ENOMEM;
        pub = der;
    }
    size_t b64 = 4 * (((size_t)n + 2) / 3);
    const char *kt = k->alg == DKIM_ALG_ED25519_SHA256 ? "ed25519" : "rsa";
    int head = snprintf(out, cap, "v=DKIM1; k=%s; p=", kt);
    if (head < 0 || (size_t)head + b64 + 1 > cap) {
        OPENSSL_free(der);
        return -ENOSPC;
    }
    EVP_EncodeBlock((unsigned char *)out + head, pub, n);
    OPENSSL_free(der);
    return head + (int)b64;
}

void *dkim_key_ctx_acquire(const struct dkim_key *ck)
{
    struct dkim_key *k = (struct dkim_key *)ck;   /* the pool is its only mutable part */
    void *c = NULL;
    pthread_mutex_lock(&k->mu);
    if (k->pool_n)
        c = k->pool[--k->pool_n];
    pthread_mutex_unlock(&k->mu);
    if (c)
        return c;
    if (k->alg == DKIM_ALG_ED25519_SHA256) {
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        if (m && EVP_DigestSignInit_ex(m, NULL, NULL, NULL, NULL, k->pkey, NULL) != 1) {
            EVP_MD_CTX_free(m);
            m = NULL;
        }
        c = m;
    } else {
        EVP_PKEY_CTX *p = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
        if (p && (EVP_PKEY_sign_init(p) != 1
                  || EVP_PKEY_CTX_set_rsa_padding(p, RSA_PKCS1_PADDING) != 1
                  || EVP_PKEY_CTX_set_signature_md(p, dkim_sha256()) != 1)) {
            EVP_PKEY_CTX_free(p);
            p = NULL;
        }
        c = p;
    }
    if (!c)
        ERR_clear_error();
    return c;
}

void dkim_key_ctx_release(const struct dkim_key *ck, void *c)
{
    struct dkim_key *k = (struct dkim_key *)ck;
    pthread_mutex_lock(&k->mu);
    if (k->pool_n < DKIM_KEY_CTX_POOL) {
        k->pool[k->pool_n++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&k->mu);
    if (c && k->alg == DKIM_ALG_ED25519_SHA256)
        EVP_MD_CTX_free(c);
    else if (c)
        EVP_PKEY_CTX_free(c);
}
