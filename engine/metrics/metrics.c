/*
 * metrics.c - the metrics registry and its Prometheus text rendering (see
 * metrics.h).
 */
#include "metrics.h"

#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint64_t met_commit_us_bounds[MET_HIST_MAX] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000,
};
const uint64_t met_batch_bounds[MET_HIST_MAX] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768,
};
const double met_age_bounds_s[6] = { 60, 300, 900, 3600, 14400, 86400 };

static _Atomic(struct met *) met_reg;

int met_init(unsigned nshards)
{
    if (atomic_load(&met_reg))
        return 0;
    const char *e = getenv("VOLLEY_METRICS");
    if (e && (!strcmp(e, "off") || !strcmp(e, "0")))
        return 0;
    struct met *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    size_t sz = (size_t)(nshards ? nshards : 1) * sizeof *m->shard;
    m->shard = aligned_alloc(64, (sz + 63) / 64 * 64);
    if (!m->shard) {
        free(m);
        return -ENOMEM;
    }
    memset(m->shard, 0, sz);
    m->nshards = nshards ? nshards : 1;
    m->started_ms = vl_clock_wall_ms();
    atomic_store(&met_reg, m);
    return 0;
}

struct met *met_get(void)
{
    return atomic_load_explicit(&met_reg, memory_order_relaxed);
}

void met_fini(void)
{
    struct met *m = atomic_exchange(&met_reg, NULL);
    if (m) {
        free(m->shard);
        free(m);
    }
}

static uint32_t met_hash(const char *s)
{
    uint32_t h = 2166136261u;                       /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* The slot of @p name in @p t (claimed if free), or NULL: full. Shard thread. */
static struct met_label *met_slot(struct met_label *t, unsigned cap, const char *name)
{
    uint32_t h = met_hash(name);
    for (unsigned i = 0; i < cap; i++) {
        struct met_label *l = &t[(h + i) & (cap - 1)];
        if (!atomic_load_explicit(&l->used, memory_order_relaxed)) {
            if (strlen(name) >= MET_NAME_MAX)
                return NULL;
            strcpy(l->name, name);
            l->hash = h;
            atomic_store_explicit(&l->used, 1, memory_order_release);
            return l;
        }
        if (l->hash == h && !strcmp(l->name, name))
            return l;
    }
    return NULL;
}

void met_outcome(struct met_shard *s, enum met_outcome o, const char *domain, const char *source,
                 const char *campaign)
{
    met_outcome_committed(s, o, domain, source, campaign, 0);
}

void met_outcome_committed(struct met_shard *s, enum met_outcome o, const char *domain,
                           const char *source, const char *campaign, int64_t inflight_done)
{
    met_add(&s->out[o], 1);
    struct met_label *d = met_slot(s->dom, MET_DOMAINS, domain ? domain : "");
    met_add(d ? &d->n[o] : &s->out_other_dom[o], 1);
    if (d && inflight_done)
        atomic_fetch_sub_explicit(&d->inflight, inflight_done, memory_order_relaxed);
    struct met_label *r = met_slot(s->src, MET_SOURCES, source ? source : "");
    met_add(r ? &r->n[o] : &s->out_other_src[o], 1);
    if (campaign && *campaign) {
        struct met_label *c = met_slot(s->camp, MET_CAMPAIGNS, campaign);
        met_add(c ? &c->n[o] : &s->out_other_camp[o], 1);
    }
}

void met_outcome_tenant(struct met_shard *s, enum met_outcome o, const char *tenant)
{
    if (!tenant || !*tenant)
        return;
    struct met_label *t = met_slot(s->ten, MET_TENANTS, tenant);
    met_add(t ? &t->n[o] : &s->out_other_ten[o], 1);
}

void met_domain_inflight(struct met_shard *s, const char *domain, int64_t delta)
{
    struct met_label *d = met_slot(s->dom, MET_DOMAINS, domain ? domain : "");
    if (d)
        atomic_fetch_add_explicit(&d->inflight, delta, memory_order_relaxed);
}

void met_domain_error(struct met_shard *s, const char *domain, const char *why, uint64_t now_ms)
{
    struct met_label *d = met_slot(s->dom, MET_DOMAINS, domain ? domain : "");
    if (!d)
        return;
    uint32_t q = atomic_load_explicit(&d->seq, memory_order_relaxed);
    atomic_store_explicit(&d->seq, q + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&d->err_ms, now_ms, memory_order_relaxed);
    size_t n = strlen(why);
    if (n >= MET_ERR_MAX)
        n = MET_ERR_MAX - 1;
    for (size_t i = 0; i < n; i++)          /* byte stores a reader may tear: seq says so */
        atomic_store_explicit(&d->err[i], why[i], memory_order_relaxed);
    atomic_store_explicit(&d->err[n], '\0', memory_order_relaxed);
    atomic_store_explicit(&d->seq, q + 2, memory_order_release);
}

void met_bounce(struct met_shard *s, const char *category, bool permanent)
{
    const char *c = category && *category ? category : "other";
    size_t len = strlen(c);
    unsigned k = permanent ? 0 : 1;
    for (unsigned i = 0; len < MET_BOUNCE_NAME && i < MET_BOUNCE_CATS; i++) {
        struct met_bounce_cat *b = &s->bounce[i];
        if (!atomic_load_explicit(&b->used, memory_order_relaxed)) {
            memcpy(b->name, c, len + 1);
            atomic_store_explicit(&b->used, 1, memory_order_release);
        } else if (strcmp(b->name, c) != 0) {
            continue;
        }
        met_add(&b->n[k], 1);
        return;
    }
    met_add(&s->bounce_other[k], 1);
}

/* A consistent copy of @p l's last error (seqlock read; gives up after a few
 * tries while the shard writes, leaving it empty). */
static void met_err_read(const struct met_label *l, uint64_t *ms, char *out)
{
    for (int tries = 0; tries < 8; tries++) {
        uint32_t q0 = atomic_load_explicit(&l->seq, memory_order_acquire);
        if (q0 & 1u)
            continue;
        *ms = atomic_load_explicit(&l->err_ms, memory_order_relaxed);
        for (size_t i = 0; i < MET_ERR_MAX; i++)
            out[i] = atomic_load_explicit(&l->err[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&l->seq, memory_order_relaxed) == q0) {
            out[MET_ERR_MAX - 1] = '\0';
            return;
        }
    }
    *ms = 0;
    out[0] = '\0';
}

void met_hist_add(struct met_hist *h, const uint64_t *bounds, uint64_t v)
{
    unsigned i = 0;
    while (i < MET_HIST_MAX && v > bounds[i])
        i++;
    if (i < MET_HIST_MAX)
        met_add(&h->bucket[i], 1);
    met_add(&h->sum, v);
    met_add(&h->count, 1);
}

/* ---- rendering ----------------------------------------------------------- */

struct mbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void mb_printf(struct mbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void mb_head(struct mbuf *b, const char *name, const char *type, const char *help)
{
    mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value escaped per the text format (backslash, quote, newline). */
static void mb_label(struct mbuf *b, const char *v)
{
    char tmp[MET_NAME_MAX * 2 + 1];
    size_t k = 0;
    for (; *v && k + 2 < sizeof tmp; v++) {
        if (*v == '\\' || *v == '"')
            tmp[k++] = '\\', tmp[k++] = *v;
        else if (*v == '\n')
            tmp[k++] = '\\', tmp[k++] = 'n';
        else
            tmp[k++] = *v;
    }
    tmp[k] = '\0';
    mb_printf(b, "%s", tmp);
}

static uint64_t ld(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static const char *const met_outcome_names[MET_OUTCOMES] = {
    "delivered", "deferred", "bounced", "expired", "suppressed",
};

/* One label value merged over the shards. */
struct mrow {
    char name[MET_NAME_MAX];
    uint64_t n[MET_OUTCOMES];
    uint64_t total;
};

static int mrow_cmp(const void *a, const void *b)
{
    const struct mrow *x = a, *y = b;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return strcmp(x->name, y->name);
}

enum met_table { MET_T_DOM, MET_T_SRC, MET_T_CAMP, MET_T_TEN, MET_TABLES };

static const struct met_table_info {
    unsigned cap;
    const char *name, *label, *help;
} met_tables[MET_TABLES] = {
    { MET_DOMAINS, "volley_domain_recipients_total", "domain",
      "Recipient outcomes by destination domain (top 20 by volume, the rest \"other\")" },
    { MET_SOURCES, "volley_source_recipients_total", "source",
      "Recipient outcomes by source: envelope sender, \"\" the null path (top 20, the rest "
      "\"other\")" },
    { MET_CAMPAIGNS, "volley_campaign_recipients_total", "campaign",
      "Recipient outcomes by campaign (X-Volley-Campaign; top 20, the rest \"other\"; mail "
      "without one not counted here)" },
    { MET_TENANTS, "volley_tenant_recipients_total", "tenant",
      "Recipient outcomes by tenant (X-Volley-Tenant; top 20, the rest \"other\"; mail "
      "without one not counted here)" },
};

static const struct met_label *met_table_of(const struct met_shard *sh, enum met_table t,
                                            const _Atomic uint64_t **other)
{
    *other = t == MET_T_DOM ? sh->out_other_dom : t == MET_T_SRC ? sh->out_other_src
           : t == MET_T_CAMP ? sh->out_other_camp : sh->out_other_ten;
    return t == MET_T_DOM ? sh->dom : t == MET_T_SRC ? sh->src : t == MET_T_CAMP ? sh->camp
                                                                                : sh->ten;
}

/* Merge the shards' tables @p t into rows; rows past MET_TOP_N are summed
 * into @p other. @return rows kept, or -1. */
static int met_merge(const struct met *m, enum met_table t, struct mrow **out, uint64_t *other)
{
    unsigned cap = met_tables[t].cap;
    struct mrow *rows = calloc((size_t)m->nshards * cap, sizeof *rows);
    if (!rows)
        return -1;
    size_t n = 0;
    for (unsigned k = 0; k < MET_OUTCOMES; k++)
        other[k] = 0;
    for (unsigned s = 0; s < m->nshards; s++) {
        const _Atomic uint64_t *oth;
        const struct met_label *tab = met_table_of(&m->shard[s], t, &oth);
        for (unsigned k = 0; k < MET_OUTCOMES; k++)
            other[k] += ld(&oth[k]);
        for (unsigned i = 0; i < cap; i++) {
            const struct met_label *l = &tab[i];
            if (!atomic_load_explicit(&l->used, memory_order_acquire))
                continue;
            size_t j = 0;
            while (j < n && strcmp(rows[j].name, l->name))
                j++;
            if (j == n)
                memcpy(rows[n++].name, l->name, MET_NAME_MAX);
            for (unsigned k = 0; k < MET_OUTCOMES; k++) {
                uint64_t v = ld(&l->n[k]);
                rows[j].n[k] += v;
                rows[j].total += v;
            }
        }
    }
    qsort(rows, n, sizeof *rows, mrow_cmp);
    for (size_t j = MET_TOP_N; j < n; j++)
        for (unsigned k = 0; k < MET_OUTCOMES; k++)
            other[k] += rows[j].n[k];
    *out = rows;
    return (int)(n < MET_TOP_N ? n : MET_TOP_N);
}

int met_domain_rows(const struct met *m, struct met_domain_row *out, size_t max)
{
    size_t n = 0;
    for (unsigned s = 0; s < m->nshards; s++) {
        for (unsigned i = 0; i < MET_DOMAINS; i++) {
            const struct met_label *l = &m->shard[s].dom[i];
            if (!atomic_load_explicit(&l->used, memory_order_acquire))
                continue;
            size_t j = 0;
            while (j < n && strcmp(out[j].domain, l->name))
                j++;
            if (j == n) {
                if (n == max)
                    continue;
                memset(&out[n], 0, sizeof out[n]);
                memcpy(out[n++].domain, l->name, MET_NAME_MAX);
            }
            for (unsigned k = 0; k < MET_OUTCOMES; k++)
                out[j].n[k] += ld(&l->n[k]);
            out[j].inflight += atomic_load_explicit(&l->inflight, memory_order_relaxed);
            uint64_t ms;
            char err[MET_ERR_MAX];
            met_err_read(l, &ms, err);
            if (ms && ms >= out[j].err_ms) {
                out[j].err_ms = ms;
                memcpy(out[j].err, err, MET_ERR_MAX);
            }
        }
    }
    return (int)n;
}

static void met_render_labelled(struct mbuf *b, const struct met *m, enum met_table t)
{
    const char *name = met_tables[t].name, *lab = met_tables[t].label;
    mb_head(b, name, "counter", met_tables[t].help);
    struct mrow *rows = NULL;
    uint64_t other[MET_OUTCOMES];
    int n = met_merge(m, t, &rows, other);
    if (n < 0) {
        b->oom = true;
        return;
    }
    for (int j = 0; j < n; j++)
        for (unsigned k = 0; k < MET_OUTCOMES; k++) {
            mb_printf(b, "%s{%s=\"", name, lab);
            mb_label(b, rows[j].name);
            mb_printf(b, "\",outcome=\"%s\"} %llu\n", met_outcome_names[k],
                      (unsigned long long)rows[j].n[k]);
        }
    for (unsigned k = 0; k < MET_OUTCOMES; k++)
        mb_printf(b, "%s{%s=\"other\",outcome=\"%s\"} %llu\n", name, lab, met_outcome_names[k],
                  (unsigned long long)other[k]);
    free(rows);
}

static void met_render_hist(struct mbuf *b, const struct met *m, const char *name,
                            const char *help, bool commit_us)
{
    const uint64_t *bounds = commit_us ? met_commit_us_bounds : met_batch_bounds;
    uint64_t bk[MET_HIST_MAX] = { 0 }, sum = 0, count = 0;
    for (unsigned s = 0; s < m->nshards; s++) {
        const struct met_hist *h = commit_us ? &m->shard[s].commit_us
                                             : &m->shard[s].commit_batch;
        for (unsigned i = 0; i < MET_HIST_MAX; i++)
            bk[i] += ld(&h->bucket[i]);
        sum += ld(&h->sum);
        count += ld(&h->count);
    }
    mb_head(b, name, "histogram", help);
    uint64_t cum = 0;
    for (unsigned i = 0; i < MET_HIST_MAX; i++) {
        cum += bk[i];
        if (commit_us)
            mb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bounds[i] / 1e6,
                      (unsigned long long)cum);
        else
            mb_printf(b, "%s_bucket{le=\"%llu\"} %llu\n", name, (unsigned long long)bounds[i],
                      (unsigned long long)cum);
    }
    /* count is read after the buckets: a racing add may make it larger; +Inf
     * is count, so the series stays monotonic */
    if (count < cum)
        count = cum;
    mb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)count);
    if (commit_us)
        mb_printf(b, "%s_sum %.6f\n", name, (double)sum / 1e6);
    else
        mb_printf(b, "%s_sum %llu\n", name, (unsigned long long)sum);
    mb_printf(b, "%s_count %llu\n", name, (unsigned long long)count);
}

static pthread_mutex_t met_rates_mu = PTHREAD_MUTEX_INITIALIZER;
static met_rates_fn met_rates_cb;
static void *met_rates_ctx;

void met_rates_source(met_rates_fn fn, void *ctx)
{
    pthread_mutex_lock(&met_rates_mu);
    met_rates_cb = fn;
    met_rates_ctx = ctx;
    pthread_mutex_unlock(&met_rates_mu);
}

/* volley_shaping_{rate,limit}_messages_per_second by policy (at most
 * MET_RATES_MAX labels: the configured policies). */
static void met_render_rates(struct mbuf *b)
{
    struct met_rate r[MET_RATES_MAX];
    size_t n = 0;
    pthread_mutex_lock(&met_rates_mu);
    if (met_rates_cb)
        n = met_rates_cb(met_rates_ctx, r, MET_RATES_MAX);
    pthread_mutex_unlock(&met_rates_mu);
    if (n > MET_RATES_MAX)
        n = MET_RATES_MAX;
    mb_head(b, "volley_shaping_rate_messages_per_second", "gauge",
            "A shaping policy's current message rate (adaptive: after cuts on deferrals), "
            "shared by every domain it matches; 0 = unlimited");
    for (size_t i = 0; i < n; i++) {
        mb_printf(b, "volley_shaping_rate_messages_per_second{policy=\"");
        mb_label(b, r[i].policy);
        mb_printf(b, "\"} %g\n", r[i].rate);
    }
    mb_head(b, "volley_shaping_limit_messages_per_second", "gauge",
            "A shaping policy's configured msgs-per-sec; 0 = unlimited");
    for (size_t i = 0; i < n; i++) {
        mb_printf(b, "volley_shaping_limit_messages_per_second{policy=\"");
        mb_label(b, r[i].policy);
        mb_printf(b, "\"} %g\n", r[i].limit);
    }
}

/* Issue 16: volley_bounces_total{category,kind} merged over the shards (names
 * sorted: a stable order), and the events outbox's back-pressure. */
static void met_render_bounces(struct mbuf *b, const struct met *m)
{
    char names[MET_BOUNCE_CATS + 1][MET_BOUNCE_NAME];
    uint64_t n[MET_BOUNCE_CATS + 1][2];
    unsigned k = 0;
    uint64_t full = 0, pauses = 0;
    memset(n, 0, sizeof n);
    for (unsigned s = 0; s < m->nshards; s++) {
        const struct met_shard *sh = &m->shard[s];
        full += ld(&sh->evt_outbox_full);
        pauses += ld(&sh->evt_outbox_pauses);
        for (unsigned i = 0; i <= MET_BOUNCE_CATS; i++) {
            const char *name = "other";
            const _Atomic uint64_t *c = sh->bounce_other;
            if (i < MET_BOUNCE_CATS) {
                const struct met_bounce_cat *bc = &sh->bounce[i];
                if (!atomic_load_explicit(&bc->used, memory_order_acquire))
                    continue;
                name = bc->name;
                c = bc->n;
            } else if (!ld(&c[0]) && !ld(&c[1])) {
                continue;
            }
            unsigned j = 0;
            while (j < k && strcmp(names[j], name) != 0)
                j++;
            if (j == k) {
                if (k == MET_BOUNCE_CATS + 1)
                    continue;      /* cannot happen: one name set per shard table */
                snprintf(names[k++], MET_BOUNCE_NAME, "%s", name);
            }
            n[j][0] += ld(&c[0]);
            n[j][1] += ld(&c[1]);
        }
    }
    mb_head(b, "volley_bounces_total", "counter",
            "Failed recipient attempts by bounce category (etc/bounce_rules.conf): kind "
            "permanent (bounced) or temporary (deferred)");
    for (unsigned i = 0; i < k; i++)          /* insertion sort by name: k <= 17 */
        for (unsigned j = i + 1; j < k; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char t[MET_BOUNCE_NAME];
                uint64_t tn[2] = { n[i][0], n[i][1] };
                memcpy(t, names[i], sizeof t);
                memcpy(names[i], names[j], sizeof t);
                memcpy(names[j], t, sizeof t);
                n[i][0] = n[j][0], n[i][1] = n[j][1];
                n[j][0] = tn[0], n[j][1] = tn[1];
            }
    for (unsigned i = 0; i < k; i++) {
        mb_printf(b, "volley_bounces_total{category=\"");
        mb_label(b, names[i]);
        mb_printf(b, "\",kind=\"permanent\"} %llu\n", (unsigned long long)n[i][0]);
        mb_printf(b, "volley_bounces_total{category=\"");
        mb_label(b, names[i]);
        mb_printf(b, "\",kind=\"temporary\"} %llu\n", (unsigned long long)n[i][1]);
    }
    mb_head(b, "volley_events_outbox_full", "gauge",
            "Shards whose delivery-events outbox is at events.outbox-max: they start no "
            "new deliveries until the event sinks take events");
    mb_printf(b, "volley_events_outbox_full %llu\n", (unsigned long long)full);
    mb_head(b, "volley_events_outbox_pauses_total", "counter",
            "Times a shard paused delivery because its events outbox was full");
    mb_printf(b, "volley_events_outbox_pauses_total %llu\n", (unsigned long long)pauses);
}

char *met_render(const struct met *m, const struct met_queue *q, size_t *len)
{
    struct mbuf b = { malloc(16384), 0, 16384, false };
    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    mb_head(&b, "volley_up", "gauge", "1: the engine answers; metrics on (1) or off (0) in "
            "the label");
    mb_printf(&b, "volley_up{metrics=\"%s\"} 1\n", m ? "on" : "off");
    if (m) {
        uint64_t out[MET_OUTCOMES] = { 0 }, opened = 0, open = 0, tls = 0, plain = 0,
                 dl = 0, dh = 0, inflight = 0;
        for (unsigned s = 0; s < m->nshards; s++) {
            const struct met_shard *sh = &m->shard[s];
            for (unsigned k = 0; k < MET_OUTCOMES; k++)
                out[k] += ld(&sh->out[k]);
            opened += ld(&sh->conns_opened);
            open += ld(&sh->conns_open);
            tls += ld(&sh->txns_tls);
            plain += ld(&sh->txns_plain);
            dl += ld(&sh->dns_lookups);
            dh += ld(&sh->dns_hits);
            inflight += ld(&sh->inflight);
        }
        mb_head(&b, "volley_recipients_total", "counter",
                "Recipient outcomes since start (deferred counts attempts; DSN recipients "
                "not included)");
        for (unsigned k = 0; k < MET_OUTCOMES; k++)
            mb_printf(&b, "volley_recipients_total{outcome=\"%s\"} %llu\n",
                      met_outcome_names[k], (unsigned long long)out[k]);
        met_render_labelled(&b, m, MET_T_DOM);
        met_render_labelled(&b, m, MET_T_SRC);
        met_render_labelled(&b, m, MET_T_CAMP);
        met_render_labelled(&b, m, MET_T_TEN);
        mb_head(&b, "volley_connections_opened_total", "counter",
                "Outbound SMTP connections opened");
        mb_printf(&b, "volley_connections_opened_total %llu\n", (unsigned long long)opened);
        mb_head(&b, "volley_connections_open", "gauge", "Outbound SMTP connections open now");
        mb_printf(&b, "volley_connections_open %llu\n", (unsigned long long)open);
        mb_head(&b, "volley_transactions_total", "counter",
                "Outbound SMTP transactions by the session's TLS");
        mb_printf(&b, "volley_transactions_total{tls=\"yes\"} %llu\n", (unsigned long long)tls);
        mb_printf(&b, "volley_transactions_total{tls=\"no\"} %llu\n", (unsigned long long)plain);
        mb_head(&b, "volley_tls_share", "gauge",
                "Share of outbound transactions over TLS since start (0 when none)");
        mb_printf(&b, "volley_tls_share %g\n",
                  tls + plain ? (double)tls / (double)(tls + plain) : 0.0);
        mb_head(&b, "volley_inflight_recipients", "gauge",
                "Recipients leased by the shards, outcome not yet committed");
        mb_printf(&b, "volley_inflight_recipients %llu\n", (unsigned long long)inflight);
        mb_head(&b, "volley_dns_lookups_total", "counter", "MX route lookups by the shards");
        mb_printf(&b, "volley_dns_lookups_total %llu\n", (unsigned long long)dl);
        mb_head(&b, "volley_dns_cache_hits_total", "counter", "MX route lookups answered from "
                "the cache");
        mb_printf(&b, "volley_dns_cache_hits_total %llu\n", (unsigned long long)dh);
        mb_head(&b, "volley_dns_cache_misses_total", "counter", "MX route lookups not answered "
                "from the cache");
        mb_printf(&b, "volley_dns_cache_misses_total %llu\n",
                  (unsigned long long)(dl > dh ? dl - dh : 0));
        met_render_hist(&b, m, "volley_commit_latency_seconds",
                        "Queue commit latency of the shards' outcome commits", true);
        met_render_hist(&b, m, "volley_commit_batch_outcomes",
                        "Recipient outcomes per queue commit", false);
        static const char *const ln[MET_LISTENERS] = { "smtp", "http" };
        mb_head(&b, "volley_injected_messages_total", "counter",
                "Messages accepted into the queue, by listener");
        for (unsigned l = 0; l < MET_LISTENERS; l++)
            mb_printf(&b, "volley_injected_messages_total{listener=\"%s\"} %llu\n", ln[l],
                      (unsigned long long)ld(&m->inject_msgs[l]));
        mb_head(&b, "volley_injected_recipients_total", "counter",
                "Recipients accepted into the queue, by listener");
        for (unsigned l = 0; l < MET_LISTENERS; l++)
            mb_printf(&b, "volley_injected_recipients_total{listener=\"%s\"} %llu\n", ln[l],
                      (unsigned long long)ld(&m->inject_rcpts[l]));
        met_render_rates(&b);
        met_render_bounces(&b, m);           /* issue 16 */
        mb_head(&b, "volley_start_time_seconds", "gauge", "When the engine started (Unix time)");
        mb_printf(&b, "volley_start_time_seconds %.3f\n", (double)m->started_ms / 1000.0);
    }
    if (q && q->ok) {
        mb_head(&b, "volley_queue_recipients", "gauge", "Open recipients in the queue by state");
        mb_printf(&b, "volley_queue_recipients{state=\"ready\"} %llu\n",
                  (unsigned long long)q->ready);
        mb_printf(&b, "volley_queue_recipients{state=\"deferred\"} %llu\n",
                  (unsigned long long)q->deferred);
        mb_printf(&b, "volley_queue_recipients{state=\"quarantined\"} %llu\n",
                  (unsigned long long)q->quarantined);
        mb_head(&b, "volley_queue_messages", "gauge", "Message records in the queue");
        mb_printf(&b, "volley_queue_messages %llu\n", (unsigned long long)q->messages);
        mb_head(&b, "volley_queue_body_bytes", "gauge", "Message bodies stored, in bytes");
        mb_printf(&b, "volley_queue_body_bytes %llu\n", (unsigned long long)q->body_bytes);
        mb_head(&b, "volley_queue_commits_total", "counter", "Queue write groups (one LMDB "
                "transaction each) of this process");
        mb_printf(&b, "volley_queue_commits_total %llu\n", (unsigned long long)q->commits);
        mb_head(&b, "volley_queue_writes_total", "counter", "Queue writes those groups carried");
        mb_printf(&b, "volley_queue_writes_total %llu\n", (unsigned long long)q->writes);
        mb_head(&b, "volley_queue_oldest_open_age_seconds", "gauge",
                "Age of the oldest message with open (ready or deferred) recipients; 0 when "
                "none");
        mb_printf(&b, "volley_queue_oldest_open_age_seconds %.3f\n",
                  q->oldest_ok ? q->oldest_open_age_s : 0.0);
        mb_head(&b, "volley_queue_open_messages_by_age", "gauge",
                "Messages with open recipients, of the oldest scanned (see "
                "volley_queue_age_scanned), whose age is at most age_le seconds");
        for (unsigned i = 0; i < 6; i++)
            mb_printf(&b, "volley_queue_open_messages_by_age{age_le=\"%g\"} %llu\n",
                      met_age_bounds_s[i], (unsigned long long)q->age_le[i]);
        mb_printf(&b, "volley_queue_open_messages_by_age{age_le=\"+Inf\"} %llu\n",
                  (unsigned long long)q->age_scanned);
        mb_head(&b, "volley_queue_age_scanned", "gauge",
                "Open messages the age figures were computed from (bounded per scrape)");
        mb_printf(&b, "volley_queue_age_scanned %llu\n", (unsigned long long)q->age_scanned);
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
