/*
 * cli_events.c - issue 16's options for `volley run` / `volley send` (see
 * cli_events.h): bounce rules, and the delivery-event senders of run.
 */
#include "cli_events.h"

#include "bounce.h"
#include "cli.h"
#include "events.h"
#include "events_amqp.h"
#include "events_webhook.h"
#include "fbl.h"
#include "log.h"
#include "volley/addr.h"
#include "volley/error.h"
#include "volley/queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_EVENTS_SECRET_BYTES_MAX 4096u
#define CLI_EVENTS_OUTBOX_MAX 200000u      /* policy: events per shard (~80 MB) */

/* The options of this file (set once by cli_events_parse, read-only after). */
static struct {
    const char *webhook, *secret_file, *amqp, *amqp_queue, *amqp_ca;
    unsigned batch, per_message;
    uint64_t drain_ms, timeout_ms, linger_ms, outbox_max;
    bool batch_set, drain_set, timeout_set, linger_set, queue_set, outbox_set,
         per_message_set;          /* on the command line */
    unsigned char secret[CLI_EVENTS_SECRET_BYTES_MAX];
    size_t secret_len;
} cli_ev = { .amqp_queue = "volley.events", .batch = 1000, .per_message = 1, .drain_ms = 10000,
             .timeout_ms = 30000, .linger_ms = 100, .outbox_max = CLI_EVENTS_OUTBOX_MAX };

struct cli_events { struct events *ev; struct fbl *fbl; };

const char cli_events_usage_bounce[] =
    "  --bounce-rules FILE   bounce classification rules tried before the shipped ones\n"
    "                        (lines 'CATEGORY STATUS REGEX', see etc/bounce_rules.conf)\n";

const char cli_events_usage[] =
    "delivery events (run; each outcome's log line, stored with the outcome, sent at\n"
    "least once, in order per recipient, with an \"event_id\" to de-duplicate on):\n"
    "  --events-webhook URL  POST JSON batches {\"events\":[...]} to URL (http, https)\n"
    "  --events-secret-file FILE  HMAC-SHA256 key for X-Volley-Signature (required with\n"
    "                        --events-webhook): sha256=HEX of \"TIMESTAMP.BODY\"\n"
    "  --events-amqp URL     publish each event to RabbitMQ (amqp://USER:PASS@HOST:PORT/VHOST,\n"
    "                        or amqps:// for TLS),\n"
    "                        persistent, with publisher confirms\n"
    "  --events-amqp-ca FILE  amqps://: the CAs (PEM) the broker's certificate is checked\n"
    "                        with (default: the system store); its name must match the host\n"
    "  --events-amqp-queue NAME  durable queue the events go to (default volley.events)\n"
    "  --events-amqp-per-message N  events per AMQP message, 1..1000 (default 1); N > 1:\n"
    "                        a JSON array of up to N events in order, type \"batch\"\n"
    "                        (brokers cost per message; de-duplicate on \"event_id\")\n"
    "  --events-batch N      events per batch, 1..1000 (default 1000)\n"
    "  --events-outbox-max N  events stored per shard before delivery waits for the\n"
    "                        sinks (back-pressure; default 200000, min 10): nothing is\n"
    "                        dropped, delivery resumes below 3/4 of N\n"
    "  --events-linger DUR   a batch that is not full is sent this long after the\n"
    "                        previous one (default 100ms; 0: at once)\n"
    "  --events-timeout DUR  one batch's deadline (default 30s)\n"
    "  --events-drain DUR    at exit, keep sending what is stored for up to DUR (default 10s;\n"
    "                        the rest stays stored and is sent by the next run)\n"
    "  --fbl-address ADDR    feedback loop (needs --listen): an ARF report (RFC 5965) mailed\n"
    "                        to ADDR is taken, not queued: its recipient is suppressed\n"
    "                        (reason complaint), recorded in DATA/complaints, and a\n"
    "                        \"complaint\" event emitted\n";

/* --opt VALUE or --opt=VALUE at rest[*i]; @return the value, or NULL (not this option). */
static const char *cli_events_opt(const char *name, char **rest, int n, int *i, bool *missing)
{
    size_t k = strlen(name);
    const char *a = rest[*i];
    if (strncmp(a, name, k) != 0)
        return NULL;
    if (a[k] == '=')
        return a + k + 1;
    if (a[k] != '\0')
        return NULL;
    if (*i + 1 >= n) {
        *missing = true;
        return NULL;
    }
    return rest[++*i];
}

/* @p v as a count 1..EVENTS_BATCH_MAX into @p out (and @p set). @return 0 or
 * -1 (printed, naming option @p name). */
static int cli_events_count(const char *cmd, const char *name, const char *v, unsigned *out,
                            bool *set)
{
    char *end;
    unsigned long b = strtoul(v, &end, 10);
    if (*end || end == v || b < 1 || b > EVENTS_BATCH_MAX) {
        fprintf(stderr, "volley %s: %s '%s': expected 1..%u\n", cmd, name, v, EVENTS_BATCH_MAX);
        return -1;
    }
    *out = (unsigned)b;
    *set = true;
    return 0;
}

int cli_events_parse(struct vl_config *cfg, const char *cmd, char **rest, int *rest_n)
{
    int out = 0, n = *rest_n;
    for (int i = 0; i < n; i++) {
        bool missing = false;
        const char *v;
        const char *name = rest[i];
        uint64_t ms;
        if ((v = cli_events_opt("--bounce-rules", rest, n, &i, &missing))) {
            cfg->bounce_rules_path = v;
        } else if (!strcmp(cmd, "run")
                   && (v = cli_events_opt("--fbl-address", rest, n, &i, &missing))) {
            struct vl_addr a;
            if (vl_addr_parse(v, strlen(v), &a, NULL) < 0) {
                fprintf(stderr, "volley %s: --fbl-address '%s': expected a mailbox "
                        "(local@domain)\n", cmd, v);
                return -1;
            }
            cfg->fbl_address = v;
        } else if (!strcmp(cmd, "run")
                   && (v = cli_events_opt("--events-webhook", rest, n, &i, &missing))) {
            cli_ev.webhook = v;
        } else if (!strcmp(cmd, "run")
                   && (v = cli_events_opt("--events-secret-file", rest, n, &i, &missing))) {
            cli_ev.secret_file = v;
        } else if (!strcmp(cmd, "run")
                   && (v = cli_events_opt("--events-amqp-ca", rest, n, &i, &missing))) {
            cli_ev.amqp_ca = v;
        } else if (!strcmp(cmd, "run")
                   && (v = cli_events_opt("--events-amqp-queue", rest, n, &i, &missing))) {
            cli_ev.amqp_queue = v;
            cli_ev.queue_set = true;
        } else if (!strcmp(cmd, "run")
                   && (v = cli_events_opt("--events-amqp-per-message", rest, n, &i, &missing))) {
            if (cli_events_count(cmd, "--events-amqp-per-message", v, &cli_ev.per_message,
                                 &cli_ev.per_message_set) < 0)
                return -1;
        } else if (!strcmp(cmd, "run")
                   && (v = cli_events_opt("--events-amqp", rest, n, &i, &missing))) {
            cli_ev.amqp = v;
        } else if (!strcmp(cmd, "run")
                   && (v = cli_events_opt("--events-batch", rest, n, &i, &missing))) {
            if (cli_events_count(cmd, "--events-batch", v, &cli_ev.batch, &cli_ev.batch_set) < 0)
                return -1;
        } else if (!strcmp(cmd, "run")
                   && (v = cli_events_opt("--events-outbox-max", rest, n, &i, &missing))) {
            char *end;
            unsigned long long m = strtoull(v, &end, 10);
            if (*end || end == v || m < 10 || m > 100000000ull) {
                fprintf(stderr, "volley %s: --events-outbox-max '%s': expected 10..100000000\n",
                        cmd, v);
                return -1;
            }
            cli_ev.outbox_max = m;
            cli_ev.outbox_set = true;
        } else if (!strcmp(cmd, "run")
                   && (v = cli_events_opt("--events-linger", rest, n, &i, &missing))) {
            if (vl_parse_duration_ms(v, &ms) < 0 || ms > 60000) {
                fprintf(stderr, "volley %s: --events-linger '%s': expected a duration up to "
                        "60s (e.g. 100ms, 0)\n", cmd, v);
                return -1;
            }
            cli_ev.linger_ms = ms;
            cli_ev.linger_set = true;
        } else if (!strcmp(cmd, "run")
                   && ((v = cli_events_opt("--events-drain", rest, n, &i, &missing))
                       || (v = cli_events_opt("--events-timeout", rest, n, &i, &missing)))) {
            bool drain = !strncmp(name, "--events-drain", 14);
            if (vl_parse_duration_ms(v, &ms) < 0 || (!drain && ms == 0)) {
                fprintf(stderr, "volley %s: %s '%s': expected a duration (e.g. 10s, 500ms)\n",
                        cmd, drain ? "--events-drain" : "--events-timeout", v);
                return -1;
            }
            if (drain) {
                cli_ev.drain_ms = ms;
                cli_ev.drain_set = true;
            } else {
                cli_ev.timeout_ms = ms;
                cli_ev.timeout_set = true;
            }
        } else if (missing) {
            fprintf(stderr, "volley %s: %s needs a value\n", cmd, name);
            return -1;
        } else {
            rest[out++] = rest[i];
        }
    }
    *rest_n = out;
    /* The config file's events block (cfg->events) where the command line is silent. */
    static const struct vl_events_opts none;
    const struct vl_events_opts *fo = !strcmp(cmd, "run") ? &cfg->events : &none;
    if (!cli_ev.webhook && fo->webhook_url)
        cli_ev.webhook = fo->webhook_url;
    if (!cli_ev.secret_file && fo->webhook_secret_file)
        cli_ev.secret_file = fo->webhook_secret_file;
    if (!cli_ev.amqp && fo->amqp_url)
        cli_ev.amqp = fo->amqp_url;
    if (!cli_ev.amqp_ca && fo->amqp_ca_file)
        cli_ev.amqp_ca = fo->amqp_ca_file;
    if (!cli_ev.queue_set && fo->amqp_queue)
        cli_ev.amqp_queue = fo->amqp_queue;
    if (!cli_ev.batch_set && fo->batch)
        cli_ev.batch = fo->batch;
    if (!cli_ev.per_message_set && fo->amqp_per_message)
        cli_ev.per_message = fo->amqp_per_message;
    if (!cli_ev.linger_set && fo->linger_set)
        cli_ev.linger_ms = fo->linger_ms;
    if (!cli_ev.timeout_set && fo->timeout_ms)
        cli_ev.timeout_ms = fo->timeout_ms;
    if (!cli_ev.drain_set && fo->drain_set)
        cli_ev.drain_ms = fo->drain_ms;
    if (!cli_ev.outbox_set && fo->outbox_max)
        cli_ev.outbox_max = fo->outbox_max;
    cfg->events_on = cli_ev.webhook || cli_ev.amqp;
    cfg->events.outbox_max = cfg->events_on ? cli_ev.outbox_max : 0;   /* shard.c reads it */
    return 0;
}

/* Read the webhook secret (trailing newlines dropped). @return 0 or -1 (printed). */
static int cli_events_secret(const char *cmd)
{
    FILE *f = fopen(cli_ev.secret_file, "rb");
    if (!f) {
        fprintf(stderr, "volley %s: --events-secret-file '%s': %s\n", cmd, cli_ev.secret_file,
                strerror(errno));
        return -1;
    }
    size_t n = fread(cli_ev.secret, 1, sizeof cli_ev.secret, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    while (n && (cli_ev.secret[n - 1] == '\n' || cli_ev.secret[n - 1] == '\r'))
        n--;
    if (more || n == 0) {
        fprintf(stderr, "volley %s: --events-secret-file '%s': %s\n", cmd, cli_ev.secret_file,
                more ? "longer than 4096 bytes" : "empty");
        return -1;
    }
    cli_ev.secret_len = n;
    return 0;
}

int cli_events_setup(struct vl_config *cfg, const char *cmd)
{
    struct bounce_rules *r;
    char err[512];
    if (bounce_rules_create(&r) < 0) {
        fprintf(stderr, "volley %s: out of memory\n", cmd);
        return -1;
    }
    if (cfg->bounce_rules_path
        && bounce_rules_load_file(r, cfg->bounce_rules_path, err, sizeof err) < 0) {
        fprintf(stderr, "volley %s: --bounce-rules: %s\n", cmd, err);
        bounce_rules_destroy(r);
        return -1;
    }
    if (bounce_rules_load_default(r, err, sizeof err) < 0) {
        fprintf(stderr, "volley %s: shipped bounce rules: %s\n", cmd, err);
        bounce_rules_destroy(r);
        return -1;
    }
    cfg->bounce_rules = r;
    if (cli_ev.webhook && !cli_ev.secret_file) {
        fprintf(stderr, "volley %s: --events-webhook needs --events-secret-file FILE (the "
                "HMAC key receivers check X-Volley-Signature with)\n", cmd);
        return -1;
    }
    if (cli_ev.secret_file && !cli_ev.webhook) {
        fprintf(stderr, "volley %s: --events-secret-file without --events-webhook\n", cmd);
        return -1;
    }
    if (cli_ev.webhook && strncmp(cli_ev.webhook, "http://", 7)
        && strncmp(cli_ev.webhook, "https://", 8)) {
        fprintf(stderr, "volley %s: --events-webhook '%s': expected an http:// or https:// "
                "URL\n", cmd, cli_ev.webhook);
        return -1;
    }
    if (cli_ev.amqp && events_amqp_url_check(cli_ev.amqp, err, sizeof err) < 0) {
        fprintf(stderr, "volley %s: --events-amqp: %s\n", cmd, err);
        return -1;
    }
    if (cli_ev.amqp_ca && (!cli_ev.amqp || strncmp(cli_ev.amqp, "amqps://", 8))) {
        fprintf(stderr, "volley %s: --events-amqp-ca needs an amqps:// --events-amqp URL\n", cmd);
        return -1;
    }
    if (cli_ev.amqp_ca && access(cli_ev.amqp_ca, R_OK) != 0) {
        fprintf(stderr, "volley %s: --events-amqp-ca '%s': %s\n", cmd, cli_ev.amqp_ca,
                strerror(errno));
        return -1;
    }
    if (cli_ev.secret_file && cli_events_secret(cmd) < 0)
        return -1;
    if (cfg->fbl_address && !cfg->listen_count) {
        fprintf(stderr, "volley %s: --fbl-address needs --listen (reports arrive over SMTP)\n",
                cmd);
        return -1;
    }
    return 0;
}

static int cli_events_fbl(struct vl_config *cfg, struct vl_queue *q, struct cli_events **out)
{
    struct cli_events *ce = calloc(1, sizeof *ce);
    int rc = ce ? fbl_create(q, cfg->data_dir, cfg->fbl_address, cfg->events_on, &ce->fbl)
                : -ENOMEM;
    if (rc < 0) {
        fprintf(stderr, "volley run: --fbl-address: %s/complaints: %s\n", cfg->data_dir,
                vl_strerror(rc));
        free(ce);
        return -1;
    }
    vl_assert(cfg->intake_hook_n < VL_INTAKE_HOOKS_MAX);
    cfg->intake_hooks[cfg->intake_hook_n++] = (struct vl_intake_hook){ "fbl", fbl_intake, ce->fbl };
    *out = ce;
    return 0;
}

int cli_events_start(struct vl_config *cfg, struct vl_queue *q, struct cli_events **out)
{
    *out = NULL;
    if (cfg->fbl_address && cli_events_fbl(cfg, q, out) < 0)
        return -1;
    if (!cfg->events_on)
        return 0;
    struct events_sink sinks[EVENTS_SINKS_MAX];
    unsigned n = 0;
    char err[512] = "";
    if (cli_ev.webhook) {
        if (events_webhook_global_init() < 0
            || events_webhook_create(cli_ev.webhook, cli_ev.secret, cli_ev.secret_len,
                                     (long)cli_ev.timeout_ms, &sinks[n], err, sizeof err) < 0) {
            fprintf(stderr, "volley run: --events-webhook: %s\n", err[0] ? err : "cannot start");
            return -1;
        }
        n++;
    }
    if (cli_ev.amqp) {
        if (events_amqp_create(cli_ev.amqp, cli_ev.amqp_queue, cli_ev.amqp_ca,
                               cli_ev.per_message, cli_ev.timeout_ms, &sinks[n], err,
                               sizeof err) < 0) {
            fprintf(stderr, "volley run: --events-amqp: %s\n", err);
            for (unsigned i = 0; i < n; i++)
                sinks[i].destroy(sinks[i].ctx);
            return -1;
        }
        n++;
    }
    struct cli_events *ce = *out ? *out : calloc(1, sizeof *ce);
    struct events_conf conf = { .batch_max = cli_ev.batch, .retry_ms_min = 100,
                                .retry_ms_max = 10000,
                                .poll_ms = cli_ev.linger_ms ? cli_ev.linger_ms : 20,
                                .linger_ms = cli_ev.linger_ms, .nice = 19 };   /* idle CPU */
    int rc = ce ? events_start(q, sinks, n, &conf, &ce->ev) : -ENOMEM;
    if (rc < 0) {
        if (!ce)
            for (unsigned i = 0; i < n; i++)
                sinks[i].destroy(sinks[i].ctx);
        if (ce)
            fbl_destroy(ce->fbl);
        free(ce);
        *out = NULL;
        cfg->intake_hook_n = 0;
        fprintf(stderr, "volley run: cannot start the event senders: %s\n", vl_strerror(rc));
        return -1;
    }
    *out = ce;
    return 0;
}

void cli_events_stop(struct cli_events *ce, struct vl_config *cfg)
{
    if (ce) {
        struct events_stats st;
        cfg->intake_hook_n = 0;           /* the intake is stopped: no call is running */
        fbl_destroy(ce->fbl);
        events_stop(ce->ev, cli_ev.drain_ms, &st);
        if (st.left)
            fprintf(stderr, "volley run: %llu delivery event%s not yet sent (after --events-drain "
                    "%llums): kept in the queue's outbox for the next run\n",
                    (unsigned long long)st.left, st.left == 1 ? "" : "s",
                    (unsigned long long)cli_ev.drain_ms);
        free(ce);
    }
    bounce_rules_destroy((struct bounce_rules *)cfg->bounce_rules);
    cfg->bounce_rules = NULL;
}
