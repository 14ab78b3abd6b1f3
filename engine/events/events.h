/*
 * events.h - delivery event senders (issue 16): one thread per sink (webhook,
 * RabbitMQ) reads the shards' outboxes (volley/queue.h, "delivery events
 * outbox"), sends batches and acknowledges what the sink took.
 *
 * Guarantees: at least once, in order per shard (so per recipient: a
 * recipient lives in one shard, and its events are stored in commit order);
 * one batch in flight per sink, resent whole until the sink takes it. Each
 * event carries "event_id" ("SSSS-NNNNNNNNNNNN": shard and outbox seq, hex),
 * the same on every resend: receivers de-duplicate on it. A duplicate comes
 * only from a batch the sink took whose acknowledgement volley did not record
 * (a lost reply, a timeout after the receiver committed, or a crash of volley
 * between the sink's answer and the ack's commit).
 *
 * Cost (the delivery path pays for the outbox write in its commit only): a
 * sink sends a batch when it is full or conf.linger_ms after its previous
 * send, so a busy outbox goes out in few large batches; acknowledgements are
 * lazy (vl_queue_events_ack_lazy: written by the shard's next commit, or by
 * the sender before its next batch or when the outbox is idle, whichever
 * comes first: so at most the last batch's ack is unrecorded, as before), so
 * a batch costs no write transaction of its own while deliveries flow; the
 * sender threads run SCHED_BATCH at a higher nice value than delivery (volley run: +19, they use what delivery
 * leaves; the outbox cap bounds how far they may fall behind).
 *
 * Threads: events_start/events_stop from one thread (the CLI's); each sink's
 * thread owns its connection. Diagnostics: evt=events_send_failed (warn, each
 * failed try, with the retry delay), evt=events_recovered (info), evt=
 * events_ack_failed (error), evt=events_stopped (info: sent, left).
 */
#ifndef VOLLEY_EVENTS_H
#define VOLLEY_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volley/queue.h"

#define EVENTS_SINKS_MAX          4u
#define EVENTS_BATCH_MAX       1000u       /* policy: events per batch */
#define EVENTS_BATCH_BYTES_MAX (4u << 20)  /* policy: bytes of event JSON per batch */
#define EVENTS_ID_BYTES           18u      /* "SSSS-NNNNNNNNNNNN" + NUL */

/* One event of a batch: its JSON with "event_id" first, and its "event" name. */
struct events_item {
    const char *json;
    size_t len;
    char id[EVENTS_ID_BYTES];
    char type[24];                 /* delivered, bounced, complaint... ("" if none) */
};

struct events_batch {
    size_t count;
    struct events_item *items;     /* [EVENTS_BATCH_MAX] */
};

/* A sink: sends a batch; 0 when the receiver has taken all of it (HTTP 2xx,
 * every publisher confirm), else < 0 with @p err filled. Runs on the sink's
 * thread only. */
struct events_sink {
    const char *name;              /* "webhook", "amqp": its outbox cursor name */
    void *ctx;
    int (*send)(void *ctx, const struct events_batch *b, char *err, size_t err_cap);
    void (*destroy)(void *ctx);
    bool want_type;                /* fill events_item.type (else left "") */
};

struct events_conf {
    unsigned batch_max;            /* 1..EVENTS_BATCH_MAX */
    uint64_t retry_ms_min;         /* backoff after a failed batch, doubling to _max */
    uint64_t retry_ms_max;
    uint64_t poll_ms;              /* an empty outbox is looked at again after this */
    uint64_t linger_ms;            /* a batch that is not full waits until this long after
                                    * the previous send (0: send at once) */
    int nice;                      /* added to the sender threads' nice value (SCHED_BATCH;
                                    * events are asynchronous: delivery goes first) */
};

struct events_stats {
    uint64_t sent;                 /* events the sinks took (summed over sinks) */
    uint64_t batches;
    uint64_t failures;             /* failed batch tries */
    uint64_t left;                 /* events not yet taken by every sink (at stop) */
    uint64_t cpu_us;               /* CPU time of the sender threads (at stop) */
};

struct events;

/** Start one thread per sink of @p sinks (@p n <= EVENTS_SINKS_MAX; the sinks
 *  are owned by the events from now on, even on failure). @p q outlives the
 *  events. @return 0, -ENOMEM or -errno. */
int events_start(struct vl_queue *q, struct events_sink *sinks, unsigned n,
                 const struct events_conf *conf, struct events **out);

/** Stop: each sink goes on sending what is stored until its outbox is empty
 *  or @p drain_ms passed, then its thread ends; what is left stays stored for
 *  the next run. Frees @p ev (NULL: no-op); *@p st (may be NULL) gets the
 *  totals. */
void events_stop(struct events *ev, uint64_t drain_ms, struct events_stats *st);

/** The totals so far (any thread). */
void events_stats_get(struct events *ev, struct events_stats *st);

/** Build "{\"event_id\":\"ID\"," + @p json without its '{' into @p out
 *  (capacity @p cap). @return the length, or 0 if it does not fit or @p json
 *  is not an object. Pure. */
size_t events_with_id(const char *json, size_t len, const char *id, char *out, size_t cap);

/** Copy the value of the first "event":"..." of @p json into @p out (cap
 *  bytes), or "" if none. Pure. */
void events_type(const char *json, size_t len, char *out, size_t cap);

#endif
