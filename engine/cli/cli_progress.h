/*
 * cli_progress.h - the progress line and summary of `volley run` and
 * `volley send`: a live line on a terminal, a plain status line every few
 * seconds otherwise, and one final summary.
 */
#ifndef VOLLEY_CLI_PROGRESS_H
#define VOLLEY_CLI_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "volley/engine.h"

struct cli_progress {
    FILE *out;
    FILE *summary;               /* the summary: stdout, or stderr when --log - uses stdout */
    bool tty;
    bool quiet;
    uint64_t total;              /* recipients expected (send), 0 = unknown */
    double last_s;               /* plain mode: last line printed at */
};

void cli_progress_init(struct cli_progress *p, FILE *out, bool quiet, uint64_t total);
vl_engine_progress_fn cli_progress_cb;
void cli_progress_summary(struct cli_progress *p, const struct vl_engine_totals *t,
                          double elapsed_s);

/** SIGTERM/SIGINT set *@p flag (once; a second signal exits at once). */
void cli_install_stop_signals(atomic_bool *flag);

#endif
