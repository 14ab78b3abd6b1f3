/*
 * tls.h - TLS for STARTTLS, pure of sockets: a per-shard context and a
 * per-connection object over memory BIOs. The caller moves the bytes:
 *
 *   ciphertext read from the peer  -> tls_conn_feed()
 *   tls_conn_handshake()           until it returns 1 (0: more bytes needed)
 *   tls_conn_read()                plaintext out (after the handshake)
 *   tls_conn_write()               plaintext in  (after the handshake)
 *   tls_conn_take()                ciphertext to send (after every call above)
 *
 * Invariants: one tls_ctx per shard (or sink thread), never per connection
 * (OpenSSL 3.0 lock contention); a tls_conn is used by one thread. Bad bytes
 * from the peer are an error (VL_E_TLS), never a crash. The plain client
 * context verifies nothing (RFC 3207 opportunistic levels `may`, `encrypt`);
 * the verify context checks the chain and the MX name.
 * Diagnostics: never logs; tls_conn_error() describes the last failure.
 */
#ifndef VOLLEY_TLS_H
#define VOLLEY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Ciphertext a tls_conn_write() of n plaintext bytes produces, at most:
 * one record per 16 KiB plus the record overhead (header, tag, padding). */
#define TLS_SEAL_OUT_MAX(n) ((n) + ((n) / 16384u + 1u) * 256u)

struct tls_ctx;
struct tls_conn;

/** Client context: TLS 1.2+, no certificate check (level `may`).
 *  @return 0, -ENOMEM or VL_E_TLS. */
int tls_ctx_client_create(struct tls_ctx **out);

/** Client context for level `verify`: TLS 1.2+, the peer's chain checked
 *  against the CAs in @p ca_file (PEM), or the system store if NULL, and each
 *  connection's certificate must name the host given to tls_conn_create()
 *  (DNS SAN/CN; an IP literal against IP SANs). On failure writes what is
 *  wrong to @p err. @return 0, -ENOMEM or VL_E_TLS. */
int tls_ctx_client_verify_create(struct tls_ctx **out, const char *ca_file, char *err,
                                 size_t err_cap);

/** Server context with a PEM certificate (chain) and key. On failure writes
 *  what is wrong to @p err. @return 0, -ENOMEM or VL_E_TLS. */
int tls_ctx_server_create(struct tls_ctx **out, const char *cert_file, const char *key_file,
                          char *err, size_t err_cap);

/** Free a context (after every tls_conn made from it). NULL is fine. */
void tls_ctx_destroy(struct tls_ctx *ctx);

/** A connection over memory BIOs. @p sni (client only, may be NULL): host
 *  name sent as SNI; a trailing dot is dropped, an IP literal is not sent.
 *  @return 0, -ENOMEM or VL_E_TLS. */
int tls_conn_create(struct tls_conn **out, struct tls_ctx *ctx, bool server, const char *sni);

/** Free a connection. NULL is fine. */
void tls_conn_destroy(struct tls_conn *c);

/** Ciphertext from the peer. @return 0 or -ENOMEM. */
int tls_conn_feed(struct tls_conn *c, const void *buf, size_t len);

/** Step the handshake. @return 1 done, 0 needs more peer bytes (send what
 *  tls_conn_take() gives first), VL_E_TLS failed. */
int tls_conn_handshake(struct tls_conn *c);

/** Plaintext out. @return bytes (> 0), 0 none buffered (more peer bytes
 *  needed), -EPIPE the peer closed TLS (close_notify), VL_E_TLS failed. */
int tls_conn_read(struct tls_conn *c, void *buf, size_t cap);

/** Encrypt all of @p len plaintext bytes (the memory BIO grows as needed).
 *  @return 0 or VL_E_TLS. */
int tls_conn_write(struct tls_conn *c, const void *buf, size_t len);

/** Ciphertext waiting to be sent, in bytes. */
size_t tls_conn_pending(const struct tls_conn *c);

/** Move up to @p cap bytes of ciphertext to send into @p buf. @return bytes. */
size_t tls_conn_take(struct tls_conn *c, void *buf, size_t cap);

/** Queue our close_notify (take and send it, then close). @return 0 or VL_E_TLS. */
int tls_conn_shutdown(struct tls_conn *c);

/** True once the handshake completed. */
bool tls_conn_established(const struct tls_conn *c);

/** "TLSv1.3", "TLSv1.2" ...: a static string; "none" before the handshake. */
const char *tls_conn_protocol(const struct tls_conn *c);

/** The last failure, for diagnostics; "" if none. Borrowed until the next call. */
const char *tls_conn_error(const struct tls_conn *c);

/** True if the handshake failed because the peer's certificate did not verify
 *  (level verify): tls_conn_error() says why ("self-signed certificate"...). */
bool tls_conn_verify_failed(const struct tls_conn *c);

#ifdef __cplusplus
}
#endif
#endif
