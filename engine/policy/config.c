/*
 * config.c - parse and validate the run/send options once (see config.h).
 * Diagnostics: one "volley CMD: ..." line per bad option, naming it.
 */
#include "volley/config.h"

#include "ip_class.h"
#include "volley/addr.h"
#include "volley/hostport.h"
#include "volley/limits.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char vl_config_usage[] =
    "  --data DIR              queue directory (default ./volley-data)\n"
    "  --shards N              shard threads (default: number of cores)\n"
    "  --dns HOST:PORT         resolver to ask instead of /etc/resolv.conf\n"
    "  --mx-port N             port to deliver to (default 25)\n"
    "  --route DOMAIN=HOST:PORT  static route ('*' = every domain); skips MX lookup\n"
    "  --allow-dest CLASSES    also deliver to these MX/A or [address literal] classes:\n"
    "                          comma list of loopback, private, link-local, reserved, or\n"
    "                          any; repeatable. By default only public addresses are\n"
    "                          used: an MX address of another class is skipped, and a\n"
    "                          domain left with none bounces 5.4.4 naming the class.\n"
    "                          Unspecified and multicast: never. --route: always allowed\n"
    "  --max-rcpts N           recipients per SMTP transaction (1-100, default 100)\n"
    "  --retry-base DURATION   first retry delay (default 5m)\n"
    "  --retry-max DURATION    longest retry interval (default 1h)\n"
    "  --max-age DURATION      queue lifetime before a deferred recipient expires (default 5d)\n"
    "  --delay-warning DURATION  send an Action: delayed notice after this (default off)\n"
    "  --dsn-interval DURATION  gather a message's failed recipients this long into one\n"
    "                          DSN (default 5s; 0 = a DSN per commit). Every DSN is\n"
    "                          committed before the run ends (stop, or nothing left)\n"
    "  --host-backoff DURATION  first interval a failing MX host is skipped; doubles per\n"
    "                          failure up to 10m or DURATION if longer (default 30s)\n"
    "  --log FILE              delivery log, JSON lines ('-' = stdout)\n"
    "  --conns-per-dest N      connections per destination host (default 20)\n"
    "  --msgs-per-conn N       messages per connection before QUIT (default 100)\n"
    "  --idle DURATION         close an idle pooled connection after (default 5s)\n"
    "  --connect-timeout DURATION  TCP connect deadline (default 30s)\n"
    "  --timeout-scale F       multiply every SMTP command timeout by F (default 1)\n"
    "  --ehlo NAME             name sent in EHLO (default: this host's name)\n"
    "  --tls LEVEL             STARTTLS: 'may' (default: when offered, no certificate\n"
    "                          check, else plaintext; a failed handshake is retried in\n"
    "                          plaintext), 'none' (never), 'encrypt' (required, no\n"
    "                          check: else deferred 4.7.0) or 'verify' (required, chain\n"
    "                          and MX name checked: else deferred 4.7.5)\n"
    "  --tls-ca-file FILE      'verify' trusts the CAs in FILE (PEM) instead of the system's\n"
    "  --tls-fallback DURATION  under 'may', an MX host whose TLS handshake failed gets\n"
    "                          plaintext for this long (default 1h)\n"
    "  --config FILE           read options from FILE first (volley.conf; see 'volley\n"
    "                          config check'); options given here override it\n"
    "  --until-empty           exit once nothing is ready or in flight\n"
    "  --quiet                 no progress output\n"
    "  --listen ADDR:PORT      accept mail over SMTP there too (repeatable; [IPv6]:PORT)\n"
    "  --allow NET             clients (CIDR) that may relay through --listen; repeatable.\n"
    "                          Without it only loopback may; with it only the NETs may\n"
    "  --max-msg-size SIZE     largest message accepted over SMTP (default 32M)\n"
    "  --max-rcpts-per-msg N   recipients per SMTP message (default 100)\n"
    "  --max-conns-per-ip N    SMTP connections per client address (default 20)\n"
    "  --intake-timeout DURATION  SMTP client's command/DATA deadline (default 5m)\n"
    "  --listen-tls ADDR:PORT  as --listen, with implicit TLS (submission on 465)\n"
    "  --tls-cert FILE         PEM certificate: --listen offers STARTTLS with it\n"
    "  --tls-key FILE          its private key (default: in the --tls-cert file)\n"
    "  --auth-file FILE        user:HASH lines (crypt(3), e.g. openssl passwd -6): SMTP AUTH\n"
    "                          PLAIN/LOGIN after STARTTLS; authenticated clients may relay\n"
    "  --commit-giveup DURATION  stop (exit 1) once outcomes could not be recorded for\n"
    "                          this long; they are retried with backoff until then (default 5m)\n"
    "DURATION: a number of seconds, or with a unit: 250ms, 30s, 5m, 1h, 5d.\n";

void vl_config_defaults(struct vl_config *c)
{
    memset(c, 0, sizeof *c);
    c->data_dir = "./volley-data";
    c->shards = 0;                  /* not given: the recorded count, or the cores */
    c->mx_port = 25;
    c->rcpts_per_txn_max = VL_SMTP_RCPTS_PER_TXN_MAX;
    c->retry_ms_base = 5ull * 60 * 1000;
    c->retry_ms_max = 60ull * 60 * 1000;
    c->age_ms_max = 5ull * 24 * 3600 * 1000;
    c->conns_per_dest_max = 20;
    c->msgs_per_conn_max = 100;
    c->idle_ms_max = 5000;
    c->connect_ms_timeout = 30000;
    c->timeout_scale = 1.0;
    c->host_fail_ms_min = 30000;
    c->commit_giveup_ms = 5ull * 60 * 1000;
    c->dsn_interval_ms = 5000;
    c->msg_bytes_max = 32ull << 20;
    c->rcpts_per_msg_max = 100;
    c->conns_per_ip_max = 20;
    c->intake_ms_timeout = 5ull * 60 * 1000;
    c->tls_fallback_ms = 3600ull * 1000;
    if (gethostname(c->ehlo_buf, sizeof c->ehlo_buf - 1) != 0 || !c->ehlo_buf[0])
        strcpy(c->ehlo_buf, "localhost");
    c->ehlo_name = c->ehlo_buf;
}

/* The longest duration accepted: 100 years, beyond any message's life in the
 * queue, and far below UINT64_MAX ms (so no arithmetic below can overflow). */
#define CONFIG_DURATION_MS_MAX (36500ull * 86400u * 1000u)

/* DIGITS[.DIGITS][ms|s|m|h|d], plain seconds without a unit. Integer arithmetic
 * only: no sign, exponent, hex, blanks, nan or inf can get in (strtod took
 * them all); digits past a nanosecond are ignored; rounds half up to a ms. */
int vl_parse_duration_ms(const char *s, uint64_t *out)
{
    const char *p = s;
    uint64_t whole = 0, frac = 0, frac_den = 1;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (whole > CONFIG_DURATION_MS_MAX)
            return -1;                           /* too long already: stop before overflow */
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p))
            return -1;
        for (; isdigit((unsigned char)*p); p++) {
            if (frac_den < 1000000000ull) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_den *= 10;
            }
        }
    }
    uint64_t mult;
    if (!strcmp(p, "ms")) mult = 1;
    else if (!strcmp(p, "") || !strcmp(p, "s")) mult = 1000;
    else if (!strcmp(p, "m")) mult = 60ull * 1000;
    else if (!strcmp(p, "h")) mult = 3600ull * 1000;
    else if (!strcmp(p, "d")) mult = 86400ull * 1000;
    else return -1;
    if (whole > CONFIG_DURATION_MS_MAX / mult)
        return -1;
    uint64_t ms = whole * mult + (frac * mult + frac_den / 2) / frac_den;   /* < 2^57 */
    if (ms > CONFIG_DURATION_MS_MAX)
        return -1;
    *out = ms;
    return 0;
}

static int config_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    errno = 0;
    if (!s || !isdigit((unsigned char)s[0]))
        return -1;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int config_route(struct vl_config *c, const char *cmd, const char *v, FILE *err)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v) {
        fprintf(err, "volley %s: --route '%s': expected DOMAIN=HOST:PORT\n", cmd, v);
        return -1;
    }
    if (c->route_count == VL_ROUTES_MAX) {
        fprintf(err, "volley %s: --route: more than %u routes\n", cmd, VL_ROUTES_MAX);
        return -1;
    }
    struct vl_route *r = &c->routes[c->route_count];
    size_t dlen = (size_t)(eq - v);
    const char *why = NULL;
    if (!(dlen == 1 && v[0] == '*') && vl_domain_check(v, dlen, &why) != 0) {
        fprintf(err, "volley %s: --route '%s': bad domain: %s\n", cmd, v, why);
        return -1;
    }
    if (dlen >= sizeof r->domain)
        return -1;
    for (size_t i = 0; i < dlen; i++)
        r->domain[i] = (char)tolower((unsigned char)v[i]);
    r->domain[dlen] = '\0';
    if (vl_hostport_parse(eq + 1, 0, true, &r->to, &why) != 0) {
        fprintf(err, "volley %s: --route '%s': expected HOST:PORT after '=': %s\n", cmd, v,
                why);
        return -1;
    }
    c->route_count++;
    return 0;
}

/* --listen IP:PORT; port 0 (any free port, which `run` reports) is allowed. */
static int config_listen(const char *v, struct vl_hostport *hp, const char **why)
{
    char buf[VL_HOSTPORT_HOST_BYTES_MAX + 16];
    size_t n = strlen(v);
    bool any = n >= 2 && !strcmp(v + n - 2, ":0");
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, v, n + 1);
    if (any)
        buf[n - 1] = '1';
    if (vl_hostport_parse(buf, 0, false, hp, why) != 0)
        return -1;
    if (!hp->is_ip) {
        *why = "not an IP address";
        return -1;
    }
    if (any) {
        hp->port = 0;
        if (hp->addr.sa.sa_family == AF_INET)
            hp->addr.in4.sin_port = 0;
        else
            hp->addr.in6.sin6_port = 0;
    }
    return 0;
}

enum config_kind { CK_FLAG, CK_STR, CK_UINT, CK_PORT, CK_DUR, CK_ROUTE, CK_SCALE, CK_HOSTPORT,
                   CK_TLS, CK_ALLOW, CK_LISTEN, CK_NET, CK_SIZE,
                   CK_LISTEN_TLS };

struct config_opt {
    const char *name;
    enum config_kind kind;
    size_t off;                   /* field offset in struct vl_config */
    unsigned long lo, hi;         /* CK_UINT range */
};

#define OFF(f) offsetof(struct vl_config, f)
static const struct config_opt config_opts[] = {
    { "--data",            CK_STR,      OFF(data_dir), 0, 0 },
    { "--shards",          CK_UINT,     OFF(shards), 1, VL_SHARDS_MAX },
    { "--dns",             CK_HOSTPORT, OFF(dns), 0, 0 },
    { "--mx-port",         CK_PORT,     OFF(mx_port), 1, 65535 },
    { "--route",           CK_ROUTE,    0, 0, 0 },
    { "--allow-dest",      CK_ALLOW,    OFF(allow_dest), 0, 0 },
    { "--max-rcpts",       CK_UINT,     OFF(rcpts_per_txn_max), 1, VL_SMTP_RCPTS_PER_TXN_MAX },
    { "--retry-base",      CK_DUR,      OFF(retry_ms_base), 0, 0 },
    { "--retry-max",       CK_DUR,      OFF(retry_ms_max), 0, 0 },
    { "--max-age",         CK_DUR,      OFF(age_ms_max), 0, 0 },
    { "--delay-warning",   CK_DUR,      OFF(delay_warning_ms), 0, 0 },
    { "--dsn-interval",    CK_DUR,      OFF(dsn_interval_ms), 0, 0 },
    { "--host-backoff",    CK_DUR,      OFF(host_fail_ms_min), 0, 0 },
    { "--log",             CK_STR,      OFF(log_path), 0, 0 },
    { "--conns-per-dest",  CK_UINT,     OFF(conns_per_dest_max), 1, 10000 },
    { "--msgs-per-conn",   CK_UINT,     OFF(msgs_per_conn_max), 1, 1000000 },
    { "--idle",            CK_DUR,      OFF(idle_ms_max), 0, 0 },
    { "--connect-timeout", CK_DUR,      OFF(connect_ms_timeout), 0, 0 },
    { "--timeout-scale",   CK_SCALE,    OFF(timeout_scale), 0, 0 },
    { "--ehlo",            CK_STR,      OFF(ehlo_name), 0, 0 },
    { "--tls",             CK_TLS,      OFF(tls_level), 0, 0 },
    { "--listen",          CK_LISTEN,   OFF(listen), 0, 0 },
    { "--until-empty",     CK_FLAG,     OFF(until_empty), 0, 0 },
    { "--quiet",           CK_FLAG,     OFF(quiet), 0, 0 },
    { "--commit-giveup",   CK_DUR,      OFF(commit_giveup_ms), 0, 0 },
    /* not in vl_config_usage: for tests and tuning (config.h) */
    { "--dns-inflight-max", CK_UINT,    OFF(dns_inflight_max), 1, VL_DNS_INFLIGHT_MAX },
    { "--sessions-max",    CK_UINT,     OFF(sessions_max), 1, VL_SESSIONS_PER_SHARD_MAX },
    /* the injection listener (issue 11) */
    { "--allow",           CK_NET,      0, 0, 0 },
    { "--max-msg-size",    CK_SIZE,     OFF(msg_bytes_max), 1, VL_MSG_BYTES_MAX },
    { "--max-rcpts-per-msg", CK_UINT,   OFF(rcpts_per_msg_max), 1, 10000 },
    { "--max-conns-per-ip", CK_UINT,    OFF(conns_per_ip_max), 1, 100000 },
    { "--intake-timeout",  CK_DUR,      OFF(intake_ms_timeout), 0, 0 },
    { "--listen-tls",      CK_LISTEN_TLS, 0, 0, 0 },
    { "--tls-cert",        CK_STR,      OFF(tls_cert), 0, 0 },
    { "--tls-key",         CK_STR,      OFF(tls_key), 0, 0 },
    { "--auth-file",       CK_STR,      OFF(auth_file), 0, 0 },
    /* TLS policy (issue 14) */
    { "--tls-ca-file",     CK_STR,      OFF(tls_ca_file), 0, 0 },
    { "--tls-fallback",    CK_DUR,      OFF(tls_fallback_ms), 0, 0 },
};
#undef OFF

static int config_set(struct vl_config *c, const char *cmd, const struct config_opt *o,
                      const char *v, FILE *err)
{
    char *field = (char *)c + o->off;
    unsigned long u;
    uint64_t ms;
    struct vl_hostport hp;
    const char *why = NULL;
    switch (o->kind) {
    case CK_FLAG:  *(bool *)field = true; return 0;
    case CK_STR:   *(const char **)field = v; return 0;
    case CK_ROUTE: return config_route(c, cmd, v, err);
    case CK_UINT:
    case CK_PORT:
        if (config_uint(v, o->lo, o->hi, &u) != 0)
            break;
        if (o->kind == CK_PORT)
            *(uint16_t *)field = (uint16_t)u;
        else
            *(unsigned *)field = (unsigned)u;
        return 0;
    case CK_DUR:
        if (vl_parse_duration_ms(v, &ms) != 0)
            break;
        *(uint64_t *)field = ms;
        return 0;
    case CK_SCALE: {
        char *end;
        double d = strtod(v, &end);
        if (end == v || *end || !(d > 0.0 && d <= 100.0))
            break;
        *(double *)field = d;
        return 0;
    }
    case CK_HOSTPORT:
        if (vl_hostport_parse(v, 0, true, &hp, &why) != 0)
            break;
        *(const char **)field = v;
        return 0;
    case CK_ALLOW:
        if (vl_ip_allow_parse(v, (uint32_t *)field, &why) == 0)
            return 0;
        fprintf(err, "volley %s: %s '%s': %s\n", cmd, o->name, v, why);
        return -1;
    case CK_LISTEN:
    case CK_LISTEN_TLS:
        if (c->listen_count == VL_LISTEN_MAX) {
            fprintf(err, "volley %s: --listen: more than %u addresses\n", cmd, VL_LISTEN_MAX);
            return -1;
        }
        if (config_listen(v, &c->listens[c->listen_count], &why) != 0) {
            fprintf(err, "volley %s: %s '%s': expected IP:PORT or [IPv6]:PORT: %s\n",
                    cmd, o->name, v, why);
            return -1;
        }
        c->listen_tls[c->listen_count] = o->kind == CK_LISTEN_TLS;
        if (!c->listen_count++)
            c->listen = v;
        return 0;
    case CK_NET:
        if (c->allow_count == VL_ALLOW_NETS_MAX) {
            fprintf(err, "volley %s: --allow: more than %u networks\n", cmd,
                    VL_ALLOW_NETS_MAX);
            return -1;
        }
        if (vl_net_parse(v, &c->allow[c->allow_count], &why) != 0) {
            fprintf(err, "volley %s: --allow '%s': expected IP/LEN (CIDR) or IP: %s\n",
                    cmd, v, why);
            return -1;
        }
        c->allow_count++;
        return 0;
    case CK_SIZE: {
        char *end;
        errno = 0;
        if (!isdigit((unsigned char)v[0]))
            break;
        unsigned long long n = strtoull(v, &end, 10);
        unsigned long long mult = !strcmp(end, "") ? 1 : !strcmp(end, "k") ? 1024
                                : !strcmp(end, "M") ? 1024 * 1024 : 0;
        if (errno || !mult || n == 0 || n > o->hi / mult)
            break;
        *(uint64_t *)field = n * mult;
        return 0;
    }
    case CK_TLS:
        if (vl_tls_level_parse(v, (enum vl_tls_level *)field) != 0)
            break;
        return 0;
    }
    static const char *const expect[] = {
        [CK_UINT] = "a whole number in range",
        [CK_DUR] = "a duration: a number and a unit ms, s, m, h or d, like 30s, 1.5m, 5d "
                   "(no sign, exponent, nan or inf; at most 36500d)",
        [CK_SCALE] = "a number > 0 and <= 100", [CK_HOSTPORT] = "HOST:PORT",
        [CK_TLS] = "one of none, may, encrypt, verify",
        [CK_SIZE] = "a size in bytes, with an optional k or M, at most 64M",
    };
    if (o->kind == CK_UINT || o->kind == CK_PORT)
        fprintf(err, "volley %s: %s '%s': expected a whole number from %lu to %lu\n",
                cmd, o->name, v, o->lo, o->hi);
    else
        fprintf(err, "volley %s: %s '%s': expected %s\n", cmd, o->name, v, expect[o->kind]);
    return -1;
}

static bool config_list_reset_kind(enum config_kind k)
{
    return k == CK_ROUTE || k == CK_NET || k == CK_ALLOW || k == CK_LISTEN || k == CK_LISTEN_TLS;
}

/* Forget the file's entries of a repeatable option (the command line gives its own). */
static void config_list_reset(struct vl_config *c, enum config_kind k)
{
    switch (k) {
    case CK_ROUTE:  c->route_count = 0; break;
    case CK_NET:    c->allow_count = 0; break;
    case CK_ALLOW:  c->allow_dest = 0; break;
    case CK_LISTEN:
    case CK_LISTEN_TLS:
        c->listen_count = 0;
        c->listen = NULL;
        break;
    default: break;
    }
}

/* A command-line option by name ("--retry-base"), or NULL. */
static const struct config_opt *config_opt_find(const char *name, size_t len)
{
    for (size_t k = 0; k < sizeof config_opts / sizeof config_opts[0]; k++)
        if (strlen(config_opts[k].name) == len && !strncmp(name, config_opts[k].name, len))
            return &config_opts[k];
    return NULL;
}

int vl_config_set_option(struct vl_config *c, const char *cmd, const char *name,
                         const char *v, FILE *err)
{
    const struct config_opt *o = config_opt_find(name, strlen(name));
    if (!o)
        return 1;
    if (o->kind == CK_FLAG) {
        if (v && strcmp(v, "true") && strcmp(v, "false")) {
            fprintf(err, "volley %s: %s: expected true or false\n", cmd, o->name);
            return -1;
        }
        *(bool *)((char *)c + o->off) = !v || !strcmp(v, "true");
        return 0;
    }
    return config_set(c, cmd, o, v, err);
}

bool vl_config_option_takes_value(const char *name)
{
    const struct config_opt *o = config_opt_find(name, strlen(name));
    return o && o->kind != CK_FLAG;
}

bool vl_config_option_repeats(const char *name)
{
    const struct config_opt *o = config_opt_find(name, strlen(name));
    return o && (o->kind == CK_ROUTE || o->kind == CK_NET || o->kind == CK_LISTEN ||
                 o->kind == CK_LISTEN_TLS || o->kind == CK_ALLOW);
}

size_t vl_config_option_count(void) { return sizeof config_opts / sizeof config_opts[0]; }
const char *vl_config_option_name(size_t i)
{
    return i < vl_config_option_count() ? config_opts[i].name : NULL;
}

int vl_config_parse_args(struct vl_config *c, const char *cmd, int argc, char **argv,
                         char **rest, int *rest_n, FILE *err)
{
    *rest_n = 0;
    bool cli_list[CK_LISTEN_TLS + 1] = { false };   /* the command line took this list over */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const struct config_opt *o = NULL;
        const char *inline_v = NULL;
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(a, "--config=", 9))
            continue;
        for (size_t k = 0; k < sizeof config_opts / sizeof config_opts[0]; k++) {
            size_t n = strlen(config_opts[k].name);
            if (!strncmp(a, config_opts[k].name, n) && (a[n] == '\0' || a[n] == '=')) {
                o = &config_opts[k];
                inline_v = a[n] == '=' ? a + n + 1 : NULL;
                break;
            }
        }
        if (!o) {
            rest[(*rest_n)++] = argv[i];
            continue;
        }
        const char *v = inline_v;
        if (o->kind != CK_FLAG && !v) {
            if (i + 1 >= argc) {
                fprintf(err, "volley %s: %s needs a value\n", cmd, o->name);
                return -1;
            }
            v = argv[++i];
        }
        /* A repeatable option on the command line replaces the file's list. */
        if (c->config_path && config_list_reset_kind(o->kind) && !cli_list[o->kind]) {
            config_list_reset(c, o->kind);
            cli_list[o->kind] = true;
            if (o->kind == CK_LISTEN || o->kind == CK_LISTEN_TLS)
                cli_list[CK_LISTEN] = cli_list[CK_LISTEN_TLS] = true;
        }
        if (config_set(c, cmd, o, v, err) != 0)
            return -1;
    }
    return vl_config_check(c, cmd, err) == 0 ? 0 : -1;
}


/* One rule between options; prints what is wrong. */
#define CHECK_RULE(cond, ...)                       \
    do {                                            \
        if (!(cond)) {                              \
            fprintf(err, "volley %s: ", cmd);       \
            fprintf(err, __VA_ARGS__);              \
            fputc('\n', err);                       \
            bad++;                                  \
        }                                           \
    } while (0)

unsigned vl_config_check(const struct vl_config *c, const char *cmd, FILE *err)
{
    unsigned bad = 0;
    CHECK_RULE(c->retry_ms_base > 0 && c->retry_ms_max >= c->retry_ms_base,
               "--retry-base must be > 0 and <= --retry-max");
    CHECK_RULE(c->age_ms_max > 0, "--max-age must be > 0");
    CHECK_RULE(c->host_fail_ms_min > 0 && c->host_fail_ms_min <= 24ull * 3600 * 1000,
               "--host-backoff must be > 0 and at most 1d");
    bool listen_tls = false;
    for (unsigned i = 0; i < c->listen_count; i++)
        listen_tls |= c->listen_tls[i];
    CHECK_RULE(!listen_tls || c->tls_cert, "--listen-tls needs --tls-cert");
    CHECK_RULE(!c->auth_file || c->tls_cert,
               "--auth-file needs --tls-cert (AUTH only inside TLS)");
    CHECK_RULE(!c->tls_key || c->tls_cert, "--tls-key needs --tls-cert");
    CHECK_RULE(c->intake_ms_timeout > 0 && c->intake_ms_timeout <= 3600ull * 1000,
               "--intake-timeout must be > 0 and at most 1h");
    CHECK_RULE(c->connect_ms_timeout > 0, "--connect-timeout must be > 0");
    CHECK_RULE(!c->tls_ca_file || access(c->tls_ca_file, R_OK) == 0,
               "--tls-ca-file '%s': cannot read it", c->tls_ca_file ? c->tls_ca_file : "");
    CHECK_RULE(c->tls_fallback_ms <= 7ull * 86400 * 1000, "--tls-fallback must be at most 7d");
    return bad;
}
#undef CHECK_RULE

int vl_tls_level_parse(const char *s, enum vl_tls_level *out)
{
    static const struct { const char *name; enum vl_tls_level level; } levels[] = {
        { "none", VL_TLS_NONE }, { "may", VL_TLS_MAY },
        { "encrypt", VL_TLS_ENCRYPT }, { "verify", VL_TLS_VERIFY },
    };
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (!strcmp(s, levels[i].name)) {
            *out = levels[i].level;
            return 0;
        }
    return -1;
}

const char *vl_tls_level_name(enum vl_tls_level l)
{
    switch (l) {
    case VL_TLS_NONE: return "none";
    case VL_TLS_MAY: return "may";
    case VL_TLS_ENCRYPT: return "encrypt";
    case VL_TLS_VERIFY: return "verify";
    }
    return "?";
}

unsigned vl_config_shards_default(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > (long)VL_SHARDS_MAX ? VL_SHARDS_MAX : (unsigned)n;
}

const struct vl_route *vl_config_route(const struct vl_config *c, const char *domain)
{
    const struct vl_route *star = NULL;
    for (unsigned i = 0; i < c->route_count; i++) {
        if (!strcasecmp(c->routes[i].domain, domain))
            return &c->routes[i];
        if (!strcmp(c->routes[i].domain, "*"))
            star = &c->routes[i];
    }
    return star;
}
