/*
 * cli_queue_bounce.c - `volley queue bounce ID`: every open recipient of
 * message ID becomes BOUNCED (5.0.0 "bounced by the operator") and ONE DSN
 * covering them is enqueued in the same queue commit that retires them,
 * unless the return path is null.
 *
 * Invariants: a recipient is retired and reported at most once (a second
 * bounce finds no open recipient: exit 2 "nothing to bounce"). Recipients are
 * grouped by their queue shard (the shard of their domain); the DSN rides on
 * the commit of the first shard, the other shards commit their outcomes
 * after it. A message whose recipients span several shards is therefore
 * retired shard by shard: a crash in between leaves the later shards'
 * recipients open (a second bounce reports only them).
 *
 * The original's header block for the DSN comes from a lease of the shard
 * (the only queue API that returns bodies), taken as if at the end of time so
 * deferred recipients are included; it is released without completing
 * anything. Recipients beyond BOUNCE_RCPTS_MAX are handled in further rounds,
 * one DSN per round.
 */
#include "cli.h"
#include "cli_queue.h"

#include "dsn.h"
#include "volley/error.h"
#include "volley/limits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BOUNCE_RCPTS_MAX   1000u     /* recipients per round (one DSN each) */
#define BOUNCE_LEASES_MAX  4096u     /* lease calls per shard looking for the body */
#define BOUNCE_STATUS      "5.0.0"
#define BOUNCE_TEXT        "bounced by the operator"

/* Lease shard @p s until message @p id shows up; *out holds the batch (the
 * message is in it) and every other batch taken is released. */
static int bounce_find_msg(struct vl_queue_shard *s, uint64_t id, struct vl_queue_batch **out,
                           const struct vl_queue_msg **msg)
{
    struct vl_queue_batch *held[BOUNCE_LEASES_MAX];
    unsigned nheld = 0;
    int rc = VL_E_NOTFOUND;
    *out = NULL;
    while (nheld < BOUNCE_LEASES_MAX) {
        struct vl_queue_batch *b = NULL;
        int n = vl_queue_lease(s, UINT64_MAX, VL_QUEUE_LEASE_MAX, &b);
        if (n <= 0) {
            rc = n < 0 ? n : VL_E_NOTFOUND;
            break;
        }
        for (size_t i = 0; i < b->msg_count && !*out; i++)
            if (b->msgs[i].id == id) {
                *out = b;
                *msg = &b->msgs[i];
            }
        if (*out) {
            rc = 0;
            break;
        }
        held[nheld++] = b;
    }
    while (nheld > 0)
        vl_queue_batch_release(s, held[--nheld]);
    return rc;
}

/* The DSN for @p n recipients of @p m; *body is malloc'd (caller frees). */
static int bounce_dsn_build(const struct vl_queue_msg *m, const struct vl_queue_rcpt_info *ri,
                            size_t n, char **body, struct vl_queue_new_msg *out,
                            const char **rcpt_slot)
{
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        strcpy(host, "localhost");
    struct dsn_rcpt *rs = calloc(n, sizeof *rs);
    if (!rs)
        return -ENOMEM;
    uint64_t now = vl_clock_wall_ms();
    for (size_t i = 0; i < n; i++)
        rs[i] = (struct dsn_rcpt){ .addr = ri[i].addr, .action = DSN_ACTION_FAILED,
                                   .status = BOUNCE_STATUS, .diag = BOUNCE_TEXT,
                                   .last_attempt_ms = (int64_t)now };
    int rc = dsn_for_message(m, host, rs, (unsigned)n, (int64_t)now,
                             ((uint64_t)getpid() << 8) | 0xffu, body, rcpt_slot, out);
    free(rs);
    return rc;
}

static unsigned bounce_shard_of(struct vl_queue *q, const char *addr)
{
    const char *at = strrchr(addr, '@');
    const char *d = at ? at + 1 : addr;
    return vl_queue_shard_of(q, d, strlen(d));
}

/* One round: bounce up to BOUNCE_RCPTS_MAX open recipients of @p id.
 * @return recipients retired (0 = none open), or an error. */
static int bounce_round(struct vl_queue *q, uint64_t id, struct vl_queue_rcpt_info *ri,
                        int *dsns)
{
    struct vl_queue_msg_info mi;
    size_t nr = 0;
    int rc = vl_queue_show(q, id, &mi, ri, BOUNCE_RCPTS_MAX, &nr);
    if (rc < 0 || nr == 0)
        return rc;
    struct vl_queue_outcome *o = calloc(nr, sizeof *o);
    if (!o)
        return -ENOMEM;
    unsigned first = bounce_shard_of(q, ri[0].addr);
    struct vl_queue_batch *b = NULL;
    const struct vl_queue_msg *m = NULL;
    struct vl_queue_new_msg dsn;
    const char *dsn_rcpt = NULL;
    char *body = NULL;
    bool want_dsn = mi.return_path[0] != '\0';   /* null path: never a DSN */
    if (want_dsn) {
        rc = bounce_find_msg(vl_queue_shard(q, first), id, &b, &m);
        if (rc == 0)
            rc = bounce_dsn_build(m, ri, nr, &body, &dsn, &dsn_rcpt);
        if (rc < 0)
            goto out;
    }
    int total = 0;
    for (unsigned k = 0; k < vl_queue_nshards(q); k++) {
        unsigned shard = (first + k) % vl_queue_nshards(q);
        size_t n = 0;
        for (size_t i = 0; i < nr; i++)
            if (bounce_shard_of(q, ri[i].addr) == shard)
                o[n++] = (struct vl_queue_outcome){
                    .rcpt_id = ri[i].id, .state = VL_RCPT_BOUNCED, .status = BOUNCE_STATUS,
                    .text = BOUNCE_TEXT, .text_len = strlen(BOUNCE_TEXT) };
        if (n == 0)
            continue;
        bool with_dsn = want_dsn && shard == first;
        rc = vl_queue_complete(vl_queue_shard(q, shard), o, n, with_dsn ? &dsn : NULL,
                               with_dsn ? 1 : 0, vl_clock_wall_ms());
        if (rc < 0)
            goto out;
        total += rc;
    }
    *dsns += want_dsn;
    rc = total;
out:
    if (b)
        vl_queue_batch_release(vl_queue_shard(q, first), b);
    free(body);
    free(o);
    return rc;
}

int cli_queue_bounce(struct vl_queue *q, uint64_t id, int json)
{
    struct vl_queue_rcpt_info *ri = calloc(BOUNCE_RCPTS_MAX, sizeof *ri);
    if (!ri) {
        fprintf(stderr, "volley queue bounce: out of memory\n");
        return VL_EXIT_FAIL;
    }
    long total = 0;
    int rounds = 0, rc = 0, dsns = 0;
    /* bounded: each round retires >= 1 recipient or stops */
    while (rounds < (int)(VL_RCPTS_PER_MSG_MAX / BOUNCE_RCPTS_MAX) + 1) {
        rc = bounce_round(q, id, ri, &dsns);
        if (rc == VL_E_NOTFOUND && total > 0)
            rc = 0;                /* the last recipients went, and the message with them */
        if (rc <= 0)
            break;
        total += rc;
        rounds++;
    }
    free(ri);
    if (rc < 0) {
        fprintf(stderr, "volley queue bounce: %016" PRIx64 ": %s\n", id, vl_strerror(rc));
        return rc == VL_E_NOTFOUND && total == 0 ? VL_EXIT_USAGE : VL_EXIT_FAIL;
    }
    if (total == 0) {
        fprintf(stderr, "volley queue bounce: %016" PRIx64 ": nothing to bounce "
                "(no open recipient)\n", id);
        return VL_EXIT_USAGE;
    }
    if (json)
        printf("{\"bounced\":%ld,\"dsns\":%d}\n", total, dsns);
    else
        printf("bounced %ld recipient%s, %d DSN%s\n", total, total == 1 ? "" : "s", dsns,
               dsns == 1 ? "" : "s");
    return VL_EXIT_OK;
}
