/* queue_quar_test.c - issue 9 item 6: a record that cannot be read is
 * quarantined by the lease (kept, counted, never leased again) and the lease
 * returns the others; content checksums find a changed body byte.
 * The bad records are made behind the queue's back through LMDB's C API on
 * the shard's environment (the queue closed meanwhile). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "queue_codec.h"
#include "queue_env.h"
#include "volley/error.h"
#include "volley/queue.h"

#define QUEUE_FX_SHARDS 2u
#define NSHARDS QUEUE_FX_SHARDS
#include "queue_fx.h"

static const char BODY_A[] = "From: a@x.org\r\nSubject: a\r\n\r\nbody of message A\r\n";
static const char BODY_B[] = "From: b@x.org\r\nSubject: b\r\n\r\nbody of message B\r\n";

static uint64_t enq(struct vl_queue *q, const char *body, const char *const *rcpts, size_t n)
{
    return fx_enq(q, body, rcpts, n, T0);
}

enum raw_op { RAW_GET, RAW_PUT, RAW_DEL };

/* One LMDB operation on shard @p k's sub-database @p db, key (@p key,
 * @p klen), with the queue closed; RAW_GET copies the value into @p buf. */
static size_t raw(struct fx *f, unsigned k, const char *db, const void *key, size_t klen,
                  enum raw_op op, void *buf, size_t len)
{
    char path[128];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val kv = { klen, (void *)key }, v = { len, buf };
    vl_queue_close(f->q);
    snprintf(path, sizeof path, "%s/shard-%u", f->dir, k);
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    mdb_env_set_mapsize(env, 64u << 20);
    assert_int_equal(mdb_env_open(env, path, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    size_t got = 0;
    if (op == RAW_GET) {
        MDB_val out;
        assert_int_equal(mdb_get(txn, dbi, &kv, &out), 0);
        assert_true(out.mv_size <= len);
        memcpy(buf, out.mv_data, out.mv_size);
        got = out.mv_size;
    } else if (op == RAW_PUT) {
        assert_int_equal(mdb_put(txn, dbi, &kv, &v, 0), 0);
    } else {
        assert_int_equal(mdb_del(txn, dbi, &kv, NULL), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    assert_int_equal(vl_queue_open(f->dir, NSHARDS, 0, &f->q), 0);
    return got;
}

static struct vl_queue_stats stats(struct fx *f)
{
    struct vl_queue_stats st;
    assert_int_equal(vl_queue_stats(f->q, -1, &st), 0);
    return st;
}

/* Lease shard @p k at T0, check the count, release. @return the count. */
static int lease_count(struct fx *f, unsigned k)
{
    struct vl_queue_batch *b = NULL;
    int n = vl_queue_lease(vl_queue_shard(f->q, k), T0, 100, &b);
    assert_true(n >= 0);
    assert_true(n == 0 ? b == NULL : b != NULL && b->count == (size_t)n);
    vl_queue_batch_release(vl_queue_shard(f->q, k), b);
    return n;
}

/* Deliver everything leasable in shard @p k; @return recipients completed. */
static int deliver_all(struct fx *f, unsigned k)
{
    struct vl_queue_shard *s = vl_queue_shard(f->q, k);
    struct vl_queue_batch *b = NULL;
    int n = vl_queue_lease(s, T0, 100, &b);
    assert_true(n >= 0);
    struct vl_queue_outcome o[100];
    for (int i = 0; i < n; i++)
        o[i] = (struct vl_queue_outcome){ b->rcpts[i].id, VL_RCPT_DELIVERED, 0, 250, "2.0.0",
                                          "ok", 2, false };
    if (n)
        assert_int_equal(vl_queue_complete(s, o, (size_t)n, NULL, 0, T0), n);
    vl_queue_batch_release(s, b);
    return n;
}

static size_t quar_list(struct fx *f, struct vl_queue_quar_info *qi, size_t max)
{
    int n = vl_queue_quarantine_list(f->q, qi, max);
    assert_true(n >= 0);
    return (size_t)n;
}

static void key8(uint8_t kb[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        kb[i] = (uint8_t)v;
}

/* The ids of message @p mid's open recipients, in order. */
static size_t rcpt_ids(struct fx *f, uint64_t mid, uint64_t *ids, size_t max)
{
    struct vl_queue_msg_info mi;
    struct vl_queue_rcpt_info ri[16];
    size_t nr = 0;
    assert_true(max <= 16);
    assert_int_equal(vl_queue_show(f->q, mid, &mi, ri, max, &nr), 0);
    for (size_t i = 0; i < nr; i++)
        ids[i] = ri[i].id;
    return nr;
}

static void test_item6_corrupt_record_quarantined(void **state)
{
    struct fx *f = *state;
    const char *r[] = { "a@c6.org", "b@c6.org", "c@c6.org", "d@c6.org", "e@c6.org" };
    uint64_t mid = enq(f->q, BODY_A, r, 5);
    unsigned k = vl_queue_shard_of(f->q, "c6.org", 6);
    uint64_t ids[5];
    assert_int_equal(rcpt_ids(f, mid, ids, 5), 5);
    uint8_t kb[8];
    key8(kb, ids[2]);
    static const uint8_t junk[40] = { 2, 4, 1 };     /* version 2, kind rcpt, lengths 0 */
    raw(f, k, "rcpt", kb, 8, RAW_PUT, (void *)junk, sizeof junk);
    struct vl_queue_check chk;                       /* the check sees it first */
    assert_int_equal(vl_queue_check(f->q, &chk), 0);
    assert_true(chk.problems >= 1);
    assert_non_null(strstr(chk.first, "does not decode"));
    /* The lease returns the 4 good ones; the bad one is quarantined. */
    struct vl_queue_batch *b = NULL;
    struct vl_queue_shard *s = vl_queue_shard(f->q, k);
    assert_int_equal(vl_queue_lease(s, T0, 100, &b), 4);
    for (size_t i = 0; i < b->count; i++)
        assert_true(b->rcpts[i].id != ids[2]);
    vl_queue_batch_release(s, b);
    struct vl_queue_stats st = stats(f);
    assert_int_equal(st.quarantined, 1);
    assert_int_equal(st.by_state[VL_RCPT_READY], 4);
    struct vl_queue_quar_info qi[8];
    assert_int_equal(quar_list(f, qi, 8), 1);
    assert_false(qi[0].is_msg);
    assert_true(qi[0].id == ids[2]);
    assert_true(qi[0].msg_id == mid);                /* found by its id range */
    assert_string_equal(qi[0].reason, "record_checksum");
    assert_int_equal(qi[0].raw_bytes, sizeof junk);
    assert_int_equal(qi[0].shard, k);
    /* A second lease does not meet it again; the queue is consistent. */
    assert_int_equal(lease_count(f, k), 4);
    assert_int_equal(stats(f).quarantined, 1);
    assert_int_equal(vl_queue_check(f->q, &chk), 0);
    assert_int_equal(chk.problems, 0);
    /* The good ones deliver and the message goes (its open count was right). */
    assert_int_equal(deliver_all(f, k), 4);
    st = stats(f);
    assert_int_equal(st.messages, 0);
    assert_int_equal(st.by_state[VL_RCPT_DELIVERED], 4);
    assert_int_equal(st.quarantined, 1);
}

/* A record of an unknown version, and a v1-shaped one that does not decode. */
static void test_item6_record_version_quarantined(void **state)
{
    struct fx *f = *state;
    const char *r[] = { "a@v6.org", "b@v6.org" };
    uint64_t mid = enq(f->q, BODY_A, r, 2);
    unsigned k = vl_queue_shard_of(f->q, "v6.org", 6);
    uint64_t ids[2];
    assert_int_equal(rcpt_ids(f, mid, ids, 2), 2);
    uint8_t kb[8], rec[2048];
    key8(kb, ids[0]);
    raw(f, k, "rcpt", kb, 8, RAW_GET, rec, sizeof rec);
    rec[0] = 9;                                      /* a version we do not know */
    raw(f, k, "rcpt", kb, 8, RAW_PUT, rec, 40);
    assert_int_equal(lease_count(f, k), 1);
    struct vl_queue_quar_info qi[4];
    assert_int_equal(quar_list(f, qi, 4), 1);
    assert_string_equal(qi[0].reason, "record_version");
    assert_int_equal(deliver_all(f, k), 1);
    assert_int_equal(stats(f).messages, 0);
}

/* A changed byte in a recipient's address: its checksum fails. */
static void test_item6_record_checksum(void **state)
{
    struct fx *f = *state;
    const char *r[] = { "alice@k6.org", "bob@k6.org" };
    uint64_t mid = enq(f->q, BODY_A, r, 2);
    unsigned k = vl_queue_shard_of(f->q, "k6.org", 6);
    uint64_t ids[2];
    assert_int_equal(rcpt_ids(f, mid, ids, 2), 2);
    uint8_t kb[8], rec[2048];
    key8(kb, ids[1]);
    size_t n = raw(f, k, "rcpt", kb, 8, RAW_GET, rec, sizeof rec);
    rec[n - 8] ^= 0x01;                              /* "bob@k6.org" -> "bob@k6/org" */
    raw(f, k, "rcpt", kb, 8, RAW_PUT, rec, n);
    struct vl_queue_batch *b = NULL;
    struct vl_queue_shard *s = vl_queue_shard(f->q, k);
    assert_int_equal(vl_queue_lease(s, T0, 100, &b), 1);
    assert_string_equal(b->rcpts[0].addr, "alice@k6.org");
    vl_queue_batch_release(s, b);
    struct vl_queue_quar_info qi[4];
    assert_int_equal(quar_list(f, qi, 4), 1);
    assert_string_equal(qi[0].reason, "record_checksum");
    assert_true(qi[0].id == ids[1]);
    assert_int_equal(qi[0].raw_bytes, n);
    assert_int_equal(deliver_all(f, k), 1);
}

/* Message A's body vanished: A's recipients are quarantined, B's delivered. */
static void test_item6_missing_body(void **state)
{
    struct fx *f = *state;
    const char *ra[] = { "a1@m6.org", "a2@m6.org", "a3@m6.org" };
    const char *rb[] = { "b1@m6.org", "b2@m6.org" };
    uint64_t ma = enq(f->q, BODY_A, ra, 3), mb = enq(f->q, BODY_B, rb, 2);
    unsigned k = vl_queue_shard_of(f->q, "m6.org", 6);
    uint8_t kb[8];
    key8(kb, ma);
    raw(f, k, "body", kb, 8, RAW_DEL, NULL, 0);
    struct vl_queue_batch *b = NULL;
    struct vl_queue_shard *s = vl_queue_shard(f->q, k);
    assert_int_equal(vl_queue_lease(s, T0, 100, &b), 2);
    for (size_t i = 0; i < b->count; i++)
        assert_true(b->rcpts[i].msg->id == mb);
    vl_queue_batch_release(s, b);
    struct vl_queue_stats st = stats(f);
    assert_int_equal(st.quarantined, 3);
    assert_int_equal(st.messages, 1);                /* A's record went with its rcpts */
    assert_int_equal(st.body_bytes, strlen(BODY_B));
    struct vl_queue_quar_info qi[8];
    assert_int_equal(quar_list(f, qi, 8), 4);        /* A's entry, then its 3 rcpts */
    assert_true(qi[0].is_msg && qi[0].id == ma);
    assert_string_equal(qi[0].reason, "body_missing");
    assert_false(qi[0].body_kept);
    for (size_t i = 1; i < 4; i++) {
        assert_false(qi[i].is_msg);
        assert_true(qi[i].msg_id == ma);
        assert_string_equal(qi[i].reason, "body_missing");
        assert_memory_equal(qi[i].addr, "a", 1);
    }
    assert_int_equal(lease_count(f, k), 2);          /* never met again */
    assert_int_equal(deliver_all(f, k), 2);
    assert_int_equal(stats(f).quarantined, 3);
}

/* Message A's record vanished: its recipients go, one by one as met. */
static void test_item6_missing_message(void **state)
{
    struct fx *f = *state;
    const char *ra[] = { "a1@n6.org", "a2@n6.org" };
    const char *rb[] = { "b1@n6.org" };
    uint64_t ma = enq(f->q, BODY_A, ra, 2);
    enq(f->q, BODY_B, rb, 1);
    unsigned k = vl_queue_shard_of(f->q, "n6.org", 6);
    uint8_t kb[8];
    key8(kb, ma);
    raw(f, k, "msg", kb, 8, RAW_DEL, NULL, 0);
    assert_int_equal(lease_count(f, k), 1);
    struct vl_queue_stats st = stats(f);
    assert_int_equal(st.quarantined, 2);
    struct vl_queue_quar_info qi[8];
    assert_int_equal(quar_list(f, qi, 8), 3);        /* the orphan body is kept too */
    assert_true(qi[0].is_msg && qi[0].body_kept);
    assert_int_equal(qi[0].raw_bytes, 0);
    assert_int_equal(qi[0].body_bytes, strlen(BODY_A));
    assert_string_equal(qi[1].reason, "message_missing");
    assert_int_equal(st.messages, 1);                /* A's count went with its body */
    assert_int_equal(st.body_bytes, strlen(BODY_B));
    assert_int_equal(deliver_all(f, k), 1);
}

/* One byte of message A's body changed on disk: the check names A, the
 * lease quarantines A (body kept as found) and returns B. */
static void test_item6_body_checksum(void **state)
{
    struct fx *f = *state;
    const char *ra[] = { "a1@b6.org", "a2@b6.org" };
    const char *rb[] = { "b1@b6.org", "b2@b6.org" };
    uint64_t ma = enq(f->q, BODY_A, ra, 2), mb = enq(f->q, BODY_B, rb, 2);
    unsigned k = vl_queue_shard_of(f->q, "b6.org", 6);
    uint8_t kb[8], body[256];
    key8(kb, ma);
    size_t n = raw(f, k, "body", kb, 8, RAW_GET, body, sizeof body);
    assert_int_equal(n, strlen(BODY_A));
    body[n - 5] ^= 0x20;                             /* "message A" -> "message a" */
    raw(f, k, "body", kb, 8, RAW_PUT, body, n);
    struct vl_queue_check chk;
    assert_int_equal(vl_queue_check(f->q, &chk), 0);
    assert_int_equal(chk.problems, 1);
    char want[64];
    snprintf(want, sizeof want, "message %016llx: body checksum", (unsigned long long)ma);
    assert_non_null(strstr(chk.first, want));
    struct vl_queue_batch *b = NULL;
    struct vl_queue_shard *s = vl_queue_shard(f->q, k);
    assert_int_equal(vl_queue_lease(s, T0, 100, &b), 2);
    assert_true(b->rcpts[0].msg->id == mb && b->rcpts[1].msg->id == mb);
    vl_queue_batch_release(s, b);
    struct vl_queue_quar_info qi[8];
    assert_int_equal(quar_list(f, qi, 8), 3);
    assert_true(qi[0].is_msg && qi[0].id == ma && qi[0].body_kept);
    assert_string_equal(qi[0].reason, "body_checksum");
    assert_int_equal(qi[0].body_bytes, n);
    assert_int_equal(stats(f).quarantined, 2);
    assert_int_equal(vl_queue_check(f->q, &chk), 0);
    assert_int_equal(chk.problems, 0);
    assert_int_equal(deliver_all(f, k), 2);
}

/* The body goes bad while some of its recipients are leased: those stay
 * with their attempt (and complete it); the others are quarantined. */
static void test_item6_leased_kept(void **state)
{
    struct fx *f = *state;
    const char *r[] = { "a1@l6.org", "a2@l6.org", "a3@l6.org", "a4@l6.org" };
    uint64_t mid = enq(f->q, BODY_A, r, 4);
    unsigned k = vl_queue_shard_of(f->q, "l6.org", 6);
    struct vl_queue_shard *s = vl_queue_shard(f->q, k);
    struct vl_queue_batch *b1 = NULL, *b2 = NULL;
    assert_int_equal(vl_queue_lease(s, T0, 2, &b1), 2);
    /* Change the body through the queue's own environment while leased. */
    MDB_txn *txn;
    uint8_t kb[8];
    key8(kb, mid);
    MDB_val key = { 8, kb }, v;
    assert_int_equal(mdb_txn_begin(s->env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_get(txn, s->db_body, &key, &v), 0);
    char copy[256];
    memcpy(copy, v.mv_data, v.mv_size);
    copy[0] ^= 0x20;
    v.mv_data = copy;
    assert_int_equal(mdb_put(txn, s->db_body, &key, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    assert_int_equal(vl_queue_lease(s, T0, 100, &b2), 0);
    assert_null(b2);
    assert_int_equal(stats(f).quarantined, 2);
    struct vl_queue_outcome o[2];
    for (int i = 0; i < 2; i++)
        o[i] = (struct vl_queue_outcome){ b1->rcpts[i].id, VL_RCPT_DELIVERED, 0, 250, "2.0.0",
                                          "ok", 2, false };
    assert_int_equal(vl_queue_complete(s, o, 2, NULL, 0, T0), 2);
    vl_queue_batch_release(s, b1);
    struct vl_queue_stats st = stats(f);
    assert_int_equal(st.messages, 0);
    assert_int_equal(st.by_state[VL_RCPT_DELIVERED], 2);
}

/* The quarantine write fails (disk full on its commit): the lease still
 * returns the good recipients; the next lease quarantines. */
static void test_item6_quarantine_write_fails(void **state)
{
    struct fx *f = *state;
    const char *r[] = { "a@w6.org", "b@w6.org", "c@w6.org" };
    uint64_t mid = enq(f->q, BODY_A, r, 3);
    unsigned k = vl_queue_shard_of(f->q, "w6.org", 6);
    uint64_t ids[3];
    assert_int_equal(rcpt_ids(f, mid, ids, 3), 3);
    uint8_t kb[8];
    key8(kb, ids[0]);
    static const uint8_t junk[8] = { 2, 4 };
    raw(f, k, "rcpt", kb, 8, RAW_PUT, (void *)junk, sizeof junk);
    queue_fault_arm(1, EIO);                         /* the quarantine's first write */
    assert_int_equal(lease_count(f, k), 2);
    assert_true(queue_fault_disarm(NULL));
    assert_int_equal(stats(f).quarantined, 0);
    assert_int_equal(lease_count(f, k), 2);
    assert_int_equal(stats(f).quarantined, 1);
    assert_int_equal(deliver_all(f, k), 2);
}

static void test_item6_quarantine_purge(void **state)
{
    struct fx *f = *state;
    const char *r[] = { "a@p6.org", "b@p6.org" };
    uint64_t mid = enq(f->q, BODY_A, r, 2);
    unsigned k = vl_queue_shard_of(f->q, "p6.org", 6);
    uint8_t kb[8];
    key8(kb, mid);
    raw(f, k, "body", kb, 8, RAW_DEL, NULL, 0);
    assert_int_equal(lease_count(f, k), 0);
    struct vl_queue_stats st = stats(f);
    assert_int_equal(st.quarantined, 2);
    uint64_t purged = st.purged;
    assert_int_equal(vl_queue_quarantine_purge(f->q), 2);
    st = stats(f);
    assert_int_equal(st.quarantined, 0);
    assert_int_equal(st.purged, purged + 2);
    struct vl_queue_quar_info qi[4];
    assert_int_equal(quar_list(f, qi, 4), 0);
}

/* Records written before checksums (version 1: no trailer, no body CRC,
 * the shorter stats record) lease and check as before, and a record that
 * changes is rewritten as version 2. */
static void test_item6_v1_records_still_work(void **state)
{
    struct fx *f = *state;
    const char *r[] = { "a@o6.org", "b@o6.org" };
    uint64_t mid = enq(f->q, BODY_A, r, 2);
    unsigned k = vl_queue_shard_of(f->q, "o6.org", 6);
    uint64_t ids[2];
    assert_int_equal(rcpt_ids(f, mid, ids, 2), 2);
    uint8_t kb[8], rec[2048], v1[2048];
    for (int i = 0; i < 2; i++) {                     /* both recipients as version 1 */
        key8(kb, ids[i]);
        size_t n = raw(f, k, "rcpt", kb, 8, RAW_GET, rec, sizeof rec);
        rec[0] = 1;
        raw(f, k, "rcpt", kb, 8, RAW_PUT, rec, n - QUEUE_REC_CRC_BYTES);
    }
    key8(kb, mid);                                    /* the message as version 1 */
    size_t n = raw(f, k, "msg", kb, 8, RAW_GET, rec, sizeof rec);
    memcpy(v1, rec, QUEUE_MSG_REC_V1_HEAD_BYTES);
    size_t rp = n - QUEUE_MSG_REC_HEAD_BYTES - QUEUE_REC_CRC_BYTES;
    memcpy(v1 + QUEUE_MSG_REC_V1_HEAD_BYTES, rec + QUEUE_MSG_REC_HEAD_BYTES, rp);
    v1[0] = 1;
    raw(f, k, "msg", kb, 8, RAW_PUT, v1, QUEUE_MSG_REC_V1_HEAD_BYTES + rp);
    n = raw(f, k, "meta", "stats", 5, RAW_GET, rec, sizeof rec);   /* stats as version 1 */
    assert_int_equal(n, QUEUE_STATS_REC_BYTES);
    rec[0] = 1;
    raw(f, k, "meta", "stats", 5, RAW_PUT, rec, QUEUE_STATS_REC_V1_BYTES);
    struct vl_queue_check chk;
    assert_int_equal(vl_queue_check(f->q, &chk), 0);
    assert_int_equal(chk.problems, 0);
    struct vl_queue_batch *b = NULL;
    struct vl_queue_shard *s = vl_queue_shard(f->q, k);
    assert_int_equal(vl_queue_lease(s, T0, 100, &b), 2);
    assert_memory_equal(b->rcpts[0].msg->body, BODY_A, strlen(BODY_A));
    struct vl_queue_outcome o = { b->rcpts[0].id, VL_RCPT_DEFERRED, T0 + 1000, 451, "4.0.0",
                                  "later", 5, false };
    uint64_t deferred = b->rcpts[0].id;
    assert_int_equal(vl_queue_complete(s, &o, 1, NULL, 0, T0), 1);
    vl_queue_batch_release(s, b);
    assert_int_equal(stats(f).quarantined, 0);
    key8(kb, deferred);
    raw(f, k, "rcpt", kb, 8, RAW_GET, rec, sizeof rec);
    assert_int_equal(rec[0], 2);                      /* rewritten with its checksum */
    key8(kb, mid);
    raw(f, k, "msg", kb, 8, RAW_GET, rec, sizeof rec);
    assert_int_equal(rec[0], 1);                      /* untouched so far */
    assert_int_equal(vl_queue_check(f->q, &chk), 0);
    assert_int_equal(chk.problems, 0);
    b = NULL;
    s = vl_queue_shard(f->q, k);       /* raw() closed and reopened the queue */
    assert_int_equal(vl_queue_lease(s, T0 + 1000, 100, &b), 2);
    struct vl_queue_outcome d[2];
    for (int i = 0; i < 2; i++)
        d[i] = (struct vl_queue_outcome){ b->rcpts[i].id, VL_RCPT_DELIVERED, 0, 250, "2.0.0",
                                          "ok", 2, false };
    assert_int_equal(vl_queue_complete(s, d, 2, NULL, 0, T0), 2);
    vl_queue_batch_release(s, b);
    assert_int_equal(stats(f).messages, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_item6_corrupt_record_quarantined, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_item6_record_version_quarantined, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_item6_record_checksum, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_item6_missing_body, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_item6_missing_message, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_item6_body_checksum, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_item6_leased_kept, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_item6_quarantine_write_fails, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_item6_quarantine_purge, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_item6_v1_records_still_work, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
