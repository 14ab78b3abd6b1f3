/*
 * cli_top.c - `volley top`: a live terminal view of a running engine, from
 * its GET /metrics (engine/http/http_metrics.c) polled every --interval over
 * libcurl: queue totals (ready, deferred, in flight, connections, injected)
 * and one row per destination domain (the engine's top 20 + "other"):
 * delivered, deferred, bounced, expired, suppressed since start, the
 * recipients in flight now and the last failure (both from GET
 * /api/v1/admin/domains), and the delivery rate over the last interval. --once prints one frame and exits
 * (scripts, tests); otherwise the screen is redrawn until SIGINT/SIGTERM.
 */
#include "cli.h"

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOP_ROWS_MAX 64u
enum { TOP_DELIVERED, TOP_DEFERRED, TOP_BOUNCED, TOP_EXPIRED, TOP_SUPPRESSED, TOP_OUTCOMES };
static const char *const top_outcomes[TOP_OUTCOMES] = {
    "delivered", "deferred", "bounced", "expired", "suppressed",
};

struct top_row {
    char domain[256];
    double n[TOP_OUTCOMES];
    double prev_delivered;
    bool seen;
    char err[120];                 /* the last failure (GET /api/v1/admin/domains) */
    double inflight;               /* recipients in flight now (the same) */
};

struct top_frame {
    double ready, deferred, inflight, conns_open, conns_opened, tls_share;
    double injected, oldest_age;
    double total[TOP_OUTCOMES];
    unsigned nrows;
    struct top_row rows[TOP_ROWS_MAX];
};

/* The value of label @p key in "{a="x",b="y"}" into @p out. @return found. */
static bool top_label(const char *labels, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "%s=\"", key);
    const char *p = strstr(labels, pat);
    if (!p)
        return false;
    p += strlen(pat);
    size_t k = 0;
    for (; *p && *p != '"' && k + 1 < cap; p++) {
        if (*p == '\\' && p[1])
            p++;
        out[k++] = *p;
    }
    out[k] = '\0';
    return true;
}

static struct top_row *top_row_of(struct top_frame *f, const char *dom)
{
    for (unsigned i = 0; i < f->nrows; i++)
        if (!strcmp(f->rows[i].domain, dom))
            return &f->rows[i];
    if (f->nrows == TOP_ROWS_MAX)
        return NULL;
    struct top_row *r = &f->rows[f->nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->domain, sizeof r->domain, "%s", dom);
    return r;
}

static int top_outcome_of(const char *labels)
{
    char o[32];
    if (!top_label(labels, "outcome", o, sizeof o))
        return -1;
    for (int k = 0; k < TOP_OUTCOMES; k++)
        if (!strcmp(o, top_outcomes[k]))
            return k;
    return -1;
}

/* Parse the Prometheus text @p t into @p f (rows reset, previous rates kept). */
static void top_parse(char *t, struct top_frame *f)
{
    f->ready = f->deferred = f->inflight = f->conns_open = f->conns_opened = 0;
    f->tls_share = f->injected = f->oldest_age = 0;
    memset(f->total, 0, sizeof f->total);
    for (unsigned i = 0; i < f->nrows; i++) {
        memset(f->rows[i].n, 0, sizeof f->rows[i].n);
        f->rows[i].seen = false;
    }
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char *sp = strrchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        double v = strtod(sp + 1, NULL);
        char *br = strchr(line, '{');
        const char *labels = br ? br + 1 : "";
        if (br)
            *br = '\0';                         /* name ends; labels follow */
        const char *name = line;
        char lv[256];
        int o;
        if (!strcmp(name, "volley_queue_recipients") && top_label(labels, "state", lv, sizeof lv)) {
            if (!strcmp(lv, "ready"))
                f->ready = v;
            else if (!strcmp(lv, "deferred"))
                f->deferred = v;
        } else if (!strcmp(name, "volley_inflight_recipients")) {
            f->inflight = v;
        } else if (!strcmp(name, "volley_connections_open")) {
            f->conns_open = v;
        } else if (!strcmp(name, "volley_connections_opened_total")) {
            f->conns_opened = v;
        } else if (!strcmp(name, "volley_tls_share")) {
            f->tls_share = v;
        } else if (!strcmp(name, "volley_injected_recipients_total")) {
            f->injected += v;
        } else if (!strcmp(name, "volley_queue_oldest_open_age_seconds")) {
            f->oldest_age = v;
        } else if (!strcmp(name, "volley_recipients_total") && (o = top_outcome_of(labels)) >= 0) {
            f->total[o] = v;
        } else if (!strcmp(name, "volley_domain_recipients_total") &&
                   (o = top_outcome_of(labels)) >= 0 && top_label(labels, "domain", lv, sizeof lv)) {
            struct top_row *r = top_row_of(f, lv);
            if (r) {
                r->n[o] = v;
                r->seen = true;
            }
        }
    }
}

/* The last failures and in-flight counts per domain from GET
 * /api/v1/admin/domains' JSON @p t. */
static void top_errors(const char *t, struct top_frame *f)
{
    json_t *o = json_loads(t, 0, NULL);
    json_t *arr = o ? json_object_get(o, "domains") : NULL;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        const char *d = json_string_value(json_object_get(e, "domain"));
        const char *err = json_string_value(json_object_get(e, "last_error"));
        json_t *inf = json_object_get(e, "inflight");
        for (unsigned k = 0; d && k < f->nrows; k++)
            if (!strcmp(f->rows[k].domain, d)) {
                if (err)
                    snprintf(f->rows[k].err, sizeof f->rows[k].err, "%s", err);
                f->rows[k].inflight = json_is_integer(inf) ? (double)json_integer_value(inf)
                                                           : 0.0;
            }
    }
    json_decref(o);
}

static int top_row_cmp(const void *a, const void *b)
{
    const struct top_row *x = a, *y = b;
    double tx = 0, ty = 0;
    for (int k = 0; k < TOP_OUTCOMES; k++) {
        tx += x->n[k];
        ty += y->n[k];
    }
    if (!strcmp(x->domain, "other") != !strcmp(y->domain, "other"))
        return !strcmp(x->domain, "other") ? 1 : -1;    /* "other" last */
    if (tx != ty)
        return tx < ty ? 1 : -1;
    return strcmp(x->domain, y->domain);
}

static void top_draw(FILE *out, const char *hp, struct top_frame *f, double dt, bool clear)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%H:%M:%SZ", &tm);
    if (clear)
        fputs("\033[H\033[2J", out);
    fprintf(out, "volley top - %s - %s\n", hp, ts);
    fprintf(out, "queue: ready %.0f  deferred %.0f  in flight %.0f  oldest %.0fs   "
            "connections: open %.0f opened %.0f  TLS %.0f%%  injected %.0f\n",
            f->ready, f->deferred, f->inflight, f->oldest_age, f->conns_open,
            f->conns_opened, f->tls_share * 100.0, f->injected);
    fprintf(out, "totals: delivered %.0f  deferred %.0f  bounced %.0f  expired %.0f  "
            "suppressed %.0f\n\n", f->total[0], f->total[1], f->total[2], f->total[3],
            f->total[4]);
    fprintf(out, "%-32s %10s %9s %10s %9s %8s %9s %10s  %s\n", "DOMAIN", "DELIVERED",
            "DEFERRED", "BOUNCED", "EXPIRED", "SUPPR", "INFLIGHT", "RATE/s", "LAST ERROR");
    qsort(f->rows, f->nrows, sizeof f->rows[0], top_row_cmp);
    for (unsigned i = 0; i < f->nrows; i++) {
        struct top_row *r = &f->rows[i];
        if (!r->seen)
            continue;
        double rate = dt > 0 && r->n[0] >= r->prev_delivered ? (r->n[0] - r->prev_delivered) / dt
                                                            : 0.0;
        fprintf(out, "%-32.32s %10.0f %9.0f %10.0f %9.0f %8.0f %9.0f %10.1f  %.48s\n",
                r->domain, r->n[0], r->n[1], r->n[2], r->n[3], r->n[4], r->inflight, rate,
                r->err[0] ? r->err : "-");
        r->prev_delivered = r->n[0];
    }
    fflush(out);
}

static atomic_bool top_stop;

static void top_on_signal(int sig)
{
    (void)sig;
    atomic_store(&top_stop, true);
}

static void cli_top_usage(FILE *f)
{
    fputs("usage: volley top --http ADDR:PORT --http-token-file FILE [--interval SECONDS]\n"
          "                  [--once]\n\n"
          "A live view of a running `volley run --http` (its address and token), from its\n"
          "GET /metrics: queue totals, and per destination domain (the engine's top 20 and\n"
          "\"other\") the recipients delivered, deferred, bounced, expired and suppressed\n"
          "since it started, the recipients in flight now, the delivery rate over the last\n"
          "interval (default 1 s) and the last failure seen.\n"
          "--once prints one frame and exits. Ctrl-C quits.\n", f);
}

int cli_top_main(int argc, char **argv)
{
    const char *hp = NULL, *tokf = NULL;
    double interval = 1.0;
    bool once = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_top_usage(stdout);
            return VL_EXIT_OK;
        }
        if (!strcmp(a, "--once")) {
            once = true;
            continue;
        }
        bool known = !strcmp(a, "--http") || !strcmp(a, "--http-token-file") ||
                     !strcmp(a, "--interval");
        if (!known) {
            fprintf(stderr, "volley top: unknown argument '%s' (see volley top --help)\n", a);
            return VL_EXIT_USAGE;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "volley top: %s needs a value\n", a);
            return VL_EXIT_USAGE;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--http")) {
            hp = v;
        } else if (!strcmp(a, "--http-token-file")) {
            tokf = v;
        } else {
            char *end;
            interval = strtod(v, &end);
            if (*end || !(interval >= 0.1 && interval <= 3600)) {
                fprintf(stderr, "volley top: --interval '%s': expected seconds from 0.1 to "
                        "3600\n", v);
                return VL_EXIT_USAGE;
            }
        }
    }
    if (!hp || !tokf) {
        fprintf(stderr, "volley top: needs --http ADDR:PORT and --http-token-file FILE (the "
                "running engine's)\n");
        return VL_EXIT_USAGE;
    }
    char tok[512];
    if (cli_http_token(tokf, tok, sizeof tok) < 0) {
        fprintf(stderr, "volley top: --http-token-file %s: cannot read a token\n", tokf);
        return VL_EXIT_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return VL_EXIT_FAIL;
    signal(SIGINT, top_on_signal);
    signal(SIGTERM, top_on_signal);
    static struct top_frame f;
    struct timespec prev = { 0, 0 };
    int code = VL_EXIT_OK;
    while (!atomic_load(&top_stop)) {
        char *body = NULL, err[600];
        long st = 0;
        if (cli_http_call(hp, tok, "GET", "/metrics", &body, &st, err, sizeof err) < 0) {
            fprintf(stderr, "volley top: %s\n", err);
            code = VL_EXIT_FAIL;
            if (once)
                break;
        } else if (st != 200) {
            fprintf(stderr, "volley top: GET /metrics: HTTP %ld %s\n", st, body);
            free(body);
            code = VL_EXIT_FAIL;
            break;
        } else {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double dt = prev.tv_sec ? (double)(now.tv_sec - prev.tv_sec) +
                                      (double)(now.tv_nsec - prev.tv_nsec) / 1e9 : 0.0;
            prev = now;
            top_parse(body, &f);
            free(body);
            for (unsigned k = 0; k < f.nrows; k++) {
                f.rows[k].err[0] = '\0';
                f.rows[k].inflight = 0;
            }
            if (cli_http_call(hp, tok, "GET", "/api/v1/admin/domains", &body, &st, err,
                              sizeof err) == 0) {
                if (st == 200)
                    top_errors(body, &f);
                free(body);
            }
            top_draw(stdout, hp, &f, dt, !once);
            code = VL_EXIT_OK;
        }
        if (once)
            break;
        for (double s = 0; s < interval && !atomic_load(&top_stop); s += 0.05)
            usleep(50000);
    }
    curl_global_cleanup();
    return code;
}
