/*
 * cli_send.c - `volley send`: enqueue a campaign (the arguments of `volley
 * enqueue`), then deliver until nothing is ready or in flight, with a live
 * progress line on a terminal (a plain status line every few seconds
 * otherwise) and a final summary.
 * Exit codes: cli.h (3 = recipients still queued, 130 interrupted). The queue
 * may hold recipients of earlier runs: send delivers them too (through this
 * invocation's routes) and says so before it starts.
 */
#include "cli.h"

#include "adm.h"
#include "cli_dkim.h"
#include "cli_events.h"
#include "cli_progress.h"
#include "cli_queue.h"
#include "cli_usage.h"
#include "volley/config.h"
#include "volley/engine.h"
#include "log.h"
#include "volley/error.h"
#include "volley/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_check_config(const struct vl_config *cfg, const char *cmd);
void cli_report_uncommitted(const char *cmd, const struct vl_config *cfg,
                            const struct vl_engine_totals *t, int rc);

static void cli_send_usage(FILE *f)
{
    fprintf(f, "usage: volley send [--data DIR] --from ADDR (--to ADDR ... | --rcpts FILE)\n"
               "                   [--skip-invalid] MESSAGE.eml [options]\n\n"
               "Enqueue MESSAGE.eml for the recipients (durably), then deliver until nothing\n"
               "is ready or in flight. Deferred recipients stay queued for `volley run`.\n"
               "With --log -, the delivery log has stdout to itself: the \"queued\" line and\n"
               "the summary go to stderr.\n"
               "The whole queue is delivered: if DIR already holds recipients (of an\n"
               "earlier, interrupted or deferred send), send says how many before it\n"
               "starts, and delivers them too, through this invocation's --route.\n\n"
               "enqueue options (volley enqueue --help): --from ADDR, --to ADDR, --rcpts FILE,\n"
               "  --skip-invalid, --fold-local-case, --long-lines encode|refuse\n\n"
               "options:\n");
    cli_usage_run_options(f, "./volley-data", false);
    fputs(cli_events_usage_bounce, f);
    fputs("\n" CLI_EXIT_CODES_HELP, f);
}

int cli_send_main(int argc, char **argv)
{
    static struct vl_config cfg;
    vl_config_defaults(&cfg);
    vl_log_init_from_env();
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            cli_send_usage(stdout);
            return VL_EXIT_OK;
        }
    char **rest = calloc(2 * (size_t)argc + 8, sizeof *rest);   /* + the --dkim* copies */
    if (!rest)
        return VL_EXIT_FAIL;
    int rest_n = 0;
    /* Leave room at the front for "enqueue --data DIR --shards N". */
    if (vl_config_parse(&cfg, "send", argc, argv, rest + 5, &rest_n) != 0
        || cli_events_parse(&cfg, "send", rest + 5, &rest_n) != 0) {
        free(rest);
        return VL_EXIT_USAGE;
    }
    if (cli_check_config(&cfg, "send") < 0      /* before anything is queued */
        || cli_events_setup(&cfg, "send") < 0) {
        free(rest);
        return VL_EXIT_USAGE;
    }
    cfg.until_empty = true;
    char shards[16];
    int k = 0;
    rest[k++] = "enqueue";
    rest[k++] = "--data";
    rest[k++] = (char *)cfg.data_dir;
    if (cfg.shards) {
        snprintf(shards, sizeof shards, "%u", cfg.shards);
        rest[k++] = "--shards";
        rest[k++] = shards;
    }
    memmove(rest + k, rest + 5, (size_t)rest_n * sizeof *rest);
    /* The message is DKIM-signed when it is queued: enqueue gets the --dkim* options. */
    rest_n += cli_dkim_forward(argc, argv, rest + k + rest_n);
    /* What the queue holds already is delivered too: count it first. */
    struct vl_queue_stats before = { 0 };
    if (vl_queue_shards_recorded(cfg.data_dir) > 0) {
        struct vl_queue *bq = NULL;
        if (vl_queue_open(cfg.data_dir, 0, 0, &bq) == 0) {
            if (vl_queue_stats(bq, -1, &before) < 0)
                memset(&before, 0, sizeof before);
            vl_queue_close(bq);
        }
    }
    bool log_stdout = cfg.log_path && !strcmp(cfg.log_path, "-");
    int rc = cli_enqueue_run(k + rest_n, rest, "send", log_stdout ? stderr : stdout);
    free(rest);
    if (rc != VL_EXIT_OK)
        return rc;
    fflush(stdout);
    uint64_t earlier = before.by_state[VL_RCPT_READY] + before.by_state[VL_RCPT_DEFERRED];
    if (earlier)
        fprintf(stderr, "volley send: also delivering %llu recipient%s queued earlier in %s "
                "(%llu ready, %llu deferred: those are tried when due), through this send's "
                "routes; `volley queue ls` lists them\n", (unsigned long long)earlier,
                earlier == 1 ? "" : "s", cfg.data_dir,
                (unsigned long long)before.by_state[VL_RCPT_READY],
                (unsigned long long)before.by_state[VL_RCPT_DEFERRED]);

    struct vl_queue *q = NULL;
    if (cli_queue_open("send", cfg.data_dir, cfg.shards, VL_QUEUE_ENGINE, &q) < 0)
        return VL_EXIT_FAIL;
    int arc = adm_open(cfg.data_dir, false);  /* operator holds (DATA/admin), as `run` */
    if (arc < 0) {
        fprintf(stderr, "volley send: %s/admin: %s\n", cfg.data_dir, vl_strerror(arc));
        vl_queue_close(q);
        return VL_EXIT_FAIL;
    }
    struct vl_queue_stats st;
    uint64_t total = 0;
    if (vl_queue_stats(q, -1, &st) == 0)
        total = st.by_state[VL_RCPT_READY] + st.by_state[VL_RCPT_DEFERRED];
    static atomic_bool stop;
    cli_install_stop_signals(&stop);
    struct cli_progress p;
    cli_progress_init(&p, "send", stderr, cfg.quiet, total);
    if (log_stdout)
        p.summary = stderr;                     /* stdout is the JSON log's */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct vl_engine_totals tot;
    rc = vl_engine_run(&cfg, q, &stop, cli_progress_cb, &p, 500, &tot);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    struct cli_leftover lo;
    bool lo_ok = cli_leftover_scan(q, &lo) == 0;
    int code = cli_progress_finish(&p, &tot, lo_ok ? &lo : NULL, el, true, rc);
    vl_queue_close(q);
    adm_close();
    cli_events_stop(NULL, &cfg);
    cli_report_uncommitted("send", &cfg, &tot, rc);
    if (rc < 0 || tot.uncommitted)
        fprintf(stderr, "volley send: %s\n", vl_strerror(rc));
    return code;
}
