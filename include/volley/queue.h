/*
 * queue.h - the persistent, sharded recipient queue (LMDB underneath; no LMDB
 * type appears here).
 *
 * Layout: DATA/queue.meta records the shard count; DATA/shard-K/ is one LMDB
 * environment per shard, so shards never share a writer lock. A recipient
 * lives in shard vl_domain_hash(domain) % nshards (extra messages added by
 * vl_queue_complete() live in the completing shard: atomicity wins there).
 *
 * Durability: every function that changes the queue returns only after the
 * LMDB commit (with fsync) that holds the change. Concurrent enqueues and
 * completions on one shard, from any threads of this process, share one
 * write transaction and one fsync (group commit). Other processes may use the
 * same DATA directory at the same time (LMDB's lock file).
 *
 * Leases live in memory only, in the shard handle: after a crash every
 * recipient that was leased but not completed is ready again (at-least-once).
 * So only one process may lease from a DATA directory: an engine opens the
 * queue with VL_QUEUE_ENGINE, which holds an exclusive lock on DATA/lock
 * (flock, released by the kernel when the process dies) and records its PID
 * there; a second engine is refused with VL_E_LOCKED. Operator changes
 * (retry, bounce, purge) open with VL_QUEUE_ADMIN, which takes the same lock:
 * refused while an engine runs, and no engine starts meanwhile. Reads
 * (stats, list, show, check) and enqueues take no lock.
 *
 * Quarantine: a recipient whose record cannot be read (it does not decode,
 * or fails its checksum), or whose message record or body is missing or
 * fails its checksum, is never leased: vl_queue_lease() moves it (and such a
 * message, record and body as found) into the shard's quarantine, counts it
 * in vl_queue_stats.quarantined, logs it once (evt=quarantined) and returns
 * the other recipients. Content checksums (CRC32C) are written with every
 * recipient record and body and verified as they are leased and by
 * vl_queue_check(); opening the queue checks no content (it stays O(ready)).
 *
 * Final recipients (delivered, bounced, expired) are deleted, not kept as
 * tombstones; a message whose recipients in a shard are all final is deleted
 * there with its body. Per-state counters are kept in a stats record updated
 * in the same transaction, so vl_queue_stats() stays exact.
 *
 * Errors: negative -errno or VL_E_* (include/volley/error.h). VL_E_QUEUE_FULL
 * means the disk is full (or a file-size limit was hit); nothing committed
 * before is harmed. VL_E_SHARDS: the directory was created with another shard
 * count (vl_queue_shards_recorded() names it).
 */
#ifndef VOLLEY_QUEUE_H
#define VOLLEY_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volley/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vl_queue;          /* whole queue: every shard; thread-safe for enqueue */
struct vl_queue_shard;    /* one shard: lease/complete from its owning thread only */

/** Recipient states as stored on disk (values are part of the format). */
enum vl_rcpt_state {
    VL_RCPT_READY     = 1,  /* never tried, or retried now */
    VL_RCPT_DEFERRED  = 2,  /* waiting for its next attempt time */
    VL_RCPT_DELIVERED = 3,  /* final (counted, record deleted) */
    VL_RCPT_BOUNCED   = 4,  /* final */
    VL_RCPT_EXPIRED   = 5,  /* final: queue lifetime over */
};
#define VL_RCPT_STATE_COUNT 6

#define VL_QUEUE_CREATE        0x1u   /* create DATA and its shards if missing */
#define VL_QUEUE_ENGINE        0x2u   /* this process leases: lock DATA/lock (one engine) */
#define VL_QUEUE_ADMIN         0x4u   /* operator changes: lock DATA/lock (no engine) */

#define VL_QUEUE_MSG_8BIT      0x1u   /* body has octets > 127 (needs BODY=8BITMIME) */
#define VL_QUEUE_MSG_SMTPUTF8  0x2u   /* an address needs SMTPUTF8 */

#define VL_QUEUE_LEASE_MAX       65536u  /* recipients per vl_queue_lease() call */

/** A message to enqueue. Everything is borrowed for the call only. */
struct vl_queue_new_msg {
    const char *return_path;       /* validated mailbox, or "" for the null path <> */
    size_t return_path_len;
    const void *body;              /* normalised message (CRLF, headers; see msg.h) */
    size_t body_len;
    uint32_t flags;                /* VL_QUEUE_MSG_* */
    const char *const *rcpts;      /* recipient mailboxes (validated again here) */
    const size_t *rcpt_lens;       /* NULL: each rcpts[i] is NUL-terminated */
    size_t rcpt_count;             /* 1 .. VL_RCPTS_PER_MSG_MAX */
};

/** Events stored with an enqueued message (issue 16: "injected"): one per
 *  recipient, in rcpts order (@p json[i] NULL: none), each a JSON object of
 *  @p lens[i] bytes (2 .. VL_QUEUE_EVENT_BYTES_MAX, starting with '{'). Each
 *  goes to the events outbox of its recipient's shard in the transaction
 *  that makes the recipient visible (its enqueue; for a hidden part of a
 *  multi-shard message, its publish), so it comes before any event of that
 *  recipient's outcomes. A crash between a multi-shard message's decision
 *  and its publish leaves the hidden parts' events out (recovery publishes
 *  the recipients without them). */
struct vl_queue_rcpt_events {
    const char *const *json;
    const size_t *lens;
};

/** One recipient's fate at the end of an attempt. */
struct vl_queue_outcome {
    uint64_t rcpt_id;
    enum vl_rcpt_state state;      /* DELIVERED, DEFERRED, BOUNCED or EXPIRED */
    uint64_t next_ms;              /* DEFERRED: next attempt time (ms since epoch) */
    uint16_t code;                 /* last reply code, 0 if none */
    const char *status;            /* enhanced status "x.y.z" or NULL */
    const char *text;              /* reply text or NULL; capped, controls stripped */
    size_t text_len;
    bool ambiguous;                /* DEFERRED after the final dot got no reply: maybe
                                      delivered; counted in vl_queue_stats.ambiguous */
};

/** A message as a lease batch carries it. Owned by the batch. */
struct vl_queue_msg {
    uint64_t id;
    uint64_t created_ms;
    uint32_t flags;                /* VL_QUEUE_MSG_* */
    const char *return_path;       /* NUL-terminated; "" = null path */
    size_t return_path_len;
    const uint8_t *body;           /* a copy, once per message per batch */
    size_t body_len;               /* octets, CRLF counted, unstuffed: SIZE= */
};

/** A leased recipient. Strings are NUL-terminated and owned by the batch. */
struct vl_queue_rcpt {
    uint64_t id;
    const struct vl_queue_msg *msg;
    const char *addr;
    size_t addr_len;
    const char *domain;            /* lowercased copy of the address's domain */
    size_t domain_len;
    uint32_t attempts;             /* attempts made before this one */
    enum vl_rcpt_state state;      /* READY or DEFERRED */
};

/** Result of vl_queue_lease(): recipients grouped by domain, then message,
 *  then recipient id. Everything lives until vl_queue_batch_release(). */
struct vl_queue_batch {
    size_t count;
    struct vl_queue_rcpt *rcpts;
    size_t msg_count;
    struct vl_queue_msg *msgs;
};

struct vl_queue_stats {
    uint64_t by_state[VL_RCPT_STATE_COUNT];  /* READY/DEFERRED: now; final: cumulative */
    uint64_t purged;                         /* recipients removed by purge (cumulative) */
    uint64_t ambiguous;                      /* deferrals after an unanswered final dot
                                                (cumulative; a duplicate may result) */
    uint64_t quarantined;                    /* recipients in quarantine now (never
                                                leased; vl_queue_quarantine_list) */
    uint64_t messages;                       /* message records (per shard holding rcpts) */
    uint64_t body_bytes;                     /* bodies stored */
    uint64_t disk_bytes;                     /* data files' size on disk */
    uint64_t commits;                        /* this process: write groups (1 txn each) */
    uint64_t requests;                       /* this process: writes they carried */
};

struct vl_queue_domain_count { char domain[256]; uint64_t rcpts; };

/** Message summary for vl_queue_list(), summed over shards. */
struct vl_queue_msg_info {
    uint64_t id;
    uint64_t created_ms;
    uint64_t size;
    uint32_t flags;
    uint32_t rcpts_total;
    uint32_t rcpts_open;
    char return_path[258];
};

/** Recipient detail for vl_queue_show(). */
struct vl_queue_rcpt_info {
    uint64_t id;
    enum vl_rcpt_state state;
    uint32_t attempts;
    uint64_t next_ms;
    uint16_t code;
    char status[VL_SMTP_STATUS_BYTES_MAX];
    char text[1025];
    char addr[257];
};

/** Open (or with VL_QUEUE_CREATE create) the queue in @p dir.
 *  @p nshards: 0 = the recorded count (creation then needs it != 0); else it
 *  must match the recorded one. @p flags: VL_QUEUE_* (ENGINE or ADMIN lock
 *  DATA/lock until vl_queue_close(); never waits for it). Thread: any. The
 *  handle must be closed with vl_queue_close().
 *  @return 0, VL_E_LOCKED (another process holds DATA/lock: see
 *  vl_queue_lock_holder), VL_E_SHARDS, VL_E_NOTFOUND (no queue and no
 *  VL_QUEUE_CREATE), VL_E_VERSION, VL_E_CORRUPT, VL_E_INVALID, -errno. */
int vl_queue_open(const char *dir, unsigned nshards, unsigned flags, struct vl_queue **out);

/** Close every shard. No call on @p q may be running; leased batches must be
 *  released first. */
void vl_queue_close(struct vl_queue *q);

/** Who holds (or last held) DATA/lock of @p dir: its PID, and in @p role
 *  (capacity @p role_cap, >= 8) "engine" or "admin".
 *  @return the PID (> 0), 0 if unknown (none yet, or being written), or
 *  VL_E_NOTFOUND / -errno. */
int vl_queue_lock_holder(const char *dir, char *role, size_t role_cap);

/** Delete the queue in @p dir: every file the queue made there (shard
 *  directories with their LMDB files, queue.meta, the lock files), and nothing
 *  else; @p dir itself stays. The queue must not be open (by any process).
 *  @return 0, VL_E_NOTFOUND (no queue there) or the first -errno met (the
 *  removal goes on past it). */
int vl_queue_remove(const char *dir);

/** The shard count recorded in @p dir, or VL_E_NOTFOUND / VL_E_CORRUPT. */
int vl_queue_shards_recorded(const char *dir);

unsigned vl_queue_nshards(const struct vl_queue *q);

/** The handle of shard @p k (< nshards), owned by @p q. */
struct vl_queue_shard *vl_queue_shard(struct vl_queue *q, unsigned k);

/** Shard index of a domain (case-insensitive). */
unsigned vl_queue_shard_of(const struct vl_queue *q, const char *domain, size_t len);

/** Enqueue one message for its recipients; durable on return. Each shard
 *  holding recipients gets the message record and the body once. Thread: any.
 *  All or nothing, across crashes: a message is visible to vl_queue_lease()
 *  in all its shards or in none. The shards' parts are committed by each
 *  shard's group commit: the others first, hidden (not leasable); then the
 *  first shard's part, visible, with the decision; then the others are made
 *  visible (a lease in between may see the first part only: the rest is
 *  durable and follows). If a shard fails before that, the other parts are removed; if
 *  the process dies, the next open with VL_QUEUE_CREATE, _ENGINE or _ADMIN
 *  finishes the job (publishes a decided message, removes an undecided one).
 *  A crash after the decision but before the return keeps the message (as
 *  a crash just after a single-shard commit does): a caller's retry then
 *  duplicates it whole, never in part. Counted in stats as soon as written.
 *  @return 0 and *msg_id_out, VL_E_INVALID (bad address/argument),
 *  VL_E_TOOBIG, VL_E_QUEUE_FULL, VL_E_STORAGE, -errno. */
int vl_queue_enqueue(struct vl_queue *q, const struct vl_queue_new_msg *m,
                     uint64_t now_ms, uint64_t *msg_id_out);

/** A fresh message id for vl_queue_enqueue_id() (unique in this queue
 *  unless another process enqueues in the same millisecond with the same
 *  20-bit salt: then the enqueue says -EEXIST). Thread: any. */
uint64_t vl_queue_msg_id_new(struct vl_queue *q, uint64_t now_ms);

/** vl_queue_enqueue() under the id @p id from vl_queue_msg_id_new(), which
 *  the body may already name (the intake's Received: line). @return as
 *  vl_queue_enqueue(), or -EEXIST if that id is taken: nothing was queued,
 *  take a new id and retry. Thread: any. */
int vl_queue_enqueue_id(struct vl_queue *q, const struct vl_queue_new_msg *m,
                        uint64_t now_ms, uint64_t id);

/** The batch enqueue (the SMTP intake's and the HTTP API's): vl_queue_enqueue_id()
 *  for @p n messages at once, message @p m[i] under id @p ids[i] (from
 *  vl_queue_msg_id_new): every message whose recipients all live in one
 *  shard is handed to that shard's group commit before any is waited for,
 *  so a caller's batch shares the commits (one fsync per shard for all of
 *  them) instead of waiting for a commit per message; messages spanning
 *  shards go one by one after those. Each message is a write of its own: it
 *  succeeds or fails alone (all or nothing per message, as vl_queue_enqueue;
 *  the group commit reruns a failed group one request per transaction).
 *  Durable on return. @p ev: NULL, or [n]: message i's recipients' events
 *  (struct vl_queue_rcpt_events; ev[i].json NULL: none), stored in the same
 *  transactions. Thread: any.
 *  @return 0 if every message was queued, else the first error; per message
 *  @p rcs[i]: 0 or as vl_queue_enqueue_id() (-EEXIST: ids[i] is taken,
 *  nothing of it was queued). */
int vl_queue_enqueue_ids(struct vl_queue *q, const struct vl_queue_new_msg *m,
                         const struct vl_queue_rcpt_events *ev, size_t n, uint64_t now_ms,
                         const uint64_t *ids, int *rcs);

/** Have @p fn(@p arg) called after every vl_queue_enqueue() of this process
 *  that committed recipients into shard @p s: from the enqueuing thread, with
 *  the shard's commit lock held, so @p fn must only signal (set a flag, wake a
 *  reactor) and never call the queue. @p fn NULL clears: once that call
 *  returns, the old @p fn is not running and is not called again. The engine's
 *  shards use it to lease new mail at once instead of at their next poll.
 *  Thread: any. */
void vl_queue_shard_notify_set(struct vl_queue_shard *s, void (*fn)(void *arg), void *arg);

/** Lease up to @p max recipients of shard @p s due at @p now_ms that are not
 *  leased yet. Thread: the shard's owner. *out is NULL when nothing is due.
 *  Recipients met that cannot be delivered (record, message or body
 *  unreadable or failing its checksum) are quarantined (see above) in a
 *  write of their own, and not counted: the result may be fewer than were
 *  due, even 0, while more are due. A failing quarantine write is logged
 *  (evt=quarantine_failed) and retried by the next lease; the lease still
 *  returns the good recipients.
 *  @return count leased (>= 0), -ENOMEM, VL_E_CORRUPT (an index entry, not a
 *  record, is malformed), VL_E_STORAGE. */
int vl_queue_lease(struct vl_queue_shard *s, uint64_t now_ms, size_t max,
                   struct vl_queue_batch **out);

/** vl_queue_lease(), passing over recipients whose (lowercased) domain
 *  @p skip says to leave in the queue for now (shaping: a destination that
 *  already has enough in flight), at most VL_QUEUE_LEASE_SKIPS_MAX of them per
 *  call (the scan stays bounded). @p skip NULL: vl_queue_lease(). */
#define VL_QUEUE_LEASE_SKIPS_MAX 16384u
int vl_queue_lease_skip(struct vl_queue_shard *s, uint64_t now_ms, size_t max,
                        bool (*skip)(void *ctx, const char *domain, size_t len), void *ctx,
                        struct vl_queue_batch **out);

/** Drop the lease of @p b's recipient @p i before the rest of @p b goes: the
 *  owner calls it once an async commit of that recipient's outcome is known
 *  to be done (vl_queue_complete_async*), so a deferred recipient is leasable
 *  again when due while others of its batch are still held (e.g. waiting for
 *  their message's DSN). vl_queue_batch_release() then leaves that id alone
 *  (it may have been leased again by then). Out of memory: a no-op (it stays
 *  leased until the batch goes). Thread: the shard's owner. */
void vl_queue_batch_unlease(struct vl_queue_shard *s, struct vl_queue_batch *b, size_t i);

/** After the shard's last vl_queue_lease*() (same thread): the due time (wall
 *  ms) of the earliest recipient it left in the queue because it was not due
 *  yet; UINT64_MAX when nothing is scheduled later; 0 when not known (the
 *  scan stopped at its max, at its skip limit, or failed). */
uint64_t vl_queue_lease_next_due(const struct vl_queue_shard *s);

/** Free @p b and drop the leases of its recipients not completed yet (they are
 *  leasable again). Thread: the shard's owner. NULL is a no-op. */
void vl_queue_batch_release(struct vl_queue_shard *s, struct vl_queue_batch *b);

/** Record @p n outcomes and enqueue @p extra_n extra messages (e.g. DSNs) into
 *  this shard, all in one durable transaction. Recipients that no longer exist
 *  (purged meanwhile) are skipped. Completed recipients are no longer leased.
 *  Thread: the shard's owner.
 *  @return recipients updated (>= 0), VL_E_INVALID, VL_E_QUEUE_FULL, ... */
int vl_queue_complete(struct vl_queue_shard *s, const struct vl_queue_outcome *o, size_t n,
                      const struct vl_queue_new_msg *extra, size_t extra_n, uint64_t now_ms);

/** As vl_queue_complete(), but for a committer thread working beside the
 *  shard's owner: the recipients stay leased until the owner releases their
 *  batch (vl_queue_batch_release) or them (vl_queue_batch_unlease, once it
 *  knows the commit is done), and the in-memory lease set is not touched.
 *  So a lease the owner runs concurrently, on a snapshot older than this
 *  commit, can never hand out a recipient completed here. Thread: one
 *  committer thread per shard, concurrently with the owner.
 *  @return as vl_queue_complete(). */
int vl_queue_complete_async(struct vl_queue_shard *s, const struct vl_queue_outcome *o,
                            size_t n, const struct vl_queue_new_msg *extra, size_t extra_n,
                            uint64_t now_ms);

/** As vl_queue_complete_async(), and in the same transaction append to the
 *  shard's events outbox (see below) the event of each outcome that has one:
 *  @p events[i] (a JSON object of @p event_lens[i] bytes, at most
 *  VL_QUEUE_EVENT_BYTES_MAX; NULL = none) for @p o[i], in order, even if the
 *  recipient was purged meanwhile. So an outcome is never recorded without its
 *  event, nor the other way round. @return as vl_queue_complete(). */
int vl_queue_complete_async_events(struct vl_queue_shard *s, const struct vl_queue_outcome *o,
                                   size_t n, const char *const *events,
                                   const size_t *event_lens,
                                   const struct vl_queue_new_msg *extra, size_t extra_n,
                                   uint64_t now_ms);

/** Counters summed over shards (or one shard if @p shard >= 0). */
int vl_queue_stats(struct vl_queue *q, int shard, struct vl_queue_stats *out);

/** Up to @p max domains with the most open recipients, most first.
 *  @return count filled (>= 0) or an error. */
int vl_queue_top_domains(struct vl_queue *q, struct vl_queue_domain_count *out, size_t max);

/** Open recipients of one campaign (X-Volley-Campaign; issue 15). */
#define VL_QUEUE_CAMPAIGN_BYTES_MAX 64u
#define VL_QUEUE_CAMPAIGNS_SCAN_MAX 10000u   /* distinct ids counted; beyond: "other" */
struct vl_queue_campaign_count {
    char campaign[VL_QUEUE_CAMPAIGN_BYTES_MAX + 1];
    uint64_t rcpts;                /* open recipients */
    uint64_t messages;             /* message records holding them (per shard) */
};

/** Up to @p max campaigns with the most open recipients, most first, read
 *  from each open message's X-Volley-Campaign header (read-only: beside an
 *  engine). *@p none_rcpts: open recipients of messages without one;
 *  *@p other_rcpts: those of campaigns past @p max (or past
 *  VL_QUEUE_CAMPAIGNS_SCAN_MAX distinct ids). @return count filled or an error. */
int vl_queue_campaigns(struct vl_queue *q, struct vl_queue_campaign_count *out, size_t max,
                       uint64_t *none_rcpts, uint64_t *other_rcpts);
/** The same for the ids of header @p header (its name, e.g. "X-Volley-Tenant";
 *  up to 77 bytes) instead of X-Volley-Campaign. @return count filled or an error. */
int vl_queue_header_ids(struct vl_queue *q, const char *header,
                        struct vl_queue_campaign_count *out, size_t max, uint64_t *none_rcpts,
                        uint64_t *other_rcpts);

/** Up to @p max messages in id (= age) order after @p after_id (0 = start).
 *  @return count filled. */
int vl_queue_list(struct vl_queue *q, uint64_t after_id, struct vl_queue_msg_info *out,
                  size_t max);

/** Message @p id and up to @p max of its open recipients (*rcpt_count = the
 *  number filled). @return 0 or VL_E_NOTFOUND. */
int vl_queue_show(struct vl_queue *q, uint64_t id, struct vl_queue_msg_info *info,
                  struct vl_queue_rcpt_info *rcpts, size_t max, size_t *rcpt_count);

/** Make open recipients of message @p msg_id (if != 0) or of @p domain (if not
 *  NULL) ready at @p now_ms. @return recipients changed (>= 0) or an error. */
int vl_queue_retry(struct vl_queue *q, uint64_t msg_id, const char *domain, uint64_t now_ms);

/** Delete message @p msg_id (0 = every message) with its recipients and body.
 *  @return recipients removed (>= 0) or an error (VL_E_NOTFOUND for an id). */
int vl_queue_purge(struct vl_queue *q, uint64_t msg_id);

/** A quarantine entry, for vl_queue_quarantine_list(). */
struct vl_queue_quar_info {
    unsigned shard;
    bool is_msg;                   /* a message's record and body; else a recipient */
    bool body_kept;                /* is_msg: a body was there and is kept */
    uint64_t id;                   /* recipient id, or message id */
    uint64_t msg_id;               /* recipient: its message (0: unknown) */
    uint64_t time_ms;              /* when it was quarantined */
    char reason[24];               /* record_corrupt, record_checksum, record_version,
                                      message_missing, message_corrupt, body_missing,
                                      body_size, body_checksum */
    uint32_t raw_bytes;            /* the record as found (0: it was missing) */
    uint64_t body_bytes;           /* is_msg: the body as found */
    char addr[257];                /* recipient: its address if its record decodes */
};

/** Up to @p max quarantine entries, shard by shard, messages first.
 *  Thread: any. @return count filled (>= 0) or an error. */
int vl_queue_quarantine_list(struct vl_queue *q, struct vl_queue_quar_info *out, size_t max);

/** Drop every quarantine entry (their recipients count as purged).
 *  Open with VL_QUEUE_ADMIN. @return recipients dropped (>= 0) or an error. */
int vl_queue_quarantine_purge(struct vl_queue *q);

/** Result of vl_queue_check(). */
struct vl_queue_check {
    uint64_t rcpts;                 /* open recipient records */
    uint64_t messages;              /* message records */
    uint64_t problems;              /* invariant violations found */
    char first[256];                /* the first one, in words ("" if none) */
};

/** Check every invariant of every shard (queue_schema.h): records decode
 *  (and match their checksums), each open recipient has its sched and dom
 *  entries and nothing else is indexed, message open counts and bodies match
 *  (size and checksum: a changed body byte is found), quarantine entries
 *  decode and match the stats' quarantined, the stats record matches the
 *  records. O(queue): for tests and `volley queue check`, not start-up.
 *  @return 0 (see out->problems) or an error that stopped the check. */
int vl_queue_check(struct vl_queue *q, struct vl_queue_check *out);

/* ---- delivery events outbox (issue 16) -------------------------------------
 * Each shard keeps an outbox of delivery events in its own environment, so an
 * outcome and its event are committed together: no
 * crash can keep one without the other (vl_queue_complete_async_events). Events get a per-shard sequence number
 * (seq, from 1, never reused: in commit order, so a recipient's events are in
 * order) and stay until every sink has acknowledged them. A sink is a name
 * ("webhook", "amqp"); its acknowledged seq is stored with the events. */

#define VL_QUEUE_EVENT_BYTES_MAX  8192u   /* one event's JSON */
#define VL_QUEUE_EVENT_SINK_BYTES_MAX 32u /* a sink name, NUL included */

/** Append @p n events (JSON objects @p json[i] of @p len[i] bytes) to the
 *  outbox of @p s in one durable transaction (group commit). Thread: any.
 *  @return 0, VL_E_INVALID (empty or over VL_QUEUE_EVENT_BYTES_MAX),
 *  VL_E_QUEUE_FULL, -errno. */
int vl_queue_events_add(struct vl_queue_shard *s, const char *const *json, const size_t *len,
                        size_t n);

/** Called by vl_queue_events_read() for each event; @p json (not NUL-terminated)
 *  is valid during the call only. */
typedef void vl_queue_event_fn(void *arg, uint64_t seq, const char *json, size_t len);

/** Call @p fn for up to @p max events of @p s with seq > @p after_seq, in seq
 *  order, stopping once @p bytes_max bytes were passed (at least one event
 *  is). A read transaction: any thread, beside the writers.
 *  @return events passed (>= 0) or an error. */
int vl_queue_events_read(struct vl_queue_shard *s, uint64_t after_seq, size_t max,
                         size_t bytes_max, vl_queue_event_fn *fn, void *arg);

/** Record that sink @p sink has every event up to @p acked_seq, and delete the
 *  events with seq <= @p delete_upto (the least seq every sink has: the
 *  caller's to know), in one durable transaction. Thread: any.
 *  @return 0 or an error. */
int vl_queue_events_ack(struct vl_queue_shard *s, const char *sink, uint64_t acked_seq,
                        uint64_t delete_upto);

/** As vl_queue_events_ack(), without a transaction of its own: recorded, and
 *  written (with the deletion) by the shard's next write transaction of any
 *  kind (a delivery commit usually) or by vl_queue_events_ack_flush(). A
 *  crash before that forgets it: those events are sent again (at least once).
 *  At most 4 sinks per shard. Thread: any. @return 0 or VL_E_INVALID. */
int vl_queue_events_ack_lazy(struct vl_queue_shard *s, const char *sink, uint64_t acked_seq,
                             uint64_t delete_upto);

/** true while a lazy acknowledgement of @p s is not yet committed. */
bool vl_queue_events_ack_pending(struct vl_queue_shard *s);

/** Commit the pending lazy acknowledgements of @p s now (one transaction;
 *  nothing if none). Thread: any. @return 0 or an error. */
int vl_queue_events_ack_flush(struct vl_queue_shard *s);

/** The seq sink @p sink last acknowledged in @p s (0 = none), the events
 *  stored (*@p stored) and the next seq to be given (*@p next_seq); any
 *  pointer may be NULL. Thread: any. @return 0 or an error. */
int vl_queue_events_state(struct vl_queue_shard *s, const char *sink, uint64_t *acked,
                          uint64_t *stored, uint64_t *next_seq);

/** Name of a state ("ready", "deferred", ...); "?" if unknown. */
const char *vl_rcpt_state_name(enum vl_rcpt_state st);

#ifdef __cplusplus
}
#endif
#endif
