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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SHAPER_EGRESS_SLOTS (VL_EGRESS_ADDRS_MAX + 1u)   /* + "no egress" */

/* A flow: one destination domain asking for a policy's tokens (fair share). */
#define SHAPER_FLOWS        64u    /* domains tracked at once per policy */
#define SHAPER_FLOW_IDLE_MS 500u   /* a flow that has not asked this long is not waiting */
#define SHAPER_FAIR_QUANTUM 2u     /* tokens a flow may lead the slowest waiting one by */
struct shaper_flow {
    uint64_t key;                  /* the domain's hash; 0 = free */
    uint64_t served;               /* tokens taken (relative: see shaper_flow_get) */
    uint64_t ask_ms;               /* last asked (or queued where a session will ask) */
};

struct shaper_pol {
    pthread_mutex_t mu;
    const struct vl_shaping_policy *conf;   /* atomic: swapped by vl_shaper_update */
    const struct vl_shaping_policy *retired;   /* its copy once its name left (sh->retired) */
    char name[VL_SHAPING_NAME_BYTES];       /* the slot's identity across reloads */
    double rate;                   /* current msgs/s (0: unlimited) */
    double tokens;
    uint64_t tokens_ms;
    double conn_tokens;
    uint64_t conn_tokens_ms;
    uint64_t last_cut_ms, last_change_ms, last_pushback_ms;
    double cut_from;               /* the rate the last cut began at (fast recovery) */
    uint64_t suspend_until_ms;
    uint32_t conns[SHAPER_EGRESS_SLOTS];
    uint32_t conns_total;
    struct shaper_flow flows[SHAPER_FLOWS];   /* fair share among its domains */
};

struct shaper_addr {               /* egress address state (warm-up, weights) */
    uint64_t day;                  /* UTC day number (days since 1970) of sent_today */
    uint64_t sent_today;
    uint64_t first_day;            /* UTC day of its first warm-up message; 0 = none yet */
    bool dirty;                    /* changed since vl_shaper_warmup_get() last saw it */
    uint64_t picks;
};

struct shaper_retired {            /* copies of removed policies, freed at destroy */
    struct shaper_retired *next;
    struct vl_shaping_policy conf;
};

/* A table in force: the policies by slot. Immutable once published. */
struct vl_shaper_tab {
    const struct vl_shaping *s;
    int slot[VL_SHAPING_POLICIES_MAX];     /* the table's policy i -> its slot */
};

struct vl_shaper {
    struct vl_shaper_tab *tab;     /* atomic (acquire/release): the table in force */
    int dlog_fd;
    uint64_t start_ms;
    uint64_t start_wall_ms;        /* CLOCK_REALTIME at start_ms: warm-up days are UTC days */
    unsigned count;                /* slots in use (never shrinks: hosts hold slots) */
    struct shaper_pol *pol;        /* VL_SHAPING_POLICIES_MAX slots */
    struct shaper_retired *retired;   /* copies of removed policies (slots point at them) */
    pthread_mutex_t egress_mu;
    struct shaper_addr addrs[VL_EGRESS_ADDRS_MAX];
};

static uint64_t shaper_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A fresh slot for policy @p c (not yet published). */
static void shaper_slot_init(struct shaper_pol *p, const struct vl_shaping_policy *c,
                             uint64_t now_ms)
{
    snprintf(p->name, sizeof p->name, "%s", c->name);
    p->conf = c;
    p->rate = c->msgs_per_s;
    p->tokens = p->rate > 5.0 ? p->rate / 5.0 : 1.0;
    p->tokens_ms = now_ms;
    p->conn_tokens = c->conns_per_min > 10.0 ? c->conns_per_min / 10.0 : 1.0;
    p->conn_tokens_ms = now_ms;
    p->last_change_ms = now_ms;
    p->last_cut_ms = p->last_pushback_ms = p->suspend_until_ms = 0;
    p->cut_from = 0;
}

int vl_shaper_create(struct vl_shaper **out, const struct vl_shaping *s, int dlog_fd)
{
    struct vl_shaper *sh = calloc(1, sizeof *sh);
    struct vl_shaper_tab *tab = calloc(1, sizeof *tab);
    struct shaper_pol *pol = calloc(VL_SHAPING_POLICIES_MAX, sizeof *pol);
    if (!sh || !tab || !pol) {
        free(sh);
        free(tab);
        free(pol);
        return -ENOMEM;
    }
    tab->s = s;
    sh->tab = tab;
    sh->pol = pol;
    sh->dlog_fd = dlog_fd;
    sh->start_ms = shaper_now_ms();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    sh->start_wall_ms = (uint64_t)wall.tv_sec * 1000u + (uint64_t)wall.tv_nsec / 1000000u;
    sh->count = s ? s->policy_count : 0;
    pthread_mutex_init(&sh->egress_mu, NULL);
    for (unsigned i = 0; i < VL_SHAPING_POLICIES_MAX; i++)
        pthread_mutex_init(&sh->pol[i].mu, NULL);
    for (unsigned i = 0; i < sh->count; i++) {
        tab->slot[i] = (int)i;
        shaper_slot_init(&sh->pol[i], &s->policies[i], sh->start_ms);
    }
    *out = sh;
    return 0;
}

void vl_shaper_destroy(struct vl_shaper *sh)
{
    if (!sh)
        return;
    for (unsigned i = 0; i < VL_SHAPING_POLICIES_MAX; i++)
        pthread_mutex_destroy(&sh->pol[i].mu);
    pthread_mutex_destroy(&sh->egress_mu);
    for (struct shaper_retired *x = sh->retired, *next; x; x = next) {
        next = x->next;
        free(x);
    }
    free(sh->tab);
    free(sh->pol);
    free(sh);
}

static const struct vl_shaper_tab *shaper_tab(const struct vl_shaper *sh)
{
    return __atomic_load_n(&sh->tab, __ATOMIC_ACQUIRE);
}

/* The table's egress part (never NULL when @p sh is not). */
static const struct vl_shaping *shaper_s(const struct vl_shaper *sh)
{
    return shaper_tab(sh)->s;
}

static const struct vl_shaping_policy *shaper_conf(const struct shaper_pol *p)
{
    return __atomic_load_n(&p->conf, __ATOMIC_ACQUIRE);
}

int vl_shaper_policy(const struct vl_shaper *sh, const char *domain, const char *mx)
{
    if (!sh)
        return -1;
    const struct vl_shaper_tab *t = shaper_tab(sh);
    const struct vl_shaping_policy *p = t->s ? vl_shaping_match(t->s, domain, mx) : NULL;
    return p ? t->slot[p - t->s->policies] : -1;
}

const struct vl_shaping_policy *vl_shaper_conf(const struct vl_shaper *sh, int p)
{
    vl_assert(p >= 0 && (unsigned)p < __atomic_load_n(&sh->count, __ATOMIC_ACQUIRE));
    return shaper_conf(&sh->pol[p]);
}

const struct vl_shaping *vl_shaper_table(const struct vl_shaper *sh)
{
    return sh ? shaper_s(sh) : NULL;
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
    /* Fast recovery: below the rate the last cut began at, close half the gap
     * each quiet interval (plus the step); above it, probe by the step alone. */
    double step = c->increase;
    if (p->cut_from > p->rate)
        step += (p->cut_from - p->rate) / 2.0;
    double r = p->rate + step;
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

/* The UTC day number at monotonic @p now_ms. */
static uint64_t shaper_day(const struct vl_shaper *sh, uint64_t now_ms)
{
    uint64_t wall = sh->start_wall_ms + (now_ms > sh->start_ms ? now_ms - sh->start_ms : 0);
    return wall / 86400000u;
}

/* Warm-up: may @p e send one more message today? Counts it if so. Day N of
 * an address's plan is the N-th UTC day since its first warm-up message
 * (restored from the store across restarts: vl_shaper_warmup_set). */
static bool shaper_warmup_take(struct vl_shaper *sh, int e, uint64_t now_ms, bool take)
{
    if (e < 0)
        return true;
    const struct vl_egress_addr *a = &shaper_s(sh)->addrs[e];
    if (!a->warmup_count)
        return true;
    struct shaper_addr *st = &sh->addrs[e];
    uint64_t day = shaper_day(sh, now_ms);
    pthread_mutex_lock(&sh->egress_mu);
    if (st->day != day) {
        st->day = day;
        st->sent_today = 0;
    }
    uint64_t step = st->first_day && day > st->first_day ? day - st->first_day : 0;
    uint64_t cap = a->warmup_per_day[step < a->warmup_count ? step : a->warmup_count - 1];
    bool ok = st->sent_today < cap;
    if (ok && take) {
        st->sent_today++;
        if (!st->first_day)
            st->first_day = day;
        st->dirty = true;
    }
    pthread_mutex_unlock(&sh->egress_mu);
    return ok;
}

bool vl_shaper_warmup_get(struct vl_shaper *sh, unsigned e, struct vl_warmup_count *out)
{
    const struct vl_shaping *s = shaper_s(sh);
    if (!s || e >= s->addr_count)
        return false;
    struct shaper_addr *st = &sh->addrs[e];
    pthread_mutex_lock(&sh->egress_mu);
    bool dirty = st->dirty;
    st->dirty = false;
    out->first_day = st->first_day;
    out->day = st->day;
    out->sent = st->sent_today;
    pthread_mutex_unlock(&sh->egress_mu);
    snprintf(out->ip, sizeof out->ip, "%s", s->addrs[e].ip);
    return dirty;
}

void vl_shaper_warmup_set(struct vl_shaper *sh, const struct vl_warmup_count *in)
{
    const struct vl_shaping *s = shaper_s(sh);
    for (unsigned e = 0; s && e < s->addr_count; e++) {
        if (strcmp(s->addrs[e].ip, in->ip))
            continue;
        struct shaper_addr *st = &sh->addrs[e];
        pthread_mutex_lock(&sh->egress_mu);
        st->first_day = in->first_day;
        st->day = in->day;
        st->sent_today = in->sent;
        st->dirty = false;
        pthread_mutex_unlock(&sh->egress_mu);
    }
}

uint64_t vl_shaper_today(const struct vl_shaper *sh)
{
    return shaper_day(sh, shaper_now_ms());
}

/* Under p->mu: the fewest tokens taken by a waiting flow other than @p self
 * (UINT64_MAX: none waits). A flow waits while it asked recently: one that
 * cannot ask (no connection to ask from) holds nobody back for long. */
static uint64_t shaper_flow_min(const struct shaper_pol *p, const struct shaper_flow *self,
                                uint64_t now_ms)
{
    uint64_t min = UINT64_MAX;
    for (unsigned i = 0; i < SHAPER_FLOWS; i++) {
        const struct shaper_flow *f = &p->flows[i];
        if (f != self && f->key && now_ms - f->ask_ms < SHAPER_FLOW_IDLE_MS && f->served < min)
            min = f->served;
    }
    return min;
}

/* Under p->mu: flow @p key's record, made (or woken) level with the slowest
 * waiting flow, so that a newcomer or a returning domain neither owes nor is
 * owed what others took meanwhile; the least recently asking one makes room. */
static struct shaper_flow *shaper_flow_get(struct shaper_pol *p, uint64_t key, uint64_t now_ms)
{
    struct shaper_flow *f = NULL, *oldest = &p->flows[0];
    for (unsigned i = 0; i < SHAPER_FLOWS && !f; i++) {
        if (p->flows[i].key == key)
            f = &p->flows[i];
        else if (oldest->key && (!p->flows[i].key || p->flows[i].ask_ms < oldest->ask_ms))
            oldest = &p->flows[i];
    }
    if (!f || now_ms - f->ask_ms >= SHAPER_FLOW_IDLE_MS) {
        if (!f) {
            f = oldest;
            f->key = key;
        }
        uint64_t min = shaper_flow_min(p, f, now_ms);
        f->served = min == UINT64_MAX ? 0 : min;
    }
    f->ask_ms = now_ms;
    return f;
}

void vl_shaper_flow_touch(struct vl_shaper *sh, int p, uint64_t flow, uint64_t now_ms)
{
    if (!sh || p < 0 || !flow)
        return;
    struct shaper_pol *pp = &sh->pol[p];
    pthread_mutex_lock(&pp->mu);
    shaper_flow_get(pp, flow, now_ms);
    pthread_mutex_unlock(&pp->mu);
}

uint64_t vl_shaper_msg_take(struct vl_shaper *sh, int p, int e, uint64_t now_ms)
{
    return vl_shaper_msg_take_flow(sh, p, e, 0, now_ms);
}

uint64_t vl_shaper_msg_take_flow(struct vl_shaper *sh, int p, int e, uint64_t flow,
                                 uint64_t now_ms)
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
        struct shaper_flow *f = flow ? shaper_flow_get(pp, flow, now_ms) : NULL;
        double burst = pp->rate > 5.0 ? pp->rate / 5.0 : 1.0;
        shaper_refill(&pp->tokens, &pp->tokens_ms, pp->rate, burst, now_ms);
        if (pp->tokens < 1.0) {
            wait = (uint64_t)ceil((1.0 - pp->tokens) * 1000.0 / pp->rate);
        } else if (f && f->served >= SHAPER_FAIR_QUANTUM &&
                   f->served - SHAPER_FAIR_QUANTUM >= shaper_flow_min(pp, f, now_ms)) {
            /* ahead of a waiting domain: leave the token to it (deficit round
             * robin over the domains that wait on this policy) */
            wait = (uint64_t)ceil(1000.0 / pp->rate);
        } else {
            pp->tokens -= 1.0;
            if (f)
                f->served++;
        }
    }
    pthread_mutex_unlock(&pp->mu);
    if (wait == 0)
        shaper_warmup_take(sh, e, now_ms, true);
    return wait;
}

int vl_shaper_egress_pick(struct vl_shaper *sh, int p, uint64_t now_ms)
{
    const struct vl_shaping *s = sh ? shaper_s(sh) : NULL;
    if (!s || !s->addr_count || s->default_pool < 0)
        return -1;
    int pool = s->default_pool;
    if (p >= 0 && shaper_conf(&sh->pol[p])->pool[0])
        for (unsigned i = 0; i < s->pool_count; i++)
            if (!strcmp(s->pools[i].name, shaper_conf(&sh->pol[p])->pool))
                pool = (int)i;
    unsigned cap = p >= 0 ? shaper_conf(&sh->pol[p])->conns_per_ip : 0;
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
 * scaled down with the rate after cuts (AIMD closes extra connections), with
 * SHAPER_CONN_HEADROOM so that the first small cuts keep every connection
 * (a connection's throughput is bounded by its round trips: closing one at a
 * 10% cut can cost more than the cut, and reconnecting costs a handshake),
 * at least 1; 0 = no cap. */
#define SHAPER_CONN_HEADROOM 1.25
static unsigned shaper_conns_allowed(const struct shaper_pol *p)
{
    const struct vl_shaping_policy *c = p->conf;
    if (!c->conns_per_ip)
        return 0;
    if (!c->adaptive || c->msgs_per_s <= 0 || p->rate >= c->msgs_per_s)
        return c->conns_per_ip;
    double share = SHAPER_CONN_HEADROOM * p->rate / c->msgs_per_s;
    unsigned allowed = (unsigned)ceil((double)c->conns_per_ip * (share < 1.0 ? share : 1.0));
    return allowed ? allowed : 1;
}

uint64_t vl_shaper_conn_acquire(struct vl_shaper *sh, int p, int e, uint64_t now_ms)
{
    if (!sh || p < 0)
        return 0;
    struct shaper_pol *pp = &sh->pol[p];
    const struct vl_shaping_policy *c = shaper_conf(pp);
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
    if (!shaper_conf(pp)->adaptive)
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
    const struct vl_shaping_policy *c = shaper_conf(pp);
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
        pp->cut_from = pp->rate;
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

/* ---- live reload (vl_shaper_update) ---------------------------------------------- */

/* Append "; " + printf to @p out (bounded). */
__attribute__((format(printf, 3, 4)))
static void shaper_say(char *out, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(out);
    if (n + 3 >= cap)
        return;
    if (n) {
        memcpy(out + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - n, fmt, ap);
    va_end(ap);
}

/* What differs between two versions of one policy, for the reload log. */
static void shaper_diff(const struct vl_shaping_policy *a, const struct vl_shaping_policy *b,
                        char *out, size_t cap)
{
    char d[400] = "";
    size_t n = 0;
#define DIFF(cond, ...)                                                                \
    if ((cond) && n < sizeof d - 60)                                                   \
        n += (size_t)snprintf(d + n, sizeof d - n, __VA_ARGS__)
    DIFF(a->msgs_per_s != b->msgs_per_s, " msgs-per-sec %g->%g", a->msgs_per_s, b->msgs_per_s);
    DIFF(a->conns_per_ip != b->conns_per_ip, " conns-per-ip %u->%u", a->conns_per_ip,
         b->conns_per_ip);
    DIFF(a->msgs_per_conn != b->msgs_per_conn, " msgs-per-conn %u->%u", a->msgs_per_conn,
         b->msgs_per_conn);
    DIFF(a->conns_per_min != b->conns_per_min, " conns-per-min %g->%g", a->conns_per_min,
         b->conns_per_min);
    DIFF(a->rcpts_per_txn != b->rcpts_per_txn, " rcpts-per-txn %u->%u", a->rcpts_per_txn,
         b->rcpts_per_txn);
    DIFF(a->retry_ms_base != b->retry_ms_base || a->retry_ms_max != b->retry_ms_max,
         " retry");
    DIFF(a->tls_set != b->tls_set || a->tls != b->tls, " tls %s->%s",
         a->tls_set ? vl_tls_level_name(a->tls) : "default",
         b->tls_set ? vl_tls_level_name(b->tls) : "default");
    DIFF(strcmp(a->pool, b->pool), " pool '%s'->'%s'", a->pool, b->pool);
    DIFF(a->adaptive != b->adaptive || a->decrease != b->decrease ||
         a->increase != b->increase || a->msgs_per_s_min != b->msgs_per_s_min ||
         a->increase_ms != b->increase_ms || a->hold_down_ms != b->hold_down_ms ||
         a->pattern_count != b->pattern_count ||
         memcmp(a->patterns, b->patterns, a->pattern_count * sizeof a->patterns[0]),
         " adaptive");
    DIFF(a->domain_count != b->domain_count || a->mx_count != b->mx_count ||
         memcmp(a->domains, b->domains, a->domain_count * sizeof a->domains[0]) ||
         memcmp(a->mx_suffixes, b->mx_suffixes, a->mx_count * sizeof a->mx_suffixes[0]),
         " match");
#undef DIFF
    if (n)
        shaper_say(out, cap, "policy %s:%s", b->name, d);
}

int vl_shaper_update(struct vl_shaper *sh, const struct vl_shaping *s,
                     struct vl_shaper_tab **old, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    *old = NULL;
    struct vl_shaper_tab *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->s = s;
    unsigned count = sh->count;
    bool fresh[VL_SHAPING_POLICIES_MAX] = { false };
    for (unsigned i = 0; s && i < s->policy_count; i++) {
        unsigned j = 0;
        while (j < count && strcmp(sh->pol[j].name, s->policies[i].name))
            j++;
        if (j == count) {
            if (count == VL_SHAPING_POLICIES_MAX) {
                free(t);           /* slots are for good (hosts hold them): restart */
                return -ENOSPC;
            }
            fresh[count++] = true;
        }
        t->slot[i] = (int)j;
    }
    uint64_t now = shaper_now_ms();
    for (unsigned j = 0; j < count; j++) {
        struct shaper_pol *p = &sh->pol[j];
        const struct vl_shaping_policy *c = NULL;
        for (unsigned i = 0; s && i < s->policy_count && !c; i++)
            if (t->slot[i] == (int)j)
                c = &s->policies[i];
        pthread_mutex_lock(&p->mu);
        if (fresh[j] && c) {
            shaper_slot_init(p, c, now);
            shaper_say(out, cap, "policy %s: added (%g msgs/s)", c->name, c->msgs_per_s);
        } else if (c) {
            const struct vl_shaping_policy *o = p->conf;
            shaper_diff(o, c, out, cap);
            /* AIMD carries over: a rate cut below the old limit stays cut (within the
             * new bounds); a policy at its limit (or not adaptive) takes the new one. */
            double r = c->msgs_per_s;
            if (o->adaptive && c->adaptive && p->rate > 0 && p->rate < o->msgs_per_s) {
                r = p->rate < c->msgs_per_s ? p->rate : c->msgs_per_s;
                if (r < c->msgs_per_s_min)
                    r = c->msgs_per_s_min;
            }
            __atomic_store_n(&p->conf, c, __ATOMIC_RELEASE);
            if (r != p->rate)
                shaper_set_rate(sh, p, r, now, "config reload", 13);
            double burst = r > 5.0 ? r / 5.0 : 1.0;
            if (p->tokens > burst)
                p->tokens = burst;
        } else if (!p->retired) {
            struct shaper_retired *x = malloc(sizeof *x);
            if (x) {               /* else keep the old table's: the caller keeps it too */
                x->conf = *p->conf;
                x->conf.domain_count = x->conf.mx_count = 0;   /* matches nothing */
                x->next = sh->retired;
                sh->retired = x;
                p->retired = &x->conf;
                __atomic_store_n(&p->conf, &x->conf, __ATOMIC_RELEASE);
                shaper_say(out, cap, "policy %s: removed (its open connections count "
                           "until they close)", p->name);
            }
        }
        if (c)
            p->retired = NULL;
        pthread_mutex_unlock(&p->mu);
    }
    __atomic_store_n(&sh->count, count, __ATOMIC_RELEASE);
    *old = __atomic_exchange_n(&sh->tab, t, __ATOMIC_ACQ_REL);
    return 0;
}

void vl_shaper_tab_free(struct vl_shaper_tab *t)
{
    free(t);
}
