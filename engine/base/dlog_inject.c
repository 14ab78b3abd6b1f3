/*
 * dlog_inject.c - the "injected" events of a message (dlog_inject.h).
 * Invariant: out->json[i] points into out->buf, set only once buf is final.
 */
#include "dlog_inject.h"

#include "volley/error.h"
#include "volley/limits.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vl_dlog_injected_build(struct vl_dlog_injected *out, const struct vl_dlog_event *proto,
                           const char *const *rcpts, const size_t *rcpt_lens, size_t n)
{
    *out = (struct vl_dlog_injected){ 0 };
    char line[VL_DLOG_LINE_BYTES_MAX];
    char rcpt[VL_SMTP_PATH_BYTES_MAX + 1];
    size_t cap = 0, off = 0;
    out->json = malloc((n ? n : 1) * sizeof *out->json);
    out->lens = malloc((n ? n : 1) * sizeof *out->lens);
    if (!out->json || !out->lens)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        size_t rl = rcpt_lens ? rcpt_lens[i] : strlen(rcpts[i]);
        if (rl > VL_SMTP_PATH_BYTES_MAX)
            rl = VL_SMTP_PATH_BYTES_MAX;            /* the queue refuses such an address */
        memcpy(rcpt, rcpts[i], rl);
        rcpt[rl] = '\0';
        const char *at = strrchr(rcpt, '@');
        struct vl_dlog_event ev = *proto;
        ev.event = "injected";
        ev.rcpt = rcpt;
        ev.domain = at ? at + 1 : "";
        ev.attempt = 0;
        size_t len = vl_dlog_format(&ev, line, sizeof line);
        vl_assert(len >= 3 && line[len - 1] == '\n');
        len--;                                       /* an event has no newline */
        if (off + len > cap) {
            size_t ncap = cap ? cap * 2 : 512u * (n < 8 ? 8 : n);
            while (ncap < off + len)
                ncap *= 2;
            char *nb = realloc(out->buf, ncap);
            if (!nb)
                goto fail;
            out->buf = nb;
            cap = ncap;
        }
        memcpy(out->buf + off, line, len);
        out->lens[i] = len;
        off += len;
    }
    off = 0;                                         /* pointers last: buf may have moved */
    for (size_t i = 0; i < n; i++) {
        out->json[i] = out->buf + off;
        off += out->lens[i];
    }
    out->n = n;
    return 0;
fail:
    vl_dlog_injected_fini(out);
    return -ENOMEM;
}

void vl_dlog_injected_fini(struct vl_dlog_injected *e)
{
    free(e->buf);
    free(e->json);
    free(e->lens);
    *e = (struct vl_dlog_injected){ 0 };
}
