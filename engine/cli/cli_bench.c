/*
 * cli_bench.c - `volley bench`: the end-to-end loopback benchmark.
 *
 * Phase 1 queues N messages of SIZE octets, R recipients each, over D
 * domains, durably (fsync'd transactions of up to 1000 messages per shard).
 * Phase 2 delivers them with the engine exactly as `volley run --until-empty`
 * would, to the destinations given by --route/--dns (a `volley sink`, say).
 * It prints each phase's rate, the engine's CPU seconds per 10,000 messages
 * (getrusage over the delivery phase: every thread of this process), and one
 * JSON line for scripts (scripts/bench.sh deliver).
 * A queue the bench created is removed at the end, delivered or not (mail
 * deferred by a failed run would otherwise stay on disk), unless --keep-data;
 * a queue that was there before is left in place.
 */
#include "cli.h"

#include "adm.h"
#include "cli_dkim.h"
#include "cli_progress.h"
#include "cli_queue.h"
#include "cli_usage.h"
#include "dkim.h"
#include "volley/config.h"
#include "volley/engine.h"
#include "log.h"
#include "volley/error.h"
#include "volley/queue.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#define BENCH_BATCH_MSGS 1000u

struct bench_opts {
    unsigned long messages, size, domains, rcpts;
    int keep_data;
};

static double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double bench_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
           + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A message of exactly @p size octets (CRLF lines of printable text). */
static char *bench_body(unsigned long size, size_t *len)
{
    char *b = malloc(size + 200);
    if (!b)
        return NULL;
    int n = snprintf(b, 200, "From: bench@sender.example\r\nTo: list@bench.example\r\n"
                             "Subject: volley bench\r\nMessage-ID: <bench@sender.example>\r\n"
                             "Date: Sun, 22 Nov 2026 00:00:00 +0000\r\n\r\n");
    size_t off = (size_t)n;
    static const char line[] = "The quick brown fox jumps over the lazy dog; volley bench "
                               "payload line...";
    while (off + 2 < size) {
        size_t k = sizeof line - 1;
        if (k > size - off - 2)
            k = size - off - 2;
        memcpy(b + off, line, k);
        off += k;
        b[off++] = '\r';
        b[off++] = '\n';
    }
    *len = off;
    return b;
}

static int bench_parse(int argc, char **argv, struct bench_opts *o, struct vl_config *cfg)
{
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int rest_n = 0;
    if (!rest || vl_config_parse(cfg, "bench", argc, argv, rest, &rest_n) != 0) {
        free(rest);
        return -1;
    }
    static const struct { const char *name; unsigned long lo, hi; size_t off; } num[] = {
        { "--messages", 1, 10000000, offsetof(struct bench_opts, messages) },
        { "--size", 200, 64u << 20, offsetof(struct bench_opts, size) },
        { "--domains", 1, 100000, offsetof(struct bench_opts, domains) },
        { "--rcpts-per-msg", 1, 100, offsetof(struct bench_opts, rcpts) },
    };
    int rc = 0;
    for (int i = 0; i < rest_n && rc == 0; i++) {
        if (!strcmp(rest[i], "--keep-data")) {
            o->keep_data = 1;
            continue;
        }
        size_t k = 0;
        while (k < sizeof num / sizeof num[0] && strcmp(rest[i], num[k].name) != 0)
            k++;
        if (k == sizeof num / sizeof num[0] || i + 1 >= rest_n) {
            fprintf(stderr, "volley bench: %s '%s'\n", k == sizeof num / sizeof num[0]
                    ? "unknown argument" : "missing value for", rest[i]);
            rc = -1;
            break;
        }
        char *end;
        unsigned long v = strtoul(rest[++i], &end, 10);
        if (*end || v < num[k].lo || v > num[k].hi) {
            fprintf(stderr, "volley bench: %s '%s': want %lu..%lu\n", num[k].name, rest[i],
                    num[k].lo, num[k].hi);
            rc = -1;
        }
        *(unsigned long *)((char *)o + num[k].off) = v;
    }
    free(rest);
    return rc;
}

struct bench_batch {
    struct vl_queue_new_msg m[BENCH_BATCH_MSGS];
    const char *rcpt_ptr[BENCH_BATCH_MSGS * 100u];
    char rcpt_buf[BENCH_BATCH_MSGS * 100u][80];
    uint8_t *signed_msg[BENCH_BATCH_MSGS];   /* --dkim: each message signed, owned here */
    size_t count, rcpts;
};

static int bench_flush(struct vl_queue *q, unsigned k, struct bench_batch *b)
{
    if (!b->count)
        return 0;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint64_t now = (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
    int rc = vl_queue_complete(vl_queue_shard(q, k), NULL, 0, b->m, b->count, now);
    for (size_t i = 0; i < b->count; i++) {
        free(b->signed_msg[i]);
        b->signed_msg[i] = NULL;
    }
    b->count = b->rcpts = 0;
    return rc < 0 ? rc : 0;
}

/* --dkim: the message signed once, as `volley enqueue` does (signatures on top). */
static int bench_sign(const struct dkim_signer *s, const char *body, size_t body_len,
                      uint8_t **out, size_t *out_len)
{
    char *sigs;
    size_t sl;
    int n = dkim_signer_sign(s, (const uint8_t *)body, body_len, vl_clock_wall_ms() / 1000,
                             &sigs, &sl);
    if (n <= 0)
        return n < 0 ? n : VL_E_INVALID;      /* no key for the bench's From: domain */
    *out = malloc(sl + body_len);
    if (*out) {
        memcpy(*out, sigs, sl);
        memcpy(*out + sl, body, body_len);
    }
    free(sigs);
    *out_len = sl + body_len;
    return *out ? 0 : -ENOMEM;
}

/* Phase 1: queue the messages durably, batched per shard (--dkim: each one signed). */
static int bench_enqueue(struct vl_queue *q, const struct bench_opts *o, const char *body,
                         size_t body_len, const struct dkim_signer *signer)
{
    unsigned n = vl_queue_nshards(q);
    struct bench_batch *b = calloc(n, sizeof *b);
    if (!b)
        return -ENOMEM;
    int rc = 0;
    for (unsigned long i = 0; i < o->messages && rc == 0; i++) {
        char dom[32];
        int dl = snprintf(dom, sizeof dom, "bench%lu.example", i % o->domains);
        unsigned k = vl_queue_shard_of(q, dom, (size_t)dl);
        struct bench_batch *bb = &b[k];
        const char **rp = &bb->rcpt_ptr[bb->rcpts];
        for (unsigned long r = 0; r < o->rcpts; r++) {
            char *s = bb->rcpt_buf[bb->rcpts];
            snprintf(s, sizeof bb->rcpt_buf[0], "u%lu-%lu@%s", i, r, dom);
            bb->rcpt_ptr[bb->rcpts++] = s;
        }
        const void *mb = body;
        size_t ml = body_len;
        if (signer) {
            rc = bench_sign(signer, body, body_len, &bb->signed_msg[bb->count], &ml);
            if (rc < 0)
                break;
            mb = bb->signed_msg[bb->count];
        }
        bb->m[bb->count++] = (struct vl_queue_new_msg){
            .return_path = "bench@sender.example", .return_path_len = 20, .body = mb,
            .body_len = ml, .rcpts = rp, .rcpt_count = o->rcpts };
        if (bb->count == BENCH_BATCH_MSGS)
            rc = bench_flush(q, k, bb);
    }
    for (unsigned k = 0; k < n && rc == 0; k++)
        rc = bench_flush(q, k, &b[k]);
    for (unsigned k = 0; k < n; k++)                /* after a failure: not flushed */
        for (size_t i = 0; i < b[k].count; i++)
            free(b[k].signed_msg[i]);
    free(b);
    return rc;
}

/* Remove the queue the bench created in @p dir, and @p dir itself if the
 * bench made it. */
static void bench_remove_queue(const char *dir, bool dir_made)
{
    int rc = vl_queue_remove(dir);
    if (rc == 0 && dir_made && rmdir(dir) != 0)
        rc = -errno;
    if (rc < 0)
        fprintf(stderr, "volley bench: could not remove all of the queue in %s: %s\n", dir,
                vl_strerror(rc));
    else
        fprintf(stderr, "volley bench: removed the bench queue in %s (--keep-data keeps it)\n",
                dir);
}

int cli_bench_main(int argc, char **argv)
{
    static struct vl_config cfg;
    vl_config_defaults(&cfg);
    vl_log_init_from_env();
    cfg.data_dir = "./volley-bench-data";
    cfg.until_empty = true;
    cfg.quiet = true;
    struct bench_opts o = { .messages = 100000, .size = 10240, .domains = 100, .rcpts = 1 };
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: volley bench [--messages N] [--size BYTES] [--domains D]\n"
                   "                    [--rcpts-per-msg R] [--keep-data] [run options]\n"
                   "                    (--route|--dns ...)\n"
                   "Queue N messages durably (default 100000 x 10240 octets, 100 domains,\n"
                   "1 recipient each), then deliver them like `volley run --until-empty`;\n"
                   "print rates and CPU per 10k. A queue the bench creates is removed at the\n"
                   "end, delivered or not, unless --keep-data; an existing one is kept.\n"
                   "options:\n");
            cli_usage_run_options(stdout, "./volley-bench-data", false);
            return VL_EXIT_OK;
        }
    struct dkim_signer *signer = NULL;       /* --dkim sender.example:SEL:KEY */
    if (bench_parse(argc, argv, &o, &cfg) != 0 || cli_dkim_load("bench", &cfg.dkim, &signer) < 0)
        return VL_EXIT_USAGE;
    if (cfg.route_count == 0 && !cfg.dns) {
        fprintf(stderr, "volley bench: give --route '*=HOST:PORT' or --dns (where is the sink?)"
                "; with --dns to a sink on loopback, add --allow-dest loopback\n");
        return VL_EXIT_USAGE;
    }
    size_t body_len;
    char *body = bench_body(o.size, &body_len);
    struct vl_queue *q = NULL;
    struct stat sb;
    bool dir_made = stat(cfg.data_dir, &sb) != 0;
    bool created = vl_queue_shards_recorded(cfg.data_dir) == VL_E_NOTFOUND;
    if (!body || cli_queue_open("bench", cfg.data_dir, cfg.shards,
                                VL_QUEUE_CREATE | VL_QUEUE_ENGINE, &q) < 0) {
        free(body);
        return VL_EXIT_FAIL;
    }
    bool remove = created && !o.keep_data;
    int arc = adm_open(cfg.data_dir, false);  /* an existing queue's operator holds, as `run` */
    if (arc < 0) {
        fprintf(stderr, "volley bench: %s/admin: %s\n", cfg.data_dir, vl_strerror(arc));
        free(body);
        vl_queue_close(q);
        return VL_EXIT_FAIL;
    }
    if (!created)
        fprintf(stderr, "volley bench: %s already holds a queue: its mail is delivered too, "
                "and it is left in place\n", cfg.data_dir);
    double t0 = bench_now();
    int rc = bench_enqueue(q, &o, body, body_len, signer);
    cli_dkim_unload(signer);
    double t1 = bench_now();
    free(body);
    if (rc < 0) {
        fprintf(stderr, "volley bench: enqueue: %s\n", vl_strerror(rc));
        vl_queue_close(q);
        adm_close();
        if (remove)
            bench_remove_queue(cfg.data_dir, dir_made);
        return VL_EXIT_FAIL;
    }
    unsigned long total = o.messages * o.rcpts;
    /* With --log -, stdout holds the JSON lines only (the log's and the bench's). */
    FILE *human = cfg.log_path && !strcmp(cfg.log_path, "-") ? stderr : stdout;
    fprintf(human, "bench: queued %lu messages (%lu recipients) of %zu octets in %.2fs: "
            "%.0f rcpts/s\n", o.messages, total, body_len, t1 - t0, (double)total / (t1 - t0));
    static atomic_bool stop;
    cli_install_stop_signals(&stop);
    double c0 = bench_cpu(), t2 = bench_now();
    struct vl_engine_totals tot;
    struct cli_progress p;            /* no progress line: a stop signal explained, and a
                                         second one exits 130 with the summary */
    cli_progress_init(&p, "bench", stderr, true, 0);
    p.summary = human;
    rc = vl_engine_run(&cfg, q, &stop, cli_progress_cb, &p, 500, &tot);
    double t3 = bench_now(), c1 = bench_cpu();
    vl_queue_close(q);
    adm_close();
    if (remove)
        bench_remove_queue(cfg.data_dir, dir_made);
    double el = t3 - t2, cpu = c1 - c0;
    /* Rates count what was delivered: recipients, and messages (a bench
     * message has o.rcpts recipients), never attempts. */
    double rcpt_rate = (double)tot.delivered / el;
    double msgs_done = (double)tot.delivered / (double)(o.rcpts ? o.rcpts : 1);
    double rate = msgs_done / el;
    fprintf(human, "bench: delivered %" PRIu64 " recipients in %" PRIu64 " transactions over "
            "%" PRIu64 " connections in %.2fs: %.0f delivered msg/s, %.0f delivered rcpt/s, "
            "%.2f CPU s per 10k delivered messages (deferred %" PRIu64 ", bounced %" PRIu64
            ")\n", tot.delivered, tot.txns, tot.conns, el, rate, rcpt_rate,
            msgs_done > 0 ? cpu * 10000.0 / msgs_done : 0.0, tot.deferred, tot.bounced);
    printf("{\"bench\":\"deliver\",\"messages\":%lu,\"size\":%zu,\"rcpts\":%lu,"
           "\"enqueue_s\":%.3f,\"deliver_s\":%.3f,\"msg_per_s\":%.1f,\"rcpt_per_s\":%.1f,"
           "\"cpu_s\":%.3f,\"cpu_s_per_10k\":%.3f,\"delivered\":%" PRIu64
           ",\"deferred\":%" PRIu64 ",\"bounced\":%" PRIu64 ",\"conns\":%" PRIu64 "}\n",
           o.messages, body_len, total, t1 - t0, el, rate, rcpt_rate, cpu,
           msgs_done > 0 ? cpu * 10000.0 / msgs_done : 0.0, tot.delivered, tot.deferred,
           tot.bounced, tot.conns);
    if (rc < 0) {
        fprintf(stderr, "volley bench: %s\n", vl_strerror(rc));
        return VL_EXIT_FAIL;
    }
    return tot.delivered == total ? VL_EXIT_OK : VL_EXIT_FAIL;
}
