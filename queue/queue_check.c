/*
 * queue_check.c - the queue's invariant checker (vl_queue_check).
 *
 * Leases are never written, so after a crash every open recipient is in the
 * sched index and leasable, and LMDB commits are atomic; the only start-up
 * work is resolving multi-shard enqueues a crash interrupted
 * (queue_recover.c). This file proves it: it walks a shard in one read
 * transaction and checks every invariant of queue_schema.h, content
 * checksums included (every record's, every body's: a changed byte is
 * found), and the quarantine's entries and count. O(queue).
 * Diagnostics: never logs; the first problem is described in the report.
 */
#include "queue_crc.h"
#include "queue_env.h"
#include "queue_quar.h"
#include "queue_store.h"

#include "volley/error.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct check_ctx {
    struct vl_queue_shard *s;
    MDB_txn *txn;
    struct vl_queue_check *out;
    uint64_t by_state[VL_RCPT_STATE_COUNT];
    uint64_t body_bytes, msg_count;
    uint64_t hidden;                     /* recipients of PREPARED parts: not in sched */
};

static void check_fail(struct check_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void check_fail(struct check_ctx *c, const char *fmt, ...)
{
    if (c->out->problems++ == 0) {
        int n = snprintf(c->out->first, sizeof c->out->first, "shard %u: ", c->s->index);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->out->first + n, sizeof c->out->first - (size_t)n, fmt, ap);
        va_end(ap);
    }
}

/* Is (key, id) present in a DUPSORT index? */
static bool check_has(struct check_ctx *c, MDB_dbi dbi, const void *key, size_t klen, uint64_t id)
{
    MDB_cursor *cur;
    uint8_t vb[8];
    queue_key_u64(vb, id);
    MDB_val k = { klen, (void *)key }, v = { 8, vb };
    if (mdb_cursor_open(c->txn, dbi, &cur) != 0)
        return false;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH);
    mdb_cursor_close(cur);
    return rc == 0;
}

static uint64_t check_entries(struct check_ctx *c, MDB_dbi dbi)
{
    MDB_stat st;
    return mdb_stat(c->txn, dbi, &st) == 0 ? st.ms_entries : 0;
}

/* Message @p id must exist with rcpt_open == @p run open recipients. */
static void check_msg_run(struct check_ctx *c, uint64_t id, uint32_t run)
{
    uint8_t kb[8];
    struct queue_msg_rec m;
    queue_key_u64(kb, id);
    MDB_val k = { 8, kb }, v;
    if (mdb_get(c->txn, c->s->db_msg, &k, &v) != 0)
        check_fail(c, "recipients of message %016" PRIx64 " without its record", id);
    else if (queue_msg_rec_decode(v.mv_data, v.mv_size, &m) < 0)
        check_fail(c, "message %016" PRIx64 ": record does not decode", id);
    else if (m.rcpt_open != run)
        check_fail(c, "message %016" PRIx64 ": rcpt_open %u but %u open recipients", id,
                   m.rcpt_open, run);
}

/* Every recipient record: decodes, indexed in sched and dom, counted. */
static int check_rcpts(struct check_ctx *c)
{
    MDB_cursor *cur;
    MDB_val k, v;
    char dom[256];
    uint64_t run_msg = 0;
    uint32_t run = 0;
    int rc = mdb_cursor_open(c->txn, c->s->db_rcpt, &cur);
    if (rc)
        return queue_mdb_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct queue_rcpt_rec r;
        uint64_t id = k.mv_size == 8 ? queue_key_u64_get(k.mv_data) : 0;
        c->out->rcpts++;
        if (id == 0 || queue_rcpt_rec_decode(v.mv_data, v.mv_size, &r) < 0) {
            check_fail(c, "recipient %016" PRIx64 ": record does not decode (%s)", id,
                       queue_quar_reason_name(queue_quar_rcpt_reason(&v)));
            continue;
        }
        c->by_state[r.state]++;
        uint8_t tb[8];
        queue_key_u64(tb, r.next_ms);
        queue_lower(dom, r.addr + r.domain_off, r.domain_len);
        int hidden = queue_pend_hidden(c->s, c->txn, r.msg_id);
        if (hidden < 0)
            check_fail(c, "message %016" PRIx64 ": pend record does not decode", r.msg_id);
        c->hidden += hidden > 0;
        if (hidden > 0 && check_has(c, c->s->db_sched, tb, 8, id))
            check_fail(c, "recipient %016" PRIx64 " of an unpublished part is in sched", id);
        if (hidden == 0 && !check_has(c, c->s->db_sched, tb, 8, id))
            check_fail(c, "recipient %016" PRIx64 " missing from the sched index", id);
        if (!check_has(c, c->s->db_dom, dom, r.domain_len, id))
            check_fail(c, "recipient %016" PRIx64 " missing from the dom index", id);
        if (run && r.msg_id != run_msg)
            check_msg_run(c, run_msg, run), run = 0;
        run_msg = r.msg_id;
        run++;
    }
    if (run)
        check_msg_run(c, run_msg, run);
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : queue_mdb_err(rc);
}

/* Every message record: decodes, has recipients open, has its body. */
static int check_msgs(struct check_ctx *c)
{
    MDB_cursor *cur;
    MDB_val k, v, bv;
    int rc = mdb_cursor_open(c->txn, c->s->db_msg, &cur);
    if (rc)
        return queue_mdb_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct queue_msg_rec m;
        c->out->messages++;
        c->msg_count++;
        if (queue_msg_rec_decode(v.mv_data, v.mv_size, &m) < 0 || k.mv_size != 8
            || m.id != queue_key_u64_get(k.mv_data)) {
            check_fail(c, "a message record does not decode");
            continue;
        }
        c->body_bytes += m.size;
        if (m.rcpt_open == 0)
            check_fail(c, "message %016" PRIx64 " kept with no open recipient", m.id);
        if (mdb_get(c->txn, c->s->db_body, &k, &bv) != 0 || bv.mv_size != m.size)
            check_fail(c, "message %016" PRIx64 ": body missing or of the wrong size", m.id);
        else if (m.body_crc_set && queue_crc32c(0, bv.mv_data, bv.mv_size) != m.body_crc)
            check_fail(c, "message %016" PRIx64 ": body checksum mismatch (body_checksum)",
                       m.id);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : queue_mdb_err(rc);
}

/* Every pend record decodes; a PREPARED one has its message here. */
static int check_pends(struct check_ctx *c)
{
    MDB_cursor *cur;
    MDB_val k, v, mv;
    int rc = mdb_cursor_open(c->txn, c->s->db_pend, &cur);
    if (rc)
        return queue_mdb_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct queue_pend_rec p;
        uint64_t id = k.mv_size == 8 ? queue_key_u64_get(k.mv_data) : 0;
        if (id == 0 || queue_pend_rec_decode(v.mv_data, v.mv_size, &p) < 0)
            check_fail(c, "pend record %016" PRIx64 " does not decode", id);
        else if (p.state == QUEUE_PEND_PREPARED && mdb_get(c->txn, c->s->db_msg, &k, &mv) != 0)
            check_fail(c, "pend record %016" PRIx64 " without its message", id);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : queue_mdb_err(rc);
}

/* Every quarantine entry decodes; its recipients are out of the queue. */
static int check_quar(struct check_ctx *c, uint64_t *rcpts)
{
    MDB_cursor *cur;
    MDB_val k, v, rv;
    *rcpts = 0;
    int rc = mdb_cursor_open(c->txn, c->s->db_quar, &cur);
    if (rc)
        return queue_mdb_err(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct queue_quar_rec q;
        const uint8_t *kb = k.mv_data;
        uint64_t id = k.mv_size == QUEUE_QUAR_KEY_BYTES ? queue_key_u64_get(kb + 1) : 0;
        if (id == 0 || queue_quar_rec_decode(v.mv_data, v.mv_size, &q) < 0
            || (q.what == QUEUE_QUAR_RCPT) != (kb[0] == 'r')) {
            check_fail(c, "quarantine entry %016" PRIx64 " does not decode", id);
            continue;
        }
        if (q.what != QUEUE_QUAR_RCPT)
            continue;
        (*rcpts)++;
        MDB_val rk = { 8, (void *)(kb + 1) };
        if (mdb_get(c->txn, c->s->db_rcpt, &rk, &rv) == 0)
            check_fail(c, "recipient %016" PRIx64 " both quarantined and queued", id);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : queue_mdb_err(rc);
}

static int check_shard(struct vl_queue_shard *s, struct vl_queue_check *out)
{
    struct check_ctx c = { .s = s, .out = out };
    MDB_val k = { sizeof QUEUE_KEY_STATS - 1, (void *)QUEUE_KEY_STATS }, v;
    struct queue_stats_rec st;
    int rc = queue_txn_begin(s, false, &c.txn);
    if (rc < 0)
        return rc;
    rc = check_rcpts(&c);
    if (rc == 0)
        rc = check_msgs(&c);
    if (rc == 0)
        rc = check_pends(&c);
    uint64_t quarantined = 0;
    if (rc == 0)
        rc = check_quar(&c, &quarantined);
    if (rc == 0 && (mdb_get(c.txn, s->db_meta, &k, &v) != 0
                    || queue_stats_rec_decode(v.mv_data, v.mv_size, &st) < 0))
        check_fail(&c, "stats record missing or corrupt");
    else if (rc == 0) {
        uint64_t open = c.by_state[VL_RCPT_READY] + c.by_state[VL_RCPT_DEFERRED];
        if (st.by_state[VL_RCPT_READY] != c.by_state[VL_RCPT_READY]
            || st.by_state[VL_RCPT_DEFERRED] != c.by_state[VL_RCPT_DEFERRED])
            check_fail(&c, "stats say %" PRIu64 " ready + %" PRIu64 " deferred, records %"
                       PRIu64 " + %" PRIu64, st.by_state[VL_RCPT_READY],
                       st.by_state[VL_RCPT_DEFERRED], c.by_state[VL_RCPT_READY],
                       c.by_state[VL_RCPT_DEFERRED]);
        if (st.quarantined != quarantined)
            check_fail(&c, "stats say %" PRIu64 " quarantined, quarantine holds %" PRIu64,
                       st.quarantined, quarantined);
        if (st.messages != c.msg_count || st.body_bytes != c.body_bytes)
            check_fail(&c, "stats say %" PRIu64 " messages, records %" PRIu64, st.messages,
                       c.msg_count);
        if (check_entries(&c, s->db_sched) != open - c.hidden
            || check_entries(&c, s->db_dom) != open)
            check_fail(&c, "index entries (sched %" PRIu64 ", dom %" PRIu64 ") != %" PRIu64
                       " open recipients (%" PRIu64 " unpublished)",
                       check_entries(&c, s->db_sched), check_entries(&c, s->db_dom), open,
                       c.hidden);
    }
    queue_txn_abort(s, c.txn);
    return rc;
}

int vl_queue_check(struct vl_queue *q, struct vl_queue_check *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned k = 0; k < q->nshards; k++) {
        int rc = check_shard(q->shards[k], out);
        if (rc < 0)
            return rc;
    }
    return 0;
}
