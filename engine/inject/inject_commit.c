/*
 * inject_commit.c - the intake's workers: check AUTH credentials (crypt(3)
 * takes milliseconds: never on the reactor), and turn a complete SMTP
 * message into a queued one. Per message: normalise (msg.h), pass it through
 * the hook chain (inject_hooks.c: unsubscribe, DKIM, feedback loops; a hook
 * may take it), put a Received: line on top (RFC 5321 4.4), vl_queue_enqueue_ids() (durable on return; a
 * worker takes every message waiting, up to INJ_BATCH_MAX, and queues them
 * together, and the workers' batches share group commits), then hand the
 * replies back to the intake thread through in->done and one rx_wake: a worker never
 * touches a session's I/O state, and the reactor never waits for an fsync.
 * Invariant: a job is on exactly one of todo, a worker's hands, done.
 */
#include "inject_int.h"

#include "clock.h"
#include "dlog_inject.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "msg_campaign.h"
#include "volley/error.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INJ_RECEIVED_BYTES_MAX 1600u   /* helo (<512) + names + rcpt path (<257) */

static void job_reply(struct inj_job *j, unsigned code, const char *text)
{
    j->reply.code = (uint16_t)code;
    snprintf(j->reply.text, sizeof j->reply.text, "%s", text);
}

/* "Received: from HELO (unknown [IP])\r\n\tby HOST (volley) with ESMTP id QUEUEID
 *  \r\n\tfor <RCPT>;\r\n\tDATE\r\n" (RFC 5321 4.4, PROTOCOL.md 4.3: no reverse
 *  lookup, so "unknown"; the queue id of the 250; "for" with one recipient
 *  only; ESMTPS after STARTTLS, ESMTPA/ESMTPSA after AUTH, RFC 3848). */
static size_t received_line(const struct inject *in, const struct inj_sess *s, uint64_t rid,
                            uint64_t now_ms, char *out, size_t cap)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[64];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char forc[VL_SMTP_PATH_BYTES_MAX + 16] = "";
    if (s->rcpt_n == 1)
        snprintf(forc, sizeof forc, "\r\n\tfor <%s>", s->rcpts[0]);
    const char *with = !s->esmtp ? "SMTP" : s->authed ? "ESMTPSA" : s->tls ? "ESMTPS" : "ESMTP";
    int n = snprintf(out, cap, "Received: from %s (unknown [%s])\r\n\tby %s (volley) with %s "
                     "id %016llx%s;\r\n\t%s\r\n", s->helo[0] ? s->helo : "unknown", s->peer_ip,
                     in->cfg->ehlo_name, with, (unsigned long long)rid, forc, date);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static bool has_8bit(const char *p)
{
    for (; *p; p++)
        if ((unsigned char)*p > 127)
            return true;
    return false;
}

#define INJ_ID_TRIES 4u   /* queue ids taken when the queue says the id exists */

/* One message of a worker's batch between normalising and its reply. */
struct inj_prep {
    struct msg_result m;            /* the normalised message */
    uint8_t *full;                  /* Received: line + m.data: what is queued */
    size_t rl;                      /* the Received: line's length in full */
    const char **rcpts;             /* pointers into the session's recipients */
    struct vl_queue_new_msg nm;
    struct vl_dlog_injected ev;     /* with events on: its "injected" events (issue 16) */
};

static void prep_fini(struct inj_prep *p)
{
    free(p->full);
    free(p->rcpts);
    vl_dlog_injected_fini(&p->ev);
    msg_result_fini(&p->m);
    p->full = NULL;
    p->rcpts = NULL;
}

/* With events on (--events-*): the "injected" event of each recipient of
 * @p p under @p j's id, queued with it (vl_queue_enqueue_ids). @return 0 or
 * -ENOMEM. */
static int prep_events(struct inject *in, const struct inj_job *j, uint64_t now,
                       struct inj_prep *p)
{
    vl_dlog_injected_fini(&p->ev);
    if (!in->cfg->events_on)
        return 0;
    char camp[MSG_CAMPAIGN_ID_MAX + 1];
    msg_campaign_find(p->m.data, p->m.len, camp);
    struct vl_dlog_event proto = { .ts_ms = (int64_t)now, .msg_id = j->id, .campaign = camp,
                                   .from = j->s->from, .source = "smtp",
                                   .client = j->s->peer_ip };
    return vl_dlog_injected_build(&p->ev, &proto, p->rcpts, NULL, j->s->rcpt_n);
}

/* Normalise @p j's message, take its queue id and put the Received: line on
 * top. @return true when p->nm is ready to queue; else j's reply is set. */
static bool job_prepare(struct inject *in, struct inj_job *j, uint64_t now, struct inj_prep *p)
{
    struct inj_sess *s = j->s;
    *p = (struct inj_prep){ .m = { 0 } };
    /* The queue id is taken first: the Received: line names it (RFC 5321 4.4,
     * PROTOCOL.md 4.3), as the 250 does; Message-ID uses it too. */
    j->id = vl_queue_msg_id_new(in->q, now);
    struct msg_opts mo = { now, in->cfg->ehlo_name, j->id, s->from, false };
    struct msg_problem prob[1];
    int rc = msg_normalise(s->body, s->body_len, &mo, &p->m, prob, 1);
    j->rc = rc;
    if (rc == VL_E_INVALID) {
        char t[SMTP_SERVER_TEXT_BYTES_MAX];
        snprintf(t, sizeof t, "5.6.0 Message refused: line %u: %s", prob[0].line,
                 prob[0].why ? prob[0].why : "malformed");
        job_reply(j, 550, t);
        return false;
    }
    if (rc == VL_E_TOOBIG) {
        job_reply(j, 552, "5.3.4 Message too big");
        return false;
    }
    if (rc >= 0) {
        p->rcpts = malloc((s->rcpt_n ? s->rcpt_n : 1) * sizeof *p->rcpts);
        rc = p->rcpts ? 0 : -ENOMEM;
    }
    bool utf8 = has_8bit(s->from);
    for (uint32_t i = 0; rc >= 0 && i < s->rcpt_n; i++) {
        p->rcpts[i] = s->rcpts[i];
        utf8 |= has_8bit(s->rcpts[i]);
    }
    if (rc >= 0) {          /* the hook chain: unsub, DKIM, feedback loops (inject_hooks.c) */
        struct vl_intake_msg im = { .from = s->from, .rcpts = p->rcpts, .rcpt_n = s->rcpt_n,
                                    .m = &p->m, .now_ms = now, .client = s->peer_ip };
        char t[SMTP_SERVER_TEXT_BYTES_MAX];
        int h = inj_hooks_run(in, &im, t, sizeof t);
        if (h != VL_INTAKE_PASS) {
            prep_fini(p);
            j->rc = h;                   /* taken (1) or failed (< 0): not queued */
            job_reply(j, h > 0 ? 250 : h == VL_E_INVALID ? 550 : 451, t);
            return false;
        }
    }
    size_t nl = 0;
    if (rc >= 0) {
        p->full = malloc(INJ_RECEIVED_BYTES_MAX + p->m.len);
        if (p->full && prep_events(in, j, now, p) == 0)
            nl = received_line(in, s, j->id, now, (char *)p->full, INJ_RECEIVED_BYTES_MAX);
    }
    if (!nl) {
        prep_fini(p);
        j->rc = rc < 0 ? rc : -ENOMEM;
        job_reply(j, 451, "4.3.0 Temporary failure, try again later");
        return false;
    }
    memcpy(p->full + nl, p->m.data, p->m.len);
    p->rl = nl;
    p->nm = (struct vl_queue_new_msg){
        .return_path = s->from, .return_path_len = strlen(s->from),
        .body = p->full, .body_len = nl + p->m.len,
        .flags = (p->m.is_8bit ? VL_QUEUE_MSG_8BIT : 0u) | (utf8 ? VL_QUEUE_MSG_SMTPUTF8 : 0u),
        .rcpts = p->rcpts, .rcpt_lens = NULL, .rcpt_count = s->rcpt_n,
    };
    return true;
}

/* The id was taken (another process, same millisecond and salt): queue @p j
 * alone under new ids, the Received: line (and the events) naming each.
 * @return as vl_queue_enqueue_id(). */
static int job_retry(struct inject *in, struct inj_job *j, uint64_t now, struct inj_prep *p)
{
    int rc = -EEXIST;
    for (unsigned t = 1; t < INJ_ID_TRIES && rc == -EEXIST; t++) {
        j->id = vl_queue_msg_id_new(in->q, vl_clock_wall_ms());
        size_t nl = received_line(in, j->s, j->id, now, (char *)p->full, INJ_RECEIVED_BYTES_MAX);
        if (!nl)
            return -ENOMEM;
        if (nl != p->rl)             /* the body after the Received: line stays the same */
            memcpy(p->full + nl, p->m.data, p->m.len);
        p->rl = nl;
        p->nm.body_len = nl + p->m.len;
        if (prep_events(in, j, now, p) < 0)              /* they name the id */
            return -ENOMEM;
        struct vl_queue_rcpt_events ev = { p->ev.json, p->ev.lens };
        (void)vl_queue_enqueue_ids(in->q, &p->nm, &ev, 1, now, &j->id, &rc);
    }
    return rc;
}

/* @p j's reply from the queue's answer @p rc; frees @p p. */
static void job_finish(struct inject *in, struct inj_job *j, int rc, uint64_t now,
                       struct inj_prep *p)
{
    j->rc = rc;
    j->size = p->nm.body_len;
    prep_fini(p);
    char t[SMTP_SERVER_TEXT_BYTES_MAX];
    if (rc == 0) {
        met_inject(MET_L_SMTP, j->s->rcpt_n);
        snprintf(t, sizeof t, "2.0.0 Ok: queued as %016llx", (unsigned long long)j->id);
        job_reply(j, 250, t);
    } else if (rc == VL_E_INVALID) {
        job_reply(j, 550, "5.1.3 Bad address");
    } else if (rc == VL_E_TOOBIG) {
        job_reply(j, 552, "5.3.4 Message too big");
    } else if (rc == -ENOMEM) {
        job_reply(j, 451, "4.3.0 Temporary failure, try again later");
    } else {
        atomic_store(&in->storage_fail_ms, now);
        vl_log(VL_LOG_WARN, "evt=intake_commit_failed client=%s err=\"%s\"", j->s->peer_ip,
               vl_strerror(rc));
        job_reply(j, 452, "4.3.1 Insufficient system storage, try again later");
    }
}

/* Queue the messages of @p n commit jobs together: each is its own write
 * (it succeeds or fails alone) but all are handed to the shards' group
 * commits at once (vl_queue_enqueue_ids), so one worker's batch shares the
 * fsyncs, with no thread blocked per message. */
static void batch_run(struct inject *in, struct inj_job **jobs, size_t n, struct inj_prep *prep)
{
    struct vl_queue_new_msg nm[INJ_BATCH_MAX];
    struct vl_queue_rcpt_events ev[INJ_BATCH_MAX];
    uint64_t ids[INJ_BATCH_MAX];
    int rcs[INJ_BATCH_MAX];
    size_t at[INJ_BATCH_MAX], k = 0;
    uint64_t now = vl_clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        if (!job_prepare(in, jobs[i], now, &prep[i]))
            continue;
        nm[k] = prep[i].nm;
        ev[k] = (struct vl_queue_rcpt_events){ prep[i].ev.json, prep[i].ev.lens };
        ids[k] = jobs[i]->id;
        at[k++] = i;
    }
    if (k)
        (void)vl_queue_enqueue_ids(in->q, nm, ev, k, now, ids, rcs);
    for (size_t x = 0; x < k; x++) {
        size_t i = at[x];
        int rc = rcs[x] == -EEXIST ? job_retry(in, jobs[i], now, &prep[i]) : rcs[x];
        job_finish(in, jobs[i], rc, now, &prep[i]);
    }
}

static void *worker_main(void *arg)
{
    struct inject *in = arg;
    struct inj_job *batch[INJ_BATCH_MAX];
    struct inj_prep prep[INJ_BATCH_MAX];
    pthread_mutex_lock(&in->mu);
    for (;;) {
        while (!in->todo && !in->workers_quit)
            pthread_cond_wait(&in->cv, &in->mu);
        if (!in->todo)
            break;
        /* an AUTH job alone (crypt takes milliseconds); else every commit
         * job waiting, up to INJ_BATCH_MAX, in arrival order */
        size_t n = 0;
        bool auth = in->todo->kind == INJ_JOB_AUTH;
        do {
            batch[n++] = in->todo;
            in->todo = in->todo->next;
        } while (!auth && n < INJ_BATCH_MAX && in->todo && in->todo->kind == INJ_JOB_COMMIT);
        if (!in->todo)
            in->todo_tail = &in->todo;
        pthread_mutex_unlock(&in->mu);
        if (auth) {
            struct inj_job *j = batch[0];
            j->auth_ok = inj_auth_check(in->auth, j->user, j->user_len, j->pass, j->pass_len);
            explicit_bzero(j->pass, sizeof j->pass);
            j->pass_len = 0;
        } else {
            batch_run(in, batch, n, prep);
        }
        pthread_mutex_lock(&in->mu);
        for (size_t i = 0; i < n; i++) {
            batch[i]->next = in->done;
            in->done = batch[i];
        }
        pthread_mutex_unlock(&in->mu);
        rx_wake(in->rx);
        pthread_mutex_lock(&in->mu);
    }
    pthread_mutex_unlock(&in->mu);
    return NULL;
}

int inj_commit_init(struct inject *in)
{
    in->todo = NULL;
    in->todo_tail = &in->todo;
    in->sub = NULL;
    in->sub_tail = &in->sub;
    in->sub_n = 0;
    for (unsigned i = 0; i < INJ_WORKERS; i++) {
        int rc = pthread_create(&in->workers[i], NULL, worker_main, in);
        if (rc != 0)
            return -rc;
        in->workers_n++;
    }
    return 0;
}

void inj_commit_fini(struct inject *in)
{
    pthread_mutex_lock(&in->mu);
    in->workers_quit = true;
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
    for (unsigned i = 0; i < in->workers_n; i++)
        pthread_join(in->workers[i], NULL);
    in->workers_n = 0;
}

static void job_queue(struct inject *in, struct inj_job *j)
{
    j->next = NULL;
    *in->sub_tail = j;
    in->sub_tail = &j->next;
    in->sub_n++;
}

void inj_commit_kick(struct inject *in)
{
    if (!in->sub)
        return;
    unsigned wake = (in->sub_n + INJ_BATCH_MAX - 1) / INJ_BATCH_MAX;
    pthread_mutex_lock(&in->mu);
    *in->todo_tail = in->sub;
    in->todo_tail = in->sub_tail;
    for (unsigned i = 0; i < wake && i < in->workers_n; i++)
        pthread_cond_signal(&in->cv);
    pthread_mutex_unlock(&in->mu);
    in->sub = NULL;
    in->sub_tail = &in->sub;
    in->sub_n = 0;
}

void inj_commit_submit(struct inject *in, struct inj_sess *s)
{
    struct inj_job *j = &s->job;
    memset(j, 0, offsetof(struct inj_job, user));
    j->s = s;
    j->kind = INJ_JOB_COMMIT;
    job_queue(in, j);
}

void inj_auth_submit(struct inject *in, struct inj_sess *s)
{
    struct inj_job *j = &s->job;
    j->next = NULL;
    j->s = s;
    j->kind = INJ_JOB_AUTH;
    j->auth_ok = false;
    job_queue(in, j);
}

struct inj_job *inj_commit_take_done(struct inject *in)
{
    pthread_mutex_lock(&in->mu);
    struct inj_job *j = in->done;
    in->done = NULL;
    pthread_mutex_unlock(&in->mu);
    return j;
}
