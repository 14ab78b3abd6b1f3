/*
 * tls_stream.h - server-side STARTTLS I/O for a reactor connection (`volley
 * sink`, the SMTP intake): one struct tls_stream per connection that said
 * STARTTLS (allocated then, so plaintext connections cost nothing), holding
 * the tls_conn and the ciphertext buffers the reactor reads into and sends
 * from. The caller keeps the SMTP side; this file only moves bytes.
 *
 * Invariants: in[] belongs to the kernel while a recv is posted, out[] while
 * a send is; a connection has at most one of each. Diagnostics: none.
 */
#ifndef VOLLEY_TLS_STREAM_H
#define VOLLEY_TLS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h"

#define TLS_STREAM_IN_BYTES  16384u
#define TLS_STREAM_OUT_BYTES 16384u
_Static_assert(TLS_STREAM_OUT_BYTES >= TLS_SEAL_OUT_MAX(4096u), "a batch of replies fits");

struct tls_stream {
    struct tls_conn *conn;
    bool shut;                     /* our close_notify is queued */
    char in[TLS_STREAM_IN_BYTES];     /* ciphertext received */
    char out[TLS_STREAM_OUT_BYTES];   /* ciphertext being sent */
};

/** Start the server side of a handshake. @return 0, -ENOMEM or VL_E_TLS. */
int tls_stream_create(struct tls_stream **out, struct tls_ctx *ctx);

/** Free it. NULL is fine. */
void tls_stream_destroy(struct tls_stream *st);

/** @p n ciphertext bytes were received into st->in. @return 0 or -ENOMEM. */
int tls_stream_received(struct tls_stream *st, size_t n);

/** Step the handshake, then decrypt into @p buf. *@p done_now is set when the
 *  handshake completed in this call. @return plaintext bytes (> 0), 0 more
 *  ciphertext is needed (send tls_stream_output() first if pending), < 0 the
 *  peer failed or closed TLS. */
int tls_stream_input(struct tls_stream *st, char *buf, size_t cap, bool *done_now);

/** Encrypt @p len plaintext bytes (and a close_notify if @p closing), then
 *  move ciphertext into st->out. @return bytes in st->out to send (0: none),
 *  or VL_E_TLS. */
int tls_stream_output(struct tls_stream *st, const char *plain, size_t len, bool closing);

/** Ciphertext still waiting for tls_stream_output(). */
static inline size_t tls_stream_pending(const struct tls_stream *st)
{
    return tls_conn_pending(st->conn);
}

#endif
