/*
 * sink_tls.h - the sink's STARTTLS I/O: one struct sink_tls per connection
 * that said STARTTLS (allocated then, so plaintext connections cost nothing),
 * holding the tls_conn and the ciphertext buffers the reactor reads into and
 * sends from. sink.c keeps the SMTP side; this file only moves bytes.
 *
 * Invariants: in[] belongs to the kernel while a recv is posted, out[] while
 * a send is; a connection has at most one of each. Diagnostics: none.
 */
#ifndef VOLLEY_SINK_TLS_H
#define VOLLEY_SINK_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h"

#define SINK_TLS_IN_BYTES  16384u
#define SINK_TLS_OUT_BYTES 16384u
_Static_assert(SINK_TLS_OUT_BYTES >= TLS_SEAL_OUT_MAX(4096u), "a batch of replies fits");

struct sink_tls {
    struct tls_conn *conn;
    bool shut;                     /* our close_notify is queued */
    char in[SINK_TLS_IN_BYTES];    /* ciphertext received */
    char out[SINK_TLS_OUT_BYTES];  /* ciphertext being sent */
};

/** Start the server side of a handshake. @return 0, -ENOMEM or VL_E_TLS. */
int sink_tls_create(struct sink_tls **out, struct tls_ctx *ctx);

/** Free it. NULL is fine. */
void sink_tls_destroy(struct sink_tls *st);

/** @p n ciphertext bytes were received into st->in. @return 0 or -ENOMEM. */
int sink_tls_received(struct sink_tls *st, size_t n);

/** Step the handshake, then decrypt into @p buf. *@p done_now is set when the
 *  handshake completed in this call. @return plaintext bytes (> 0), 0 more
 *  ciphertext is needed (send sink_tls_output() first if pending), < 0 the
 *  peer failed or closed TLS. */
int sink_tls_input(struct sink_tls *st, char *buf, size_t cap, bool *done_now);

/** Encrypt @p len plaintext bytes (and a close_notify if @p closing), then
 *  move ciphertext into st->out. @return bytes in st->out to send (0: none),
 *  or VL_E_TLS. */
int sink_tls_output(struct sink_tls *st, const char *plain, size_t len, bool closing);

/** Ciphertext still waiting for sink_tls_output(). */
static inline size_t sink_tls_pending(const struct sink_tls *st)
{
    return tls_conn_pending(st->conn);
}

#endif
