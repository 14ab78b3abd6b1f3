/*
 * rx.h - the io_uring reactor: one ring per thread, handles in a fixed slab,
 * a timer heap, and completions delivered to per-handle callbacks.
 *
 * Model. A handle wraps one fd (socket, listener, eventfd, c-ares socket). At
 * most one op of each kind (connect, send, recv, accept, poll) is in flight
 * per handle; starting a second one is -EBUSY. Each op completes exactly once
 * with an rx_event whose res follows the errno convention (>= 0 ok, -errno),
 * except multishot accept, which reports each accepted fd with more = true
 * and stops with an event whose more is false (re-arm if you want more).
 *
 * Deadlines. An op given timeout_ms > 0 carries a linked timeout. When it
 * expires the op reports -ETIMEDOUT (the kernel's -ECANCELED/-ETIME are
 * translated). rx_cancel() makes an op report -ECANCELED.
 *
 * Close. rx_close() cancels every pending op, waits for their CQEs, closes the
 * fd, then delivers one last event with op RX_OP_CLOSE. No other event for
 * that handle follows rx_close(); buffers handed to ops must stay valid until
 * the RX_OP_CLOSE event. After it the handle is stale: calls on it return
 * -EBADF and late CQEs for its slot are counted and dropped (generation).
 *
 * Threads. Everything except rx_wake() must be called on the thread that
 * created the reactor (IORING_SETUP_SINGLE_ISSUER). Callbacks run from
 * rx_run_once() after the whole CQE batch was harvested; they may start ops,
 * add timers and close handles, never run the loop.
 *
 * Memory. Handles and timers come from slabs sized at rx_create(); an empty
 * slab is -EAGAIN (back-pressure), never a malloc.
 */
#ifndef VOLLEY_RX_H
#define VOLLEY_RX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rx_tag.h"
#include "clock.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RX_HANDLE_NONE 0u      /* never a valid handle or timer id */
#define RX_CQE_BATCH_MAX 256u  /* CQEs harvested per loop turn */

typedef uint64_t rx_handle_t;  /* slot:32 | generation:32 */
typedef uint64_t rx_timer_t;   /* timer slot:32 | generation:32 */

struct rx;

/* What a callback receives. For RX_OP_TIMER, h is the timer's id. */
struct rx_event {
    rx_handle_t h;
    enum rx_op op;
    int res;        /* bytes, fd (accept), revents (poll), 0, or -errno */
    bool more;      /* accept: another event of this op will follow */
    void *user;     /* as given to rx_open() / rx_timer_add() */
};

typedef void rx_cb(struct rx *rx, const struct rx_event *ev);

struct rx_conf {
    uint32_t handles_max;    /* fds the reactor manages at once (<= VL_RX_HANDLES_MAX) */
    uint32_t timers_max;     /* pending timers at once */
    uint32_t sq_entries;     /* submission queue size (power of 2); CQ is 4x; 0 = 256 */
    rx_cb *wake_cb;          /* if set: an eventfd wakes the ring, see rx_wake() */
    void *wake_user;
};

struct rx_stats {
    uint64_t cqes;           /* CQEs harvested */
    uint64_t cqes_stale;     /* dropped: slot reused or free (generation mismatch) */
    uint64_t timeouts;       /* ops that reported -ETIMEDOUT */
    uint64_t sends_resubmitted;  /* short sends continued inside the reactor */
    uint64_t timers_fired;
    uint32_t handles_open;
};

/** File descriptors a reactor with @p handles_max handles needs (RLIMIT_NOFILE). */
uint32_t rx_nofile_need(uint32_t handles_max);

/** Make the soft RLIMIT_NOFILE at least @p need, raising it up to the hard
 *  limit if needed. *@p limit gets the soft limit in force.
 *  @return 0, or -EMFILE when the hard limit is lower: raise `ulimit -n`. */
int rx_nofile_ensure(uint64_t need, uint64_t *limit);

/** Create a reactor on the calling thread (which becomes its only user).
 *  Raises the soft RLIMIT_NOFILE if needed and possible.
 *  @return 0 and *@p out, or -EINVAL (bad conf), -ENOMEM, -EMFILE (RLIMIT_NOFILE
 *  below rx_nofile_need(): raise `ulimit -n`), -ENOSYS/-EPERM (io_uring blocked by
 *  seccomp or kernel.io_uring_disabled), or another -errno from io_uring setup. */
int rx_create(struct rx **out, const struct rx_conf *conf);

/** Close every handle's fd, free the ring and slabs. Pending events are
 *  dropped (no callbacks). Owner thread only. */
void rx_destroy(struct rx *rx);

/** Adopt @p fd as a new handle whose events go to @p cb with @p user.
 *  rx_close() will close the fd (rx_detach() will not).
 *  @return 0 and *@p h, or -EAGAIN when the handle slab is empty, -EINVAL. */
int rx_open(struct rx *rx, int fd, rx_cb *cb, void *user, rx_handle_t *h);

/** The fd behind @p h, or -EBADF if stale. */
int rx_fd(const struct rx *rx, rx_handle_t h);

/** Connect to @p addr (copied). Event res: 0 or -errno (-ECONNREFUSED, -ETIMEDOUT). */
int rx_connect(struct rx *rx, rx_handle_t h, const struct sockaddr *addr, socklen_t addr_len,
               int timeout_ms);

/** Send all @p len bytes of @p buf (borrowed until the event), MSG_NOSIGNAL;
 *  short sends are continued inside the reactor within the same deadline.
 *  Event res: @p len, or -errno (-EPIPE, -ECONNRESET, -ETIMEDOUT). */
int rx_send(struct rx *rx, rx_handle_t h, const void *buf, size_t len, int timeout_ms);

/** Receive up to @p cap bytes into @p buf (borrowed until the event).
 *  Event res: bytes (> 0), 0 at end of stream, or -errno (-ETIMEDOUT ...). */
int rx_recv(struct rx *rx, rx_handle_t h, void *buf, size_t cap, int timeout_ms);

/** Accept connections on listening handle @p h (multishot). Each event's res
 *  is a new fd (owned by the callee: rx_open() it or close it) or -errno. */
int rx_accept_multishot(struct rx *rx, rx_handle_t h);

/** One-shot poll of @p h's fd for @p mask (POLLIN|POLLOUT...). Event res: revents. */
int rx_poll(struct rx *rx, rx_handle_t h, unsigned mask);

/** Cancel the pending @p op of @p h: it reports -ECANCELED (or its real result
 *  if it completed first). @return 0, -ENOENT if none is pending, -EBADF. */
int rx_cancel(struct rx *rx, rx_handle_t h, enum rx_op op);

/** Cancel all of @p h's ops, wait for them, close its fd, then deliver
 *  RX_OP_CLOSE. @return 0, -EBADF (stale), -EALREADY (closing). */
int rx_close(struct rx *rx, rx_handle_t h);

/** As rx_close() but the fd stays open (c-ares owns its sockets). */
int rx_detach(struct rx *rx, rx_handle_t h);

/** Call @p cb with @p user (op RX_OP_TIMER) once @p delay_ms have passed.
 *  Timers due at the same time fire in the order they were added.
 *  @return 0 and *@p id, or -EAGAIN when timers_max are pending. */
int rx_timer_add(struct rx *rx, uint64_t delay_ms, rx_cb *cb, void *user, rx_timer_t *id);

/** Cancel a pending timer. @return 0, or VL_E_NOTFOUND (fired or cancelled). */
int rx_timer_cancel(struct rx *rx, rx_timer_t id);

/** Submit what is queued, wait up to @p wait_ms_max (and no longer than the
 *  next timer) for completions, then dispatch one harvested batch and the due
 *  timers. @return events dispatched (>= 0), or -errno from io_uring_enter. */
int rx_run_once(struct rx *rx, int wait_ms_max);

/** Loop rx_run_once() until rx_stop(). @return 0 or a negative error. */
int rx_run(struct rx *rx);
/** Make rx_run() return after the current turn. Owner thread (callbacks). */
void rx_stop(struct rx *rx);

/** Wake the reactor from any thread: wake_cb runs on the owner thread soon.
 *  @return 0, -EINVAL without wake_cb, or -errno from write(2). */
int rx_wake(struct rx *rx);


/** Counters since creation. */
struct rx_stats rx_stats(const struct rx *rx);

/** Tests: queue a NOP whose CQE carries @p user_data verbatim. */
int rx_nop_raw(struct rx *rx, uint64_t user_data);

#ifdef __cplusplus
}
#endif
#endif
