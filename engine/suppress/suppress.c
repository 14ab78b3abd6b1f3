/*
 * suppress.c - the suppression list on LMDB (see suppress.h).
 * Invariant: keys are "scope\0addr", lowercased, scope a valid domain or "",
 * addr a valid RFC 5321 mailbox; values are SUP_VAL_BYTES long.
 */
#include "suppress.h"

#include "volley/addr.h"
#include "volley/error.h"
#include "volley/limits.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SUP_MAP_BYTES     (1ull << 30)       /* policy: 1 GiB of address space */
#define SUP_VAL_VERSION   1u
#define SUP_VAL_BYTES     10u                /* version, reason, time_ms (LE) */
#define SUP_KEY_BYTES_MAX (SUP_SCOPE_BYTES_MAX + 1u + SUP_ADDR_BYTES_MAX)

struct sup {
    MDB_env *env;
    MDB_dbi dbi;
    struct sup *next;               /* in sup_open_list */
    unsigned refs;
    char path[4096];
};

/* LMDB allows one open of an environment per process (its lock table is
 * per process): the HTTP API and the engine of one `volley run` share the
 * handle, counted. */
static pthread_mutex_t sup_open_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sup *sup_open_list;

static int sup_err(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == MDB_MAP_FULL)
        return VL_E_QUEUE_FULL;
    if (rc == MDB_NOTFOUND)
        return VL_E_NOTFOUND;
    return rc > 0 && rc < 4096 ? -rc : VL_E_STORAGE;
}

static const char *const REASONS[] = { "none", "hard_bounce", "unsubscribe", "complaint",
                                       "manual" };

const char *sup_reason_name(enum sup_reason r)
{
    return (unsigned)r < sizeof REASONS / sizeof REASONS[0] ? REASONS[r] : "?";
}

enum sup_reason sup_reason_parse(const char *name)
{
    for (unsigned i = 1; i < sizeof REASONS / sizeof REASONS[0]; i++)
        if (!strcmp(name, REASONS[i]))
            return (enum sup_reason)i;
    return SUP_NONE;
}

static int sup_open_locked(const char *data_dir, bool create, struct sup **out)
{
    char path[4096], real[PATH_MAX];
    snprintf(path, sizeof path, "%s/suppress", data_dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (!create)
            return VL_E_NOTFOUND;
        if (mkdir(data_dir, 0755) != 0 && errno != EEXIST)
            return -errno;
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -errno;
    }
    if (!realpath(path, real))
        return -errno;
    for (struct sup *o = sup_open_list; o; o = o->next)
        if (!strcmp(o->path, real)) {
            o->refs++;
            *out = o;
            return 0;
        }
    struct sup *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    snprintf(s->path, sizeof s->path, "%s", real);
    s->refs = 1;
    int rc = mdb_env_create(&s->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(s->env, SUP_MAP_BYTES);
    if (rc == 0)
        rc = mdb_env_open(s->env, path, MDB_NOTLS, 0644);
    MDB_txn *txn = NULL;
    if (rc == 0)
        rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, &s->dbi);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (rc != 0) {
        if (txn)
            mdb_txn_abort(txn);
        if (s->env)
            mdb_env_close(s->env);
        free(s);
        return sup_err(rc);
    }
    s->next = sup_open_list;
    sup_open_list = s;
    *out = s;
    return 0;
}

int sup_open(const char *data_dir, bool create, struct sup **out)
{
    pthread_mutex_lock(&sup_open_mu);
    int rc = sup_open_locked(data_dir, create, out);
    pthread_mutex_unlock(&sup_open_mu);
    return rc;
}

void sup_close(struct sup *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&sup_open_mu);
    bool last = --s->refs == 0;
    if (last)
        for (struct sup **pp = &sup_open_list; *pp; pp = &(*pp)->next)
            if (*pp == s) {
                *pp = s->next;
                break;
            }
    pthread_mutex_unlock(&sup_open_mu);
    if (last) {
        mdb_env_close(s->env);
        free(s);
    }
}

/* "scope\0addr" lowercased into @p key. @return its length or VL_E_INVALID. */
static int sup_key(const char *scope, const char *addr, size_t addr_len, char *key)
{
    size_t sl = scope ? strlen(scope) : 0;
    struct vl_addr a;
    if (addr_len == 0 || addr_len > SUP_ADDR_BYTES_MAX ||
        vl_addr_parse(addr, addr_len, &a, NULL) < 0)
        return VL_E_INVALID;
    if (sl > SUP_SCOPE_BYTES_MAX || (sl && vl_domain_check(scope, sl, NULL) < 0))
        return VL_E_INVALID;
    for (size_t i = 0; i < sl; i++)
        key[i] = (char)tolower((unsigned char)scope[i]);
    key[sl] = '\0';
    for (size_t i = 0; i < addr_len; i++)
        key[sl + 1 + i] = (char)tolower((unsigned char)addr[i]);
    return (int)(sl + 1 + addr_len);
}

int sup_add_many(struct sup *s, const char *scope, const char *const *addrs, size_t n,
                 enum sup_reason reason, uint64_t time_ms)
{
    if (reason == SUP_NONE || (unsigned)reason > SUP_MANUAL)
        return VL_E_INVALID;
    uint8_t val[SUP_VAL_BYTES] = { SUP_VAL_VERSION, (uint8_t)reason };
    for (int i = 0; i < 8; i++)
        val[2 + i] = (uint8_t)(time_ms >> (8 * i));
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    int added = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char key[SUP_KEY_BYTES_MAX];
        int kl = sup_key(scope, addrs[i], strlen(addrs[i]), key);
        if (kl < 0)
            continue;
        MDB_val k = { (size_t)kl, key }, v = { sizeof val, val };
        rc = mdb_put(txn, s->dbi, &k, &v, 0);
        added += rc == 0;
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    return rc ? sup_err(rc) : added;
}

int sup_add(struct sup *s, const char *scope, const char *addr, enum sup_reason reason,
            uint64_t time_ms)
{
    char key[SUP_KEY_BYTES_MAX];
    if (sup_key(scope, addr, strlen(addr), key) < 0)
        return VL_E_INVALID;
    int rc = sup_add_many(s, scope, &addr, 1, reason, time_ms);
    return rc < 0 ? rc : 0;
}

int sup_rm(struct sup *s, const char *scope, const char *addr)
{
    char key[SUP_KEY_BYTES_MAX];
    int kl = sup_key(scope, addr, strlen(addr), key);
    if (kl < 0)
        return VL_E_INVALID;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0) {
        MDB_val k = { (size_t)kl, key };
        rc = mdb_del(txn, s->dbi, &k, NULL);
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    return sup_err(rc);
}

static void sup_decode(const MDB_val *k, const MDB_val *v, struct sup_entry *e)
{
    const char *key = k->mv_data;
    size_t sl = strnlen(key, k->mv_size);
    size_t al = k->mv_size - sl - (sl < k->mv_size);
    memset(e, 0, sizeof *e);
    memcpy(e->scope, key, sl < SUP_SCOPE_BYTES_MAX ? sl : SUP_SCOPE_BYTES_MAX);
    memcpy(e->addr, key + sl + 1, al < SUP_ADDR_BYTES_MAX ? al : SUP_ADDR_BYTES_MAX);
    const uint8_t *b = v->mv_data;
    if (v->mv_size != SUP_VAL_BYTES || b[0] != SUP_VAL_VERSION)
        return;                                 /* unknown record: reason stays NONE */
    e->reason = (enum sup_reason)b[1];
    for (int i = 0; i < 8; i++)
        e->time_ms |= (uint64_t)b[2 + i] << (8 * i);
}

static int sup_get(MDB_txn *txn, MDB_dbi dbi, const char *scope, const char *addr, size_t len,
                   struct sup_entry *e)
{
    char key[SUP_KEY_BYTES_MAX];
    int kl = sup_key(scope, addr, len, key);
    if (kl < 0)
        return 0;
    MDB_val k = { (size_t)kl, key }, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return sup_err(rc);
    sup_decode(&k, &v, e);
    return e->reason != SUP_NONE;
}

int sup_lookup_many(struct sup *s, const char *domain, const char *const *addrs,
                    const size_t *lens, size_t n, struct sup_entry *out)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return sup_err(rc);
    for (size_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(addrs[i]);
        out[i].reason = SUP_NONE;
        int r = sup_get(txn, s->dbi, "", addrs[i], len, &out[i]);
        if (r == 0 && domain && *domain)
            r = sup_get(txn, s->dbi, domain, addrs[i], len, &out[i]);
        if (r < 0) {
            mdb_txn_abort(txn);
            return r;
        }
    }
    mdb_txn_abort(txn);
    return 0;
}

int sup_foreach(struct sup *s, int (*fn)(const struct sup_entry *e, void *arg), void *arg)
{
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return sup_err(rc);
    rc = mdb_cursor_open(txn, s->dbi, &c);
    if (rc) {
        mdb_txn_abort(txn);
        return sup_err(rc);
    }
    MDB_val k, v;
    int out = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && out == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        struct sup_entry e;
        sup_decode(&k, &v, &e);
        out = fn(&e, arg);
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (out)
        return out;
    return rc == MDB_NOTFOUND ? 0 : sup_err(rc);
}

static const struct sup_policy sup_policy_default = {
    .feed_n = 3, .feed = { "5.1.1", "5.1.2", "5.1.10" },   /* RFC 3463: no such mailbox,
                                                               no such system, null MX */
};
static const struct sup_policy *sup_policy_global = &sup_policy_default;

int sup_policy_codes(struct sup_policy *p, const char *list)
{
    p->feed_n = 0;
    for (const char *c = list; *c;) {
        size_t n = strcspn(c, ",");
        unsigned a, b, d;
        char tail;
        char code[16];
        if (n == 0 || n >= sizeof code || p->feed_n == SUP_FEED_CODES_MAX)
            return -1;
        memcpy(code, c, n);
        code[n] = '\0';
        if (sscanf(code, "%u.%u.%u%c", &a, &b, &d, &tail) != 3 || a != 5 || b > 999 || d > 999)
            return -1;
        snprintf(p->feed[p->feed_n++], sizeof p->feed[0], "%u.%u.%u", a, b, d);
        c += n + (c[n] == ',');
    }
    return p->feed_n ? 0 : -1;
}

void sup_policy_set(const struct sup_policy *p)
{
    sup_policy_global = p ? p : &sup_policy_default;
}

const struct sup_policy *sup_policy_get(void)
{
    return sup_policy_global;
}

bool sup_policy_feeds(const struct sup_policy *p, const char *status)
{
    for (unsigned i = 0; i < p->feed_n; i++)
        if (!strcmp(p->feed[i], status))
            return true;
    return false;
}

size_t sup_addr_domain(const char *addr, char *out)
{
    const char *at = strrchr(addr, '@');
    size_t n = at ? strlen(at + 1) : 0;
    if (n == 0 || n > VL_SMTP_DOMAIN_BYTES_MAX)
        return 0;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)at[1 + i]);
    return n;
}
