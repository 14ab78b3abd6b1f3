/*
 * config_shaping.c - the config file's `shaping` (destination policies) and
 * `egress` (source addresses and pools) blocks into struct vl_shaping (see
 * volley/shaping.h), the rules across them, the egress kept over a live
 * reload, and matching a domain or MX host to its policy.
 */
#include "config_cf.h"

#include "volley/addr.h"
#include "volley/config.h"
#include "volley/shaping.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- shaping --------------------------------------------------------------- */

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

void cf_egress(struct cf *f, const config_setting_t *g, struct vl_shaping *sh)
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

void cf_shaping(struct cf *f, const config_setting_t *g, struct vl_shaping *sh)
{
    if (!config_setting_is_group(g)) {
        cf_err(f, g, "shaping: expected a group of named policies { gmail = { ... }; }");
        return;
    }
    for (int k = 0; k < config_setting_length(g); k++)
        cf_policy(f, config_setting_get_elem(g, (unsigned)k), sh);
}

/* After the blocks: cross-checks (suffixes unique, pools exist). */
void cf_shaping_check(struct cf *f, const config_setting_t *shaping,
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
