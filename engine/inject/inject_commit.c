/*
 * inject_commit.c - the intake's workers: check AUTH credentials (crypt(3)
 * takes milliseconds: never on the reactor), and turn a complete SMTP
 * message into a queued one. Per message: normalise (msg.h), put a Received:
 * line on top (RFC 5321 4.4), vl_queue_enqueue() (durable on return; the
 * workers' concurrent enqueues share group commits), then hand the reply
 * back to the intake thread through in->done and rx_wake: a worker never
 * touches a session's I/O state, and the reactor never waits for an fsync.
 * Invariant: a job is on exactly one of todo, a worker's hands, done.
 */
#include "inject_int.h"

#include "clock.h"
#include "dkim.h"
#include "metrics.h"
#include "log.h"
#include "msg.h"
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

static void job_run(struct inject *in, struct inj_job *j)
{
    struct inj_sess *s = j->s;
    uint64_t now = vl_clock_wall_ms();
    /* The queue id is taken first: the Received: line names it (RFC 5321 4.4,
     * PROTOCOL.md 4.3), as the 250 does; Message-ID uses it too. */
    uint64_t id = vl_queue_msg_id_new(in->q, now);
    struct msg_opts mo = { now, in->cfg->ehlo_name, id, s->from, false };
    struct msg_result m = { 0 };
    struct msg_problem prob[1];
    int rc = msg_normalise(s->body, s->body_len, &mo, &m, prob, 1);
    j->rc = rc;
    if (rc == VL_E_INVALID) {
        char t[SMTP_SERVER_TEXT_BYTES_MAX];
        snprintf(t, sizeof t, "5.6.0 Message refused: line %u: %s", prob[0].line,
                 prob[0].why ? prob[0].why : "malformed");
        job_reply(j, 550, t);
        return;
    }
    if (rc == VL_E_TOOBIG) {
        job_reply(j, 552, "5.3.4 Message too big");
        return;
    }
    if (rc < 0) {
        job_reply(j, 451, "4.3.0 Temporary failure, try again later");
        return;
    }
    if (inj_unsub_mail(in, j, m.data, m.len)) {   /* mailto unsubscribe (issue 12) */
        msg_result_fini(&m);
        return;
    }
    if ((rc = dkim_sign_msg(in->cfg->dkim_signer, &m, now / 1000)) < 0) {   /* issue 13 */
        msg_result_fini(&m);
        j->rc = rc;
        job_reply(j, 451, "4.3.0 Temporary failure, try again later");
        return;
    }
    uint8_t *full = malloc(INJ_RECEIVED_BYTES_MAX + m.len);
    const char *rc_ptrs[VL_SMTP_RCPTS_PER_TXN_MAX * 100];
    _Static_assert(VL_SMTP_RCPTS_PER_TXN_MAX * 100 >= 10000, "--max-rcpts-per-msg cap");
    if (!full) {
        msg_result_fini(&m);
        j->rc = -ENOMEM;
        job_reply(j, 451, "4.3.0 Temporary failure, try again later");
        return;
    }
    bool utf8 = has_8bit(s->from);
    for (uint32_t i = 0; i < s->rcpt_n; i++) {
        rc_ptrs[i] = s->rcpts[i];
        utf8 |= has_8bit(s->rcpts[i]);
    }
    const struct vl_intake_hook *hk = in->cfg->intake_hook;   /* issue 16: feedback loops */
    if (hk) {
        char t[SMTP_SERVER_TEXT_BYTES_MAX] = "4.3.0 Temporary failure, try again later";
        int h = hk->fn(hk->arg, s->from, rc_ptrs, s->rcpt_n, (const char *)m.data, m.len, now,
                       t, sizeof t);
        if (h != 0) {
            free(full);
            msg_result_fini(&m);
            j->rc = h > 0 ? 0 : h;
            job_reply(j, h > 0 ? 250 : h == VL_E_INVALID ? 550 : 451, t);
            return;
        }
    }
    size_t rl = 0;
    rc = -ENOMEM;
    for (unsigned t = 0; t < INJ_ID_TRIES; t++) {
        if (t > 0)
            id = vl_queue_msg_id_new(in->q, vl_clock_wall_ms());
        /* the body after the Received: line is the same on every try */
        size_t nl = received_line(in, s, id, now, (char *)full, INJ_RECEIVED_BYTES_MAX);
        if (!nl) {
            rc = -ENOMEM;
            break;
        }
        if (nl != rl)
            memcpy(full + nl, m.data, m.len);
        rl = nl;
        struct vl_queue_new_msg nm = {
            .return_path = s->from, .return_path_len = strlen(s->from),
            .body = full, .body_len = rl + m.len,
            .flags = (m.is_8bit ? VL_QUEUE_MSG_8BIT : 0u) | (utf8 ? VL_QUEUE_MSG_SMTPUTF8 : 0u),
            .rcpts = rc_ptrs, .rcpt_lens = NULL, .rcpt_count = s->rcpt_n,
        };
        rc = vl_queue_enqueue_id(in->q, &nm, now, id);
        if (rc != -EEXIST)
            break;
    }
    j->rc = rc;
    j->size = rl + m.len;
    free(full);
    msg_result_fini(&m);
    char t[SMTP_SERVER_TEXT_BYTES_MAX];
    j->id = id;
    if (rc == 0) {
        met_inject(MET_L_SMTP, s->rcpt_n);
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
        vl_log(VL_LOG_WARN, "evt=intake_commit_failed client=%s err=\"%s\"", s->peer_ip,
               vl_strerror(rc));
        job_reply(j, 452, "4.3.1 Insufficient system storage, try again later");
    }
}

static void *worker_main(void *arg)
{
    struct inject *in = arg;
    pthread_mutex_lock(&in->mu);
    for (;;) {
        while (!in->todo && !in->workers_quit)
            pthread_cond_wait(&in->cv, &in->mu);
        struct inj_job *j = in->todo;
        if (!j)
            break;
        in->todo = j->next;
        if (!in->todo)
            in->todo_tail = &in->todo;
        pthread_mutex_unlock(&in->mu);
        if (j->kind == INJ_JOB_AUTH) {
            j->auth_ok = inj_auth_check(in->auth, j->user, j->user_len, j->pass, j->pass_len);
            explicit_bzero(j->pass, sizeof j->pass);
            j->pass_len = 0;
        } else {
            job_run(in, j);
        }
        pthread_mutex_lock(&in->mu);
        j->next = in->done;
        in->done = j;
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
    pthread_mutex_lock(&in->mu);
    *in->todo_tail = j;
    in->todo_tail = &j->next;
    pthread_cond_signal(&in->cv);
    pthread_mutex_unlock(&in->mu);
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
