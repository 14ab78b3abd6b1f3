/*
 * sink_run.c - `volley sink` process level: bind the listeners (once per
 * reactor thread, SO_REUSEPORT), start the threads of sink.c, wait for
 * signals, print stats (SIGUSR1, every --stats-every, at exit).
 * Invariants: listening sockets are handed to the threads before they start;
 * the stats printer only reads counters. Diagnostics: startup errors on
 * stderr; stats on stdout.
 */
#include "sink_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tls.h"
#include "volley/error.h"

#define SINK_LISTEN_BACKLOG   4096

/* ---- listeners, stats, signals -------------------------------------------- */

static void addr_format(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(buf, cap, "%s:%u", host, ntohs(a->sin_port));
    } else {
        const struct sockaddr_in6 *a = (const void *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(buf, cap, "[%s]:%u", host, ntohs(a->sin6_port));
    }
}

static int listen_one(struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)ss, len) < 0 || listen(fd, SINK_LISTEN_BACKLOG) < 0 ||
        getsockname(fd, (struct sockaddr *)ss, &len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* A port someone else listens on (a stale sink with SO_REUSEPORT would share
 * it silently): probe with a plain bind first. */
static int listen_probe(const struct sockaddr_storage *ss, socklen_t len)
{
    const struct sockaddr_in *a = (const void *)ss;
    if (a->sin_port == 0)                       /* same offset in sockaddr_in6 */
        return 0;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, rc = 0;
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)ss, len) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Bind every address once per thread; port 0 becomes the port of the first. */
static int listeners_bind(const struct sink_conf *cf, struct sink_thread *th)
{
    char name[80];
    for (uint32_t i = 0; i < cf->listen_count; i++) {
        struct sockaddr_storage ss = cf->listen[i];
        addr_format(&ss, name, sizeof name);
        int rc = listen_probe(&ss, cf->listen_len[i]);
        for (uint32_t k = 0; rc == 0 && k < cf->threads; k++) {
            int fd = listen_one(&ss, cf->listen_len[i]);
            if (fd < 0)
                rc = fd;
            else
                th[k].lfd[i] = fd;
        }
        if (rc < 0) {
            fprintf(stderr, "volley sink: cannot listen on %s: %s\n", name, vl_strerror(rc));
            return rc;
        }
        addr_format(&ss, name, sizeof name);
        printf("sink: listening on %s\n", name);
    }
    fflush(stdout);
    return 0;
}

static void stats_print(struct sink_thread *th, const struct sink_conf *cf, const char *why)
{
    struct sink_stats s = { 0 };
    for (uint32_t k = 0; k < cf->threads; k++) {
        const struct sink_thread *t = &th[k];
#define SUM(f) s.f += STAT_GET(t, f)
        SUM(connections); SUM(connections_closed); SUM(connections_refused);
        SUM(transactions); SUM(rcpts); SUM(bytes); SUM(messages_rejected); SUM(commands);
        SUM(reads); SUM(pipelined_reads); SUM(faults_reply); SUM(faults_delay);
        SUM(faults_disconnect); SUM(saved); SUM(save_errors); SUM(timeouts);
        SUM(tls_sessions); SUM(tls_broken);
#undef SUM
        uint64_t m = STAT_GET(t, max_cmds_per_read);
        s.max_cmds_per_read = m > s.max_cmds_per_read ? m : s.max_cmds_per_read;
        for (uint32_t c = 0; c < SINK_CODES; c++)
            s.replies[c] += STAT_GET(t, replies[c]);
    }
    const char *fmt = cf->json
        ? "{\"event\":\"stats\",\"why\":\"%s\",\"connections\":%llu,\"connections_open\":%llu,"
          "\"connections_refused\":%llu,\"transactions\":%llu,\"rcpts\":%llu,\"bytes\":%llu,"
          "\"messages_rejected\":%llu,\"commands\":%llu,\"reads\":%llu,\"pipelined_reads\":%llu,"
          "\"max_cmds_per_read\":%llu,\"saved\":%llu,\"save_errors\":%llu,\"timeouts\":%llu,"
          "\"tls_sessions\":%llu,\"tls_broken\":%llu,\"faults\":{\"reply\":%llu,\"delay\":%llu,\"disconnect\":%llu},"
          "\"replies\":{"
        : "sink: stats why=%s connections=%llu open=%llu refused=%llu transactions=%llu "
          "rcpts=%llu bytes=%llu rejected=%llu commands=%llu reads=%llu pipelined_reads=%llu "
          "max_cmds_per_read=%llu saved=%llu save_errors=%llu timeouts=%llu tls_sessions=%llu "
          "tls_broken=%llu "
          "faults_reply=%llu faults_delay=%llu faults_disconnect=%llu replies=";
    typedef unsigned long long ull;
    printf(fmt, why, (ull)s.connections, (ull)(s.connections - s.connections_closed),
           (ull)s.connections_refused, (ull)s.transactions, (ull)s.rcpts, (ull)s.bytes,
           (ull)s.messages_rejected, (ull)s.commands, (ull)s.reads, (ull)s.pipelined_reads,
           (ull)s.max_cmds_per_read, (ull)s.saved, (ull)s.save_errors, (ull)s.timeouts,
           (ull)s.tls_sessions, (ull)s.tls_broken, (ull)s.faults_reply, (ull)s.faults_delay,
           (ull)s.faults_disconnect);
    const char *sep = "";
    for (uint32_t c = 0; c < SINK_CODES; c++) {
        if (!s.replies[c])
            continue;
        printf(cf->json ? "%s\"%u\":%llu" : "%s%u:%llu", sep, c, (ull)s.replies[c]);
        sep = cf->json ? "," : ",";
    }
    struct sink_model *model = cf->threads ? th[0].sh->model : NULL;
    if (model) {                                /* per client address: the provider model */
        fputs(cf->json ? "},\"model\":{" : " model=", stdout);
        sink_model_print(model, stdout, cf->json);
    }
    printf(cf->json ? "}}\n" : "\n");
    fflush(stdout);
}

/* The calling thread: signals and periodic stats until SIGTERM/SIGINT. */
static void control_loop(struct sink_thread *th, const struct sink_conf *cf, const sigset_t *set)
{
    uint64_t next_ms = cf->stats_every_s ? vl_clock_mono_ms() + cf->stats_every_s * 1000ull : 0;
    for (;;) {
        struct timespec ts = { .tv_sec = 0, .tv_nsec = 200 * 1000000 };
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            return;
        if (sig == SIGUSR1)
            stats_print(th, cf, "sigusr1");
        for (uint32_t k = 0; k < cf->threads; k++)
            if (__atomic_load_n(&th[k].rc, __ATOMIC_RELAXED) < 0)
                return;                         /* a reactor failed: stop */
        if (next_ms && vl_clock_mono_ms() >= next_ms) {
            stats_print(th, cf, "interval");
            next_ms += cf->stats_every_s * 1000ull;
        }
    }
}

static void threads_free(struct sink_thread *th, uint32_t n, uint32_t listen_count)
{
    for (uint32_t k = 0; k < n; k++) {
        rx_destroy(th[k].rx);
        tls_ctx_destroy(th[k].tls_ctx);
        free(th[k].conns);
        free(th[k].free_conns);
        for (uint32_t i = 0; i < listen_count; i++)
            if (th[k].lfd[i] >= 0)
                close(th[k].lfd[i]);
    }
    free(th);
}

int sink_run(const struct sink_conf *cf)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);     /* inherited by the reactor threads */
    signal(SIGPIPE, SIG_IGN);
    struct sink_shared sh = { .conf = cf };
    if (cf->model_on && sink_model_create(&sh.model, &cf->model) < 0) {
        fprintf(stderr, "volley sink: out of memory for the model\n");
        return -ENOMEM;
    }
    struct sink_thread *th = calloc(cf->threads, sizeof *th);
    if (!th)
        return -ENOMEM;
    for (uint32_t k = 0; k < cf->threads; k++) {
        th[k] = (struct sink_thread){ .sh = &sh, .idx = k };
        for (uint32_t i = 0; i < SINK_LISTEN_MAX; i++)
            th[k].lfd[i] = -1;
    }
    uint64_t limit, need = (uint64_t)cf->threads * rx_nofile_need(cf->conns_max + cf->listen_count);
    int rc = rx_nofile_ensure(need, &limit);
    if (rc < 0)
        fprintf(stderr, "volley sink: RLIMIT_NOFILE is %llu; %u thread(s) x --max-conns %u need "
                "%llu: raise it (ulimit -n %llu) or lower --max-conns\n", (unsigned long long)limit,
                cf->threads, cf->conns_max, (unsigned long long)need, (unsigned long long)need);
    else
        rc = listeners_bind(cf, th);
    if (rc < 0) {
        threads_free(th, cf->threads, cf->listen_count);
        return rc;
    }
    pthread_barrier_init(&sh.started, NULL, cf->threads + 1);
    uint32_t started = 0;
    for (; started < cf->threads; started++)
        if (pthread_create(&th[started].tid, NULL, sink_thread_main, &th[started]) != 0)
            vl_fatal(1, "sink: cannot start thread %u", started);
    pthread_barrier_wait(&sh.started);
    for (uint32_t k = 0; k < cf->threads && rc == 0; k++)
        if (th[k].rc < 0) {
            rc = th[k].rc;
            fprintf(stderr, "volley sink: thread %u: reactor setup failed: %s%s\n", k,
                    vl_strerror(rc), rc == -EMFILE ? " (raise RLIMIT_NOFILE: ulimit -n)" : "");
        }
    if (rc == 0) {
        fprintf(stderr, "volley sink: %u thread(s), seed %llu\n", cf->threads,
                (unsigned long long)cf->seed);
        control_loop(th, cf, &set);
    }
    for (uint32_t k = 0; k < cf->threads; k++)
        if (th[k].rx && th[k].rc == 0)
            rx_wake(th[k].rx);
    for (uint32_t k = 0; k < cf->threads; k++)
        pthread_join(th[k].tid, NULL);
    if (rc == 0)
        stats_print(th, cf, "exit");
    for (uint32_t k = 0; k < cf->threads && rc == 0; k++)
        if (th[k].rc < 0)
            rc = th[k].rc;
    pthread_barrier_destroy(&sh.started);
    sink_model_destroy(sh.model);
    threads_free(th, cf->threads, cf->listen_count);
    return rc;
}
