/*
 * dlog_inject.h - the "injected" events of a message (issue 16: injection
 * events go to the webhook/RabbitMQ sinks like delivery events): one per
 * recipient, in the delivery log's format (vl_dlog_format, log.h) so a
 * receiver parses every event alike: {"ts","id","rcpt","domain","event":
 * "injected","attempt":0,"campaign"?,"from","source":"smtp"|"http","client"?}.
 * Built by the SMTP intake and the HTTP API; stored by the queue in the
 * transaction that queues the recipient (vl_queue_enqueue_ids).
 */
#ifndef VOLLEY_DLOG_INJECT_H
#define VOLLEY_DLOG_INJECT_H

#include "log.h"

#include <stddef.h>

struct vl_dlog_injected {
    char *buf;                /* the events, one after another (no newlines) */
    const char **json;        /* [n]: each event in buf */
    size_t *lens;             /* [n] */
    size_t n;
};

/** Build @p out: for each of the @p n recipients @p rcpts[i] (@p rcpt_lens[i]
 *  bytes, or NUL-terminated if @p rcpt_lens is NULL) the event of @p proto
 *  (ts_ms, msg_id, from, source, client, campaign) with that rcpt and its
 *  domain, event "injected". @return 0, or -ENOMEM (@p out then empty). */
int vl_dlog_injected_build(struct vl_dlog_injected *out, const struct vl_dlog_event *proto,
                           const char *const *rcpts, const size_t *rcpt_lens, size_t n);

/** Free what vl_dlog_injected_build() made (a zeroed @p e is fine). */
void vl_dlog_injected_fini(struct vl_dlog_injected *e);

#endif
