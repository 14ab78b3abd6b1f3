/*
 * engine.c - start the shard threads, report progress, join (see engine.h).
 * The main thread only reads the shards' atomic counters; it shares nothing
 * else with them.
 */
#include "volley/engine.h"

#include "metrics.h"
#include "shard.h"
#include "supp.h"
#include "warmup_store.h"
#include "volley/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct engine_shard {
    struct shard sh;
    struct deliver_counters ctr;
    pthread_t thread;
    atomic_bool done;
    int rc;
};

/* ---- live reload (vl_engine_reload) -----------------------------------------
 * The engine publishes a new struct shard_live by pointer swap; each shard
 * moves to it at the top of its next reactor turn and stores the generation
 * it applied (live_seen). What the previous generation held (its config, its
 * shaping table, the shaper's old table handle) is retired and freed by the
 * engine's loop once every running shard has seen a later generation: no
 * shard thread can be reading it then. No lock on the shards' side. */
struct engine_retired {
    struct engine_retired *next;
    uint64_t gen;                  /* freed once every shard has seen this one */
    struct shard_live *live;
    struct vl_config *cfg;         /* NULL: the caller's (the one run started with) */
    struct vl_shaper_tab *tab;
};

struct engine {
    struct engine_shard *es;
    unsigned started;
    struct vl_shaper *shaper;
    struct shard_live *live;       /* atomic: the current generation */
    struct vl_config *live_cfg;    /* its config if the engine owns it (reloaded) */
    void (*cfg_free)(struct vl_config *);
    struct engine_retired *retired;
};

static struct engine *engine_running;   /* the calling thread's, during vl_engine_run */

/* Free what every running shard has moved past. @p all: at the end. */
static void engine_reap(struct engine *e, bool all)
{
    uint64_t seen_min = UINT64_MAX;
    for (unsigned i = 0; i < e->started; i++) {
        if (atomic_load(&e->es[i].done))
            continue;              /* a finished shard reads nothing any more */
        uint64_t g = __atomic_load_n(&e->es[i].sh.live_seen, __ATOMIC_ACQUIRE);
        if (g < seen_min)
            seen_min = g;
    }
    for (struct engine_retired **pp = &e->retired, *r; (r = *pp) != NULL;) {
        if (!all && r->gen > seen_min) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        vl_shaper_tab_free(r->tab);
        free(r->live);
        if (r->cfg && e->cfg_free)
            e->cfg_free(r->cfg);
        free(r);
    }
}

int vl_engine_reload(struct vl_config *next, void (*cfg_free)(struct vl_config *),
                     char *out, size_t cap)
{
    struct engine *e = engine_running;
    if (cap)
        out[0] = '\0';
    if (!e)
        return -ESRCH;
    struct shard_live *lv = calloc(1, sizeof *lv);
    struct engine_retired *r = calloc(1, sizeof *r);
    if (!lv || !r) {
        free(lv);
        free(r);
        return -ENOMEM;
    }
    int rc = vl_shaper_update(e->shaper, next->shaping, &r->tab, out, cap);
    if (rc < 0) {
        free(lv);
        free(r);
        return rc;
    }
    struct shard_live *old = e->live;
    lv->gen = old->gen + 1;
    lv->cfg = next;
    r->gen = lv->gen;
    r->live = old;
    r->cfg = e->live_cfg;
    e->live_cfg = next;
    e->cfg_free = cfg_free;
    r->next = e->retired;
    e->retired = r;
    __atomic_store_n(&e->live, lv, __ATOMIC_RELEASE);
    return 0;
}

static void *engine_shard_main(void *arg)
{
    struct engine_shard *es = arg;
    es->rc = shard_run(&es->sh);
    atomic_store(&es->done, true);
    return NULL;
}

static void engine_totals(struct engine_shard *es, unsigned n, struct vl_engine_totals *t)
{
    memset(t, 0, sizeof *t);
    for (unsigned i = 0; i < n; i++) {
        struct deliver_counters *c = &es[i].ctr;
        t->delivered += atomic_load(&c->delivered);
        t->deferred += atomic_load(&c->deferred);
        t->bounced += atomic_load(&c->bounced);
        t->expired += atomic_load(&c->expired);
        t->ambiguous += atomic_load(&c->ambiguous);
        t->dsn_delivered += atomic_load(&c->dsn_delivered);
        t->dsn_deferred += atomic_load(&c->dsn_deferred);
        t->dsn_failed += atomic_load(&c->dsn_failed);
        t->sessions_open += atomic_load(&c->sessions_open);
        t->msg_copies += atomic_load(&c->msg_copies);
        t->dsn_waiting += atomic_load(&c->dsn_waiting);
        t->leased += atomic_load(&c->leased);
        t->inflight += atomic_load(&c->inflight);
        t->conns += atomic_load(&c->conns);
        t->txns += atomic_load(&c->txns);
        t->dsns += atomic_load(&c->dsns);
        t->commit_errors += atomic_load(&c->commit_errors);
        t->uncommitted += atomic_load(&c->uncommitted);
    }
}

/* met_rates_fn: each shaping policy's current and configured message rate. */
static size_t engine_shaper_rates(void *ctx, struct met_rate *out, size_t max)
{
    struct vl_shaper *sh = ctx;
    const struct vl_shaping *s = vl_shaper_table(sh);
    size_t n = 0;
    for (unsigned p = 0; s && p < s->policy_count && n < max; p++, n++) {
        const struct vl_shaping_policy *c = vl_shaper_conf(sh, (int)p);
        snprintf(out[n].policy, sizeof out[n].policy, "%s", c->name);
        out[n].rate = vl_shaper_rate(sh, (int)p);
        out[n].limit = c->msgs_per_s;
    }
    return n;
}

static double engine_elapsed(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

int vl_engine_run(const struct vl_config *cfg, struct vl_queue *q, atomic_bool *stop,
                  vl_engine_progress_fn *progress, void *ctx, unsigned interval_ms,
                  struct vl_engine_totals *out)
{
    if (out)                         /* callers print these even when we fail early */
        memset(out, 0, sizeof *out);
    unsigned n = vl_queue_nshards(q);
    struct engine_shard *es = calloc(n, sizeof *es);
    if (!es)
        return -ENOMEM;
    int dlog_fd = -1;
    int rc = vl_dlog_open(cfg->log_path, &dlog_fd);
    if (rc < 0) {
        fprintf(stderr, "volley: --log %s: %s\n", cfg->log_path, vl_strerror(rc));
        free(es);
        return rc;
    }
    struct vl_shaper *shaper = NULL;       /* shared by the shards: one budget per policy */
    rc = vl_shaper_create(&shaper, cfg->shaping, dlog_fd);
    if (rc < 0) {
        if (dlog_fd > 2)
            close(dlog_fd);
        free(es);
        return rc;
    }
    if (met_init(n) < 0) {         /* no-op when already made (volley run, before --http) */
        vl_shaper_destroy(shaper);
        if (dlog_fd > 2)
            close(dlog_fd);
        free(es);
        return -ENOMEM;
    }
    static struct engine eng;      /* live reload state (one engine per process) */
    struct shard_live *live0 = calloc(1, sizeof *live0);
    if (!live0) {
        vl_shaper_destroy(shaper);
        if (dlog_fd > 2)
            close(dlog_fd);
        free(es);
        return -ENOMEM;
    }
    live0->cfg = cfg;
    struct warmup_store *warm = NULL;      /* egress warm-up counts across restarts */
    rc = warmup_store_open(cfg->data_dir, cfg->shaping, &warm);
    if (rc == 0)
        rc = warmup_store_load(warm, shaper);
    if (rc < 0) {
        fprintf(stderr, "volley: %s/shaping (warm-up counts): %s\n", cfg->data_dir,
                vl_strerror(rc));
        warmup_store_close(warm);
        free(live0);
        vl_shaper_destroy(shaper);
        if (dlog_fd > 2)
            close(dlog_fd);
        free(es);
        return rc;
    }
    eng = (struct engine){ .es = es, .shaper = shaper, .live = live0 };
    met_rates_source(engine_shaper_rates, shaper);   /* GET /metrics: rates by policy */
    struct deliver_sup sup;        /* the suppression list, shared by the shards */
    deliver_sup_init(&sup, cfg->data_dir);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned started = 0;
    for (unsigned i = 0; i < n; i++) {
        struct shard *sh = &es[i].sh;
        sh->idx = i;
        sh->cfg_own = *cfg;            /* its live settings follow reloads */
        sh->cfg = &sh->cfg_own;
        sh->cfg_base = cfg;
        sh->live = &eng.live;
        sh->qs = vl_queue_shard(q, i);
        sh->ctr = &es[i].ctr;
        es[i].ctr.met = met_shard(i);
        sh->sup = &sup;
        sh->shaper = shaper;
        sh->stop = stop;
        vl_dlog_init(&sh->dlog, dlog_fd);
        shard_client_conf(&sh->client_conf, cfg);
        rc = pthread_create(&es[i].thread, NULL, engine_shard_main, &es[i]);
        if (rc != 0) {
            atomic_store(stop, true);
            rc = -rc;
            break;
        }
        started++;
    }
    eng.started = started;
    engine_running = &eng;
    unsigned waited_ms = 0, saved_ms = 0;
    for (;;) {
        unsigned done = 0;
        for (unsigned i = 0; i < started; i++)
            done += atomic_load(&es[i].done) ? 1u : 0u;
        if (done == started)
            break;
        usleep(20000);
        waited_ms += 20;
        if (eng.retired)
            engine_reap(&eng, false);
        if (warm && (saved_ms += 20) >= 1000) {
            saved_ms = 0;
            warmup_store_save(warm, shaper);
        }
        if (progress && interval_ms && waited_ms >= interval_ms) {
            waited_ms = 0;
            struct vl_engine_totals t;
            engine_totals(es, started, &t);
            progress(&t, engine_elapsed(&t0), ctx);
        }
    }
    int first_err = rc;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(es[i].thread, NULL);
        if (es[i].rc < 0 && first_err == 0)
            first_err = es[i].rc;
    }
    if (out)
        engine_totals(es, started, out);
    engine_running = NULL;
    warmup_store_save(warm, shaper);       /* after every shard joined */
    warmup_store_close(warm);
    engine_reap(&eng, true);
    free(eng.live);
    if (eng.live_cfg && eng.cfg_free)
        eng.cfg_free(eng.live_cfg);
    met_rates_source(NULL, NULL);          /* waits for a render using it */
    vl_shaper_destroy(shaper);
    if (dlog_fd > 2)
        close(dlog_fd);
    deliver_sup_fini(&sup);
    free(es);
    return first_err;
}
