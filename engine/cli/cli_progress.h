/*
 * cli_progress.h - the progress line, stop signals and summary of `volley
 * run` and `volley send`: a live line on a terminal, a plain status line
 * every few seconds otherwise, and one final summary that counts each
 * recipient once in its current state, says why recipients are still queued
 * and when they are retried, and picks the exit code (cli.h).
 */
#ifndef VOLLEY_CLI_PROGRESS_H
#define VOLLEY_CLI_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "volley/engine.h"
#include "volley/queue.h"

struct cli_progress {
    const char *cmd;             /* "run" or "send", for messages */
    FILE *out;
    FILE *summary;               /* the summary: stdout, or stderr when --log - uses stdout */
    bool tty;
    bool quiet;
    uint64_t total;              /* recipients expected (send), 0 = unknown */
    double last_s;               /* plain mode: last line printed at */
    bool stop_told;              /* the first stop signal was explained */
};

void cli_progress_init(struct cli_progress *p, const char *cmd, FILE *out, bool quiet,
                       uint64_t total);
/** Progress (the engine's callback, main thread). Also explains a first stop
 *  signal, and on a second one prints the summary and exits at once
 *  (128 + signal). */
vl_engine_progress_fn cli_progress_cb;

/** What is still queued after a run: counts by state, the top reasons of the
 *  deferred recipients, the next retry time. */
struct cli_leftover {
    uint64_t ready, deferred;
    uint64_t next_ms;            /* earliest next attempt of a deferred recipient, 0 = none */
    uint64_t sampled;            /* deferred recipients whose reason was read */
    unsigned nreasons;
    struct { char text[160]; uint64_t n; } reason[3];   /* most first */
};
/** Fill @p lo from the queue (bounded scan). @return 0 or an error. */
int cli_leftover_scan(struct vl_queue *q, struct cli_leftover *lo);

/** Print the summary (totals + leftovers; @p lo may be NULL when the queue
 *  could not be read) and @return the exit code for a run that ended with
 *  @p engine_rc (see cli.h): 1 engine failure / uncommitted, 128 + signal if
 *  a stop signal ended a send or a run --until-empty, 3 if recipients are
 *  still queued after a send or a run --until-empty, else 0. */
int cli_progress_finish(struct cli_progress *p, const struct vl_engine_totals *t,
                        const struct cli_leftover *lo, double elapsed_s, bool until_empty,
                        int engine_rc);

/** SIGTERM/SIGINT set *@p flag; a second one makes the next progress call
 *  print the summary and exit 128 + signal; a third exits at once. */
void cli_install_stop_signals(atomic_bool *flag);
/** The first stop signal received (0 = none). */
int cli_stop_signal(void);

#endif
