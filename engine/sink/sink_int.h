/*
 * sink_int.h - internal to the sink (sink.c: connections and reactor threads;
 * sink_run.c: listeners, stats, signals, sink_run()). A thread's counters are
 * written only by that thread (relaxed atomic stores) and read by the stats
 * printer with relaxed loads.
 */
#ifndef VOLLEY_SINK_INT_H
#define VOLLEY_SINK_INT_H

#include <pthread.h>
#include <stdint.h>

#include "rx.h"
#include "sink.h"

#define SINK_CODES            600u

#define STAT_ADD(t, f, v) __atomic_store_n(&(t)->stats.f, (t)->stats.f + (v), __ATOMIC_RELAXED)
#define STAT_GET(t, f) __atomic_load_n(&(t)->stats.f, __ATOMIC_RELAXED)

struct sink_stats {
    uint64_t connections, connections_closed, connections_refused;
    uint64_t transactions, rcpts, bytes, messages_rejected;
    uint64_t commands, reads, pipelined_reads, max_cmds_per_read;
    uint64_t faults_reply, faults_delay, faults_disconnect;
    uint64_t saved, save_errors, timeouts, tls_sessions;
    uint64_t tls_broken;                        /* --tls-break: handshakes failed on purpose */
    uint64_t replies[SINK_CODES];
};

struct sink_shared {
    const struct sink_conf *conf;
    struct sink_model *model;                   /* --model: shared by the threads (mutex) */
    uint64_t rule_seen[SINK_RULES_MAX];         /* atomics: every/nth count across threads */
    pthread_barrier_t started;
};

struct sink_conn;
struct tls_ctx;

struct sink_thread {
    struct sink_shared *sh;
    uint32_t idx;
    pthread_t tid;
    struct rx *rx;
    struct tls_ctx *tls_ctx;                    /* --tls-cert given: one per thread */
    int rc;
    int lfd[SINK_LISTEN_MAX];
    struct sink_conn *conns;
    uint32_t *free_conns, free_count;
    uint64_t rng, conn_seq;
    struct sink_stats stats;
};

/** A reactor thread: set up (ring, pool, listeners, TLS context), meet the
 *  caller at sh->started, serve until woken. Sets t->rc. */
void *sink_thread_main(void *arg);

#endif
