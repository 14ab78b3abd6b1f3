/*
 * cli_run.c - `volley run`: deliver the queue until SIGTERM/SIGINT, or with
 * --until-empty until nothing is ready or in flight. A data directory without
 * a queue gets an empty one (--shards N, default the number of cores), so a
 * service can start before the first message arrives.
 */
#include "cli.h"
#include "cli_progress.h"
#include "cli_queue.h"
#include "cli_usage.h"
#include "volley/config.h"
#include "dns_route.h"
#include "http.h"
#include "suppress.h"
#include "unsub.h"
#include "inject.h"
#include "volley/engine.h"
#include "log.h"
#include "metrics.h"
#include "adm.h"
#include "volley/error.h"
#include "volley/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void cli_run_usage(FILE *f)
{
    fprintf(f, "usage: volley run [--data DIR] [--until-empty] [options]\n\n"
               "Deliver the queue: until SIGTERM/SIGINT, or with --until-empty until\n"
               "nothing is ready or in flight (deferred recipients stay queued).\n"
               "Without a queue in DIR, creates an empty one (--shards N, default the\n"
               "number of cores) and says so on stderr. With --log -, the delivery log\n"
               "has stdout to itself: the summary goes to stderr.\n\n"
               "options:\n");
    cli_usage_run_options(f, "./volley-data", true);
    fputs("\nHTTP API, unsubscribe and suppression options:\n", f);
    fputs(http_opts_usage, f);
    fputs("\n" CLI_EXIT_CODES_HELP, f);
}

/** Check the options whose values only the engine would look at (it runs
 *  after `send` has queued, and reports failures as exit 1): --dns must be IP
 *  addresses, --ehlo a host name or an address, --log writable. Prints the
 *  error naming the option. Shared with send. @return 0 or -1. */
int cli_check_config(const struct vl_config *cfg, const char *cmd)
{
    const char *why = NULL;
    if (cfg->listen_count && strcmp(cmd, "run")) {
        fprintf(stderr, "volley %s: --listen: only `volley run` accepts mail over SMTP\n", cmd);
        return -1;
    }
    if (cfg->listen_count && cfg->until_empty) {
        fprintf(stderr, "volley %s: --listen and --until-empty do not go together (a listener "
                "runs until SIGTERM)\n", cmd);
        return -1;
    }
    if (cfg->dns) {
        struct vl_hostport hp[VL_DNS_SERVERS_MAX];
        size_t n = 0;
        if (dns_servers_parse(cfg->dns, hp, &n, &why) < 0) {
            fprintf(stderr, "volley %s: --dns '%s': %s\n", cmd, cfg->dns, why ? why : "invalid");
            return -1;
        }
    }
    struct dns_own own;
    const char *ehlo[] = { cfg->ehlo_name };
    int rc = dns_own_init(&own, ehlo, 1, &why);
    dns_own_fini(&own);
    if (rc == VL_E_INVALID) {
        fprintf(stderr, "volley %s: --ehlo '%s': expected a host name or an IP address\n", cmd,
                cfg->ehlo_name);
        return -1;
    }
    int fd = -1;
    rc = vl_dlog_open(cfg->log_path, &fd);
    if (rc < 0) {
        fprintf(stderr, "volley %s: --log '%s': %s\n", cmd, cfg->log_path, vl_strerror(rc));
        return -1;
    }
    if (fd > 2)
        close(fd);
    return 0;
}

/** After the engine: if outcomes could not be recorded (commits failed until
 *  the engine gave up), say so and what happens to those recipients. Shared
 *  with send. */
void cli_report_uncommitted(const char *cmd, const struct vl_config *cfg,
                            const struct vl_engine_totals *t, int rc)
{
    if (!t->uncommitted)
        return;
    fprintf(stderr, "volley %s: gave up: could not record %llu recipient outcome%s in the queue "
            "(%s; commits failed for up to --commit-giveup %llums). Those recipients were not "
            "logged and stay queued: they will be retried by the next run, and their remote "
            "may already have them (a 250 not recorded is delivered again)\n", cmd,
            (unsigned long long)t->uncommitted, t->uncommitted == 1 ? "" : "s",
            rc < 0 ? vl_strerror(rc) : "not committed",
            (unsigned long long)cfg->commit_giveup_ms);
}

int cli_run_main(int argc, char **argv)
{
    static struct vl_config cfg;
    vl_config_defaults(&cfg);
    vl_log_init_from_env();
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int rest_n = 0;
    if (!rest)
        return VL_EXIT_FAIL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            cli_run_usage(stdout);
            free(rest);
            return VL_EXIT_OK;
        }
    struct http_opts hopts = { 0 };           /* --http, --http-token-file (engine/http) */
    if (vl_config_parse(&cfg, "run", argc, argv, rest, &rest_n) != 0 ||
        http_opts_take(&hopts, "run", rest, rest_n, &rest_n) != 0 || rest_n > 0) {
        if (rest_n > 0)
            fprintf(stderr, "volley run: unknown argument '%s' (see volley run --help)\n",
                    rest[0]);
        free(rest);
        return VL_EXIT_USAGE;
    }
    free(rest);
    if (cli_check_config(&cfg, "run") < 0)
        return VL_EXIT_USAGE;
    static struct sup_policy supp;           /* --suppress-codes, --suppress-smtp */
    if (hopts.suppress_codes || hopts.suppress_smtp) {
        supp = *sup_policy_get();
        if (hopts.suppress_codes && sup_policy_codes(&supp, hopts.suppress_codes) < 0) {
            fprintf(stderr, "volley run: --suppress-codes '%s': expected up to 16 enhanced "
                    "status codes 5.x.y, comma-separated\n", hopts.suppress_codes);
            return VL_EXIT_USAGE;
        }
        if (hopts.suppress_smtp && strcmp(hopts.suppress_smtp, "reject") &&
            strcmp(hopts.suppress_smtp, "accept")) {
            fprintf(stderr, "volley run: --suppress-smtp '%s': expected reject or accept\n",
                    hopts.suppress_smtp);
            return VL_EXIT_USAGE;
        }
        supp.smtp_accept = hopts.suppress_smtp && !strcmp(hopts.suppress_smtp, "accept");
        sup_policy_set(&supp);                   /* read-only from here on */
    }
    static struct unsub_conf unsub;          /* --unsub: links made at delivery */
    if (hopts.unsub_count) {
        char buf[1200];
        const char *why = NULL;
        if (unsub_conf_parse(&unsub, hopts.unsub, hopts.unsub_count, hopts.unsub_secret_file,
                             buf, sizeof buf, &why) < 0) {
            fprintf(stderr, "volley run: %s\n", why);
            return VL_EXIT_USAGE;
        }
        unsub_conf_set(&unsub);                  /* read-only from here on */
    }
    if (hopts.listen && cfg.until_empty) {
        fprintf(stderr, "volley run: --http and --until-empty do not go together (the API "
                "runs until SIGTERM)\n");
        return VL_EXIT_USAGE;
    }
    struct vl_queue *q = NULL;
    bool created = vl_queue_shards_recorded(cfg.data_dir) == VL_E_NOTFOUND;
    if (cli_queue_open("run", cfg.data_dir, cfg.shards,
                       VL_QUEUE_ENGINE | (created ? VL_QUEUE_CREATE : 0), &q) < 0)
        return VL_EXIT_FAIL;
    if (created)
        fprintf(stderr, "volley run: no queue in %s: created an empty one with %u shard%s\n",
                cfg.data_dir, vl_queue_nshards(q), vl_queue_nshards(q) == 1 ? "" : "s");
    static atomic_bool stop;
    cli_install_stop_signals(&stop);
    if (met_init(vl_queue_nshards(q)) < 0) {  /* before the listeners count into it */
        vl_queue_close(q);
        return VL_EXIT_FAIL;
    }
    int arc = adm_open(cfg.data_dir, false);  /* operator holds (DATA/admin), if any */
    if (arc < 0) {
        fprintf(stderr, "volley run: %s/admin: %s\n", cfg.data_dir, vl_strerror(arc));
        vl_queue_close(q);
        return VL_EXIT_FAIL;
    }
    struct inject *intake = NULL;             /* --listen: SMTP in, same process */
    if (cfg.listen_count && inject_start(&cfg, q, &intake) < 0) {
        vl_queue_close(q);
        return VL_EXIT_FAIL;
    }
    struct http *api = NULL;                  /* --http: HTTP API, same process */
    if (hopts.listen && http_start(&cfg, &hopts, q, &api) < 0) {
        inject_stop(intake);
        vl_queue_close(q);
        return VL_EXIT_FAIL;
    }
    struct cli_progress p;
    cli_progress_init(&p, "run", stderr, cfg.quiet, 0);
    if (cfg.log_path && !strcmp(cfg.log_path, "-"))
        p.summary = stderr;                     /* stdout is the JSON log's */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct vl_engine_totals tot;
    int rc = vl_engine_run(&cfg, q, &stop, cli_progress_cb, &p, 1000, &tot);
    http_stop(api);                           /* before the queue closes */
    inject_stop(intake);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    struct cli_leftover lo;
    bool lo_ok = cli_leftover_scan(q, &lo) == 0;
    int code = cli_progress_finish(&p, &tot, lo_ok ? &lo : NULL, el, cfg.until_empty, rc);
    vl_queue_close(q);
    adm_close();
    cli_report_uncommitted("run", &cfg, &tot, rc);
    if (rc < 0 || tot.uncommitted)
        fprintf(stderr, "volley run: %s\n", vl_strerror(rc));
    return code;
}
