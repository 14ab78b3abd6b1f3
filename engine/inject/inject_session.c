/*
 * inject_session.c - one SMTP client of the intake: read -> step the server
 * machine until it needs input -> answer each command with the intake's
 * policy (relay at RCPT, storage at MAIL, limits) -> write the pending
 * replies in one send (pipelined commands get one batch) -> read again.
 * At the final dot the message goes to a commit worker; the session sleeps
 * (no reads, no steps) until inj_sess_job_done() answers it.
 *
 * Invariants: at most one of reading, sending, yielded, job_busy is true; a
 * transaction's recipients and body are kept only between its accepted MAIL
 * and its dot or BDAT LAST (a client that vanishes before leaves nothing
 * queued). Every accepted MAIL starts them afresh, so a transaction the server
 * machine ended (a refused BDAT chunk) can never reach a commit: only a DOT
 * event of the server's open transaction does.
 */
#include "inject_int.h"
#include "suppress.h"

#include "clock.h"
#include "log.h"
#include "tls_stream.h"
#include "ip_class.h"
#include "volley/addr.h"
#include "volley/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void sess_pump(struct inj_sess *s);
static void sess_close(struct inj_sess *s);
static bool sess_answer(struct inj_sess *s, const struct smtp_server_event *ev);

static void sess_reply(struct smtp_server_reply *r, unsigned code, const char *text)
{
    r->code = (uint16_t)code;
    snprintf(r->text, sizeof r->text, "%s", text);
}

static void txn_reset(struct inj_sess *s)
{
    s->from[0] = 0;
    s->rcpt_n = 0;
    s->body_len = 0;
    s->mem_refused = false;
}

/* Give a large body buffer back (the memory bound counts buffers, not use). */
static void body_shrink(struct inj_sess *s, bool all)
{
    if (s->body_cap == 0 || (!all && s->body_cap <= INJ_BODY_KEEP))
        return;
    s->in->mem_used -= s->body_cap;
    free(s->body);
    s->body = NULL;
    s->body_cap = s->body_len = 0;
}

/* Would another message's first buffer pass --intake-mem-max? */
static bool mem_full(const struct inj_sess *s)
{
    return s->body_cap == 0 && s->in->mem_used + INJ_BODY_FIRST > s->in->mem_max;
}

#define INJ_MEM_FULL_TEXT "4.3.1 Intake memory full (--intake-mem-max), try again later"

static void sess_flush(struct inj_sess *s)
{
    const char *p = s->out;
    uint32_t n = s->out_len;
    if (s->tls) {                   /* seal the replies: out[] is free again */
        int w = tls_stream_output(s->tls, s->out, s->out_len, s->close_after_send);
        if (w < 0) {
            sess_close(s);
            return;
        }
        s->out_len = 0;
        p = s->tls->out;
        n = (uint32_t)w;
    }
    if (n == 0) {
        if (s->close_after_send)
            sess_close(s);
        return;
    }
    if (rx_send(s->in->rx, s->h, p, n, INJ_SEND_TIMEOUT_MS) < 0) {
        sess_close(s);
        return;
    }
    s->sending = true;
}

/* Queue a raw reply line (421 on limits and deadlines) and close after it. */
static void sess_bye(struct inj_sess *s, const char *line)
{
    size_t n = strlen(line);
    if (s->out_len + n <= INJ_OUT_BYTES) {
        memcpy(s->out + s->out_len, line, n);
        s->out_len += (uint32_t)n;
    }
    s->close_after_send = true;
    if (!s->sending)
        sess_flush(s);
}

static void path_copy(char *dst, const char *arg, size_t len)
{
    if (len > VL_SMTP_PATH_BYTES_MAX)
        len = VL_SMTP_PATH_BYTES_MAX;
    memcpy(dst, arg ? arg : "", arg ? len : 0);
    dst[arg ? len : 0] = 0;
}

static bool storage_paused(const struct inject *in)
{
    uint64_t f = atomic_load(&in->storage_fail_ms);
    return f && vl_clock_wall_ms() - f < INJ_STORAGE_PAUSE_MS;
}

/* The intake's policy on a proposed 2xx/3xx answer to a command. */
static void sess_policy(struct inj_sess *s, const struct smtp_server_event *ev)
{
    struct smtp_server_reply *r = &s->pend;
    const char *why = NULL;
    struct vl_addr a;
    char sup_text[200];            /* a reason and a domain: fits a reply line */
    switch (ev->cmd) {
    case SMTP_SCMD_BANNER:
        if (s->over_limit)
            sess_reply(r, 421, "4.7.0 Too many connections from your address");
        break;
    case SMTP_SCMD_MAIL:
        if (storage_paused(s->in))
            sess_reply(r, 452, "4.3.1 Insufficient system storage, try again later");
        else if (ev->arg_len && vl_addr_parse(ev->arg, ev->arg_len, &a, &why) != 0)
            sess_reply(r, 553, "5.1.7 Bad sender address syntax");
        break;
    case SMTP_SCMD_DATA:
        if (mem_full(s))
            sess_reply(r, 452, INJ_MEM_FULL_TEXT);
        break;
    case SMTP_SCMD_BDAT:            /* a chunk (not LAST) already read: keep it or not */
        if (s->mem_refused)
            sess_reply(r, 452, INJ_MEM_FULL_TEXT);
        break;
    case SMTP_SCMD_RCPT:
        if (!s->relay_ok && !s->authed)
            sess_reply(r, 554, "5.7.1 Relay access denied");
        else if (!ev->arg || vl_addr_parse(ev->arg, ev->arg_len, &a, &why) != 0)
            sess_reply(r, 553, "5.1.3 Bad recipient address syntax");
        else if (inj_suppressed(s->in, s->from, ev->arg, ev->arg_len, sup_text,
                                sizeof sup_text))
            sess_reply(r, 550, sup_text);
        break;
    default:
        break;
    }
}

/* The delay before a 535 to @p ip: INJ_AUTH_DELAY_MS_BASE doubled for each
 * failure the address had in the last INJ_AUTH_FAIL_FORGET_MS, capped at
 * INJ_AUTH_DELAY_MS_MAX (a password guesser gets a few tries a minute per
 * address and connection; --max-conns-per-ip bounds the connections). */
static uint64_t auth_fail_delay(struct inject *in, const char *ip)
{
    uint64_t now = vl_clock_mono_ms();
    struct inj_auth_fail *slot = NULL, *oldest = &in->auth_fail[0];
    for (unsigned i = 0; i < INJ_AUTH_FAIL_SLOTS; i++) {
        struct inj_auth_fail *f = &in->auth_fail[i];
        if (f->fails && !strcmp(f->ip, ip)) {
            slot = f;
            break;
        }
        if (!f->fails || f->last_ms < oldest->last_ms || (oldest->fails && !f->fails))
            oldest = f;
    }
    if (!slot) {
        slot = oldest;
        memset(slot, 0, sizeof *slot);
        snprintf(slot->ip, sizeof slot->ip, "%s", ip);
    } else if (now - slot->last_ms > INJ_AUTH_FAIL_FORGET_MS) {
        slot->fails = 0;
    }
    slot->fails++;
    slot->last_ms = now;
    uint32_t shift = slot->fails - 1 < 8 ? slot->fails - 1 : 8;
    uint64_t ms = (uint64_t)INJ_AUTH_DELAY_MS_BASE << shift;
    return ms < INJ_AUTH_DELAY_MS_MAX ? ms : INJ_AUTH_DELAY_MS_MAX;
}

/* The answer in s->pend goes out now, or after the send in progress. */
static void sess_answer_later(struct inj_sess *s)
{
    if (s->sending) {
        s->dot_ready = true;        /* RX_OP_SEND answers it */
        return;
    }
    if (sess_answer(s, NULL))
        sess_pump(s);
}

static void auth_delay_done(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct inj_sess *s = ev->user;
    s->yielded = false;
    s->bad_cmds++;                  /* a 5xx, as sess_account() counts them */
    sess_answer_later(s);
}

/* A failed AUTH: s->pend = 535 5.7.8, sent after the client address's delay;
 * the session sleeps meanwhile (s->yielded: a close cancels the timer).
 * @return false if no timer could be had: the caller answers at once. */
static bool auth_failed(struct inj_sess *s)
{
    s->auth_step = INJ_AUTH_NONE;
    vl_log_at(VL_LOG_INFO, "evt=auth_failed client=%s", s->peer_ip);
    sess_reply(&s->pend, 535, "5.7.8 Authentication credentials invalid");
    uint64_t ms = auth_fail_delay(s->in, s->peer_ip);
    if (rx_timer_add(s->in->rx, ms, auth_delay_done, s, &s->timer) != 0)
        return false;
    s->yielded = true;
    return true;
}

/* Check decoded credentials on a worker (crypt(3) never runs on the reactor);
 * inj_sess_job_done() answers. Malformed ones fail here. */
static void auth_verdict(struct inj_sess *s, const char *user, size_t ulen, const char *pass,
                         size_t plen)
{
    s->auth_step = INJ_AUTH_NONE;
    if (ulen == 0 || ulen > INJ_AUTH_FIELD_MAX || memchr(user, 0, ulen)
        || plen > INJ_AUTH_FIELD_MAX || memchr(pass, 0, plen)) {
        (void)auth_failed(s);       /* sess_pump() answers after the delay, or now */
        return;
    }
    struct inj_job *j = &s->job;
    memcpy(j->user, user, ulen);
    j->user[ulen] = 0;
    j->user_len = (uint16_t)ulen;
    memcpy(j->pass, pass, plen);
    j->pass[plen] = 0;
    j->pass_len = (uint16_t)plen;
    s->job_busy = true;
    inj_auth_submit(s->in, s);
    if (s->out_len)                 /* replies queued before the AUTH go out meanwhile */
        sess_flush(s);
}

/* The worker's verdict on the credentials (intake thread). */
static void auth_done(struct inj_sess *s)
{
    struct inj_job *j = &s->job;
    if (!j->auth_ok) {
        if (!auth_failed(s)) {
            s->bad_cmds++;
            sess_answer_later(s);
        }
        return;
    }
    memcpy(s->auth_user, j->user, (size_t)j->user_len + 1);
    s->authed = true;
    sess_reply(&s->pend, 235, "2.7.0 Authentication successful");
    sess_answer_later(s);
}

/* PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd; authzid empty or = authcid. */
static void auth_plain(struct inj_sess *s, const char *b64, size_t n)
{
    uint8_t buf[3 * INJ_AUTH_FIELD_MAX + 8];
    int len = inj_b64_decode(b64, n, buf, sizeof buf);
    const uint8_t *z1 = len > 0 ? memchr(buf, 0, (size_t)len) : NULL;
    const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, (size_t)(buf + len - z1 - 1)) : NULL;
    if (!z2) {
        s->auth_step = INJ_AUTH_NONE;
        sess_reply(&s->pend, 501, "5.5.2 Cannot decode the PLAIN response");
        return;
    }
    const char *authz = (const char *)buf, *user = (const char *)z1 + 1;
    size_t zlen = (size_t)(z1 - buf), ulen = (size_t)(z2 - z1 - 1);
    if (zlen && (zlen != ulen || memcmp(authz, user, ulen))) {
        s->auth_step = INJ_AUTH_NONE;
        sess_reply(&s->pend, 535, "5.7.8 Authorization identity not allowed");
        return;
    }
    auth_verdict(s, user, ulen, (const char *)z2 + 1, (size_t)(buf + len - z2 - 1));
}

/* The AUTH exchange (PLAIN, LOGIN); the machine refused what is out of order. */
static void sess_auth(struct inj_sess *s, const struct smtp_server_event *ev)
{
    struct smtp_server_reply *r = &s->pend;
    const char *a = ev->arg;
    size_t n = ev->arg_len;
    if (ev->auth_response) {
        uint8_t user[INJ_AUTH_FIELD_MAX + 1];
        int ul;
        switch (s->auth_step) {
        case INJ_AUTH_PLAIN_WAIT:
            auth_plain(s, a, n);
            return;
        case INJ_AUTH_LOGIN_USER:
            ul = inj_b64_decode(a, n, user, INJ_AUTH_FIELD_MAX);
            if (ul <= 0) {
                s->auth_step = INJ_AUTH_NONE;
                sess_reply(r, 501, "5.5.2 Cannot decode the user name");
                return;
            }
            memcpy(s->auth_user, user, (size_t)ul);
            s->auth_user[ul] = 0;
            s->auth_step = INJ_AUTH_LOGIN_PASS;
            sess_reply(r, 334, "UGFzc3dvcmQ6");              /* "Password:" */
            return;
        case INJ_AUTH_LOGIN_PASS: {
            uint8_t pass[INJ_AUTH_FIELD_MAX + 1];
            int pl = inj_b64_decode(a, n, pass, INJ_AUTH_FIELD_MAX);
            if (pl < 0) {
                s->auth_step = INJ_AUTH_NONE;
                sess_reply(r, 501, "5.5.2 Cannot decode the password");
                return;
            }
            char u[INJ_AUTH_FIELD_MAX + 1];
            memcpy(u, s->auth_user, sizeof u);
            s->auth_user[0] = 0;
            auth_verdict(s, u, strlen(u), (const char *)pass, (size_t)pl);
            memset(pass, 0, sizeof pass);
            return;
        }
        default:
            vl_panic("inject: AUTH response in step %d", (int)s->auth_step);
        }
    }
    const char *sp = memchr(a, ' ', n);
    size_t ml = sp ? (size_t)(sp - a) : n;
    const char *ir = sp ? sp + 1 : NULL;
    size_t irl = sp ? n - ml - 1 : 0;
    bool ir_empty = ir && irl == 1 && ir[0] == '=';   /* RFC 4954 4: "=" is empty */
    if (ml == 5 && !strncasecmp(a, "PLAIN", 5)) {
        s->auth_step = INJ_AUTH_PLAIN_WAIT;
        if (ir && !ir_empty)
            auth_plain(s, ir, irl);
        else
            sess_reply(r, 334, "");
    } else if (ml == 5 && !strncasecmp(a, "LOGIN", 5)) {
        s->auth_step = INJ_AUTH_LOGIN_USER;
        sess_reply(r, 334, "VXNlcm5hbWU6");                  /* "Username:" */
        if (ir && !ir_empty) {
            struct smtp_server_event e = *ev;
            e.auth_response = true;
            e.arg = ir;
            e.arg_len = irl;
            sess_auth(s, &e);                                 /* the user name, at once */
        }
    } else {
        sess_reply(r, 504, "5.5.4 Unrecognized authentication type");
    }
}

/* The effects of an answer (the server moved iff 2xx/3xx). */
static void sess_account(struct inj_sess *s, const struct smtp_server_event *ev)
{
    bool ok = s->pend.code >= 200 && s->pend.code < 400;
    switch (ev->cmd) {
    case SMTP_SCMD_EHLO:
    case SMTP_SCMD_HELO:
        if (ok) {
            size_t n = ev->arg_len < sizeof s->helo - 1 ? ev->arg_len : sizeof s->helo - 1;
            memcpy(s->helo, ev->arg ? ev->arg : "", ev->arg ? n : 0);
            s->helo[ev->arg ? n : 0] = 0;
            s->esmtp = ev->cmd == SMTP_SCMD_EHLO;
            txn_reset(s);
        }
        break;
    case SMTP_SCMD_MAIL:
        if (ok) {
            txn_reset(s);
            path_copy(s->from, ev->arg, ev->arg_len);
        }
        break;
    case SMTP_SCMD_RCPT:
        if (ok && s->rcpt_n < s->in->cfg->rcpts_per_msg_max)
            path_copy(s->rcpts[s->rcpt_n++], ev->arg, ev->arg_len);
        break;
    case SMTP_SCMD_RSET:
        if (ok)
            txn_reset(s);
        break;
    default:
        break;
    }
    if (s->pend.code >= 500 && ev->cmd != SMTP_SCMD_BANNER)
        s->bad_cmds++;
}

/* Answer the pending event with s->pend. @return true to keep stepping. */
static bool sess_answer(struct inj_sess *s, const struct smtp_server_event *ev)
{
    enum smtp_server_after after;
    vl_assert(s->out_len + INJ_ANSWER_ROOM <= INJ_OUT_BYTES);
    size_t n = smtp_server_answer(&s->srv, &s->pend, s->out + s->out_len,
                                  INJ_OUT_BYTES - s->out_len, &after);
    vl_assert(n <= INJ_OUT_BYTES - s->out_len);
    s->out_len += (uint32_t)n;
    if (ev)
        sess_account(s, ev);
    if (after == SMTP_SERVER_AFTER_STARTTLS && s->pend.code == 220 && s->in->tls_ctx &&
        !s->tls) {
        s->tls_start = true;        /* the handshake starts once the 220 is sent */
        sess_flush(s);
        return false;
    }
    if (after != SMTP_SERVER_AFTER_CONTINUE || s->pend.code == 421) {
        s->close_after_send = true;
        sess_flush(s);
        return false;
    }
    if (s->bad_cmds >= INJ_BAD_CMDS_MAX) {
        sess_bye(s, "421 4.7.0 Too many errors, closing connection\r\n");
        return false;
    }
    return true;
}

/* DATA content: keep it (the server stops BODY events past SIZE). A buffer
 * that would take the sessions' total past --intake-mem-max is not grown:
 * the rest of the message is read and dropped, and its end gets 452 4.3.1. */
static bool sess_body(struct inj_sess *s, const struct smtp_server_event *ev)
{
    if (s->mem_refused)
        return true;
    if (s->body_len + ev->body_len > s->body_cap) {
        size_t cap = s->body_cap ? s->body_cap : INJ_BODY_FIRST;
        while (cap < s->body_len + ev->body_len)
            cap *= 2;
        struct inject *in = s->in;
        if (in->mem_used - s->body_cap + cap > in->mem_max) {
            s->mem_refused = true;
            vl_log(VL_LOG_WARN, "evt=intake_mem_full client=%s buffered=%llu max=%llu",
                   s->peer_ip, (unsigned long long)in->mem_used,
                   (unsigned long long)in->mem_max);
            return true;
        }
        uint8_t *b = realloc(s->body, cap);
        if (!b) {
            sess_bye(s, "421 4.3.0 Out of memory, closing connection\r\n");
            return false;
        }
        in->mem_used += cap - s->body_cap;
        s->body = b;
        s->body_cap = cap;
    }
    memcpy(s->body + s->body_len, ev->body, ev->body_len);
    s->body_len += ev->body_len;
    return true;
}

/* The end of data: a refused message is answered now; a good one goes to a
 * commit worker and the session sleeps until inj_sess_job_done(). */
static bool sess_dot(struct inj_sess *s, const struct smtp_server_event *ev)
{
    s->pend = ev->reply;
    s->pend_cmd = SMTP_SCMD_DOT;
    if (ev->reply.code < 300 && s->mem_refused)
        sess_reply(&s->pend, 452, INJ_MEM_FULL_TEXT);
    if (s->pend.code >= 300 || s->rcpt_n == 0) {
        bool go = sess_answer(s, ev);
        txn_reset(s);
        body_shrink(s, false);
        return go;
    }
    s->job_busy = true;
    inj_commit_submit(s->in, s);
    if (s->out_len)                 /* replies queued before the dot go out meanwhile */
        sess_flush(s);
    return false;
}

/* Back to the pool: after RX_OP_CLOSE and once no worker holds the job. */
static void sess_release(struct inj_sess *s)
{
    struct inject *in = s->in;
    tls_stream_destroy(s->tls);
    s->tls = NULL;
    free(s->rcpts);
    s->rcpts = NULL;
    body_shrink(s, true);
    s->used = false;
    in->free_idx[in->free_n++] = (uint32_t)(s - in->sess);
}

void inj_sess_job_done(struct inj_sess *s)
{
    s->job_busy = false;
    if (s->job.kind == INJ_JOB_AUTH) {
        if (s->closed)
            sess_release(s);
        else if (!s->closing)
            auth_done(s);
        return;
    }
    if (s->job.rc == 0)
        s->in->accepted++;
    else
        s->in->refused++;
    if (s->job.rc == 0)
        vl_log_at(VL_LOG_INFO,
                  "evt=received id=%016llx from=<%s> rcpts=%u size=%llu client=%s%s%s",
                  (unsigned long long)s->job.id, s->from, s->rcpt_n,
                  (unsigned long long)s->job.size, s->peer_ip, s->authed ? " auth=" : "",
                  s->authed ? s->auth_user : "");
    txn_reset(s);
    body_shrink(s, false);
    if (s->closed) {                /* the client left meanwhile: free the slot now */
        sess_release(s);
        return;
    }
    if (s->closing)
        return;
    s->pend = s->job.reply;
    if (s->sending) {               /* answered once the earlier replies are out */
        s->dot_ready = true;
        return;
    }
    if (sess_answer(s, NULL))
        sess_pump(s);
}

/* TLS: decrypt what is buffered into in_buf. @return 1 plaintext added, 0
 * read ciphertext from the peer, -1 handled here (sending or closed). */
static int sess_tls_input(struct inj_sess *s)
{
    bool done_now;
    int n = tls_stream_input(s->tls, s->in_buf + s->in_len, INJ_IN_BYTES - s->in_len,
                             &done_now);
    if (done_now) {
        smtp_server_tls_started(&s->srv);     /* RFC 3207 4.2: forget the EHLO */
        s->helo[0] = 0;
        s->authed = false;
        s->auth_step = INJ_AUTH_NONE;
    }
    if (n < 0) {
        sess_close(s);
        return -1;
    }
    s->in_len += (uint32_t)n;
    if (n > 0 || done_now)
        return 1;                              /* step: input, or the implicit greeting */
    if (tls_stream_pending(s->tls) > 0) {    /* handshake flight or tickets */
        sess_flush(s);
        return -1;
    }
    return 0;
}

/* All input consumed: send what is queued, or read more.
 * @return true if more input is in in_buf now (TLS): step the server again. */
static bool sess_need_input(struct inj_sess *s)
{
    if (s->out_len > 0) {
        sess_flush(s);
        return false;
    }
    if (s->in_off > 0) {
        memmove(s->in_buf, s->in_buf + s->in_off, s->in_len - s->in_off);
        s->in_len -= s->in_off;
        s->in_off = 0;
    }
    char *buf = s->in_buf + s->in_len;
    size_t cap = INJ_IN_BYTES - s->in_len;
    if (s->tls && cap > 0) {
        int r = sess_tls_input(s);
        if (r != 0)
            return r > 0;
        buf = s->tls->in;
        cap = sizeof s->tls->in;
    }
    /* RFC 5321 4.5.3.2: one deadline for a command line, another for each
     * block of message content (--intake-cmd-timeout, --intake-data-timeout). */
    uint64_t ms = smtp_server_in_data(&s->srv) ? s->in->data_ms : s->in->cmd_ms;
    if (cap == 0 || rx_recv(s->in->rx, s->h, buf, cap, (int)ms) < 0) {
        sess_close(s);
        return false;
    }
    s->reading = true;
    return false;
}

static void sess_resume(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct inj_sess *s = ev->user;
    s->yielded = false;
    sess_pump(s);
}

static void sess_pump(struct inj_sess *s)
{
    for (uint32_t k = 0; k < INJ_PUMP_STEPS_MAX; k++) {
        if (s->closing || s->sending || s->yielded || s->reading || s->job_busy)
            return;
        if (s->tls && !tls_conn_established(s->tls->conn)) {   /* implicit TLS */
            if (!sess_need_input(s))
                return;
            continue;
        }
        if (s->out_len + INJ_ANSWER_ROOM > INJ_OUT_BYTES) {
            sess_flush(s);
            return;
        }
        struct smtp_server_event ev;
        size_t used = 0;
        smtp_server_step(&s->srv, s->in_buf + s->in_off, s->in_len - s->in_off, &used, &ev);
        vl_assert(used <= s->in_len - s->in_off);
        s->in_off += (uint32_t)used;
        switch (ev.type) {
        case SMTP_SEV_NEED_INPUT:
            if (!sess_need_input(s))
                return;
            break;
        case SMTP_SEV_BODY:
            if (!sess_body(s, &ev))
                return;
            break;
        case SMTP_SEV_COMMAND:
            s->pend = ev.reply;
            s->pend_cmd = ev.cmd;
            if (ev.reply.code < 400)
                sess_policy(s, &ev);
            else if (ev.cmd == SMTP_SCMD_AUTH && ev.reply.code == 535)
                sess_auth(s, &ev);          /* a valid exchange: we decide */
            else if (ev.cmd == SMTP_SCMD_AUTH)
                s->auth_step = INJ_AUTH_NONE;   /* refused or cancelled ("*") */
            if (s->job_busy || s->yielded)  /* AUTH: a worker checks, or a 535's delay */
                return;
            if (!sess_answer(s, &ev))
                return;
            break;
        case SMTP_SEV_DOT:
            if (!sess_dot(s, &ev))
                return;
            break;
        default:
            vl_panic("bad server event %d", (int)ev.type);
        }
    }
    if (rx_timer_add(s->in->rx, 0, sess_resume, s, &s->timer) == 0)
        s->yielded = true;
    else
        sess_close(s);
}

static void sess_close(struct inj_sess *s)
{
    if (s->closing)
        return;
    s->closing = true;
    if (s->yielded)
        rx_timer_cancel(s->in->rx, s->timer);
    if (rx_close(s->in->rx, s->h) < 0)
        vl_panic("inject: close of a live connection failed");
}

static void sess_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct inj_sess *s = ev->user;
    switch (ev->op) {
    case RX_OP_RECV:
        s->reading = false;
        if (ev->res == -ETIMEDOUT) {
            sess_bye(s, "421 4.4.2 Timeout, closing connection\r\n");
            return;
        }
        if (ev->res <= 0) {
            sess_close(s);          /* an open transaction is dropped: nothing queued */
            return;
        }
        if (!s->tls)
            s->in_len += (uint32_t)ev->res;
        else if (tls_stream_received(s->tls, (size_t)ev->res) < 0) {
            sess_close(s);
            return;
        }
        sess_pump(s);
        break;
    case RX_OP_SEND:
        s->sending = false;
        if (ev->res < 0) {
            sess_close(s);
            return;
        }
        if (!s->tls)
            s->out_len = 0;
        if (s->tls_start) {         /* the 220 is out: the client's handshake comes next */
            s->tls_start = false;
            s->in_len = s->in_off = 0;
            if (tls_stream_create(&s->tls, s->in->tls_ctx) < 0) {
                sess_close(s);
                return;
            }
        }
        if (s->tls && tls_stream_pending(s->tls) > 0) {
            sess_flush(s);          /* the rest of a large flight */
            return;
        }
        if (s->close_after_send) {
            sess_close(s);
            return;
        }
        if (s->job_busy)
            return;                 /* inj_sess_job_done() goes on */
        if (s->dot_ready) {         /* the dot's reply waited for this send */
            s->dot_ready = false;
            if (sess_answer(s, NULL))
                sess_pump(s);
            return;
        }
        sess_pump(s);
        break;
    case RX_OP_CLOSE:
        s->closed = true;
        if (!s->job_busy)           /* else a worker still reads it: job_done frees */
            sess_release(s);
        break;
    default:
        vl_panic("inject: unexpected op %d on a connection", (int)ev->op);
    }
}

/* Same address (v4-mapped counts as v4)? */
static bool peer_same(const union vl_sockaddr *a, const union vl_sockaddr *b)
{
    if (a->sa.sa_family != b->sa.sa_family)
        return false;
    if (a->sa.sa_family == AF_INET)
        return a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
    return !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, sizeof a->in6.sin6_addr);
}

static bool relay_allowed(const struct vl_config *cfg, const union vl_sockaddr *p)
{
    if (cfg->allow_count == 0)
        return vl_ip_classify_sa(&p->sa) == VL_IP_LOOPBACK;
    for (unsigned i = 0; i < cfg->allow_count; i++)
        if (vl_net_match(&cfg->allow[i], &p->sa))
            return true;
    return false;
}

void inj_sess_start(struct inject *in, int fd, bool tls)
{
    union vl_sockaddr peer;
    socklen_t plen = sizeof peer;
    memset(&peer, 0, sizeof peer);
    if (in->free_n == 0 || getpeername(fd, &peer.sa, &plen) < 0) {
        close(fd);                  /* pool full: back-pressure */
        return;
    }
    struct inj_sess *s = &in->sess[in->free_idx[in->free_n - 1]];
    rx_handle_t h;
    if (rx_open(in->rx, fd, sess_cb, s, &h) < 0) {
        close(fd);
        return;
    }
    in->free_n--;
    unsigned same = 0;
    for (uint32_t i = 0; i < INJ_SESSIONS_MAX; i++)
        if (in->sess[i].used && !in->sess[i].closing && peer_same(&in->sess[i].peer, &peer))
            same++;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(s, 0, offsetof(struct inj_sess, in_buf));
    s->in = in;
    s->h = h;
    s->used = true;
    s->peer = peer;
    const void *ap = peer.sa.sa_family == AF_INET ? (const void *)&peer.in4.sin_addr
                                                  : (const void *)&peer.in6.sin6_addr;
    if (!inet_ntop(peer.sa.sa_family, ap, s->peer_ip, sizeof s->peer_ip))
        strcpy(s->peer_ip, "unknown");
    s->relay_ok = relay_allowed(in->cfg, &peer);
    s->over_limit = same >= in->cfg->conns_per_ip_max;
    s->rcpts = calloc(in->cfg->rcpts_per_msg_max, sizeof *s->rcpts);
    if (!s->rcpts) {
        sess_close(s);
        return;
    }
    smtp_server_init(&s->srv, &in->sconf);
    if (tls && tls_stream_create(&s->tls, in->tls_ctx) < 0) {
        sess_close(s);
        return;
    }
    sess_pump(s);                   /* the banner (after the handshake with implicit TLS) */
}
