/*
 * sink_model.h - `volley sink --model FILE`: a receiver that throttles like a
 * mailbox provider, per client source address: a token bucket of messages per
 * second (checked at MAIL), a cap of concurrent connections (checked at the
 * banner), a deferral reply when either is exceeded (default "421 4.7.0 ...",
 * which also closes the connection), and optionally a block of every
 * connection from that address for a while after repeated excess.
 *
 * The bucket arithmetic is pure (sink_model_take: time is a parameter); the
 * table of addresses is shared by the sink's threads under one mutex (only
 * taken when a model is configured, once per connection and per message).
 * Counters per address are printed with the sink's stats.
 */
#ifndef VOLLEY_SINK_MODEL_H
#define VOLLEY_SINK_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define SINK_MODEL_ADDRS_MAX   1024u   /* client source addresses tracked */
#define SINK_MODEL_TEXT_BYTES   200u

struct sink_model_conf {
    double msgs_per_s;             /* > 0: token bucket rate; 0 = no message limit */
    double burst;                  /* bucket size, >= 1 (default: max(1, msgs_per_s)) */
    uint32_t conns_max;            /* concurrent connections per address; 0 = no cap */
    uint16_t reply_code;           /* 421 (closes) or 4xx; default 421 */
    char reply_text[SINK_MODEL_TEXT_BYTES];   /* after the code; default "4.7.0 ..." */
    uint32_t abuse_max;            /* excesses in a row before a block; 0 = never block */
    uint64_t block_ms;             /* how long a block lasts */
};

/* One token bucket (pure). */
struct sink_bucket {
    double tokens;
    uint64_t at_ms;                /* when tokens was computed */
};

/** Refill @p b to @p now_ms at @p rate per second (capped at @p burst), then
 *  take one token if there is one. @return true if taken. */
bool sink_bucket_take(struct sink_bucket *b, double rate, double burst, uint64_t now_ms);

struct sink_model;

/** Parse a model file (libconfig syntax: msgs-per-sec, burst, connections,
 *  reply, abuse, block) into @p c. Errors as "FILE:LINE: what" to @p err.
 *  @return the number of errors. */
unsigned sink_model_conf_load(struct sink_model_conf *c, const char *path, FILE *err);

/** @return 0 or -ENOMEM. */
int sink_model_create(struct sink_model **out, const struct sink_model_conf *c);
void sink_model_destroy(struct sink_model *m);

/** A connection from @p peer arrives at @p now_ms. Sets *@p slot (the
 *  address's index, for the calls below; -1 if the table is full: then the
 *  connection is not limited). @return true to accept, false to defer it
 *  (at its banner; the connection then does not count as open). */
bool sink_model_conn_open(struct sink_model *m, const struct sockaddr *peer, uint64_t now_ms,
                          int *slot);
/** An accepted connection of @p slot closed. */
void sink_model_conn_close(struct sink_model *m, int slot);
/** A message (MAIL) on a connection of @p slot at @p now_ms. @return true to
 *  accept it, false to defer it. */
bool sink_model_msg(struct sink_model *m, int slot, uint64_t now_ms);
/** A message of @p slot was accepted at its end (250 to the dot). */
void sink_model_delivered(struct sink_model *m, int slot);

/** The client of @p slot said EHLO/HELO @p name (kept for the stats: "ehlo"). */
void sink_model_helo(struct sink_model *m, int slot, const char *name, size_t len);

/** The deferral reply: code and text (borrowed). */
uint16_t sink_model_reply(const struct sink_model *m, const char **text);

/** Per-address counters, as a JSON object body ("\"ADDR\":{...},...") or
 *  text ("ADDR:accepted/deferred/refused ..."). */
void sink_model_print(struct sink_model *m, FILE *f, bool json);

#endif
