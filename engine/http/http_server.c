/*
 * http_server.c - libmicrohttpd front of the HTTP API (see http.h): options,
 * listening socket, access (network and bearer token), routes, request
 * bodies, and suspending an inject request while the workers queue it.
 * Invariant: a suspended connection is resumed exactly once, by its call's
 * done callback; workers are stopped (draining every call) before the daemon.
 */
#include "http_int.h"

#include "clock.h"
#include "ip_class.h"
#include "log.h"
#include "suppress.h"
#include "unsub.h"
#include "unsub_event.h"
#include "volley/error.h"
#include "volley/hostport.h"

#include "volley/addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HTTP_LISTEN_BACKLOG 1024
#define HTTP_TOP_DOMAINS      10u   /* as `volley queue stats` by default */

const char http_opts_usage[] =
    "  --http ADDR:PORT      serve the HTTP API (POST /api/inject/v1, GET /api/v1/queue,\n"
    "                        GET /healthz); clients as for --listen: loopback, or --allow\n"
    "  --http-token-file FILE  bearer token (its first line) every request but /healthz\n"
    "                        and /u/ must send as 'Authorization: Bearer TOKEN'\n"
    "  --unsub DOMAIN=URL    mail from DOMAIN (envelope sender) gets, per recipient at\n"
    "                        delivery, RFC 8058 one-click List-Unsubscribe <URL/u/TOKEN>\n"
    "                        (URL must reach this --http)\n"
    "  --unsub-secret-file FILE  HMAC secret of the unsubscribe tokens (first line)\n"
    "  --suppress-codes LIST bounce statuses that put the address on the suppression\n"
    "                        list (default 5.1.1,5.1.2,5.1.10)\n"
    "  --suppress-smtp reject|accept  a suppressed RCPT over SMTP: 550 5.7.1 (default),\n"
    "                        or 250 and dropped at delivery (event suppressed)\n";

int http_opts_take(struct http_opts *o, const char *cmd, char **args, int n, int *left)
{
    static const struct { const char *name; size_t off; } opts[] = {
        { "--http", offsetof(struct http_opts, listen) },
        { "--http-token-file", offsetof(struct http_opts, token_file) },
        { "--unsub-secret-file", offsetof(struct http_opts, unsub_secret_file) },
        { "--suppress-codes", offsetof(struct http_opts, suppress_codes) },
        { "--suppress-smtp", offsetof(struct http_opts, suppress_smtp) },
        { "--unsub", 0 },
    };
    int out = 0;
    for (int i = 0; i < n; i++) {
        const char *a = args[i];
        bool hit = false;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !hit; k++) {
            size_t l = strlen(opts[k].name);
            if (strncmp(a, opts[k].name, l) || (a[l] != '\0' && a[l] != '='))
                continue;
            hit = true;
            const char *v = a[l] == '=' ? a + l + 1 : NULL;
            if (!v) {
                if (i + 1 >= n) {
                    fprintf(stderr, "volley %s: %s needs a value\n", cmd, opts[k].name);
                    return -1;
                }
                v = args[++i];
            }
            if (strcmp(opts[k].name, "--unsub")) {
                *(const char **)((char *)o + opts[k].off) = v;
            } else if (o->unsub_count == HTTP_UNSUB_MAX) {
                fprintf(stderr, "volley %s: --unsub: more than %u domains\n", cmd,
                        HTTP_UNSUB_MAX);
                return -1;
            } else {
                o->unsub[o->unsub_count++] = v;
            }
        }
        if (!hit)
            args[out++] = args[i];
    }
    *left = out;
    if (o->listen && !o->token_file) {
        fprintf(stderr, "volley %s: --http needs --http-token-file (the API's bearer token)\n",
                cmd);
        return -1;
    }
    if ((o->unsub_count || o->unsub_secret_file) && !o->listen) {
        fprintf(stderr, "volley %s: --unsub needs --http (it serves the /u/ links)\n", cmd);
        return -1;
    }
    if (o->unsub_count && !o->unsub_secret_file) {
        fprintf(stderr, "volley %s: --unsub needs --unsub-secret-file\n", cmd);
        return -1;
    }
    if (o->token_file && !o->listen) {
        fprintf(stderr, "volley %s: --http-token-file without --http\n", cmd);
        return -1;
    }
    return 0;
}

/* ---- responses ---------------------------------------------------------- */

/* The JSON of `volley queue stats --json` (engine/cli/cli_queue.c). */
static enum MHD_Result respond_stats(struct http *h, struct MHD_Connection *c)
{
    struct vl_queue_stats st;
    struct vl_queue_domain_count top[HTTP_TOP_DOMAINS];
    int rc = vl_queue_stats(h->q, -1, &st);
    int nt = rc == 0 ? vl_queue_top_domains(h->q, top, HTTP_TOP_DOMAINS) : rc;
    if (rc < 0 || nt < 0)
        return http_respond_error(c, 500, NULL, -1, vl_strerror(rc < 0 ? rc : nt));
    static const enum vl_rcpt_state states[] = { VL_RCPT_READY, VL_RCPT_DEFERRED,
                                                 VL_RCPT_DELIVERED, VL_RCPT_BOUNCED,
                                                 VL_RCPT_EXPIRED };
    json_t *o = json_object(), *td = json_array();
    json_object_set_new(o, "shards", json_integer(vl_queue_nshards(h->q)));
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        json_object_set_new(o, vl_rcpt_state_name(states[i]),
                            json_integer((json_int_t)st.by_state[states[i]]));
    json_object_set_new(o, "purged", json_integer((json_int_t)st.purged));
    json_object_set_new(o, "ambiguous", json_integer((json_int_t)st.ambiguous));
    json_object_set_new(o, "quarantined", json_integer((json_int_t)st.quarantined));
    json_object_set_new(o, "message_records", json_integer((json_int_t)st.messages));
    json_object_set_new(o, "body_bytes", json_integer((json_int_t)st.body_bytes));
    json_object_set_new(o, "disk_bytes", json_integer((json_int_t)st.disk_bytes));
    for (int i = 0; i < nt; i++) {
        json_t *d = json_object();
        json_object_set_new(d, "domain", json_string(top[i].domain));
        json_object_set_new(d, "rcpts", json_integer((json_int_t)top[i].rcpts));
        json_array_append_new(td, d);
    }
    json_object_set_new(o, "top_domains", td);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return http_respond(c, 200, s);
}

/* ---- access ------------------------------------------------------------- */

static enum MHD_Result accept_policy(void *cls, const struct sockaddr *sa, socklen_t len)
{
    struct http *h = cls;
    (void)len;
    if (h->cfg->allow_count == 0)
        return vl_ip_classify_sa(sa) == VL_IP_LOOPBACK ? MHD_YES : MHD_NO;
    for (unsigned i = 0; i < h->cfg->allow_count; i++)
        if (vl_net_match(&h->cfg->allow[i], sa))
            return MHD_YES;
    return MHD_NO;
}

/* The connection's client IP as text (the "client" of its "injected" events). */
static void http_client_ip(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    const void *bin = NULL;
    if (sa && sa->sa_family == AF_INET)
        bin = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa && sa->sa_family == AF_INET6)
        bin = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (!bin || !inet_ntop(sa->sa_family, bin, out, (socklen_t)cap))
        snprintf(out, cap, "unknown");
}

static bool authorized(struct http *h, struct MHD_Connection *c)
{
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a || strncasecmp(a, "Bearer ", 7))
        return false;
    a += 7;
    while (*a == ' ')
        a++;
    size_t n = strlen(a);
    unsigned char diff = (unsigned char)(n != h->token_len);
    for (size_t i = 0; i < h->token_len; i++)       /* constant time in the token */
        diff |= (unsigned char)(h->token[i] ^ (i < n ? a[i] : 0));
    return diff == 0;
}

/* ---- inject requests ---------------------------------------------------- */

enum hconn_state { HC_BODY, HC_RUNNING, HC_DONE };

enum hconn_route { HR_INJECT, HR_UNSUB, HR_SUPPRESS };

struct hconn {
    enum hconn_state state;
    enum hconn_route route;         /* which POST the body is for */
    char token[UNSUB_TOKEN_BYTES_MAX + 1];
    struct hbuf body;
    bool too_big;
    struct hreq req;
    struct hcall call;
    struct MHD_Connection *conn;
};

static void hconn_free(struct hconn *hc)
{
    hbuf_fini(&hc->body);
    hreq_fini(&hc->req);
    free(hc->call.res);
    free(hc->call.jobs);
    free(hc);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct hconn *hc = *con_cls;
    if (hc) {
        vl_assert(hc->state != HC_RUNNING);          /* a suspended call is never torn down */
        hconn_free(hc);
        *con_cls = NULL;
    }
}

static void call_done(struct hcall *call)
{
    struct hconn *hc = call->arg;
    hc->state = HC_DONE;
    MHD_resume_connection(hc->conn);
}

static size_t literal_bytes(const struct hreq *r)
{
    size_t n = r->raw_t.len + r->subject.len + r->text.len + r->html.len;
    for (size_t i = 0; i < r->nhdr; i++)
        n += r->hdr[i].val.len;
    for (size_t i = 0; i < r->natt; i++)
        n += r->att[i].len;
    return n;
}

/* POST /u/TOKEN with the body "List-Unsubscribe=One-Click" (RFC 8058 3.1;
 * form-urlencoded or multipart/form-data both carry that text): suppress the
 * token's recipient for its sending domain. A token that does not verify:
 * 404 (RFC 8058 leaves it to us; nothing says a link exists). */
static enum MHD_Result unsub_post(struct http *h, struct hconn *hc)
{
    struct MHD_Connection *c = hc->conn;
    struct unsub_claims cl;
    const struct unsub_conf *uc = unsub_conf_get();
    if (!uc || unsub_token_check(uc->secret, uc->secret_len, hc->token, strlen(hc->token),
                                 &cl) < 0)
        return http_respond_error(c, 404, NULL, -1, "unknown or invalid unsubscribe link");
    if (hc->too_big || !hc->body.p || !memmem(hc->body.p, hc->body.len,
                                              "List-Unsubscribe=One-Click", 26))
        return http_respond_error(c, 400, "", -1, "the body must be List-Unsubscribe=One-Click "
                             "(RFC 8058)");
    uint64_t now = vl_clock_wall_ms();
    int rc = sup_add(h->sup, cl.domain, cl.rcpt, SUP_UNSUBSCRIBE, now);
    if (rc == 0 && h->cfg->events_on) {   /* a 503 is retried: stored again, same event */
        char client[64];
        http_client_ip(c, client, sizeof client);
        rc = unsub_event_add(h->q, &cl, "http", client, (int64_t)now);
    }
    if (rc < 0)
        return http_respond_error(c, 503, NULL, -1, vl_strerror(rc));
    vl_log_at(VL_LOG_INFO, "evt=unsubscribed rcpt=%s domain=%s campaign=\"%s\"", cl.rcpt,
              cl.domain, cl.campaign);
    json_t *o = json_object();
    json_object_set_new(o, "unsubscribed", json_string(cl.rcpt));
    json_object_set_new(o, "domain", json_string(cl.domain));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return http_respond(c, 200, s);
}

static enum MHD_Result post_start(struct http *h, struct hconn *hc)
{
    if (hc->route == HR_UNSUB)
        return unsub_post(h, hc);
    if (hc->route == HR_SUPPRESS) {
        if (hc->too_big)
            return http_respond_error(hc->conn, 400, "", -1, "request body too big");
        return http_suppress_post(h, hc->conn, hc->body.p ? hc->body.p : "", hc->body.len);
    }
    struct MHD_Connection *c = hc->conn;
    if (hc->too_big) {
        char why[96];
        snprintf(why, sizeof why, "request body over %u bytes", HTTP_BODY_BYTES_MAX);
        return http_respond_error(c, 400, "", -1, why);
    }
    struct hreq_err e;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t t_body = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    int rc = hreq_parse(hc->body.p ? hc->body.p : "", hc->body.len, &hc->req, &e);
    hbuf_fini(&hc->body);
    if (rc == -ENOMEM)
        return http_respond_error(c, 503, NULL, -1, "out of memory");
    if (rc < 0)
        return http_respond_error(c, 400, e.field, e.rcpt, e.why);
    if (literal_bytes(&hc->req) > h->cfg->msg_bytes_max)
        return http_respond_error(c, 400, "content", -1,
                             "message content over the size limit (--max-msg-size)");
    clock_gettime(CLOCK_MONOTONIC, &ts);
    hc->call = (struct hcall){ .h = h, .req = &hc->req, .now_ms = vl_clock_wall_ms(),
                               .done = call_done, .arg = hc, .t_body_us = t_body,
                               .t_parsed_us = (uint64_t)ts.tv_sec * 1000000u +
                                              (uint64_t)ts.tv_nsec / 1000u };
    http_client_ip(c, hc->call.client, sizeof hc->call.client);
    hc->call.res = calloc(hc->req.nrcpt, sizeof *hc->call.res);
    if (!hc->call.res)
        return http_respond_error(c, 503, NULL, -1, "out of memory");
    hc->state = HC_RUNNING;
    MHD_suspend_connection(c);                 /* before the workers can resume it */
    if ((rc = http_call_submit(&hc->call)) < 0) {
        hc->state = HC_BODY;
        MHD_resume_connection(c);
        return http_respond_error(c, 503, NULL, -1, rc == -ESHUTDOWN ? "shutting down"
                                                                : "out of memory");
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    struct http *h = cls;
    (void)version;
    struct hconn *hc = *con_cls;
    if (!hc) {
        bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        bool post = !strcmp(method, "POST");
        if (!strcmp(url, "/healthz"))
            return get ? http_respond(c, 200, strdup("{\"ok\":true}"))
                       : http_respond_error(c, 405, NULL, -1, "use GET");
        if (!strncmp(url, "/u/", 3)) {            /* one-click unsubscribe: no bearer */
            if (!post)
                return http_respond_error(c, 405, NULL, -1, "use POST");
            if (strlen(url + 3) > UNSUB_TOKEN_BYTES_MAX)
                return http_respond_error(c, 404, NULL, -1, "unknown or invalid unsubscribe link");
            hc = calloc(1, sizeof *hc);
            if (!hc)
                return MHD_NO;
            hc->conn = c;
            hc->route = HR_UNSUB;
            snprintf(hc->token, sizeof hc->token, "%s", url + 3);
            hc->body.max = 4096;
            *con_cls = hc;
            return MHD_YES;
        }
        bool sup = !strcmp(url, "/api/v1/suppress");
        bool known = !strcmp(url, "/api/v1/queue") || !strcmp(url, "/api/inject/v1") || sup ||
                     !strcmp(url, "/metrics") || !strncmp(url, "/api/v1/admin/", 14);
        if (!known)
            return http_respond_error(c, 404, NULL, -1, "no such route");
        if (!authorized(h, c))
            return http_respond_error(c, 401, NULL, -1, "missing or wrong bearer token");
        if (!strcmp(url, "/api/v1/queue"))
            return get ? respond_stats(h, c) : http_respond_error(c, 405, NULL, -1, "use GET");
        if (!strncmp(url, "/api/v1/admin/", 14))
            return http_admin(h, c, url, method);
        if (!strcmp(url, "/metrics"))
            return get ? http_metrics_get(h, c) : http_respond_error(c, 405, NULL, -1, "use GET");
        if (sup && get)
            return http_suppress_get(h, c);
        if (sup && !strcmp(method, "DELETE"))
            return http_suppress_delete(h, c);
        if (!post)
            return http_respond_error(c, 405, NULL, -1, sup ? "use GET, POST or DELETE"
                                                       : "use POST");
        hc = calloc(1, sizeof *hc);
        if (!hc)
            return MHD_NO;
        hc->conn = c;
        hc->route = sup ? HR_SUPPRESS : HR_INJECT;
        hc->body.max = sup ? HTTP_SUPPRESS_BODY_BYTES_MAX : HTTP_BODY_BYTES_MAX;
        *con_cls = hc;
        return MHD_YES;
    }
    if (hc->state == HC_DONE) {
        unsigned status = 500;
        char *s = http_call_response(&hc->call, &status);
        return http_respond(c, status, s);
    }
    if (*upload_size) {
        if (!hc->too_big && hbuf_add(&hc->body, upload, *upload_size) < 0) {
            hc->too_big = true;
            hbuf_fini(&hc->body);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (hc->state == HC_RUNNING)
        return MHD_YES;
    return post_start(h, hc);
}

/* ---- start and stop ----------------------------------------------------- */

/* The first line of @p path (16 to cap-1 characters, no blanks) into @p out. */
static int read_secret(const char *opt, const char *path, char *out, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = -errno;
        fprintf(stderr, "volley run: %s '%s': %s\n", opt, path, strerror(-e));
        return e;
    }
    char line[HTTP_TOKEN_BYTES_MAX + 2];
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    size_t n = ok ? strcspn(line, "\r\n") : 0;
    line[n] = '\0';
    if (n < 16 || n > cap - 1 || strpbrk(line, " \t")) {
        fprintf(stderr, "volley run: %s '%s': the first line must be 16 to %zu characters "
                "without blanks\n", opt, path, cap - 1);
        return VL_E_INVALID;
    }
    memcpy(out, line, n + 1);
    *len = n;
    return 0;
}

static int listen_on(const char *spec, int *fd_out)
{
    struct vl_hostport hp;
    const char *why = NULL;
    char buf[VL_HOSTPORT_HOST_BYTES_MAX + 16];
    size_t n = strlen(spec);
    bool any = n >= 2 && !strcmp(spec + n - 2, ":0");     /* port 0: any free port */
    if (n < sizeof buf) {
        memcpy(buf, spec, n + 1);
        if (any)
            buf[n - 1] = '1';
    }
    if (n >= sizeof buf || vl_hostport_parse(buf, 0, false, &hp, &why) < 0 || !hp.is_ip) {
        fprintf(stderr, "volley run: --http '%s': %s\n", spec,
                why ? why : "expected IP:PORT (an IP address, [IPv6]:PORT)");
        return VL_E_INVALID;
    }
    if (any) {
        hp.addr.in4.sin_port = 0;                          /* same offset in sin6_port */
        hp.addr.in6.sin6_port = 0;
    }
    int fd = socket(hp.addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (hp.addr.sa.sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    socklen_t len = hp.addr.sa.sa_family == AF_INET6 ? sizeof hp.addr.in6 : sizeof hp.addr.in4;
    if (bind(fd, &hp.addr.sa, len) < 0 || listen(fd, HTTP_LISTEN_BACKLOG) < 0) {
        int e = -errno;
        fprintf(stderr, "volley run: --http '%s': %s\n", spec, strerror(-e));
        close(fd);
        return e;
    }
    union vl_sockaddr a;
    len = sizeof a;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (getsockname(fd, &a.sa, &len) == 0) {
        bool v6 = a.sa.sa_family == AF_INET6;
        inet_ntop(a.sa.sa_family, v6 ? (const void *)&a.in6.sin6_addr
                                     : (const void *)&a.in4.sin_addr, ip, sizeof ip);
        fprintf(stderr, "volley run: HTTP API on http://%s%s%s:%u\n", v6 ? "[" : "", ip,
                v6 ? "]" : "", (unsigned)ntohs(v6 ? a.in6.sin6_port : a.in4.sin_port));
    }
    *fd_out = fd;
    return 0;
}

int http_start(const struct vl_config *cfg, const struct http_opts *o, struct vl_queue *q,
               struct http **out)
{
    struct http *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->cfg = cfg;
    h->q = q;
    h->fd = -1;
    atomic_store(&h->seq, vl_clock_wall_ms() << 16);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    int rc = read_secret("--http-token-file", o->token_file, h->token, sizeof h->token,
                         &h->token_len);
    if (rc == 0 && (rc = sup_open(cfg->data_dir, true, &h->sup)) < 0)
        fprintf(stderr, "volley run: --http: cannot open %s/suppress: %s\n", cfg->data_dir,
                vl_strerror(rc));
    if (rc == 0)
        rc = http_workers_start(h);
    if (rc == 0)
        rc = listen_on(o->listen, &h->fd);
    if (rc < 0)
        goto fail;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    h->d = MHD_start_daemon(flags, 0, accept_policy, h, on_request, h,
                            MHD_OPTION_LISTEN_SOCKET, h->fd,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_MHD_THREADS,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNS_MAX,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT_S,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_END);
    if (!h->d) {
        fprintf(stderr, "volley run: --http '%s': libmicrohttpd did not start\n", o->listen);
        rc = -EIO;
        goto fail;
    }
    *out = h;
    return 0;
fail:
    http_stop(h);
    return rc;
}

void http_stop(struct http *h)
{
    if (!h)
        return;
    int fd = h->d ? MHD_quiesce_daemon(h->d) : h->fd;   /* no new connections */
    http_workers_stop(h);            /* every call done, its connection resumed; later
                                        calls are refused (503) */
    if (h->d)
        MHD_stop_daemon(h->d);       /* closes the socket unless quiesce handed it back */
    struct vl_queue_stats st;
    if (h->d && vl_queue_stats(h->q, -1, &st) == 0)      /* group commit, in numbers */
        vl_log_at(VL_LOG_INFO, "evt=http_done inject_requests=%llu queue_commits=%llu "
                  "queue_writes=%llu", (unsigned long long)atomic_load(&h->requests),
                  (unsigned long long)st.commits, (unsigned long long)st.requests);
    if (fd >= 0)
        close(fd);
    sup_close(h->sup);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}
