/*
 * cli_run.c - `volley run`: deliver the queue until SIGTERM/SIGINT, or with
 * --until-empty until nothing is ready or in flight. A data directory without
 * a queue gets an empty one (--shards N, default the number of cores), so a
 * service can start before the first message arrives.
 */
#include "cli.h"
#include "cli_dkim.h"
#include "cli_events.h"
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
#include "volley/shaping.h"

#include <errno.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void cli_run_usage(FILE *f)
{
    fprintf(f, "usage: volley run [--data DIR] [--config FILE] [--until-empty] [options]\n\n"
               "With --config FILE, the file's settings come first and the options given\n"
               "here override them; SIGHUP re-reads FILE: a file with errors is refused\n"
               "(the errors are logged, the running config kept).\n"
               "Deliver the queue: until SIGTERM/SIGINT, or with --until-empty until\n"
               "nothing is ready or in flight (deferred recipients stay queued).\n"
               "Without a queue in DIR, creates an empty one (--shards N, default the\n"
               "number of cores) and says so on stderr. With --log -, the delivery log\n"
               "has stdout to itself: the summary goes to stderr.\n\n"
               "options:\n");
    cli_usage_run_options(f, "./volley-data", true);
    fputs("  --hold                  with --listen: accept and queue mail but deliver\n"
          "                          nothing (the queue is delivered by a later run)\n"
          "  --intake-cmd-timeout DURATION   deadline for each SMTP command line\n"
          "                          (default --intake-timeout, 5m; RFC 5321 4.5.3.2)\n"
          "  --intake-data-timeout DURATION  deadline for each DATA/BDAT block\n"
          "                          (default --intake-timeout, 5m)\n"
          "  --intake-mem-max SIZE   message octets the intake buffers across all\n"
          "                          sessions (k, M, G; default 512M): past it a new\n"
          "                          DATA or BDAT gets 452 4.3.1\n", f);
    fputs("\nHTTP API, unsubscribe and suppression options:\n", f);
    fputs(http_opts_usage, f);
    fputs(cli_events_usage_bounce, f);
    fputs(cli_events_usage, f);
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

/* "512M", "64k", "1G", "1048576" -> octets (1M..64G). @return 0 or -1. */
static int run_size(const char *v, uint64_t *out)
{
    char *end;
    if (v[0] < '0' || v[0] > '9')
        return -1;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    unsigned long long mult = !strcmp(end, "") ? 1 : !strcmp(end, "k") ? 1ull << 10
                            : !strcmp(end, "M") ? 1ull << 20 : !strcmp(end, "G") ? 1ull << 30 : 0;
    if (errno || !mult || n > (64ull << 30) / mult || n * mult < (1ull << 20))
        return -1;
    *out = n * mult;
    return 0;
}

/* run's own options (the intake's, issue 11), taken out of what the shared
 * parser left in @p rest. @return 0, or -1 after saying what is wrong. */
static int run_own_opts(char **rest, int *rest_n, struct inject_opts *io, bool *hold)
{
    int k = 0;
    for (int i = 0; i < *rest_n; i++) {
        const char *a = rest[i];
        static const char *const names[] = { "--hold", "--intake-cmd-timeout",
                                             "--intake-data-timeout", "--intake-mem-max" };
        unsigned which = 0;
        const char *v = NULL;
        for (unsigned n = 0; n < sizeof names / sizeof names[0]; n++) {
            size_t l = strlen(names[n]);
            if (!strncmp(a, names[n], l) && (a[l] == 0 || (a[l] == '=' && n > 0))) {
                which = n + 1;
                v = a[l] == '=' ? a + l + 1 : NULL;
                break;
            }
        }
        if (!which) {
            rest[k++] = rest[i];
            continue;
        }
        if (which == 1) {
            *hold = true;
            continue;
        }
        if (!v && i + 1 >= *rest_n) {
            fprintf(stderr, "volley run: %s needs a value\n", a);
            return -1;
        }
        if (!v)
            v = rest[++i];
        uint64_t *dst = which == 2 ? &io->cmd_ms_timeout : which == 3 ? &io->data_ms_timeout
                      : &io->mem_max;
        if (which < 4 && (vl_parse_duration_ms(v, dst) != 0 || *dst == 0
                          || *dst > 3600ull * 1000)) {
            fprintf(stderr, "volley run: %s '%s': expected a duration > 0 and at most 1h, "
                    "like 30s or 5m\n", names[which - 1], v);
            return -1;
        }
        if (which == 4 && run_size(v, dst) != 0) {
            fprintf(stderr, "volley run: --intake-mem-max '%s': expected a size from 1M to 64G "
                    "(a number with an optional k, M or G)\n", v);
            return -1;
        }
    }
    *rest_n = k;
    return 0;
}

/* --hold: the intake queues, nothing is delivered; until SIGTERM/SIGINT. */
static void run_hold(atomic_bool *stop)
{
    while (!atomic_load(stop)) {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* ---- SIGHUP: reload --config FILE ------------------------------------------
 * The handler only sets a flag; the progress callback (the main thread, about
 * once a second) reloads: the file is read and validated in full, with the
 * command-line options applied over it as at start. A file with errors is
 * refused: every error is logged (evt=config_reload_refused) and the running
 * config stays. A valid one is applied live (vl_engine_reload): limits, retry
 * schedule, TLS policy, shaping policies (AIMD state kept by name) and egress
 * pools; each shard moves to it at its next reactor turn and in-flight
 * deliveries finish as they began. What cannot change live (listeners, data
 * dir, shards, DNS, routes, EHLO name, log, intake, DKIM, egress addresses,
 * the events block, the feedback-loop address and bounce rules)
 * is kept as it is and logged as needing a restart. One line says it all:
 * evt=config_reloaded changed="..." shaping="..." needs_restart="...". */
static volatile sig_atomic_t cli_run_hup;
static void cli_run_on_hup(int sig) { (void)sig; cli_run_hup = 1; }

struct cli_run_ctx {
    struct cli_progress *p;
    const struct vl_config *cfg;       /* the one run started with (intake, listeners) */
    const struct vl_config *live;      /* the last one applied (the engine owns it) */
    int argc;
    char **argv;
    unsigned reloads, refused;
};

static void cli_run_cfg_free(struct vl_config *c)
{
    vl_config_fini(c);
    free(c);
}

static bool cli_streq(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

/* Append @p name to the comma list @p out when @p cond. */
static void cli_run_note(char *out, size_t cap, bool cond, const char *name)
{
    size_t n = strlen(out);
    if (cond && n + strlen(name) + 2 < cap)
        snprintf(out + n, cap - n, "%s%s", n ? "," : "", name);
}

/* What differs: @p live gets the live settings changed since @p o (the last
 * applied), @p restart those changed since @p s (the start) that need one. */
static void cli_run_diff(const struct vl_config *s, const struct vl_config *o,
                         const struct vl_config *n, char *live, size_t lcap, char *restart,
                         size_t rcap)
{
    live[0] = restart[0] = '\0';
    cli_run_note(live, lcap, o->rcpts_per_txn_max != n->rcpts_per_txn_max, "max-rcpts");
    cli_run_note(live, lcap, o->retry_ms_base != n->retry_ms_base, "retry-base");
    cli_run_note(live, lcap, o->retry_ms_max != n->retry_ms_max, "retry-max");
    cli_run_note(live, lcap, o->age_ms_max != n->age_ms_max, "max-age");
    cli_run_note(live, lcap, o->delay_warning_ms != n->delay_warning_ms, "delay-warning");
    cli_run_note(live, lcap, o->dsn_interval_ms != n->dsn_interval_ms, "dsn-interval");
    cli_run_note(live, lcap, o->conns_per_dest_max != n->conns_per_dest_max, "conns-per-dest");
    cli_run_note(live, lcap, o->msgs_per_conn_max != n->msgs_per_conn_max, "msgs-per-conn");
    cli_run_note(live, lcap, o->idle_ms_max != n->idle_ms_max, "idle-timeout");
    cli_run_note(live, lcap, o->connect_ms_timeout != n->connect_ms_timeout, "connect-timeout");
    cli_run_note(live, lcap, o->timeout_scale != n->timeout_scale, "timeout-scale");
    cli_run_note(live, lcap, o->host_fail_ms_min != n->host_fail_ms_min, "host-backoff");
    cli_run_note(live, lcap, o->tls_level != n->tls_level, "tls");
    cli_run_note(live, lcap, o->tls_fallback_ms != n->tls_fallback_ms, "tls-fallback");
    cli_run_note(live, lcap, o->allow_dest != n->allow_dest, "allow-dest");
    bool listen = s->listen_count != n->listen_count;
    for (unsigned i = 0; !listen && i < n->listen_count; i++)
        listen = strcmp(s->listens[i].host, n->listens[i].host) ||
                 s->listens[i].port != n->listens[i].port ||
                 s->listen_tls[i] != n->listen_tls[i];
    bool routes = s->route_count != n->route_count;
    for (unsigned i = 0; !routes && i < n->route_count; i++)
        routes = strcmp(s->routes[i].domain, n->routes[i].domain) ||
                 strcmp(s->routes[i].to.host, n->routes[i].to.host) ||
                 s->routes[i].to.port != n->routes[i].to.port;
    bool dkim = s->dkim.key_count != n->dkim.key_count;
    for (unsigned i = 0; !dkim && i < n->dkim.key_count; i++)
        dkim = strcmp(s->dkim.keys[i].domain, n->dkim.keys[i].domain) ||
               strcmp(s->dkim.keys[i].selector, n->dkim.keys[i].selector) ||
               !cli_streq(s->dkim.keys[i].key_path, n->dkim.keys[i].key_path);
    cli_run_note(restart, rcap, listen, "listeners");
    cli_run_note(restart, rcap, !cli_streq(s->data_dir, n->data_dir), "data");
    cli_run_note(restart, rcap, s->shards != n->shards, "shards");
    cli_run_note(restart, rcap, !cli_streq(s->dns, n->dns), "dns");
    cli_run_note(restart, rcap, s->mx_port != n->mx_port, "mx-port");
    cli_run_note(restart, rcap, routes, "route");
    cli_run_note(restart, rcap, !cli_streq(s->ehlo_name, n->ehlo_name), "ehlo");
    cli_run_note(restart, rcap, !cli_streq(s->log_path, n->log_path), "log");
    cli_run_note(restart, rcap, s->allow_count != n->allow_count ||
                 memcmp(s->allow, n->allow, n->allow_count * sizeof n->allow[0]), "allow");
    cli_run_note(restart, rcap, s->msg_bytes_max != n->msg_bytes_max ||
                 s->rcpts_per_msg_max != n->rcpts_per_msg_max ||
                 s->conns_per_ip_max != n->conns_per_ip_max ||
                 s->intake_ms_timeout != n->intake_ms_timeout, "intake-limits");
    cli_run_note(restart, rcap, !cli_streq(s->tls_cert, n->tls_cert) ||
                 !cli_streq(s->tls_key, n->tls_key) || !cli_streq(s->auth_file, n->auth_file),
                 "intake-tls-auth");
    cli_run_note(restart, rcap, !cli_streq(s->tls_ca_file, n->tls_ca_file), "tls-ca-file");
    cli_run_note(restart, rcap, dkim || s->dkim.expire_ms != n->dkim.expire_ms ||
                 s->dkim.canon_hdr_simple != n->dkim.canon_hdr_simple ||
                 s->dkim.canon_body_simple != n->dkim.canon_body_simple ||
                 !cli_streq(s->dkim.headers, n->dkim.headers), "dkim");
    cli_run_note(restart, rcap, s->commit_giveup_ms != n->commit_giveup_ms, "commit-giveup");
    cli_run_note(restart, rcap, s->sessions_max != n->sessions_max ||
                 s->dns_inflight_max != n->dns_inflight_max, "sessions-max,dns-inflight-max");
    cli_run_note(restart, rcap, !vl_shaping_egress_same(s->shaping, n->shaping),
                 "egress-addresses");
    const struct vl_events_opts *se = &s->events, *ne = &n->events;
    cli_run_note(restart, rcap, s->events_on != n->events_on
                 || !cli_streq(se->webhook_url, ne->webhook_url)
                 || !cli_streq(se->webhook_secret_file, ne->webhook_secret_file)
                 || !cli_streq(se->amqp_url, ne->amqp_url)
                 || !cli_streq(se->amqp_queue, ne->amqp_queue)
                 || !cli_streq(se->amqp_ca_file, ne->amqp_ca_file)
                 || se->amqp_per_message != ne->amqp_per_message || se->batch != ne->batch
                 || se->linger_set != ne->linger_set || se->linger_ms != ne->linger_ms
                 || se->timeout_ms != ne->timeout_ms || se->drain_set != ne->drain_set
                 || se->drain_ms != ne->drain_ms || se->outbox_max != ne->outbox_max,
                 "events");
    cli_run_note(restart, rcap, !cli_streq(s->fbl_address, n->fbl_address)
                 || !cli_streq(s->bounce_rules_path, n->bounce_rules_path), "fbl,bounce-rules");
}

static void cli_run_reload(struct cli_run_ctx *rc)
{
    struct vl_config *next = calloc(1, sizeof *next);
    char *msg = NULL;
    size_t len = 0;
    FILE *m = next ? open_memstream(&msg, &len) : NULL;
    if (!m) {
        free(next);
        vl_log(VL_LOG_ERROR, "evt=config_reload_refused file=\"%s\" error=\"out of memory\"",
               rc->cfg->config_path);
        return;
    }
    vl_config_defaults(next);
    unsigned errors = vl_config_load_file(next, rc->cfg->config_path, m);
    if (errors == 0) {
        /* the command line over the file, as at start (no --config: loaded above) */
        char **av = calloc((size_t)rc->argc + 1, sizeof *av), **rest = calloc((size_t)rc->argc + 1,
                                                                             sizeof *rest);
        int ac = 0, rest_n = 0;
        for (int i = 0; av && i < rc->argc; i++) {
            if (!strcmp(rc->argv[i], "--config")) {
                i++;
                continue;
            }
            if (!strncmp(rc->argv[i], "--config=", 9))
                continue;
            av[ac++] = rc->argv[i];
        }
        if (!av || !rest || vl_config_parse_err(next, "run", ac, av, rest, &rest_n, m) != 0)
            errors++;
        free(av);
        free(rest);
    }
    fclose(m);
    if (errors) {
        rc->refused++;
        for (char *line = msg, *nl; line && *line; line = nl) {
            nl = strchr(line, '\n');
            if (nl)
                *nl++ = '\0';
            vl_log(VL_LOG_ERROR, "evt=config_reload_refused file=\"%s\" error=\"%s\"",
                   rc->cfg->config_path, line);
        }
        vl_log(VL_LOG_ERROR, "evt=config_reload_refused file=\"%s\" errors=%u "
               "action=kept_running_config", rc->cfg->config_path, errors);
        free(msg);
        cli_run_cfg_free(next);
        return;
    }
    free(msg);
    char live[400], restart[300], shaping[1200];
    cli_run_diff(rc->cfg, rc->live, next, live, sizeof live, restart, sizeof restart);
    if (!vl_shaping_egress_same(rc->cfg->shaping, next->shaping))
        vl_config_keep_egress(next, rc->cfg->shaping);   /* needs a restart: kept */
    int r = vl_engine_reload(next, cli_run_cfg_free, shaping, sizeof shaping);
    if (r < 0) {
        rc->refused++;
        vl_log(VL_LOG_ERROR, "evt=config_reload_refused file=\"%s\" error=\"%s\" "
               "action=kept_running_config", rc->cfg->config_path,
               r == -ENOSPC ? "more shaping policy names than slots since start: restart"
                            : vl_strerror(r));
        cli_run_cfg_free(next);
        return;
    }
    rc->reloads++;
    rc->live = next;               /* the engine frees it once it is replaced and unused */
    vl_log(VL_LOG_WARN, "evt=config_reloaded file=\"%s\" applies=live changed=\"%s\" "
           "shaping=\"%s\" needs_restart=\"%s\"", rc->cfg->config_path, live[0] ? live : "none",
           shaping[0] ? shaping : "none", restart[0] ? restart : "none");
}

static void cli_run_progress(const struct vl_engine_totals *t, double elapsed_s, void *ctx)
{
    struct cli_run_ctx *rc = ctx;
    cli_progress_cb(t, elapsed_s, rc->p);
    if (cli_run_hup) {
        cli_run_hup = 0;
        if (rc->cfg->config_path)
            cli_run_reload(rc);
        else
            vl_log(VL_LOG_WARN, "evt=config_reload_skipped why=\"no --config FILE\"");
    }
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
    struct inject_opts io = { 0 };
    bool hold = false;
    struct http_opts hopts = { 0 };           /* --http, --http-token-file (engine/http) */
    bool bad = vl_config_parse(&cfg, "run", argc, argv, rest, &rest_n) != 0;
    if (!bad && http_opts_take(&hopts, "run", rest, rest_n, &rest_n) != 0) {
        bad = true;                             /* said what is wrong */
        rest_n = 0;
    }
    if (!bad && run_own_opts(rest, &rest_n, &io, &hold) != 0) {
        bad = true;                             /* said what is wrong */
        rest_n = 0;
    }
    if (!bad && cli_events_parse(&cfg, "run", rest, &rest_n) != 0) {   /* issue 16 */
        bad = true;                             /* said what is wrong */
        rest_n = 0;
    }
    if (bad || rest_n > 0) {
        if (rest_n > 0)
            fprintf(stderr, "volley run: unknown argument '%s' (see volley run --help)\n",
                    rest[0]);
        free(rest);
        return VL_EXIT_USAGE;
    }
    free(rest);
    if (cli_check_config(&cfg, "run") < 0 || cli_events_setup(&cfg, "run") < 0)
        return VL_EXIT_USAGE;
    if (hold && !cfg.listen_count && !hopts.listen) {
        fprintf(stderr, "volley run: --hold needs --listen or --http (it pauses delivery of what the "
                "listener queues)\n");
        return VL_EXIT_USAGE;
    }
    if ((io.cmd_ms_timeout || io.data_ms_timeout || io.mem_max) && !cfg.listen_count) {
        fprintf(stderr, "volley run: --intake-* options need --listen\n");
        return VL_EXIT_USAGE;
    }
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
    struct dkim_signer *dkim = NULL;          /* --dkim: --listen signs at intake */
    if (cli_dkim_load("run", &cfg.dkim, &dkim) < 0)
        return VL_EXIT_USAGE;
    cfg.dkim_signer = dkim;
    if (dkim && !cfg.listen_count && !hopts.unsub_count)
        fprintf(stderr, "volley run: warning: --dkim signs the mail --listen takes in, and the "
                "--unsub lines of each recipient at delivery; without either it has no effect "
                "(enqueue and send sign when they queue)\n");
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
    struct cli_events *events = NULL;         /* --events-*, --fbl-address (before the intake) */
    if (cli_events_start(&cfg, q, &events) < 0) {
        vl_queue_close(q);
        return VL_EXIT_FAIL;
    }
    struct inject *intake = NULL;             /* --listen: SMTP in, same process */
    if (cfg.listen_count && inject_start(&cfg, &io, q, &intake) < 0) {
        cli_events_stop(events, &cfg);
        vl_queue_close(q);
        return VL_EXIT_FAIL;
    }
    struct http *api = NULL;                  /* --http: HTTP API, same process */
    if (hopts.listen && http_start(&cfg, &hopts, q, &api) < 0) {
        inject_stop(intake);
        cli_events_stop(events, &cfg);
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
    struct cli_run_ctx rctx = { .p = &p, .cfg = &cfg, .live = &cfg, .argc = argc, .argv = argv };
    struct sigaction hup;
    memset(&hup, 0, sizeof hup);
    hup.sa_handler = cli_run_on_hup;
    sigemptyset(&hup.sa_mask);
    sigaction(SIGHUP, &hup, NULL);
    memset(&tot, 0, sizeof tot);
    int rc = 0;
    if (hold)
        run_hold(&stop);
    else
        rc = vl_engine_run(&cfg, q, &stop, cli_run_progress, &rctx, 1000, &tot);
    http_stop(api);                           /* before the queue closes */
    inject_stop(intake);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cli_events_stop(events, &cfg);            /* drains what is stored (not in the rate) */
    double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    struct cli_leftover lo;
    bool lo_ok = cli_leftover_scan(q, &lo) == 0;
    int code = cli_progress_finish(&p, &tot, lo_ok ? &lo : NULL, el, cfg.until_empty, rc);
    vl_queue_close(q);
    adm_close();
    cli_report_uncommitted("run", &cfg, &tot, rc);
    if (rc < 0 || tot.uncommitted)
        fprintf(stderr, "volley run: %s\n", vl_strerror(rc));
    cli_dkim_unload(dkim);
    return code;
}
