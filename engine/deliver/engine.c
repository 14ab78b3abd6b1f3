/*
 * engine.c - start the shard threads, report progress, join (see engine.h).
 * The main thread only reads the shards' atomic counters; it shares nothing
 * else with them.
 */
#include "volley/engine.h"

#include "metrics.h"
#include "shard.h"
#include "supp.h"
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

static void engine_client_conf(struct shard *sh)
{
    const struct vl_config *cfg = sh->cfg;
    struct smtp_client_conf *cc = &sh->client_conf;
    memset(cc, 0, sizeof *cc);
    cc->helo_name = cfg->ehlo_name;
    cc->helo_name_len = strlen(cfg->ehlo_name);
    cc->rcpts_per_txn_max = cfg->rcpts_per_txn_max;
    cc->starttls = cfg->tls_level != VL_TLS_NONE;    /* may: plaintext if refused or broken */
    cc->tls_required = cfg->tls_level == VL_TLS_ENCRYPT || cfg->tls_level == VL_TLS_VERIFY;
#define X(name, ms, expect)                                                        \
    {                                                                              \
        double v = (double)(ms) * cfg->timeout_scale;                              \
        cc->timeout_ms[SMTP_STATE_##name] = (ms) == 0 ? 0 : (v < 1.0 ? 1u : (uint32_t)v); \
    }
    SMTP_STATES(X)
#undef X
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
    met_rates_source(engine_shaper_rates, shaper);   /* GET /metrics: rates by policy */
    struct deliver_sup sup;        /* the suppression list, shared by the shards */
    deliver_sup_init(&sup, cfg->data_dir);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned started = 0;
    for (unsigned i = 0; i < n; i++) {
        struct shard *sh = &es[i].sh;
        sh->idx = i;
        sh->cfg = cfg;
        sh->qs = vl_queue_shard(q, i);
        sh->ctr = &es[i].ctr;
        es[i].ctr.met = met_shard(i);
        sh->sup = &sup;
        sh->shaper = shaper;
        sh->stop = stop;
        vl_dlog_init(&sh->dlog, dlog_fd);
        engine_client_conf(sh);
        rc = pthread_create(&es[i].thread, NULL, engine_shard_main, &es[i]);
        if (rc != 0) {
            atomic_store(stop, true);
            rc = -rc;
            break;
        }
        started++;
    }
    unsigned waited_ms = 0;
    for (;;) {
        unsigned done = 0;
        for (unsigned i = 0; i < started; i++)
            done += atomic_load(&es[i].done) ? 1u : 0u;
        if (done == started)
            break;
        usleep(20000);
        waited_ms += 20;
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
    met_rates_source(NULL, NULL);          /* waits for a render using it */
    vl_shaper_destroy(shaper);             /* after every shard joined */
    if (dlog_fd > 2)
        close(dlog_fd);
    deliver_sup_fini(&sup);
    free(es);
    return first_err;
}
