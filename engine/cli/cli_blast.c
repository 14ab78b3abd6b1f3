/*
 * cli_blast.c - `volley blast`: options, the live progress line and the
 * reports; the load generator itself is engine/blast/. Bad options get a
 * message naming the option, exit 2; a run that could not start exits 1.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blast.h"
#include "blast_mx.h"
#include "volley/error.h"
#include "volley/hostport.h"

static const char blast_help[] =
"usage: volley blast TARGET... [--rate N/s | --concurrency N] [--count N | --duration T]\n"
"                   [options]\n"
"\n"
"A load generator for mail servers: sends generated mail over SMTP to each TARGET\n"
"(HOST:PORT: IPv4, [IPv6]:PORT or a host name; or a DOMAIN without a port: the\n"
"addresses of its most preferred MX hosts, or its own without MX, on --mx-port),\n"
"without the queue, and measures every phase of every connection and message.\n"
"Sessions take the targets in turn.\n"
"\n"
"load:\n"
"  --concurrency N      closed loop: N sessions, each sends its next message when the\n"
"                       previous one ended (default 10 when --rate is not given)\n"
"  --rate N[/s]         open loop: N messages per second at fixed intended times; a\n"
"                       message's latency counts from its intended time, so a slow\n"
"                       server shows as latency, not as a lower send rate\n"
"  --ramp A:B:STEPS     open loop in STEPS equal steps of --duration, rate A to B\n"
"  --sessions N         open loop: sessions at most (default 100); a due message waits\n"
"                       for a free one (and that wait counts in its latency)\n"
"  --count N            messages in all\n"
"  --duration T         no message starts after T (open loop: the schedule ends at T)\n"
"                       (T: N ms, Nms, Ns, Nm); --count or --duration is needed\n"
"  --threads N          reactor threads (default: number of cores, max 64); each session\n"
"                       holds about 72 KiB of buffers (more with STARTTLS)\n"
"\n"
"messages:\n"
"  --msgs-per-conn N    messages per connection, then QUIT (default 100)\n"
"  --rcpts-per-msg N    recipients per message (default 1, max 100)\n"
"  --size SPEC          content size: N (octets; k, M suffixes), uniform:A-B,\n"
"                       lognormal:MEDIAN:SIGMA, file:PATH (one size a line) (default 10k)\n"
"  --from ADDR          reverse-path (default blast@volley.test)\n"
"  --to PATTERN         recipients; {n} becomes 0 .. --rcpt-range - 1 in turn\n"
"                       (default rcpt{n}@blast.volley.test)\n"
"  --rcpt-range N       (default 1000)\n"
"  --rcpts FILE         recipients from a file, one a line, in turn (instead of --to)\n"
"  --helo NAME          EHLO name (default blast.volley.test)\n"
"  --seed S             sizes and message ids (default 1)\n"
"\n"
"protocol:\n"
"  --pipelining on|off  PIPELINING when offered (default on)\n"
"  --chunking on|off    BDAT (RFC 3030) instead of DATA when offered (default off)\n"
"  --starttls none|may|encrypt   (default none; encrypt: no STARTTLS is an error)\n"
"  --auth USER:PASS     AUTH PLAIN after EHLO (after STARTTLS when used)\n"
"  --bind ADDR          source address, repeatable (sessions take those of their target's\n"
"                       family in turn)\n"
"  --timeout T          connect, each send and each reply (default 30s)\n"
"  --mx-port N          port for DOMAIN targets (default 25)\n"
"  --dns ADDR:PORT      IPv4 resolver for DOMAIN targets (default: /etc/resolv.conf)\n"
"\n"
"output:\n"
"  --json FILE          everything measured, as JSON\n"
"  --report FILE.html   one self-contained HTML page with SVG charts\n"
"  --quiet              no progress line (it is shown only on a terminal anyway)\n"
"\n"
"Phases (ms): connect, banner, ehlo, tls, auth, mail_rcpt (MAIL written until the\n"
"last RCPT reply), data_354, body_write, final_reply, transaction (intended start\n"
"until the final reply) and schedule_lag (intended start until MAIL was written).\n"
"Exit: 0 the run completed (whatever the server answered), 1 it could not run,\n"
"2 usage error, 130 stopped by SIGINT (a second one closes everything at once).\n";

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("volley blast: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see 'volley blast --help')\n", stderr);
    return VL_EXIT_USAGE;
}

static int num(const char *opt, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-' || n < min || n > max) {
        usage_error("%s: '%s' is not a whole number in %llu..%llu", opt, v,
                    (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = n;
    return 0;
}

/* N (ms), Nms, Ns, Nm. */
static int blast_duration_parse(const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || errno || !(d > 0) || !isfinite(d))
        return -1;
    if (!strcmp(end, "s"))
        d *= 1000;
    else if (!strcmp(end, "m"))
        d *= 60000;
    else if (*end && strcmp(end, "ms"))
        return -1;
    if (d < 1 || d > 86400000.0 * 7)
        return -1;
    *out = (uint64_t)d;
    return 0;
}

static int target_add(struct blast_conf *c, const char *v, bool bind)
{
    struct vl_hostport hp;
    const char *why = NULL;
    if (vl_hostport_parse(v, bind ? 1 : 0, !bind, &hp, &why) < 0)
        return usage_error("%s '%s': %s", bind ? "--bind" : "target", v, why);
    if (!bind && hp.port == 0)
        return usage_error("target '%s': port 0", v);
    if (!hp.is_ip) {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
        int rc = getaddrinfo(hp.host, NULL, &hints, &ai);
        if (rc != 0 || !ai)
            return usage_error("target '%s': cannot resolve %s: %s", v, hp.host,
                               gai_strerror(rc));
        memcpy(&hp.addr, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
        if (hp.addr.sa.sa_family == AF_INET)
            hp.addr.in4.sin_port = htons(hp.port);
        else
            hp.addr.in6.sin6_port = htons(hp.port);
    }
    socklen_t len = hp.addr.sa.sa_family == AF_INET ? sizeof hp.addr.in4 : sizeof hp.addr.in6;
    if (bind) {
        if (c->bind_count == BLAST_BINDS_MAX)
            return usage_error("--bind: at most %u addresses", BLAST_BINDS_MAX);
        c->bind[c->bind_count] = hp.addr;
        if (hp.addr.sa.sa_family == AF_INET)
            c->bind[c->bind_count].in4.sin_port = 0;
        else
            c->bind[c->bind_count].in6.sin6_port = 0;
        c->bind_len[c->bind_count++] = len;
        return 0;
    }
    if (c->target_count == BLAST_TARGETS_MAX)
        return usage_error("at most %u targets", BLAST_TARGETS_MAX);
    c->target[c->target_count] = hp.addr;
    c->target_len[c->target_count] = len;
    snprintf(c->target_name[c->target_count++], sizeof c->target_name[0], "%s", v);
    return 0;
}

static int rcpts_file(struct blast_conf *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return usage_error("--rcpts %s: %s", path, strerror(errno));
    char line[VL_SMTP_PATH_BYTES_MAX + 8];
    uint32_t cap = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        if (n >= VL_SMTP_PATH_BYTES_MAX - 2 || !strchr(line, '@') || strpbrk(line, " <>\t")) {
            fclose(f);
            return usage_error("--rcpts %s: line %u is not an address", path, lineno);
        }
        if (c->rcpt_list_count == cap) {
            cap = cap ? cap * 2 : 64;
            char **nl = realloc(c->rcpt_list, cap * sizeof *nl);
            if (!nl) {
                fclose(f);
                return usage_error("out of memory");
            }
            c->rcpt_list = nl;
        }
        c->rcpt_list[c->rcpt_list_count++] = strdup(line);
    }
    fclose(f);
    if (!c->rcpt_list_count)
        return usage_error("--rcpts %s: no addresses in it", path);
    return 0;
}

static int on_off(const char *opt, const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes"))
        *out = true;
    else if (!strcmp(v, "off") || !strcmp(v, "no"))
        *out = false;
    else
        return usage_error("%s: '%s' is not on or off", opt, v);
    return 0;
}

#define CLI_BLAST_DOMAINS_MAX BLAST_TARGETS_MAX

struct cli_out {
    const char *json, *report;
    bool quiet, rate_given, conc_given;
    const char *dns;
    uint16_t mx_port;
    const char *domains[CLI_BLAST_DOMAINS_MAX];   /* targets to resolve by MX */
    uint32_t domain_count;
};

static int blast_option(struct blast_conf *c, struct cli_out *o, const char *opt, const char *v)
{
    uint64_t n;
    char err[512];
    if (!strcmp(opt, "--rate")) {
        char *end;
        errno = 0;
        double r = strtod(v, &end);
        if (end == v || errno || !(r > 0) || r > 10e6 || (*end && strcmp(end, "/s")))
            return usage_error("--rate: '%s' is not a rate (N or N/s, up to 10000000)", v);
        c->rate = r;
        o->rate_given = true;
        return 0;
    }
    if (!strcmp(opt, "--ramp")) {
        if (blast_ramp_parse(v, &c->rate, &c->ramp_end, &c->ramp_steps) < 0)
            return usage_error("--ramp: '%s' is not START:END:STEPS (rates > 0, 2..%u steps)",
                               v, BLAST_RAMP_STEPS_MAX);
        o->rate_given = true;
        return 0;
    }
    if (!strcmp(opt, "--duration") || !strcmp(opt, "--timeout")) {
        uint64_t ms;
        if (blast_duration_parse(v, &ms) < 0)
            return usage_error("%s: bad duration '%s' (N ms, Nms, Ns or Nm)", opt, v);
        if (opt[2] == 'd')
            c->duration_ms = ms;
        else if (ms > INT32_MAX)
            return usage_error("--timeout: '%s' is too long", v);
        else
            c->timeout_ms = (uint32_t)ms;
        return 0;
    }
    if (!strcmp(opt, "--size")) {
        blast_size_fini(&c->size);
        return blast_size_parse(v, &c->size, err, sizeof err) < 0 ? usage_error("%s", err) : 0;
    }
    if (!strcmp(opt, "--from")) {
        if (strlen(v) >= VL_SMTP_PATH_BYTES_MAX - 2 || strpbrk(v, " <>\t\r\n"))
            return usage_error("--from: '%s' is not an address", v);
        c->from = v;
        return 0;
    }
    if (!strcmp(opt, "--to")) {
        if (strlen(v) >= VL_SMTP_PATH_BYTES_MAX - 24 || !strchr(v, '@') ||
            strpbrk(v, " <>\t\r\n"))
            return usage_error("--to: '%s' is not an address pattern", v);
        c->to_pattern = v;
        return 0;
    }
    if (!strcmp(opt, "--helo")) {
        if (!*v || strlen(v) > VL_SMTP_DOMAIN_BYTES_MAX || strpbrk(v, " <>\t\r\n"))
            return usage_error("--helo: '%s' is not a host name", v);
        c->helo = v;
        return 0;
    }
    if (!strcmp(opt, "--rcpts"))
        return rcpts_file(c, v);
    if (!strcmp(opt, "--dns")) {
        o->dns = v;
        return 0;
    }
    if (!strcmp(opt, "--mx-port")) {
        if (num(opt, v, 1, 65535, &n) < 0)
            return VL_EXIT_USAGE;
        o->mx_port = (uint16_t)n;
        return 0;
    }
    if (!strcmp(opt, "--bind"))
        return target_add(c, v, true);
    if (!strcmp(opt, "--pipelining"))
        return on_off(opt, v, &c->pipelining);
    if (!strcmp(opt, "--chunking"))
        return on_off(opt, v, &c->chunking);
    if (!strcmp(opt, "--starttls")) {
        if (!strcmp(v, "none"))
            c->tls = BLAST_TLS_NONE;
        else if (!strcmp(v, "may"))
            c->tls = BLAST_TLS_MAY;
        else if (!strcmp(v, "encrypt"))
            c->tls = BLAST_TLS_ENCRYPT;
        else
            return usage_error("--starttls: '%s' is not none, may or encrypt", v);
        return 0;
    }
    if (!strcmp(opt, "--auth")) {
        const char *colon = strchr(v, ':');
        if (!colon || colon == v || strlen(v) > 400)
            return usage_error("--auth: expected USER:PASS");
        static char user[256];
        snprintf(user, sizeof user, "%.*s", (int)(colon - v), v);
        c->auth_user = user;
        c->auth_pass = colon + 1;
        return 0;
    }
    if (!strcmp(opt, "--json") || !strcmp(opt, "--report")) {
        if (!*v)
            return usage_error("%s needs a file name", opt);
        *(opt[2] == 'j' ? &o->json : &o->report) = v;
        return 0;
    }
    static const struct { const char *name; uint64_t min, max; } nums[] = {
        { "--concurrency", 1, BLAST_SESSIONS_MAX }, { "--sessions", 1, BLAST_SESSIONS_MAX },
        { "--count", 1, UINT64_MAX / 2 }, { "--threads", 1, BLAST_THREADS_MAX },
        { "--msgs-per-conn", 1, UINT32_MAX }, { "--rcpts-per-msg", 1, VL_SMTP_RCPTS_PER_TXN_MAX },
        { "--rcpt-range", 1, UINT64_MAX / 2 }, { "--seed", 0, UINT64_MAX },
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (strcmp(opt, nums[i].name))
            continue;
        if (num(opt, v, nums[i].min, nums[i].max, &n) < 0)
            return VL_EXIT_USAGE;
        switch (i) {
        case 0: c->concurrency = (uint32_t)n; o->conc_given = true; break;
        case 1: c->sessions_max = (uint32_t)n; break;
        case 2: c->count = n; break;
        case 3: c->threads = (uint32_t)n; break;
        case 4: c->msgs_per_conn = (uint32_t)n; break;
        case 5: c->rcpts_per_msg = (uint32_t)n; break;
        case 6: c->rcpt_range = n; break;
        default: c->seed = n; break;
        }
        return 0;
    }
    return usage_error("unknown option '%s'", opt);
}

static void progress_line(const struct blast_live *l, void *user)
{
    uint64_t *prev_ok = user;
    fprintf(stderr, "\r\033[K%6.1fs  sent %llu  ok %llu  4xx %llu  5xx %llu  err %llu  "
            "%llu/s  conns %llu  backlog %llu", l->elapsed_ms / 1000.0,
            (unsigned long long)l->started, (unsigned long long)l->ok,
            (unsigned long long)l->tempfail, (unsigned long long)l->permfail,
            (unsigned long long)l->errors, (unsigned long long)(l->ok - *prev_ok),
            (unsigned long long)l->conns_open, (unsigned long long)l->backlog);
    fflush(stderr);
    *prev_ok = l->ok;
}

static int blast_check(struct blast_conf *c, struct cli_out *o)
{
    if (c->target_count == 0)
        return usage_error("no TARGET (HOST:PORT) given");
    if (o->rate_given && o->conc_given)
        return usage_error("--rate/--ramp (open loop) and --concurrency (closed loop) exclude "
                           "each other");
    if (!c->count && !c->duration_ms)
        return usage_error("give --count N or --duration T (a run must end)");
    if (c->ramp_steps > 1 && !c->duration_ms)
        return usage_error("--ramp needs --duration (the steps divide it)");
    if (c->rcpts_per_msg * (strlen(c->to_pattern) + 32) + 600 > BLAST_CMD_BYTES_MAX)
        return usage_error("--rcpts-per-msg %u with recipients this long do not fit one "
                           "pipelined group", c->rcpts_per_msg);
    if (c->rcpt_list_count && c->rcpts_per_msg * (VL_SMTP_PATH_BYTES_MAX + 16) + 600 >
                              BLAST_CMD_BYTES_MAX && c->rcpts_per_msg > 40)
        return usage_error("--rcpts-per-msg %u: at most 40 with --rcpts", c->rcpts_per_msg);
    for (uint32_t t = 0; t < c->target_count && c->bind_count; t++) {
        bool family = false;
        for (uint32_t b = 0; b < c->bind_count; b++)
            family |= c->bind[b].sa.sa_family == c->target[t].sa.sa_family;
        if (!family)
            return usage_error("--bind: no source address of the family of target %s",
                               c->target_name[t]);
    }
    uint32_t sessions = c->rate > 0 ? c->sessions_max : c->concurrency;
    if (c->threads > sessions)
        c->threads = sessions;     /* a thread without a session has nothing to do */
    if (c->count && c->threads > c->count)
        c->threads = (uint32_t)c->count;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    (void)cores;
    return 0;
}

int cli_blast_main(int argc, char **argv)
{
    struct blast_conf c = {
        .threads = 0, .concurrency = 10, .sessions_max = 100, .msgs_per_conn = 100,
        .rcpts_per_msg = 1, .size = { .kind = BLAST_SIZE_FIXED, .lo = 10240, .hi = 10240 },
        .from = "blast@volley.test", .to_pattern = "rcpt{n}@blast.volley.test",
        .rcpt_range = 1000, .helo = "blast.volley.test", .pipelining = true,
        .timeout_ms = 30000, .seed = 1,
    };
    struct cli_out o = { .mx_port = 25 };
    int rc = VL_EXIT_OK;
    for (int i = 1; i < argc && rc == VL_EXIT_OK; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(blast_help, stdout);
            return VL_EXIT_OK;
        }
        if (!strcmp(a, "--quiet")) {
            o.quiet = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            struct vl_hostport hp;
            const char *why;
            if (vl_hostport_parse(a, 0, true, &hp, &why) < 0 &&
                vl_hostport_parse(a, 25, true, &hp, &why) == 0 && !hp.is_ip) {
                if (o.domain_count == CLI_BLAST_DOMAINS_MAX)
                    rc = usage_error("at most %u DOMAIN targets", CLI_BLAST_DOMAINS_MAX);
                else
                    o.domains[o.domain_count++] = a;   /* by MX, once the options are read */
                continue;
            }
            rc = target_add(&c, a, false);
            continue;
        }
        char opt[64];
        const char *eq = strchr(a, '='), *v;
        if (eq) {
            snprintf(opt, sizeof opt, "%.*s", (int)(eq - a), a);
            v = eq + 1;
        } else {
            snprintf(opt, sizeof opt, "%s", a);
            if (i + 1 >= argc) {
                rc = usage_error("%s needs a value", a);
                break;
            }
            v = argv[++i];
        }
        rc = blast_option(&c, &o, opt, v);
    }
    if (rc == VL_EXIT_OK && c.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c.threads = n < 1 ? 1 : n > (long)BLAST_THREADS_MAX ? BLAST_THREADS_MAX : (uint32_t)n;
    }
    for (uint32_t i = 0; i < o.domain_count && rc == VL_EXIT_OK; i++) {
        char msg[512];
        int r = blast_mx_targets(&c, o.domains[i], o.mx_port, o.dns, msg, sizeof msg);
        if (r == VL_E_INVALID)
            rc = usage_error("%s", msg);
        else if (r < 0) {
            fprintf(stderr, "volley blast: target %s: %s\n", o.domains[i], msg);
            rc = VL_EXIT_FAIL;
        } else if (!o.quiet)
            fprintf(stderr, "volley blast: %s\n", msg);
    }
    if (rc == VL_EXIT_OK)
        rc = blast_check(&c, &o);
    if (rc != VL_EXIT_OK)
        goto out;

    struct blast_result res;
    memset(&res, 0, sizeof res);
    char err[512] = "";
    uint64_t prev_ok = 0;
    bool tty = !o.quiet && isatty(STDERR_FILENO);
    int r = blast_run(&c, &res, tty ? progress_line : NULL, 1000, &prev_ok, err, sizeof err);
    if (tty)
        fputs("\r\033[K", stderr);
    if (r < 0) {
        fprintf(stderr, "volley blast: %s\n", err[0] ? err : vl_strerror(r));
        blast_result_fini(&res);
        rc = VL_EXIT_FAIL;
        goto out;
    }
    blast_report_text(stdout, &c, &res);
    fflush(stdout);
    if (o.json && blast_report_json(o.json, &c, &res) < 0) {
        fprintf(stderr, "volley blast: cannot write --json %s\n", o.json);
        rc = VL_EXIT_FAIL;
    }
    if (o.report && (r = blast_report_html(o.report, &c, &res)) < 0) {
        fprintf(stderr, "volley blast: cannot write --report %s: %s\n", o.report,
                vl_strerror(r));
        rc = VL_EXIT_FAIL;
    }
    if (rc == VL_EXIT_OK && res.interrupted)
        rc = 130;
    blast_result_fini(&res);
out:
    blast_size_fini(&c.size);
    for (uint32_t i = 0; i < c.rcpt_list_count; i++)
        free(c.rcpt_list[i]);
    free(c.rcpt_list);
    return rc;
}
