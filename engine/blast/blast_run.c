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

static bool can_start_closed(const struct blast_thread *th, uint64_t now)
{
    return !atomic_load_explicit(th->stop, memory_order_relaxed) && th->started < th->quota &&
           (th->deadline_ns == 0 || now < th->deadline_ns);
}

static bool thread_more_msgs(const struct blast_thread *th)
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
    s->txn_counted = false;
    s->msg_seq = th->started++;
    s->t_intended = intended;
    s->msg_step = step;
    blast_stats_msg_taken(th, s);
}

static bool thread_take_msg(struct blast_thread *th, struct blast_session *s)
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

static void thread_idle_push(struct blast_thread *th, struct blast_session *s)
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

static void thread_session_closed(struct blast_thread *th, struct blast_session *s)
{
    vl_assert(s->state == BLAST_S_CLOSING);
    vl_assert(!s->has_msg || s->redial);
    if (s->tls) {
        tls_conn_destroy(s->tls);
        s->tls = NULL;
    }
    if (s->redial) {               /* its message goes on a new connection, same slot */
        s->redial = false;
        if (s->has_msg) {
            blast_session_start(th, s);
            return;
        }
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
    if (!thread_take_msg(th, s))
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
    blast_msg_date_refresh(th);
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
    if (!thread_more_msgs(th)) {
        struct blast_session *s;
        while ((s = idle_pop(th)) != NULL)
            blast_session_quit_idle(s);
    }
}

static bool thread_finished(struct blast_thread *th)
{
    return th->sessions_open == 0 && !thread_more_msgs(th);
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
    blast_msg_date_refresh(th);
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
    blast_stats_rate_fit(&th->res);
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

static atomic_int blast_stop_level;

static uint32_t thread_share(uint64_t total, uint32_t parts, uint32_t k)
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
    th->owner = (struct blast_owner){ .take = thread_take_msg, .more = thread_more_msgs,
                                      .idle = thread_idle_push, .closed = thread_session_closed };
    uint32_t steps = cf->ramp_steps > 1 ? cf->ramp_steps : 1;
    if (blast_result_init(&th->res, th->open_loop ? steps : 0) < 0)
        return -ENOMEM;
    th->sessions_cap = thread_share(th->open_loop ? cf->sessions_max : cf->concurrency, cf->threads, k);
    th->quota = cf->count ? thread_share(cf->count, cf->threads, k) : UINT64_MAX;
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
    if (cf->auth_user &&
        blast_msg_auth_plain(cf->auth_user, cf->auth_pass, th->auth_b64, sizeof th->auth_b64) < 0)
        return -EINVAL;
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
    l->elapsed_ms = (blast_mono_ns() - t0) / 1000000u;
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
    char *tmpl = blast_msg_template_create();
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
    const uint64_t t0 = blast_mono_ns();
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
    uint64_t next_progress = blast_mono_ns() + (uint64_t)progress_ms * 1000000u;
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
        if (progress && progress_ms && blast_mono_ns() >= next_progress) {
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
        res->elapsed_ns = blast_mono_ns() - t0;
        res->cpu_user_us = cpu_us(&ru1, false) - cpu_us(&ru0, false);
        res->cpu_sys_us = cpu_us(&ru1, true) - cpu_us(&ru0, true);
    }
    for (uint32_t k = 0; k < n; k++)
        thread_free(&th[k]);
    free(th);
    free(tmpl);
    return rc;
}
