/*
 * suppress.h - the suppression list (issue 12): addresses volley must not
 * mail, globally or for one sending domain, each with a reason and a time.
 *
 * Storage: its own LMDB environment, DATA/suppress/ (apart from the queue's
 * shards, so a suppression write never waits for a queue commit and the
 * queue's format is untouched). Key: scope NUL address, both lowercased
 * (scope "" = global, else the sending domain); value: version, reason,
 * time in ms (little endian). Every change is durable on return (one
 * fsync'd transaction). Several processes may use it at once (LMDB's lock
 * file): `volley suppress` beside a running engine. Within one process,
 * opens of the same directory share one counted handle (LMDB allows one
 * open per process): the HTTP API and the engine of `volley run`.
 * Errors: -errno, VL_E_INVALID (bad address, scope or reason),
 * VL_E_NOTFOUND, VL_E_STORAGE (another LMDB error), VL_E_QUEUE_FULL (map).
 */
#ifndef VOLLEY_SUPPRESS_H
#define VOLLEY_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sup_reason {
    SUP_NONE = 0,           /* not suppressed (lookups) */
    SUP_HARD_BOUNCE = 1,
    SUP_UNSUBSCRIBE = 2,
    SUP_COMPLAINT = 3,
    SUP_MANUAL = 4,
};

#define SUP_SCOPE_BYTES_MAX 255u            /* a domain */
#define SUP_ADDR_BYTES_MAX  254u            /* RFC 5321 path without brackets */

struct sup_entry {
    enum sup_reason reason;
    uint64_t time_ms;
    char scope[SUP_SCOPE_BYTES_MAX + 1];    /* "" = global */
    char addr[SUP_ADDR_BYTES_MAX + 1];
};

struct sup;

/** Open DATA/suppress (created, with DATA, when @p create). Thread: the
 *  handle may be used from any threads. @return 0, VL_E_NOTFOUND (none and
 *  no @p create), -errno, VL_E_STORAGE. */
int sup_open(const char *data_dir, bool create, struct sup **out);
void sup_close(struct sup *s);

/** The lowercased domain of address @p addr into @p out (capacity
 *  VL_SMTP_DOMAIN_BYTES_MAX + 1), as event "domain" fields carry it.
 *  @return its length, or 0 (no '@', empty or too long). */
size_t sup_addr_domain(const char *addr, char *out);

/** Add or replace @p addr in @p scope ("" or NULL = global). */
int sup_add(struct sup *s, const char *scope, const char *addr, enum sup_reason reason,
            uint64_t time_ms);
/** Add @p n addresses in @p scope with one reason and time, in one
 *  transaction (one fsync); invalid addresses are skipped.
 *  @return the number added (>= 0) or an error (nothing added). */
int sup_add_many(struct sup *s, const char *scope, const char *const *addrs, size_t n,
                 enum sup_reason reason, uint64_t time_ms);

/** Remove. @return 0 or VL_E_NOTFOUND. */
int sup_rm(struct sup *s, const char *scope, const char *addr);

/** Look up @p n addresses for mail from sending domain @p domain (NULL: only
 *  global entries): out[i].reason is SUP_NONE when not suppressed, else the
 *  global entry or the domain's (global first). One read transaction. */
int sup_lookup_many(struct sup *s, const char *domain, const char *const *addrs,
                    const size_t *lens, size_t n, struct sup_entry *out);

/** Call @p fn for each entry (scope order, then address), until it returns
 *  non-zero. @return 0, or fn's value, or an error. */
int sup_foreach(struct sup *s, int (*fn)(const struct sup_entry *e, void *arg), void *arg);

const char *sup_reason_name(enum sup_reason r);           /* "hard_bounce", ... */
/** @return the reason for a name, or SUP_NONE. */
enum sup_reason sup_reason_parse(const char *name);

/* Where the list is applied (issue 12): set once by `volley run` before
 * anything starts, read-only afterwards; defaults without a call. */
#define SUP_FEED_CODES_MAX 16u
struct sup_policy {
    unsigned feed_n;                         /* bounce statuses that add the address */
    char feed[SUP_FEED_CODES_MAX][16];       /* "5.1.1", ... */
    bool smtp_accept;                        /* SMTP RCPT of a suppressed address: 250, and
                                                dropped at delivery (else 550 5.7.1) */
};

/** Parse --suppress-codes "5.1.1,5.1.2,..." into @p p (replacing the list).
 *  @return 0 or -1 (not x.y.z status codes of class 5, or more than 16). */
int sup_policy_codes(struct sup_policy *p, const char *list);
void sup_policy_set(const struct sup_policy *p);
/** The policy in force (the defaults: 5.1.1, 5.1.2, 5.1.10; reject at RCPT). */
const struct sup_policy *sup_policy_get(void);
/** Does a bounce with enhanced status @p status feed the list? */
bool sup_policy_feeds(const struct sup_policy *p, const char *status);

#endif
