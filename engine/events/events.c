/*
 * events.c - the sink threads (see events.h): read the outboxes, batch, send,
 * back off, acknowledge.
 *
 * A sink's cursor per shard starts at the seq it acknowledged last (stored in
 * the outbox) and moves only after the sink took a batch; a failed batch is
 * rebuilt from the same cursors, so it is resent with the same events in the
 * same order. Events are deleted once every sink of this run has them
 * (acked[][] holds each sink's position; the least of them is deleted).
 */
#include "events.h"

#include "clock.h"
#include "log.h"
#include "volley/error.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct events_thread {
    struct events *ev;
    unsigned idx;
    struct events_sink sink;
    pthread_t thread;
    bool started;
    uint64_t *cursor;              /* [nshards]: last seq this sink took */
    uint64_t *batch_last;          /* [nshards]: last seq in the batch being built */
    struct events_batch batch;
    char *buf;
    size_t buf_len, buf_cap;
    _Atomic uint64_t cpu_us;       /* the thread's CPU time when it ended */
};

struct events {
    struct vl_queue *q;
    unsigned nshards, nsinks;
    struct events_conf conf;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    uint64_t deadline_ms;          /* monotonic; valid once stopping */
    _Atomic uint64_t *acked;       /* [nsinks * nshards] */
    _Atomic uint64_t sent, batches, failures;
    struct events_thread th[EVENTS_SINKS_MAX];
};

size_t events_with_id(const char *json, size_t len, const char *id, char *out, size_t cap)
{
    if (len < 2 || json[0] != '{')
        return 0;
    int n = snprintf(out, cap, "{\"event_id\":\"%s\"%s", id, len > 2 ? "," : "");
    if (n < 0 || (size_t)n + len - 1 > cap)
        return 0;
    memcpy(out + n, json + 1, len - 1);
    return (size_t)n + len - 1;
}

void events_type(const char *json, size_t len, char *out, size_t cap)
{
    static const char key[] = "\"event\":\"";
    const char *p = memmem(json, len, key, sizeof key - 1);
    size_t n = 0;
    if (p) {
        p += sizeof key - 1;
        while (p + n < json + len && p[n] != '"' && n + 1 < cap)
            n++;
        memcpy(out, p, n);
    }
    out[n] = '\0';
}

static bool events_should_quit(struct events *ev)
{
    pthread_mutex_lock(&ev->mu);
    bool q = ev->stopping && vl_clock_mono_ms() >= ev->deadline_ms;
    pthread_mutex_unlock(&ev->mu);
    return q;
}

/* Sleep @p ms, or less when stopping with a nearer deadline. @return true if
 * the drain time is over. */
static bool events_sleep(struct events *ev, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ev->mu);
    while (!(ev->stopping && vl_clock_mono_ms() >= ev->deadline_ms))
        if (pthread_cond_timedwait(&ev->cv, &ev->mu, &ts) == ETIMEDOUT)
            break;
    bool over = ev->stopping && vl_clock_mono_ms() >= ev->deadline_ms;
    pthread_mutex_unlock(&ev->mu);
    return over;
}

struct events_read_ctx { struct events_thread *t; unsigned shard; };

static void events_read_one(void *arg, uint64_t seq, const char *json, size_t len)
{
    struct events_read_ctx *c = arg;
    struct events_thread *t = c->t;
    struct events_item *it = &t->batch.items[t->batch.count];
    vl_assert(t->batch.count < t->ev->conf.batch_max);
    snprintf(it->id, sizeof it->id, "%04x-%012llx", c->shard & 0xffffu,
             (unsigned long long)(seq & 0xffffffffffffull));
    size_t n = events_with_id(json, len, it->id, t->buf + t->buf_len, t->buf_cap - t->buf_len);
    if (n == 0) {                  /* not an object: sent as stored, still in order */
        n = len < t->buf_cap - t->buf_len ? len : 0;
        memcpy(t->buf + t->buf_len, json, n);
    }
    it->json = t->buf + t->buf_len;      /* fixed below if buf moves: it never does */
    it->len = n;
    if (t->sink.want_type)
        events_type(json, len, it->type, sizeof it->type);
    else
        it->type[0] = '\0';
    t->buf_len += n;
    t->batch.count++;
    t->batch_last[c->shard] = seq;
}

/* Fill t->batch from the shards, round robin from @p first. @return count. */
static size_t events_batch_build(struct events_thread *t, unsigned first)
{
    struct events *ev = t->ev;
    t->batch.count = 0;
    t->buf_len = 0;
    for (unsigned k = 0; k < ev->nshards; k++)
        t->batch_last[k] = t->cursor[k];
    for (unsigned i = 0; i < ev->nshards; i++) {
        unsigned k = (first + i) % ev->nshards;
        size_t room = ev->conf.batch_max - t->batch.count;
        size_t bytes = t->buf_cap - t->buf_len;
        if (room == 0 || bytes <= EVENTS_BATCH_BYTES_MAX / 2)
            break;
        struct events_read_ctx c = { t, k };
        /* Each event grows by its id (~32 bytes): keep that room. */
        int rc = vl_queue_events_read(vl_queue_shard(ev->q, k), t->cursor[k], room,
                                      bytes - EVENTS_BATCH_BYTES_MAX / 2, events_read_one, &c);
        if (rc < 0)
            vl_log(VL_LOG_ERROR, "evt=events_read_failed sink=%s shard=%u err=\"%s\"",
                   t->sink.name, k, vl_strerror(rc));
    }
    return t->batch.count;
}

static void events_ack(struct events_thread *t)
{
    struct events *ev = t->ev;
    for (unsigned k = 0; k < ev->nshards; k++) {
        if (t->batch_last[k] == t->cursor[k])
            continue;
        t->cursor[k] = t->batch_last[k];
        atomic_store(&ev->acked[t->idx * ev->nshards + k], t->cursor[k]);
        uint64_t least = t->cursor[k];
        for (unsigned s = 0; s < ev->nsinks; s++) {
            uint64_t a = atomic_load(&ev->acked[s * ev->nshards + k]);
            least = a < least ? a : least;
        }
        int rc = vl_queue_events_ack_lazy(vl_queue_shard(ev->q, k), t->sink.name, t->cursor[k],
                                          least);
        if (rc < 0)                /* the next ack covers it; a crash first resends */
            vl_log(VL_LOG_ERROR, "evt=events_ack_failed sink=%s shard=%u seq=%llu err=\"%s\"",
                   t->sink.name, k, (unsigned long long)t->cursor[k], vl_strerror(rc));
    }
}

/* Commit the lazy acknowledgements no delivery commit has taken (an idle
 * outbox: a crash would otherwise resend them). */
static void events_flush_acks(struct events *ev, const char *who)
{
    for (unsigned k = 0; k < ev->nshards; k++) {
        struct vl_queue_shard *s = vl_queue_shard(ev->q, k);
        int rc = vl_queue_events_ack_pending(s) ? vl_queue_events_ack_flush(s) : 0;
        if (rc < 0)
            vl_log(VL_LOG_ERROR, "evt=events_ack_failed sink=%s shard=%u err=\"%s\"", who, k,
                   vl_strerror(rc));
    }
}

/* Events are asynchronous: the sender yields the CPU to delivery. */
static void events_thread_lower(struct events_thread *t)
{
    char name[16];
    snprintf(name, sizeof name, "vl-ev-%.9s", t->sink.name);
    pthread_setname_np(pthread_self(), name);
    struct sched_param sp = { 0 };
    (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    if (t->ev->conf.nice > 0) {
        id_t tid = (id_t)syscall(SYS_gettid);
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, tid);
        if (errno == 0)
            (void)setpriority(PRIO_PROCESS, tid, cur + t->ev->conf.nice);
    }
}

static void *events_thread_main(void *arg)
{
    struct events_thread *t = arg;
    struct events *ev = t->ev;
    uint64_t backoff = ev->conf.retry_ms_min, fail_since = 0, last_send = 0;
    unsigned fails = 0, first = 0;
    bool last_full = true;
    char err[512];
    events_thread_lower(t);
    for (;;) {
        if (events_should_quit(ev))
            break;
        pthread_mutex_lock(&ev->mu);
        bool stopping = ev->stopping;
        pthread_mutex_unlock(&ev->mu);
        uint64_t now = vl_clock_mono_ms();
        if (!stopping && !last_full && fails == 0 && now < last_send + ev->conf.linger_ms) {
            events_sleep(ev, last_send + ev->conf.linger_ms - now);   /* gather a batch */
            continue;
        }
        if (events_batch_build(t, first) == 0) {
            if (stopping)
                break;             /* drained */
            events_flush_acks(ev, t->sink.name);
            events_sleep(ev, ev->conf.poll_ms);
            continue;
        }
        /* The previous batch's lazy ack not yet taken by a delivery commit
         * (delivery idle): commit it now, so that a crash can only resend the
         * last batch a sink took (the documented duplicate), never more. */
        events_flush_acks(ev, t->sink.name);
        err[0] = '\0';
        last_send = vl_clock_mono_ms();
        last_full = t->batch.count >= ev->conf.batch_max;
        int rc = t->sink.send(t->sink.ctx, &t->batch, err, sizeof err);
        if (rc < 0) {
            atomic_fetch_add(&ev->failures, 1);
            if (fails++ == 0)
                fail_since = vl_clock_mono_ms();
            vl_log(VL_LOG_WARN, "evt=events_send_failed sink=%s events=%zu try=%u retry_ms=%llu "
                   "err=\"%s\"", t->sink.name, t->batch.count, fails,
                   (unsigned long long)backoff, err);
            if (events_sleep(ev, backoff))
                break;
            backoff = backoff * 2 > ev->conf.retry_ms_max ? ev->conf.retry_ms_max : backoff * 2;
            continue;
        }
        if (fails)
            vl_log(VL_LOG_INFO, "evt=events_recovered sink=%s tries=%u failing_ms=%llu",
                   t->sink.name, fails + 1,
                   (unsigned long long)(vl_clock_mono_ms() - fail_since));
        fails = 0;
        backoff = ev->conf.retry_ms_min;
        atomic_fetch_add(&ev->sent, t->batch.count);
        atomic_fetch_add(&ev->batches, 1);
        events_ack(t);
        first = (first + 1) % ev->nshards;
    }
    struct timespec cpu;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
        atomic_store(&t->cpu_us, (uint64_t)cpu.tv_sec * 1000000u + (uint64_t)cpu.tv_nsec / 1000u);
    return NULL;
}

static void events_free(struct events *ev)
{
    for (unsigned i = 0; i < ev->nsinks; i++) {
        struct events_thread *t = &ev->th[i];
        if (t->sink.destroy)
            t->sink.destroy(t->sink.ctx);
        free(t->cursor);
        free(t->batch_last);
        free(t->batch.items);
        free(t->buf);
    }
    free(ev->acked);
    pthread_mutex_destroy(&ev->mu);
    pthread_cond_destroy(&ev->cv);
    free(ev);
}

int events_start(struct vl_queue *q, struct events_sink *sinks, unsigned n,
                 const struct events_conf *conf, struct events **out)
{
    vl_assert(n > 0 && n <= EVENTS_SINKS_MAX);
    vl_assert(conf->batch_max >= 1 && conf->batch_max <= EVENTS_BATCH_MAX);
    *out = NULL;
    struct events *ev = calloc(1, sizeof *ev);
    if (!ev) {
        for (unsigned i = 0; i < n; i++)
            if (sinks[i].destroy)
                sinks[i].destroy(sinks[i].ctx);
        return -ENOMEM;
    }
    ev->q = q;
    ev->nshards = vl_queue_nshards(q);
    ev->nsinks = n;
    ev->conf = *conf;
    pthread_mutex_init(&ev->mu, NULL);
    pthread_cond_init(&ev->cv, NULL);
    ev->acked = calloc((size_t)n * ev->nshards, sizeof *ev->acked);
    int rc = ev->acked ? 0 : -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        struct events_thread *t = &ev->th[i];
        t->ev = ev;
        t->idx = i;
        t->sink = sinks[i];
        if (rc < 0)
            continue;
        t->cursor = calloc(ev->nshards, sizeof *t->cursor);
        t->batch_last = calloc(ev->nshards, sizeof *t->batch_last);
        t->batch.items = calloc(conf->batch_max, sizeof *t->batch.items);
        t->buf_cap = EVENTS_BATCH_BYTES_MAX + (size_t)conf->batch_max * 64u
                     + EVENTS_BATCH_BYTES_MAX / 2;
        t->buf = malloc(t->buf_cap);
        if (!t->cursor || !t->batch_last || !t->batch.items || !t->buf) {
            rc = -ENOMEM;
            continue;
        }
        for (unsigned k = 0; k < ev->nshards && rc == 0; k++) {
            rc = vl_queue_events_state(vl_queue_shard(q, k), t->sink.name, &t->cursor[k], NULL,
                                       NULL);
            atomic_store(&ev->acked[i * ev->nshards + k], t->cursor[k]);
        }
    }
    for (unsigned i = 0; i < n && rc == 0; i++) {
        int e = pthread_create(&ev->th[i].thread, NULL, events_thread_main, &ev->th[i]);
        if (e != 0)
            rc = -e;
        else
            ev->th[i].started = true;
    }
    if (rc < 0) {
        events_stop(ev, 0, NULL);
        return rc;
    }
    *out = ev;
    return 0;
}

void events_stats_get(struct events *ev, struct events_stats *st)
{
    memset(st, 0, sizeof *st);
    st->sent = atomic_load(&ev->sent);
    st->batches = atomic_load(&ev->batches);
    st->failures = atomic_load(&ev->failures);
}

void events_stop(struct events *ev, uint64_t drain_ms, struct events_stats *st)
{
    if (!ev) {
        if (st)
            memset(st, 0, sizeof *st);
        return;
    }
    pthread_mutex_lock(&ev->mu);
    ev->stopping = true;
    ev->deadline_ms = vl_clock_mono_ms() + drain_ms;
    pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
    for (unsigned i = 0; i < ev->nsinks; i++)
        if (ev->th[i].started)
            pthread_join(ev->th[i].thread, NULL);
    events_flush_acks(ev, "all");
    struct events_stats s;
    events_stats_get(ev, &s);
    for (unsigned i = 0; i < ev->nsinks; i++)
        s.cpu_us += atomic_load(&ev->th[i].cpu_us);
    for (unsigned k = 0; k < ev->nshards; k++) {
        uint64_t stored = 0;
        if (vl_queue_events_state(vl_queue_shard(ev->q, k), NULL, NULL, &stored, NULL) == 0)
            s.left += stored;
    }
    vl_log(VL_LOG_INFO, "evt=events_stopped sent=%llu batches=%llu failures=%llu left=%llu "
           "sender_cpu_ms=%llu", (unsigned long long)s.sent, (unsigned long long)s.batches,
           (unsigned long long)s.failures, (unsigned long long)s.left,
           (unsigned long long)(s.cpu_us / 1000u));
    if (st)
        *st = s;
    events_free(ev);
}
