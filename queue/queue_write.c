/*
 * queue_write.c - enqueue and complete: the write paths, run inside the
 * shard's group transaction (queue_commit.c).
 *
 * Invariants (queue_schema.h): an open recipient has one record, one sched
 * entry at its next_ms (none while its part of a multi-shard enqueue is
 * PREPARED) and one dom entry; a message record counts its open
 * recipients and goes (with its body) when the count reaches 0; the stats
 * record changes in the same transaction as the records it counts.
 * Input is validated before a request is submitted, so a group transaction
 * fails only for storage reasons.
 * Multi-shard enqueue, all or nothing: write the other parts hidden, then
 * the first shard's part visible with the decision in one transaction, then
 * publish the others (see queue_recover.c for crashes).
 * Layer: on queue_commit (requests) and queue_store (records).
 */
#include "queue_commit.h"
#include "queue_crc.h"
#include "queue_events.h"
#include "queue_lease_set.h"
#include "queue_store.h"

#include "volley/addr.h"
#include "volley/error.h"
#include "volley/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define QUEUE_ENQ_TRIES_MAX 4u           /* message id collisions in a row */

/* A recipient address validated and routed. */
struct queue_prcpt {
    const char *addr;
    uint16_t addr_len;
    uint16_t domain_off;
    uint16_t domain_len;
    uint16_t shard;
    uint32_t order;                  /* index in the caller's list */
};

struct queue_enq {                       /* one message's part in one shard */
    const struct vl_queue_new_msg *m;
    uint64_t msg_id;
    uint64_t now_ms;
    const struct queue_prcpt *rcpts;
    size_t n;
    const struct queue_pend_rec *pend;   /* multi-shard: PREPARED (hidden) part, or the
                                            coordinator's visible part + COMMITTED */
    uint32_t body_crc;                   /* CRC32C of m->body, computed before the
                                            group transaction (not inside it) */
    const struct vl_queue_rcpt_events *ev;   /* the message's events, or NULL */
};

struct queue_cmp {
    const struct vl_queue_outcome *o;
    size_t n;
    const struct queue_enq *extra;
    size_t extra_n;
    const char *const *events;        /* [n] or NULL: the outcomes' events */
    const size_t *event_lens;
};

/* The events of part @p e's recipients (e->ev, in the caller's recipient
 * order), appended to this shard's outbox in @p txn. */
static int queue_enq_events(struct vl_queue_shard *s, MDB_txn *txn, const struct queue_enq *e)
{
    enum { CHUNK = 64 };                 /* events per append (one evseq read/write each) */
    const char *js[CHUNK];
    size_t jl[CHUNK], k = 0;
    for (size_t i = 0; i < e->n; i++) {
        uint32_t at = e->rcpts[i].order;
        if (!e->ev->json[at])
            continue;
        js[k] = e->ev->json[at];
        jl[k++] = e->ev->lens[at];
        if (k == CHUNK) {
            int rc = queue_events_append(s, txn, js, jl, k);
            if (rc < 0)
                return rc;
            k = 0;
        }
    }
    return k ? queue_events_append(s, txn, js, jl, k) : 0;
}

/* Write one message's part into this shard: message, body, recipients. */
static int queue_enq_apply(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                           const struct queue_enq *e)
{
    uint8_t kb[8], buf[QUEUE_MSG_BUF_BYTES];
    char dom[VL_SMTP_DOMAIN_BYTES_MAX];
    if (st->next_rcpt + e->n >= (1ull << QUEUE_RCPT_ID_SHARD_SHIFT))
        return VL_E_QUEUE_FULL;
    uint64_t first = (uint64_t)s->index << QUEUE_RCPT_ID_SHARD_SHIFT | st->next_rcpt;
    struct queue_msg_rec m = {
        .id = e->msg_id, .created_ms = e->now_ms, .size = e->m->body_len, .first_rcpt = first,
        .flags = e->m->flags, .rcpt_count = (uint32_t)e->n, .rcpt_open = (uint32_t)e->n,
        .return_path = e->m->return_path, .return_path_len = (uint16_t)e->m->return_path_len,
        .body_crc = e->body_crc, .body_crc_set = true,
    };
    bool hidden = e->pend && e->pend->state == QUEUE_PEND_PREPARED;
    queue_key_u64(kb, e->msg_id);
    MDB_val k = { 8, kb }, v = { queue_msg_rec_encode(buf, &m), buf };
    int rc = queue_mdb_put(txn, s->db_msg, &k, &v, MDB_NOOVERWRITE);
    if (rc == 0) {
        v = (MDB_val){ e->m->body_len, (void *)e->m->body };
        rc = queue_mdb_put(txn, s->db_body, &k, &v, MDB_NOOVERWRITE);
    }
    if (rc == MDB_KEYEXIST)
        return -EEXIST;                  /* message id collision: caller retries */
    if (rc)
        return queue_mdb_err(rc);
    for (size_t i = 0; i < e->n; i++) {
        const struct queue_prcpt *p = &e->rcpts[i];
        struct queue_rcpt_rec r = {
            .msg_id = e->msg_id, .next_ms = e->now_ms, .state = VL_RCPT_READY,
            .addr = p->addr, .addr_len = p->addr_len,
            .domain_off = p->domain_off, .domain_len = p->domain_len,
        };
        rc = hidden ? queue_rcpt_put_hidden(s, txn, first + i, &r, MDB_APPEND)
                    : queue_rcpt_put(s, txn, first + i, &r, MDB_APPEND);
        queue_lower(dom, p->addr + p->domain_off, p->domain_len);
        if (rc == 0)
            rc = queue_index_put(txn, s->db_dom, dom, p->domain_len, first + i);
        if (rc < 0)
            return rc;
    }
    if (e->pend && (rc = queue_pend_put(s, txn, e->msg_id, e->pend)) < 0)
        return rc;
    if (e->ev && !hidden && (rc = queue_enq_events(s, txn, e)) < 0)
        return rc;                       /* a hidden part's go with its publish */
    st->next_rcpt += e->n;
    st->by_state[VL_RCPT_READY] += e->n;
    st->messages++;
    st->body_bytes += e->m->body_len;
    return 0;
}

static int queue_enq_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                        void *arg)
{
    return queue_enq_apply(s, txn, st, arg);
}

/* Apply one outcome. @return 1 applied, 0 recipient gone, < 0 error. */
static int queue_outcome_apply(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                               const struct vl_queue_outcome *o)
{
    uint8_t buf[QUEUE_RCPT_BUF_BYTES], tb[8];
    char text[VL_DIAG_TEXT_BYTES_MAX];
    struct queue_rcpt_rec r;
    int rc = queue_rcpt_get(s, txn, o->rcpt_id, buf, &r);
    if (rc == VL_E_NOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    if (o->state != VL_RCPT_DEFERRED) {
        if ((rc = queue_rcpt_remove(s, txn, st, o->rcpt_id, &r)) < 0)
            return rc;
        st->by_state[o->state]++;
        return 1;
    }
    queue_key_u64(tb, r.next_ms);
    if ((rc = queue_index_del(txn, s->db_sched, tb, 8, o->rcpt_id)) < 0)
        return rc;
    st->by_state[r.state] -= st->by_state[r.state] > 0;
    st->by_state[VL_RCPT_DEFERRED]++;
    st->ambiguous += o->ambiguous;
    r.state = VL_RCPT_DEFERRED;
    r.attempts++;
    r.next_ms = o->next_ms;
    r.code = o->code;
    r.status = o->status ? o->status : "";
    r.status_len = (uint8_t)strlen(r.status);
    r.text = text;
    r.text_len = o->text ? (uint16_t)queue_text_clean(text, o->text, o->text_len) : 0;
    if ((rc = queue_rcpt_put(s, txn, o->rcpt_id, &r, 0)) < 0)
        return rc;
    return 1;
}

static int queue_cmp_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                        void *arg)
{
    const struct queue_cmp *c = arg;
    int rc, applied = 0;
    for (size_t i = 0; i < c->extra_n; i++)
        if ((rc = queue_enq_apply(s, txn, st, &c->extra[i])) < 0)
            return rc;
    for (size_t i = 0; i < c->n; i++) {
        if ((rc = queue_outcome_apply(s, txn, st, &c->o[i])) < 0)
            return rc;
        applied += rc;
    }
    if (c->events && (rc = queue_events_append(s, txn, c->events, c->event_lens, c->n)) < 0)
        return rc;
    return applied;
}

/* ---- validation -------------------------------------------------------- */

static uint64_t queue_msg_id_next(struct vl_queue *q, uint64_t now_ms)
{
    pthread_mutex_lock(&q->id_mu);
    uint64_t id = (now_ms << 20) | q->id_salt;
    if (id <= q->last_msg_id)
        id = q->last_msg_id + 1;
    q->last_msg_id = id;
    pthread_mutex_unlock(&q->id_mu);
    return id ? id : 1;
}

/* Are @p m's events @p ev (NULL: none) as queue_events_append() takes them? */
static bool queue_rcpt_events_valid(const struct vl_queue_new_msg *m,
                                    const struct vl_queue_rcpt_events *ev)
{
    if (!ev || !ev->json)
        return true;
    if (!ev->lens)
        return false;
    for (size_t i = 0; i < m->rcpt_count; i++) {
        const char *j = ev->json[i];
        size_t n = ev->lens[i];
        if (j && (n < 2 || n > VL_QUEUE_EVENT_BYTES_MAX || j[0] != '{'))
            return false;
    }
    return true;
}

/* Validate @p m and parse its recipients into a new array (caller frees). */
static int queue_msg_prepare(struct vl_queue *q, const struct vl_queue_new_msg *m,
                             struct queue_prcpt **out)
{
    struct vl_addr a;
    *out = NULL;
    if (!m || m->rcpt_count == 0 || !m->rcpts || (!m->body && m->body_len))
        return VL_E_INVALID;
    if (m->rcpt_count > VL_RCPTS_PER_MSG_MAX || m->body_len > VL_MSG_BYTES_MAX)
        return VL_E_TOOBIG;
    if (m->return_path_len && (!m->return_path
        || vl_addr_parse(m->return_path, m->return_path_len, &a, NULL) < 0))
        return VL_E_INVALID;
    struct queue_prcpt *p = malloc(m->rcpt_count * sizeof *p);
    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < m->rcpt_count; i++) {
        const char *s = m->rcpts[i];
        size_t len = s ? (m->rcpt_lens ? m->rcpt_lens[i] : strlen(s)) : 0;
        if (!s || vl_addr_parse(s, len, &a, NULL) < 0) {
            free(p);
            return VL_E_INVALID;
        }
        p[i] = (struct queue_prcpt){ .addr = s, .addr_len = (uint16_t)len,
            .domain_off = a.domain_off, .domain_len = a.domain_len,
            .shard = (uint16_t)vl_queue_shard_of(q, s + a.domain_off, a.domain_len),
            .order = (uint32_t)i };
    }
    *out = p;
    return 0;
}

/* By shard, then input order: recipient ids follow the caller's order. */
static int queue_shard_cmp(const void *a, const void *b)
{
    const struct queue_prcpt *x = a, *y = b;
    if (x->shard != y->shard)
        return x->shard < y->shard ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

static int queue_undo_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                         void *arg)
{
    return queue_msg_purge(s, txn, st, *(const uint64_t *)arg);
}

/* Remove @p msg_id from the shards marked in @p done after another failed.
 * A part left behind by a failed undo is PREPARED, so never visible; the
 * next recovery removes it (queue_recover.c). */
static void queue_enq_undo(struct vl_queue *q, const bool *done, uint64_t msg_id)
{
    for (unsigned k = 0; k < q->nshards; k++) {
        struct queue_req req = { .fn = queue_undo_fn, .arg = &msg_id };
        if (done[k])
            (void)queue_submit(q->shards[k], &req);
    }
}

static int queue_publish_fn(struct vl_queue_shard *s, MDB_txn *txn, struct queue_stats_rec *st,
                            void *arg)
{
    (void)st;
    const struct queue_enq *e = arg;           /* the part, now visible with its events */
    int rc = queue_msg_publish(s, txn, e->msg_id);
    if (rc >= 0 && e->ev)
        rc = queue_enq_events(s, txn, e);
    return rc;
}

/* Split the recipients (sorted by shard) into one part per shard. With
 * several, the first part (lowest shard: the coordinator) is written last,
 * visible, with the decision; the others first, hidden (PREPARED). */
static unsigned queue_enq_parts(struct vl_queue *q, const struct vl_queue_new_msg *m,
                                const struct vl_queue_rcpt_events *ev,
                                uint64_t now_ms, const struct queue_prcpt *p,
                                struct queue_enq *e, unsigned *shard, struct queue_pend_rec *pend,
                                struct queue_pend_rec *decision)
{
    unsigned n = 0;
    uint32_t body_crc = queue_crc32c(0, m->body, m->body_len);   /* once for every part */
    *pend = (struct queue_pend_rec){ .state = QUEUE_PEND_PREPARED };
    for (size_t i = 0, j; i < m->rcpt_count; i = j) {
        for (j = i; j < m->rcpt_count && p[j].shard == p[i].shard; j++)
            ;
        vl_assert(n < q->nshards);
        e[n] = (struct queue_enq){ m, 0, now_ms, p + i, j - i, NULL, body_crc, ev };
        shard[n] = p[i].shard;
        pend->shards[shard[n] / 8] |= (uint8_t)(1u << (shard[n] % 8));
        n++;
    }
    *decision = *pend;
    decision->state = QUEUE_PEND_COMMITTED;
    for (unsigned k = 0; n > 1 && k < n; k++)
        e[k].pend = k == 0 ? decision : pend;
    return n;
}

/* Write parts [e, e + n) with message id @p id: hand every shard its part at
 * once (a shard whose leader is busy, e.g. a delivery thread completing,
 * takes ours into its group), then wait for each. @p done marks the shards
 * committed. @return 0 or the first error (-EEXIST first: id collision). */
static int queue_enq_write(struct vl_queue *q, struct queue_enq *e, const unsigned *shard,
                           unsigned n, uint64_t id, bool *done)
{
    struct queue_req req[VL_SHARDS_MAX];
    for (unsigned k = 0; k < n; k++) {
        e[k].msg_id = id;
        req[k] = (struct queue_req){ .fn = queue_enq_fn, .arg = &e[k] };
        queue_submit_start(q->shards[shard[k]], &req[k]);
    }
    int rc = 0;
    for (unsigned k = 0; k < n; k++) {
        int r = queue_submit_wait(q->shards[shard[k]], &req[k]);
        if (r >= 0)
            done[shard[k]] = true;
        else if (rc == 0 || r == -EEXIST)
            rc = r;
    }
    return rc;
}

/* Publish parts [1, n) after the decision; then let the coordinator drop
 * the decision with its next commit. A failure here leaves parts hidden for
 * recovery to publish (the decision stays); the enqueue has succeeded. */
static void queue_enq_publish(struct vl_queue *q, const struct queue_enq *e,
                              const unsigned *shard, unsigned n, uint64_t id)
{
    struct queue_req req[VL_SHARDS_MAX];
    for (unsigned k = 1; k < n; k++) {
        vl_assert(e[k].msg_id == id);
        req[k] = (struct queue_req){ .fn = queue_publish_fn, .arg = (void *)&e[k] };
        queue_submit_start(q->shards[shard[k]], &req[k]);
    }
    bool all = true;
    for (unsigned k = 1; k < n; k++)
        all &= queue_submit_wait(q->shards[shard[k]], &req[k]) >= 0;
    if (all)
        queue_commit_forget(q->shards[shard[0]], id);
}

/* Hold DATA/enqueue.lock shared while a multi-shard enqueue is in flight:
 * recovery (exclusive) never resolves a part whose writer still lives. */
static int queue_enq_lock(struct vl_queue *q)
{
    int rc = 0;
    pthread_mutex_lock(&q->enq_mu);
    if (q->enq_fd < 0) {
        char path[QUEUE_PATH_BYTES_MAX];
        snprintf(path, sizeof path, "%s/%s", q->dir, QUEUE_ENQ_LOCK_FILE);
        q->enq_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (q->enq_fd < 0)
            rc = -errno;
    }
    if (rc == 0 && q->enq_users == 0 && flock(q->enq_fd, LOCK_SH) != 0)
        rc = -errno;
    q->enq_users += rc == 0;
    pthread_mutex_unlock(&q->enq_mu);
    return rc;
}

static void queue_enq_unlock(struct vl_queue *q)
{
    pthread_mutex_lock(&q->enq_mu);
    vl_assert(q->enq_users > 0);
    if (--q->enq_users == 0)
        flock(q->enq_fd, LOCK_UN);
    pthread_mutex_unlock(&q->enq_mu);
}

/* Enqueue parts [e, e + n) with a fresh id: all or nothing. Several parts:
 * the hidden ones first, then the coordinator's (visible, with the decision:
 * its commit is the enqueue's), then the others are published. */
static int queue_enq_all(struct vl_queue *q, struct queue_enq *e, const unsigned *shard,
                         unsigned n, uint64_t now_ms, uint64_t given_id, uint64_t *id_out)
{
    bool done[VL_SHARDS_MAX] = { false };
    uint64_t id = 0;
    int rc = VL_E_STORAGE;
    for (unsigned tries = 0; tries < QUEUE_ENQ_TRIES_MAX; tries++) {
        id = given_id ? given_id : queue_msg_id_next(q, now_ms);
        rc = n > 1 ? queue_enq_write(q, e + 1, shard + 1, n - 1, id, done) : 0;
        if (rc == 0)
            rc = queue_enq_write(q, e, shard, 1, id, done);
        if (rc != -EEXIST || given_id)         /* the caller's id: the caller retries */
            break;
        queue_enq_undo(q, done, id);           /* id collision: another id, all shards */
        memset(done, 0, sizeof done);
    }
    if (rc < 0)
        queue_enq_undo(q, done, id);           /* nothing of it was visible */
    else if (n > 1)
        queue_enq_publish(q, e, shard, n, id);
    *id_out = id;
    return rc;
}

uint64_t vl_queue_msg_id_new(struct vl_queue *q, uint64_t now_ms)
{
    return queue_msg_id_next(q, now_ms);
}

static int queue_enqueue(struct vl_queue *q, const struct vl_queue_new_msg *m,
                         const struct vl_queue_rcpt_events *ev, uint64_t now_ms,
                         uint64_t given_id, uint64_t *msg_id_out)
{
    struct queue_prcpt *p;
    struct queue_enq e[VL_SHARDS_MAX];
    unsigned shard[VL_SHARDS_MAX];
    struct queue_pend_rec pend, decision;
    uint64_t id = 0;
    if (!queue_rcpt_events_valid(m, ev))
        return VL_E_INVALID;
    int rc = queue_msg_prepare(q, m, &p);
    if (rc < 0)
        return rc;
    if (q->nshards > 1)
        qsort(p, m->rcpt_count, sizeof *p, queue_shard_cmp);
    unsigned n = queue_enq_parts(q, m, ev, now_ms, p, e, shard, &pend, &decision);
    if (n > 1)
        rc = queue_enq_lock(q);
    if (rc == 0) {
        rc = queue_enq_all(q, e, shard, n, now_ms, given_id, &id);
        if (n > 1)
            queue_enq_unlock(q);
    }
    free(p);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < n; i++) {            /* new mail: tell the shard's owner */
        struct vl_queue_shard *s = q->shards[shard[i]];
        pthread_mutex_lock(&s->mu);
        if (s->notify_fn)
            s->notify_fn(s->notify_arg);
        pthread_mutex_unlock(&s->mu);
    }
    if (msg_id_out)
        *msg_id_out = id;
    return 0;
}

int vl_queue_enqueue(struct vl_queue *q, const struct vl_queue_new_msg *m,
                     uint64_t now_ms, uint64_t *msg_id_out)
{
    return queue_enqueue(q, m, NULL, now_ms, 0, msg_id_out);
}

int vl_queue_enqueue_id(struct vl_queue *q, const struct vl_queue_new_msg *m,
                        uint64_t now_ms, uint64_t id)
{
    if (id == 0)
        return VL_E_INVALID;
    return queue_enqueue(q, m, NULL, now_ms, id, NULL);
}

/* Submit each single-shard message as its own request (the shard's next
 * group commit carries them together), then wait for all; the others go
 * through queue_enqueue() one by one. */
int vl_queue_enqueue_ids(struct vl_queue *q, const struct vl_queue_new_msg *m,
                         const struct vl_queue_rcpt_events *ev, size_t n, uint64_t now_ms,
                         const uint64_t *ids, int *rcs)
{
    if (n == 0)
        return 0;
    if (!m || !ids || !rcs)
        return VL_E_INVALID;
    struct queue_prcpt **p = calloc(n, sizeof *p);
    struct queue_enq *e = calloc(n, sizeof *e);
    struct queue_req *req = calloc(n, sizeof *req);
    unsigned *sh = calloc(n, sizeof *sh);
    if (!p || !e || !req || !sh) {
        free(p);
        free(e);
        free(req);
        free(sh);
        for (size_t i = 0; i < n; i++)
            rcs[i] = -ENOMEM;
        return -ENOMEM;
    }
    const int later = 1;                                   /* several shards: one by one */
    for (size_t i = 0; i < n; i++) {
        const struct vl_queue_rcpt_events *evi = ev && ev[i].json ? &ev[i] : NULL;
        rcs[i] = !ids[i] || !queue_rcpt_events_valid(&m[i], evi) ? VL_E_INVALID
                 : queue_msg_prepare(q, &m[i], &p[i]);
        if (rcs[i] < 0)
            continue;
        bool one = true;
        for (size_t k = 1; k < m[i].rcpt_count; k++)
            one &= p[i][k].shard == p[i][0].shard;
        if (!one) {
            free(p[i]);
            p[i] = NULL;
            rcs[i] = later;
            continue;
        }
        sh[i] = p[i][0].shard;
        e[i] = (struct queue_enq){ &m[i], ids[i], now_ms, p[i], m[i].rcpt_count, NULL,
                                   queue_crc32c(0, m[i].body, m[i].body_len), evi };
        req[i] = (struct queue_req){ .fn = queue_enq_fn, .arg = &e[i] };
        queue_submit_start(q->shards[sh[i]], &req[i]);
    }
    bool touched[VL_SHARDS_MAX] = { false };
    for (size_t i = 0; i < n; i++) {
        if (!p[i])
            continue;
        int rc = queue_submit_wait(q->shards[sh[i]], &req[i]);
        rcs[i] = rc < 0 ? rc : 0;
        touched[sh[i]] |= rc >= 0;
        free(p[i]);
    }
    for (unsigned k = 0; k < q->nshards; k++) {            /* new mail: tell the owner */
        struct vl_queue_shard *s = q->shards[k];
        if (!touched[k])
            continue;
        pthread_mutex_lock(&s->mu);
        if (s->notify_fn)
            s->notify_fn(s->notify_arg);
        pthread_mutex_unlock(&s->mu);
    }
    int rc_all = 0;
    for (size_t i = 0; i < n; i++) {
        if (rcs[i] == later)
            rcs[i] = queue_enqueue(q, &m[i], ev && ev[i].json ? &ev[i] : NULL, now_ms, ids[i],
                                   NULL);
        if (rc_all == 0 && rcs[i] < 0)
            rc_all = rcs[i];
    }
    free(p);
    free(e);
    free(req);
    free(sh);
    return rc_all;
}

void vl_queue_shard_notify_set(struct vl_queue_shard *s, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->notify_fn = fn;
    s->notify_arg = arg;
    pthread_mutex_unlock(&s->mu);
}

static bool queue_outcome_valid(const struct vl_queue_outcome *o)
{
    if (o->state < VL_RCPT_DEFERRED || o->state > VL_RCPT_EXPIRED || o->code > 999)
        return false;
    if (o->status) {
        size_t n = strnlen(o->status, VL_SMTP_STATUS_BYTES_MAX);
        if (n >= VL_SMTP_STATUS_BYTES_MAX)
            return false;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)o->status[i] <= 0x20 || o->status[i] == 0x7f)
                return false;
    }
    return !(o->text_len && !o->text);
}

static int queue_complete(struct vl_queue_shard *s, const struct vl_queue_outcome *o, size_t n,
                          const char *const *events, const size_t *event_lens,
                          const struct vl_queue_new_msg *extra, size_t extra_n, uint64_t now_ms,
                          bool unlease)
{
    if ((n && !o) || (extra_n && !extra) || extra_n > VL_QUEUE_LEASE_MAX)
        return VL_E_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!queue_outcome_valid(&o[i]))
            return VL_E_INVALID;
    struct queue_enq *e = extra_n ? calloc(extra_n, sizeof *e) : NULL;
    if (extra_n && !e)
        return -ENOMEM;
    int rc = 0;
    size_t prepared = 0;
    for (; prepared < extra_n && rc == 0; prepared++) {
        struct queue_prcpt *p;
        rc = queue_msg_prepare(s->q, &extra[prepared], &p);
        if (rc < 0)
            break;
        /* Atomic with the outcomes: extra messages stay in this shard. */
        e[prepared] = (struct queue_enq){ &extra[prepared], queue_msg_id_next(s->q, now_ms),
                                          now_ms, p, extra[prepared].rcpt_count, NULL,
                                          queue_crc32c(0, extra[prepared].body,
                                                       extra[prepared].body_len), NULL };
    }
    if (rc == 0) {
        struct queue_cmp c = { o, n, e, extra_n, events, event_lens };
        struct queue_req req = { .fn = queue_cmp_fn, .arg = &c };
        rc = queue_submit(s, &req);
    }
    if (rc >= 0 && unlease)
        for (size_t i = 0; i < n; i++)
            queue_lease_del(&s->leases, o[i].rcpt_id);
    for (size_t i = 0; i < prepared && i < extra_n; i++)
        free((void *)e[i].rcpts);
    free(e);
    return rc;
}

int vl_queue_complete(struct vl_queue_shard *s, const struct vl_queue_outcome *o, size_t n,
                      const struct vl_queue_new_msg *extra, size_t extra_n, uint64_t now_ms)
{
    return queue_complete(s, o, n, NULL, NULL, extra, extra_n, now_ms, true);
}

int vl_queue_complete_async(struct vl_queue_shard *s, const struct vl_queue_outcome *o,
                            size_t n, const struct vl_queue_new_msg *extra, size_t extra_n,
                            uint64_t now_ms)
{
    return queue_complete(s, o, n, NULL, NULL, extra, extra_n, now_ms, false);
}

int vl_queue_complete_async_events(struct vl_queue_shard *s, const struct vl_queue_outcome *o,
                                   size_t n, const char *const *events,
                                   const size_t *event_lens,
                                   const struct vl_queue_new_msg *extra, size_t extra_n,
                                   uint64_t now_ms)
{
    if (n && events && !event_lens)
        return VL_E_INVALID;
    return queue_complete(s, o, n, events, event_lens, extra, extra_n, now_ms, false);
}
