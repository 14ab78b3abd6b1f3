/*
 * tls_stream.c - STARTTLS byte moving for a server connection (see
 * tls_stream.h): ciphertext in through tls_conn_feed(), plaintext out to the
 * SMTP server's input buffer, replies sealed into out[] for one send.
 * Invariants: out[] is rewritten only when no send is posted (the caller's
 * rule: at most one send per connection). Diagnostics: none.
 */
#include "tls_stream.h"

#include <errno.h>
#include <stdlib.h>

#include "volley/error.h"

int tls_stream_create(struct tls_stream **out, struct tls_ctx *ctx)
{
    struct tls_stream *st = malloc(sizeof *st);
    if (!st)
        return -ENOMEM;
    st->shut = false;
    int rc = tls_conn_create(&st->conn, ctx, true, NULL);
    if (rc < 0) {
        free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void tls_stream_destroy(struct tls_stream *st)
{
    if (!st)
        return;
    tls_conn_destroy(st->conn);
    free(st);
}

int tls_stream_received(struct tls_stream *st, size_t n)
{
    vl_assert(n <= sizeof st->in);
    return tls_conn_feed(st->conn, st->in, n);
}

int tls_stream_input(struct tls_stream *st, char *buf, size_t cap, bool *done_now)
{
    *done_now = false;
    if (!tls_conn_established(st->conn)) {
        int rc = tls_conn_handshake(st->conn);
        if (rc <= 0)
            return rc;
        *done_now = true;
    }
    return tls_conn_read(st->conn, buf, cap);
}

int tls_stream_output(struct tls_stream *st, const char *plain, size_t len, bool closing)
{
    if (len > 0 && tls_conn_write(st->conn, plain, len) < 0)
        return VL_E_TLS;
    if (closing && !st->shut) {
        st->shut = true;
        if (tls_conn_shutdown(st->conn) < 0)
            return VL_E_TLS;
    }
    return (int)tls_conn_take(st->conn, st->out, sizeof st->out);
}
