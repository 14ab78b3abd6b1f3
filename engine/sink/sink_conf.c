/*
 * sink_conf.c - `volley sink` configuration: listener addresses, fault rules
 * (--fault, --delay, --disconnect) and the pure rule predicates. No I/O, no
 * clock: sink.c applies the rules, tests drive these with strings.
 * Invariants: a parsed rule is always usable (stage valid for its action,
 * code 200-599, n >= 1, 0 <= prob <= 1); bad input is VL_E_INVALID with a
 * message that names the option and the part that is wrong.
 */
#include "sink.h"
#include "tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "volley/error.h"

static const char *const sink_stage_names[] = {
#define X(name, str) str,
    SINK_STAGES(X)
#undef X
};

void sink_conf_defaults(struct sink_conf *c)
{
    memset(c, 0, sizeof *c);
    c->threads = 1;
    c->conns_max = 1024;
    c->idle_timeout_ms = 300000;          /* RFC 5321 4.5.3.2.7 server timeout */
    c->seed = 1;
    c->smtp = (struct smtp_server_conf){
        .hostname = "sink.volley.test", .pipelining = true, .eightbitmime = true,
        .enhancedstatuscodes = true,
    };
}

__attribute__((format(printf, 3, 4)))
static int conf_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return VL_E_INVALID;
}

int sink_duration_parse(const char *s, uint32_t *ms)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s))
        return VL_E_INVALID;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long mul = 1;
    if (!strcmp(end, "s"))
        mul = 1000;
    else if (*end && strcmp(end, "ms"))
        return VL_E_INVALID;
    if (errno || v > UINT32_MAX / mul)
        return VL_E_INVALID;
    *ms = (uint32_t)(v * mul);
    return 0;
}

static int u32_parse(const char *s, size_t len, uint32_t min, uint32_t *out)
{
    char buf[16];
    if (len == 0 || len >= sizeof buf)
        return VL_E_INVALID;
    memcpy(buf, s, len);
    buf[len] = 0;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)buf[i]))
            return VL_E_INVALID;
    unsigned long v = strtoul(buf, NULL, 10);
    if (v < min || v > UINT32_MAX)
        return VL_E_INVALID;
    *out = (uint32_t)v;
    return 0;
}

static int stage_parse(const char *s, size_t len, enum sink_stage *st)
{
    for (int i = 0; i < SINK_STAGE_COUNT; i++)
        if (strlen(sink_stage_names[i]) == len && !strncasecmp(s, sink_stage_names[i], len)) {
            *st = (enum sink_stage)i;
            return 0;
        }
    if (len == 4 && !strncasecmp(s, "helo", 4)) {
        *st = SINK_STAGE_EHLO;
        return 0;
    }
    return VL_E_INVALID;
}

/* One ":key=value" modifier of a rule; "text=" takes the rest of the spec. */
static int rule_modifier(struct sink_rule *r, const char *opt, const char *m, size_t len,
                         bool *rest, char *err, size_t cap)
{
    const char *eq = memchr(m, '=', len);
    char key[16];
    if (!eq || (size_t)(eq - m) >= sizeof key)
        return conf_err(err, cap, "%s: bad modifier '%s' (want every=N, nth=N, prob=P, "
                        "match=PREFIX or text=TEXT)", opt, m);
    memcpy(key, m, (size_t)(eq - m));
    key[eq - m] = 0;
    const char *v = eq + 1;
    size_t vlen = len - (size_t)(v - m);
    if (!strcmp(key, "every") || !strcmp(key, "nth")) {
        r->when = key[0] == 'e' ? SINK_WHEN_EVERY : SINK_WHEN_NTH;
        if (u32_parse(v, vlen, 1, &r->n) < 0)
            return conf_err(err, cap, "%s: '%s' needs a whole number >= 1", opt, key);
    } else if (!strcmp(key, "prob")) {
        char buf[32], *end;
        if (vlen == 0 || vlen >= sizeof buf)
            return conf_err(err, cap, "%s: prob needs a number in [0, 1], got '%s'", opt, v);
        memcpy(buf, v, vlen);
        buf[vlen] = 0;
        r->when = SINK_WHEN_PROB;
        r->prob = strtod(buf, &end);
        if (*end || !(r->prob >= 0.0 && r->prob <= 1.0))
            return conf_err(err, cap, "%s: prob needs a number in [0, 1], got '%s'", opt, buf);
    } else if (!strcmp(key, "match")) {
        if (r->stage != SINK_STAGE_MAIL && r->stage != SINK_STAGE_RCPT)
            return conf_err(err, cap, "%s: match= applies to mail and rcpt only", opt);
        if (vlen == 0 || vlen > SINK_MATCH_BYTES_MAX)
            return conf_err(err, cap, "%s: match= needs 1 to 64 characters", opt);
        memcpy(r->match, v, vlen);
        r->match[vlen] = 0;
    } else if (!strcmp(key, "text") && r->action == SINK_ACT_REPLY) {
        size_t tlen = strlen(v);
        if (tlen >= sizeof r->text || strpbrk(v, "\r\n"))
            return conf_err(err, cap, "%s: text= is too long or holds CR/LF", opt);
        memcpy(r->text, v, tlen + 1);
        *rest = true;
    } else {
        return conf_err(err, cap, "%s: unknown modifier '%s'", opt, key);
    }
    return 0;
}

/* The part before the first ':' : STAGE=CODE, STAGE=DURATION or STAGE. */
static int rule_head(struct sink_rule *r, const char *opt, const char *h, size_t len, char *err,
                     size_t cap)
{
    char buf[64];
    if (len >= sizeof buf)
        return conf_err(err, cap, "%s: '%s' is not a known form", opt, h);
    memcpy(buf, h, len);
    buf[len] = 0;
    char *eq = strchr(buf, '=');
    const char *val = eq ? eq + 1 : NULL;
    if (eq)
        *eq = 0;
    if (stage_parse(buf, strlen(buf), &r->stage) < 0)
        return conf_err(err, cap, "%s: unknown stage '%s' (banner, ehlo, mail, rcpt, data, "
                        "dot%s)", opt, buf, r->action == SINK_ACT_DISCONNECT ? ", mid-data" : "");
    if (r->stage == SINK_STAGE_MID_DATA && r->action != SINK_ACT_DISCONNECT)
        return conf_err(err, cap, "%s: mid-data applies to --disconnect only", opt);
    if (r->action == SINK_ACT_DISCONNECT)
        return val ? conf_err(err, cap, "%s: '%s' takes no value", opt, buf) : 0;
    if (!val)
        return conf_err(err, cap, "%s: '%s' needs =VALUE", opt, buf);
    if (r->action == SINK_ACT_DELAY)
        return sink_duration_parse(val, &r->delay_ms) < 0
                   ? conf_err(err, cap, "%s: bad duration '%s' (N, Nms or Ns)", opt, val) : 0;
    uint32_t code;
    if (u32_parse(val, strlen(val), 200, &code) < 0 || code > 599 || strlen(val) != 3)
        return conf_err(err, cap, "%s: bad reply code '%s' (200-599)", opt, val);
    r->code = (uint16_t)code;
    return 0;
}

int sink_conf_add_rule(struct sink_conf *c, const char *opt, const char *spec, char *err,
                       size_t err_cap)
{
    struct sink_rule r = { .when = SINK_WHEN_ALWAYS };
    if (!strcmp(opt, "--fault"))
        r.action = SINK_ACT_REPLY;
    else if (!strcmp(opt, "--delay"))
        r.action = SINK_ACT_DELAY;
    else if (!strcmp(opt, "--disconnect"))
        r.action = SINK_ACT_DISCONNECT;
    else
        return conf_err(err, err_cap, "%s: not a fault option", opt);
    if (r.action == SINK_ACT_DISCONNECT && !strncmp(spec, "after-txns=", 11)) {
        if (u32_parse(spec + 11, strlen(spec + 11), 1, &c->after_txns) < 0)
            return conf_err(err, err_cap, "%s: after-txns needs a whole number >= 1, got '%s'",
                            opt, spec + 11);
        return 0;
    }
    if (c->rule_count >= SINK_RULES_MAX)
        return conf_err(err, err_cap, "%s: more than 32 fault rules", opt);
    const char *colon = strchr(spec, ':');
    size_t head = colon ? (size_t)(colon - spec) : strlen(spec);
    int rc = rule_head(&r, opt, spec, head, err, err_cap);
    bool rest = false;
    for (const char *m = colon; rc == 0 && m && !rest; m = strchr(m + 1, ':')) {
        const char *next = strchr(m + 1, ':');
        size_t len = next ? (size_t)(next - m - 1) : strlen(m + 1);
        if (!strncmp(m + 1, "text=", 5))
            len = strlen(m + 1);
        rc = rule_modifier(&r, opt, m + 1, len, &rest, err, err_cap);
    }
    if (rc < 0)
        return rc;
    c->rules[c->rule_count++] = r;
    return 0;
}

int sink_conf_add_listen(struct sink_conf *c, const char *spec, char *err, size_t err_cap)
{
    char host[64];
    const char *port_s;
    if (c->listen_count >= SINK_LISTEN_MAX)
        return conf_err(err, err_cap, "--listen: more than 16 addresses");
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof host)
            return conf_err(err, err_cap, "--listen: '%s' is not [IPV6]:PORT", spec);
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = 0;
        port_s = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof host)
            return conf_err(err, err_cap, "--listen: '%s' is not ADDR:PORT", spec);
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = 0;
        port_s = colon + 1;
    }
    uint32_t port;
    if (u32_parse(port_s, strlen(port_s), 0, &port) < 0 || port > 65535)
        return conf_err(err, err_cap, "--listen: bad port '%s' in '%s'", port_s, spec);
    struct sockaddr_storage *ss = &c->listen[c->listen_count];
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        c->listen_len[c->listen_count++] = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        c->listen_len[c->listen_count++] = sizeof *v6;
    } else {
        return conf_err(err, err_cap, "--listen: '%s' is not an IP address (in '%s')", host, spec);
    }
    return 0;
}

bool sink_rule_matches(const struct sink_rule *r, const char *arg, size_t arg_len)
{
    if (!r->match[0])
        return true;
    if (!arg)
        return false;
    while (arg_len > 0 && (*arg == '<' || *arg == ' ')) {
        arg++;
        arg_len--;
    }
    size_t m = strlen(r->match);
    return arg_len >= m && !strncasecmp(arg, r->match, m);
}

bool sink_rule_fires(const struct sink_rule *r, uint64_t seen, double roll)
{
    switch (r->when) {
    case SINK_WHEN_ALWAYS: return true;
    case SINK_WHEN_EVERY:  return seen % r->n == 0;
    case SINK_WHEN_NTH:    return seen == r->n;
    case SINK_WHEN_PROB:   return roll < r->prob;
    }
    vl_panic("bad rule when %d", (int)r->when);
}

int sink_conf_set_tls(struct sink_conf *c, const char *cert, const char *key, char *err,
                      size_t err_cap)
{
    if (!cert != !key)
        return conf_err(err, err_cap, "--tls-cert and --tls-key go together: %s is missing",
                        cert ? "--tls-key" : "--tls-cert");
    if (!cert)
        return 0;
    struct tls_ctx *ctx;                  /* load once now: a bad file is a usage error */
    char why[400];
    if (tls_ctx_server_create(&ctx, cert, key, why, sizeof why) < 0)
        return conf_err(err, err_cap, "%s", why);
    tls_ctx_destroy(ctx);
    c->tls_cert = cert;
    c->tls_key = key;
    c->smtp.starttls = true;
    return 0;
}
