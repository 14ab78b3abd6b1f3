/*
 * events_amqp.h - the RabbitMQ event sink (librabbitmq): each event is one
 * persistent message (delivery_mode 2, message_id = event_id, type = event
 * name, content_type application/json) published to the default exchange with
 * the durable queue's name as routing key, mandatory; a batch is taken when
 * every message of it is confirmed (publisher confirms). A nack, a return
 * (unroutable), a timeout or a lost connection fails the batch: the
 * connection is dropped and the batch published again on a new one.
 * Optionally several events per message: a JSON array of up to per_message
 * consecutive events (type "batch", message_id = the first event's id) for
 * brokers whose cost is per message; consumers de-duplicate on each event's
 * "event_id" (a resent batch may be cut into messages differently).
 */
#ifndef VOLLEY_EVENTS_AMQP_H
#define VOLLEY_EVENTS_AMQP_H

#include "events.h"

/** Check an amqp://USER:PASS@HOST:PORT/VHOST URL, or amqps:// (TLS, port 5671
 *  by default; an empty VHOST is the default one, "/"; "%2f" names it too).
 *  @return 0 or VL_E_INVALID (@p err says why). */
int events_amqp_url_check(const char *url, char *err, size_t err_cap);

/** A sink publishing to durable queue @p queue at @p url; a connection, a
 *  publish or a batch's confirms may take @p timeout_ms. amqps: the broker's
 *  certificate chain is checked against @p ca_file (PEM; NULL: OpenSSL's
 *  default store) and must name the URL's host. @p per_message: events per
 *  message, 1..EVENTS_BATCH_MAX (1: each its own). Connects on the first batch.
 *  @return 0, VL_E_INVALID or -ENOMEM. */
int events_amqp_create(const char *url, const char *queue, const char *ca_file,
                       unsigned per_message, uint64_t timeout_ms, struct events_sink *out,
                       char *err, size_t err_cap);

#endif
