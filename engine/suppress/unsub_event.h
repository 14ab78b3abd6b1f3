/*
 * unsub_event.h - the "unsubscribe" delivery event (issue 16): a recorded
 * one-click (RFC 8058) or mailto (RFC 2369) unsubscribe, for the event sinks.
 */
#ifndef VOLLEY_UNSUB_EVENT_H
#define VOLLEY_UNSUB_EVENT_H

#include "unsub.h"

#include <stdint.h>

struct vl_queue;

/** Store the "unsubscribe" event of @p cl in the outbox of the shard of the
 *  recipient's domain: {"ts","id":"0000000000000000","rcpt","domain","event":
 *  "unsubscribe","attempt":0,"campaign"?,"source","client"?,"scope"} with scope
 *  the sending domain the recipient is now suppressed for, @p source "http"
 *  (one-click) or "smtp" (mailto), @p client the requester's IP (NULL: left
 *  out). Call after the suppression is stored: a crash in between leaves the
 *  address suppressed without its event, and the request unanswered (so
 *  retried). @return 0 or < 0 (the queue's error). */
int unsub_event_add(struct vl_queue *q, const struct unsub_claims *cl, const char *source,
                    const char *client, int64_t ts_ms);

#endif
