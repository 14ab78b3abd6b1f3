/*
 * rx.c - the io_uring reactor (see rx.h for the contract).
 *
 * Shape: submit and wait once per turn, harvest a batch of CQEs into rx->done
 * and advance the CQ, then dispatch (h2o, TigerBeetle): handlers queue SQEs
 * but never harvest, so the stack stays flat. Due timers fire after the batch.
 *
 * Invariants:
 *  - user_data is a tag (rx_tag.h), never a pointer. A slot stays allocated
 *    while its in-flight count is non-zero, so the only CQEs that can miss
 *    their slot are linked timeouts (ignored by op) and test NOPs (counted).
 *  - inflight counts the CQEs still owed for a slot: one per op SQE (multishot
 *    accept: until the CQE without F_MORE), cancel and close SQE. A linked
 *    timeout is never counted (IOSQE_CQE_SKIP_SUCCESS; its CQE, if any, is
 *    dropped by op).
 *  - A closing slot delivers no event until its single RX_OP_CLOSE; the fd is
 *    closed only after every op on it completed (close does not cancel).
 * Diagnostics: never logs; counters in struct rx_stats.
 */
#include "rx.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "timer.h"

#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif

#define RX_NOFILE_SPARE  64u        /* listeners, eventfds, logs, stdio */
#define RX_OPS_TIMED     (RX_OP_POLL + 1)

static inline uint32_t rx_bit(enum rx_op op) { return 1u << op; }

struct rx_slot {
    int fd;
    uint32_t gen;                   /* bumped when the slot is released */
    uint32_t inflight;              /* CQEs still owed (see file header) */
    uint32_t busy;                  /* rx_bit(op) per op kind in flight */
    uint32_t timed;                 /* ops submitted with a linked timeout */
    uint32_t cancel_req;            /* ops we cancelled: -ECANCELED stays so */
    bool in_use, closing, own_fd;
    rx_cb *cb;
    void *user;
    const uint8_t *send_buf;        /* rx_send continuation */
    size_t send_len, send_done;
    uint64_t send_deadline_ms;      /* 0 = none */
    struct sockaddr_storage addr;   /* rx_connect's peer, read by the kernel */
    struct __kernel_timespec ts[RX_OPS_TIMED];
};

struct rx_timer_ctx {
    rx_cb *cb;
    void *user;
};

struct rx_done {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};

struct rx {
    struct io_uring ring;
    struct rx_conf conf;
    struct rx_slot *slots;
    uint32_t *free_slots, free_count;
    uint32_t *closed, closed_count;       /* closed synchronously, event not yet delivered */
    struct timer_heap timers;
    struct rx_timer_ctx *timer_ctx;       /* by timer slot */
    struct rx_done done[RX_CQE_BATCH_MAX];
    struct rx_stats stats;
    int wake_fd;
    uint64_t wake_val;
    bool stop;
};


uint32_t rx_nofile_need(uint32_t handles_max) { return handles_max + RX_NOFILE_SPARE; }

int rx_nofile_ensure(uint64_t need, uint64_t *limit)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    *limit = rl.rlim_cur;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
        return -EMFILE;
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -EMFILE;
    *limit = need;
    return 0;
}

static int rx_ring_init(struct rx *rx)
{
    struct io_uring_params p = { 0 };
    unsigned sq = rx->conf.sq_entries;
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
              IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = 4 * sq;                      /* CQ 4x SQ: bursts of multishot accepts */
    int rc = io_uring_queue_init_params(sq, &rx->ring, &p);
    if (rc == -EINVAL) {                        /* kernel < 6.1: no DEFER_TASKRUN */
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = 4 * sq;
        rc = io_uring_queue_init_params(sq, &rx->ring, &p);
    }
    return rc;
}

static int rx_wake_arm(struct rx *rx);

static int rx_alloc(struct rx *rx)
{
    uint32_t n = rx->conf.handles_max;
    rx->slots = calloc(n, sizeof *rx->slots);
    rx->free_slots = calloc(n, sizeof *rx->free_slots);
    rx->closed = calloc(n, sizeof *rx->closed);
    rx->timer_ctx = calloc(rx->conf.timers_max, sizeof *rx->timer_ctx);
    if (!rx->slots || !rx->free_slots || !rx->closed || !rx->timer_ctx)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        rx->slots[i].gen = 1;
        rx->slots[i].fd = -1;
        rx->free_slots[i] = n - 1 - i;
    }
    rx->free_count = n;
    return timer_heap_init(&rx->timers, rx->conf.timers_max);
}

int rx_create(struct rx **out, const struct rx_conf *conf)
{
    *out = NULL;
    if (conf->handles_max == 0 || conf->handles_max > VL_RX_HANDLES_MAX ||
        conf->timers_max == 0 || (conf->sq_entries & (conf->sq_entries - 1)) != 0)
        return -EINVAL;
    uint64_t limit;
    int rc = rx_nofile_ensure(rx_nofile_need(conf->handles_max), &limit);
    if (rc < 0)
        return rc;
    struct rx *rx = calloc(1, sizeof *rx);
    if (!rx)
        return -ENOMEM;
    rx->conf = *conf;
    if (rx->conf.sq_entries == 0)
        rx->conf.sq_entries = 256;
    rx->wake_fd = -1;
    rc = rx_alloc(rx);
    if (rc < 0)
        goto fail;
    rc = rx_ring_init(rx);
    if (rc < 0) {
        rx->ring.ring_fd = -1;
        goto fail;
    }
    if (conf->wake_cb) {
        rx->wake_fd = eventfd(0, EFD_CLOEXEC);
        rc = rx->wake_fd < 0 ? -errno : rx_wake_arm(rx);
        if (rc < 0)
            goto fail;
    }
    *out = rx;
    return 0;
fail:
    if (rx->ring.ring_fd > 0)
        io_uring_queue_exit(&rx->ring);
    if (rx->wake_fd >= 0)
        close(rx->wake_fd);
    timer_heap_fini(&rx->timers);
    free(rx->slots);
    free(rx->free_slots);
    free(rx->closed);
    free(rx->timer_ctx);
    free(rx);
    return rc;
}

void rx_destroy(struct rx *rx)
{
    if (!rx)
        return;
    io_uring_queue_exit(&rx->ring);             /* cancels and reaps what the kernel holds */
    for (uint32_t i = 0; i < rx->conf.handles_max; i++)
        if (rx->slots[i].in_use && rx->slots[i].own_fd && rx->slots[i].fd >= 0)
            close(rx->slots[i].fd);
    if (rx->wake_fd >= 0)
        close(rx->wake_fd);
    timer_heap_fini(&rx->timers);
    free(rx->slots);
    free(rx->free_slots);
    free(rx->closed);
    free(rx->timer_ctx);
    free(rx);
}

/* ---- handles ---------------------------------------------------------- */

static struct rx_slot *rx_slot_get(const struct rx *rx, rx_handle_t h, uint32_t *slot)
{
    uint32_t i = (uint32_t)(h >> 32);
    if (i >= rx->conf.handles_max)
        return NULL;
    struct rx_slot *s = &rx->slots[i];
    if (!s->in_use || s->gen != (uint32_t)h)
        return NULL;
    *slot = i;
    return s;
}

int rx_open(struct rx *rx, int fd, rx_cb *cb, void *user, rx_handle_t *h)
{
    if (fd < 0 || !cb)
        return -EINVAL;
    if (rx->free_count == 0)
        return -EAGAIN;
    uint32_t i = rx->free_slots[--rx->free_count];
    struct rx_slot *s = &rx->slots[i];
    vl_assert(!s->in_use && s->inflight == 0);
    uint32_t gen = s->gen;
    memset(s, 0, sizeof *s);
    *s = (struct rx_slot){ .fd = fd, .gen = gen, .in_use = true, .own_fd = true,
                           .cb = cb, .user = user };
    rx->stats.handles_open++;
    *h = (uint64_t)i << 32 | gen;
    return 0;
}

int rx_fd(const struct rx *rx, rx_handle_t h)
{
    uint32_t i;
    const struct rx_slot *s = rx_slot_get(rx, h, &i);
    return s ? s->fd : -EBADF;
}

static void rx_slot_release(struct rx *rx, uint32_t i)
{
    struct rx_slot *s = &rx->slots[i];
    vl_assert(s->in_use && s->inflight == 0);
    s->in_use = false;
    s->fd = -1;
    if (++s->gen == 0)
        s->gen = 1;                             /* 0 would make RX_HANDLE_NONE valid */
    rx->free_slots[rx->free_count++] = i;
    rx->stats.handles_open--;
}

/* ---- submission --------------------------------------------------------- */

/* An SQE with room for @p need in a row (an op and its linked timeout). SQ
 * full: submit, then retry once. NULL only if the kernel takes nothing. */
static struct io_uring_sqe *rx_sqe(struct rx *rx, unsigned need)
{
    if (io_uring_sq_space_left(&rx->ring) < need)
        io_uring_submit(&rx->ring);
    if (io_uring_sq_space_left(&rx->ring) < need)
        return NULL;
    return io_uring_get_sqe(&rx->ring);
}

static void rx_op_commit(struct rx *rx, struct io_uring_sqe *sqe, struct rx_slot *s, uint32_t i,
                         enum rx_op op, int timeout_ms)
{
    vl_assert(op < RX_OPS_TIMED && !(s->busy & rx_bit(op)));
    io_uring_sqe_set_data64(sqe, rx_tag(op, i, s->gen));
    s->busy |= rx_bit(op);
    s->cancel_req &= ~rx_bit(op);
    s->timed &= ~rx_bit(op);
    s->inflight++;
    if (timeout_ms <= 0)
        return;
    struct __kernel_timespec *ts = &s->ts[op];
    ts->tv_sec = timeout_ms / 1000;
    ts->tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
    sqe->flags |= IOSQE_IO_LINK;
    struct io_uring_sqe *t = io_uring_get_sqe(&rx->ring);
    vl_assert(t != NULL);                       /* rx_sqe(rx, 2) reserved it */
    io_uring_prep_link_timeout(t, ts, 0);
    io_uring_sqe_set_data64(t, rx_tag(RX_OP_LINK_TIMEOUT, i, s->gen));
    t->flags |= IOSQE_CQE_SKIP_SUCCESS;
    s->timed |= rx_bit(op);
}

/* Common checks of every op start: live, not closing, op kind idle. */
static int rx_op_begin(struct rx *rx, rx_handle_t h, enum rx_op op, int timeout_ms,
                       struct rx_slot **sp, uint32_t *i, struct io_uring_sqe **sqe)
{
    struct rx_slot *s = rx_slot_get(rx, h, i);
    if (!s || s->closing)
        return -EBADF;
    if (s->busy & rx_bit(op))
        return -EBUSY;
    *sqe = rx_sqe(rx, timeout_ms > 0 ? 2 : 1);
    if (!*sqe)
        return -EBUSY;
    *sp = s;
    return 0;
}

int rx_connect(struct rx *rx, rx_handle_t h, const struct sockaddr *addr, socklen_t addr_len,
               int timeout_ms)
{
    struct rx_slot *s;
    struct io_uring_sqe *sqe;
    uint32_t i;
    if (addr_len == 0 || addr_len > sizeof s->addr)
        return -EINVAL;
    int rc = rx_op_begin(rx, h, RX_OP_CONNECT, timeout_ms, &s, &i, &sqe);
    if (rc < 0)
        return rc;
    memcpy(&s->addr, addr, addr_len);
    io_uring_prep_connect(sqe, s->fd, (struct sockaddr *)&s->addr, addr_len);
    rx_op_commit(rx, sqe, s, i, RX_OP_CONNECT, timeout_ms);
    return 0;
}

static void rx_send_prep(struct rx *rx, struct io_uring_sqe *sqe, struct rx_slot *s, uint32_t i,
                         int timeout_ms)
{
    io_uring_prep_send(sqe, s->fd, s->send_buf + s->send_done, s->send_len - s->send_done,
                       MSG_NOSIGNAL);
    rx_op_commit(rx, sqe, s, i, RX_OP_SEND, timeout_ms);
}

int rx_send(struct rx *rx, rx_handle_t h, const void *buf, size_t len, int timeout_ms)
{
    struct rx_slot *s;
    struct io_uring_sqe *sqe;
    uint32_t i;
    if (len == 0 || len > INT32_MAX)
        return -EINVAL;
    int rc = rx_op_begin(rx, h, RX_OP_SEND, timeout_ms, &s, &i, &sqe);
    if (rc < 0)
        return rc;
    s->send_buf = buf;
    s->send_len = len;
    s->send_done = 0;
    s->send_deadline_ms = timeout_ms > 0 ? vl_clock_mono_ms() + (uint64_t)timeout_ms : 0;
    rx_send_prep(rx, sqe, s, i, timeout_ms);
    return 0;
}

int rx_recv(struct rx *rx, rx_handle_t h, void *buf, size_t cap, int timeout_ms)
{
    struct rx_slot *s;
    struct io_uring_sqe *sqe;
    uint32_t i;
    if (cap == 0 || cap > INT32_MAX)
        return -EINVAL;
    int rc = rx_op_begin(rx, h, RX_OP_RECV, timeout_ms, &s, &i, &sqe);
    if (rc < 0)
        return rc;
    io_uring_prep_recv(sqe, s->fd, buf, cap, 0);
    rx_op_commit(rx, sqe, s, i, RX_OP_RECV, timeout_ms);
    return 0;
}

int rx_accept_multishot(struct rx *rx, rx_handle_t h)
{
    struct rx_slot *s;
    struct io_uring_sqe *sqe;
    uint32_t i;
    int rc = rx_op_begin(rx, h, RX_OP_ACCEPT, 0, &s, &i, &sqe);
    if (rc < 0)
        return rc;
    io_uring_prep_multishot_accept(sqe, s->fd, NULL, NULL, SOCK_CLOEXEC);
    rx_op_commit(rx, sqe, s, i, RX_OP_ACCEPT, 0);
    return 0;
}

int rx_poll(struct rx *rx, rx_handle_t h, unsigned mask)
{
    struct rx_slot *s;
    struct io_uring_sqe *sqe;
    uint32_t i;
    int rc = rx_op_begin(rx, h, RX_OP_POLL, 0, &s, &i, &sqe);
    if (rc < 0)
        return rc;
    io_uring_prep_poll_add(sqe, s->fd, mask);
    rx_op_commit(rx, sqe, s, i, RX_OP_POLL, 0);
    return 0;
}

int rx_cancel(struct rx *rx, rx_handle_t h, enum rx_op op)
{
    uint32_t i;
    struct rx_slot *s = rx_slot_get(rx, h, &i);
    if (!s || s->closing)
        return -EBADF;
    if (op >= RX_OPS_TIMED || !(s->busy & rx_bit(op)))
        return -ENOENT;
    struct io_uring_sqe *sqe = rx_sqe(rx, 1);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_cancel64(sqe, rx_tag(op, i, s->gen), 0);
    io_uring_sqe_set_data64(sqe, rx_tag(RX_OP_CANCEL, i, s->gen));
    s->cancel_req |= rx_bit(op);
    s->inflight++;
    return 0;
}

/* Closing and idle: close the fd through the ring (or, with no SQE, at once
 * and queue the event), then RX_OP_CLOSE releases the slot. */
static void rx_close_finish(struct rx *rx, struct rx_slot *s, uint32_t i)
{
    if (!s->closing || s->inflight != 0)
        return;
    struct io_uring_sqe *sqe = rx_sqe(rx, 1);
    if (!sqe) {
        if (s->own_fd)
            close(s->fd);
        rx->closed[rx->closed_count++] = i;
        s->inflight = 1;                        /* owed: the queued close event */
        return;
    }
    if (s->own_fd)
        io_uring_prep_close(sqe, s->fd);
    else
        io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, rx_tag(RX_OP_CLOSE, i, s->gen));
    s->inflight = 1;
}

static int rx_close_begin(struct rx *rx, rx_handle_t h, bool own_fd)
{
    uint32_t i;
    struct rx_slot *s = rx_slot_get(rx, h, &i);
    if (!s)
        return -EBADF;
    if (s->closing)
        return -EALREADY;
    s->closing = true;
    s->own_fd = s->own_fd && own_fd;
    if (s->busy) {
        struct io_uring_sqe *sqe = rx_sqe(rx, 1);
        if (sqe) {
            io_uring_prep_cancel_fd(sqe, s->fd, IORING_ASYNC_CANCEL_ALL);
            io_uring_sqe_set_data64(sqe, rx_tag(RX_OP_CANCEL, i, s->gen));
            s->cancel_req |= s->busy;
            s->inflight++;
        } else {
            shutdown(s->fd, SHUT_RDWR);         /* socket ops then complete by themselves */
        }
    }
    rx_close_finish(rx, s, i);
    return 0;
}

int rx_close(struct rx *rx, rx_handle_t h) { return rx_close_begin(rx, h, true); }
int rx_detach(struct rx *rx, rx_handle_t h) { return rx_close_begin(rx, h, false); }

int rx_nop_raw(struct rx *rx, uint64_t user_data)
{
    uint32_t i = rx_tag_slot(user_data);
    if (i < rx->conf.handles_max && rx->slots[i].in_use && rx->slots[i].gen == rx_tag_gen(user_data))
        return -EINVAL;                         /* would break a live slot's accounting */
    struct io_uring_sqe *sqe = rx_sqe(rx, 1);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* ---- timers ------------------------------------------------------------- */

int rx_timer_add(struct rx *rx, uint64_t delay_ms, rx_cb *cb, void *user, rx_timer_t *id)
{
    if (!cb)
        return -EINVAL;
    if (timer_add(&rx->timers, vl_clock_mono_ms() + delay_ms, 0, id) < 0)
        return -EAGAIN;
    rx->timer_ctx[*id >> 32] = (struct rx_timer_ctx){ cb, user };
    return 0;
}

int rx_timer_cancel(struct rx *rx, rx_timer_t id) { return timer_cancel(&rx->timers, id); }

/* Fire the timers due now; those added meanwhile wait for the next turn. */
static int rx_timers_fire(struct rx *rx)
{
    uint64_t now = vl_clock_mono_ms(), cookie, id;
    uint32_t budget = timer_count(&rx->timers);
    int n = 0;
    while (budget-- > 0 && timer_pop_due(&rx->timers, now, &cookie, &id)) {
        struct rx_timer_ctx c = rx->timer_ctx[id >> 32];
        struct rx_event ev = { .h = id, .op = RX_OP_TIMER, .res = 0, .user = c.user };
        rx->stats.timers_fired++;
        n++;
        c.cb(rx, &ev);
    }
    return n;
}

/* ---- completion --------------------------------------------------------- */

static void rx_deliver(struct rx *rx, struct rx_slot *s, uint32_t i, enum rx_op op, int res,
                       bool more)
{
    struct rx_event ev = { .h = (uint64_t)i << 32 | s->gen, .op = op, .res = res, .more = more,
                           .user = s->user };
    s->cb(rx, &ev);
}

static void rx_close_done(struct rx *rx, struct rx_slot *s, uint32_t i, int res)
{
    vl_assert(s->closing && s->inflight == 1);
    s->inflight = 0;
    struct rx_event ev = { .h = (uint64_t)i << 32 | s->gen, .op = RX_OP_CLOSE, .res = res,
                           .user = s->user };
    rx_cb *cb = s->cb;
    rx_slot_release(rx, i);                     /* stale from here: the callback may reopen */
    cb(rx, &ev);
}

/* A send completed res bytes: continue within the deadline, or report. */
static bool rx_send_continue(struct rx *rx, struct rx_slot *s, uint32_t i, int *res)
{
    if (*res == 0) {
        *res = -EPIPE;                          /* no progress: never spin */
        return false;
    }
    s->send_done += (size_t)*res;
    if (s->send_done >= s->send_len) {
        *res = (int)s->send_len;
        return false;
    }
    int timeout_ms = 0;
    if (s->send_deadline_ms) {
        uint64_t now = vl_clock_mono_ms();
        if (now >= s->send_deadline_ms) {
            *res = -ETIMEDOUT;
            return false;
        }
        timeout_ms = (int)(s->send_deadline_ms - now);
    }
    struct io_uring_sqe *sqe = rx_sqe(rx, timeout_ms > 0 ? 2 : 1);
    if (!sqe) {
        *res = -EBUSY;
        return false;
    }
    rx->stats.sends_resubmitted++;
    rx_send_prep(rx, sqe, s, i, timeout_ms);
    return true;
}

static void rx_op_done(struct rx *rx, struct rx_slot *s, uint32_t i, enum rx_op op,
                       const struct rx_done *d)
{
    bool more = op == RX_OP_ACCEPT && (d->flags & IORING_CQE_F_MORE);
    int res = d->res;
    vl_assert(s->busy & rx_bit(op));
    if (!more) {
        vl_assert(s->inflight > 0);
        s->inflight--;
        s->busy &= ~rx_bit(op);
    }
    if (s->closing) {
        if (op == RX_OP_ACCEPT && res >= 0)
            close(res);                         /* nobody will adopt it */
        rx_close_finish(rx, s, i);
        return;
    }
    if ((res == -ECANCELED || res == -ETIME) && (s->timed & rx_bit(op)) &&
        !(s->cancel_req & rx_bit(op))) {
        res = -ETIMEDOUT;
        rx->stats.timeouts++;
    }
    if (op == RX_OP_SEND && res >= 0 && rx_send_continue(rx, s, i, &res))
        return;
    if (op == RX_OP_SEND && res == -ETIMEDOUT && !(s->timed & rx_bit(op)))
        rx->stats.timeouts++;                   /* deadline passed between two parts */
    rx_deliver(rx, s, i, op, res, more);
}

static void rx_handle_done(struct rx *rx, const struct rx_done *d)
{
    enum rx_op op = rx_tag_op(d->user_data);
    uint32_t i = rx_tag_slot(d->user_data);
    struct rx_slot *s = i < rx->conf.handles_max ? &rx->slots[i] : NULL;
    if (VL_NEVER(s == NULL) || !s->in_use || s->gen != rx_tag_gen(d->user_data) ||
        op == RX_OP_NOP) {
        rx->stats.cqes_stale++;                 /* a slot's previous user, or a test NOP */
        return;
    }
    switch (op) {
    case RX_OP_CANCEL:
        vl_assert(s->inflight > 0);
        s->inflight--;
        rx_close_finish(rx, s, i);
        break;
    case RX_OP_CLOSE:
        rx_close_done(rx, s, i, d->res);
        break;
    default:
        rx_op_done(rx, s, i, op, d);
        break;
    }
}

static int rx_wake_arm(struct rx *rx)
{
    struct io_uring_sqe *sqe = rx_sqe(rx, 1);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, rx->wake_fd, &rx->wake_val, sizeof rx->wake_val, 0);
    io_uring_sqe_set_data64(sqe, rx_tag(RX_OP_WAKE, RX_TAG_SLOT_MAX, 0));
    return 0;
}

int rx_wake(struct rx *rx)
{
    uint64_t one = 1;
    if (rx->wake_fd < 0)
        return -EINVAL;
    return write(rx->wake_fd, &one, sizeof one) == (ssize_t)sizeof one ? 0 : -errno;
}

static void rx_dispatch(struct rx *rx, const struct rx_done *d)
{
    struct rx_event ev = { .op = RX_OP_WAKE, .res = d->res, .user = rx->conf.wake_user };
    switch (rx_tag_op(d->user_data)) {
    case RX_OP_LINK_TIMEOUT: break;             /* the op itself reports the timeout */
    case RX_OP_WAKE:         rx_wake_arm(rx); rx->conf.wake_cb(rx, &ev); break;
    case RX_OP_CONNECT:
    case RX_OP_SEND:
    case RX_OP_RECV:
    case RX_OP_ACCEPT:
    case RX_OP_POLL:
    case RX_OP_CANCEL:
    case RX_OP_CLOSE:
    case RX_OP_NOP:          rx_handle_done(rx, d); break;
    default: vl_panic("bad user_data %016llx", (unsigned long long)d->user_data);
    }
}

/* Slots closed without an SQE: deliver their RX_OP_CLOSE now. Callbacks may
 * close more; each slot is queued at most once, so this ends. */
static int rx_closed_flush(struct rx *rx)
{
    int n = 0;
    for (uint32_t k = 0; k < rx->closed_count; k++, n++)
        rx_close_done(rx, &rx->slots[rx->closed[k]], rx->closed[k], 0);
    rx->closed_count = 0;
    return n;
}

int rx_run_once(struct rx *rx, int wait_ms_max)
{
    uint64_t now = vl_clock_mono_ms(), next = timer_next_ms(&rx->timers);
    uint64_t wait_ms = wait_ms_max < 0 ? UINT64_MAX : (uint64_t)wait_ms_max;
    if (next != UINT64_MAX)
        wait_ms = next <= now ? 0 : (next - now < wait_ms ? next - now : wait_ms);
    if (rx->closed_count)
        wait_ms = 0;
    struct io_uring_cqe *cqe = NULL;
    int rc;
    if (wait_ms == UINT64_MAX) {
        rc = io_uring_submit_and_wait(&rx->ring, 1);
    } else {
        struct __kernel_timespec ts = { .tv_sec = (long long)(wait_ms / 1000),
                                        .tv_nsec = (long long)(wait_ms % 1000) * 1000000 };
        rc = io_uring_submit_and_wait_timeout(&rx->ring, &cqe, 1, &ts, NULL);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
        return rc;
    struct io_uring_cqe *cqes[RX_CQE_BATCH_MAX];
    unsigned n = io_uring_peek_batch_cqe(&rx->ring, cqes, RX_CQE_BATCH_MAX);
    for (unsigned k = 0; k < n; k++)
        rx->done[k] = (struct rx_done){ cqes[k]->user_data, cqes[k]->res, cqes[k]->flags };
    io_uring_cq_advance(&rx->ring, n);          /* the kernel may reuse those entries now */
    rx->stats.cqes += n;
    for (unsigned k = 0; k < n; k++)
        rx_dispatch(rx, &rx->done[k]);
    return (int)n + rx_closed_flush(rx) + rx_timers_fire(rx);
}

int rx_run(struct rx *rx)
{
    rx->stop = false;
    while (!rx->stop) {
        int rc = rx_run_once(rx, -1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void rx_stop(struct rx *rx) { rx->stop = true; }

struct rx_stats rx_stats(const struct rx *rx) { return rx->stats; }
