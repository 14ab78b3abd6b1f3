/*
 * dkim_int.h - private to engine/dkim: the key struct and its context pool.
 */
#ifndef VOLLEY_DKIM_INT_H
#define VOLLEY_DKIM_INT_H

#include "dkim.h"

#include <pthread.h>

#include <openssl/evp.h>

#define DKIM_KEY_CTX_POOL 16u   /* policy: ready contexts kept per key (>= signing threads) */

struct dkim_key {
    char domain[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    char selector[VL_DKIM_SELECTOR_BYTES_MAX];
    enum dkim_alg alg;
    unsigned bits;
    EVP_PKEY *pkey;
    pthread_mutex_t mu;            /* guards pool, pool_n: the only mutable part */
    unsigned pool_n;
    void *pool[DKIM_KEY_CTX_POOL]; /* EVP_PKEY_CTX (RSA, sign-inited) or EVP_MD_CTX (Ed25519) */
};

/** SHA-256, fetched once per process. NULL if OpenSSL lacks it. */
const EVP_MD *dkim_sha256(void);

/** Borrow a ready signing context of @p k (NULL: out of memory). Thread: any. */
void *dkim_key_ctx_acquire(const struct dkim_key *k);
void dkim_key_ctx_release(const struct dkim_key *k, void *c);

#endif
