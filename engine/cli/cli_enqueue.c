/*
 * cli_enqueue.c - `volley enqueue`: validate a message and its recipients,
 * then queue it durably (exit 0 only after the commit).
 *
 *   volley enqueue [--data DIR] [--shards N] [--skip-invalid] [--fold-local-case]
 *                  [--long-lines encode|refuse] [--dkim DOMAIN:SELECTOR:KEYFILE ...]
 *                  --from ADDR (--to ADDR ... | --rcpts FILE) MESSAGE.eml
 *
 * Any bad input rejects the whole enqueue: each problem is printed as
 * "file:line: reason" (the first 20, then "... and N more"), exit 2, nothing
 * queued. --skip-invalid queues the valid recipients and reports the others
 * (message problems are never skipped).
 *
 * A recipient given twice is queued once (domain compared ignoring case, the
 * local part as written, or ignoring case with --fold-local-case); the count
 * dropped is reported on stderr. A body line over 998 octets is re-encoded as
 * quoted-printable (--long-lines encode, the default) or refused (refuse).
 *
 * --dkim: the normalised message is DKIM-signed once, here, by the keys of its
 * From: domain (engine/dkim), and the signatures are stored with the body. A
 * key that does not load stops the enqueue (exit 2, nothing queued).
 */
#include "cli.h"
#include "cli_dkim.h"
#include "cli_queue.h"
#include "dkim.h"
#include "msg.h"
#include "addr_dedupe.h"

#include "volley/addr.h"
#include "volley/error.h"
#include "volley/limits.h"
#include "volley/queue.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <unistd.h>

#define ENQ_PROBLEMS_SHOWN 20u
#define ENQ_RCPT_LINE_BYTES_MAX 4096u

struct enq_rcpts {
    char **v;
    size_t n, cap;
    unsigned problems;           /* invalid recipients seen */
    size_t utf8;                 /* recipients with a UTF-8 address (need SMTPUTF8) */
};

static unsigned enq_problems_total;

/* Print the first ENQ_PROBLEMS_SHOWN problems; count the rest. */
static void enq_problem(const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void enq_problem(const char *file, unsigned line, const char *fmt, ...)
{
    if (enq_problems_total++ >= ENQ_PROBLEMS_SHOWN)
        return;
    va_list ap;
    if (line)
        fprintf(stderr, "%s:%u: ", file, line);
    else
        fprintf(stderr, "%s: ", file);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int enq_rcpt_add(struct enq_rcpts *r, const char *s, size_t len, const char *file,
                        unsigned line)
{
    struct vl_addr a;
    const char *why = "invalid";
    if (vl_addr_parse(s, len, &a, &why) < 0) {
        enq_problem(file, line, "invalid recipient '%.*s': %s", (int)(len > 300 ? 300 : len),
                    s, why);
        r->problems++;
        return 0;
    }
    if (r->n == VL_RCPTS_PER_MSG_MAX) {
        enq_problem(file, line, "more than %u recipients", VL_RCPTS_PER_MSG_MAX);
        return -1;
    }
    r->utf8 += a.utf8;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        char **v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return -1;
        r->v = v;
        r->cap = cap;
    }
    if (!(r->v[r->n] = strndup(s, len)))
        return -1;
    r->n++;
    return 0;
}

/* One address per line; blank lines and '#' comments ignored. */
static int enq_rcpts_file(struct enq_rcpts *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        enq_problem(path, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *s = line;
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '
                         || s[n - 1] == '\t'))
            n--;
        while (n > 0 && (*s == ' ' || *s == '\t'))
            s++, n--;
        if (n == 0 || *s == '#')
            continue;
        if ((size_t)n > ENQ_RCPT_LINE_BYTES_MAX || memchr(s, 0, (size_t)n)) {
            enq_problem(path, lineno, "invalid recipient line (too long or NUL)");
            r->problems++;
            continue;
        }
        rc = enq_rcpt_add(r, s, (size_t)n, path, lineno);
    }
    free(line);
    if (ferror(f)) {
        enq_problem(path, 0, "read error: %s", strerror(errno));
        rc = -1;
    }
    fclose(f);
    return rc;
}

/* Read a whole file (at most VL_MSG_BYTES_MAX + 1 bytes). */
static int enq_read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        enq_problem(path, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0 || n > VL_MSG_BYTES_MAX)
            break;
        if (n == cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        enq_problem(path, 0, "cannot read: %s", buf ? strerror(errno) : "out of memory");
        free(buf);
        return -1;
    }
    if (n > VL_MSG_BYTES_MAX) {
        enq_problem(path, 0, "message larger than %u octets", VL_MSG_BYTES_MAX);
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

struct enq_opts {
    const char *data;
    const char *from;
    const char *rcpts_file;
    const char *msg_file;
    const char *cmd;             /* "enqueue", or "send" when send hands over */
    FILE *human;                 /* where the "queued ..." line goes */
    unsigned shards;
    int skip_invalid, fold_local, long_lines_refuse;
    struct vl_dkim_opts dkim;    /* --dkim* (config.h) */
};

static void enq_usage(FILE *f)
{
    fputs("usage: volley enqueue [--data DIR] [--shards N] [--skip-invalid] [--fold-local-case]\n"
          "                      [--long-lines encode|refuse] --from ADDR\n"
          "                      (--to ADDR ... | --rcpts FILE) MESSAGE.eml\n"
          "  --from ADDR            envelope sender; '<>' is the null reverse-path\n"
          "  --to ADDR, --rcpts FILE  recipients (FILE: one per line, '#' comments)\n"
          "  --skip-invalid         queue the valid recipients, report the others\n"
          "  --fold-local-case      duplicates: also ignore the case of local parts\n"
          "                         (domains always; a recipient given twice is queued once)\n"
          "  --long-lines MODE      a body line over 998 octets: 'encode' (default) re-encodes\n"
          "                         its MIME part as quoted-printable; 'refuse' rejects\n"
          "  --data DIR             queue directory (default " CLI_DATA_DIR_DEFAULT ")\n"
          "  --shards N             shard count when the queue is created\n", f);
    fputs(vl_dkim_usage, f);
}

/* Parse argv; --to addresses go straight into @p r. @return -1 on usage error. */
static int enq_args(int argc, char **argv, struct enq_opts *o, struct enq_rcpts *r)
{
    static const struct option longopts[] = {
        { "data", required_argument, NULL, 'd' }, { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' }, { "rcpts", required_argument, NULL, 'r' },
        { "shards", required_argument, NULL, 's' }, { "skip-invalid", no_argument, NULL, 'k' },
        { "fold-local-case", no_argument, NULL, 'F' },
        { "long-lines", required_argument, NULL, 'L' },
        { "dkim", required_argument, NULL, 'K' }, { "dkim-canon", required_argument, NULL, 'C' },
        { "dkim-expire", required_argument, NULL, 'X' },
        { "dkim-headers", required_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    int c, ntos = 0;
    char *end;
    optind = 0;
    opterr = 0;                  /* name the command (send or enqueue) ourselves */
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'F': o->fold_local = 1; break;
        case 'K': case 'C': case 'H': {
            const char *name = c == 'K' ? "--dkim" : c == 'C' ? "--dkim-canon" : "--dkim-headers";
            if (vl_dkim_opt_parse(&o->dkim, o->cmd, name, optarg, stderr) < 0)
                return -1;
            break;
        }
        case 'X':
            if (vl_parse_duration_ms(optarg, &o->dkim.expire_ms) != 0) {
                fprintf(stderr, "volley %s: --dkim-expire '%s': expected a DURATION (e.g. 7d)\n",
                        o->cmd, optarg);
                return -1;
            }
            break;
        case 'L':
            if (strcmp(optarg, "encode") && strcmp(optarg, "refuse")) {
                fprintf(stderr, "volley %s: --long-lines '%s': want encode or refuse\n",
                        o->cmd, optarg);
                return -1;
            }
            o->long_lines_refuse = !strcmp(optarg, "refuse");
            break;
        case 'd': o->data = optarg; break;
        case 'f': o->from = optarg; break;
        case 'r': o->rcpts_file = optarg; break;
        case 'k': o->skip_invalid = 1; break;
        case 't':
            ntos++;
            if (enq_rcpt_add(r, optarg, strlen(optarg), "--to", (unsigned)ntos) < 0)
                return -1;
            break;
        case 's': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v == 0 || v > VL_SHARDS_MAX) {
                fprintf(stderr, "volley enqueue: --shards '%s': want 1..%u\n", optarg,
                        VL_SHARDS_MAX);
                return -1;
            }
            o->shards = (unsigned)v;
            break;
        }
        case 'h': enq_usage(stdout); exit(VL_EXIT_OK);
        default:
            fprintf(stderr, "volley %s: %s '%s' (see volley %s --help)\n", o->cmd,
                    c == ':' ? "missing value for" : "unknown option", argv[optind - 1],
                    o->cmd);
            return -1;
        }
    }
    if (optind != argc - 1 || !o->from || (ntos == 0) == (o->rcpts_file == NULL)) {
        fprintf(stderr, "volley %s: %s (see volley %s --help)\n", o->cmd,
                optind != argc - 1 ? "want exactly one MESSAGE file"
                : !o->from ? "--from is required"
                : "want --to ADDR ... or --rcpts FILE (not both)", o->cmd);
        if (!strcmp(o->cmd, "enqueue"))
            enq_usage(stderr);
        return -1;
    }
    o->msg_file = argv[optind];
    return 0;
}

/* The envelope sender: "<>" is null (an empty --from is refused: a typo or
 * an unset shell variable must not become the null path); <a@b> loses its
 * brackets. @p out
 * is a string on every return: the sender, or "" (the null path) when it is
 * invalid, so the message checks that still run see a defined sender. */
static int enq_from(const char *from, char *out, size_t cap)
{
    vl_assert(cap > 0);
    out[0] = '\0';
    size_t n = strlen(from);
    if (n == 0) {
        enq_problem("--from", 0, "empty sender: give --from '<>' for the null reverse-path");
        return -1;
    }
    if (n >= 2 && from[0] == '<' && from[n - 1] == '>')
        from++, n -= 2;
    struct vl_addr a;
    const char *why = "invalid";
    if (n && vl_addr_parse(from, n, &a, &why) < 0) {
        enq_problem("--from", 0, "invalid sender '%.300s': %s", from, why);
        return -1;
    }
    if (n >= cap) {
        enq_problem("--from", 0, "sender longer than %zu octets", cap - 1);
        return -1;
    }
    memcpy(out, from, n);
    out[n] = 0;
    return 0;
}

static int enq_message(const struct enq_opts *o, const char *from, struct msg_result *m)
{
    char *raw, host[256] = "localhost";
    size_t len;
    struct msg_problem probs[ENQ_PROBLEMS_SHOWN];
    uint64_t unique = 0;
    if (enq_read_file(o->msg_file, &raw, &len) < 0)
        return -1;
    gethostname(host, sizeof host - 1);
    if (getrandom(&unique, sizeof unique, 0) != (ssize_t)sizeof unique)
        unique = (uint64_t)getpid() << 32 ^ vl_clock_wall_ms();
    struct msg_opts mo = { vl_clock_wall_ms(), host, unique, from, !o->long_lines_refuse };
    int rc = msg_normalise(raw, len, &mo, m, probs, ENQ_PROBLEMS_SHOWN);
    free(raw);
    if (rc == VL_E_INVALID) {
        for (unsigned i = 0; i < m->problems && i < ENQ_PROBLEMS_SHOWN; i++)
            enq_problem(o->msg_file, probs[i].line, "%s", probs[i].why);
        enq_problems_total += m->problems > ENQ_PROBLEMS_SHOWN
                              ? m->problems - ENQ_PROBLEMS_SHOWN : 0;
        return -1;
    }
    if (rc < 0) {
        enq_problem(o->msg_file, 0, "%s", vl_strerror(rc));
        return -1;
    }
    if (m->encoded_parts)
        fprintf(stderr, "volley %s: %s: %u MIME part%s with lines over 998 octets re-encoded "
                "as quoted-printable (--long-lines refuse to reject)\n", o->cmd, o->msg_file,
                m->encoded_parts, m->encoded_parts == 1 ? "" : "s");
    return 0;
}

static int enq_queue(const struct enq_opts *o, const char *from, const struct enq_rcpts *r,
                     const struct msg_result *m)
{
    struct vl_queue *q;
    int rc = cli_queue_open("enqueue", o->data, o->shards, VL_QUEUE_CREATE, &q);
    if (rc < 0)
        return cli_queue_open_exit(rc);
    struct vl_queue_new_msg nm = { from, strlen(from), m->data, m->len,
        m->is_8bit ? VL_QUEUE_MSG_8BIT : 0, (const char *const *)r->v, NULL, r->n };
    uint64_t id;
    rc = vl_queue_enqueue(q, &nm, vl_clock_wall_ms(), &id);
    unsigned shards = vl_queue_nshards(q);
    vl_queue_close(q);
    if (rc < 0) {
        fprintf(stderr, "volley %s: %s: %s\n", o->cmd, o->data, vl_strerror(rc));
        return VL_EXIT_FAIL;
    }
    fprintf(o->human, "queued %016" PRIx64 " for %zu recipient%s (%zu octets, %u shards)\n", id,
            r->n, r->n == 1 ? "" : "s", m->len, shards);
    return VL_EXIT_OK;
}

/* Drop repeated recipients (kept in order; the repeats are freed). */
static int enq_dedupe(const struct enq_opts *o, struct enq_rcpts *r)
{
    long kept = vl_addr_dedupe(r->v, r->n, o->fold_local);
    if (kept < 0) {
        fprintf(stderr, "volley %s: %s\n", o->cmd, vl_strerror((int)kept));
        return -1;
    }
    size_t dropped = r->n - (size_t)kept;
    for (size_t i = (size_t)kept; i < r->n; i++)
        free(r->v[i]);
    r->n = (size_t)kept;
    if (dropped)
        fprintf(stderr, "volley %s: dropped %zu duplicate recipient%s%s\n", o->cmd, dropped,
                dropped == 1 ? "" : "s", o->fold_local ? " (local parts compared ignoring case)"
                : "");
    return 0;
}

/* DKIM-sign the normalised message once (its signatures are stored with it). */
static int enq_sign(const struct enq_opts *o, const struct dkim_signer *s, struct msg_result *m)
{
    if (!s)
        return 0;
    int n = dkim_sign_msg(s, m, vl_clock_wall_ms() / 1000);
    if (n < 0)
        fprintf(stderr, "volley %s: %s: cannot DKIM-sign: %s\n", o->cmd, o->msg_file,
                vl_strerror(n));
    else if (n == 0)
        fprintf(stderr, "volley %s: warning: %s: no --dkim key for its From: domain (or a "
                "parent): queued unsigned\n", o->cmd, o->msg_file);
    return n < 0 ? -1 : 0;
}

int cli_enqueue_main(int argc, char **argv)
{
    return cli_enqueue_run(argc, argv, "enqueue", stdout);
}

/* UTF-8 addresses are queued (RFC 6531), but only a receiver offering SMTPUTF8
 * takes them; elsewhere volley bounces them itself (553 5.6.7, logged as a
 * local decision). Say so now rather than at the bounce. */
static void enq_utf8_warn(const char *cmd, const char *from, const struct enq_rcpts *r)
{
    struct vl_addr a;
    bool from_utf8 = from[0] && vl_addr_parse(from, strlen(from), &a, NULL) == 0 && a.utf8;
    if (from_utf8)
        fprintf(stderr, "volley %s: warning: the sender is a UTF-8 address: receivers "
                "without SMTPUTF8 cannot take this message (it bounces 5.6.7)\n", cmd);
    else if (r->utf8)
        fprintf(stderr, "volley %s: warning: %zu recipient%s UTF-8 address%s: a receiver "
                "without SMTPUTF8 cannot take %s (bounce 5.6.7)\n", cmd, r->utf8,
                r->utf8 == 1 ? " has a" : "s have", r->utf8 == 1 ? "" : "es",
                r->utf8 == 1 ? "it" : "them");
}

int cli_enqueue_run(int argc, char **argv, const char *cmd, FILE *human)
{
    struct enq_opts o = { .data = CLI_DATA_DIR_DEFAULT, .cmd = cmd, .human = human };
    struct enq_rcpts r = { 0 };
    struct msg_result m = { 0 };
    char from[VL_SMTP_PATH_BYTES_MAX + 1];
    int rc = VL_EXIT_USAGE;
    struct dkim_signer *signer = NULL;
    enq_problems_total = 0;
    if (enq_args(argc, argv, &o, &r) < 0 || cli_dkim_load(cmd, &o.dkim, &signer) < 0)
        goto done;
    int bad = enq_from(o.from, from, sizeof from) < 0;
    if (o.rcpts_file && enq_rcpts_file(&r, o.rcpts_file) < 0)
        bad = 1;
    if (enq_message(&o, from, &m) < 0)
        bad = 1;
    if (!bad && r.n == 0 && r.problems == 0)
        enq_problem(o.rcpts_file ? o.rcpts_file : "--to", 0, "no recipients");
    if (bad || (r.problems && !o.skip_invalid) || r.n == 0) {
        if (enq_problems_total > ENQ_PROBLEMS_SHOWN)
            fprintf(stderr, "... and %u more\n", enq_problems_total - ENQ_PROBLEMS_SHOWN);
        fprintf(stderr, "volley %s: nothing queued (%u problem%s)\n", cmd, enq_problems_total,
                enq_problems_total == 1 ? "" : "s");
        goto done;
    }
    if (r.problems) {
        if (enq_problems_total > ENQ_PROBLEMS_SHOWN)
            fprintf(stderr, "... and %u more\n", enq_problems_total - ENQ_PROBLEMS_SHOWN);
        fprintf(stderr, "volley %s: skipped %u invalid recipient%s\n", cmd, r.problems,
                r.problems == 1 ? "" : "s");
    }
    enq_utf8_warn(cmd, from, &r);
    if (enq_sign(&o, signer, &m) < 0) {
        rc = VL_EXIT_FAIL;
        goto done;
    }
    rc = enq_dedupe(&o, &r) < 0 ? VL_EXIT_FAIL : enq_queue(&o, from, &r, &m);
done:
    cli_dkim_unload(signer);
    for (size_t i = 0; i < r.n; i++)
        free(r.v[i]);
    free(r.v);
    msg_result_fini(&m);
    return rc;
}
