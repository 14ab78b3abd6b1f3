/*
 * cli_suppress.c - `volley suppress add|rm|ls|import FILE|export [--data DIR]`:
 * the suppression list (engine/suppress/suppress.h), usable while an engine
 * runs. CSV (ls and export print the same): a header line
 * "address,scope,reason,time", then one line per entry; scope empty =
 * global, else the sending domain; time is ISO 8601 UTC. import reads the
 * same columns (scope, reason and time optional: global, manual, now); a
 * bad line stops the import before anything is written, naming the line.
 */
#include "cli.h"
#include "cli_queue.h"
#include "suppress.h"
#include "volley/error.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUP_CSV_LINE_BYTES_MAX 1024u
#define SUP_IMPORT_MAX      1000000u    /* policy: lines per import */

static const char SUP_USAGE[] =
    "usage: volley suppress add ADDRESS [--scope DOMAIN] [--reason R] [--data DIR]\n"
    "       volley suppress rm ADDRESS [--scope DOMAIN] [--data DIR]\n"
    "       volley suppress ls|export [--data DIR]      (CSV on stdout)\n"
    "       volley suppress import FILE [--data DIR]   (CSV: address[,scope[,reason[,time]]])\n\n"
    "Addresses volley must not mail: globally, or with --scope for mail whose\n"
    "envelope sender is in DOMAIN. R: hard_bounce, unsubscribe, complaint, manual\n"
    "(default manual). The HTTP API refuses a suppressed recipient (failed_recipients,\n"
    "with the reason). The list lives in DATA/suppress (default ./volley-data).\n";

static void fmt_time(char *out, size_t cap, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int parse_time(const char *s, uint64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end)
        return -1;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    *ms = (uint64_t)t * 1000u;
    return 0;
}

static int print_entry(const struct sup_entry *e, void *arg)
{
    (void)arg;
    char t[32];
    fmt_time(t, sizeof t, e->time_ms);
    printf("%s,%s,%s,%s\n", e->addr, e->scope, sup_reason_name(e->reason), t);
    return 0;
}

static uint64_t sup_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct imp_line {
    char addr[SUP_ADDR_BYTES_MAX + 1], scope[SUP_SCOPE_BYTES_MAX + 1];
    enum sup_reason reason;
    uint64_t time_ms;
};

/* Split one CSV line (no quoting: addresses with commas are not supported). */
static int imp_parse(char *line, struct imp_line *l, const char **why)
{
    char *f[5] = { 0 };
    int n = 0;
    for (char *p = line; n < 5; n++) {
        f[n] = p;
        char *c = strchr(p, ',');
        if (!c) {
            n++;
            break;
        }
        *c = '\0';
        p = c + 1;
    }
    if (n > 4) {
        *why = "more than 4 columns";
        return -1;
    }
    if (!f[0][0] || strlen(f[0]) > SUP_ADDR_BYTES_MAX) {
        *why = "no address";
        return -1;
    }
    snprintf(l->addr, sizeof l->addr, "%s", f[0]);
    snprintf(l->scope, sizeof l->scope, "%s", n > 1 ? f[1] : "");
    l->reason = n > 2 && f[2][0] ? sup_reason_parse(f[2]) : SUP_MANUAL;
    if (l->reason == SUP_NONE) {
        *why = "unknown reason (hard_bounce, unsubscribe, complaint, manual)";
        return -1;
    }
    l->time_ms = sup_cli_now_ms();
    if (n > 3 && f[3][0] && parse_time(f[3], &l->time_ms) < 0) {
        *why = "time is not YYYY-MM-DDTHH:MM:SSZ";
        return -1;
    }
    return 0;
}

static int do_import(struct sup *s, const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
    if (!f) {
        perror("volley suppress import");
        return VL_EXIT_USAGE;
    }
    struct imp_line *lines = NULL;
    size_t n = 0, cap = 0;
    char buf[SUP_CSV_LINE_BYTES_MAX];
    unsigned lineno = 0;
    int code = VL_EXIT_OK;
    while (fgets(buf, sizeof buf, f)) {
        lineno++;
        buf[strcspn(buf, "\r\n")] = '\0';
        if (!buf[0] || (lineno == 1 && !strncmp(buf, "address,", 8)))
            continue;                                        /* blank, or the header */
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            struct imp_line *nl = cap <= SUP_IMPORT_MAX ? realloc(lines, cap * sizeof *nl) : NULL;
            if (!nl) {
                fprintf(stderr, "volley suppress import: %s: more than %u lines or out of "
                        "memory\n", path, SUP_IMPORT_MAX);
                code = VL_EXIT_FAIL;
                goto out;
            }
            lines = nl;
        }
        const char *why = NULL;
        if (imp_parse(buf, &lines[n], &why) < 0) {
            fprintf(stderr, "volley suppress import: %s line %u: %s; nothing imported\n", path,
                    lineno, why);
            code = VL_EXIT_USAGE;
            goto out;
        }
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = sup_add(s, lines[i].scope, lines[i].addr, lines[i].reason, lines[i].time_ms);
        if (rc < 0) {
            fprintf(stderr, "volley suppress import: %s: entry %zu (%s): %s; the %zu before it "
                    "were imported\n", path, i + 1, lines[i].addr,
                    rc == VL_E_INVALID ? "invalid address or scope" : vl_strerror(rc), i);
            code = rc == VL_E_INVALID ? VL_EXIT_USAGE : VL_EXIT_FAIL;
            goto out;
        }
    }
    fprintf(stderr, "volley suppress import: %zu entries\n", n);
out:
    free(lines);
    if (f != stdin)
        fclose(f);
    return code;
}

int cli_suppress_main(int argc, char **argv)
{
    const char *data = CLI_DATA_DIR_DEFAULT, *scope = "", *reason = "manual";
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' }, { "scope", required_argument, NULL, 's' },
        { "reason", required_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 's': scope = optarg; break;
        case 'r': reason = optarg; break;
        case 'h': fputs(SUP_USAGE, stdout); return VL_EXIT_OK;
        default: fputs(SUP_USAGE, stderr); return VL_EXIT_USAGE;
        }
    }
    const char *verb = optind < argc ? argv[optind] : NULL;
    const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
    bool needs_arg = verb && (!strcmp(verb, "add") || !strcmp(verb, "rm") ||
                              !strcmp(verb, "import"));
    bool known = needs_arg || (verb && (!strcmp(verb, "ls") || !strcmp(verb, "export")));
    if (!known || (needs_arg && !arg) || optind + 1 + needs_arg < argc) {
        fprintf(stderr, "volley suppress: %s\n%s", !verb ? "missing command" : !known ?
                "unknown command" : needs_arg && !arg ? "missing argument" : "extra argument",
                SUP_USAGE);
        return VL_EXIT_USAGE;
    }
    enum sup_reason r = sup_reason_parse(reason);
    if (r == SUP_NONE) {
        fprintf(stderr, "volley suppress: --reason '%s': expected hard_bounce, unsubscribe, "
                "complaint or manual\n", reason);
        return VL_EXIT_USAGE;
    }
    bool writes = strcmp(verb, "ls") && strcmp(verb, "export");
    struct sup *s = NULL;
    int rc = sup_open(data, writes, &s);
    if (rc == VL_E_NOTFOUND) {                        /* nothing suppressed yet */
        if (writes)
            return VL_EXIT_FAIL;
        printf("address,scope,reason,time\n");
        return VL_EXIT_OK;
    }
    if (rc < 0) {
        fprintf(stderr, "volley suppress: cannot open %s/suppress: %s\n", data, vl_strerror(rc));
        return VL_EXIT_FAIL;
    }
    int code = VL_EXIT_OK;
    if (!strcmp(verb, "add") || !strcmp(verb, "rm")) {
        rc = !strcmp(verb, "add") ? sup_add(s, scope, arg, r, sup_cli_now_ms()) : sup_rm(s, scope, arg);
        if (rc < 0) {
            fprintf(stderr, "volley suppress %s: %s%s%s: %s\n", verb, arg, *scope ? " in " : "",
                    scope, rc == VL_E_INVALID ? "invalid address or scope" :
                    rc == VL_E_NOTFOUND ? "not in the list" : vl_strerror(rc));
            code = rc == VL_E_INVALID || rc == VL_E_NOTFOUND ? VL_EXIT_USAGE : VL_EXIT_FAIL;
        }
    } else if (!strcmp(verb, "import")) {
        code = do_import(s, arg);
    } else {
        printf("address,scope,reason,time\n");
        rc = sup_foreach(s, print_entry, NULL);
        if (rc < 0) {
            fprintf(stderr, "volley suppress %s: %s\n", verb, vl_strerror(rc));
            code = VL_EXIT_FAIL;
        }
    }
    sup_close(s);
    return code;
}
