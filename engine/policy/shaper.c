/*
 * shaper.c - runtime shaping state (see shaper.h).
 *
 * Token buckets: msgs-per-sec refills at the policy's current rate with a
 * burst of a fifth of a second's worth (at least 1), so a fresh or idle
 * destination does not get a second's worth at once; conns-per-min refills at
 * rate/60 with a burst of a tenth of a minute's worth (at least 1).
 *
 * AIMD (adaptive policies): a push-back multiplies the rate by `decrease`,
 * not below `min`, at most once per hold-down (one deferral seen by several
 * connections at once cuts once); every `interval` with no push-back since
 * the last change adds `increase`, up to msgs-per-sec. Changes are logged.
 *
 * Invariant: a policy's open count per egress address equals its acquires
 * minus its releases, never negative (asserted).
 */
#include "shaper.h"

#include "log.h"
#include "volley/error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SHAPER_EGRESS_SLOTS (VL_EGRESS_ADDRS_MAX + 1u)   /* + "no egress" */

struct shaper_pol {
    pthread_mutex_t mu;
    const struct vl_shaping_policy *conf;
    double rate;                   /* current msgs/s (0: unlimited) */
    double tokens;
    uint64_t tokens_ms;
    double conn_tokens;
    uint64_t conn_tokens_ms;
    uint64_t last_cut_ms, last_change_ms, last_pushback_ms;
    uint64_t suspend_until_ms;
    uint32_t conns[SHAPER_EGRESS_SLOTS];
    uint32_t conns_total;
};

struct shaper_addr {               /* egress address state (warm-up, weights) */
    uint64_t day;                  /* warm-up day of sent_today */
    uint64_t sent_today;
    uint64_t picks;
};

struct vl_shaper {
    const struct vl_shaping *s;
    int dlog_fd;
    uint64_t start_ms;
    unsigned count;
    struct shaper_pol *pol;
    pthread_mutex_t egress_mu;
    struct shaper_addr addrs[VL_EGRESS_ADDRS_MAX];
};

static uint64_t shaper_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int vl_shaper_create(struct vl_shaper **out, const struct vl_shaping *s, int dlog_fd)
{
    struct vl_shaper *sh = calloc(1, sizeof *sh);
    if (!sh)
        return -ENOMEM;
    sh->s = s;
    sh->dlog_fd = dlog_fd;
    sh->start_ms = shaper_now_ms();
    sh->count = s ? s->policy_count : 0;
    pthread_mutex_init(&sh->egress_mu, NULL);
    if (sh->count) {
        sh->pol = calloc(sh->count, sizeof *sh->pol);
        if (!sh->pol) {
            free(sh);
            return -ENOMEM;
        }
    }
    for (unsigned i = 0; i < sh->count; i++) {
        struct shaper_pol *p = &sh->pol[i];
        pthread_mutex_init(&p->mu, NULL);
        p->conf = &s->policies[i];
        p->rate = p->conf->msgs_per_s;
        p->tokens = p->rate > 5.0 ? p->rate / 5.0 : 1.0;
        p->tokens_ms = sh->start_ms;
        p->conn_tokens = p->conf->conns_per_min > 10.0 ? p->conf->conns_per_min / 10.0 : 1.0;
        p->conn_tokens_ms = sh->start_ms;
        p->last_change_ms = sh->start_ms;
    }
    *out = sh;
    return 0;
}

void vl_shaper_destroy(struct vl_shaper *sh)
{
    if (!sh)
        return;
    for (unsigned i = 0; i < sh->count; i++)
        pthread_mutex_destroy(&sh->pol[i].mu);
    pthread_mutex_destroy(&sh->egress_mu);
    free(sh->pol);
    free(sh);
}

int vl_shaper_policy(const struct vl_shaper *sh, const char *domain, const char *mx)
{
    if (!sh || !sh->count)
        return -1;
    const struct vl_shaping_policy *p = vl_shaping_match(sh->s, domain, mx);
    return p ? (int)(p - sh->s->policies) : -1;
}

const struct vl_shaping_policy *vl_shaper_conf(const struct vl_shaper *sh, int p)
{
    vl_assert(p >= 0 && (unsigned)p < sh->count);
    return sh->pol[p].conf;
}

const struct vl_shaping *vl_shaper_table(const struct vl_shaper *sh)
{
    return sh ? sh->s : NULL;
}

/* ---- the delivery-log line of a change --------------------------------------- */

static void shaper_dlog(struct vl_shaper *sh, const char *event, const char *policy,
                        double old_rate, double new_rate, uint64_t for_ms, const char *why,
                        size_t why_len)
{
    if (sh->dlog_fd < 0)
        return;
    char text[200];
    size_t n = 0;
    for (size_t i = 0; i < why_len && n + 1 < sizeof text; i++) {
        unsigned char ch = (unsigned char)why[i];
        text[n++] = ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
    }
    text[n] = '\0';
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[512];
    int len = snprintf(line, sizeof line,
                       "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"event\":\"%s\","
                       "\"policy\":\"%s\",\"old\":%.3f,\"new\":%.3f,\"for_ms\":%llu,"
                       "\"why\":\"%s\"}\n", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, event, policy,
                       old_rate, new_rate, (unsigned long long)for_ms, text);
    if (len > 0 && (size_t)len < sizeof line && write(sh->dlog_fd, line, (size_t)len) < 0)
        vl_log(VL_LOG_WARN, "evt=dlog_write_failed what=shaping err=\"%s\"", strerror(errno));
}

/* Under p->mu: move the rate to @p rate, log it. */
static void shaper_set_rate(struct vl_shaper *sh, struct shaper_pol *p, double rate,
                            uint64_t now_ms, const char *why, size_t why_len)
{
    double old = p->rate;
    p->rate = rate;
    p->last_change_ms = now_ms;
    vl_log(VL_LOG_WARN, "evt=shaping_rate policy=%s old=%.3f new=%.3f why=\"%.*s\"",
           p->conf->name, old, rate, (int)(why_len > 160 ? 160 : why_len), why);
    shaper_dlog(sh, "rate", p->conf->name, old, rate, 0, why, why_len);
}

/* Under p->mu: additive increase after a quiet interval. */
static void shaper_raise(struct vl_shaper *sh, struct shaper_pol *p, uint64_t now_ms)
{
    const struct vl_shaping_policy *c = p->conf;
    if (!c->adaptive || p->rate >= c->msgs_per_s)
        return;
    if (now_ms - p->last_change_ms < c->increase_ms ||
        now_ms - p->last_pushback_ms < c->increase_ms)
        return;
    double r = p->rate + c->increase;
    shaper_set_rate(sh, p, r > c->msgs_per_s ? c->msgs_per_s : r, now_ms,
                    "no push-back for an interval", 28);
}

static void shaper_refill(double *tokens, uint64_t *at_ms, double rate, double burst,
                          uint64_t now_ms)
{
    if (now_ms > *at_ms) {
        *tokens += rate * (double)(now_ms - *at_ms) / 1000.0;
        if (*tokens > burst)
            *tokens = burst;
        *at_ms = now_ms;
    }
}

/* Warm-up: may @p e send one more message today? Counts it if so. */
static bool shaper_warmup_take(struct vl_shaper *sh, int e, uint64_t now_ms, bool take)
{
    if (e < 0)
        return true;
    const struct vl_egress_addr *a = &sh->s->addrs[e];
    if (!a->warmup_count)
        return true;
    struct shaper_addr *st = &sh->addrs[e];
    uint64_t day = (now_ms - sh->start_ms) / 86400000u;
    pthread_mutex_lock(&sh->egress_mu);
    if (st->day != day) {
        st->day = day;
        st->sent_today = 0;
    }
    uint64_t cap = a->warmup_per_day[day < a->warmup_count ? day : a->warmup_count - 1];
    bool ok = st->sent_today < cap;
    if (ok && take)
        st->sent_today++;
    pthread_mutex_unlock(&sh->egress_mu);
    return ok;
}

uint64_t vl_shaper_msg_take(struct vl_shaper *sh, int p, int e, uint64_t now_ms)
{
    if (!shaper_warmup_take(sh, e, now_ms, false))
        return 60000;                  /* capped for today: ask again in a minute */
    if (!sh || p < 0)
        return 0;
    struct shaper_pol *pp = &sh->pol[p];
    uint64_t wait = 0;
    pthread_mutex_lock(&pp->mu);
    if (pp->suspend_until_ms > now_ms) {
        wait = pp->suspend_until_ms - now_ms;
    } else if (pp->rate > 0) {
        shaper_raise(sh, pp, now_ms);
        double burst = pp->rate > 5.0 ? pp->rate / 5.0 : 1.0;
        shaper_refill(&pp->tokens, &pp->tokens_ms, pp->rate, burst, now_ms);
        if (pp->tokens >= 1.0)
            pp->tokens -= 1.0;
        else
            wait = (uint64_t)ceil((1.0 - pp->tokens) * 1000.0 / pp->rate);
    }
    pthread_mutex_unlock(&pp->mu);
    if (wait == 0)
        shaper_warmup_take(sh, e, now_ms, true);
    return wait;
}

int vl_shaper_egress_pick(struct vl_shaper *sh, int p, uint64_t now_ms)
{
    const struct vl_shaping *s = sh ? sh->s : NULL;
    if (!s || !s->addr_count || s->default_pool < 0)
        return -1;
    int pool = s->default_pool;
    if (p >= 0 && sh->pol[p].conf->pool[0])
        for (unsigned i = 0; i < s->pool_count; i++)
            if (!strcmp(s->pools[i].name, sh->pol[p].conf->pool))
                pool = (int)i;
    unsigned cap = p >= 0 ? sh->pol[p].conf->conns_per_ip : 0;
    int best = -1;
    double best_load = 0;
    for (unsigned i = 0; i < s->addr_count; i++) {
        if (s->addrs[i].pool != (unsigned)pool || !shaper_warmup_take(sh, (int)i, now_ms, false))
            continue;
        if (cap && p >= 0 && __atomic_load_n(&sh->pol[p].conns[i], __ATOMIC_RELAXED) >= cap)
            continue;
        double load = (double)__atomic_load_n(&sh->addrs[i].picks, __ATOMIC_RELAXED) /
                      (double)s->addrs[i].weight;
        if (best < 0 || load < best_load) {
            best = (int)i;
            best_load = load;
        }
    }
    if (best < 0)                       /* all capped: the first of the pool (it waits) */
        for (unsigned i = 0; i < s->addr_count && best < 0; i++)
            if (s->addrs[i].pool == (unsigned)pool)
                best = (int)i;
    if (best >= 0)
        __atomic_fetch_add(&sh->addrs[best].picks, 1, __ATOMIC_RELAXED);
    return best;
}

static unsigned shaper_slot(int e) { return e < 0 ? VL_EGRESS_ADDRS_MAX : (unsigned)e; }

/* Under p->mu: connections allowed per source address now: conns-per-ip,
 * scaled down with the rate after cuts (AIMD closes extra connections), at
 * least 1; 0 = no cap. */
static unsigned shaper_conns_allowed(const struct shaper_pol *p)
{
    const struct vl_shaping_policy *c = p->conf;
    if (!c->conns_per_ip)
        return 0;
    if (!c->adaptive || c->msgs_per_s <= 0 || p->rate >= c->msgs_per_s)
        return c->conns_per_ip;
    unsigned allowed = (unsigned)ceil((double)c->conns_per_ip * p->rate / c->msgs_per_s);
    return allowed ? allowed : 1;
}

uint64_t vl_shaper_conn_acquire(struct vl_shaper *sh, int p, int e, uint64_t now_ms)
{
    if (!sh || p < 0)
        return 0;
    struct shaper_pol *pp = &sh->pol[p];
    const struct vl_shaping_policy *c = pp->conf;
    unsigned slot = shaper_slot(e);
    uint64_t wait = 0;
    pthread_mutex_lock(&pp->mu);
    if (pp->suspend_until_ms > now_ms) {
        wait = pp->suspend_until_ms - now_ms;
    } else if (shaper_conns_allowed(pp) && pp->conns[slot] >= shaper_conns_allowed(pp)) {
        wait = VL_SHAPER_WAIT_CLOSE;
    } else if (c->conns_per_min > 0) {
        double burst = c->conns_per_min > 10.0 ? c->conns_per_min / 10.0 : 1.0;
        shaper_refill(&pp->conn_tokens, &pp->conn_tokens_ms, c->conns_per_min / 60.0, burst,
                      now_ms);
        if (pp->conn_tokens >= 1.0)
            pp->conn_tokens -= 1.0;
        else
            wait = (uint64_t)ceil((1.0 - pp->conn_tokens) * 60000.0 / c->conns_per_min);
    }
    if (wait == 0) {
        __atomic_store_n(&pp->conns[slot], pp->conns[slot] + 1, __ATOMIC_RELAXED);
        pp->conns_total++;
    }
    pthread_mutex_unlock(&pp->mu);
    return wait;
}

void vl_shaper_conn_release(struct vl_shaper *sh, int p, int e)
{
    if (!sh || p < 0)
        return;
    struct shaper_pol *pp = &sh->pol[p];
    unsigned slot = shaper_slot(e);
    pthread_mutex_lock(&pp->mu);
    vl_assert(pp->conns[slot] > 0 && pp->conns_total > 0);
    __atomic_store_n(&pp->conns[slot], pp->conns[slot] - 1, __ATOMIC_RELAXED);
    pp->conns_total--;
    pthread_mutex_unlock(&pp->mu);
}

bool vl_shaper_conn_surplus(struct vl_shaper *sh, int p, int e)
{
    if (!sh || p < 0)
        return false;
    struct shaper_pol *pp = &sh->pol[p];
    if (!pp->conf->adaptive)
        return false;
    pthread_mutex_lock(&pp->mu);
    unsigned allowed = shaper_conns_allowed(pp);
    bool surplus = allowed && pp->conns[shaper_slot(e)] > allowed;
    pthread_mutex_unlock(&pp->mu);
    return surplus;
}

static bool shaper_has(const char *text, size_t len, const char *pat)
{
    size_t n = strlen(pat);
    for (size_t i = 0; n && i + n <= len; i++)
        if (!strncasecmp(text + i, pat, n))
            return true;
    return false;
}

bool vl_shaper_feedback(struct vl_shaper *sh, int p, uint16_t code, const char *status,
                        const char *text, size_t text_len, uint64_t now_ms)
{
    if (!sh || p < 0)
        return false;
    struct shaper_pol *pp = &sh->pol[p];
    const struct vl_shaping_policy *c = pp->conf;
    const struct vl_shaping_pattern *suspend = NULL;
    bool pushback = code == 421 || (status && !strncmp(status, "4.7.", 4));
    for (unsigned i = 0; i < c->pattern_count; i++)
        if (text && shaper_has(text, text_len, c->patterns[i].text)) {
            pushback = true;
            if (c->patterns[i].suspend_ms)
                suspend = &c->patterns[i];
        }
    if (!pushback)
        return false;
    pthread_mutex_lock(&pp->mu);
    pp->last_pushback_ms = now_ms;
    if (suspend && pp->suspend_until_ms < now_ms + suspend->suspend_ms) {
        pp->suspend_until_ms = now_ms + suspend->suspend_ms;
        vl_log(VL_LOG_WARN, "evt=shaping_suspend policy=%s for_ms=%llu pattern=\"%s\"",
               c->name, (unsigned long long)suspend->suspend_ms, suspend->text);
        shaper_dlog(sh, "suspend", c->name, pp->rate, 0, suspend->suspend_ms, text ? text : "",
                    text ? text_len : 0);
    }
    if (c->adaptive && pp->rate > 0 &&
        (pp->last_cut_ms == 0 || now_ms - pp->last_cut_ms >= c->hold_down_ms)) {
        double r = pp->rate * c->decrease;
        pp->last_cut_ms = now_ms;
        shaper_set_rate(sh, pp, r < c->msgs_per_s_min ? c->msgs_per_s_min : r, now_ms,
                        text ? text : "", text ? text_len : 0);
        if (pp->tokens > 1.0)
            pp->tokens = 1.0;          /* no burst right after a cut */
    }
    pthread_mutex_unlock(&pp->mu);
    return true;
}

double vl_shaper_rate(struct vl_shaper *sh, int p)
{
    if (!sh || p < 0)
        return 0;
    pthread_mutex_lock(&sh->pol[p].mu);
    double r = sh->pol[p].rate;
    pthread_mutex_unlock(&sh->pol[p].mu);
    return r;
}
