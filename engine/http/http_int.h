/*
 * http_int.h - internals shared by the HTTP API's files: the server state,
 * the inject workers' job queue and one request in flight (struct hcall).
 * Invariant: a job is on exactly one of the queue or a worker's hands; a
 * call's jobs_left reaches 0 exactly once, and whoever takes it there calls
 * call->done (which resumes the connection).
 */
#ifndef VOLLEY_HTTP_INT_H
#define VOLLEY_HTTP_INT_H

#include "http.h"
#include "http_req.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define HTTP_WORKERS            32u        /* policy: concurrent enqueues (group commit) */
#define HTTP_BODY_BYTES_MAX    (96u << 20) /* policy: a request body */
#define HTTP_SUPPRESS_BODY_BYTES_MAX (16u << 20)  /* policy: POST /api/v1/suppress */
#define HTTP_SUPPRESS_ENTRIES_MAX 100000u   /* policy: entries per POST, and per GET */
#define HTTP_MHD_THREADS         2u        /* policy: libmicrohttpd's epoll threads */
#define HTTP_CONNS_MAX        1024u        /* policy: open HTTP connections */
#define HTTP_CONN_TIMEOUT_S     60u        /* policy: idle keep-alive connection */
#define HTTP_TOKEN_BYTES_MAX   512u
#define HTTP_WHY_BYTES_MAX     200u

/* One recipient's result. */
enum hres_state { HRES_NONE, HRES_QUEUED, HRES_FAILED, HRES_STORAGE };
struct hres {
    enum hres_state state;
    char why[HTTP_WHY_BYTES_MAX];
};

struct hcall;
struct hjob {
    struct hjob *next;
    struct hcall *call;
    size_t first, end;              /* recipients [first, end) */
};

struct hcall {
    struct http *h;
    struct hreq *req;
    struct hres *res;               /* one per recipient */
    uint64_t now_ms;
    uint64_t t_body_us, t_parsed_us;   /* monotonic: body received, request parsed */
    char client[64];                /* the client's IP (inet_ntop), or "unknown" */
    atomic_size_t jobs_left;
    struct hjob *jobs;              /* array of the call's jobs */
    void (*done)(struct hcall *c);
    void *arg;                      /* the connection */
};

struct http {
    const struct vl_config *cfg;
    struct vl_queue *q;
    struct sup *sup;                /* DATA/suppress (suppress.h) */
    struct MHD_Daemon *d;
    int fd;
    char token[HTTP_TOKEN_BYTES_MAX];
    size_t token_len;
    atomic_uint_fast64_t seq;
    atomic_uint_fast64_t requests;  /* inject requests answered (evt=http_done) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct hjob *todo, **todo_tail;
    bool quit;
    unsigned workers_n;
    pthread_t workers[HTTP_WORKERS];
};

/** Start/stop the inject workers. @return 0 or -errno. */
int http_workers_start(struct http *h);
void http_workers_stop(struct http *h);

/** Render and queue @p c's recipients on the workers; c->done runs (on a
 *  worker) when every recipient has a result. @return 0 or -ENOMEM (nothing
 *  submitted), -ESHUTDOWN (stopping: nothing submitted). */
int http_call_submit(struct hcall *c);

/** The response body of a finished call (malloc'd JSON) and its status. */
char *http_call_response(const struct hcall *c, unsigned *status);

/** Queue a JSON response (@p json malloc'd, freed here). */
enum MHD_Result http_respond(struct MHD_Connection *c, unsigned status, char *json);
/** Queue {"error": why, "field": field, "recipient_index": rcpt} (field NULL,
 *  rcpt < 0: left out). */
enum MHD_Result http_respond_error(struct MHD_Connection *c, unsigned status, const char *field,
                                   long rcpt, const char *why);

/* http_suppress.c: /api/v1/suppress (GET list, POST add, DELETE one). */
enum MHD_Result http_suppress_get(struct http *h, struct MHD_Connection *c);
enum MHD_Result http_suppress_post(struct http *h, struct MHD_Connection *c, const char *body,
                                   size_t len);
enum MHD_Result http_suppress_delete(struct http *h, struct MHD_Connection *c);

/* http_metrics.c: GET /metrics (Prometheus text format). */
enum MHD_Result http_metrics_get(struct http *h, struct MHD_Connection *c);

/* http_admin.c: /api/v1/admin/... (operator holds, retry). */
enum MHD_Result http_admin(struct http *h, struct MHD_Connection *c, const char *url,
                           const char *method);
enum MHD_Result http_admin_domains(struct MHD_Connection *c);

#endif
