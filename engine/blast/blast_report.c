/*
 * blast_report.c - what a blast run measured: the summary table (text), the
 * JSON document (jansson) and the self-contained HTML page (blast_html.c).
 */
#include "blast.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const double report_q[] = { 0.5, 0.9, 0.99, 0.999 };

static double ns_to_ms(uint64_t ns) { return (double)ns / 1e6; }

static double rate_first_last(const struct blast_result *r)
{
    if (r->started < 2 || r->last_start_ns <= r->first_start_ns)
        return 0;
    return (double)(r->started - 1) * 1e9 / (double)(r->last_start_ns - r->first_start_ns);
}

static double rate_scheduled(const struct blast_result *r)
{
    if (r->started < 2 || r->last_intended_ns <= r->first_intended_ns ||
        r->first_intended_ns == UINT64_MAX)
        return 0;
    return (double)(r->started - 1) * 1e9 /
           (double)(r->last_intended_ns - r->first_intended_ns);
}

void blast_report_text(FILE *f, const struct blast_conf *cf, const struct blast_result *r)
{
    double secs = (double)r->elapsed_ns / 1e9;
    uint64_t ended = r->ok + r->tempfail + r->permfail + r->errors;
    fprintf(f, "blast: %llu messages in %.3f s: %llu ok (2xx), %llu 4xx, %llu 5xx, %llu errors"
            "%s\n", (unsigned long long)ended, secs, (unsigned long long)r->ok,
            (unsigned long long)r->tempfail, (unsigned long long)r->permfail,
            (unsigned long long)r->errors, r->interrupted ? " (interrupted)" : "");
    fprintf(f, "  throughput   %.1f msg/s ok, %.1f msg/s ended, %.2f MB/s; recipients %llu "
            "accepted, %llu refused\n", secs > 0 ? (double)r->ok / secs : 0,
            secs > 0 ? (double)ended / secs : 0, secs > 0 ? (double)r->bytes / secs / 1e6 : 0,
            (unsigned long long)r->rcpts_ok, (unsigned long long)r->rcpts_refused);
    if (cf->ramp_steps > 1)
        fprintf(f, "  schedule     ramp %.1f to %.1f msg/s in %u steps: scheduled %.1f msg/s on "
                "average, sent %.1f (first to last MAIL); %llu due but not started\n",
                cf->rate, cf->ramp_end, cf->ramp_steps, rate_scheduled(r), rate_first_last(r),
                (unsigned long long)r->not_started);
    else if (cf->rate > 0)
        fprintf(f, "  schedule     requested %.1f msg/s, scheduled %.1f, achieved %.1f (fit of "
                "MAIL times; %.1f first to last); %llu due but not started\n", cf->rate,
                rate_scheduled(r), r->rate_fit, rate_first_last(r),
                (unsigned long long)r->not_started);
    fprintf(f, "  connections  %llu opened, %llu ready, %llu TLS, AUTH %llu ok / %llu failed, "
            "%llu closed by the server as a message began (redialed); errors:",
            (unsigned long long)r->conns, (unsigned long long)r->conns_ready,
            (unsigned long long)r->tls_sessions, (unsigned long long)r->auth_ok,
            (unsigned long long)r->auth_failed, (unsigned long long)r->conns_redialed);
    for (int e = 0; e < BLAST_ERR_COUNT; e++)
        fprintf(f, " %s %llu", blast_err_name[e], (unsigned long long)r->conn_errors[e]);
    fprintf(f, "\n  CPU          %.3f s user, %.3f s sys (%.2f us per message)\n",
            r->cpu_user_us / 1e6, r->cpu_sys_us / 1e6,
            ended ? (double)(r->cpu_user_us + r->cpu_sys_us) / (double)ended : 0);
    fprintf(f, "\n  %-13s %9s %9s %9s %9s %9s %9s %9s\n", "phase (ms)", "count", "mean", "p50",
            "p90", "p99", "p99.9", "max");
    for (int p = 0; p < BLAST_PH_COUNT; p++) {
        const struct blast_hist *h = &r->phase[p];
        if (!h->count)
            continue;
        fprintf(f, "  %-13s %9llu %9.3f", blast_phase_name[p], (unsigned long long)h->count,
                blast_hist_mean(h) / 1e6);
        for (size_t q = 0; q < sizeof report_q / sizeof report_q[0]; q++)
            fprintf(f, " %9.3f", ns_to_ms(blast_hist_quantile(h, report_q[q])));
        fprintf(f, " %9.3f\n", ns_to_ms(h->max));
    }
    fputs("\n  replies     ", f);
    for (unsigned c = 0; c < BLAST_REPLY_CODES; c++)
        if (r->replies[c])
            fprintf(f, " %u:%llu", c, (unsigned long long)r->replies[c]);
    fputs("\n  statuses    ", f);
    for (uint32_t i = 0; i < r->status_count; i++)
        fprintf(f, " %s:%llu", r->statuses[i].status, (unsigned long long)r->statuses[i].count);
    if (r->statuses_other)
        fprintf(f, " other:%llu", (unsigned long long)r->statuses_other);
    fputc('\n', f);
    if (r->step_count > 1) {
        fprintf(f, "\n  %-6s %10s %10s %10s %10s %10s\n", "step", "rate", "started", "ok",
                "p50 ms", "p99 ms");
        for (uint32_t j = 0; j < r->step_count; j++)
            fprintf(f, "  %-6u %10.1f %10llu %10llu %10.3f %10.3f\n", j + 1, r->step[j].rate,
                    (unsigned long long)r->step[j].started,
                    (unsigned long long)r->step[j].ended_ok,
                    ns_to_ms(blast_hist_quantile(&r->step[j].txn, 0.5)),
                    ns_to_ms(blast_hist_quantile(&r->step[j].txn, 0.99)));
    }
}

static json_t *hist_json(const struct blast_hist *h)
{
    json_t *o = json_pack("{s:I, s:f, s:f, s:f}", "count", (json_int_t)h->count,
                          "mean_ms", blast_hist_mean(h) / 1e6, "min_ms", h->count ? ns_to_ms(h->min) : 0.0,
                          "max_ms", ns_to_ms(h->max));
    static const char *const names[] = { "p50_ms", "p90_ms", "p99_ms", "p999_ms" };
    for (size_t q = 0; q < sizeof report_q / sizeof report_q[0]; q++)
        json_object_set_new(o, names[q], json_real(ns_to_ms(blast_hist_quantile(h, report_q[q]))));
    json_object_set_new(o, "clamped", json_integer((json_int_t)h->clamped));
    return o;
}

/* The non-empty buckets, [lowest ns, highest ns, count] each, so runs can be merged or
 * re-read at other quantiles (layout: blast_hist.h, sub_bits and max_bits given). */
static json_t *hist_buckets_json(const struct blast_hist *h)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < h->buckets; i++)
        if (h->counts[i])
            json_array_append_new(a, json_pack("[I, I, I]", (json_int_t)blast_hist_lower(h, i),
                                               (json_int_t)blast_hist_upper(h, i),
                                               (json_int_t)h->counts[i]));
    return json_pack("{s:I, s:I, s:o}", "sub_bits", (json_int_t)h->sub_bits,
                     "max_bits", (json_int_t)h->max_bits, "buckets", a);
}

static json_t *conf_json(const struct blast_conf *cf)
{
    json_t *t = json_array();
    for (uint32_t i = 0; i < cf->target_count; i++)
        json_array_append_new(t, json_string(cf->target_name[i]));
    static const char *const tls[] = { "none", "may", "encrypt" };
    static const char *const sizes[] = { "fixed", "uniform", "lognormal", "file" };
    return json_pack("{s:o, s:I, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:b, s:b, "
                     "s:s, s:b, s:I}",
                     "targets", t, "threads", (json_int_t)cf->threads, "rate", cf->rate,
                     "ramp_end", cf->ramp_end, "ramp_steps", (json_int_t)cf->ramp_steps,
                     "concurrency", (json_int_t)cf->concurrency,
                     "sessions_max", (json_int_t)cf->sessions_max,
                     "count", (json_int_t)cf->count, "duration_ms", (json_int_t)cf->duration_ms,
                     "msgs_per_conn", (json_int_t)cf->msgs_per_conn,
                     "rcpts_per_msg", (json_int_t)cf->rcpts_per_msg,
                     "size", sizes[cf->size.kind], "pipelining", cf->pipelining,
                     "chunking", cf->chunking, "tls", tls[cf->tls], "auth", cf->auth_user != NULL,
                     "seed", (json_int_t)cf->seed);
}

static json_t *series_json(const struct blast_result *r)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < r->series_count; i++) {
        const struct blast_series_slot *s = &r->series[i];
        json_t *o = json_pack("{s:f, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "t_s", (double)(i * r->series_interval_ms) / 1000.0,
                              "started", (json_int_t)s->started, "ok", (json_int_t)s->ok,
                              "tempfail", (json_int_t)s->tempfail,
                              "permfail", (json_int_t)s->permfail,
                              "errors", (json_int_t)s->errors, "bytes", (json_int_t)s->bytes);
        if (s->txn && s->txn->count) {
            json_object_set_new(o, "p50_ms", json_real(ns_to_ms(blast_hist_quantile(s->txn, 0.5))));
            json_object_set_new(o, "p99_ms", json_real(ns_to_ms(blast_hist_quantile(s->txn, 0.99))));
            json_object_set_new(o, "max_ms", json_real(ns_to_ms(s->txn->max)));
        }
        json_array_append_new(a, o);
    }
    return a;
}

int blast_report_json(const char *path, const struct blast_conf *cf, const struct blast_result *r)
{
    double secs = (double)r->elapsed_ns / 1e9;
    uint64_t ended = r->ok + r->tempfail + r->permfail + r->errors;
    json_t *doc = json_object();
    json_object_set_new(doc, "tool", json_string("volley blast"));
    json_object_set_new(doc, "conf", conf_json(cf));
    json_object_set_new(doc, "messages", json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "started", (json_int_t)r->started, "ended", (json_int_t)ended, "ok", (json_int_t)r->ok,
        "tempfail", (json_int_t)r->tempfail, "permfail", (json_int_t)r->permfail,
        "errors", (json_int_t)r->errors, "not_started", (json_int_t)r->not_started,
        "rcpts_ok", (json_int_t)r->rcpts_ok, "rcpts_refused", (json_int_t)r->rcpts_refused,
        "bytes", (json_int_t)r->bytes));
    json_object_set_new(doc, "elapsed_s", json_real(secs));
    json_object_set_new(doc, "interrupted", json_boolean(r->interrupted));
    json_object_set_new(doc, "throughput", json_pack(
        "{s:f, s:f, s:f, s:f, s:f, s:f}", "ok_per_s", secs > 0 ? (double)r->ok / secs : 0.0,
        "ended_per_s", secs > 0 ? (double)ended / secs : 0.0,
        "rate_requested", cf->rate, "rate_scheduled", rate_scheduled(r),
        "rate_achieved", r->rate_fit, "rate_first_to_last", rate_first_last(r)));
    json_object_set_new(doc, "cpu", json_pack(
        "{s:f, s:f, s:f}", "user_s", r->cpu_user_us / 1e6, "sys_s", r->cpu_sys_us / 1e6,
        "us_per_msg", ended ? (double)(r->cpu_user_us + r->cpu_sys_us) / (double)ended : 0.0));
    json_object_set_new(doc, "reactor", json_pack(
        "{s:I, s:I, s:f}", "cqes", (json_int_t)r->cqes, "turns", (json_int_t)r->reactor_turns,
        "cqes_per_msg", ended ? (double)r->cqes / (double)ended : 0.0));
    json_t *conn = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "opened", (json_int_t)r->conns,
                             "ready", (json_int_t)r->conns_ready,
                             "tls", (json_int_t)r->tls_sessions,
                             "auth_ok", (json_int_t)r->auth_ok,
                             "auth_failed", (json_int_t)r->auth_failed,
                             "redialed", (json_int_t)r->conns_redialed);
    json_t *errs = json_object();
    for (int e = 0; e < BLAST_ERR_COUNT; e++)
        json_object_set_new(errs, blast_err_name[e], json_integer((json_int_t)r->conn_errors[e]));
    json_object_set_new(conn, "errors", errs);
    json_object_set_new(doc, "connections", conn);
    json_t *ph = json_object();
    for (int p = 0; p < BLAST_PH_COUNT; p++) {
        json_t *o = hist_json(&r->phase[p]);
        json_object_set_new(o, "histogram", hist_buckets_json(&r->phase[p]));
        json_object_set_new(ph, blast_phase_name[p], o);
    }
    json_object_set_new(doc, "phases", ph);
    json_t *rep = json_object(), *st = json_object();
    for (unsigned c = 0; c < BLAST_REPLY_CODES; c++)
        if (r->replies[c]) {
            char k[8];
            snprintf(k, sizeof k, "%u", c);
            json_object_set_new(rep, k, json_integer((json_int_t)r->replies[c]));
        }
    for (uint32_t i = 0; i < r->status_count; i++)
        json_object_set_new(st, r->statuses[i].status,
                            json_integer((json_int_t)r->statuses[i].count));
    if (r->statuses_other)
        json_object_set_new(st, "other", json_integer((json_int_t)r->statuses_other));
    json_object_set_new(doc, "replies", rep);
    json_object_set_new(doc, "statuses", st);
    json_object_set_new(doc, "series_interval_s", json_real(r->series_interval_ms / 1000.0));
    json_object_set_new(doc, "series", series_json(r));
    json_t *steps = json_array();
    for (uint32_t j = 0; j < r->step_count; j++) {
        json_t *o = hist_json(&r->step[j].txn);
        json_object_set_new(o, "rate", json_real(r->step[j].rate));
        json_object_set_new(o, "started", json_integer((json_int_t)r->step[j].started));
        json_object_set_new(o, "ok", json_integer((json_int_t)r->step[j].ended_ok));
        json_array_append_new(steps, o);
    }
    json_object_set_new(doc, "steps", steps);
    int rc = json_dump_file(doc, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER) == 0 ? 0 : -EIO;
    json_decref(doc);
    return rc;
}
