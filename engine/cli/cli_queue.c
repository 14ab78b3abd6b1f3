/*
 * cli_queue.c - `volley queue stats|ls [--quarantine]|show ID|retry (ID|--domain D)|
 * bounce ID|purge (ID|--all|--quarantine)|check [--data DIR] [--json] [--top N]
 * [--limit N]`.
 * (bounce lives in cli_queue_bounce.c.)
 * Human-readable by default, one JSON document with --json.
 * Exit: 0 ok, 1 runtime failure, 2 usage error or unknown id.
 */
#include "cli.h"
#include "cli_queue.h"

#include "volley/config.h"
#include "volley/error.h"
#include "volley/limits.h"

#include <getopt.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define CLI_TOP_DEFAULT    10u
#define CLI_TOP_MAX      1000u
#define CLI_LIMIT_DEFAULT 100u
#define CLI_LIMIT_MAX   10000u
#define CLI_SHOW_RCPTS_MAX 1000u


/* Name who holds DATA/lock: one engine per directory, no change under it. */
static void cli_queue_locked(const char *cmd, const char *dir, unsigned flags)
{
    char role[16];
    int pid = vl_queue_lock_holder(dir, role, sizeof role);
    const char *who = !strcmp(role, "admin") ? "a volley queue command" : "an engine";
    if (pid > 0)
        fprintf(stderr, "volley %s: %s (pid %d) is running on %s", cmd, who, pid, dir);
    else
        fprintf(stderr, "volley %s: another volley process is running on %s", cmd, dir);
    if (flags & VL_QUEUE_ENGINE)
        fprintf(stderr, "; one engine per data directory\n");
    else
        fprintf(stderr, "; stop it first (stats, ls, show and check work meanwhile)\n");
}

int cli_queue_open(const char *cmd, const char *dir, unsigned nshards, unsigned flags,
                   struct vl_queue **out)
{
    int rec = vl_queue_shards_recorded(dir);
    if ((flags & VL_QUEUE_CREATE) && rec == VL_E_NOTFOUND && nshards == 0)
        nshards = vl_config_shards_default();
    int rc = vl_queue_open(dir, nshards, flags, out);
    if (rc == VL_E_SHARDS)
        fprintf(stderr, "volley %s: %s was created with %d shards, not %u: drop --shards "
                "or use --shards %d\n", cmd, dir, rec, nshards, rec);
    else if (rc == VL_E_NOTFOUND)
        fprintf(stderr, "volley %s: no queue in %s (--data DIR; 'volley enqueue' creates "
                "one)\n", cmd, dir);
    else if (rc == VL_E_LOCKED)
        cli_queue_locked(cmd, dir, flags);
    else if (rc < 0)
        fprintf(stderr, "volley %s: cannot open the queue in %s: %s\n", cmd, dir,
                vl_strerror(rc));
    return rc < 0 ? rc : 0;
}

int cli_queue_open_exit(int rc)
{
    if (rc == 0)
        return VL_EXIT_OK;
    return rc == VL_E_SHARDS || rc == VL_E_NOTFOUND ? VL_EXIT_USAGE : VL_EXIT_FAIL;
}

/* JSON string body: escape quotes, backslashes and controls. */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void fmt_time(char *out, size_t cap, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03uZ", (unsigned)(ms % 1000));
}

struct qopts {
    const char *data;
    const char *domain;
    const char *by;                /* stats --by campaign */
    int json, all, quarantine;
    unsigned top, limit;
};

static const enum vl_rcpt_state STATES[] = { VL_RCPT_READY, VL_RCPT_DEFERRED, VL_RCPT_DELIVERED,
                                             VL_RCPT_BOUNCED, VL_RCPT_EXPIRED };

/* `queue stats --by campaign|tenant`: open recipients per X-Volley-Campaign
 * (X-Volley-Tenant) id. */
static int q_stats_campaign(struct vl_queue *q, const struct qopts *o)
{
    bool ten = !strcmp(o->by, "tenant");
    const char *what = ten ? "tenant" : "campaign", *hdr = ten ? "X-Volley-Tenant"
                                                               : "X-Volley-Campaign";
    unsigned max = o->top ? o->top : 1;
    struct vl_queue_campaign_count *c = calloc(max, sizeof *c);
    uint64_t none = 0, other = 0;
    int n = c ? vl_queue_header_ids(q, hdr, c, max, &none, &other) : -12;
    if (n < 0) {
        fprintf(stderr, "volley queue stats --by %s: %s\n", what, vl_strerror(n));
        free(c);
        return VL_EXIT_FAIL;
    }
    if (o->json) {
        printf("{\"%ss\":[", what);
        for (int i = 0; i < n; i++) {
            printf("%s{\"%s\":", i ? "," : "", what);
            json_str(stdout, c[i].campaign);
            printf(",\"rcpts\":%" PRIu64 ",\"messages\":%" PRIu64 "}", c[i].rcpts,
                   c[i].messages);
        }
        printf("],\"none\":%" PRIu64 ",\"other\":%" PRIu64 "}\n", none, other);
    } else {
        printf("open recipients by %s (%s), top %d:\n", what, hdr, n);
        printf("  %12s  %10s  %s\n", "RCPTS", "MESSAGES", ten ? "TENANT" : "CAMPAIGN");
        for (int i = 0; i < n; i++)
            printf("  %12" PRIu64 "  %10" PRIu64 "  %s\n", c[i].rcpts, c[i].messages,
                   c[i].campaign);
        printf("  %12" PRIu64 "  %10s  (other %ss)\n", other, "-", what);
        printf("  %12" PRIu64 "  %10s  (no %s)\n", none, "-", what);
    }
    free(c);
    return VL_EXIT_OK;
}

static int q_stats(struct vl_queue *q, const struct qopts *o)
{
    if (o->by)
        return q_stats_campaign(q, o);
    struct vl_queue_stats st;
    struct vl_queue_domain_count *top = calloc(o->top ? o->top : 1, sizeof *top);
    int rc = top ? vl_queue_stats(q, -1, &st) : -12;
    int nt = rc == 0 ? vl_queue_top_domains(q, top, o->top) : rc;
    if (rc < 0 || nt < 0) {
        fprintf(stderr, "volley queue stats: %s\n", vl_strerror(rc < 0 ? rc : nt));
        free(top);
        return VL_EXIT_FAIL;
    }
    if (o->json) {
        printf("{\"shards\":%u", vl_queue_nshards(q));
        for (size_t i = 0; i < sizeof STATES / sizeof STATES[0]; i++)
            printf(",\"%s\":%" PRIu64, vl_rcpt_state_name(STATES[i]), st.by_state[STATES[i]]);
        printf(",\"purged\":%" PRIu64 ",\"ambiguous\":%" PRIu64 ",\"quarantined\":%" PRIu64
               ",\"message_records\":%" PRIu64 ",\"body_bytes\":%" PRIu64 ",\"disk_bytes\":%"
               PRIu64 ",\"top_domains\":[", st.purged, st.ambiguous, st.quarantined,
               st.messages, st.body_bytes, st.disk_bytes);
        for (int i = 0; i < nt; i++) {
            printf("%s{\"domain\":", i ? "," : "");
            json_str(stdout, top[i].domain);
            printf(",\"rcpts\":%" PRIu64 "}", top[i].rcpts);
        }
        printf("]}\n");
    } else {
        printf("queue %s: %u shards, %" PRIu64 " message records (one per shard a message "
               "reaches), %.1f MiB of bodies, %.1f MiB on disk\n", o->data, vl_queue_nshards(q),
               st.messages,
               st.body_bytes / 1048576.0, st.disk_bytes / 1048576.0);
        printf("recipients by state:\n");
        for (size_t i = 0; i < sizeof STATES / sizeof STATES[0]; i++)
            printf("  %-10s %12" PRIu64 "%s\n", vl_rcpt_state_name(STATES[i]),
                   st.by_state[STATES[i]], i < 2 ? "" : "  (cumulative)");
        printf("  %-10s %12" PRIu64 "  (cumulative)\n", "purged", st.purged);
        printf("  %-10s %12" PRIu64 "  (cumulative: deferred after an unanswered final dot;"
               " a duplicate may result)\n", "ambiguous", st.ambiguous);
        printf("  %-11s %11" PRIu64 "  (now: unreadable, never leased; volley queue ls "
               "--quarantine)\n", "quarantined", st.quarantined);
        printf("top %d domains by queued recipients:\n", nt);
        for (int i = 0; i < nt; i++)
            printf("  %12" PRIu64 "  %s\n", top[i].rcpts, top[i].domain);
    }
    free(top);
    return VL_EXIT_OK;
}

/* `queue ls --quarantine`: what leases took out of the queue, and why. */
static int q_ls_quarantine(struct vl_queue *q, const struct qopts *o)
{
    struct vl_queue_quar_info *qi = calloc(o->limit ? o->limit : 1, sizeof *qi);
    int n = qi ? vl_queue_quarantine_list(q, qi, o->limit) : -12;
    if (n < 0) {
        fprintf(stderr, "volley queue ls --quarantine: %s\n", vl_strerror(n));
        free(qi);
        return VL_EXIT_FAIL;
    }
    if (!o->json)
        printf("%-5s  %-4s  %-16s  %-16s  %-16s  %-24s  %9s  %s\n", "SHARD", "KIND", "ID",
               "MESSAGE", "REASON", "QUARANTINED", "BYTES", "RCPT");
    else
        printf("[");
    for (int i = 0; i < n; i++) {
        char t[40];
        const struct vl_queue_quar_info *e = &qi[i];
        fmt_time(t, sizeof t, e->time_ms);
        uint64_t bytes = e->raw_bytes + e->body_bytes;
        if (o->json) {
            printf("%s{\"shard\":%u,\"kind\":\"%s\",\"id\":\"%016" PRIx64 "\",\"msg\":\"%016"
                   PRIx64 "\",\"reason\":\"%s\",\"time\":\"%s\",\"record_bytes\":%u,"
                   "\"body_bytes\":%" PRIu64 ",\"body_kept\":%s,\"rcpt\":", i ? "," : "",
                   e->shard, e->is_msg ? "msg" : "rcpt", e->id, e->is_msg ? e->id : e->msg_id,
                   e->reason, t, e->raw_bytes, e->body_bytes, e->body_kept ? "true" : "false");
            json_str(stdout, e->addr);
            printf("}");
        } else {
            printf("%-5u  %-4s  %016" PRIx64 "  %016" PRIx64 "  %-16s  %-24s  %9" PRIu64 "  %s\n",
                   e->shard, e->is_msg ? "msg" : "rcpt", e->id, e->is_msg ? e->id : e->msg_id,
                   e->reason, t, bytes, e->addr[0] ? e->addr : "-");
        }
    }
    if (o->json)
        printf("]\n");
    free(qi);
    return VL_EXIT_OK;
}

static int q_ls(struct vl_queue *q, const struct qopts *o)
{
    if (o->quarantine)
        return q_ls_quarantine(q, o);
    struct vl_queue_msg_info *mi = calloc(o->limit ? o->limit : 1, sizeof *mi);
    int n = mi ? vl_queue_list(q, 0, mi, o->limit) : -12;
    if (n < 0) {
        fprintf(stderr, "volley queue ls: %s\n", vl_strerror(n));
        free(mi);
        return VL_EXIT_FAIL;
    }
    if (!o->json)
        printf("%-16s  %-24s  %10s  %15s  %s\n", "ID", "CREATED", "SIZE", "OPEN/TOTAL", "FROM");
    else
        printf("[");
    for (int i = 0; i < n; i++) {
        char t[40];
        fmt_time(t, sizeof t, mi[i].created_ms);
        if (o->json) {
            printf("%s{\"id\":\"%016" PRIx64 "\",\"created\":\"%s\",\"size\":%" PRIu64
                   ",\"rcpts_open\":%u,\"rcpts_total\":%u,\"from\":", i ? "," : "", mi[i].id, t,
                   mi[i].size, mi[i].rcpts_open, mi[i].rcpts_total);
            json_str(stdout, mi[i].return_path);
            printf("}");
        } else {
            printf("%016" PRIx64 "  %-24s  %10" PRIu64 "  %7u/%-7u  <%s>\n", mi[i].id, t,
                   mi[i].size, mi[i].rcpts_open, mi[i].rcpts_total, mi[i].return_path);
        }
    }
    if (o->json)
        printf("]\n");
    free(mi);
    return VL_EXIT_OK;
}

static void q_show_rcpt(const struct vl_queue_rcpt_info *r, int json, int first)
{
    char t[40];
    fmt_time(t, sizeof t, r->next_ms);
    if (!json) {
        printf("  %-9s %-40s attempts=%u next=%s", vl_rcpt_state_name(r->state), r->addr,
               r->attempts, t);
        if (r->code)
            printf(" last=%u %s %s", r->code, r->status, r->text);
        printf("\n");
        return;
    }
    printf("%s{\"id\":\"%016" PRIx64 "\",\"rcpt\":", first ? "" : ",", r->id);
    json_str(stdout, r->addr);
    printf(",\"state\":\"%s\",\"attempts\":%u,\"next\":\"%s\",\"code\":%u,\"status\":",
           vl_rcpt_state_name(r->state), r->attempts, t, r->code);
    json_str(stdout, r->status);
    printf(",\"reply\":");
    json_str(stdout, r->text);
    printf("}");
}

static int q_show(struct vl_queue *q, uint64_t id, const struct qopts *o)
{
    struct vl_queue_msg_info mi;
    struct vl_queue_rcpt_info *ri = calloc(CLI_SHOW_RCPTS_MAX, sizeof *ri);
    size_t nr = 0;
    int rc = ri ? vl_queue_show(q, id, &mi, ri, CLI_SHOW_RCPTS_MAX, &nr) : -12;
    if (rc < 0) {
        fprintf(stderr, "volley queue show: %016" PRIx64 ": %s\n", id, vl_strerror(rc));
        free(ri);
        return rc == VL_E_NOTFOUND ? VL_EXIT_USAGE : VL_EXIT_FAIL;
    }
    char t[40];
    fmt_time(t, sizeof t, mi.created_ms);
    if (o->json) {
        printf("{\"id\":\"%016" PRIx64 "\",\"created\":\"%s\",\"size\":%" PRIu64
               ",\"8bit\":%s,\"rcpts_open\":%u,\"rcpts_total\":%u,\"from\":", id, t, mi.size,
               (mi.flags & VL_QUEUE_MSG_8BIT) ? "true" : "false", mi.rcpts_open, mi.rcpts_total);
        json_str(stdout, mi.return_path);
        printf(",\"rcpts\":[");
    } else {
        printf("message %016" PRIx64 "\n  from <%s>\n  created %s, %" PRIu64 " octets%s\n"
               "  recipients: %u open of %u\n", id, mi.return_path, t, mi.size,
               (mi.flags & VL_QUEUE_MSG_8BIT) ? ", 8-bit" : "", mi.rcpts_open, mi.rcpts_total);
    }
    for (size_t i = 0; i < nr; i++)
        q_show_rcpt(&ri[i], o->json, i == 0);
    if (o->json)
        printf("]}\n");
    else if (nr < mi.rcpts_open)
        printf("  ... and %zu more\n", (size_t)mi.rcpts_open - nr);
    free(ri);
    return VL_EXIT_OK;
}

static int q_parse_id(const char *s, uint64_t *id)
{
    char *end;
    if (!s || !*s || strlen(s) > 16) {
        fprintf(stderr, "volley queue: bad message id '%s' (want up to 16 hex digits)\n",
                s ? s : "");
        return -1;
    }
    *id = strtoull(s, &end, 16);
    if (*end || *id == 0) {
        fprintf(stderr, "volley queue: bad message id '%s' (want up to 16 hex digits)\n", s);
        return -1;
    }
    return 0;
}

static int q_retry_purge(struct vl_queue *q, const char *cmd, const char *arg,
                         const struct qopts *o)
{
    uint64_t id = 0;
    int is_retry = strcmp(cmd, "retry") == 0;
    if (is_retry ? (!arg == !o->domain || o->quarantine)
                 : (!!arg + !!o->all + !!o->quarantine != 1)) {
        fprintf(stderr, "volley queue %s: want %s\n", cmd,
                is_retry ? "a message ID or --domain D"
                         : "a message ID, --all or --quarantine");
        return VL_EXIT_USAGE;
    }
    if (o->quarantine) {
        int rc = vl_queue_quarantine_purge(q);
        if (rc < 0) {
            fprintf(stderr, "volley queue purge --quarantine: %s\n", vl_strerror(rc));
            return VL_EXIT_FAIL;
        }
        if (o->json)
            printf("{\"purged_quarantined\":%d}\n", rc);
        else
            printf("dropped the quarantine: %d recipient%s\n", rc, rc == 1 ? "" : "s");
        return VL_EXIT_OK;
    }
    if (arg && q_parse_id(arg, &id) < 0)
        return VL_EXIT_USAGE;
    if (is_retry && id) {                  /* an unknown id is a usage error, as for show */
        struct vl_queue_msg_info mi;
        size_t nr = 0;
        int src = vl_queue_show(q, id, &mi, NULL, 0, &nr);
        if (src < 0) {
            fprintf(stderr, "volley queue retry: %016" PRIx64 ": %s\n", id, vl_strerror(src));
            return src == VL_E_NOTFOUND ? VL_EXIT_USAGE : VL_EXIT_FAIL;
        }
    }
    int rc = is_retry ? vl_queue_retry(q, id, o->domain, vl_clock_wall_ms()) : vl_queue_purge(q, id);
    if (rc < 0) {
        fprintf(stderr, "volley queue %s: %s\n", cmd, vl_strerror(rc));
        return rc == VL_E_NOTFOUND ? VL_EXIT_USAGE : VL_EXIT_FAIL;
    }
    if (o->json)
        printf("{\"%s\":%d}\n", is_retry ? "retried" : "purged", rc);
    else
        printf("%s %d recipient%s\n", is_retry ? "made ready" : "purged", rc, rc == 1 ? "" : "s");
    return VL_EXIT_OK;
}

static int q_check(struct vl_queue *q, const struct qopts *o)
{
    struct vl_queue_check chk;
    int rc = vl_queue_check(q, &chk);
    if (rc < 0) {
        fprintf(stderr, "volley queue check: %s\n", vl_strerror(rc));
        return VL_EXIT_FAIL;
    }
    if (o->json) {
        printf("{\"rcpts\":%" PRIu64 ",\"messages\":%" PRIu64 ",\"problems\":%" PRIu64
               ",\"first\":", chk.rcpts, chk.messages, chk.problems);
        json_str(stdout, chk.first);
        printf("}\n");
    } else if (chk.problems == 0) {
        printf("ok: %" PRIu64 " open recipients, %" PRIu64 " message records\n", chk.rcpts,
               chk.messages);
    } else {
        printf("%" PRIu64 " problems; first: %s\n", chk.problems, chk.first);
    }
    return chk.problems ? VL_EXIT_FAIL : VL_EXIT_OK;
}

static void q_usage(FILE *f)
{
    fputs("usage: volley queue stats [--top N] [--by campaign|tenant] | ls [--limit N] [--quarantine] | show ID |\n"
          "                    retry (ID | --domain D) | bounce ID |\n"
          "                    purge (ID | --all | --quarantine) | check\n"
          "                    [--data DIR] [--json]\n"
          "'volley queue COMMAND --help' describes one command. Exit: 0 ok, 1 failure,\n"
          "2 usage error or unknown ID.\n", f);
}

static const struct { const char *cmd, *text; } Q_HELP[] = {
    { "stats", "usage: volley queue stats [--top N] [--by campaign|tenant] [--data DIR] [--json]\n"
               "Recipients by state (and in quarantine), message records, body and disk bytes,\n"
               "and the top N domains by queued recipients (default 10, max 1000).\n"
               "--by campaign (tenant): instead, the top N campaigns (X-Volley-Campaign;\n"
               "tenants: X-Volley-Tenant) by open\n"
               "recipients, with those of other campaigns and of none (reads every open\n"
               "message's header; runs beside an engine).\n" },
    { "ls",    "usage: volley queue ls [--limit N] [--quarantine] [--data DIR] [--json]\n"
               "The oldest N messages (default 100, max 10000): id, created, size, open/total\n"
               "recipients, sender. --quarantine: the first N quarantine entries instead:\n"
               "recipients (and messages: record and body as found) that could not be read\n"
               "(corrupt record, missing message or body, checksum mismatch), with the\n"
               "reason; they are never delivered. 'purge --quarantine' drops them.\n" },
    { "show",  "usage: volley queue show ID [--data DIR] [--json]\n"
               "One message and its open recipients with state, attempts, next try and last\n"
               "reply. Exit 2 for an unknown ID.\n" },
    { "retry", "usage: volley queue retry (ID | --domain D) [--data DIR] [--json]\n"
               "Make the open recipients of message ID, or of domain D, ready now. Exit 2\n"
               "for an unknown ID (a domain with nothing queued makes 0 ready).\n" },
    { "bounce", "usage: volley queue bounce ID [--data DIR] [--json]\n"
                "Bounce every open recipient of message ID (5.0.0) and queue one DSN to its\n"
                "sender (none for a null sender). Exit 2 for an unknown ID.\n" },
    { "purge", "usage: volley queue purge (ID | --all | --quarantine) [--data DIR] [--json]\n"
               "Delete message ID (or every message) with its recipients, without DSNs;\n"
               "--quarantine: drop every quarantine entry. Exit 2 for an unknown ID.\n" },
    { "check", "usage: volley queue check [--data DIR] [--json]\n"
               "Check the queue's records for consistency, and their content checksums\n"
               "(records and message bodies): reads the whole queue. Exit 1 if a problem is\n"
               "found; the first one is named (e.g. the message whose body changed).\n" },
};

/* @p cmd's help, or the general one. */
static void q_help(FILE *f, const char *cmd)
{
    for (size_t i = 0; cmd && i < sizeof Q_HELP / sizeof Q_HELP[0]; i++)
        if (!strcmp(cmd, Q_HELP[i].cmd)) {
            fputs(Q_HELP[i].text, f);
            return;
        }
    q_usage(f);
}

static int q_uint(const char *opt, const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || !*s || v > max) {
        fprintf(stderr, "volley queue: %s '%s': want 0..%u\n", opt, s, max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static bool q_known(const char *cmd)
{
    static const char *const cmds[] = { "stats", "ls", "show", "retry", "purge", "check",
                                        "bounce" };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i]))
            return true;
    return false;
}

int cli_queue_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "data", required_argument, NULL, 'd' }, { "json", no_argument, NULL, 'j' },
        { "top", required_argument, NULL, 't' }, { "limit", required_argument, NULL, 'l' },
        { "domain", required_argument, NULL, 'D' }, { "all", no_argument, NULL, 'a' },
        { "quarantine", no_argument, NULL, 'Q' }, { "by", required_argument, NULL, 'B' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    struct qopts o = { .data = CLI_DATA_DIR_DEFAULT, .top = CLI_TOP_DEFAULT,
                       .limit = CLI_LIMIT_DEFAULT };
    int c, help = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': o.data = optarg; break;
        case 'j': o.json = 1; break;
        case 'a': o.all = 1; break;
        case 'Q': o.quarantine = 1; break;
        case 'D': o.domain = optarg; break;
        case 'B':
            if (strcmp(optarg, "campaign") && strcmp(optarg, "tenant")) {
                fprintf(stderr, "volley queue stats: --by '%s': only 'campaign' or 'tenant'\n",
                        optarg);
                return VL_EXIT_USAGE;
            }
            o.by = optarg;
            break;
        case 't':
            if (q_uint("--top", optarg, CLI_TOP_MAX, &o.top) < 0)
                return VL_EXIT_USAGE;
            break;
        case 'l':
            if (q_uint("--limit", optarg, CLI_LIMIT_MAX, &o.limit) < 0)
                return VL_EXIT_USAGE;
            break;
        case 'h': help = 1; break;
        default: q_usage(stderr); return VL_EXIT_USAGE;
        }
    }
    const char *cmd = optind < argc ? argv[optind] : NULL;
    if (help) {
        q_help(stdout, cmd);
        return VL_EXIT_OK;
    }
    const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
    int nargs = argc - optind;
    int want = cmd && (!strcmp(cmd, "show") || !strcmp(cmd, "bounce")) ? 2 : (cmd && (!strcmp(cmd, "retry")
               || !strcmp(cmd, "purge")) ? (nargs > 1 ? 2 : 1) : 1);
    if (!cmd || !q_known(cmd)) {
        if (cmd)
            fprintf(stderr, "volley queue: unknown command '%s'\n", cmd);
        else
            fprintf(stderr, "volley queue: missing command\n");
        q_usage(stderr);
        return VL_EXIT_USAGE;
    }
    if (nargs != want) {
        if (nargs > want)
            fprintf(stderr, "volley queue %s: unexpected argument '%s'\n", cmd,
                    argv[optind + want]);
        else
            fprintf(stderr, "volley queue %s: missing message ID\n", cmd);
        q_help(stderr, cmd);
        return VL_EXIT_USAGE;
    }
    if (o.by && strcmp(cmd, "stats") != 0) {
        fprintf(stderr, "volley queue %s: --by is for stats\n", cmd);
        return VL_EXIT_USAGE;
    }
    if (o.quarantine && strcmp(cmd, "ls") != 0 && strcmp(cmd, "purge") != 0) {
        fprintf(stderr, "volley queue %s: --quarantine is for ls and purge\n", cmd);
        return VL_EXIT_USAGE;
    }
    uint64_t id = 0;
    if ((!strcmp(cmd, "show") || !strcmp(cmd, "bounce")) && q_parse_id(arg, &id) < 0)
        return VL_EXIT_USAGE;
    struct vl_queue *q;
    /* Changes take DATA/lock: never under a running engine's leases. */
    unsigned flags = !strcmp(cmd, "retry") || !strcmp(cmd, "purge") || !strcmp(cmd, "bounce")
                     ? VL_QUEUE_ADMIN : 0;
    char what[32];
    snprintf(what, sizeof what, "queue %s", cmd);
    int rc = cli_queue_open(what, o.data, 0, flags, &q);
    if (rc < 0)
        return cli_queue_open_exit(rc);
    if (!strcmp(cmd, "stats"))
        rc = q_stats(q, &o);
    else if (!strcmp(cmd, "ls"))
        rc = q_ls(q, &o);
    else if (!strcmp(cmd, "show"))
        rc = q_show(q, id, &o);
    else if (!strcmp(cmd, "check"))
        rc = q_check(q, &o);
    else if (!strcmp(cmd, "bounce"))
        rc = cli_queue_bounce(q, id, o.json);
    else
        rc = q_retry_purge(q, cmd, arg, &o);
    vl_queue_close(q);
    return rc;
}
