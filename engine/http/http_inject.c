/*
 * http_inject.c - the HTTP API's inject workers: render each recipient's
 * message from a parsed request (http_req.h), normalise it (msg.h) and
 * queue it durably (the 200 comes only after the fsync'd commit). A
 * request's recipients are split into up to HTTP_WORKERS contiguous ranges,
 * one job each; a job queues what it rendered in batches of up to
 * HTTP_BATCH_MAX messages with vl_queue_enqueue_ids() (the SMTP intake's
 * batch call: every message handed to its shard's group commit before any
 * is waited for, so a batch shares the fsyncs; each message succeeds or
 * fails alone).
 * Invariant: every recipient of a call ends with exactly one result
 * (queued, failed or storage), written only by the job owning its range.
 */
#include "http_int.h"

#include "http_mime.h"
#include "http_tmpl.h"
#include "dlog_inject.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "msg_campaign.h"
#include "suppress.h"
#include "volley/error.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A worker's scratch for one job. */
struct hctx {
    struct tmpl_val vals[TMPL_NAMES_MAX];
    char num[TMPL_NAMES_MAX][40];
    struct hbuf hv, subj, text, html, msg;
    struct mime_hdr hdrs[HREQ_HEADERS_MAX];
};

static void res_fail(struct hres *r, enum hres_state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void res_fail(struct hres *r, enum hres_state st, const char *fmt, ...)
{
    r->state = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
}

static void val_of(struct tmpl_val *v, char *num, const json_t *j)
{
    v->set = true;
    if (json_is_string(j)) {
        v->p = json_string_value(j);
        v->len = json_string_length(j);
        return;
    }
    int n = 0;
    if (json_is_integer(j))
        n = snprintf(num, 40, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    else if (json_is_real(j))
        n = snprintf(num, 40, "%.15g", json_real_value(j));
    else if (json_is_boolean(j))
        n = snprintf(num, 40, "%s", json_is_true(j) ? "true" : "false");
    else
        v->set = false;                       /* null: as if not given */
    v->p = num;
    v->len = n > 0 ? (size_t)n : 0;
}

/* Recipient i's values: its substitutions, then email/name, then the
 * request's substitutions. */
static void resolve_vals(const struct hreq *r, size_t i, struct hctx *x)
{
    const struct hreq_rcpt *rc = &r->rcpt[i];
    for (size_t k = 0; k < r->names.n; k++) {
        struct tmpl_val *v = &x->vals[k];
        v->set = false;
        const json_t *j = rc->subs ? json_object_get(rc->subs, r->names.name[k]) : NULL;
        if (j)
            val_of(v, x->num[k], j);
        if (v->set)
            continue;
        if ((int)k == r->var_email) {
            *v = (struct tmpl_val){ rc->email, rc->email_len, true };
            continue;
        }
        if ((int)k == r->var_name && rc->name) {
            *v = (struct tmpl_val){ rc->name, rc->name_len, true };
            continue;
        }
        j = r->subs ? json_object_get(r->subs, r->names.name[k]) : NULL;
        if (j)
            val_of(v, x->num[k], j);
    }
}

/* Render @p t into @p out (reset first); a failure is the recipient's. */
static int render(const struct hreq *r, const struct tmpl *t, struct hctx *x, enum tmpl_esc esc,
                  struct hbuf *out, const char *field, struct hres *res)
{
    out->len = 0;
    int miss = -1;
    int rc = tmpl_render(t, x->vals, esc, out, &miss);
    if (rc == VL_E_NOTFOUND)
        res_fail(res, HRES_FAILED, "missing merge field '%s' in %s (no value, no default)",
                 r->names.name[miss], field);
    else if (rc == VL_E_TOOBIG)
        res_fail(res, HRES_FAILED, "%s: over the message size limit once rendered", field);
    else if (rc < 0)
        res_fail(res, HRES_STORAGE, "%s: %s", field, vl_strerror(rc));
    return rc;
}

static bool has_crlf(const struct hbuf *b)
{
    return b->len && (memchr(b->p, '\r', b->len) || memchr(b->p, '\n', b->len));
}

/* The builder's message for recipient i into x->msg. */
static int build_msg(struct hcall *c, size_t i, struct hctx *x, uint64_t uniq, struct hres *res)
{
    const struct hreq *r = c->req;
    uint64_t now = c->now_ms;
    const char *host = c->h->cfg->ehlo_name;
    int rc = 0;
    struct mime_msg m = {
        .from_email = r->from_email, .from_name = r->from_name,
        .to_email = { r->rcpt[i].email, r->rcpt[i].email_len },
        .to_name = { r->rcpt[i].name, r->rcpt[i].name_len },
        .reply_to_email = r->reply_email, .reply_to_name = r->reply_name,
        .atts = r->att, .att_count = r->natt, .now_ms = now, .hostname = host, .unique = uniq,
        .hdrs = x->hdrs, .hdr_count = r->nhdr,
    };
    if (r->has_subject) {
        if ((rc = render(r, &r->subject, x, TMPL_RAW, &x->subj, "content.subject", res)) < 0)
            return rc;
        if (has_crlf(&x->subj)) {
            res_fail(res, HRES_FAILED, "a merge field puts a line break in content.subject");
            return VL_E_INVALID;
        }
        m.subject = (struct mime_str){ x->subj.p ? x->subj.p : "", x->subj.len };
    }
    x->hv.len = 0;
    size_t offs[HREQ_HEADERS_MAX];
    for (size_t k = 0; k < r->nhdr; k++) {
        struct hbuf one = { .max = x->msg.max };
        char f[128];
        snprintf(f, sizeof f, "content.headers.%s", r->hdr[k].name);
        rc = render(r, &r->hdr[k].val, x, TMPL_RAW, &one, f, res);
        if (rc == 0 && has_crlf(&one)) {
            res_fail(res, HRES_FAILED, "a merge field puts a line break in %s", f);
            rc = VL_E_INVALID;
        }
        offs[k] = x->hv.len;
        if (rc == 0 && (rc = hbuf_add(&x->hv, one.p ? one.p : "", one.len)) < 0)
            res_fail(res, HRES_FAILED, "%s: too long", f);
        x->hdrs[k] = (struct mime_hdr){ r->hdr[k].name, { NULL, one.len } };
        hbuf_fini(&one);
        if (rc < 0)
            return rc;
    }
    for (size_t k = 0; k < r->nhdr; k++)
        x->hdrs[k].value.p = x->hv.p ? x->hv.p + offs[k] : "";
    if (r->has_text) {
        if ((rc = render(r, &r->text, x, TMPL_RAW, &x->text, "content.text_body", res)) < 0)
            return rc;
        m.text = (struct mime_str){ x->text.p ? x->text.p : "", x->text.len };
    }
    if (r->has_html) {
        if ((rc = render(r, &r->html, x, TMPL_HTML, &x->html, "content.html_body", res)) < 0)
            return rc;
        m.html = (struct mime_str){ x->html.p ? x->html.p : "", x->html.len };
    }
    x->msg.len = 0;
    rc = mime_build(&m, &x->msg);
    if (rc == VL_E_TOOBIG)
        res_fail(res, HRES_FAILED, "message over the size limit (--max-msg-size)");
    else if (rc < 0)
        res_fail(res, HRES_STORAGE, "building the message: %s", vl_strerror(rc));
    return rc;
}

/* Normalise x->msg into @p m. A failure is recorded in res[0..n). @return 0
 * or < 0. */
static int normalise(struct hcall *c, struct hctx *x, struct hres *res, size_t n,
                     uint64_t uniq, struct msg_result *m)
{
    struct msg_opts mo = { c->now_ms, c->h->cfg->ehlo_name, uniq, c->req->env_from, false };
    struct msg_problem prob[1];
    *m = (struct msg_result){ 0 };
    int rc = msg_normalise(x->msg.p ? x->msg.p : "", x->msg.len, &mo, m, prob, 1);
    const char *why = NULL;
    char t[HTTP_WHY_BYTES_MAX];
    if (rc == VL_E_INVALID) {
        snprintf(t, sizeof t, "message refused: line %u: %s", prob[0].line,
                 prob[0].why ? prob[0].why : "malformed");
        why = t;
    } else if (rc == VL_E_TOOBIG || (rc == 0 && m->len > c->h->cfg->msg_bytes_max)) {
        why = "message over the size limit (--max-msg-size)";
    }
    if (!why && rc == 0)
        return 0;
    for (size_t k = 0; k < n; k++)
        res_fail(&res[k], why ? HRES_FAILED : HRES_STORAGE, "%s", why ? why : vl_strerror(rc));
    msg_result_fini(m);
    return rc < 0 ? rc : VL_E_TOOBIG;
}

/* Messages rendered and normalised, waiting for one vl_queue_enqueue_ids(). */
#define HTTP_ID_TRIES 4u      /* queue ids taken when the queue says the id exists */
#define HTTP_BATCH_MAX 256u   /* policy: messages a worker holds before queueing them */
struct hbatch {
    size_t n;
    struct msg_result body[HTTP_BATCH_MAX];
    struct vl_queue_new_msg nm[HTTP_BATCH_MAX];
    size_t first[HTTP_BATCH_MAX], count[HTTP_BATCH_MAX];   /* their span in ptrs */
    const char **ptrs;                                      /* addresses, all messages */
    size_t *lens;
    size_t *idx;                                            /* recipient index of each */
    size_t nptrs;
    struct vl_dlog_injected ev[HTTP_BATCH_MAX];             /* events on: "injected" */
};

/* With events on: message @p k's "injected" events under @p id, as
 * vl_queue_enqueue_ids() takes them (json NULL: none, or out of memory, which
 * fails the message). @return 0 or -ENOMEM. */
static int batch_events(struct hcall *c, struct hbatch *b, size_t k, uint64_t id,
                        struct vl_queue_rcpt_events *out)
{
    vl_dlog_injected_fini(&b->ev[k]);
    *out = (struct vl_queue_rcpt_events){ NULL, NULL };
    if (!c->h->cfg->events_on)
        return 0;
    char camp[MSG_CAMPAIGN_ID_MAX + 1];
    msg_campaign_find(b->body[k].data, b->body[k].len, camp);
    const struct hreq *r = c->req;
    char from[VL_SMTP_PATH_BYTES_MAX + 1];
    snprintf(from, sizeof from, "%.*s", (int)r->env_from_len, r->env_from);
    struct vl_dlog_event proto = { .ts_ms = (int64_t)c->now_ms, .msg_id = id, .campaign = camp,
                                   .from = from, .source = "http", .client = c->client };
    int rc = vl_dlog_injected_build(&b->ev[k], &proto, b->nm[k].rcpts, b->nm[k].rcpt_lens,
                                    b->nm[k].rcpt_count);
    if (rc == 0)
        *out = (struct vl_queue_rcpt_events){ b->ev[k].json, b->ev[k].lens };
    return rc;
}

static void batch_flush(struct hcall *c, struct hbatch *b)
{
    if (!b->n)
        return;
    uint64_t ids[HTTP_BATCH_MAX];
    int rcs[HTTP_BATCH_MAX];
    struct vl_queue_rcpt_events ev[HTTP_BATCH_MAX];
    size_t off = 0;
    for (size_t k = 0; k < b->n; k++) {               /* rcpt arrays are final now */
        b->nm[k].rcpts = b->ptrs + off;
        b->nm[k].rcpt_lens = b->lens + off;
        off += b->count[k];
    }
    bool nomem = false;
    for (size_t k = 0; k < b->n; k++) {               /* no body names its id */
        ids[k] = vl_queue_msg_id_new(c->h->q, c->now_ms);
        nomem |= batch_events(c, b, k, ids[k], &ev[k]) < 0;
    }
    if (nomem) {                                      /* the events cannot be stored */
        for (size_t k = 0; k < b->n; k++)
            rcs[k] = -ENOMEM;
    } else {
        (void)vl_queue_enqueue_ids(c->h->q, b->nm, ev, b->n, c->now_ms, ids, rcs);
    }
    for (size_t k = 0; k < b->n; k++) {
        for (unsigned t = 1; t < HTTP_ID_TRIES && rcs[k] == -EEXIST; t++) {   /* id taken */
            ids[k] = vl_queue_msg_id_new(c->h->q, c->now_ms);
            rcs[k] = batch_events(c, b, k, ids[k], &ev[k]);
            if (rcs[k] == 0)
                (void)vl_queue_enqueue_ids(c->h->q, &b->nm[k], &ev[k], 1, c->now_ms, &ids[k],
                                           &rcs[k]);
        }
        vl_dlog_injected_fini(&b->ev[k]);
        if (rcs[k] == 0)
            met_inject(MET_L_HTTP, b->count[k]);
        for (size_t p = b->first[k]; p < b->first[k] + b->count[k]; p++) {
            size_t i = b->idx[p];
            if (rcs[k] == 0)
                c->res[i].state = HRES_QUEUED;
            else
                res_fail(&c->res[i], rcs[k] == VL_E_INVALID || rcs[k] == VL_E_TOOBIG ?
                         HRES_FAILED : HRES_STORAGE, "queue: %s", vl_strerror(rcs[k]));
        }
        msg_result_fini(&b->body[k]);
    }
    b->n = 0;
    b->nptrs = 0;
}

/* Add the normalised @p m for the recipients of [i0, i0 + n) not already
 * failed (suppressed) to @p b, which owns @p m from now on; flush when full. */
static void batch_add(struct hcall *c, struct hbatch *b, struct msg_result *m, size_t i0,
                      size_t n)
{
    const struct hreq *r = c->req;
    size_t k = b->n;
    b->first[k] = b->nptrs;
    for (size_t i = i0; i < i0 + n; i++) {
        if (c->res[i].state != HRES_NONE)
            continue;
        b->idx[b->nptrs] = i;
        b->ptrs[b->nptrs] = r->rcpt[i].email;
        b->lens[b->nptrs++] = r->rcpt[i].email_len;
    }
    b->count[k] = b->nptrs - b->first[k];
    n = b->count[k];
    if (n == 0) {                          /* every one suppressed: nothing to queue */
        msg_result_fini(m);
        return;
    }
    b->n++;
    b->body[k] = *m;
    b->nm[k] = (struct vl_queue_new_msg){
        .return_path = r->env_from, .return_path_len = r->env_from_len,
        .body = m->data, .body_len = m->len,
        .flags = (m->is_8bit ? VL_QUEUE_MSG_8BIT : 0u) |
                 (r->smtputf8 ? VL_QUEUE_MSG_SMTPUTF8 : 0u),
        .rcpt_count = n,
    };
    if (b->n == HTTP_BATCH_MAX)
        batch_flush(c, b);
}

/* Mark the job's suppressed recipients failed, with the reason (one read
 * transaction). @return 0 or < 0 (every recipient of the job then failed). */
static int drop_suppressed(struct hcall *c, const struct hjob *j, struct hbatch *b)
{
    const struct hreq *r = c->req;
    size_t n = j->end - j->first;
    struct sup_entry *e = c->h->sup ? malloc(n * sizeof *e) : NULL;
    if (!c->h->sup)
        return 0;
    for (size_t i = 0; e && i < n; i++) {
        b->ptrs[i] = r->rcpt[j->first + i].email;
        b->lens[i] = r->rcpt[j->first + i].email_len;
    }
    const char *at = memchr(r->env_from, '@', r->env_from_len);
    int rc = e ? sup_lookup_many(c->h->sup, at ? at + 1 : NULL, b->ptrs, b->lens, n, e)
               : -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct hres *res = &c->res[j->first + i];
        if (rc < 0) {
            res_fail(res, HRES_STORAGE, "suppression list: %s", vl_strerror(rc));
            continue;
        }
        if (e[i].reason == SUP_NONE)
            continue;
        time_t t = (time_t)(e[i].time_ms / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        res_fail(res, HRES_FAILED, "suppressed: %s (%s%s) since %s",
                 sup_reason_name(e[i].reason), e[i].scope[0] ? "for " : "global",
                 e[i].scope, when);
    }
    free(e);
    return rc < 0 ? rc : 0;
}

/* A worker's scratch, kept across jobs (its buffers keep their capacity). */
struct hwork {
    struct hctx x;
    struct hbatch b;
    size_t cap;                    /* of b.ptrs, b.lens, b.idx */
};

static int work_reserve(struct hwork *w, size_t nr)
{
    if (nr <= w->cap)
        return 0;
    const char **p = realloc(w->b.ptrs, nr * sizeof *p);
    if (p)
        w->b.ptrs = p;
    size_t *l = realloc(w->b.lens, nr * sizeof *l);
    if (l)
        w->b.lens = l;
    size_t *ix = realloc(w->b.idx, nr * sizeof *ix);
    if (ix)
        w->b.idx = ix;
    if (!p || !l || !ix)
        return -ENOMEM;
    w->cap = nr;
    return 0;
}

static void work_free(struct hwork *w)
{
    hbuf_fini(&w->x.hv);
    hbuf_fini(&w->x.subj);
    hbuf_fini(&w->x.text);
    hbuf_fini(&w->x.html);
    hbuf_fini(&w->x.msg);
    free(w->b.ptrs);
    free(w->b.lens);
    free(w->b.idx);
    free(w);
}

static void job_run(struct hjob *j, struct hwork *w)
{
    struct hcall *c = j->call;
    const struct hreq *r = c->req;
    struct hctx *x = &w->x;
    struct hbatch *b = &w->b;
    size_t nr = j->end - j->first;
    b->n = b->nptrs = 0;
    if (work_reserve(w, nr) < 0) {
        for (size_t i = j->first; i < j->end; i++)
            res_fail(&c->res[i], HRES_STORAGE, "out of memory");
        return;
    }
    if (drop_suppressed(c, j, b) < 0)
        return;
    size_t max = c->h->cfg->msg_bytes_max + 65536;
    x->hv.max = x->subj.max = x->text.max = x->html.max = x->msg.max = max;
    struct msg_result m;
    if (!r->per_rcpt) {                           /* one body for every recipient */
        size_t live = 0;
        for (size_t i = j->first; i < j->end; i++)
            live += c->res[i].state == HRES_NONE;
        if (!live)
            return;
        uint64_t uniq = atomic_fetch_add(&c->h->seq, 1);
        struct hres fail = { HRES_NONE, "" };
        int rc = r->raw ? render(r, &r->raw_t, x, TMPL_RAW, &x->msg, "content", &fail)
                        : build_msg(c, 0, x, uniq, &fail);
        if (rc == 0 && normalise(c, x, &fail, 1, uniq, &m) == 0)
            batch_add(c, b, &m, j->first, nr);
        for (size_t i = j->first; fail.state != HRES_NONE && i < j->end; i++)
            if (c->res[i].state == HRES_NONE)
                c->res[i] = fail;
    } else {
        for (size_t i = j->first; i < j->end; i++) {
            if (c->res[i].state != HRES_NONE)
                continue;                         /* suppressed */
            uint64_t uniq = atomic_fetch_add(&c->h->seq, 1);
            resolve_vals(r, i, x);
            int rc = r->raw ? render(r, &r->raw_t, x, TMPL_RAW, &x->msg, "content", &c->res[i])
                            : build_msg(c, i, x, uniq, &c->res[i]);
            if (rc == 0 && normalise(c, x, &c->res[i], 1, uniq, &m) == 0)
                batch_add(c, b, &m, i, 1);
        }
    }
    batch_flush(c, b);
}

static void *worker_main(void *arg)
{
    struct http *h = arg;
    struct hwork *w = calloc(1, sizeof *w);      /* once per worker, reused by every job */
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->todo && !h->quit)
            pthread_cond_wait(&h->cv, &h->mu);
        struct hjob *j = h->todo;
        if (!j)
            break;
        h->todo = j->next;
        if (!h->todo)
            h->todo_tail = &h->todo;
        pthread_mutex_unlock(&h->mu);
        struct hcall *c = j->call;
        if (w) {
            job_run(j, w);
        } else {
            for (size_t i = j->first; i < j->end; i++)
                res_fail(&c->res[i], HRES_STORAGE, "out of memory");
        }
        if (atomic_fetch_sub(&c->jobs_left, 1) == 1)
            c->done(c);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    if (w)
        work_free(w);
    return NULL;
}

int http_workers_start(struct http *h)
{
    h->todo = NULL;
    h->todo_tail = &h->todo;
    for (unsigned i = 0; i < HTTP_WORKERS; i++) {
        int rc = pthread_create(&h->workers[i], NULL, worker_main, h);
        if (rc != 0)
            return -rc;
        h->workers_n++;
    }
    return 0;
}

/* Workers drain the queue before they quit: every submitted call finishes. */
void http_workers_stop(struct http *h)
{
    pthread_mutex_lock(&h->mu);
    h->quit = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    for (unsigned i = 0; i < h->workers_n; i++)
        pthread_join(h->workers[i], NULL);
    h->workers_n = 0;
}

int http_call_submit(struct hcall *c)
{
    size_t n = c->req->nrcpt;
    size_t k = c->req->per_rcpt ? (n < HTTP_WORKERS ? n : HTTP_WORKERS) : 1;
    c->jobs = calloc(k, sizeof *c->jobs);
    if (!c->jobs)
        return -ENOMEM;
    atomic_store(&c->jobs_left, k);
    for (size_t i = 0; i < k; i++)
        c->jobs[i] = (struct hjob){ NULL, c, n * i / k, n * (i + 1) / k };
    pthread_mutex_lock(&c->h->mu);
    if (c->h->quit) {
        pthread_mutex_unlock(&c->h->mu);
        return -ESHUTDOWN;
    }
    for (size_t i = 0; i < k; i++) {
        *c->h->todo_tail = &c->jobs[i];
        c->h->todo_tail = &c->jobs[i].next;
    }
    pthread_cond_broadcast(&c->h->cv);
    pthread_mutex_unlock(&c->h->mu);
    return 0;
}

char *http_call_response(const struct hcall *c, unsigned *status)
{
    const struct hreq *r = c->req;
    json_t *o = json_object(), *failed = json_array(), *errors = json_array();
    size_t ok = 0, bad = 0;
    bool storage = false;
    for (size_t i = 0; o && failed && errors && i < r->nrcpt; i++) {
        if (c->res[i].state == HRES_QUEUED) {
            ok++;
            continue;
        }
        bad++;
        storage |= c->res[i].state == HRES_STORAGE;
        json_array_append_new(failed, json_stringn(r->rcpt[i].email, r->rcpt[i].email_len));
        char e[HTTP_WHY_BYTES_MAX + 400];
        snprintf(e, sizeof e, "recipients[%zu] (%.*s): %s", i, (int)r->rcpt[i].email_len,
                 r->rcpt[i].email, c->res[i].why);
        json_array_append_new(errors, json_string(e));
    }
    char *s = NULL;
    if (o && failed && errors) {
        json_object_set_new(o, "success_count", json_integer((json_int_t)ok));
        json_object_set_new(o, "fail_count", json_integer((json_int_t)bad));
        json_object_set(o, "failed_recipients", failed);
        json_object_set(o, "errors", errors);
        s = json_dumps(o, JSON_COMPACT);
    }
    json_decref(failed);
    json_decref(errors);
    json_decref(o);
    *status = storage ? 503 : 200;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    atomic_fetch_add(&c->h->requests, 1);
    vl_log_at(VL_LOG_TRACE, "evt=http_inject rcpts=%zu queued=%zu failed=%zu storage=%d "
              "parse_us=%llu queue_us=%llu", r->nrcpt, ok, bad, storage,
              (unsigned long long)(c->t_parsed_us - c->t_body_us),
              (unsigned long long)(now_us - c->t_parsed_us));
    return s;
}
