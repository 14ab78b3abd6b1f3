/*
 * cli_doctor.c - `volley doctor DOMAIN`: check the sending domain's DNS
 * against this configuration (engine/doctor) and print a table a person can
 * act on, or JSON (--json). Exit 0 when every check passes, 1 when one fails
 * (each failure explained, with the record to publish), 2 on bad usage.
 *
 *   volley doctor DOMAIN [--dns HOST:PORT] [--ehlo NAME] [--source IP ...]
 *                 [--dkim DOMAIN:SELECTOR:KEYFILE ...] [--json]
 */
#include "cli.h"
#include "cli_dkim.h"
#include "doctor.h"

#include "volley/addr.h"
#include "volley/config.h"
#include "volley/error.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void doctor_usage(FILE *f)
{
    fputs("usage: volley doctor DOMAIN [--dns HOST:PORT] [--ehlo NAME] [--source IP ...]\n"
          "                     [--dkim DOMAIN:SELECTOR:KEYFILE ...] [--json]\n\n"
          "Check DOMAIN's DNS for sending mail From: it with this configuration: MX; SPF\n"
          "(valid, at most 10 lookups through include:, each --source address passes);\n"
          "each --dkim selector's TXT key matches the private key; DMARC (policy, and the\n"
          "From: domain aligned with the DKIM domain); reverse DNS of each --source address,\n"
          "forward-confirmed and equal to the EHLO name; MTA-STS if published.\n"
          "Exit 0: every check passes; 1: a check failed (the record to publish is shown).\n\n"
          "  --dns HOST:PORT   resolver to ask (default /etc/resolv.conf)\n"
          "  --ehlo NAME       the EHLO name volley sends (default: this host's name)\n"
          "  --source IP       an address volley sends from; repeatable\n"
          "  --json            one JSON object instead of the table\n", f);
    fputs(vl_dkim_usage, f);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static const char *status_name(enum doctor_status s)
{
    return s == DOCTOR_PASS ? "pass" : s == DOCTOR_FAIL ? "FAIL" : "info";
}

static void print_json(const char *domain, const struct doctor_report *r)
{
    printf("{\"domain\":");
    json_str(stdout, domain);
    printf(",\"ok\":%s,\"checks\":[", r->all_pass ? "true" : "false");
    for (unsigned i = 0; i < r->rows; i++) {
        const struct doctor_row *w = &r->row[i];
        printf("%s{\"check\":\"%s\",\"status\":\"%s\",\"detail\":", i ? "," : "", w->check,
               w->status == DOCTOR_PASS ? "pass" : w->status == DOCTOR_FAIL ? "fail" : "info");
        json_str(stdout, w->detail);
        if (w->publish[0]) {
            printf(",\"publish\":");
            json_str(stdout, w->publish);
        }
        printf("}");
    }
    printf("]}\n");
}

static void print_table(const char *domain, const struct doctor_report *r)
{
    printf("volley doctor %s\n\n%-8s %-6s %s\n", domain, "CHECK", "STATUS", "DETAIL");
    unsigned fails = 0;
    for (unsigned i = 0; i < r->rows; i++) {
        const struct doctor_row *w = &r->row[i];
        printf("%-8s %-6s %s\n", w->check, status_name(w->status), w->detail);
        if (w->publish[0])
            printf("%-8s %-6s   publish: %s\n", "", "", w->publish);
        fails += w->status == DOCTOR_FAIL;
    }
    if (fails)
        printf("\n%u check%s failed\n", fails, fails == 1 ? "" : "s");
    else
        printf("\nall checks passed\n");
}

int cli_doctor_main(int argc, char **argv)
{
    static struct vl_config cfg;
    vl_config_defaults(&cfg);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            doctor_usage(stdout);
            return VL_EXIT_OK;
        }
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int rest_n = 0;
    if (!rest || vl_config_parse(&cfg, "doctor", argc, argv, rest, &rest_n) != 0) {
        free(rest);
        return VL_EXIT_USAGE;
    }
    struct doctor_opts o = { .dns = cfg.dns, .ehlo = cfg.ehlo_name, .timeout_ms = 3000 };
    bool json = false;
    int rc = VL_EXIT_USAGE;
    char domain[VL_SMTP_DOMAIN_BYTES_MAX + 1] = "";
    for (int i = 0; i < rest_n; i++) {
        const char *a = rest[i], *why = NULL;
        unsigned char ip[16];
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--source") && i + 1 < rest_n) {
            a = rest[++i];
            if (inet_pton(AF_INET, a, ip) != 1 && inet_pton(AF_INET6, a, ip) != 1) {
                fprintf(stderr, "volley doctor: --source '%s': not an IP address\n", a);
                goto done;
            }
            if (o.source_count == DOCTOR_SOURCES_MAX) {
                fprintf(stderr, "volley doctor: more than %u --source addresses\n",
                        DOCTOR_SOURCES_MAX);
                goto done;
            }
            o.sources[o.source_count++] = a;
        } else if (a[0] != '-' && !domain[0]) {
            if (vl_domain_check(a, strlen(a), &why) != 0 || strlen(a) >= sizeof domain) {
                fprintf(stderr, "volley doctor: '%s' is not a domain: %s\n", a,
                        why ? why : "too long");
                goto done;
            }
            for (size_t k = 0; a[k]; k++)
                domain[k] = (char)tolower((unsigned char)a[k]);
        } else {
            fprintf(stderr, "volley doctor: unexpected argument '%s' (see volley doctor --help)\n",
                    a);
            goto done;
        }
    }
    if (!domain[0]) {
        fprintf(stderr, "volley doctor: which DOMAIN? (see volley doctor --help)\n");
        goto done;
    }
    o.domain = domain;
    struct dkim_signer *signer = NULL;
    if (cli_dkim_load("doctor", &cfg.dkim, &signer) < 0)
        goto done;
    o.dkim = signer;
    static struct doctor_report rep;
    int drc = doctor_run(&o, &rep);
    cli_dkim_unload(signer);
    if (drc < 0) {
        fprintf(stderr, "volley doctor: resolver: %s\n", vl_strerror(drc));
        rc = VL_EXIT_FAIL;
        goto done;
    }
    if (json)
        print_json(domain, &rep);
    else
        print_table(domain, &rep);
    rc = rep.all_pass ? VL_EXIT_OK : VL_EXIT_FAIL;
done:
    free(rest);
    return rc;
}
