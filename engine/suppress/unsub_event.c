/*
 * unsub_event.c - the "unsubscribe" event (unsub_event.h).
 */
#include "unsub_event.h"

#include "log.h"
#include "suppress.h"
#include "volley/error.h"
#include "volley/limits.h"
#include "volley/queue.h"

#include <string.h>

int unsub_event_add(struct vl_queue *q, const struct unsub_claims *cl, const char *source,
                    const char *client, int64_t ts_ms)
{
    char domain[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    size_t dn = sup_addr_domain(cl->rcpt, domain);
    if (dn == 0)
        return VL_E_INVALID;
    struct vl_dlog_event ev = { .ts_ms = ts_ms, .rcpt = cl->rcpt, .domain = domain,
                                .event = "unsubscribe", .campaign = cl->campaign,
                                .source = source, .client = client, .scope = cl->domain };
    char line[VL_DLOG_LINE_BYTES_MAX];
    size_t len = vl_dlog_format(&ev, line, sizeof line);
    if (len < 3)
        return VL_E_INVALID;
    len--;                                      /* an event has no newline */
    const char *json[] = { line };
    return vl_queue_events_add(vl_queue_shard(q, vl_queue_shard_of(q, domain, dn)), json, &len,
                               1);
}
