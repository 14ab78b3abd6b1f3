/*
 * blast_html.c - the --report page: one self-contained HTML file (inline CSS
 * and SVG, no script, no external font or image) readable offline in any
 * browser. Charts: throughput over time, transaction latency percentiles over
 * time, latency percentiles per phase, and the reply-code breakdown.
 *
 * Each time chart is an <svg class="chart" id=... data-points="N"> whose
 * polylines carry exactly N points, one per time slot of the series (tests
 * count them against the JSON's series).
 */
#include "blast.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define W 760.0
#define H 260.0
#define ML 64.0     /* margins: left (y labels), right, top, bottom (x labels) */
#define MR 16.0
#define MT 16.0
#define MB 36.0

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A "nice" axis maximum: 1, 2, 2.5 or 5 times a power of ten, >= v. */
static double nice_max(double v)
{
    if (!(v > 0))
        return 1;
    double p = pow(10, floor(log10(v)));
    static const double m[] = { 1, 2, 2.5, 5, 10 };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (m[i] * p >= v)
            return m[i] * p;
    return 10 * p;
}

static void axes(FILE *f, double xmax, double ymax, const char *xlabel, const char *ylabel)
{
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" class=\"plot\"/>\n",
            ML, MT, W - ML - MR, H - MT - MB);
    for (int i = 0; i <= 4; i++) {
        double y = MT + (H - MT - MB) * (1 - i / 4.0);
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" class=\"grid\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" class=\"yl\">%g</text>\n",
                ML, y, W - MR, y, ML - 6, y + 4, ymax * i / 4.0);
    }
    double step = nice_max(xmax / 6);           /* 1, 2, 2.5 or 5 x 10^k: about 6 ticks */
    for (int i = 0; i * step <= xmax * 1.0001 && i <= 20; i++) {
        double x = ML + (W - ML - MR) * (i * step) / xmax;
        fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" class=\"xl\">%g</text>\n", x, H - MB + 16,
                i * step);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"xt\">%s</text>"
            "<text x=\"12\" y=\"%.0f\" class=\"yt\" transform=\"rotate(-90 12 %.0f)\">%s</text>\n",
            (W + ML) / 2, H - 4, xlabel, H / 2, H / 2, ylabel);
}

struct line { const char *name, *cls; double v[BLAST_SERIES_MAX]; };

static void time_chart(FILE *f, const char *id, const char *title, const char *ylabel,
                       const struct blast_result *r, const struct line *lines, int nlines)
{
    const uint32_t n = r->series_count;
    const double dt = r->series_interval_ms / 1000.0;
    double ymax = 0;
    for (int l = 0; l < nlines; l++)
        for (uint32_t i = 0; i < n; i++)
            if (lines[l].v[i] > ymax)
                ymax = lines[l].v[i];
    ymax = nice_max(ymax);
    double xmax = n * dt;
    fprintf(f, "<h2>%s</h2>\n<svg class=\"chart\" id=\"%s\" data-points=\"%u\" "
            "viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
            "xmlns=\"http://www.w3.org/2000/svg\">\n", title, id, n, W, H, W, H);
    axes(f, xmax, ymax, "seconds since start", ylabel);
    for (int l = 0; l < nlines; l++) {
        fprintf(f, "<polyline class=\"%s\" data-name=\"%s\" points=\"", lines[l].cls,
                lines[l].name);
        for (uint32_t i = 0; i < n; i++) {
            double x = ML + (W - ML - MR) * ((i + 0.5) * dt) / xmax;
            double y = MT + (H - MT - MB) * (1 - lines[l].v[i] / ymax);
            fprintf(f, "%s%.1f,%.1f", i ? " " : "", x, y);
        }
        fputs("\"/>\n", f);
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"4\" class=\"k%s\"/>"
                "<text x=\"%.0f\" y=\"%.0f\" class=\"lg\">%s</text>\n",
                ML + 12 + l * 120.0, MT + 8, lines[l].cls, ML + 28 + l * 120.0, MT + 12,
                lines[l].name);
    }
    fputs("</svg>\n", f);
}

static void phase_chart(FILE *f, const struct blast_result *r)
{
    static const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
    static const char *const qn[] = { "p50", "p90", "p99", "p99.9" };
    int rows = 0;
    double xmax = 0;
    for (int p = 0; p < BLAST_PH_COUNT; p++)
        if (r->phase[p].count) {
            rows++;
            double v = blast_hist_quantile(&r->phase[p], 0.999) / 1e6;
            xmax = v > xmax ? v : xmax;
        }
    xmax = nice_max(xmax);
    const double row_h = 44, h = MT + rows * row_h + MB, lw = 110;
    fprintf(f, "<h2>Latency per phase (ms)</h2>\n<svg class=\"chart\" id=\"phases\" "
            "data-rows=\"%d\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
            "xmlns=\"http://www.w3.org/2000/svg\">\n", rows, W, h, W, h);
    for (int i = 0; i <= 4; i++) {
        double x = lw + (W - lw - MR) * i / 4.0;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" class=\"grid\"/>"
                "<text x=\"%.1f\" y=\"%.0f\" class=\"xl\">%g</text>\n",
                x, MT, x, h - MB, x, h - MB + 16, xmax * i / 4.0);
    }
    int row = 0;
    for (int p = 0; p < BLAST_PH_COUNT; p++) {
        const struct blast_hist *hg = &r->phase[p];
        if (!hg->count)
            continue;
        double y0 = MT + row++ * row_h;
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"yl\">%s</text>\n", lw - 6, y0 + 24,
                blast_phase_name[p]);
        for (int q = 0; q < 4; q++) {
            double v = blast_hist_quantile(hg, qs[q]) / 1e6;
            double wpx = (W - lw - MR) * (v > xmax ? xmax : v) / xmax;
            fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"8\" class=\"q%d\">"
                    "<title>%s %s %.3f ms</title></rect>\n", lw, y0 + 4 + q * 9, wpx, q,
                    blast_phase_name[p], qn[q], v);
        }
    }
    for (int q = 0; q < 4; q++)
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"8\" class=\"q%d\"/>"
                "<text x=\"%.0f\" y=\"%.0f\" class=\"lg\">%s</text>\n",
                lw + q * 90.0, h - 14, q, lw + 16 + q * 90.0, h - 6, qn[q]);
    fputs("</svg>\n", f);
}

static void code_chart(FILE *f, const struct blast_result *r)
{
    int bars = 0;
    double max = 0;
    for (unsigned c = 0; c < BLAST_REPLY_CODES; c++)
        if (r->replies[c]) {
            bars++;
            max = r->replies[c] > max ? (double)r->replies[c] : max;
        }
    max = nice_max(max);
    const double bh = 22, lw = 60, h = MT + bars * bh + 8;
    fprintf(f, "<h2>Replies by code</h2>\n<svg class=\"chart\" id=\"codes\" data-bars=\"%d\" "
            "viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
            "xmlns=\"http://www.w3.org/2000/svg\">\n", bars, W, h, W, h);
    int i = 0;
    for (unsigned c = 0; c < BLAST_REPLY_CODES; c++) {
        if (!r->replies[c])
            continue;
        double y = MT + i++ * bh, wpx = (W - lw - 120) * (double)r->replies[c] / max;
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"yl\">%u</text>"
                "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"16\" class=\"c%c\"/>"
                "<text x=\"%.1f\" y=\"%.0f\" class=\"lg\">%llu</text>\n", lw - 6, y + 12, c, lw,
                y, wpx, '0' + c / 100, lw + wpx + 6, y + 12, (unsigned long long)r->replies[c]);
    }
    fputs("</svg>\n", f);
}

static const char css[] =
    "body{font-family:sans-serif;margin:24px;color:#222;max-width:820px}"
    "h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
    "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;text-align:right;"
    "border-bottom:1px solid #ddd}th:first-child,td:first-child{text-align:left}"
    ".plot{fill:#fafafa;stroke:#999}.grid{stroke:#e4e4e4}"
    ".yl{font-size:11px;text-anchor:end}.xl{font-size:11px;text-anchor:middle}"
    ".xt{font-size:12px;text-anchor:middle}.yt{font-size:12px;text-anchor:middle}"
    ".lg{font-size:11px}polyline{fill:none;stroke-width:1.8}"
    ".ok{stroke:#2a7}.t4{stroke:#d90}.t5{stroke:#c33}.er{stroke:#555}"
    ".p50{stroke:#37c}.p99{stroke:#c3a}.pmax{stroke:#999;stroke-dasharray:4 3}"
    ".kok{fill:#2a7}.kt4{fill:#d90}.kt5{fill:#c33}.ker{fill:#555}.kp50{fill:#37c}"
    ".kp99{fill:#c3a}.kpmax{fill:#999}"
    ".q0{fill:#9cf}.q1{fill:#59d}.q2{fill:#c3a}.q3{fill:#718}"
    ".kv td{text-align:left}.c2{fill:#2a7}.c3{fill:#59d}.c4{fill:#d90}.c5{fill:#c33}";

static void summary_table(FILE *f, const struct blast_conf *cf, const struct blast_result *r)
{
    double secs = r->elapsed_ns / 1e9;
    uint64_t ended = r->ok + r->tempfail + r->permfail + r->errors;
    fputs("<table class=\"kv\">\n", f);
    fputs("<tr><th>targets</th><td>", f);
    for (uint32_t i = 0; i < cf->target_count; i++) {
        esc(f, cf->target_name[i]);
        fputs(i + 1 < cf->target_count ? ", " : "", f);
    }
    fputs("</td></tr>\n", f);
    if (cf->ramp_steps > 1)
        fprintf(f, "<tr><th>load</th><td>open loop, ramp %g to %g msg/s in %u steps, up to %u "
                "sessions</td></tr>\n", cf->rate, cf->ramp_end, cf->ramp_steps, cf->sessions_max);
    else if (cf->rate > 0)
        fprintf(f, "<tr><th>load</th><td>open loop, %g msg/s, up to %u sessions</td></tr>\n",
                cf->rate, cf->sessions_max);
    else
        fprintf(f, "<tr><th>load</th><td>closed loop, %u sessions</td></tr>\n", cf->concurrency);
    fprintf(f, "<tr><th>messages</th><td>%llu ended in %.3f s: %llu ok, %llu 4xx, %llu 5xx, "
            "%llu errors</td></tr>\n", (unsigned long long)ended, secs,
            (unsigned long long)r->ok, (unsigned long long)r->tempfail,
            (unsigned long long)r->permfail, (unsigned long long)r->errors);
    fprintf(f, "<tr><th>throughput</th><td>%.1f msg/s ok, %.2f MB/s</td></tr>\n",
            secs > 0 ? r->ok / secs : 0, secs > 0 ? r->bytes / secs / 1e6 : 0);
    fprintf(f, "<tr><th>connections</th><td>%llu opened, %llu TLS; errors:",
            (unsigned long long)r->conns, (unsigned long long)r->tls_sessions);
    for (int e = 0; e < BLAST_ERR_COUNT; e++)
        fprintf(f, " %s %llu", blast_err_name[e], (unsigned long long)r->conn_errors[e]);
    fputs("</td></tr>\n<tr><th>statuses</th><td>", f);
    for (uint32_t i = 0; i < r->status_count; i++)
        fprintf(f, "%s %s&#215;%llu", i ? "," : "", r->statuses[i].status,
                (unsigned long long)r->statuses[i].count);
    fputs("</td></tr>\n</table>\n", f);
    fputs("<h2>Latency (ms)</h2>\n<table><tr><th>phase</th><th>count</th><th>p50</th>"
          "<th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n", f);
    for (int p = 0; p < BLAST_PH_COUNT; p++) {
        const struct blast_hist *h = &r->phase[p];
        if (!h->count)
            continue;
        fprintf(f, "<tr><td>%s</td><td>%llu</td><td>%.3f</td><td>%.3f</td><td>%.3f</td>"
                "<td>%.3f</td><td>%.3f</td></tr>\n", blast_phase_name[p],
                (unsigned long long)h->count, blast_hist_quantile(h, 0.5) / 1e6,
                blast_hist_quantile(h, 0.9) / 1e6, blast_hist_quantile(h, 0.99) / 1e6,
                blast_hist_quantile(h, 0.999) / 1e6, h->max / 1e6);
    }
    fputs("</table>\n", f);
    if (r->step_count < 2)
        return;
    fputs("<h2>Ramp steps</h2>\n<table id=\"steps\"><tr><th>step</th><th>rate</th>"
          "<th>started</th><th>ok</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>\n", f);
    for (uint32_t j = 0; j < r->step_count; j++) {
        const struct blast_hist *h = &r->step[j].txn;
        fprintf(f, "<tr><td>%u</td><td>%.1f</td><td>%llu</td><td>%llu</td><td>%.3f</td>"
                "<td>%.3f</td><td>%.3f</td></tr>\n", j + 1, r->step[j].rate,
                (unsigned long long)r->step[j].started, (unsigned long long)r->step[j].ended_ok,
                blast_hist_quantile(h, 0.5) / 1e6, blast_hist_quantile(h, 0.99) / 1e6,
                h->max / 1e6);
    }
    fputs("</table>\n", f);
}

int blast_report_html(const char *path, const struct blast_conf *cf, const struct blast_result *r)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    static struct line thr[4], lat[3];
    const double dt = r->series_interval_ms / 1000.0;
    thr[0] = (struct line){ .name = "ok/s", .cls = "ok" };
    thr[1] = (struct line){ .name = "4xx/s", .cls = "t4" };
    thr[2] = (struct line){ .name = "5xx/s", .cls = "t5" };
    thr[3] = (struct line){ .name = "errors/s", .cls = "er" };
    lat[0] = (struct line){ .name = "p50", .cls = "p50" };
    lat[1] = (struct line){ .name = "p99", .cls = "p99" };
    lat[2] = (struct line){ .name = "max", .cls = "pmax" };
    for (uint32_t i = 0; i < r->series_count; i++) {
        const struct blast_series_slot *s = &r->series[i];
        double span = dt, end = r->elapsed_ns / 1e9 - i * dt;   /* the last slot is partial */
        if (i + 1 == r->series_count && end > 0.001 && end < dt)
            span = end;
        thr[0].v[i] = s->ok / span;
        thr[1].v[i] = s->tempfail / span;
        thr[2].v[i] = s->permfail / span;
        thr[3].v[i] = s->errors / span;
        bool has = s->txn && s->txn->count;
        lat[0].v[i] = has ? blast_hist_quantile(s->txn, 0.5) / 1e6 : 0;
        lat[1].v[i] = has ? blast_hist_quantile(s->txn, 0.99) / 1e6 : 0;
        lat[2].v[i] = has ? s->txn->max / 1e6 : 0;
    }
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>volley blast report</title><style>%s</style></head><body>\n"
            "<h1>volley blast report</h1>\n", css);
    summary_table(f, cf, r);
    time_chart(f, "throughput", "Throughput over time (messages/s, by final reply)",
               "messages/s", r, thr, 4);
    time_chart(f, "latency", "Transaction latency over time (ms, from the intended start)",
               "ms", r, lat, 3);
    phase_chart(f, r);
    code_chart(f, r);
    fputs("</body></html>\n", f);
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}
