/*
 * warmup_store.c - egress warm-up counts in LMDB DATA/shaping (see
 * warmup_store.h). Record value: three little-endian-as-stored uint64_t
 * (first_day, day, sent); the file never leaves the machine that wrote it.
 */
#include "warmup_store.h"

#include "log.h"
#include "volley/error.h"
#include "volley/shaping.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WARMUP_MAP_BYTES (1u << 20)   /* 64 addresses x ~100 bytes: plenty */

struct warmup_store {
    MDB_env *env;
    MDB_dbi dbi;
};

static int warmup_err(int rc)
{
    if (rc == 0)
        return 0;
    return rc > 0 && rc < 4096 ? -rc : VL_E_STORAGE;
}

int warmup_store_open(const char *data_dir, const struct vl_shaping *s,
                      struct warmup_store **out)
{
    *out = NULL;
    bool plans = false;
    for (unsigned i = 0; s && i < s->addr_count; i++)
        plans |= s->addrs[i].warmup_count > 0;
    if (!plans)
        return 0;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/shaping", data_dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    struct warmup_store *ws = calloc(1, sizeof *ws);
    if (!ws)
        return -ENOMEM;
    int rc = mdb_env_create(&ws->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(ws->env, WARMUP_MAP_BYTES);
    if (rc == 0)
        rc = mdb_env_open(ws->env, path, 0, 0600);
    MDB_txn *txn = NULL;
    if (rc == 0)
        rc = mdb_txn_begin(ws->env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, &ws->dbi);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (rc != 0) {
        vl_log(VL_LOG_ERROR, "evt=warmup_store_failed path=%s err=\"%s\"", path,
               mdb_strerror(rc));
        if (ws->env)
            mdb_env_close(ws->env);
        free(ws);
        return warmup_err(rc);
    }
    *out = ws;
    return 0;
}

int warmup_store_load(struct warmup_store *ws, struct vl_shaper *sh)
{
    if (!ws)
        return 0;
    const struct vl_shaping *s = vl_shaper_table(sh);
    MDB_txn *txn;
    int rc = mdb_txn_begin(ws->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return warmup_err(rc);
    for (unsigned i = 0; s && i < s->addr_count; i++) {
        MDB_val k = { strlen(s->addrs[i].ip), (void *)s->addrs[i].ip }, v;
        if (mdb_get(txn, ws->dbi, &k, &v) != 0 || v.mv_size != 3 * sizeof(uint64_t))
            continue;
        uint64_t f[3];
        memcpy(f, v.mv_data, sizeof f);
        struct vl_warmup_count c = { .first_day = f[0], .day = f[1], .sent = f[2] };
        snprintf(c.ip, sizeof c.ip, "%s", s->addrs[i].ip);
        vl_shaper_warmup_set(sh, &c);
        vl_log_at(VL_LOG_INFO, "evt=warmup_restored ip=%s first_day=%llu day=%llu sent=%llu",
                  c.ip, (unsigned long long)c.first_day, (unsigned long long)c.day,
                  (unsigned long long)c.sent);
    }
    mdb_txn_abort(txn);
    return 0;
}

int warmup_store_save(struct warmup_store *ws, struct vl_shaper *sh)
{
    if (!ws)
        return 0;
    const struct vl_shaping *s = vl_shaper_table(sh);
    MDB_txn *txn = NULL;
    int rc = 0;
    for (unsigned i = 0; s && i < s->addr_count && rc == 0; i++) {
        struct vl_warmup_count c;
        if (!vl_shaper_warmup_get(sh, i, &c))
            continue;
        if (!txn && (rc = mdb_txn_begin(ws->env, NULL, 0, &txn)) != 0)
            break;
        uint64_t f[3] = { c.first_day, c.day, c.sent };
        MDB_val k = { strlen(c.ip), c.ip }, v = { sizeof f, f };
        rc = mdb_put(txn, ws->dbi, &k, &v, 0);
    }
    if (txn && rc == 0)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (rc != 0)
        vl_log(VL_LOG_ERROR, "evt=warmup_save_failed err=\"%s\"", mdb_strerror(rc));
    return warmup_err(rc);
}

void warmup_store_close(struct warmup_store *ws)
{
    if (!ws)
        return;
    mdb_env_close(ws->env);
    free(ws);
}
