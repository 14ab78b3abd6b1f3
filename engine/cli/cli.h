/*
 * cli.h - the volley subcommands. Each lives in engine/cli_<name>.c and is
 * called by main.c with argv[0] = the subcommand's name. Exit codes (README
 * "Exit codes", and --help of run and send, which a test compares with real
 * runs): 0 ok, 1 runtime failure, 2 usage error, 3 (send, run --until-empty)
 * finished with recipients still queued, 128 + N stopped by signal N (130
 * SIGINT, 143 SIGTERM: send, run --until-empty; a second signal exits at
 * once with a summary).
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
#define VL_EXIT_QUEUED  3          /* done, but recipients are still queued (not delivered) */

/** The exit-code table of `run --help`, `send --help` (and README). */
#define CLI_EXIT_CODES_HELP                                                               \
    "exit codes:\n"                                                                       \
    "  0    done: every recipient delivered, or bounced/expired with a DSN queued\n"      \
    "       (`volley run` as a service: also when stopped by SIGTERM/SIGINT)\n"          \
    "  1    runtime failure (queue, commits given up, engine)\n"                          \
    "  2    usage error: bad option or input (send: nothing queued)\n"                    \
    "  3    done, but recipients are still queued (deferred, or left ready): the\n"      \
    "       summary gives the top reasons and the next retry\n"                          \
    "  130  send, or a run until empty, stopped by SIGINT (143: SIGTERM) after the\n"    \
    "       transactions in progress; a second signal exits at once (any command),\n"     \
    "       with the summary: outcomes not recorded then are sent again later\n"


int cli_run_main(int argc, char **argv);
int cli_enqueue_main(int argc, char **argv);
/** `volley enqueue` for @p cmd ("enqueue", or "send" handing over its
 *  arguments): errors name @p cmd, the "queued ..." line goes to @p human. */
int cli_enqueue_run(int argc, char **argv, const char *cmd, FILE *human);
int cli_send_main(int argc, char **argv);
int cli_queue_main(int argc, char **argv);
int cli_sink_main(int argc, char **argv);
int cli_bench_main(int argc, char **argv);
int cli_doctor_main(int argc, char **argv);
int cli_blast_main(int argc, char **argv);
int cli_suppress_main(int argc, char **argv);   /* cli_suppress.c */
int cli_config_main(int argc, char **argv);
int cli_admin_main(int argc, char **argv);      /* cli_admin.c */
int cli_top_main(int argc, char **argv);        /* cli_top.c */

/** cli_admin.c: the first line of a token file into @p tok. @return 0 or -1. */
int cli_http_token(const char *file, char *tok, size_t cap);
/** cli_admin.c: one HTTP request to the engine's API (libcurl; curl_global_init
 *  done by the caller): *@p body malloc'd, *@p status the HTTP status.
 *  @return 0, or -1 with @p err filled (no answer). */
int cli_http_call(const char *hostport, const char *token, const char *method, const char *path,
                  char **body, long *status, char *err, size_t errcap);

#endif
