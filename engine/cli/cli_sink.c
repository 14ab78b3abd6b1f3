/*
 * cli_sink.c - `volley sink`: option parsing and help; the sink itself is
 * engine/sink.c. Bad options get a message naming the option, exit 2.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink.h"
#include "volley/error.h"

static const char sink_help[] =
"usage: volley sink --listen ADDR:PORT [--listen ...] [options]\n"
"\n"
"An SMTP sink for tests and benchmarks: accepts mail, counts it, optionally saves\n"
"it, and injects faults. Stats go to stdout on SIGUSR1, every --stats-every\n"
"seconds, and at exit (SIGTERM/SIGINT). Port 0 picks a free port; the sink prints\n"
"'sink: listening on ADDR:PORT' for each address once it accepts.\n"
"\n"
"options:\n"
"  --listen ADDR:PORT     address to accept on; repeatable (max 16); [::1]:PORT for IPv6\n"
"  --threads N            reactor threads, each accepting on every address (SO_REUSEPORT)\n"
"                         (default 1, max 64)\n"
"  --max-conns N          connections per thread (default 1024); more are closed at once\n"
"  --stats-every S        also print stats every S seconds\n"
"  --json                 stats as one JSON object per line\n"
"  --save DIR             write each accepted message to DIR/T-C-N.eml: envelope lines\n"
"                         'X-Volley-Mail-From: <a>' and 'X-Volley-Rcpt-To: <b>', then the\n"
"                         content (written to a temporary name, renamed when accepted)\n"
"  --hostname NAME        name in the greeting and EHLO reply (default sink.volley.test)\n"
"  --size N               advertise SIZE N and refuse larger messages (552 5.3.4)\n"
"  --rcpts-max N          recipients per transaction before 452 4.5.3 (default 100)\n"
"  --no-pipelining        don't advertise PIPELINING\n"
"  --no-8bitmime          don't advertise 8BITMIME\n"
"  --no-enhancedstatuscodes  don't advertise ENHANCEDSTATUSCODES (no x.y.z in replies)\n"
"  --idle-timeout DUR     drop a client silent for DUR (default 300s)\n"
"  --seed S               seed for prob= choices (default 1), so runs are reproducible\n"
"  --tls-cert FILE        offer STARTTLS with this PEM certificate (chain); needs --tls-key\n"
"  --tls-key FILE         the certificate's PEM private key\n"
"  --model FILE           throttle like a mailbox provider, per client source address:\n"
"                         msgs-per-sec = R; burst = B; (token bucket, checked at MAIL)\n"
"                         connections = C; (at once, checked at the banner)\n"
"                         reply = \"421 4.7.0 TEXT\"; (the deferral; 421 also closes)\n"
"                         abuse = N; block = \"30s\"; (N excesses in a row: refuse that\n"
"                         address for the duration). Stats gain \"model\": per address\n"
"                         accepted, delivered, deferred, conns_refused, blocks, open,\n"
"                         open_max (most connections at once), ehlo (last name)\n"
"  --tls-break            fault: offer STARTTLS, answer 220, then fail every handshake\n"
"                         with a fatal internal_error alert (like OpenSMTPD 6.8 on\n"
"                         OpenSSL 3: \"tlsv1 alert internal error\"); counted as tls_broken\n"
"\n"
"faults (repeatable, applied in the order given; first matching rule of each kind wins):\n"
"  --fault STAGE=CODE[:WHEN][:match=PREFIX][:text=TEXT]\n"
"        answer CODE instead of success, e.g. --fault rcpt=550:every=3,\n"
"        --fault banner=421:prob=0.5, --fault dot=451:nth=2, --fault rcpt=550:match=bad\n"
"  --delay STAGE=DURATION[:WHEN][:match=PREFIX]     wait before answering (e.g. mail=200ms)\n"
"  --disconnect STAGE[:WHEN][:match=PREFIX]        close instead of answering\n"
"  --disconnect mid-data[:WHEN]                    close inside the DATA content\n"
"  --disconnect after-txns=N                        close after N messages on a connection\n"
"  STAGE:    banner, ehlo (also HELO), mail, rcpt, data, dot (end of data)\n"
"  WHEN:     every=N (each N-th), nth=N (only the N-th), prob=P (0..1, seeded);\n"
"            default: always. Counts are per rule, across all connections and threads.\n"
"  match=    MAIL/RCPT only: the path's local part starts with PREFIX (case-insensitive)\n"
"  text=     reply text (rest of the spec); default: a text with an enhanced code\n"
"  DURATION: N (ms), Nms or Ns\n"
"\n"
"Without --tls-cert/--tls-key STARTTLS is not offered and gets 454 4.7.0; with them\n"
"the sink answers 220, discards anything pipelined after STARTTLS, does the TLS\n"
"handshake (1.2 or 1.3) and counts it in the stats (tls_sessions).\n";

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("volley sink: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see 'volley sink --help')\n", stderr);
    return VL_EXIT_USAGE;
}

static int number_opt(const char *opt, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max || v[0] == '-') {
        char range[64];
        snprintf(range, sizeof range, "%llu..%llu", (unsigned long long)min,
                 (unsigned long long)max);
        fprintf(stderr, "volley sink: %s: '%s' is not a whole number in %s\n", opt, v, range);
        return VL_E_INVALID;
    }
    *out = n;
    return 0;
}

/* One option with its value (NULL for flags). @return 0, or an exit code. */
static int sink_option(struct sink_conf *c, const char *opt, const char *v)
{
    char err[256];
    uint64_t n;
    if (!strcmp(opt, "--tls-cert") || !strcmp(opt, "--tls-key")) {
        const char **slot = opt[6] == 'c' ? &c->tls_cert : &c->tls_key;
        if (!*v)
            return usage_error("%s needs a file name", opt);
        *slot = v;
        return 0;
    }
    if (!strcmp(opt, "--listen"))
        return sink_conf_add_listen(c, v, err, sizeof err) < 0 ? usage_error("%s", err) : 0;
    if (!strcmp(opt, "--model")) {
        unsigned bad = sink_model_conf_load(&c->model, v, stderr);
        if (bad)
            return usage_error("--model %s: %u error%s (above)", v, bad, bad == 1 ? "" : "s");
        c->model_on = true;
        return 0;
    }
    if (!strcmp(opt, "--fault") || !strcmp(opt, "--delay") || !strcmp(opt, "--disconnect"))
        return sink_conf_add_rule(c, opt, v, err, sizeof err) < 0 ? usage_error("%s", err)
                                                                  : 0;
    if (!strcmp(opt, "--save")) {
        struct stat st;
        if (stat(v, &st) != 0 || !S_ISDIR(st.st_mode) || access(v, W_OK) != 0)
            return usage_error("--save: '%s' is not a writable directory", v);
        c->save_dir = v;
        return 0;
    }
    if (!strcmp(opt, "--hostname")) {
        if (!*v || strlen(v) > VL_SMTP_DOMAIN_BYTES_MAX || strpbrk(v, " \r\n\t"))
            return usage_error("--hostname: '%s' is not a host name", v);
        c->smtp.hostname = v;
        return 0;
    }
    if (!strcmp(opt, "--idle-timeout")) {
        uint32_t ms;
        if (sink_duration_parse(v, &ms) < 0 || ms == 0 || ms > INT32_MAX)
            return usage_error("--idle-timeout: bad duration '%s' (N, Nms or Ns)", v);
        c->idle_timeout_ms = ms;
        return 0;
    }
    static const struct { const char *name; uint64_t min, max; } nums[] = {
        { "--threads", 1, SINK_THREADS_MAX }, { "--max-conns", 1, 16000 },
        { "--stats-every", 1, 86400 }, { "--size", 0, UINT32_MAX },
        { "--rcpts-max", 1, VL_SMTP_RCPTS_PER_TXN_MAX }, { "--seed", 0, UINT64_MAX },
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (strcmp(opt, nums[i].name))
            continue;
        if (number_opt(opt, v, nums[i].min, nums[i].max, &n) < 0)
            return VL_EXIT_USAGE;
        switch (i) {
        case 0: c->threads = (uint32_t)n; break;
        case 1: c->conns_max = (uint32_t)n; break;
        case 2: c->stats_every_s = (uint32_t)n; break;
        case 3: c->smtp.size_max = n; break;
        case 4: c->smtp.rcpts_max = (uint32_t)n; break;
        default: c->seed = n; break;
        }
        return 0;
    }
    return usage_error("unknown option '%s'", opt);
}

static int sink_flag(struct sink_conf *c, const char *opt)
{
    if (!strcmp(opt, "--json"))
        c->json = true;
    else if (!strcmp(opt, "--no-pipelining"))
        c->smtp.pipelining = false;
    else if (!strcmp(opt, "--no-8bitmime"))
        c->smtp.eightbitmime = false;
    else if (!strcmp(opt, "--no-enhancedstatuscodes"))
        c->smtp.enhancedstatuscodes = false;
    else if (!strcmp(opt, "--tls-break"))
        c->tls_break = true;
    else
        return -1;
    return 0;
}

int cli_sink_main(int argc, char **argv)
{
    struct sink_conf c;
    sink_conf_defaults(&c);
    for (int i = 1; i < argc; i++) {
        char opt[64];
        const char *a = argv[i], *eq = strchr(a, '='), *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(sink_help, stdout);
            return VL_EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0)
            return usage_error("unexpected argument '%s'", a);
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof opt)
            return usage_error("unknown option '%s'", a);
        memcpy(opt, a, len);
        opt[len] = 0;
        if (sink_flag(&c, opt) == 0) {
            if (eq)
                return usage_error("%s takes no value", opt);
            continue;
        }
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return usage_error("%s needs a value", opt);
        int rc = sink_option(&c, opt, v);
        if (rc != 0)
            return rc;
    }
    if (c.listen_count == 0)
        return usage_error("--listen ADDR:PORT is required");
    char err[600];
    if (sink_conf_set_tls(&c, c.tls_cert, c.tls_key, err, sizeof err) < 0)
        return usage_error("%s", err);
    if (c.tls_break && !c.tls_cert)
        return usage_error("--tls-break needs --tls-cert and --tls-key (STARTTLS is offered, "
                           "then the handshake fails)");
    int rc = sink_run(&c);
    return rc == 0 ? VL_EXIT_OK : VL_EXIT_FAIL;
}
