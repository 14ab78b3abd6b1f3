/*
 * events_webhook.h - the webhook event sink (libcurl): batches POSTed as JSON,
 * HMAC-SHA256 signed (format in events_webhook.c).
 */
#ifndef VOLLEY_EVENTS_WEBHOOK_H
#define VOLLEY_EVENTS_WEBHOOK_H

#include "events.h"

/** curl_global_init: once, before any thread starts. @return 0 or an error. */
int events_webhook_global_init(void);

/** A webhook sink posting to @p url (http:// or https://) signed with
 *  @p secret (copied); each POST may take @p timeout_ms. @return 0,
 *  VL_E_INVALID (bad URL: @p err says why) or -ENOMEM. */
int events_webhook_create(const char *url, const unsigned char *secret, size_t secret_len,
                          long timeout_ms, struct events_sink *out, char *err, size_t err_cap);

/** HEX = HMAC-SHA256(@p secret, "TS." + @p body), lower case, into @p out. */
void events_webhook_sign(const unsigned char *secret, size_t secret_len, long long ts,
                         const char *body, size_t len, char out[65]);

#endif
