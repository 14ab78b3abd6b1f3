/*
 * tls.c - OpenSSL 3.0 behind tls.h: contexts for the client (STARTTLS level
 * `may`: no certificate check) and the server (a certificate and key), and a
 * connection object over two memory BIOs, so the reactor owns the sockets.
 *
 * Invariants: the SSL owns both BIOs; the read BIO reports "retry" when empty
 * (never EOF), so an incomplete record means "more bytes", not an error;
 * OpenSSL's thread-local error queue is cleared before each call, so an error
 * is always this connection's. Diagnostics: tls_conn_error(), never logs.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "volley/error.h"
#include "volley/limits.h"

#define TLS_ERR_BYTES 200u

struct tls_ctx {
    SSL_CTX *ssl_ctx;
    bool server;
    bool verify;                   /* client, level verify: chain and MX name checked */
};

struct tls_conn {
    SSL *ssl;
    BIO *rbio, *wbio;              /* owned by ssl */
    bool established;
    bool verify_failed;            /* the handshake failed on the peer's certificate */
    char err[TLS_ERR_BYTES];
};

static void tls_err_fill(char *buf, size_t cap, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char detail[160] = "";
    if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    snprintf(buf, cap, "%s%s%s", what, detail[0] ? ": " : "", detail);
    ERR_clear_error();
}

static int tls_ctx_new(struct tls_ctx **out, bool server)
{
    struct tls_ctx *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->server = server;
    t->ssl_ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!t->ssl_ctx) {
        free(t);
        return VL_E_TLS;
    }
    SSL_CTX_set_min_proto_version(t->ssl_ctx, TLS1_2_VERSION);
    /* Memory BIOs: release buffers of idle connections, keep writes whole. */
    SSL_CTX_set_mode(t->ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    *out = t;
    return 0;
}

int tls_ctx_client_create(struct tls_ctx **out)
{
    ERR_clear_error();
    int rc = tls_ctx_new(out, false);
    if (rc < 0)
        return rc;
    /* Level `may` (RFC 3207 on port 25): encrypt, but check no certificate. */
    SSL_CTX_set_verify((*out)->ssl_ctx, SSL_VERIFY_NONE, NULL);
    return 0;
}

int tls_ctx_client_verify_create(struct tls_ctx **out, const char *ca_file, char *err,
                                 size_t err_cap)
{
    ERR_clear_error();
    *out = NULL;
    struct tls_ctx *t;
    int rc = tls_ctx_new(&t, false);
    if (rc < 0) {
        snprintf(err, err_cap, "cannot create a TLS context: %s", vl_strerror(rc));
        return rc;
    }
    t->verify = true;
    /* The handshake fails on a bad chain; the reason is kept for the deferral. */
    SSL_CTX_set_verify(t->ssl_ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file ? SSL_CTX_load_verify_locations(t->ssl_ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(t->ssl_ctx);
    if (ok != 1) {
        char what[600];
        snprintf(what, sizeof what, "cannot load CA certificates from %s",
                 ca_file ? ca_file : "the system store");
        tls_err_fill(err, err_cap, what);
        tls_ctx_destroy(t);
        return VL_E_TLS;
    }
    *out = t;
    return 0;
}

int tls_ctx_server_create(struct tls_ctx **out, const char *cert_file, const char *key_file,
                          char *err, size_t err_cap)
{
    ERR_clear_error();
    *out = NULL;
    struct tls_ctx *t;
    int rc = tls_ctx_new(&t, true);
    if (rc < 0) {
        snprintf(err, err_cap, "cannot create a TLS context: %s", vl_strerror(rc));
        return rc;
    }
    char what[600];
    if (SSL_CTX_use_certificate_chain_file(t->ssl_ctx, cert_file) != 1) {
        snprintf(what, sizeof what, "cannot load certificate %s", cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(t->ssl_ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(what, sizeof what, "cannot load private key %s", key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(t->ssl_ctx) != 1) {
        snprintf(what, sizeof what, "key %s does not match certificate %s", key_file, cert_file);
        goto fail;
    }
    *out = t;
    return 0;
fail:
    tls_err_fill(err, err_cap, what);
    tls_ctx_destroy(t);
    return VL_E_TLS;
}

void tls_ctx_destroy(struct tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* SNI (RFC 6066 3): a host name without its trailing dot; never an IP literal. */
static int tls_set_sni(SSL *ssl, const char *name)
{
    char host[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    unsigned char addr[16];
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0 || n >= sizeof host)
        return 0;
    memcpy(host, name, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1 ||
        host[0] == '[')
        return 0;
    return SSL_set_tlsext_host_name(ssl, host) == 1 ? 0 : VL_E_TLS;
}

/* Level verify: the certificate must name @p name (the MX host, RFC 7672 3.2.2
 * style reference identity; an IP literal is matched against IP SANs). No
 * name at all: nothing can match, so verification fails. */
static int tls_set_peer_name(SSL *ssl, const char *name)
{
    char host[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    size_t n = name ? strlen(name) : 0;
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n >= sizeof host)
        return VL_E_TLS;
    memcpy(host, name ? name : "", n);
    host[n] = '\0';
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {   /* [literal] */
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    unsigned char addr[16];
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1 ? 0 : VL_E_TLS;
    return SSL_set1_host(ssl, host[0] ? host : "invalid.") == 1 ? 0 : VL_E_TLS;
}

int tls_conn_create(struct tls_conn **out, struct tls_ctx *ctx, bool server, const char *sni)
{
    vl_assert(ctx != NULL && ctx->server == server);
    ERR_clear_error();
    struct tls_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->ssl = SSL_new(ctx->ssl_ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return -ENOMEM;
    }
    BIO_set_mem_eof_return(c->rbio, -1);   /* empty = retry, not EOF */
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    if (server) {
        SSL_set_accept_state(c->ssl);
    } else {
        SSL_set_connect_state(c->ssl);
        if ((sni && tls_set_sni(c->ssl, sni) < 0) ||
            (ctx->verify && tls_set_peer_name(c->ssl, sni) < 0)) {
            tls_conn_destroy(c);
            ERR_clear_error();
            return VL_E_TLS;
        }
    }
    *out = c;
    return 0;
}

void tls_conn_destroy(struct tls_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl);              /* frees both BIOs */
    free(c);
}

int tls_conn_feed(struct tls_conn *c, const void *buf, size_t len)
{
    vl_assert(len <= INT32_MAX);
    if (len == 0)
        return 0;
    ERR_clear_error();
    int n = BIO_write(c->rbio, buf, (int)len);
    return n == (int)len ? 0 : -ENOMEM;
}

/* Classify a failed SSL call. @return 0 (wants more input) or an error. */
static int tls_conn_fail(struct tls_conn *c, int ret, const char *what)
{
    int e = SSL_get_error(c->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:     /* memory BIO: never full; treat as "step again" */
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        snprintf(c->err, sizeof c->err, "%s: peer closed TLS", what);
        return -EPIPE;
    default:
        tls_err_fill(c->err, sizeof c->err, what);
        return VL_E_TLS;
    }
}

int tls_conn_handshake(struct tls_conn *c)
{
    if (c->established)
        return 1;
    ERR_clear_error();
    int ret = SSL_do_handshake(c->ssl);
    if (ret == 1) {
        c->established = true;
        return 1;
    }
    int rc = tls_conn_fail(c, ret, "TLS handshake failed");
    long v = SSL_get_verify_result(c->ssl);
    if (rc < 0 && v != X509_V_OK) {
        c->verify_failed = true;
        snprintf(c->err, sizeof c->err, "certificate verification failed: %s",
                 X509_verify_cert_error_string(v));
    }
    return rc == -EPIPE ? VL_E_TLS : rc;
}

int tls_conn_read(struct tls_conn *c, void *buf, size_t cap)
{
    vl_assert(c->established);
    if (cap == 0)
        return 0;
    ERR_clear_error();
    size_t n = 0;
    if (SSL_read_ex(c->ssl, buf, cap > INT32_MAX ? INT32_MAX : cap, &n) == 1)
        return (int)n;
    return tls_conn_fail(c, 0, "TLS read failed");
}

int tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
    vl_assert(c->established);
    ERR_clear_error();
    size_t done = 0;
    while (done < len) {
        size_t n = 0;
        if (SSL_write_ex(c->ssl, (const char *)buf + done, len - done, &n) != 1) {
            int rc = tls_conn_fail(c, 0, "TLS write failed");
            return rc == 0 ? VL_E_TLS : rc;     /* a memory BIO never blocks a write */
        }
        done += n;
    }
    return 0;
}

size_t tls_conn_pending(const struct tls_conn *c)
{
    return BIO_ctrl_pending(c->wbio);
}

size_t tls_conn_take(struct tls_conn *c, void *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0 || BIO_read_ex(c->wbio, buf, cap, &n) != 1)
        return 0;
    return n;
}

int tls_conn_shutdown(struct tls_conn *c)
{
    if (!c->established)
        return 0;
    ERR_clear_error();
    int ret = SSL_shutdown(c->ssl);    /* 0: sent ours, the peer's not awaited */
    if (ret >= 0)
        return 0;
    int rc = tls_conn_fail(c, ret, "TLS shutdown failed");
    return rc == 0 ? 0 : VL_E_TLS;
}

bool tls_conn_established(const struct tls_conn *c) { return c->established; }

const char *tls_conn_protocol(const struct tls_conn *c)
{
    return c->established ? SSL_get_version(c->ssl) : "none";
}

const char *tls_conn_error(const struct tls_conn *c) { return c->err; }

bool tls_conn_verify_failed(const struct tls_conn *c) { return c->verify_failed; }
