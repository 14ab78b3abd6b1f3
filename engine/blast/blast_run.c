/*
 * blast_run.c - blast's threads: each runs its own reactor with its share of
 * the sessions and of the schedule, and keeps its own statistics; the
 * calling thread watches signals, reports progress and merges the results.
 */
#include "blast_int.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "volley/error.h"

const char *const blast_phase_name[BLAST_PH_COUNT] = {
    "connect", "banner", "ehlo", "tls", "auth", "mail_rcpt", "data_354", "body_write",
    "final_reply", "transaction", "schedule_lag",
};
const char *const blast_err_name[BLAST_ERR_COUNT] = {
    "refused", "reset", "timeout", "tls", "protocol", "other",
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t blast_now_ns(const struct blast_thread *th)
{
    return mono_ns() - th->t0_ns;
}

/* ---- results ----------------------------------------------------------------- */

int blast_result_init(struct blast_result *res, uint32_t steps)
{
    memset(res, 0, sizeof *res);
    res->series_interval_ms = 1000;
    res->first_start_ns = res->first_intended_ns = UINT64_MAX;
    for (uint32_t p = 0; p < BLAST_PH_COUNT; p++)
        if (blast_hist_init(&res->phase[p], BLAST_HIST_SUB_BITS, BLAST_HIST_MAX_BITS) < 0)
            return -ENOMEM;
    vl_assert(steps <= BLAST_RAMP_STEPS_MAX);
    res->step_count = steps;
    for (uint32_t j = 0; j < steps; j++)
        if (blast_hist_init(&res->step[j].txn, BLAST_HIST_SUB_BITS, BLAST_HIST_MAX_BITS) < 0)
            return -ENOMEM;
    return 0;
}

static void series_slot_free(struct blast_series_slot *sl)
{
    if (sl->txn) {
        blast_hist_fini(sl->txn);
        free(sl->txn);
    }
    memset(sl, 0, sizeof *sl);
}

void blast_result_fini(struct blast_result *res)
{
    for (uint32_t p = 0; p < BLAST_PH_COUNT; p++)
        blast_hist_fini(&res->phase[p]);
    for (uint32_t j = 0; j < res->step_count; j++)
        blast_hist_fini(&res->step[j].txn);
    for (uint32_t i = 0; i < BLAST_SERIES_MAX; i++)
        series_slot_free(&res->series[i]);
}

/* Add slot @p b into @p a (counts and histogram). */
static int series_slot_add(struct blast_series_slot *a, const struct blast_series_slot *b)
{
    a->started += b->started;
    a->ok += b->ok;
    a->tempfail += b->tempfail;
    a->permfail += b->permfail;
    a->errors += b->errors;
    a->bytes += b->bytes;
    if (!b->txn)
        return 0;
    if (!a->txn) {
        a->txn = malloc(sizeof *a->txn);
        if (!a->txn || blast_hist_init(a->txn, BLAST_SERIES_SUB_BITS, BLAST_HIST_MAX_BITS) < 0)
            return -ENOMEM;
    }
    return blast_hist_merge(a->txn, b->txn);
}

/* Halve the resolution: slot i becomes slots 2i and 2i+1. */
static int series_compact(struct blast_result *res)
{
    for (uint32_t i = 0; i < BLAST_SERIES_MAX / 2; i++) {
        struct blast_series_slot a = res->series[2 * i], b = res->series[2 * i + 1];
        memset(&res->series[2 * i], 0, sizeof a);
        memset(&res->series[2 * i + 1], 0, sizeof b);
        res->series[i] = a;
        if (series_slot_add(&res->series[i], &b) < 0)
            return -ENOMEM;
        series_slot_free(&b);
    }
    res->series_interval_ms *= 2;
    res->series_count = (res->series_count + 1) / 2;
    return 0;
}

static struct blast_series_slot *series_at(struct blast_result *res, uint64_t t_ns)
{
    uint64_t i = t_ns / 1000000ull / res->series_interval_ms;
    while (i >= BLAST_SERIES_MAX) {
        if (series_compact(res) < 0)
            return NULL;
        i = t_ns / 1000000ull / res->series_interval_ms;
    }
    if (i + 1 > res->series_count)
        res->series_count = (uint32_t)i + 1;
    return &res->series[i];
}

static void status_add(struct blast_result *res, const char *st, uint64_t n)
{
    for (uint32_t i = 0; i < res->status_count; i++)
        if (!strcmp(res->statuses[i].status, st)) {
            res->statuses[i].count += n;
            return;
        }
    if (res->status_count == BLAST_STATUSES_MAX) {
        res->statuses_other += n;
        return;
    }
    struct blast_status_count *c = &res->statuses[res->status_count++];
    snprintf(c->status, sizeof c->status, "%s", st);
    c->count = n;
}

int blast_result_merge(struct blast_result *dst, const struct blast_result *src)
{
#define ADD(f) dst->f += src->f
    ADD(started); ADD(ok); ADD(tempfail); ADD(permfail); ADD(errors); ADD(not_started);
    ADD(rcpts_ok); ADD(rcpts_refused); ADD(bytes); ADD(conns); ADD(conns_ready);
    ADD(tls_sessions); ADD(auth_ok); ADD(auth_failed); ADD(statuses_other);
    ADD(cqes); ADD(reactor_turns);
#undef ADD
    for (uint32_t e = 0; e < BLAST_ERR_COUNT; e++)
        dst->conn_errors[e] += src->conn_errors[e];
    for (uint32_t c = 0; c < BLAST_REPLY_CODES; c++)
        dst->replies[c] += src->replies[c];
    for (uint32_t i = 0; i < src->status_count; i++)
        status_add(dst, src->statuses[i].status, src->statuses[i].count);
    for (uint32_t p = 0; p < BLAST_PH_COUNT; p++)
        blast_hist_merge(&dst->phase[p], &src->phase[p]);
    vl_assert(dst->step_count == src->step_count);
    for (uint32_t j = 0; j < src->step_count; j++) {
        dst->step[j].rate = src->step[j].rate;
        dst->step[j].started += src->step[j].started;
        dst->step[j].ended_ok += src->step[j].ended_ok;
        blast_hist_merge(&dst->step[j].txn, &src->step[j].txn);
    }
    while (dst->series_interval_ms < src->series_interval_ms)
        if (series_compact(dst) < 0)
            return -ENOMEM;
    uint64_t f = dst->series_interval_ms / src->series_interval_ms;
    for (uint32_t i = 0; i < src->series_count; i++) {
        uint32_t d = (uint32_t)(i / f);
        if (series_slot_add(&dst->series[d], &src->series[i]) < 0)
            return -ENOMEM;
        if (d + 1 > dst->series_count)
            dst->series_count = d + 1;
    }
#define MIN(f) if (src->f < dst->f) dst->f = src->f
#define MAX(f) if (src->f > dst->f) dst->f = src->f
    MIN(first_start_ns); MAX(last_start_ns); MIN(first_intended_ns); MAX(last_intended_ns);
    MAX(elapsed_ns);
#undef MIN
#undef MAX
    return 0;
}

/* ---- what sessions ask of their thread ------------------------------------- */

static uint64_t rng_next(struct blast_thread *th)
{
    uint64_t x = th->rng;            /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    th->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

static double rng_unit(struct blast_thread *th)   /* (0, 1) */
{
    return ((double)(rng_next(th) >> 11) + 0.5) / 9007199254740992.0;
}

static uint64_t size_draw(struct blast_thread *th)
{
    const struct blast_size *sz = &th->conf->size;
    double v;
    switch (sz->kind) {
    case BLAST_SIZE_FIXED:
        return sz->lo;
    case BLAST_SIZE_UNIFORM:
        return sz->lo + rng_next(th) % (sz->hi - sz->lo + 1);
    case BLAST_SIZE_LOGNORMAL:     /* Box-Muller */
        v = sqrt(-2.0 * log(rng_unit(th))) * cos(2.0 * M_PI * rng_unit(th));
        v = sz->median * exp(sz->sigma * v);
        return v < 1 ? 1 : v > VL_MSG_BYTES_MAX ? VL_MSG_BYTES_MAX : (uint64_t)v;
    case BLAST_SIZE_LIST:
        return sz->list[rng_next(th) % sz->list_count];
    }
    vl_panic("blast: bad size kind %d", (int)sz->kind);
}

static bool can_start_closed(const struct blast_thread *th, uint64_t now)
{
    return !atomic_load_explicit(th->stop, memory_order_relaxed) && th->started < th->quota &&
           (th->deadline_ns == 0 || now < th->deadline_ns);
}

bool blast_thread_more_msgs(const struct blast_thread *th)
{
    if (atomic_load_explicit(th->stop, memory_order_relaxed))
        return false;
    if (th->open_loop)
        return th->started < th->due || !th->due_cur.done ||
               blast_sched_peek((struct blast_sched *)&th->due_cur) != UINT64_MAX;
    return can_start_closed(th, blast_now_ns(th));
}

static void msg_take(struct blast_thread *th, struct blast_session *s, uint64_t intended,
                     uint32_t step)
{
    s->has_msg = true;
    s->msg_seq = th->started++;
    s->t_intended = intended;
    s->msg_step = step;
    th->res.started++;
    atomic_fetch_add_explicit(&th->live.started, 1, memory_order_relaxed);
    struct blast_series_slot *sl = series_at(&th->res, blast_now_ns(th));
    if (sl)
        sl->started++;
    if (step < th->res.step_count)
        th->res.step[step].started++;
}

bool blast_thread_take_msg(struct blast_thread *th, struct blast_session *s)
{
    if (atomic_load_explicit(th->stop, memory_order_relaxed))
        return false;
    if (th->open_loop) {
        if (th->started >= th->due)
            return false;
        uint64_t t = blast_sched_peek(&th->start_cur);
        uint32_t step = blast_sched_step(&th->start_cur);
        blast_sched_next(&th->start_cur);
        msg_take(th, s, t, step);
        if (t < th->res.first_intended_ns)
            th->res.first_intended_ns = t;
        if (t > th->res.last_intended_ns)
            th->res.last_intended_ns = t;
        return true;
    }
    if (!can_start_closed(th, blast_now_ns(th)))
        return false;
    msg_take(th, s, 0, 0);
    return true;
}

void blast_thread_idle_push(struct blast_thread *th, struct blast_session *s)
{
    if (s->in_idle)
        return;
    s->in_idle = true;
    th->idle[th->idle_count++] = s->idx;
}

static struct blast_session *idle_pop(struct blast_thread *th)
{
    while (th->idle_count) {
        struct blast_session *s = &th->sess[th->idle[--th->idle_count]];
        s->in_idle = false;
        if (s->state == BLAST_S_READY && !s->has_msg)
            return s;
    }
    return NULL;
}

void blast_thread_msg_started(struct blast_thread *th, struct blast_session *s)
{
    struct blast_result *res = &th->res;
    if (s->t_mail < res->first_start_ns)
        res->first_start_ns = s->t_mail;
    if (s->t_mail > res->last_start_ns)
        res->last_start_ns = s->t_mail;
    blast_hist_record(&res->phase[BLAST_PH_LAG],
                      s->t_mail > s->t_intended ? s->t_mail - s->t_intended : 0);
}

static void date_refresh(struct blast_thread *th)
{
    time_t now = time(NULL);
    if ((uint64_t)now == th->date_s)
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(th->date, sizeof th->date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    th->date_s = (uint64_t)now;
}

void blast_thread_msg_build(struct blast_thread *th, struct blast_session *s)
{
    const struct blast_conf *cf = th->conf;
    uint64_t want = size_draw(th);
    int n = snprintf(s->hdr, sizeof s->hdr,
                     "Date: %s\r\nFrom: <%s>\r\nTo: undisclosed-recipients:;\r\n"
                     "Subject: volley blast %u-%llu\r\n"
                     "Message-ID: <blast.%llx.%u.%llu@%s>\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
                     th->date, cf->from, th->k, (unsigned long long)s->msg_seq,
                     (unsigned long long)cf->seed, th->k, (unsigned long long)s->msg_seq,
                     cf->helo);
    vl_assert(n > 0 && (size_t)n < sizeof s->hdr);
    s->hdr_len = (uint64_t)n;
    uint64_t body = want > s->hdr_len + 2 ? want - s->hdr_len - 2 : 0;
    if (body && th->tmpl[(body - 1) % BLAST_TEMPLATE_BYTES] == '\r')
        body--;                    /* never end the filler between CR and LF */
    s->body_len = body;
    s->msg_size = s->hdr_len + body + 2;
}

void blast_thread_rcpt(struct blast_thread *th, struct blast_session *s, char *addr, size_t cap)
{
    (void)s;
    const struct blast_conf *cf = th->conf;
    uint64_t seq = th->rcpt_seq++ * cf->threads + th->k;
    if (cf->rcpt_list_count) {
        snprintf(addr, cap, "%s", cf->rcpt_list[seq % cf->rcpt_list_count]);
        return;
    }
    const char *p = strstr(cf->to_pattern, "{n}");
    if (!p) {
        snprintf(addr, cap, "%s", cf->to_pattern);
        return;
    }
    snprintf(addr, cap, "%.*s%llu%s", (int)(p - cf->to_pattern), cf->to_pattern,
             (unsigned long long)(seq % cf->rcpt_range), p + 3);
}

void blast_thread_count_reply(struct blast_thread *th, const struct smtp_reply *r)
{
    if (r->code < BLAST_REPLY_CODES)
        th->res.replies[r->code]++;
    if (r->status[0])
        status_add(&th->res, r->status, 1);
}

void blast_thread_msg_ended(struct blast_thread *th, struct blast_session *s, int outcome,
                            uint64_t t_end)
{
    struct blast_result *res = &th->res;
    struct blast_series_slot *sl = series_at(res, t_end);
    uint64_t lat = t_end > s->t_intended ? t_end - s->t_intended : 0;
    switch (outcome) {
    case BLAST_OUT_OK:
        res->ok++;
        atomic_fetch_add_explicit(&th->live.ok, 1, memory_order_relaxed);
        if (sl) {
            sl->ok++;
            sl->bytes += s->msg_size;
        }
        if (s->msg_step < res->step_count)
            res->step[s->msg_step].ended_ok++;
        break;
    case BLAST_OUT_TEMPFAIL:
        res->tempfail++;
        atomic_fetch_add_explicit(&th->live.tempfail, 1, memory_order_relaxed);
        if (sl)
            sl->tempfail++;
        break;
    case BLAST_OUT_PERMFAIL:
        res->permfail++;
        atomic_fetch_add_explicit(&th->live.permfail, 1, memory_order_relaxed);
        if (sl)
            sl->permfail++;
        break;
    default:
        res->errors++;
        atomic_fetch_add_explicit(&th->live.errors, 1, memory_order_relaxed);
        if (sl)
            sl->errors++;
        return;                    /* no reply: no latency */
    }
    blast_hist_record(&res->phase[BLAST_PH_TXN], lat);
    if (s->msg_step < res->step_count)
        blast_hist_record(&res->step[s->msg_step].txn, lat);
    if (!sl)
        return;
    if (!sl->txn) {
        sl->txn = malloc(sizeof *sl->txn);
        if (!sl->txn)
            return;
        if (blast_hist_init(sl->txn, BLAST_SERIES_SUB_BITS, BLAST_HIST_MAX_BITS) < 0) {
            free(sl->txn);
            sl->txn = NULL;
            return;
        }
    }
    blast_hist_record(sl->txn, lat);
}

void blast_thread_session_closed(struct blast_thread *th, struct blast_session *s)
{
    vl_assert(s->state == BLAST_S_CLOSING);
    vl_assert(!s->has_msg);
    if (s->tls) {
        tls_conn_destroy(s->tls);
        s->tls = NULL;
    }
    s->state = BLAST_S_FREE;
    th->free_slots[th->free_count++] = s->idx;
    th->sessions_open--;
    atomic_store_explicit(&th->live.conns_open, th->sessions_open, memory_order_relaxed);
}

/* A new session, opened for the next message. @return false if none may start. */
static bool thread_open_session(struct blast_thread *th)
{
    vl_assert(th->free_count > 0);
    struct blast_session *s = &th->sess[th->free_slots[th->free_count - 1]];
    if (!blast_thread_take_msg(th, s))
        return false;
    th->free_count--;
    th->sessions_open++;
    atomic_store_explicit(&th->live.conns_open, th->sessions_open, memory_order_relaxed);
    blast_session_start(th, s);
    return true;
}

/* ---- the thread ------------------------------------------------------------ */

/* Start what is due; close what has nothing left to do. */
static void thread_tick(struct blast_thread *th)
{
    const uint64_t now = blast_now_ns(th);
    const int stop = atomic_load_explicit(th->stop, memory_order_relaxed);
    date_refresh(th);
    if (stop >= 2 && !th->aborted) {
        th->aborted = true;
        for (uint32_t i = 0; i < th->sessions_cap; i++)
            if (th->sess[i].state != BLAST_S_FREE)
                blast_session_abort(&th->sess[i]);
    }
    if (now >= th->sweep_ns) {     /* reply and send deadlines, 10 times a second */
        th->sweep_ns = now + 100000000ull;
        for (uint32_t i = 0; i < th->sessions_cap; i++)
            blast_session_overdue(&th->sess[i], now);
    }
    if (th->open_loop) {
        while (!stop && blast_sched_peek(&th->due_cur) <= now) {
            blast_sched_next(&th->due_cur);
            th->due++;
        }
        while (!stop && th->started < th->due) {
            struct blast_session *s = idle_pop(th);
            if (s) {
                blast_session_ready(s);
                continue;
            }
            if (th->sessions_open >= th->sessions_cap || !thread_open_session(th))
                break;
        }
        atomic_store_explicit(&th->live.backlog, th->due - th->started, memory_order_relaxed);
    } else {
        while (th->sessions_open < th->sessions_cap && can_start_closed(th, now))
            if (!thread_open_session(th))
                break;
    }
    if (!blast_thread_more_msgs(th)) {
        struct blast_session *s;
        while ((s = idle_pop(th)) != NULL)
            blast_session_quit_idle(s);
    }
}

static bool thread_finished(struct blast_thread *th)
{
    return th->sessions_open == 0 && !blast_thread_more_msgs(th);
}

static int thread_wait_ms(struct blast_thread *th)
{
    if (!th->open_loop)
        return 50;
    uint64_t next = blast_sched_peek(&th->due_cur);
    if (next == UINT64_MAX)
        return 50;
    uint64_t now = blast_now_ns(th);
    if (next <= now)
        return 0;
    uint64_t ms = (next - now + 999999u) / 1000000u;
    return ms > 50 ? 50 : (int)ms;
}

static void *thread_main(void *arg)
{
    struct blast_thread *th = arg;
    const struct blast_conf *cf = th->conf;
    struct rx_conf rc = { .handles_max = th->sessions_cap + 8u,
                          .timers_max = 64, .sq_entries = 1024 };
    int rc0 = rx_create(&th->rx, &rc);
    if (rc0 < 0) {
        th->rc = rc0;
        snprintf(th->err, sizeof th->err, "thread %u: reactor setup failed: %s", th->k,
                 vl_strerror(rc0));
        return NULL;
    }
    date_refresh(th);
    while (!thread_finished(th)) {
        thread_tick(th);
        if (thread_finished(th))
            break;
        int r = rx_run_once(th->rx, thread_wait_ms(th));
        th->res.reactor_turns++;
        if (r < 0 && r != -EINTR) {
            th->rc = r;
            snprintf(th->err, sizeof th->err, "thread %u: reactor: %s", th->k, vl_strerror(r));
            break;
        }
    }
    if (th->open_loop)
        th->res.not_started = th->due > th->started ? th->due - th->started : 0;
    th->res.elapsed_ns = blast_now_ns(th);
    th->res.cqes = rx_stats(th->rx).cqes;
    (void)cf;
    for (uint32_t i = 0; i < th->sessions_cap; i++)
        if (th->sess[i].tls)
            tls_conn_destroy(th->sess[i].tls), th->sess[i].tls = NULL;
    rx_destroy(th->rx);
    th->rx = NULL;
    tls_ctx_destroy(th->tls_ctx);
    th->tls_ctx = NULL;
    return NULL;
}

/* ---- the run ----------------------------------------------------------------- */

static char *template_build(void)
{
    char *t = malloc(BLAST_TEMPLATE_BYTES);
    if (!t)
        return NULL;
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (uint32_t line = 0; line < BLAST_TEMPLATE_BYTES / 78u; line++) {
        char *p = t + line * 78u;
        int n = snprintf(p, 78, "volley blast filler line %04u ", line);
        for (int i = n; i < 76; i++)
            p[i] = chars[(line * 7u + (unsigned)i) % (sizeof chars - 1)];
        p[76] = '\r';
        p[77] = '\n';
    }
    return t;
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = '\0';
}

static atomic_int blast_stop_level;

static uint32_t share(uint64_t total, uint32_t parts, uint32_t k)
{
    return (uint32_t)(total / parts + (k < total % parts ? 1 : 0));
}

static int thread_setup(struct blast_thread *th, const struct blast_conf *cf, uint32_t k,
                        const char *tmpl, uint64_t t0)
{
    memset(th, 0, sizeof *th);
    th->conf = cf;
    th->k = k;
    th->stop = &blast_stop_level;
    th->tmpl = tmpl;
    th->t0_ns = t0;
    th->rng = (cf->seed + 1) * 0x9e3779b97f4a7c15ull + k * 0xbf58476d1ce4e5b9ull;
    th->open_loop = cf->rate > 0;
    uint32_t steps = cf->ramp_steps > 1 ? cf->ramp_steps : 1;
    if (blast_result_init(&th->res, th->open_loop ? steps : 0) < 0)
        return -ENOMEM;
    th->sessions_cap = share(th->open_loop ? cf->sessions_max : cf->concurrency, cf->threads, k);
    th->quota = cf->count ? share(cf->count, cf->threads, k) : UINT64_MAX;
    th->deadline_ns = cf->duration_ms * 1000000ull;
    if (th->open_loop) {
        double end = cf->ramp_steps > 1 ? cf->ramp_end : cf->rate;
        double part = 1.0 / cf->threads, phase = (double)k / cf->threads;
        uint64_t limit = cf->count ? th->quota : 0;
        blast_sched_init(&th->due_cur, cf->rate, end, steps, th->deadline_ns, part, phase, limit);
        th->start_cur = th->due_cur;
        for (uint32_t j = 0; j < steps; j++)
            th->res.step[j].rate = blast_sched_step_rate(&th->due_cur, j, part);
    }
    th->sess = calloc(th->sessions_cap, sizeof *th->sess);
    th->idle = calloc(th->sessions_cap, sizeof *th->idle);
    th->free_slots = calloc(th->sessions_cap, sizeof *th->free_slots);
    if (!th->sess || !th->idle || !th->free_slots)
        return -ENOMEM;
    for (uint32_t i = 0; i < th->sessions_cap; i++) {
        struct blast_session *s = &th->sess[i];
        s->th = th;
        s->idx = i;
        s->wbuf[0] = malloc(BLAST_WBUF_BYTES);
        s->wbuf[1] = malloc(BLAST_WBUF_BYTES);
        if (!s->wbuf[0] || !s->wbuf[1])
            return -ENOMEM;
        th->free_slots[th->free_count++] = th->sessions_cap - 1 - i;   /* slot 0 first */
    }
    if (cf->auth_user) {
        unsigned char raw[600];
        size_t u = strlen(cf->auth_user), p = strlen(cf->auth_pass);
        if (u + p + 2 > sizeof raw || (u + p + 2) * 4 / 3 + 4 > sizeof th->auth_b64)
            return -EINVAL;
        raw[0] = 0;
        memcpy(raw + 1, cf->auth_user, u);
        raw[1 + u] = 0;
        memcpy(raw + 2 + u, cf->auth_pass, p);
        base64(raw, u + p + 2, th->auth_b64);
    }
    return 0;
}

static void thread_free(struct blast_thread *th)
{
    if (th->sess)
        for (uint32_t i = 0; i < th->sessions_cap; i++) {
            free(th->sess[i].wbuf[0]);
            free(th->sess[i].wbuf[1]);
            free(th->sess[i].tls_in);
            free(th->sess[i].tls_out);
        }
    free(th->sess);
    free(th->idle);
    free(th->free_slots);
    blast_result_fini(&th->res);
}

static void live_sum(struct blast_thread *th, uint32_t n, uint64_t t0, struct blast_live *l)
{
    memset(l, 0, sizeof *l);
    l->elapsed_ms = (mono_ns() - t0) / 1000000u;
    for (uint32_t k = 0; k < n; k++) {
        struct blast_live_atomic *a = &th[k].live;
        l->started += atomic_load_explicit(&a->started, memory_order_relaxed);
        l->ok += atomic_load_explicit(&a->ok, memory_order_relaxed);
        l->tempfail += atomic_load_explicit(&a->tempfail, memory_order_relaxed);
        l->permfail += atomic_load_explicit(&a->permfail, memory_order_relaxed);
        l->errors += atomic_load_explicit(&a->errors, memory_order_relaxed);
        l->conns_open += atomic_load_explicit(&a->conns_open, memory_order_relaxed);
        l->backlog += atomic_load_explicit(&a->backlog, memory_order_relaxed);
    }
}



static void *thread_entry(void *arg)
{
    struct blast_thread *th = arg;
    thread_main(th);
    return NULL;
}

static uint64_t cpu_us(const struct rusage *ru, bool sys)
{
    const struct timeval *tv = sys ? &ru->ru_stime : &ru->ru_utime;
    return (uint64_t)tv->tv_sec * 1000000u + (uint64_t)tv->tv_usec;
}

int blast_run(const struct blast_conf *cf, struct blast_result *res, blast_progress_cb *progress,
              uint32_t progress_ms, void *user, char *err, size_t err_cap)
{
    vl_assert(cf->threads >= 1 && cf->threads <= BLAST_THREADS_MAX);
    vl_assert(cf->target_count >= 1);
    int rc = 0;
    uint32_t n = cf->threads, started = 0;
    char *tmpl = template_build();
    struct blast_thread *th = calloc(n, sizeof *th);
    if (!tmpl || !th) {
        snprintf(err, err_cap, "out of memory");
        free(tmpl);
        free(th);
        return -ENOMEM;
    }
    atomic_store(&blast_stop_level, 0);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);   /* workers inherit it; we wait for them below */
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    const uint64_t t0 = mono_ns();
    for (uint32_t k = 0; k < n; k++) {
        rc = thread_setup(&th[k], cf, k, tmpl, t0);
        if (rc < 0) {
            snprintf(err, err_cap, "thread %u: setup failed: %s", k, vl_strerror(rc));
            goto join;
        }
    }
    for (uint32_t k = 0; k < n; k++, started++) {
        rc = -pthread_create(&th[k].tid, NULL, thread_entry, &th[k]);
        if (rc < 0) {
            snprintf(err, err_cap, "cannot start thread %u: %s", k, vl_strerror(rc));
            atomic_store(&blast_stop_level, 2);
            goto join;
        }
    }
    uint64_t next_progress = mono_ns() + (uint64_t)progress_ms * 1000000u;
    for (;;) {
        bool all_done = true;
        for (uint32_t k = 0; k < n; k++) {
            if (th[k].joined)
                continue;
            if (pthread_tryjoin_np(th[k].tid, NULL) == EBUSY)
                all_done = false;
            else
                th[k].joined = true;
        }
        if (all_done)
            break;
        struct timespec ts = { 0, 50 * 1000000 };
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            int lvl = atomic_load(&blast_stop_level);
            atomic_store(&blast_stop_level, lvl >= 1 ? 2 : 1);
            res->interrupted = true;
        }
        if (progress && progress_ms && mono_ns() >= next_progress) {
            struct blast_live l;
            live_sum(th, n, t0, &l);
            progress(&l, user);
            next_progress += (uint64_t)progress_ms * 1000000u;
        }
    }
    started = 0;                   /* all joined */
join:
    for (uint32_t k = 0; k < started; k++)
        if (!th[k].joined)
            pthread_join(th[k].tid, NULL);
    getrusage(RUSAGE_SELF, &ru1);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    bool interrupted = res->interrupted;
    if (rc == 0)
        rc = blast_result_init(res, th[0].res.step_count);
    res->interrupted = interrupted;
    for (uint32_t k = 0; k < n && rc == 0; k++) {
        if (th[k].rc < 0) {
            rc = th[k].rc;
            snprintf(err, err_cap, "%s", th[k].err);
            break;
        }
        rc = blast_result_merge(res, &th[k].res);
    }
    if (rc == 0) {
        res->elapsed_ns = mono_ns() - t0;
        res->cpu_user_us = cpu_us(&ru1, false) - cpu_us(&ru0, false);
        res->cpu_sys_us = cpu_us(&ru1, true) - cpu_us(&ru0, true);
    }
    for (uint32_t k = 0; k < n; k++)
        thread_free(&th[k]);
    free(th);
    free(tmpl);
    return rc;
}
