/*
 * adm.c - operator holds on destination domains (see adm.h): LMDB
 * DATA/admin for durability, an in-memory table for the shards' lookups.
 * Record: key = kind byte + lowercase domain; value = "<time_ms> <note>".
 */
#include "adm.h"

#include "volley/addr.h"
#include "volley/error.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define ADM_MAP_BYTES (64u << 20)

struct adm {
    MDB_env *env;
    MDB_dbi dbi;
    pthread_rwlock_t lock;
    atomic_uint count;             /* holds[0..count): read under lock, count also bare */
    atomic_uint scoped[ADM_SCOPES];   /* holds per scope (the route's fast paths) */
    struct adm_hold holds[ADM_HOLDS_MAX];
};

static _Atomic(struct adm *) adm_proc;
static pthread_mutex_t adm_open_mu = PTHREAD_MUTEX_INITIALIZER;

static int adm_err(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == MDB_NOTFOUND)
        return VL_E_NOTFOUND;
    if (rc == MDB_MAP_FULL)
        return VL_E_QUEUE_FULL;
    return rc > 0 && rc < 4096 ? -rc : VL_E_STORAGE;
}

static const char *const adm_names[ADM_KINDS] = { "none", "suspend", "bounce", "purge" };

const char *adm_kind_name(enum adm_kind k)
{
    return (unsigned)k < ADM_KINDS ? adm_names[k] : "?";
}

enum adm_kind adm_kind_parse(const char *s)
{
    for (unsigned k = ADM_SUSPEND; k < ADM_KINDS; k++)
        if (!strcmp(s, adm_names[k]))
            return (enum adm_kind)k;
    return ADM_NONE;
}

static void adm_lower(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[n] = '\0';
}

static const char *const adm_scope_pfx[ADM_SCOPES] = { "", "c:", "s:", "m:", "a:", "t:" };

static enum adm_scope adm_scope_of(const char *key)
{
    for (unsigned sc = ADM_CAMPAIGN; sc < ADM_SCOPES; sc++)
        if (!strncmp(key, adm_scope_pfx[sc], 2))
            return (enum adm_scope)sc;
    return ADM_DOMAIN;
}

/* Recount holds per scope (under the write lock, or before publishing). */
static void adm_recount(struct adm *a)
{
    unsigned per[ADM_SCOPES] = { 0 }, n = atomic_load(&a->count);
    for (unsigned i = 0; i < n; i++)
        per[a->holds[i].scope]++;
    for (unsigned sc = 0; sc < ADM_SCOPES; sc++)
        atomic_store(&a->scoped[sc], per[sc]);
}

static int adm_load(struct adm *a)
{
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(a->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return adm_err(rc);
    rc = mdb_cursor_open(txn, a->dbi, &c);
    if (rc) {
        mdb_txn_abort(txn);
        return adm_err(rc);
    }
    MDB_val k, v;
    unsigned n = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && n < ADM_HOLDS_MAX;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const char *kp = k.mv_data;
        if (k.mv_size < 2 || k.mv_size > ADM_DOMAIN_MAX + 1 || (unsigned char)kp[0] >= ADM_KINDS
            || kp[0] == ADM_NONE)
            continue;                               /* not ours: skipped */
        struct adm_hold *h = &a->holds[n];
        memset(h, 0, sizeof *h);
        h->kind = (enum adm_kind)kp[0];
        memcpy(h->domain, kp + 1, k.mv_size - 1);
        h->scope = adm_scope_of(h->domain);
        char val[ADM_NOTE_MAX + 32];
        size_t vl = v.mv_size < sizeof val - 1 ? v.mv_size : sizeof val - 1;
        memcpy(val, v.mv_data, vl);
        val[vl] = '\0';
        char *sp = strchr(val, ' ');
        h->time_ms = strtoull(val, NULL, 10);
        snprintf(h->note, sizeof h->note, "%s", sp ? sp + 1 : "");
        n++;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    atomic_store(&a->count, n);
    adm_recount(a);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : adm_err(rc);
}

int adm_open(const char *data_dir, bool create)
{
    pthread_mutex_lock(&adm_open_mu);
    int rc = 0;
    if (atomic_load(&adm_proc))
        goto out;
    char path[4096];
    snprintf(path, sizeof path, "%s/admin", data_dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (!create)
            goto out;
        if ((mkdir(data_dir, 0755) != 0 && errno != EEXIST) ||
            (mkdir(path, 0755) != 0 && errno != EEXIST)) {
            rc = -errno;
            goto out;
        }
    }
    struct adm *a = calloc(1, sizeof *a);
    if (!a) {
        rc = -ENOMEM;
        goto out;
    }
    pthread_rwlock_init(&a->lock, NULL);
    MDB_txn *txn = NULL;
    rc = mdb_env_create(&a->env);
    if (!rc)
        rc = mdb_env_set_mapsize(a->env, ADM_MAP_BYTES);
    if (!rc)
        rc = mdb_env_open(a->env, path, MDB_NOTLS, 0644);
    if (!rc)
        rc = mdb_txn_begin(a->env, NULL, 0, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, NULL, 0, &a->dbi);
    if (!rc) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (txn)
        mdb_txn_abort(txn);
    rc = adm_err(rc);
    if (!rc)
        rc = adm_load(a);
    if (rc) {
        if (a->env)
            mdb_env_close(a->env);
        pthread_rwlock_destroy(&a->lock);
        free(a);
        goto out;
    }
    atomic_store(&adm_proc, a);
out:
    pthread_mutex_unlock(&adm_open_mu);
    return rc;
}

struct adm *adm_get(void)
{
    return atomic_load_explicit(&adm_proc, memory_order_acquire);
}

void adm_close(void)
{
    struct adm *a = atomic_exchange(&adm_proc, NULL);
    if (!a)
        return;
    mdb_env_close(a->env);
    pthread_rwlock_destroy(&a->lock);
    free(a);
}

bool adm_active(const struct adm *a)
{
    return a && atomic_load_explicit(&a->count, memory_order_relaxed) != 0;
}

static int adm_find(const struct adm *a, enum adm_kind kind, const char *dom)
{
    unsigned n = atomic_load_explicit(&a->count, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++)
        if (a->holds[i].kind == kind && !strcmp(a->holds[i].domain, dom))
            return (int)i;
    return -1;
}

const char *adm_scope_name(enum adm_scope sc)
{
    static const char *const n[ADM_SCOPES] = { "domain", "campaign", "sender", "mx",
                                               "egress", "tenant" };
    return (unsigned)sc < ADM_SCOPES ? n[sc] : "?";
}

const char *adm_hold_value(const struct adm_hold *h)
{
    return h->domain + strlen(adm_scope_pfx[h->scope]);
}

/* The key of @p value in @p scope into @p dom. @return its length or VL_E_INVALID. */
static int adm_norm(enum adm_scope scope, const char *value, char *dom)
{
    size_t len = value ? strlen(value) : 0;
    if (len == 0 || (unsigned)scope >= ADM_SCOPES || len + 2 > ADM_DOMAIN_MAX)
        return VL_E_INVALID;
    if (scope == ADM_DOMAIN && vl_domain_check(value, len, NULL) < 0)
        return VL_E_INVALID;
    if (scope == ADM_CAMPAIGN || scope == ADM_TENANT) {
        if (len > 64)
            return VL_E_INVALID;
        for (size_t i = 0; i < len; i++) {
            char c = value[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || c == ':'))
                return VL_E_INVALID;
        }
    }
    if (scope == ADM_SENDER) {
        struct vl_addr pa;
        if (vl_addr_parse(value, len, &pa, NULL) < 0)
            return VL_E_INVALID;
    }
    if (scope == ADM_MX) {                       /* an MX suffix or a policy name */
        if (value[0] == '.' || value[len - 1] == '.')
            return VL_E_INVALID;
        for (size_t i = 0; i < len; i++) {
            char c = value[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-'))
                return VL_E_INVALID;
        }
    }
    if (scope == ADM_EGRESS) {                   /* kept in inet_ntop form */
        unsigned char bin[16];
        char txt[INET6_ADDRSTRLEN];
        int af = strchr(value, ':') ? AF_INET6 : AF_INET;
        if (inet_pton(af, value, bin) != 1 || !inet_ntop(af, bin, txt, sizeof txt))
            return VL_E_INVALID;
        size_t tl = strlen(txt);
        memcpy(dom, adm_scope_pfx[scope], 2);
        memcpy(dom + 2, txt, tl + 1);
        return (int)(2 + tl);
    }
    size_t pl = strlen(adm_scope_pfx[scope]);
    memcpy(dom, adm_scope_pfx[scope], pl);
    if (scope == ADM_CAMPAIGN || scope == ADM_TENANT) {   /* ids are kept as given */
        memcpy(dom + pl, value, len);
        dom[pl + len] = '\0';
    } else {
        adm_lower(dom + pl, value, len);
    }
    return (int)(pl + len);
}

int adm_set(struct adm *a, enum adm_kind kind, enum adm_scope scope, const char *value,
            uint64_t now_ms, const char *note)
{
    char dom[ADM_DOMAIN_MAX + 1];
    int len = adm_norm(scope, value, dom);
    if (len < 0 || kind <= ADM_NONE || kind >= ADM_KINDS)
        return VL_E_INVALID;
    if ((scope == ADM_MX || scope == ADM_EGRESS) && kind != ADM_SUSPEND)
        return VL_E_INVALID;                    /* suspensions only */
    char key[ADM_DOMAIN_MAX + 1], val[ADM_NOTE_MAX + 32];
    key[0] = (char)kind;
    memcpy(key + 1, dom, (size_t)len);
    int vl = snprintf(val, sizeof val, "%" PRIu64 " %.*s", now_ms, (int)ADM_NOTE_MAX,
                      note ? note : "");
    pthread_rwlock_wrlock(&a->lock);
    int i = adm_find(a, kind, dom);
    unsigned n = atomic_load(&a->count);
    int rc = i < 0 && n == ADM_HOLDS_MAX ? VL_E_TOOBIG : 0;
    MDB_txn *txn = NULL;
    if (!rc)
        rc = adm_err(mdb_txn_begin(a->env, NULL, 0, &txn));
    if (!rc) {
        MDB_val k = { (size_t)len + 1, key }, v = { (size_t)vl, val };
        rc = adm_err(mdb_put(txn, a->dbi, &k, &v, 0));
        rc = rc ? (mdb_txn_abort(txn), rc) : adm_err(mdb_txn_commit(txn));
    }
    if (!rc) {
        struct adm_hold *h = &a->holds[i < 0 ? n : (unsigned)i];
        h->kind = kind;
        h->scope = scope;
        memcpy(h->domain, dom, (size_t)len + 1);
        h->time_ms = now_ms;
        snprintf(h->note, sizeof h->note, "%s", note ? note : "");
        if (i < 0)
            atomic_store(&a->count, n + 1);
        adm_recount(a);
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

int adm_clear(struct adm *a, enum adm_kind kind, enum adm_scope scope, const char *value)
{
    char dom[ADM_DOMAIN_MAX + 1];
    int len = adm_norm(scope, value, dom);
    if (len < 0)
        return VL_E_INVALID;
    char key[ADM_DOMAIN_MAX + 1];
    key[0] = (char)kind;
    memcpy(key + 1, dom, (size_t)len);
    pthread_rwlock_wrlock(&a->lock);
    int i = adm_find(a, kind, dom);
    int rc = i < 0 ? VL_E_NOTFOUND : 0;
    MDB_txn *txn = NULL;
    if (!rc)
        rc = adm_err(mdb_txn_begin(a->env, NULL, 0, &txn));
    if (!rc) {
        MDB_val k = { (size_t)len + 1, key };
        rc = adm_err(mdb_del(txn, a->dbi, &k, NULL));
        rc = rc ? (mdb_txn_abort(txn), rc) : adm_err(mdb_txn_commit(txn));
    }
    if (!rc) {
        unsigned n = atomic_load(&a->count);
        a->holds[i] = a->holds[n - 1];
        atomic_store(&a->count, n - 1);
        adm_recount(a);
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

void adm_lookup(struct adm *a, const char *domain, size_t len, const char *campaign,
                const char *tenant, const char *sender, uint64_t created_ms,
                struct adm_hold *out)
{
    out->kind = ADM_NONE;
    if (!adm_active(a) || len > ADM_DOMAIN_MAX)
        return;
    char dom[ADM_DOMAIN_MAX + 1];
    adm_lower(dom, domain, len);
    size_t sl = sender ? strlen(sender) : 0;
    char snd[ADM_DOMAIN_MAX + 1];
    if (sl + 2 <= ADM_DOMAIN_MAX)
        adm_lower(snd, sender ? sender : "", sl);
    else
        snd[0] = '\0';
    pthread_rwlock_rdlock(&a->lock);
    unsigned n = atomic_load_explicit(&a->count, memory_order_relaxed);
    int best = -1;
    static const int rank[ADM_KINDS] = { 0, 1, 2, 3 };   /* purge > bounce > suspend */
    for (unsigned i = 0; i < n; i++) {
        const struct adm_hold *h = &a->holds[i];
        const char *v = adm_hold_value(h);
        if (h->scope == ADM_MX || h->scope == ADM_EGRESS)
            continue;                      /* the route's (adm_mx_held, adm_egress_held) */
        bool hit = h->scope == ADM_DOMAIN ? !strcmp(v, dom)
                   : h->scope == ADM_CAMPAIGN ? campaign && *campaign && !strcmp(v, campaign)
                   : h->scope == ADM_TENANT ? tenant && *tenant && !strcmp(v, tenant)
                                            : snd[0] && !strcmp(v, snd);
        if (!hit)
            continue;
        if (h->kind != ADM_SUSPEND && created_ms > h->time_ms)
            continue;                      /* queued after the action: not covered */
        if (best < 0 || rank[h->kind] > rank[a->holds[best].kind])
            best = (int)i;
    }
    if (best >= 0)
        *out = a->holds[best];
    pthread_rwlock_unlock(&a->lock);
}

size_t adm_list(struct adm *a, struct adm_hold *out, size_t max)
{
    pthread_rwlock_rdlock(&a->lock);
    unsigned n = atomic_load(&a->count);
    for (unsigned i = 0; i < n && i < max; i++)
        out[i] = a->holds[i];
    pthread_rwlock_unlock(&a->lock);
    return n;
}

/* Does MX host @p mx equal @p suffix or end in "." + @p suffix (any case; a
 * trailing dot on @p mx ignored)? */
static bool adm_mx_match(const char *mx, const char *suffix)
{
    size_t ml = strlen(mx), sl = strlen(suffix);
    if (ml && mx[ml - 1] == '.')
        ml--;
    if (ml < sl || strncasecmp(mx + ml - sl, suffix, sl))
        return false;
    return ml == sl || mx[ml - sl - 1] == '.';
}

bool adm_mx_held(struct adm *a, const char *policy, const char *const *mx, size_t n,
                 struct adm_hold *out)
{
    if (!a || atomic_load_explicit(&a->scoped[ADM_MX], memory_order_relaxed) == 0)
        return false;
    bool hit = false;
    pthread_rwlock_rdlock(&a->lock);
    unsigned cnt = atomic_load_explicit(&a->count, memory_order_relaxed);
    for (unsigned i = 0; i < cnt && !hit; i++) {
        const struct adm_hold *h = &a->holds[i];
        if (h->scope != ADM_MX)
            continue;
        const char *v = adm_hold_value(h);
        hit = policy && !strcasecmp(policy, v);
        for (size_t k = 0; k < n && !hit; k++)
            hit = mx[k] && adm_mx_match(mx[k], v);
        if (hit)
            *out = *h;
    }
    pthread_rwlock_unlock(&a->lock);
    return hit;
}

bool adm_egress_held(struct adm *a, const char *ip)
{
    if (!a || atomic_load_explicit(&a->scoped[ADM_EGRESS], memory_order_relaxed) == 0)
        return false;
    char key[ADM_DOMAIN_MAX + 1];
    if (adm_norm(ADM_EGRESS, ip, key) < 0)
        return false;
    pthread_rwlock_rdlock(&a->lock);
    bool hit = adm_find(a, ADM_SUSPEND, key) >= 0;
    pthread_rwlock_unlock(&a->lock);
    return hit;
}
