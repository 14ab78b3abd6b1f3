/*
 * main.c - the volley CLI entry point: picks the subcommand and hands over.
 * Each subcommand parses its own options (engine/cli_*.c).
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#ifndef VOLLEY_VERSION
#define VOLLEY_VERSION "0.1.0"
#endif

#pragma weak cli_run_main
#pragma weak cli_enqueue_main
#pragma weak cli_send_main
#pragma weak cli_queue_main
#pragma weak cli_sink_main
#pragma weak cli_bench_main
#pragma weak cli_doctor_main
#pragma weak cli_blast_main
#pragma weak cli_suppress_main
#pragma weak cli_config_main
#pragma weak cli_admin_main
#pragma weak cli_top_main

struct subcommand {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *usage;
};

static void main_usage(FILE *f, const struct subcommand *cmds, size_t n)
{
    fputs("usage: volley <command> [options]\n\ncommands:\n", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].usage);
    fputs("\n'volley <command> --help' describes a command's options;"
          " 'volley --version' prints the version.\n"
          "Exit codes: 0 ok, 1 runtime failure, 2 usage error; send and run also 3\n"
          "(recipients still queued) and 130 (interrupted): see 'volley run --help'.\n", f);
}

int main(int argc, char **argv)
{
    const struct subcommand cmds[] = {
        { "run",     cli_run_main,     "deliver the queue (until SIGTERM, or --until-empty)" },
        { "enqueue", cli_enqueue_main, "queue a message for recipients, durably" },
        { "send",    cli_send_main,    "enqueue, then deliver until nothing is ready" },
        { "queue",   cli_queue_main,   "stats | ls | show ID | retry | bounce ID | purge | check" },
        { "sink",    cli_sink_main,    "SMTP sink with fault injection, for tests and benches" },
        { "bench",   cli_bench_main,   "end-to-end loopback benchmark" },
        { "doctor",  cli_doctor_main,  "check a sending domain's DNS: MX, SPF, DKIM, DMARC, PTR" },
        { "blast",   cli_blast_main,   "load generator: SMTP to targets, latency report" },
        { "suppress", cli_suppress_main, "add | rm | ls | import FILE | export: addresses never mailed" },
        { "config",  cli_config_main,  "check FILE: validate volley.conf (errors with file:line)" },
        { "top",     cli_top_main,     "live view of a running engine (its HTTP /metrics)" },
        { "admin",   cli_admin_main,   "suspend | resume | bounce | purge | retry DOMAIN | holds | metrics" },
    };
    const size_t n = sizeof cmds / sizeof cmds[0];

    if (argc < 2) {
        main_usage(stderr, cmds, n);
        return VL_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        main_usage(stdout, cmds, n);
        return VL_EXIT_OK;
    }
    if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("volley %s\n", VOLLEY_VERSION);
        return VL_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], cmds[i].name) != 0)
            continue;
        if (!cmds[i].main) {
            fprintf(stderr, "volley: '%s' is not implemented in this build\n", argv[1]);
            return VL_EXIT_FAIL;
        }
        return cmds[i].main(argc - 1, argv + 1);
    }
    fprintf(stderr, "volley: unknown command '%s'\n", argv[1]);
    main_usage(stderr, cmds, n);
    return VL_EXIT_USAGE;
}
