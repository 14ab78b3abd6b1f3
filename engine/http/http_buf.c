/*
 * http_buf.c - the HTTP API's bounded growable buffer (see http_buf.h).
 */
#include "http_buf.h"

#include "volley/error.h"
#include "volley/limits.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hbuf_reserve(struct hbuf *b, size_t n)
{
    size_t max = b->max ? b->max : VL_MSG_BYTES_MAX;
    if (n > max || b->len > max - n)
        return VL_E_TOOBIG;
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int hbuf_add(struct hbuf *b, const void *s, size_t n)
{
    int rc = hbuf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

int hbuf_adds(struct hbuf *b, const char *s)
{
    return hbuf_add(b, s, strlen(s));
}

int hbuf_addf(struct hbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return VL_E_TOOBIG;
    return hbuf_add(b, tmp, (size_t)n);
}

void hbuf_fini(struct hbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
