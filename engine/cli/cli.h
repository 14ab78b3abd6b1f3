/*
 * cli.h - the volley subcommands. Each lives in engine/cli_<name>.c and is
 * called by main.c with argv[0] = the subcommand's name. Exit codes: 0 ok,
 * 1 runtime failure, 2 usage error (see DESIGN: CLI contract).
 *
 * main.c declares them weak, so a subcommand that is not built yet reports
 * "not implemented" instead of breaking the link.
 */
#ifndef VOLLEY_CLI_H
#define VOLLEY_CLI_H

#include <stdio.h>

#define VL_EXIT_OK      0
#define VL_EXIT_FAIL    1
#define VL_EXIT_USAGE   2

int cli_run_main(int argc, char **argv);
int cli_enqueue_main(int argc, char **argv);
/** `volley enqueue` for @p cmd ("enqueue", or "send" handing over its
 *  arguments): errors name @p cmd, the "queued ..." line goes to @p human. */
int cli_enqueue_run(int argc, char **argv, const char *cmd, FILE *human);
int cli_send_main(int argc, char **argv);
int cli_queue_main(int argc, char **argv);
int cli_sink_main(int argc, char **argv);
int cli_bench_main(int argc, char **argv);

#endif
