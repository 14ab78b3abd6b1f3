/*
 * adm.h - operator holds on destination domains (issue 15): suspend (nothing
 * is sent to the domain until resumed), bounce (its recipients queued before
 * the action fail with a DSN) and purge (they are dropped, no DSN). Set over
 * the HTTP API (engine/http/http_admin.c, `volley admin`); checked by the
 * delivery shards at lease (engine/deliver/shard_admin.c).
 *
 * Storage: its own LMDB environment DATA/admin (created by the first action),
 * one record per (action, domain): the time it was set and a note. So a
 * suspension survives a restart. Each change is durable on return.
 *
 * Reads on the hot path: the holds are also kept in memory (a small table
 * under a read-write lock, loaded at open); adm_active() is one relaxed load,
 * so with no hold the shards pay nothing else. One handle per process
 * (adm_get), opened by `volley run` before the shards and the API start.
 * Thread: any.
 */
#ifndef VOLLEY_ADMIN_ADM_H
#define VOLLEY_ADMIN_ADM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADM_HOLDS_MAX      1024u   /* policy: holds at once */
#define ADM_DOMAIN_MAX      255u
#define ADM_NOTE_MAX        200u
#define ADM_SUSPEND_RECHECK_MS (300u * 1000u)   /* a suspended recipient is deferred
                                                   this long (resume makes it ready) */

enum adm_kind { ADM_NONE, ADM_SUSPEND, ADM_BOUNCE, ADM_PURGE, ADM_KINDS };

/* What a hold is on: a destination domain, a campaign id (X-Volley-Campaign,
 * engine/deliver/campaign.h), a source (the envelope sender), an MX provider
 * group (a shaping policy's name or an MX host suffix such as google.com:
 * known after DNS, checked by the route, engine/deliver/route_admin.c) or an
 * egress address (new connections do not bind it). MX and egress holds are
 * suspensions only. A tenant id (X-Volley-Tenant) is held like a campaign. */
enum adm_scope { ADM_DOMAIN, ADM_CAMPAIGN, ADM_SENDER, ADM_MX, ADM_EGRESS, ADM_TENANT,
                 ADM_SCOPES };

struct adm_hold {
    enum adm_kind kind;
    enum adm_scope scope;
    char domain[ADM_DOMAIN_MAX + 1];   /* the key: a lowercase domain, "c:" + campaign id,
                                          "s:" + lowercase sender, "m:" + lowercase MX
                                          suffix or policy name, "a:" + an IP address in
                                          inet_ntop form, "t:" + tenant id (adm_hold_value) */
    uint64_t time_ms;                  /* wall clock when set */
    char note[ADM_NOTE_MAX + 1];
};

struct adm;

/** Open (creating with @p create) DATA/admin; the process's one handle is
 *  then adm_get(). Without @p create and no DATA/admin, nothing is opened
 *  and 0 is returned (adm_get() stays NULL until an action creates it with
 *  adm_open(dir, true)). @return 0 or -errno / VL_E_*. */
int adm_open(const char *data_dir, bool create);
/** The process's handle or NULL. */
struct adm *adm_get(void);
/** Close the handle (at exit). */
void adm_close(void);

/** Any holds at all? (one relaxed load: the shards' fast path) */
bool adm_active(const struct adm *a);

/** Set @p kind on @p value of @p scope (a domain; a campaign or tenant id of up to 64
 *  [A-Za-z0-9._:-]; a sender address; an MX suffix or policy name of
 *  [A-Za-z0-9._-]; an IPv4 or IPv6 address) replacing a hold of the same
 *  kind, durable on return. @return 0, VL_E_INVALID (@p value not valid for
 *  its scope, or a bounce or purge of an MX group or egress address),
 *  VL_E_TOOBIG (ADM_HOLDS_MAX held), or an error. */
int adm_set(struct adm *a, enum adm_kind kind, enum adm_scope scope, const char *value,
            uint64_t now_ms, const char *note);
/** Remove @p kind from @p value of @p scope. @return 0, VL_E_NOTFOUND, VL_E_INVALID, or an error. */
int adm_clear(struct adm *a, enum adm_kind kind, enum adm_scope scope, const char *value);

/** What applies to a recipient of @p domain (@p len bytes, any case) in a
 *  message of @p campaign and @p tenant ("" none) from @p sender created at @p created_ms:
 *  a bounce or purge (of any scope) set after the message was created (purge
 *  first), else a suspension; *@p out filled (out->kind ADM_NONE: nothing). */
void adm_lookup(struct adm *a, const char *domain, size_t len, const char *campaign,
                const char *tenant, const char *sender, uint64_t created_ms,
                struct adm_hold *out);

/** Is mail to a domain of shaping policy @p policy (NULL: none) whose MX
 *  hosts are @p mx[0..n) suspended by an MX group hold? (A hold matches the
 *  policy's name, or an MX host equal to it or ending in "." + it; any case.)
 *  One relaxed load when there is no MX hold. *@p out filled on true. */
bool adm_mx_held(struct adm *a, const char *policy, const char *const *mx, size_t n,
                 struct adm_hold *out);
/** Is egress address @p ip (text, as configured) suspended? One relaxed load
 *  when there is no egress hold. */
bool adm_egress_held(struct adm *a, const char *ip);

/** The value of @p h without its scope prefix. */
const char *adm_hold_value(const struct adm_hold *h);
const char *adm_scope_name(enum adm_scope s);

/** Copy up to @p max holds into @p out. @return how many there are. */
size_t adm_list(struct adm *a, struct adm_hold *out, size_t max);

const char *adm_kind_name(enum adm_kind k);
enum adm_kind adm_kind_parse(const char *s);

#endif
