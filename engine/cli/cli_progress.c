/*
 * cli_progress.c - progress line, summary and stop signals for run/send.
 */
#include "cli_progress.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static atomic_bool *cli_stop_flag;

static void cli_on_signal(int sig)
{
    if (atomic_exchange(cli_stop_flag, true)) {
        signal(sig, SIG_DFL);      /* a second signal: stop now */
        raise(sig);
    }
}

void cli_install_stop_signals(atomic_bool *flag)
{
    cli_stop_flag = flag;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cli_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void cli_progress_init(struct cli_progress *p, FILE *out, bool quiet, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->summary = stdout;
    p->tty = isatty(fileno(out));
    p->quiet = quiet;
    p->total = total;
}

void cli_progress_cb(const struct vl_engine_totals *t, double elapsed_s, void *ctx)
{
    struct cli_progress *p = ctx;
    if (p->quiet || (!p->tty && elapsed_s - p->last_s < 5.0))
        return;
    p->last_s = elapsed_s;
    uint64_t done = t->delivered + t->bounced + t->expired;
    double rate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
    char eta[32] = "-";
    if (p->total && rate > 0 && done + t->deferred < p->total)
        snprintf(eta, sizeof eta, "%.0fs",
                 (double)(p->total - done - t->deferred) / rate);
    fprintf(p->out, "%sdelivered %llu  deferred %llu  bounced %llu  in flight %llu  "
            "%.0f msg/s  elapsed %.1fs  ETA %s%s",
            p->tty ? "\r\033[K" : "", (unsigned long long)t->delivered,
            (unsigned long long)t->deferred, (unsigned long long)(t->bounced + t->expired),
            (unsigned long long)t->inflight, rate, elapsed_s, eta, p->tty ? "" : "\n");
    fflush(p->out);
}

void cli_progress_summary(struct cli_progress *p, const struct vl_engine_totals *t,
                          double elapsed_s)
{
    if (p->tty && !p->quiet) {
        fputs("\r\033[K", p->out);
        fflush(p->out);
    }
    uint64_t done = t->delivered + t->bounced + t->expired;
    fprintf(p->summary,
            "summary: delivered %llu, deferred %llu, bounced %llu, expired %llu, "
            "ambiguous %llu, dsns %llu | %llu connections, %llu transactions | "
            "%.2fs, %.0f msg/s\n",
            (unsigned long long)t->delivered, (unsigned long long)t->deferred,
            (unsigned long long)t->bounced, (unsigned long long)t->expired,
            (unsigned long long)t->ambiguous, (unsigned long long)t->dsns,
            (unsigned long long)t->conns, (unsigned long long)t->txns, elapsed_s,
            elapsed_s > 0 ? (double)done / elapsed_s : 0.0);
    if (t->commit_errors)
        fprintf(p->summary, "warning: %llu queue commits failed: those recipients stay queued\n",
                (unsigned long long)t->commit_errors);
    fflush(p->summary);
}
