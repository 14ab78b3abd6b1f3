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
 * policies) and `egress` (source addresses and pools, both in config_shaping.c),
 * `dkim` and `events`. Shared helpers: config_cf.h.
 *
 * Invariant: a file is either loaded whole and valid, or refused with every
 * error found (not only the first): the caller keeps its old config then.
 * Diagnostics: one "PATH:LINE: ..." line per error to the caller's stream;
 * an unknown key names the closest known one ("did you mean").
 */
#include "config_cf.h"

#include "volley/addr.h"
#include "volley/config.h"
#include "volley/shaping.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- values ---------------------------------------------------------------- */

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
    static const char *const akeys[] = { "url", "queue", "ca-file", "per-message" };
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
                else if (!hook && !strcmp(n, "per-message"))
                    cf_get_uint(f, v, "events.amqp.per-message", 1, 1000, &o->amqp_per_message);
                else
                    cf_unknown(f, v, hook ? "events.webhook" : "events.amqp", sk, hook ? 2 : 4);
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
