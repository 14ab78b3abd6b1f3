/*
 * config_file.c - volley.conf: read with libconfig (Debian libconfig-dev; the
 * syntax is `key = value;`, groups `{ }`, lists `( )`, arrays `[ ]`, `#` and
 * `//` comments, `@include`) and validated in one pass into struct vl_config.
 *
 * Every command-line option of run/send is a top-level key of the same name
 * without its dashes (`retry-base = "5m";`, `route = ["*=127.0.0.1:2525"];`),
 * so the file and the command line can never mean different things: a value
 * goes through the very parser the option uses. Blocks beyond the command
 * line: `listeners` (list of {address, tls}), `shaping` (destination
 * policies) and `egress` (source addresses and pools), see shaping.h.
 *
 * Invariant: a file is either loaded whole and valid, or refused with every
 * error found (not only the first): the caller keeps its old config then.
 * Diagnostics: one "PATH:LINE: ..." line per error to the caller's stream;
 * an unknown key names the closest known one ("did you mean").
 */
#include "volley/config.h"
#include "volley/shaping.h"

#include "volley/addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What a loaded file owns: copies of its strings (the config points at them)
 * and the shaping table. */
struct config_str {
    struct config_str *next;
    char s[];
};
struct vl_config_owned {
    struct config_str *strs;
    struct vl_shaping *shaping;
};

struct cf {
    struct vl_config *c;
    const char *path;
    FILE *err;
    unsigned errors;
    config_t lc;
};

__attribute__((format(printf, 3, 4)))
static void cf_err(struct cf *f, const config_setting_t *s, const char *fmt, ...)
{
    const char *file = s ? config_setting_source_file(s) : NULL;
    unsigned line = s ? config_setting_source_line(s) : 0;
    if (line)
        fprintf(f->err, "%s:%u: ", file ? file : f->path, line);
    else
        fprintf(f->err, "%s: ", f->path);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f->err, fmt, ap);
    va_end(ap);
    fputc('\n', f->err);
    f->errors++;
}

static const char *cf_strdup(struct cf *f, const char *s)
{
    size_t n = strlen(s);
    struct config_str *cs = malloc(sizeof *cs + n + 1);
    if (!cs) {
        cf_err(f, NULL, "out of memory");
        return "";
    }
    memcpy(cs->s, s, n + 1);
    cs->next = f->c->owned->strs;
    f->c->owned->strs = cs;
    return cs->s;
}

/* ---- "did you mean" ------------------------------------------------------ */

static unsigned cf_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    unsigned row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned sub = diag + (tolower((unsigned char)a[i - 1]) !=
                                   tolower((unsigned char)b[j - 1]));
            unsigned best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest of @p names (NULL-terminated) to @p key, or NULL if none is close. */
static const char *cf_closest(const char *key, const char *const *names, size_t n)
{
    const char *best = NULL;
    unsigned best_d = 99;
    for (size_t i = 0; i < n; i++) {
        unsigned d = cf_distance(key, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    size_t len = strlen(key);
    unsigned max = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    return best_d <= max ? best : NULL;
}

static void cf_unknown(struct cf *f, const config_setting_t *s, const char *where,
                       const char *const *names, size_t n)
{
    const char *key = config_setting_name(s) ? config_setting_name(s) : "?";
    const char *near = cf_closest(key, names, n);
    if (near)
        cf_err(f, s, "unknown key '%s'%s%s (did you mean '%s'?)", key, where[0] ? " in " : "",
               where, near);
    else
        cf_err(f, s, "unknown key '%s'%s%s", key, where[0] ? " in " : "", where);
}

/* ---- values ---------------------------------------------------------------- */

/* A scalar as text (the form the command line would give). NULL: not a scalar. */
static const char *cf_scalar(const config_setting_t *s, char *buf, size_t cap)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_STRING: return config_setting_get_string(s);
    case CONFIG_TYPE_INT:    snprintf(buf, cap, "%d", config_setting_get_int(s)); return buf;
    case CONFIG_TYPE_INT64:
        snprintf(buf, cap, "%lld", config_setting_get_int64(s));
        return buf;
    case CONFIG_TYPE_FLOAT:  snprintf(buf, cap, "%.17g", config_setting_get_float(s)); return buf;
    case CONFIG_TYPE_BOOL:   return config_setting_get_bool(s) ? "true" : "false";
    default:                 return NULL;
    }
}

static const char *cf_type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP: return "a group { }";
    case CONFIG_TYPE_LIST:  return "a list ( )";
    case CONFIG_TYPE_ARRAY: return "an array [ ]";
    default:                return "a value";
    }
}

/* Set command-line option @p opt to @p text (@p at for errors). */
static void cf_option_text(struct cf *f, const config_setting_t *at, const char *opt,
                           const char *text, bool flag)
{
    char *msg = NULL;
    size_t msg_len = 0;
    FILE *m = open_memstream(&msg, &msg_len);
    if (!m) {
        cf_err(f, at, "out of memory");
        return;
    }
    int rc = vl_config_set_option(f->c, "config", opt, flag ? text : cf_strdup(f, text), m);
    fclose(m);
    if (rc != 0) {
        /* "volley config: --retry-base 'x': expected ..." -> "retry-base: --retry-base ..." */
        const char *why = msg && !strncmp(msg, "volley config: ", 15) ? msg + 15 : msg;
        size_t n = why ? strlen(why) : 0;
        while (n > 0 && why[n - 1] == '\n')
            n--;
        cf_err(f, at, "%s: %.*s", opt + 2, (int)n, why ? why : "bad value");
    }
    free(msg);
}

/* Set command-line option --KEY to a scalar setting @p v (@p at for errors). */
static void cf_option_value(struct cf *f, const config_setting_t *at, const char *opt,
                            const config_setting_t *v)
{
    char num[64];
    const char *text = cf_scalar(v, num, sizeof num);
    if (!text) {
        cf_err(f, at, "%s: expected a value, not %s", opt + 2, cf_type_name(v));
        return;
    }
    bool flag = !vl_config_option_takes_value(opt);
    if (flag && config_setting_type(v) != CONFIG_TYPE_BOOL) {
        cf_err(f, at, "%s: expected true or false", opt + 2);
        return;
    }
    cf_option_text(f, at, opt, text, flag);
}

/* ---- listeners ------------------------------------------------------------ */

static void cf_listeners(struct cf *f, const config_setting_t *list)
{
    static const char *const keys[] = { "address", "tls" };
    if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
        cf_err(f, list, "listeners: expected a list ( { address = \"IP:PORT\"; }, ... )");
        return;
    }
    for (int i = 0; i < config_setting_length(list); i++) {
        const config_setting_t *l = config_setting_get_elem(list, (unsigned)i);
        if (!config_setting_is_group(l)) {
            cf_err(f, l, "listeners: expected { address = \"IP:PORT\"; tls = \"starttls\"; }");
            continue;
        }
        const char *addr = NULL, *tls = "starttls";
        for (int k = 0; k < config_setting_length(l); k++) {
            const config_setting_t *e = config_setting_get_elem(l, (unsigned)k);
            const char *name = config_setting_name(e);
            if (!strcmp(name, "address") && config_setting_type(e) == CONFIG_TYPE_STRING)
                addr = config_setting_get_string(e);
            else if (!strcmp(name, "tls") && config_setting_type(e) == CONFIG_TYPE_STRING)
                tls = config_setting_get_string(e);
            else if (!strcmp(name, "address") || !strcmp(name, "tls"))
                cf_err(f, e, "listeners.%s: expected a string", name);
            else
                cf_unknown(f, e, "a listener", keys, 2);
        }
        if (!addr) {
            cf_err(f, l, "listeners: address missing");
            continue;
        }
        if (strcmp(tls, "starttls") && strcmp(tls, "implicit")) {
            cf_err(f, l, "listeners.tls '%s': expected starttls or implicit", tls);
            continue;
        }
        config_setting_t *av = config_setting_get_member(l, "address");
        cf_option_value(f, l, !strcmp(tls, "implicit") ? "--listen-tls" : "--listen", av);
    }
}

/* ---- dkim { } ------------------------------------------------------------------
 * The DKIM options as a block (the same parsers as --dkim, --dkim-canon,
 * --dkim-expire, --dkim-headers):
 *   dkim = { keys = ( { domain = "example.com"; selector = "s1"; key = "FILE"; } );
 *            canon = "relaxed/relaxed"; expire = "7d"; headers = [ "From", "To" ]; };
 * A key file must be readable (checked here, so `config check` says so). */
static void cf_dkim(struct cf *f, const config_setting_t *g)
{
    static const char *const keys[] = { "keys", "canon", "expire", "headers" };
    static const char *const kkeys[] = { "domain", "selector", "key" };
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *e = config_setting_get_elem(g, (unsigned)i);
        const char *n = config_setting_name(e);
        if (!strcmp(n, "canon") || !strcmp(n, "expire")) {
            cf_option_value(f, e, !strcmp(n, "canon") ? "--dkim-canon" : "--dkim-expire", e);
        } else if (!strcmp(n, "headers")) {
            if (config_setting_type(e) == CONFIG_TYPE_STRING) {
                cf_option_value(f, e, "--dkim-headers", e);
                continue;
            }
            if (!config_setting_is_array(e) || config_setting_length(e) < 1) {
                cf_err(f, e, "dkim.headers: expected an array of field names [ \"From\", "
                       "\"To\" ] or \"From:To\"");
                continue;
            }
            char list[2048] = "";
            size_t len = 0;
            bool ok = true;
            for (int k = 0; k < config_setting_length(e); k++) {
                const char *h = config_setting_get_string_elem(e, k);
                if (!h || !h[0] || strchr(h, ':') || len + strlen(h) + 2 > sizeof list) {
                    cf_err(f, e, "dkim.headers: element %d: expected a field name", k + 1);
                    ok = false;
                    break;
                }
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ":" : "", h);
            }
            if (ok)
                cf_option_text(f, e, "--dkim-headers", list, false);
        } else if (!strcmp(n, "keys")) {
            if (!config_setting_is_list(e)) {
                cf_err(f, e, "dkim.keys: expected a list ( { domain = \"...\"; selector = "
                       "\"...\"; key = \"FILE\"; } )");
                continue;
            }
            for (int k = 0; k < config_setting_length(e); k++) {
                const config_setting_t *x = config_setting_get_elem(e, (unsigned)k);
                const char *v[3] = { NULL, NULL, NULL };
                bool ok = config_setting_is_group(x);
                if (!ok)
                    cf_err(f, x, "dkim.keys: expected { domain = \"...\"; selector = \"...\"; "
                           "key = \"FILE\"; }");
                for (int j = 0; ok && j < config_setting_length(x); j++) {
                    const config_setting_t *y = config_setting_get_elem(x, (unsigned)j);
                    const char *yn = config_setting_name(y);
                    unsigned w = 0;
                    while (w < 3 && strcmp(yn, kkeys[w]))
                        w++;
                    if (w == 3) {
                        cf_unknown(f, y, "a dkim key", kkeys, 3);
                        ok = false;
                    } else if (!(v[w] = config_setting_get_string(y)) || !v[w][0] ||
                               (w < 2 && strchr(v[w], ':'))) {
                        cf_err(f, y, "dkim.keys.%s: expected a %s", yn,
                               w == 2 ? "file name" : w ? "selector" : "domain name");
                        ok = false;
                    }
                }
                for (unsigned w = 0; ok && w < 3; w++)
                    if (!v[w]) {
                        cf_err(f, x, "dkim key: %s missing", kkeys[w]);
                        ok = false;
                    }
                if (!ok)
                    continue;
                FILE *kf = fopen(v[2], "r");
                if (!kf) {
                    cf_err(f, config_setting_get_member(x, "key"), "dkim.keys.key '%s': cannot "
                           "read: %s", v[2], strerror(errno));
                    continue;
                }
                fclose(kf);
                char opt[1200];
                if (snprintf(opt, sizeof opt, "%s:%s:%s", v[0], v[1], v[2]) >= (int)sizeof opt) {
                    cf_err(f, x, "dkim key: too long");
                    continue;
                }
                cf_option_text(f, x, "--dkim", opt, false);
            }
        } else {
            cf_unknown(f, e, "dkim", keys, sizeof keys / sizeof keys[0]);
        }
    }
}

/* ---- shaping --------------------------------------------------------------- */

static bool cf_get_uint(struct cf *f, const config_setting_t *e, const char *what,
                        unsigned long lo, unsigned long hi, unsigned *out)
{
    int t = config_setting_type(e);
    long long v = t == CONFIG_TYPE_INT ? config_setting_get_int(e)
                : t == CONFIG_TYPE_INT64 ? config_setting_get_int64(e) : -1;
    if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) || v < (long long)lo ||
        v > (long long)hi) {
        cf_err(f, e, "%s: expected a whole number from %lu to %lu", what, lo, hi);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

static bool cf_get_rate(struct cf *f, const config_setting_t *e, const char *what,
                        double hi, double *out)
{
    int t = config_setting_type(e);
    double v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(e)
             : t == CONFIG_TYPE_INT ? config_setting_get_int(e)
             : t == CONFIG_TYPE_INT64 ? (double)config_setting_get_int64(e) : -1.0;
    if (!(v > 0.0 && v <= hi)) {
        cf_err(f, e, "%s: expected a number > 0 and <= %g", what, hi);
        return false;
    }
    *out = v;
    return true;
}

static bool cf_get_dur(struct cf *f, const config_setting_t *e, const char *what,
                       uint64_t *out)
{
    char num[64];
    const char *t = config_setting_type(e) == CONFIG_TYPE_BOOL ? NULL
                  : cf_scalar(e, num, sizeof num);
    if (!t || vl_parse_duration_ms(t, out) != 0) {
        cf_err(f, e, "%s: expected a duration like \"30s\", \"5m\", \"1h\"", what);
        return false;
    }
    return true;
}

static bool cf_get_str(struct cf *f, const config_setting_t *e, const char *what,
                       char *out, size_t cap)
{
    const char *s = config_setting_get_string(e);
    if (!s) {
        cf_err(f, e, "%s: expected a string", what);
        return false;
    }
    if (strlen(s) >= cap || !s[0]) {
        cf_err(f, e, "%s: expected 1 to %zu characters", what, cap - 1);
        return false;
    }
    snprintf(out, cap, "%s", s);
    return true;
}

/* A string or an array of strings: domain names, lowercased into @p out. */
static void cf_domains(struct cf *f, const config_setting_t *e, const char *what,
                       char (*out)[256], unsigned *count)
{
    bool one = config_setting_type(e) == CONFIG_TYPE_STRING;
    int n = one ? 1 : config_setting_is_array(e) || config_setting_is_list(e)
                      ? config_setting_length(e) : -1;
    if (n < 0) {
        cf_err(f, e, "%s: expected a domain or an array of domains", what);
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *d = one ? e : config_setting_get_elem(e, (unsigned)i);
        const char *s = config_setting_get_string(d);
        const char *why = NULL;
        if (!s) {
            cf_err(f, d, "%s: expected a domain name (a string)", what);
            continue;
        }
        if (s[0] == '.')
            s++;                    /* ".google.com" and "google.com" are the same suffix */
        if (vl_domain_check(s, strlen(s), &why) != 0) {
            cf_err(f, d, "%s '%s': not a domain name: %s", what, s, why);
            continue;
        }
        if (*count == VL_SHAPING_MATCH_MAX) {
            cf_err(f, d, "%s: more than %u entries", what, VL_SHAPING_MATCH_MAX);
            return;
        }
        char *o = out[(*count)++];
        size_t k = 0;
        for (; s[k] && k < 255; k++)
            o[k] = (char)tolower((unsigned char)s[k]);
        o[k] = '\0';
    }
}

static void cf_adaptive(struct cf *f, const config_setting_t *g, struct vl_shaping_policy *p)
{
    static const char *const keys[] = { "decrease", "increase", "interval", "hold-down", "min",
                                        "defer-patterns", "suspend" };
    if (config_setting_type(g) == CONFIG_TYPE_BOOL) {
        p->adaptive = config_setting_get_bool(g);
        return;
    }
    if (!config_setting_is_group(g)) {
        cf_err(f, g, "adaptive: expected true, false or a group { decrease = 0.5; ... }");
        return;
    }
    p->adaptive = true;
    for (int k = 0; k < config_setting_length(g); k++) {
        const config_setting_t *e = config_setting_get_elem(g, (unsigned)k);
        const char *n = config_setting_name(e);
        if (!strcmp(n, "decrease")) {
            if (cf_get_rate(f, e, "adaptive.decrease", 1.0, &p->decrease) && p->decrease >= 1.0)
                cf_err(f, e, "adaptive.decrease: expected a factor > 0 and < 1");
        } else if (!strcmp(n, "increase")) {
            cf_get_rate(f, e, "adaptive.increase", 1e6, &p->increase);
        } else if (!strcmp(n, "min")) {
            cf_get_rate(f, e, "adaptive.min", 1e6, &p->msgs_per_s_min);
        } else if (!strcmp(n, "interval")) {
            if (cf_get_dur(f, e, "adaptive.interval", &p->increase_ms) && !p->increase_ms)
                cf_err(f, e, "adaptive.interval: must be > 0");
        } else if (!strcmp(n, "hold-down")) {
            cf_get_dur(f, e, "adaptive.hold-down", &p->hold_down_ms);
        } else if (!strcmp(n, "defer-patterns") || !strcmp(n, "suspend")) {
            bool susp = !strcmp(n, "suspend");
            if (!config_setting_is_array(e) && !config_setting_is_list(e)) {
                cf_err(f, e, "adaptive.%s: expected %s", n, susp
                       ? "a list ( { pattern = \"TEXT\"; for = \"1h\"; } )"
                       : "an array of strings [ \"TSS04\" ]");
                continue;
            }
            for (int i = 0; i < config_setting_length(e); i++) {
                const config_setting_t *x = config_setting_get_elem(e, (unsigned)i);
                if (p->pattern_count == VL_SHAPING_PATTERNS_MAX) {
                    cf_err(f, x, "adaptive: more than %u patterns", VL_SHAPING_PATTERNS_MAX);
                    break;
                }
                struct vl_shaping_pattern *pt = &p->patterns[p->pattern_count];
                memset(pt, 0, sizeof *pt);
                if (!susp) {
                    if (cf_get_str(f, x, "adaptive.defer-patterns", pt->text, sizeof pt->text))
                        p->pattern_count++;
                    continue;
                }
                const config_setting_t *pat = config_setting_is_group(x)
                    ? config_setting_get_member(x, "pattern") : NULL;
                const config_setting_t *dur = config_setting_is_group(x)
                    ? config_setting_get_member(x, "for") : NULL;
                if (!pat || !dur || config_setting_length(x) != 2) {
                    cf_err(f, x, "adaptive.suspend: expected "
                           "{ pattern = \"TEXT\"; for = \"1h\"; }");
                    continue;
                }
                if (cf_get_str(f, pat, "adaptive.suspend.pattern", pt->text, sizeof pt->text) &&
                    cf_get_dur(f, dur, "adaptive.suspend.for", &pt->suspend_ms)) {
                    if (!pt->suspend_ms)
                        cf_err(f, dur, "adaptive.suspend.for: must be > 0");
                    else
                        p->pattern_count++;
                }
            }
        } else {
            cf_unknown(f, e, "adaptive", keys, sizeof keys / sizeof keys[0]);
        }
    }
}

static int cf_pool_find(const struct vl_shaping *sh, const char *name)
{
    for (unsigned i = 0; i < sh->pool_count; i++)
        if (!strcmp(sh->pools[i].name, name))
            return (int)i;
    return -1;
}

static void cf_policy(struct cf *f, const config_setting_t *g, struct vl_shaping *sh)
{
    static const char *const keys[] = {
        "domains", "mx", "conns-per-ip", "msgs-per-conn", "msgs-per-sec", "conns-per-min",
        "rcpts-per-txn", "retry-base", "retry-max", "tls", "pool", "adaptive" };
    const char *name = config_setting_name(g);
    if (!config_setting_is_group(g)) {
        cf_err(f, g, "shaping.%s: expected a group { mx = [...]; msgs-per-sec = N; ... }", name);
        return;
    }
    if (sh->policy_count == VL_SHAPING_POLICIES_MAX) {
        cf_err(f, g, "shaping: more than %u policies", VL_SHAPING_POLICIES_MAX);
        return;
    }
    struct vl_shaping_policy *p = &sh->policies[sh->policy_count++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->decrease = 0.5;
    p->increase_ms = 30000;
    p->hold_down_ms = 60000;
    p->msgs_per_s_min = 0.1;
    for (int k = 0; k < config_setting_length(g); k++) {
        const config_setting_t *e = config_setting_get_elem(g, (unsigned)k);
        const char *n = config_setting_name(e);
        if (!strcmp(n, "domains"))
            cf_domains(f, e, "domains", p->domains, &p->domain_count);
        else if (!strcmp(n, "mx"))
            cf_domains(f, e, "mx", p->mx_suffixes, &p->mx_count);
        else if (!strcmp(n, "conns-per-ip"))
            cf_get_uint(f, e, n, 1, 10000, &p->conns_per_ip);
        else if (!strcmp(n, "msgs-per-conn"))
            cf_get_uint(f, e, n, 1, 1000000, &p->msgs_per_conn);
        else if (!strcmp(n, "rcpts-per-txn"))
            cf_get_uint(f, e, n, 1, VL_SMTP_RCPTS_PER_TXN_MAX, &p->rcpts_per_txn);
        else if (!strcmp(n, "msgs-per-sec"))
            cf_get_rate(f, e, n, 1e6, &p->msgs_per_s);
        else if (!strcmp(n, "conns-per-min"))
            cf_get_rate(f, e, n, 1e6, &p->conns_per_min);
        else if (!strcmp(n, "retry-base"))
            cf_get_dur(f, e, n, &p->retry_ms_base);
        else if (!strcmp(n, "retry-max"))
            cf_get_dur(f, e, n, &p->retry_ms_max);
        else if (!strcmp(n, "tls")) {
            const char *v = config_setting_get_string(e);
            if (!v || vl_tls_level_parse(v, &p->tls) != 0)
                cf_err(f, e, "tls: expected one of none, may, encrypt, verify");
            else
                p->tls_set = true;
        } else if (!strcmp(n, "pool")) {
            cf_get_str(f, e, "pool", p->pool, sizeof p->pool);
        } else if (!strcmp(n, "adaptive")) {
            cf_adaptive(f, e, p);
        } else {
            cf_unknown(f, e, "a shaping policy", keys, sizeof keys / sizeof keys[0]);
        }
    }
    if (p->domain_count == 0 && p->mx_count == 0)
        cf_err(f, g, "shaping.%s: matches nothing: give domains = [...] or mx = [...]", name);
    if (p->retry_ms_base && p->retry_ms_max && p->retry_ms_max < p->retry_ms_base)
        cf_err(f, g, "shaping.%s: retry-max is shorter than retry-base", name);
    if (p->adaptive && p->msgs_per_s == 0)
        cf_err(f, g, "shaping.%s: adaptive needs msgs-per-sec (the rate it adapts up to)", name);
    if (p->adaptive && p->increase == 0)
        p->increase = p->msgs_per_s / 10;
    if (p->adaptive && p->msgs_per_s > 0 && p->msgs_per_s_min > p->msgs_per_s)
        cf_err(f, g, "shaping.%s: adaptive.min is above msgs-per-sec", name);
}

static void cf_egress(struct cf *f, const config_setting_t *g, struct vl_shaping *sh)
{
    static const char *const keys[] = { "addresses", "default-pool" };
    static const char *const akeys[] = { "ip", "ehlo", "pool", "weight", "warmup" };
    if (!config_setting_is_group(g)) {
        cf_err(f, g, "egress: expected a group { addresses = ( ... ); }");
        return;
    }
    const config_setting_t *dflt = NULL;
    for (int k = 0; k < config_setting_length(g); k++) {
        const config_setting_t *e = config_setting_get_elem(g, (unsigned)k);
        const char *n = config_setting_name(e);
        if (!strcmp(n, "default-pool")) {
            dflt = e;
            continue;
        }
        if (strcmp(n, "addresses")) {
            cf_unknown(f, e, "egress", keys, sizeof keys / sizeof keys[0]);
            continue;
        }
        if (!config_setting_is_list(e)) {
            cf_err(f, e, "egress.addresses: expected a list ( { ip = \"...\"; ehlo = \"...\"; } )");
            continue;
        }
        for (int i = 0; i < config_setting_length(e); i++) {
            const config_setting_t *a = config_setting_get_elem(e, (unsigned)i);
            if (!config_setting_is_group(a)) {
                cf_err(f, a, "egress.addresses: expected { ip = \"...\"; ehlo = \"...\"; }");
                continue;
            }
            if (sh->addr_count == VL_EGRESS_ADDRS_MAX) {
                cf_err(f, a, "egress: more than %u addresses", VL_EGRESS_ADDRS_MAX);
                break;
            }
            struct vl_egress_addr *x = &sh->addrs[sh->addr_count];
            memset(x, 0, sizeof *x);
            x->weight = 1;
            char pool[VL_SHAPING_NAME_BYTES] = "default";
            bool ok = true;
            for (int j = 0; j < config_setting_length(a); j++) {
                const config_setting_t *v = config_setting_get_elem(a, (unsigned)j);
                const char *vn = config_setting_name(v);
                if (!strcmp(vn, "ip")) {
                    unsigned char buf[16];
                    ok &= cf_get_str(f, v, "ip", x->ip, sizeof x->ip);
                    if (x->ip[0] && inet_pton(AF_INET, x->ip, buf) != 1 &&
                        inet_pton(AF_INET6, x->ip, buf) != 1) {
                        cf_err(f, v, "ip '%s': not an IPv4 or IPv6 address", x->ip);
                        ok = false;
                    }
                    for (unsigned o = 0; o < sh->addr_count; o++)
                        if (!strcmp(sh->addrs[o].ip, x->ip)) {
                            cf_err(f, v, "ip '%s': listed twice", x->ip);
                            ok = false;
                        }
                } else if (!strcmp(vn, "ehlo")) {
                    const char *why = NULL;
                    if (cf_get_str(f, v, "ehlo", x->ehlo, sizeof x->ehlo) &&
                        vl_domain_check(x->ehlo, strlen(x->ehlo), &why) != 0) {
                        cf_err(f, v, "ehlo '%s': not a host name: %s", x->ehlo, why);
                        ok = false;
                    }
                } else if (!strcmp(vn, "pool")) {
                    ok &= cf_get_str(f, v, "pool", pool, sizeof pool);
                } else if (!strcmp(vn, "weight")) {
                    ok &= cf_get_uint(f, v, "weight", 1, 1000, &x->weight);
                } else if (!strcmp(vn, "warmup")) {
                    if (!config_setting_is_array(v) || config_setting_length(v) < 1 ||
                        config_setting_length(v) > (int)VL_EGRESS_WARMUP_DAYS_MAX) {
                        cf_err(f, v, "warmup: expected an array of 1 to %u daily caps [ 500, "
                               "1000, ... ]", VL_EGRESS_WARMUP_DAYS_MAX);
                        ok = false;
                        continue;
                    }
                    for (int d = 0; d < config_setting_length(v); d++) {
                        unsigned cap = 0;
                        const config_setting_t *dv = config_setting_get_elem(v, (unsigned)d);
                        if (!cf_get_uint(f, dv, "warmup", 1, 100000000, &cap)) {
                            ok = false;
                            break;
                        }
                        if (d > 0 && cap < x->warmup_per_day[d - 1]) {
                            cf_err(f, dv, "warmup: day %d's cap %u is below day %d's", d + 1,
                                   cap, d);
                            ok = false;
                        }
                        x->warmup_per_day[x->warmup_count++] = cap;
                    }
                } else {
                    cf_unknown(f, v, "an egress address", akeys,
                               sizeof akeys / sizeof akeys[0]);
                    ok = false;
                }
            }
            if (!x->ip[0]) {
                cf_err(f, a, "egress address: ip missing");
                ok = false;
            }
            if (!x->ehlo[0]) {
                cf_err(f, a, "egress address %s: ehlo missing (the name its PTR should give)",
                       x->ip);
                ok = false;
            }
            if (!ok)
                continue;
            int pi = cf_pool_find(sh, pool);
            if (pi < 0) {
                if (sh->pool_count == VL_EGRESS_POOLS_MAX) {
                    cf_err(f, a, "egress: more than %u pools", VL_EGRESS_POOLS_MAX);
                    continue;
                }
                pi = (int)sh->pool_count++;
                snprintf(sh->pools[pi].name, sizeof sh->pools[pi].name, "%s", pool);
            }
            x->pool = (unsigned)pi;
            sh->addr_count++;
        }
    }
    sh->default_pool = sh->pool_count ? 0 : -1;
    if (dflt) {
        const char *n = config_setting_get_string(dflt);
        int pi = n ? cf_pool_find(sh, n) : -1;
        if (pi < 0)
            cf_err(f, dflt, "default-pool '%s': no egress address is in that pool",
                   n ? n : "(not a string)");
        else
            sh->default_pool = pi;
    }
}

static void cf_shaping(struct cf *f, const config_setting_t *g, struct vl_shaping *sh)
{
    if (!config_setting_is_group(g)) {
        cf_err(f, g, "shaping: expected a group of named policies { gmail = { ... }; }");
        return;
    }
    for (int k = 0; k < config_setting_length(g); k++)
        cf_policy(f, config_setting_get_elem(g, (unsigned)k), sh);
}

/* After the blocks: cross-checks (suffixes unique, pools exist). */
static void cf_shaping_check(struct cf *f, const config_setting_t *shaping,
                             const struct vl_shaping *sh)
{
    for (unsigned i = 0; i < sh->policy_count; i++) {
        const struct vl_shaping_policy *p = &sh->policies[i];
        const config_setting_t *at = shaping ? config_setting_get_member(shaping, p->name) : NULL;
        if (p->pool[0] && cf_pool_find(sh, p->pool) < 0)
            cf_err(f, at, "shaping.%s: pool '%s' has no egress address", p->name, p->pool);
        for (unsigned j = 0; j < i; j++) {
            const struct vl_shaping_policy *q = &sh->policies[j];
            for (unsigned a = 0; a < p->mx_count; a++)
                for (unsigned b = 0; b < q->mx_count; b++)
                    if (!strcmp(p->mx_suffixes[a], q->mx_suffixes[b]))
                        cf_err(f, at, "shaping.%s: mx '%s' is already in shaping.%s",
                               p->name, p->mx_suffixes[a], q->name);
            for (unsigned a = 0; a < p->domain_count; a++)
                for (unsigned b = 0; b < q->domain_count; b++)
                    if (!strcmp(p->domains[a], q->domains[b]))
                        cf_err(f, at, "shaping.%s: domain '%s' is already in shaping.%s",
                               p->name, p->domains[a], q->name);
        }
    }
}

/* ---- events (issue 16) ---------------------------------------------------------
 * events { webhook { url; secret-file; } amqp { url; queue; ca-file; } batch; linger;
 * timeout; drain; outbox-max; } -> c->events; the sinks need a running engine
 * (engine/events), so the full URL checks happen when `volley run` starts them. */

static const char *cf_get_path(struct cf *f, const config_setting_t *e, const char *what,
                               const char *prefix1, const char *prefix2)
{
    const char *v = config_setting_get_string(e);
    if (!v || !v[0]) {
        cf_err(f, e, "%s: expected a string", what);
        return NULL;
    }
    if (prefix1 && strncmp(v, prefix1, strlen(prefix1))
        && (!prefix2 || strncmp(v, prefix2, strlen(prefix2)))) {
        cf_err(f, e, "%s: '%s': expected a %s%s%s URL", what, v, prefix1,
               prefix2 ? " or " : "", prefix2 ? prefix2 : "");
        return NULL;
    }
    return cf_strdup(f, v);
}

static void cf_events(struct cf *f, const config_setting_t *g)
{
    static const char *const keys[] = { "webhook", "amqp", "batch", "linger", "timeout",
                                        "drain", "outbox-max" };
    static const char *const wkeys[] = { "url", "secret-file" };
    static const char *const akeys[] = { "url", "queue", "ca-file" };
    struct vl_events_opts *o = &f->c->events;
    if (!config_setting_is_group(g)) {
        cf_err(f, g, "events: expected a group { ... }");
        return;
    }
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *e = config_setting_get_elem(g, (unsigned)i);
        const char *k = config_setting_name(e);
        bool hook = !strcmp(k, "webhook");
        if (hook || !strcmp(k, "amqp")) {
            const char *const *sk = hook ? wkeys : akeys;
            if (!config_setting_is_group(e)) {
                cf_err(f, e, "events.%s: expected a group { ... }", k);
                continue;
            }
            for (int j = 0; j < config_setting_length(e); j++) {
                const config_setting_t *v = config_setting_get_elem(e, (unsigned)j);
                const char *n = config_setting_name(v);
                if (!strcmp(n, "url") && hook)
                    o->webhook_url = cf_get_path(f, v, "events.webhook.url", "http://",
                                                 "https://");
                else if (!strcmp(n, "url"))
                    o->amqp_url = cf_get_path(f, v, "events.amqp.url", "amqp://", "amqps://");
                else if (hook && !strcmp(n, "secret-file"))
                    o->webhook_secret_file = cf_get_path(f, v, "events.webhook.secret-file",
                                                         NULL, NULL);
                else if (!hook && !strcmp(n, "queue"))
                    o->amqp_queue = cf_get_path(f, v, "events.amqp.queue", NULL, NULL);
                else if (!hook && !strcmp(n, "ca-file"))
                    o->amqp_ca_file = cf_get_path(f, v, "events.amqp.ca-file", NULL, NULL);
                else
                    cf_unknown(f, v, hook ? "events.webhook" : "events.amqp", sk, hook ? 2 : 3);
            }
            if (hook && !o->webhook_url)
                cf_err(f, e, "events.webhook: url missing");
            if (hook && !o->webhook_secret_file)
                cf_err(f, e, "events.webhook: secret-file missing (the HMAC key)");
            if (!hook && !o->amqp_url)
                cf_err(f, e, "events.amqp: url missing");
        } else if (!strcmp(k, "batch")) {
            cf_get_uint(f, e, "events.batch", 1, 1000, &o->batch);
        } else if (!strcmp(k, "linger")) {
            o->linger_set = cf_get_dur(f, e, "events.linger", &o->linger_ms);
            if (o->linger_set && o->linger_ms > 60000) {
                cf_err(f, e, "events.linger: at most 60s");
                o->linger_set = false;
            }
        } else if (!strcmp(k, "timeout")) {
            if (cf_get_dur(f, e, "events.timeout", &o->timeout_ms) && o->timeout_ms == 0)
                cf_err(f, e, "events.timeout: must be > 0");
        } else if (!strcmp(k, "drain")) {
            o->drain_set = cf_get_dur(f, e, "events.drain", &o->drain_ms);
        } else if (!strcmp(k, "outbox-max")) {
            unsigned m = 0;
            if (cf_get_uint(f, e, "events.outbox-max", 10, 100000000, &m))
                o->outbox_max = m;
        } else {
            cf_unknown(f, e, "events", keys, sizeof keys / sizeof keys[0]);
        }
    }
}

/* ---- the file ---------------------------------------------------------------- */

static const char *const cf_blocks[] = { "listeners", "shaping", "egress", "events" };
static const char *const cf_cli_only[] = { "config", "until-empty" };

static void cf_top_key(struct cf *f, const config_setting_t *e)
{
    const char *name = config_setting_name(e);
    char opt[96];
    for (size_t i = 0; i < sizeof cf_cli_only / sizeof cf_cli_only[0]; i++)
        if (!strcmp(name, cf_cli_only[i])) {
            cf_err(f, e, "%s: only on the command line (--%s)", name, name);
            return;
        }
    snprintf(opt, sizeof opt, "--%s", name);
    if (strlen(name) + 2 >= sizeof opt || !vl_config_option_takes_value(opt)) {
        bool flag = false;
        for (size_t i = 0; i < vl_config_option_count(); i++)
            flag |= !strcmp(vl_config_option_name(i), opt);
        if (!flag) {
            /* unknown: suggest among options (without dashes) and blocks */
            const char *names[160];
            size_t n = 0;
            for (size_t i = 0; i < vl_config_option_count() && n < 150; i++)
                names[n++] = vl_config_option_name(i) + 2;
            for (size_t i = 0; i < sizeof cf_blocks / sizeof cf_blocks[0]; i++)
                names[n++] = cf_blocks[i];
            cf_unknown(f, e, "", names, n);
            return;
        }
    }
    if (config_setting_is_aggregate(e)) {
        if (!vl_config_option_repeats(opt) || config_setting_is_group(e)) {
            cf_err(f, e, "%s: expected a single value, not %s", name, cf_type_name(e));
            return;
        }
        for (int i = 0; i < config_setting_length(e); i++)
            cf_option_value(f, config_setting_get_elem(e, (unsigned)i), opt,
                            config_setting_get_elem(e, (unsigned)i));
        return;
    }
    cf_option_value(f, e, opt, e);
}

/* The line of top-level key @p name, for rules between options. */
static const config_setting_t *cf_rule_at(struct cf *f, const char *msg)
{
    const char *p = strstr(msg, "--");
    if (!p)
        return NULL;
    char name[64];
    size_t n = 0;
    for (p += 2; (isalnum((unsigned char)*p) || *p == '-') && n + 1 < sizeof name; p++)
        name[n++] = *p;
    name[n] = '\0';
    return config_lookup(&f->lc, name);
}

unsigned vl_config_load_file(struct vl_config *c, const char *path, FILE *err)
{
    struct cf f = { .c = c, .path = path, .err = err };
    if (!c->owned) {
        c->owned = calloc(1, sizeof *c->owned);
        if (!c->owned) {
            fprintf(err, "%s: out of memory\n", path);
            return 1;
        }
    }
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(err, "%s: cannot open: %s\n", path, strerror(errno));
        return 1;
    }
    config_init(&f.lc);
    config_set_options(&f.lc, 0);     /* no auto-conversion: a type mismatch is an error */
    int ok = config_read(&f.lc, in);
    fclose(in);
    if (ok != CONFIG_TRUE) {
        fprintf(err, "%s:%d: syntax error: %s\n", path, config_error_line(&f.lc),
                config_error_text(&f.lc));
        config_destroy(&f.lc);
        return 1;
    }
    c->config_path = cf_strdup(&f, path);
    struct vl_shaping *sh = calloc(1, sizeof *sh);
    if (!sh) {
        fprintf(err, "%s: out of memory\n", path);
        config_destroy(&f.lc);
        return 1;
    }
    sh->default_pool = -1;
    config_setting_t *root = config_root_setting(&f.lc);
    const config_setting_t *shaping = NULL;
    const config_setting_t *egress = NULL;
    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *e = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(e);
        if (!strcmp(name, "listeners"))
            cf_listeners(&f, e);
        else if (!strcmp(name, "shaping"))
            shaping = e;
        else if (!strcmp(name, "egress"))
            egress = e;
        else if (!strcmp(name, "events"))
            cf_events(&f, e);             /* issue 16 */
        else if (!strcmp(name, "dkim") && config_setting_is_group(e))
            cf_dkim(&f, e);              /* the block; `dkim = [ "D:S:FILE" ]` is the option */
        else
            cf_top_key(&f, e);
    }
    if (egress)
        cf_egress(&f, egress, sh);       /* first: policies name its pools */
    if (shaping)
        cf_shaping(&f, shaping, sh);
    cf_shaping_check(&f, shaping, sh);
    /* Rules between options, each at the line of the option it names. */
    char *msg = NULL;
    size_t msg_len = 0;
    FILE *m = open_memstream(&msg, &msg_len);
    if (m) {
        vl_config_check(c, "config", m);
        fclose(m);
        for (char *line = msg, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            const char *why = !strncmp(line, "volley config: ", 15) ? line + 15 : line;
            cf_err(&f, cf_rule_at(&f, why), "%s", why);
        }
        free(msg);
    }
    config_destroy(&f.lc);
    free(c->owned->shaping);
    c->owned->shaping = sh;
    c->shaping = sh;
    return f.errors;
}

void vl_config_fini(struct vl_config *c)
{
    if (!c->owned)
        return;
    for (struct config_str *s = c->owned->strs, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    free(c->owned->shaping);
    free(c->owned);
    c->owned = NULL;
    c->shaping = NULL;
}

/* ---- live reload: egress addresses stay ------------------------------------------- */

bool vl_shaping_egress_same(const struct vl_shaping *a, const struct vl_shaping *b)
{
    unsigned na = a ? a->addr_count : 0, nb = b ? b->addr_count : 0;
    if (na != nb)
        return false;
    for (unsigned i = 0; i < na; i++)
        if (strcmp(a->addrs[i].ip, b->addrs[i].ip) || strcmp(a->addrs[i].ehlo, b->addrs[i].ehlo))
            return false;
    return true;
}

void vl_config_keep_egress(struct vl_config *next, const struct vl_shaping *running)
{
    struct vl_shaping *sh = next->owned ? next->owned->shaping : NULL;
    if (!sh || next->shaping != sh)
        return;
    sh->addr_count = running ? running->addr_count : 0;
    sh->pool_count = running ? running->pool_count : 0;
    sh->default_pool = running ? running->default_pool : -1;
    if (running) {
        memcpy(sh->addrs, running->addrs, sizeof sh->addrs);
        memcpy(sh->pools, running->pools, sizeof sh->pools);
    }
}

/* ---- the command line over the file ---------------------------------------------- */

int vl_config_parse_err(struct vl_config *c, const char *cmd, int argc, char **argv,
                        char **rest, int *rest_n, FILE *err)
{
    *rest_n = 0;
    /* --config FILE first: the file is the base, the other options override it. */
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                fprintf(err, "volley %s: --config needs a value\n", cmd);
                return -1;
            }
            path = argv[i + 1];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            path = argv[i] + 9;
        }
        if (!path)
            continue;
        if (c->config_path) {
            fprintf(err, "volley %s: --config given twice\n", cmd);
            return -1;
        }
        if (vl_config_load_file(c, path, err) != 0)
            return -1;
    }
    return vl_config_parse_args(c, cmd, argc, argv, rest, rest_n, err);
}

int vl_config_parse(struct vl_config *c, const char *cmd, int argc, char **argv,
                    char **rest, int *rest_n)
{
    return vl_config_parse_err(c, cmd, argc, argv, rest, rest_n, stderr);
}

/* ---- matching ------------------------------------------------------------------ */

static bool shaping_suffix(const char *host, const char *suffix)
{
    size_t h = strlen(host), s = strlen(suffix);
    if (h > 0 && host[h - 1] == '.')
        h--;                           /* "mx.google.com." */
    if (h < s || strncasecmp(host + h - s, suffix, s))
        return false;
    return h == s || host[h - s - 1] == '.';
}

const struct vl_shaping_policy *vl_shaping_match(const struct vl_shaping *s,
                                                 const char *domain, const char *mx)
{
    if (!s)
        return NULL;
    for (unsigned i = 0; domain && i < s->policy_count; i++)
        for (unsigned k = 0; k < s->policies[i].domain_count; k++)
            if (!strcasecmp(s->policies[i].domains[k], domain))
                return &s->policies[i];
    const struct vl_shaping_policy *best = NULL;
    size_t best_len = 0;
    for (unsigned i = 0; mx && i < s->policy_count; i++)
        for (unsigned k = 0; k < s->policies[i].mx_count; k++) {
            size_t n = strlen(s->policies[i].mx_suffixes[k]);
            if (n > best_len && shaping_suffix(mx, s->policies[i].mx_suffixes[k])) {
                best = &s->policies[i];
                best_len = n;
            }
        }
    return best;
}
