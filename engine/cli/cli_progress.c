/*
 * cli_progress.c - progress line, stop signals and summary for run/send
 * (see cli_progress.h; the leftover scan is in cli_leftover.c).
 */
#include "cli_progress.h"

#include "cli.h"

#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_bool *cli_stop_flag;
static volatile sig_atomic_t cli_stop_sig;     /* the first stop signal */
static volatile sig_atomic_t cli_stop_count;   /* stop signals received */

static void cli_on_signal(int sig)
{
    if (!cli_stop_count)
        cli_stop_sig = sig;
    cli_stop_count++;
    atomic_store(cli_stop_flag, true);
    if (cli_stop_count >= 3) {     /* a third: the summary did not come, stop now */
        signal(sig, SIG_DFL);
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

int cli_stop_signal(void)
{
    return cli_stop_sig;
}

static const char *cli_sig_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}

void cli_progress_init(struct cli_progress *p, const char *cmd, FILE *out, bool quiet,
                       uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->out = out;
    p->summary = stdout;
    p->tty = isatty(fileno(out));
    p->quiet = quiet;
    p->total = total;
}

static void cli_progress_clear(struct cli_progress *p)
{
    if (p->tty && !p->quiet) {
        fputs("\r\033[K", p->out);
        fflush(p->out);
    }
}

static void cli_summary_line(struct cli_progress *p, const struct vl_engine_totals *t,
                             const struct cli_leftover *lo, double elapsed_s)
{
    fprintf(p->summary,
            "summary: delivered %llu, deferred %llu, bounced %llu, expired %llu, "
            "ambiguous %llu, dsns %llu | %llu connections, %llu transactions | "
            "%.2fs, %.0f delivered rcpt/s\n",
            (unsigned long long)t->delivered,
            (unsigned long long)(lo ? lo->deferred : t->deferred),
            (unsigned long long)t->bounced, (unsigned long long)t->expired,
            (unsigned long long)t->ambiguous, (unsigned long long)t->dsns,
            (unsigned long long)t->conns, (unsigned long long)t->txns, elapsed_s,
            elapsed_s > 0 ? (double)t->delivered / elapsed_s : 0.0);
    fprintf(p->summary,
            "  recipients (each once, in its current state): %llu delivered, %llu bounced, "
            "%llu expired by this run; ",
            (unsigned long long)t->delivered, (unsigned long long)t->bounced,
            (unsigned long long)t->expired);
    if (lo)
        fprintf(p->summary, "%llu deferred and %llu ready still queued",
                (unsigned long long)lo->deferred, (unsigned long long)lo->ready);
    else
        fprintf(p->summary, "still queued: unknown (%llu in transactions not recorded)",
                (unsigned long long)t->inflight);
    fprintf(p->summary, " | %llu deferral attempts\n", (unsigned long long)t->deferred);
    fprintf(p->summary, "  messages: %llu copies accepted (transactions that delivered to at "
            "least one recipient), %.0f delivered msg/s\n", (unsigned long long)t->msg_copies,
            elapsed_s > 0 ? (double)t->msg_copies / elapsed_s : 0.0);
    fprintf(p->summary,
            "  DSNs (own counters, not in the above): %llu queued, %llu delivered, "
            "%llu undeliverable, %llu deferral attempts\n",
            (unsigned long long)t->dsns, (unsigned long long)t->dsn_delivered,
            (unsigned long long)t->dsn_failed, (unsigned long long)t->dsn_deferred);
}

static void cli_progress_hard_exit(struct cli_progress *p, const struct vl_engine_totals *t,
                                   double elapsed_s)
{
    int sig = cli_stop_sig ? cli_stop_sig : SIGINT;
    cli_progress_clear(p);
    cli_summary_line(p, t, NULL, elapsed_s);
    fflush(p->summary);
    fprintf(stderr, "volley %s: %s again: exiting now (exit %d) without waiting: the outcomes "
            "of %llu leased recipients were not recorded; they stay queued and the next run "
            "sends them again (the remote may already have some)\n", p->cmd, cli_sig_name(sig),
            128 + sig, (unsigned long long)t->inflight);
    fflush(stderr);
    _exit(128 + sig);
}

void cli_progress_cb(const struct vl_engine_totals *t, double elapsed_s, void *ctx)
{
    struct cli_progress *p = ctx;
    if (cli_stop_count >= 2)
        cli_progress_hard_exit(p, t, elapsed_s);
    if (cli_stop_count == 1 && !p->stop_told) {
        p->stop_told = true;
        cli_progress_clear(p);
        fprintf(stderr, "volley %s: %s: stopping: no new transactions; waiting for the %llu "
                "SMTP connection%s in progress to finish their transactions and for their "
                "outcomes to be recorded (at most 60s). Recipients not attempted stay queued. "
                "%s again to exit at once (exit %d)\n", p->cmd, cli_sig_name(cli_stop_sig),
                (unsigned long long)t->sessions_open, t->sessions_open == 1 ? "" : "s",
                cli_stop_sig == SIGINT ? "Ctrl-C" : "The signal", 128 + cli_stop_sig);
        fflush(stderr);
    }
    if (p->quiet || (!p->tty && elapsed_s - p->last_s < 5.0))
        return;
    p->last_s = elapsed_s;
    uint64_t done = t->delivered + t->bounced + t->expired;
    double rate = elapsed_s > 0 ? (double)t->delivered / elapsed_s : 0;
    char eta[32] = "-";
    double drate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
    if (p->total && drate > 0 && done < p->total)
        snprintf(eta, sizeof eta, "%.0fs", (double)(p->total - done) / drate);
    fprintf(p->out, "%sdelivered %llu  bounced %llu  expired %llu  deferral attempts %llu  "
            "leased %llu on %llu connections  DSNs %llu  %.0f rcpt/s  elapsed %.1fs  ETA %s%s",
            p->tty ? "\r\033[K" : "", (unsigned long long)t->delivered,
            (unsigned long long)t->bounced, (unsigned long long)t->expired,
            (unsigned long long)t->deferred, (unsigned long long)t->inflight,
            (unsigned long long)t->sessions_open, (unsigned long long)t->dsns, rate, elapsed_s,
            eta, p->tty ? "" : "\n");
    fflush(p->out);
}

static void cli_when(uint64_t at_ms, char *buf, size_t cap)
{
    time_t s = (time_t)(at_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char abs[40];
    strftime(abs, sizeof abs, "%Y-%m-%d %H:%M:%S UTC", &tm);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t in = (int64_t)(at_ms / 1000) - (int64_t)now.tv_sec;
    if (in <= 0)
        snprintf(buf, cap, "%s (due now)", abs);
    else if (in < 3600)
        snprintf(buf, cap, "%s (in %lldm%02llds)", abs, (long long)(in / 60),
                 (long long)(in % 60));
    else
        snprintf(buf, cap, "%s (in %lldh%02lldm)", abs, (long long)(in / 3600),
                 (long long)(in % 3600 / 60));
}

int cli_progress_finish(struct cli_progress *p, const struct vl_engine_totals *t,
                        const struct cli_leftover *lo, double elapsed_s, bool until_empty,
                        int engine_rc)
{
    cli_progress_clear(p);
    cli_summary_line(p, t, lo, elapsed_s);
    if (t->commit_errors)
        fprintf(p->summary, "warning: %llu queue commits failed: those recipients stay queued\n",
                (unsigned long long)t->commit_errors);
    int sig = cli_stop_sig;
    bool queued = lo && lo->ready + lo->deferred > 0;
    if (queued) {
        fprintf(p->summary, "not delivered: %llu recipient%s still queued (%llu deferred, "
                "%llu ready)", (unsigned long long)(lo->ready + lo->deferred),
                lo->ready + lo->deferred == 1 ? "" : "s", (unsigned long long)lo->deferred,
                (unsigned long long)lo->ready);
        if (sig && lo->ready)
            fprintf(p->summary, "; %s stopped the run before the ready ones were tried",
                    cli_sig_name(sig));
        fputc('\n', p->summary);
        if (lo->nreasons) {
            fprintf(p->summary, "  why (last reply of the deferred%s):\n",
                    lo->sampled < lo->deferred ? ", of those read" : "");
            for (unsigned i = 0; i < lo->nreasons; i++)
                fprintf(p->summary, "    %llu x %s\n", (unsigned long long)lo->reason[i].n,
                        lo->reason[i].text);
        }
        if (lo->next_ms) {
            char when[96];
            cli_when(lo->next_ms, when, sizeof when);
            fprintf(p->summary, "  next retry: %s; `volley run` (or `volley queue retry`) "
                    "delivers them\n", when);
        } else {
            fprintf(p->summary, "  `volley run` delivers them\n");
        }
    }
    fflush(p->summary);
    if (engine_rc < 0 || t->uncommitted)
        return VL_EXIT_FAIL;
    if (!until_empty)            /* the service: a stop signal is its normal end */
        return VL_EXIT_OK;
    if (sig) {
        fprintf(stderr, "volley %s: interrupted by %s (exit %d)\n", p->cmd, cli_sig_name(sig),
                128 + sig);
        return 128 + sig;
    }
    return queued ? VL_EXIT_QUEUED : VL_EXIT_OK;
}
