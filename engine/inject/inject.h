/*
 * inject.h - the SMTP intake (issue 11): `volley run --listen` accepts mail
 * over SMTP and queues it for the engine in the same process.
 *
 * Design. One intake thread with its own io_uring reactor (engine/io/rx.h)
 * accepts on every --listen address and drives one pure server machine
 * (engine/smtp/smtp_server.h) per connection: strict CRLF.CRLF, the smuggling
 * rules, line and size limits come from there. The shards' reactors are left
 * to delivery: an intake thread is the simplest correct start, and the
 * intake's cost is the queue commit, not the parsing. Measured (2026-12-06,
 * 2 cores, 12,800 10 KB messages from smtp-source over 64 sessions into
 * `run --hold`): the intake thread used 0.78 CPU-s of 3.7 s, the 64 workers
 * 1.1 s together; the rate follows fsync latency x messages per group commit
 * and the CPU of the wake-ups around each commit, so N intake threads on
 * SO_REUSEPORT (or the shards' reactors) would not raise it here: not done. At the final dot the
 * message goes to a small pool of commit workers (inject_commit.c) that
 * normalise it (engine/msg/msg.h), add a Received: line (RFC 5321 4.4) and
 * call vl_queue_enqueue(), which is durable on return and group-commits the
 * workers' concurrent enqueues (one fsync for many messages): so the reactor
 * never waits for an fsync, and the 250 (with the queue id) is sent only
 * after every shard holding part of the message committed it. The queue's
 * notify hook (vl_queue_shard_notify_set) wakes those shards at once.
 *
 * AUTH credentials are checked (crypt_r) on the same workers; a failure is
 * answered 535 5.7.8 after a per-address delay (250 ms doubled per failure
 * in the last 10 minutes, at most 4 s; inject_int.h INJ_AUTH_*).
 *
 * Policy. Relay: a client may name recipients only if its address is in
 * cfg->allow (--allow), or, when no --allow is given, if it is loopback;
 * else 554 5.7.1 at RCPT (never an open relay). Limits: SIZE and 552 5.3.4
 * (--max-msg-size), 452 4.5.3 past --max-rcpts-per-msg, 500 5.5.2 for an
 * over-long line, 421 4.7.0 over --max-conns-per-ip or after too many bad
 * commands, 421 4.4.2 after --intake-cmd-timeout without a command line or
 * --intake-data-timeout without a DATA/BDAT block (RFC 5321 4.5.3.2; both
 * default to --intake-timeout, 5m), 452 4.3.1 when the queue cannot be written (and at MAIL for a
 * second after that), so nothing already queued is harmed and service
 * resumes by itself.
 * Diagnostics: evt=received (INFO) per accepted message; start-up errors on
 * stderr.
 */
#ifndef VOLLEY_INJECT_H
#define VOLLEY_INJECT_H

#include "volley/config.h"
#include "volley/queue.h"

#include <stdint.h>

struct inject;

#define INJECT_MEM_MAX_DEFAULT (512ull << 20)   /* --intake-mem-max default: 512 MiB */

/* The intake's own options (parsed by `volley run`, engine/cli/cli_run.c). */
struct inject_opts {
    uint64_t cmd_ms_timeout;      /* --intake-cmd-timeout: waiting for a command line;
                                     0 = cfg->intake_ms_timeout (--intake-timeout, 5m) */
    uint64_t data_ms_timeout;     /* --intake-data-timeout: waiting for the next DATA or
                                     BDAT block; 0 = cfg->intake_ms_timeout */
    uint64_t mem_max;             /* --intake-mem-max: message octets buffered across all
                                     sessions; past it a new DATA/BDAT gets 452 4.3.1;
                                     0 = INJECT_MEM_MAX_DEFAULT */
};

/** Bind every cfg->listens address and start the intake thread queueing
 *  into @p q (all borrowed until inject_stop(); @p o may be NULL: defaults).
 *  Prints what failed on stderr ("volley run: --listen ...").
 *  @return 0 and *@p out, or -errno (bind, io_uring, threads). */
int inject_start(const struct vl_config *cfg, const struct inject_opts *o, struct vl_queue *q,
                 struct inject **out);

/** Stop accepting, close every connection (an open transaction is dropped:
 *  nothing of it was queued), wait for the commits in flight, free.
 *  NULL is a no-op. */
void inject_stop(struct inject *in);

#endif
