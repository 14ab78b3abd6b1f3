/*
 * cli_admin.c - `volley admin`: operator actions against a running engine,
 * through its HTTP API (engine/http/http_admin.c) with libcurl:
 *   volley admin suspend|resume|bounce|purge|retry DOMAIN [--note TEXT]
 *   volley admin suspend|resume --mx SUFFIX|--egress IP  (MX group, source address)
 *   volley admin suspend|resume|bounce|purge --campaign ID|--tenant ID|--sender ADDRESS
 *   volley admin holds
 *   volley admin metrics            (the GET /metrics text)
 * always with --http ADDR:PORT --http-token-file FILE (the engine's).
 * Prints the API's JSON answer on stdout; exit 0 (2xx), 1 (refused or no
 * engine), 2 (usage). cli_http_call() is shared with `volley top`.
 */
#include "cli.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cli_rbuf {
    char *p;
    size_t len;
};

static size_t cli_http_write(char *d, size_t sz, size_t nm, void *arg)
{
    struct cli_rbuf *b = arg;
    size_t n = sz * nm;
    char *p = realloc(b->p, b->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, d, n);
    b->p = p;
    b->len += n;
    p[b->len] = '\0';
    return n;
}

int cli_http_token(const char *file, char *tok, size_t cap)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    bool ok = fgets(tok, (int)cap, f) != NULL;
    fclose(f);
    if (!ok)
        return -1;
    tok[strcspn(tok, "\r\n")] = '\0';
    return tok[0] ? 0 : -1;
}

int cli_http_call(const char *hostport, const char *token, const char *method, const char *path,
                  char **body, long *status, char *err, size_t errcap)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errcap, "curl_easy_init failed");
        return -1;
    }
    char url[2048], auth[600];
    snprintf(url, sizeof url, "http://%s%s", hostport, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *hd = curl_slist_append(NULL, auth);
    struct cli_rbuf b = { NULL, 0 };
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "POST"))
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cli_http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    else
        snprintf(err, errcap, "%s: %s", url, ebuf[0] ? ebuf : curl_easy_strerror(rc));
    curl_slist_free_all(hd);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        free(b.p);
        return -1;
    }
    *body = b.p ? b.p : strdup("");
    return 0;
}

static void cli_admin_usage(FILE *f)
{
    fputs("usage: volley admin ACTION [DOMAIN | --campaign ID | --tenant ID | --sender ADDRESS\n"
          "                           | --mx SUFFIX | --egress IP]\n"
          "                    --http ADDR:PORT --http-token-file FILE [--note TEXT]\n\n"
          "Operator actions against a running `volley run --http` (its address and token):\n"
          "  suspend DOMAIN   send nothing to DOMAIN until resumed (kept across restarts)\n"
          "  resume DOMAIN    lift the suspension; DOMAIN's recipients are ready at once\n"
          "  bounce DOMAIN    fail DOMAIN's queued recipients (5.0.0, a DSN to the sender)\n"
          "  purge DOMAIN     drop DOMAIN's queued recipients (no DSN)\n"
          "  retry DOMAIN     make DOMAIN's deferred recipients ready now\n"
          "  holds            list the suspensions, bounces and purges in force\n"
          "  metrics          print GET /metrics (Prometheus text)\n"
          "suspend, resume, bounce and purge also take --campaign ID (X-Volley-Campaign),\n"
          "--tenant ID (X-Volley-Tenant) or --sender ADDRESS (the envelope sender) instead\n"
          "of a DOMAIN. suspend and resume also take --mx SUFFIX (an MX provider group: a\n"
          "shaping policy name or an MX host suffix such as google.com) or --egress IP (a\n"
          "source address: new connections bind another of its pool; with none left its\n"
          "mail waits).\n"
          "Each action is logged by the engine (evt=admin). Prints the API's answer.\n", f);
}

int cli_admin_main(int argc, char **argv)
{
    const char *act = NULL, *dom = NULL, *hp = NULL, *tokf = NULL, *note = NULL;
    const char *camp = NULL, *sender = NULL, *mx = NULL, *egress = NULL, *tenant = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_admin_usage(stdout);
            return VL_EXIT_OK;
        }
        const char **opt = !strcmp(a, "--http") ? &hp : !strcmp(a, "--http-token-file") ? &tokf
                         : !strcmp(a, "--note") ? &note : !strcmp(a, "--campaign") ? &camp
                         : !strcmp(a, "--sender") ? &sender : !strcmp(a, "--mx") ? &mx
                         : !strcmp(a, "--egress") ? &egress
                         : !strcmp(a, "--tenant") ? &tenant : NULL;
        if (opt) {
            if (i + 1 >= argc) {
                fprintf(stderr, "volley admin: %s needs a value\n", a);
                return VL_EXIT_USAGE;
            }
            *opt = argv[++i];
        } else if (a[0] == '-') {
            fprintf(stderr, "volley admin: unknown option '%s' (see volley admin --help)\n", a);
            return VL_EXIT_USAGE;
        } else if (!act) {
            act = a;
        } else if (!dom) {
            dom = a;
        } else {
            fprintf(stderr, "volley admin: unexpected argument '%s'\n", a);
            return VL_EXIT_USAGE;
        }
    }
    static const char *const with_dom[] = { "suspend", "resume", "bounce", "purge", "retry" };
    bool needs_dom = false, known = act && (!strcmp(act, "holds") || !strcmp(act, "metrics"));
    for (size_t k = 0; act && k < sizeof with_dom / sizeof with_dom[0]; k++)
        if (!strcmp(act, with_dom[k]))
            needs_dom = known = true;
    if (!known) {
        fprintf(stderr, "volley admin: %s%s (see volley admin --help)\n",
                act ? "unknown action " : "missing ACTION", act ? act : "");
        return VL_EXIT_USAGE;
    }
    int given = (dom != NULL) + (camp != NULL) + (sender != NULL) + (mx != NULL) +
                (egress != NULL) + (tenant != NULL);
    if (needs_dom ? given != 1 : given != 0) {
        fprintf(stderr, "volley admin %s: %s\n", act, needs_dom
                ? "needs one DOMAIN, --campaign ID, --tenant ID, --sender ADDRESS, --mx SUFFIX "
                  "or --egress IP"
                : "takes no DOMAIN");
        return VL_EXIT_USAGE;
    }
    if ((mx || egress) && strcmp(act, "suspend") && strcmp(act, "resume")) {
        fprintf(stderr, "volley admin %s: --mx and --egress take suspend and resume only\n",
                act);
        return VL_EXIT_USAGE;
    }
    if (!strcmp(act, "retry") && !dom) {
        fprintf(stderr, "volley admin retry: needs a DOMAIN\n");
        return VL_EXIT_USAGE;
    }
    const char *key = camp ? "campaign" : sender ? "sender" : mx ? "mx" : egress ? "egress"
                    : tenant ? "tenant" : "domain";
    if (camp)
        dom = camp;
    else if (sender)
        dom = sender;
    else if (mx)
        dom = mx;
    else if (egress)
        dom = egress;
    else if (tenant)
        dom = tenant;
    if (!hp || !tokf) {
        fprintf(stderr, "volley admin: needs --http ADDR:PORT and --http-token-file FILE (the "
                "running engine's)\n");
        return VL_EXIT_USAGE;
    }
    char tok[512];
    if (cli_http_token(tokf, tok, sizeof tok) < 0) {
        fprintf(stderr, "volley admin: --http-token-file %s: cannot read a token\n", tokf);
        return VL_EXIT_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "volley admin: libcurl init failed\n");
        return VL_EXIT_FAIL;
    }
    char path[1400];
    const char *method = "POST";
    if (!strcmp(act, "holds")) {
        method = "GET";
        snprintf(path, sizeof path, "/api/v1/admin/holds");
    } else if (!strcmp(act, "metrics")) {
        method = "GET";
        snprintf(path, sizeof path, "/metrics");
    } else {
        char *ed = curl_easy_escape(NULL, dom, 0), *en = note ? curl_easy_escape(NULL, note, 0)
                                                              : NULL;
        snprintf(path, sizeof path, "/api/v1/admin/%s?%s=%s%s%s", act, key, ed ? ed : "",
                 en ? "&note=" : "", en ? en : "");
        curl_free(ed);
        curl_free(en);
    }
    char *body = NULL, err[600];
    long st = 0;
    int rc = cli_http_call(hp, tok, method, path, &body, &st, err, sizeof err);
    curl_global_cleanup();
    if (rc < 0) {
        fprintf(stderr, "volley admin: %s\n", err);
        return VL_EXIT_FAIL;
    }
    fputs(body, st / 100 == 2 ? stdout : stderr);
    if (body[0] && body[strlen(body) - 1] != '\n')
        fputc('\n', st / 100 == 2 ? stdout : stderr);
    free(body);
    if (st / 100 != 2) {
        fprintf(stderr, "volley admin %s: HTTP %ld\n", act, st);
        return VL_EXIT_FAIL;
    }
    return VL_EXIT_OK;
}
