/*
 * queue_admin.c - operator views and actions over every shard: stats, top
 * domains, list, show, retry-now, purge. Reads use short read transactions;
 * writes go through the shard's batcher like enqueue and complete.
 * Costs: stats O(shards); top domains O(domains); list O(shards * max);
 * show/retry/purge of a message O(its recipients); retry of a domain
 * O(its recipients); purge of everything O(1) per sub-database.
 * Layer: on queue_commit (writes) and queue_store (records).
 */
#include "queue_commit.h"
#include "queue_store.h"

#include "volley/error.h"
#include "volley/limits.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int vl_queue_stats(struct vl_queue *q, int shard, struct vl_queue_stats *out)
{
    memset(out, 0, sizeof *out);
    if (shard >= (int)q->nshards)
        return VL_E_INVALID;
    for (unsigned k = 0; k < q->nshards; k++) {
        if (shard >= 0 && k != (unsigned)shard)
            continue;
        struct vl_queue_shard *s = q->shards[k];
        struct queue_stats_rec st;
        MDB_txn *txn;
        int rc = queue_txn_begin(s, false, &txn);
        if (rc < 0)
            return rc;
        rc = queue_stats_get(s, txn, &st);
        queue_txn_abort(s, txn);
        if (rc < 0)
            return rc;
        for (unsigned i = 0; i < VL_RCPT_STATE_COUNT; i++)
            out->by_state[i] += st.by_state[i];
        out->purged += st.purged;
        out->ambiguous += st.ambiguous;
        out->quarantined += st.quarantined;
        out->messages += st.messages;
        out->body_bytes += st.body_bytes;
        char path[4300];
        struct stat sb;
        snprintf(path, sizeof path, "%s/data.mdb", s->path);
        if (stat(path, &sb) == 0)
            out->disk_bytes += (uint64_t)sb.st_blocks * 512u;
        pthread_mutex_lock(&s->mu);
        out->commits += s->commits;
        out->requests += s->requests;
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}

static int admin_dom_cmp(const void *a, const void *b)
{
    const struct vl_queue_domain_count *x = a, *y = b;
    if (x->rcpts != y->rcpts)
        return x->rcpts > y->rcpts ? -1 : 1;
    return strcmp(x->domain, y->domain);
}

static int admin_dom_name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct vl_queue_domain_count *)a)->domain,
                  ((const struct vl_queue_domain_count *)b)->domain);
}

/* Append every domain of shard @p s with its open-recipient count. */
static int admin_dom_collect(struct vl_queue_shard *s, struct vl_queue_domain_count **all,
                             size_t *n, size_t *cap)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = queue_txn_begin(s, false, &txn);
    if (rc < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->db_dom, &cur)) != 0) {
        queue_txn_abort(s, txn);
        return queue_mdb_err(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP)) {
        size_t count = 0;
        if (k.mv_size == 0 || k.mv_size > VL_SMTP_DOMAIN_BYTES_MAX
            || mdb_cursor_count(cur, &count) != 0) {
            rc = VL_E_CORRUPT;
            break;
        }
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 256;
            void *p = realloc(*all, nc * sizeof **all);
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            *all = p;
            *cap = nc;
        }
        struct vl_queue_domain_count *d = &(*all)[(*n)++];
        memcpy(d->domain, k.mv_data, k.mv_size);
        d->domain[k.mv_size] = 0;
        d->rcpts = count;
    }
    mdb_cursor_close(cur);
    queue_txn_abort(s, txn);
    if (rc == MDB_NOTFOUND)
        return 0;
    return rc < 0 ? rc : queue_mdb_err(rc);
}

int vl_queue_top_domains(struct vl_queue *q, struct vl_queue_domain_count *out, size_t max)
{
    struct vl_queue_domain_count *all = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (unsigned k = 0; k < q->nshards && rc == 0; k++)
        rc = admin_dom_collect(q->shards[k], &all, &n, &cap);
    if (rc < 0) {
        free(all);
        return rc;
    }
    /* A domain may appear in several shards (extra messages): merge by name. */
    if (n == 0) {
        free(all);
        return 0;
    }
    qsort(all, n, sizeof *all, admin_dom_name_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && strcmp(all[m - 1].domain, all[i].domain) == 0)
            all[m - 1].rcpts += all[i].rcpts;
        else
            all[m++] = all[i];
    }
    qsort(all, m, sizeof *all, admin_dom_cmp);
    size_t r = m < max ? m : max;
    if (r)
        memcpy(out, all, r * sizeof *all);
    free(all);
    return (int)r;
}

static int admin_info_cmp(const void *a, const void *b)
{
    const struct vl_queue_msg_info *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static void admin_info_fill(struct vl_queue_msg_info *d, const struct queue_msg_rec *m)
{
    *d = (struct vl_queue_msg_info){ .id = m->id, .created_ms = m->created_ms, .size = m->size,
        .flags = m->flags, .rcpts_total = m->rcpt_count, .rcpts_open = m->rcpt_open };
    memcpy(d->return_path, m->return_path, m->return_path_len);
    d->return_path[m->return_path_len] = 0;
}

static int admin_list_shard(struct vl_queue_shard *s, uint64_t after_id,
                            struct vl_queue_msg_info *out, size_t max, size_t *n)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    uint8_t kb[8];
    queue_key_u64(kb, after_id + 1);
    MDB_val k = { 8, kb }, v;
    int rc = queue_txn_begin(s, false, &txn);
    if (rc < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->db_msg, &cur)) != 0) {
        queue_txn_abort(s, txn);
        return queue_mdb_err(rc);
    }
    size_t got = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && got < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct queue_msg_rec m;
        if ((rc = queue_msg_rec_decode(v.mv_data, v.mv_size, &m)) < 0)
            break;
        admin_info_fill(&out[(*n)++], &m);
        got++;
    }
    mdb_cursor_close(cur);
    queue_txn_abort(s, txn);
    return (rc == 0 || rc == MDB_NOTFOUND) ? 0 : (rc < 0 ? rc : queue_mdb_err(rc));
}

int vl_queue_list(struct vl_queue *q, uint64_t after_id, struct vl_queue_msg_info *out,
                  size_t max)
{
    if (max == 0)
        return 0;
    if (max > 100000)
        return VL_E_INVALID;
    struct vl_queue_msg_info *all = malloc(q->nshards * max * sizeof *all);
    if (!all)
        return -ENOMEM;
    size_t n = 0;
    int rc = 0;
    for (unsigned k = 0; k < q->nshards && rc == 0; k++)
        rc = admin_list_shard(q->shards[k], after_id, all, max, &n);
    if (rc < 0) {
        free(all);
        return rc;
    }
    qsort(all, n, sizeof *all, admin_info_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && all[m - 1].id == all[i].id) {
            all[m - 1].rcpts_total += all[i].rcpts_total;
            all[m - 1].rcpts_open += all[i].rcpts_open;
        } else {
            all[m++] = all[i];
        }
    }
    if (m > max)
        m = max;
    memcpy(out, all, m * sizeof *all);
    free(all);
    return (int)m;
}

static void admin_rcpt_info(struct vl_queue_rcpt_info *d, uint64_t id,
                            const struct queue_rcpt_rec *r)
{
    *d = (struct vl_queue_rcpt_info){ .id = id, .state = (enum vl_rcpt_state)r->state,
        .attempts = r->attempts, .next_ms = r->next_ms, .code = r->code };
    memcpy(d->status, r->status, r->status_len);
    memcpy(d->text, r->text, r->text_len);
    memcpy(d->addr, r->addr, r->addr_len);
}

/* One shard's part of vl_queue_show(). @return 1 found, 0 not here, < 0. */
static int admin_show_shard(struct vl_queue_shard *s, uint64_t id, struct vl_queue_msg_info *info,
                            struct vl_queue_rcpt_info *rcpts, size_t max, size_t *nr)
{
    MDB_txn *txn;
    uint8_t mb[QUEUE_MSG_BUF_BYTES], rb[QUEUE_RCPT_BUF_BYTES];
    struct queue_msg_rec m;
    uint64_t *ids = NULL;
    size_t n = 0;
    int rc = queue_txn_begin(s, false, &txn);
    if (rc < 0)
        return rc;
    rc = queue_msg_get(s, txn, id, mb, &m);
    if (rc == 0) {
        struct vl_queue_msg_info one;
        admin_info_fill(&one, &m);
        one.rcpts_total += info->rcpts_total;
        one.rcpts_open += info->rcpts_open;
        *info = one;
        rc = queue_msg_rcpts(s, txn, &m, &ids, &n);
    }
    for (size_t i = 0; rc == 0 && i < n && *nr < max; i++) {
        struct queue_rcpt_rec r;
        if ((rc = queue_rcpt_get(s, txn, ids[i], rb, &r)) == 0)
            admin_rcpt_info(&rcpts[(*nr)++], ids[i], &r);
    }
    queue_txn_abort(s, txn);
    free(ids);
    if (rc == VL_E_NOTFOUND && !ids)
        return 0;
    return rc < 0 ? rc : 1;
}

int vl_queue_show(struct vl_queue *q, uint64_t id, struct vl_queue_msg_info *info,
                  struct vl_queue_rcpt_info *rcpts, size_t max, size_t *rcpt_count)
{
    int found = 0;
    memset(info, 0, sizeof *info);
    *rcpt_count = 0;
    for (unsigned k = 0; k < q->nshards; k++) {
        int rc = admin_show_shard(q->shards[k], id, info, rcpts, max, rcpt_count);
        if (rc < 0)
            return rc;
        found += rc;
    }
    return found ? 0 : VL_E_NOTFOUND;
}

/* ---- writes: retry, purge ---------------------------------------------- */

struct admin_arg {
    uint64_t msg_id;
    const char *domain;                  /* lowercased, or NULL */
    size_t domain_len;
    uint64_t now_ms;
};

/* Ids of the open recipients of a domain in this shard. */
static int admin_dom_rcpts(struct vl_queue_shard *s, MDB_txn *txn, const struct admin_arg *a,
                           uint64_t **ids, size_t *n)
{
    MDB_cursor *cur;
    MDB_val k = { a->domain_len, (void *)a->domain }, v;
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    int rc = mdb_cursor_open(txn, s->db_dom, &cur);
    if (rc)
        return queue_mdb_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            void *p = realloc(*ids, cap * sizeof **ids);
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            *ids = p;
        }
        (*ids)[(*n)++] = queue_key_u64_get(v.mv_data);
    }
    mdb_cursor_close(cur);
    return (rc == 0 || rc == MDB_NOTFOUND) ? 0 : (rc < 0 ? rc : queue_mdb_err(rc));
}

/* Open recipient ids for a message or a domain (per @p a). */
static int admin_target_ids(struct vl_queue_shard *s, MDB_txn *txn, const struct admin_arg *a,
                            uint64_t **ids, size_t *n)
{
    if (a->domain)
        return admin_dom_rcpts(s, txn, a, ids, n);
    uint8_t mb[QUEUE_MSG_BUF_BYTES];
    struct queue_msg_rec m;
    *ids = NULL;
    *n = 0;
    int rc = queue_msg_get(s, txn, a->msg_id, mb, &m);
    if (rc < 0)
        return rc;
    return queue_msg_rcpts(s, txn, &m, ids, n);
}

static int admin_retry_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                          void *arg)
{
    const struct admin_arg *a = arg;
    uint8_t rb[QUEUE_RCPT_BUF_BYTES], tb[8];
    uint64_t *ids;
    size_t n;
    int rc = admin_target_ids(s, txn, a, &ids, &n);
    if (rc == VL_E_NOTFOUND)
        return 0;
    int changed = 0;
    for (size_t i = 0; rc >= 0 && i < n; i++) {
        struct queue_rcpt_rec r;
        if ((rc = queue_rcpt_get(s, txn, ids[i], rb, &r)) < 0)
            break;
        if (r.state == VL_RCPT_READY && r.next_ms <= a->now_ms)
            continue;
        if ((rc = queue_pend_hidden(s, txn, r.msg_id)) != 0)
            continue;                      /* a part not published yet: stays hidden */
        queue_key_u64(tb, r.next_ms);
        if ((rc = queue_index_del(txn, s->db_sched, tb, 8, ids[i])) < 0)
            break;
        st->by_state[r.state] -= st->by_state[r.state] > 0;
        st->by_state[VL_RCPT_READY]++;
        r.state = VL_RCPT_READY;
        r.next_ms = a->now_ms;
        rc = queue_rcpt_put(s, txn, ids[i], &r, 0);
        changed++;
    }
    free(ids);
    return rc < 0 ? rc : changed;
}

int vl_queue_retry(struct vl_queue *q, uint64_t msg_id, const char *domain, uint64_t now_ms)
{
    char dom[VL_SMTP_DOMAIN_BYTES_MAX];
    struct admin_arg a = { .msg_id = msg_id, .now_ms = now_ms };
    if ((msg_id == 0) == (domain == NULL))
        return VL_E_INVALID;
    if (domain) {
        a.domain_len = strlen(domain);
        if (a.domain_len == 0 || a.domain_len > sizeof dom)
            return VL_E_INVALID;
        queue_lower(dom, domain, a.domain_len);
        a.domain = dom;
    }
    int total = 0;
    for (unsigned k = 0; k < q->nshards; k++) {
        struct queue_req req = { .fn = admin_retry_fn, .arg = &a };
        int rc = queue_submit(q->shards[k], &req);
        if (rc < 0)
            return rc;
        total += rc;
    }
    return total;
}

static int admin_purge_all(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st)
{
    MDB_dbi dbs[] = { s->db_msg, s->db_body, s->db_rcpt, s->db_sched, s->db_dom, s->db_pend };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        int rc = queue_mdb_drop(txn, dbs[i]);
        if (rc)
            return queue_mdb_err(rc);
    }
    uint64_t n = st->by_state[VL_RCPT_READY] + st->by_state[VL_RCPT_DEFERRED];
    st->purged += n;
    st->by_state[VL_RCPT_READY] = st->by_state[VL_RCPT_DEFERRED] = 0;
    st->messages = st->body_bytes = 0;
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

static int admin_purge_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                          void *arg)
{
    const struct admin_arg *a = arg;
    if (a->msg_id == 0)
        return admin_purge_all(s, txn, st);
    return queue_msg_purge(s, txn, st, a->msg_id);
}

int vl_queue_purge(struct vl_queue *q, uint64_t msg_id)
{
    struct admin_arg a = { .msg_id = msg_id };
    int total = 0, found = 0;
    for (unsigned k = 0; k < q->nshards; k++) {
        struct queue_req req = { .fn = admin_purge_fn, .arg = &a };
        int rc = queue_submit(q->shards[k], &req);
        if (rc < 0)
            return rc;
        if (msg_id && rc > 0) {
            found = 1;
            rc--;
        }
        total += rc;
    }
    if (msg_id && !found)
        return VL_E_NOTFOUND;
    return total;
}
