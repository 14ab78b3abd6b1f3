/*
 * queue_campaign.c - open recipients by campaign or tenant (issue 15): the
 * X-Volley-Campaign (X-Volley-Tenant) header of each message with open recipients, read from
 * its stored body (the header stays in the queue; the delivery shards strip
 * it from what they send). Read-only: one read transaction per shard, so it
 * runs beside an engine. Cost: a walk of every message record and a look at
 * the header section of each open message's body.
 */
#include "queue_codec.h"
#include "queue_env.h"
#include "volley/error.h"
#include "volley/queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The first word of the first @p hdr field ("Name:") of the header section
 * of @p b into @p id ("" none); bytes outside [A-Za-z0-9._:-] become '_'. */
static void camp_of_body(const char *hdr, const uint8_t *b, size_t len, char *id, size_t cap)
{
    size_t p = 0, hl = strlen(hdr), n = 0;
    id[0] = '\0';
    while (p < len) {
        const uint8_t *eol = memchr(b + p, '\n', len - p);
        size_t end = eol ? (size_t)(eol - b) + 1 : len;
        if (end - p <= 2 && (b[p] == '\r' || b[p] == '\n'))
            return;                                          /* end of the header */
        if (end - p > hl && !strncasecmp((const char *)b + p, hdr, hl)) {
            for (size_t i = p + hl; i < len && n + 1 < cap; i++) {
                uint8_t c = b[i];
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                    if (n)
                        break;
                    if (c == '\n' && !(i + 1 < len && (b[i + 1] == ' ' || b[i + 1] == '\t')))
                        break;                               /* empty field */
                    continue;
                }
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == ':';
                id[n++] = ok ? (char)c : '_';
            }
            id[n] = '\0';
            return;
        }
        p = end;
    }
}

struct camp_acc {
    const char *hdr;
    struct vl_queue_campaign_count *c;
    size_t n, cap;
    uint64_t none, other;
};

static void camp_add(struct camp_acc *a, const char *id, uint64_t rcpts)
{
    if (!id[0]) {
        a->none += rcpts;
        return;
    }
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->c[i].campaign, id)) {
            a->c[i].rcpts += rcpts;
            a->c[i].messages++;
            return;
        }
    if (a->n == a->cap) {
        a->other += rcpts;
        return;
    }
    struct vl_queue_campaign_count *e = &a->c[a->n++];
    snprintf(e->campaign, sizeof e->campaign, "%s", id);
    e->rcpts = rcpts;
    e->messages = 1;
}

static int camp_shard(struct vl_queue_shard *s, struct camp_acc *a)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = queue_txn_begin(s, false, &txn);
    if (rc < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->db_msg, &cur)) != 0) {
        queue_txn_abort(s, txn);
        return queue_mdb_err(rc);
    }
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct queue_msg_rec m;
        if (queue_msg_rec_decode(v.mv_data, v.mv_size, &m) < 0 || m.rcpt_open == 0)
            continue;                    /* unreadable ones: volley queue check names them */
        MDB_val bv;
        char id[VL_QUEUE_CAMPAIGN_BYTES_MAX + 1] = "";
        if (mdb_get(txn, s->db_body, &k, &bv) == 0)
            camp_of_body(a->hdr, bv.mv_data, bv.mv_size, id, sizeof id);
        camp_add(a, id, m.rcpt_open);
    }
    mdb_cursor_close(cur);
    queue_txn_abort(s, txn);
    return rc == MDB_NOTFOUND ? 0 : queue_mdb_err(rc);
}

static int camp_cmp(const void *x, const void *y)
{
    const struct vl_queue_campaign_count *a = x, *b = y;
    if (a->rcpts != b->rcpts)
        return a->rcpts < b->rcpts ? 1 : -1;
    return strcmp(a->campaign, b->campaign);
}

int vl_queue_campaigns(struct vl_queue *q, struct vl_queue_campaign_count *out, size_t max,
                       uint64_t *none_rcpts, uint64_t *other_rcpts)
{
    return vl_queue_header_ids(q, "X-Volley-Campaign", out, max, none_rcpts, other_rcpts);
}

int vl_queue_header_ids(struct vl_queue *q, const char *header,
                        struct vl_queue_campaign_count *out, size_t max, uint64_t *none_rcpts,
                        uint64_t *other_rcpts)
{
    char hdr[80];
    if (!header || strlen(header) + 2 > sizeof hdr)
        return VL_E_INVALID;
    snprintf(hdr, sizeof hdr, "%s:", header);
    struct camp_acc a = { hdr, calloc(VL_QUEUE_CAMPAIGNS_SCAN_MAX, sizeof *a.c), 0,
                          VL_QUEUE_CAMPAIGNS_SCAN_MAX, 0, 0 };
    if (!a.c)
        return -ENOMEM;
    int rc = 0;
    for (unsigned k = 0; k < vl_queue_nshards(q) && rc == 0; k++)
        rc = camp_shard(vl_queue_shard(q, k), &a);
    if (rc < 0) {
        free(a.c);
        return rc;
    }
    qsort(a.c, a.n, sizeof *a.c, camp_cmp);
    size_t m = a.n < max ? a.n : max;
    for (size_t i = m; i < a.n; i++)
        a.other += a.c[i].rcpts;
    memcpy(out, a.c, m * sizeof *out);
    free(a.c);
    *none_rcpts = a.none;
    *other_rcpts = a.other;
    return (int)m;
}
