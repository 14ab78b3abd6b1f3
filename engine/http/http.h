/*
 * http.h - the HTTP API of `volley run --http ADDR:PORT` (issue 12).
 *
 * Design. libmicrohttpd serves HTTP/1.1 with keep-alive from its own small
 * pool of epoll threads; a request's body is collected there, then parsed
 * and validated with jansson (http_req.c) before anything is queued: a bad
 * request gets a 400 naming the field and recipient index and queues
 * nothing. A valid POST /api/inject/v1 is suspended and handed to a pool of
 * HTTP_WORKERS inject workers (http_inject.c) that render each recipient's
 * message (templates parsed once per request; http_tmpl.c, http_mime.c),
 * normalise it (engine/msg/msg.h) and call vl_queue_enqueue(): durable on
 * return, and the workers' concurrent enqueues share the queue's group
 * commit, as the SMTP intake's commit workers do. The connection resumes and
 * its 200 is sent only when every recipient's enqueue has returned. A request
 * of many recipients is split over the workers, so its messages share
 * commits too. When nothing differs between recipients (no merge field, and
 * the To: header fixed or absent), one message carries all of them.
 *
 * Access: every route but GET /healthz needs "Authorization: Bearer TOKEN",
 * TOKEN being the first line of --http-token-file (compared in constant
 * time); clients are accepted from loopback only, or only from the --allow
 * networks when some are given (the same --allow as the SMTP listener).
 *
 * Routes: GET /healthz; GET /api/v1/queue (the JSON of `volley queue stats
 * --json`); POST /api/inject/v1 (KumoMTA InjectV1-compatible, http_req.h);
 * GET/POST/DELETE /api/v1/suppress (the suppression list, http_suppress.c);
 * POST /u/TOKEN (RFC 8058 one-click unsubscribe: no bearer token; the token's
 * HMAC is the proof, http_unsub.h), which adds the recipient to the
 * suppression list for the sending domain (reason unsubscribe).
 *
 * Unsubscribe: the links are made at delivery (engine/deliver, per
 * recipient, engine/suppress/unsub.h: --unsub DOMAIN=BASE_URL and
 * --unsub-secret-file, parsed here and installed with unsub_conf_set() by
 * `volley run`); this API verifies them.
 * Diagnostics: evt=http_inject (TRACE) per request, with its parse and queue
 * times; evt=http_done (INFO) at stop, with the queue's commits and writes;
 * evt=unsubscribed (INFO); start-up errors on stderr.
 */
#ifndef VOLLEY_HTTP_H
#define VOLLEY_HTTP_H

#include "volley/config.h"
#include "volley/queue.h"

#include <stdbool.h>

struct http;

#define HTTP_UNSUB_MAX 64u         /* policy: --unsub domains */

struct http_opts {
    const char *listen;            /* --http ADDR:PORT (NULL: no HTTP API) */
    const char *token_file;        /* --http-token-file FILE (required with --http) */
    unsigned unsub_count;          /* --unsub DOMAIN=BASE_URL, repeatable */
    const char *unsub[HTTP_UNSUB_MAX];
    const char *unsub_secret_file; /* --unsub-secret-file FILE (required with --unsub) */
    const char *suppress_codes;    /* --suppress-codes LIST: bounces that feed the list */
    const char *suppress_smtp;     /* --suppress-smtp reject|accept */
};

/** Take the HTTP, unsubscribe and suppression options (--http,
 *  --http-token-file, --unsub, --unsub-secret-file, --suppress-codes,
 *  --suppress-smtp; a value as the next argument or after '=') out of @p args (@p n of them; what is left is
 *  compacted in place and counted in *@p left). Prints "volley CMD: ..." on
 *  error. @return 0 or -1. */
int http_opts_take(struct http_opts *o, const char *cmd, char **args, int n, int *left);

/** Usage lines of the HTTP options, for --help. */
extern const char http_opts_usage[];

/** Bind o->listen, read the token and start serving, queueing into @p q
 *  (@p cfg and @p q borrowed until http_stop()). Prints what failed on
 *  stderr ("volley run: --http ...") and, once serving,
 *  "volley run: HTTP API on http://IP:PORT".
 *  @return 0 and *@p out, or -errno / VL_E_INVALID. */
int http_start(const struct vl_config *cfg, const struct http_opts *o, struct vl_queue *q,
               struct http **out);

/** Stop accepting, finish the requests being queued, free. NULL is a no-op. */
void http_stop(struct http *h);

#endif
