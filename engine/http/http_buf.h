/*
 * http_buf.h - a growable byte buffer with a hard cap, for the HTTP API's
 * message building (pure). Every append checks the cap first, so output is
 * bounded whatever the input: past it an append returns VL_E_TOOBIG and the
 * buffer is left as it was.
 */
#ifndef VOLLEY_HTTP_BUF_H
#define VOLLEY_HTTP_BUF_H

#include <stddef.h>
#include <stdint.h>

struct hbuf {
    char *p;             /* malloc'd; NULL until the first append */
    size_t len;
    size_t cap;          /* allocated */
    size_t max;          /* hard cap on len (0 = VL_MSG_BYTES_MAX) */
};

/** Append @p n bytes. @return 0, VL_E_TOOBIG (past b->max) or -ENOMEM. */
int hbuf_add(struct hbuf *b, const void *s, size_t n);
/** Append a NUL-terminated string. */
int hbuf_adds(struct hbuf *b, const char *s);
/** Append printf-style (at most 1024 bytes per call). */
int hbuf_addf(struct hbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Make room for @p n more bytes (b->p + b->len then writable). */
int hbuf_reserve(struct hbuf *b, size_t n);
void hbuf_fini(struct hbuf *b);

#endif
