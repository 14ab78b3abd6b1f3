/*
 * inject.c - the intake thread (see inject.h): bind the listeners on the
 * caller's thread (errors reported at once), then a thread with its own
 * reactor accepts, runs the sessions (inject_session.c) and answers the
 * final dots as the commit workers (inject_commit.c) finish them.
 */
#include "inject_int.h"

#include "log.h"
#include "tls_stream.h"
#include "volley/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define INJ_LISTEN_BACKLOG 1024

static int listen_one(const struct vl_hostport *hp)
{
    const struct sockaddr *sa = &hp->addr.sa;
    socklen_t len = sa->sa_family == AF_INET ? sizeof hp->addr.in4 : sizeof hp->addr.in6;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, sa, len) < 0 || listen(fd, INJ_LISTEN_BACKLOG) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* "volley run: listening on IP:PORT" (stderr): port 0 gets its real port,
 * which the tests read back. */
static void listen_report(int fd, bool tls)
{
    union vl_sockaddr a;
    socklen_t len = sizeof a;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (getsockname(fd, &a.sa, &len) < 0)
        return;
    bool v6 = a.sa.sa_family == AF_INET6;
    inet_ntop(a.sa.sa_family, v6 ? (const void *)&a.in6.sin6_addr : (const void *)&a.in4.sin_addr,
              ip, sizeof ip);
    fprintf(stderr, "volley run: listening on %s%s%s:%u%s\n", v6 ? "[" : "", ip, v6 ? "]" : "",
            (unsigned)ntohs(v6 ? a.in6.sin6_port : a.in4.sin_port), tls ? " (TLS)" : "");
}

static void listener_cb(struct rx *rx, const struct rx_event *ev)
{
    struct inj_listener *l = ev->user;
    struct inject *in = l->in;
    if (ev->op == RX_OP_CLOSE)
        return;
    vl_assert(ev->op == RX_OP_ACCEPT);
    if (ev->res >= 0)
        inj_sess_start(in, ev->res, l->tls);
    if (!ev->more && !atomic_load(&in->quit) && rx_accept_multishot(rx, ev->h) < 0)
        vl_log(VL_LOG_ERROR, "evt=intake_accept_stopped");
}

/* Woken by a commit worker (a job is done) or by inject_stop(). */
static void intake_wake(struct rx *rx, const struct rx_event *ev)
{
    struct inject *in = ev->user;
    for (struct inj_job *j = inj_commit_take_done(in), *next; j; j = next) {
        next = j->next;
        inj_sess_job_done(j->s);
    }
    if (atomic_load(&in->quit)) {
        rx_stop(rx);
        in->rx_stopped = true;
    }
}

static int intake_setup(struct inject *in)
{
    struct rx_conf rc = { .handles_max = INJ_SESSIONS_MAX + VL_LISTEN_MAX,
                          .timers_max = INJ_SESSIONS_MAX, .sq_entries = 1024,
                          .wake_cb = intake_wake, .wake_user = in };
    int err = rx_create(&in->rx, &rc);
    if (err < 0)
        return err;
    for (unsigned i = 0; i < in->lfd_n; i++) {
        rx_handle_t h;
        in->lst[i] = (struct inj_listener){ in, in->cfg->listen_tls[i] };
        err = rx_open(in->rx, in->lfd[i], listener_cb, &in->lst[i], &h);
        if (err < 0)
            return err;
        in->lfd[i] = -1;                        /* the reactor owns it now */
        err = rx_accept_multishot(in->rx, h);
        if (err < 0)
            return err;
    }
    return 0;
}

static void *intake_main(void *arg)
{
    struct inject *in = arg;
    int rc = intake_setup(in);
    pthread_mutex_lock(&in->setup_mu);
    in->setup_rc = rc;
    in->setup_done = true;
    pthread_cond_signal(&in->setup_cv);
    pthread_mutex_unlock(&in->setup_mu);
    if (rc == 0) {
        /* rx_run(), with the turn's submitted jobs handed over after each
         * turn: one lock and wake-up per turn, bigger worker batches */
        while (!in->rx_stopped && (rc = rx_run_once(in->rx, -1)) >= 0)
            inj_commit_kick(in);
        inj_commit_kick(in);
        rc = rc < 0 ? rc : 0;
        if (rc < 0)
            vl_log(VL_LOG_ERROR, "evt=intake_reactor_failed err=\"%s\"", vl_strerror(rc));
    }
    /* Stopping: the workers finish what they hold, then the reactor goes (it
     * closes every connection's fd: open transactions were never queued). */
    inj_commit_fini(in);
    if (in->rx)
        rx_destroy(in->rx);
    in->rx = NULL;
    return NULL;
}

int inject_start(const struct vl_config *cfg, const struct inject_opts *o, struct vl_queue *q,
                 struct inject **out)
{
    struct inject *in = calloc(1, sizeof *in);
    if (!in)
        return -ENOMEM;
    in->cfg = cfg;
    in->cmd_ms = o && o->cmd_ms_timeout ? o->cmd_ms_timeout : cfg->intake_ms_timeout;
    in->data_ms = o && o->data_ms_timeout ? o->data_ms_timeout : cfg->intake_ms_timeout;
    in->mem_max = o && o->mem_max ? o->mem_max : INJECT_MEM_MAX_DEFAULT;
    in->q = q;
    in->sconf = (struct smtp_server_conf){
        .hostname = cfg->ehlo_name, .size_max = cfg->msg_bytes_max,
        .rcpts_max = cfg->rcpts_per_msg_max, .pipelining = true, .eightbitmime = true,
        .enhancedstatuscodes = true, .smtputf8 = true, .chunking = true,
    };
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cv, NULL);
    pthread_mutex_init(&in->setup_mu, NULL);
    pthread_cond_init(&in->setup_cv, NULL);
    for (unsigned i = 0; i < VL_LISTEN_MAX; i++)
        in->lfd[i] = -1;
    int rc = 0;
    in->sess = calloc(INJ_SESSIONS_MAX, sizeof *in->sess);
    in->free_idx = calloc(INJ_SESSIONS_MAX, sizeof *in->free_idx);
    if (!in->sess || !in->free_idx) {
        rc = -ENOMEM;
        goto fail;
    }
    if (cfg->tls_cert) {
        char why[400];
        rc = tls_ctx_server_create(&in->tls_ctx, cfg->tls_cert,
                                   cfg->tls_key ? cfg->tls_key : cfg->tls_cert, why, sizeof why);
        if (rc < 0) {
            fprintf(stderr, "volley run: --tls-cert: %s\n", why);
            goto fail;
        }
        in->sconf.starttls = true;
    }
    if (cfg->auth_file) {
        char why[600];
        if (inj_auth_load(cfg->auth_file, &in->auth, why, sizeof why) < 0) {
            fprintf(stderr, "volley run: %s\n", why);
            rc = VL_E_INVALID;
            goto fail;
        }
        in->sconf.auth = true;
    }
    inj_suppress_open(in);        /* issue 12: suppressed recipients refused at RCPT */
    inj_hooks_init(in);           /* unsub, DKIM, then cfg->intake_hooks (inject_hooks.c) */
    for (uint32_t i = 0; i < INJ_SESSIONS_MAX; i++)
        in->free_idx[i] = INJ_SESSIONS_MAX - 1 - i;
    in->free_n = INJ_SESSIONS_MAX;
    for (unsigned i = 0; i < cfg->listen_count; i++) {
        const struct vl_hostport *hp = &cfg->listens[i];
        int fd = listen_one(hp);
        if (fd < 0) {
            fprintf(stderr, "volley run: --listen %s%s%s:%u: %s\n",
                    hp->addr.sa.sa_family == AF_INET6 ? "[" : "", hp->host,
                    hp->addr.sa.sa_family == AF_INET6 ? "]" : "", hp->port, vl_strerror(fd));
            rc = fd;
            goto fail;
        }
        in->lfd[in->lfd_n++] = fd;
        listen_report(fd, cfg->listen_tls[i]);
    }
    rc = inj_commit_init(in);
    if (rc < 0)
        goto fail;
    rc = -pthread_create(&in->thread, NULL, intake_main, in);
    if (rc < 0)
        goto fail;
    in->thread_started = true;
    pthread_mutex_lock(&in->setup_mu);
    while (!in->setup_done)
        pthread_cond_wait(&in->setup_cv, &in->setup_mu);
    rc = in->setup_rc;
    pthread_mutex_unlock(&in->setup_mu);
    if (rc < 0) {
        fprintf(stderr, "volley run: --listen: the intake could not start: %s\n",
                vl_strerror(rc));
        goto fail;
    }
    *out = in;
    return 0;
fail:
    inject_stop(in);
    return rc;
}

void inject_stop(struct inject *in)
{
    if (!in)
        return;
    if (in->thread_started) {
        struct vl_queue_stats st;
        atomic_store(&in->quit, true);
        pthread_mutex_lock(&in->setup_mu);
        bool up = in->setup_rc == 0;
        pthread_mutex_unlock(&in->setup_mu);
        if (up)
            rx_wake(in->rx);
        pthread_join(in->thread, NULL);
        if (up && vl_queue_stats(in->q, -1, &st) == 0)   /* group commit, in numbers */
            vl_log_at(VL_LOG_INFO, "evt=intake_done accepted=%llu refused=%llu "
                      "queue_commits=%llu queue_writes=%llu",
                      (unsigned long long)in->accepted, (unsigned long long)in->refused,
                      (unsigned long long)st.commits, (unsigned long long)st.requests);
    } else {
        inj_commit_fini(in);
    }
    for (unsigned i = 0; i < in->lfd_n; i++)
        if (in->lfd[i] >= 0)
            close(in->lfd[i]);
    for (uint32_t i = 0; in->sess && i < INJ_SESSIONS_MAX; i++) {
        free(in->sess[i].rcpts);
        free(in->sess[i].body);
        tls_stream_destroy(in->sess[i].tls);
    }
    tls_ctx_destroy(in->tls_ctx);
    inj_auth_free(in->auth);
    inj_suppress_close(in);
    free(in->sess);
    free(in->free_idx);
    pthread_cond_destroy(&in->setup_cv);
    pthread_mutex_destroy(&in->setup_mu);
    pthread_cond_destroy(&in->cv);
    pthread_mutex_destroy(&in->mu);
    free(in);
}
