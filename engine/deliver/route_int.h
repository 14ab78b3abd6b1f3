/*
 * route_int.h - what route.c, route_domain.c and route_host.c share: the
 * hash tables' sizes and the functions each calls in the files below it.
 * Not part of the route's interface (route.h); included only by route*.c.
 *
 * The files are layered, each calling only those below it:
 *   route.c         what sessions report, set-up, drain and stop
 *   route_domain.c  domains: the resolver, its answers, dispatch
 *   route_host.c    hosts: attempts queued on them, opening sessions under
 *                   the shaping policy's tokens, failing, starved and
 *                   throttled hosts, the shaping backlog
 *
 * Thread: the owning shard's only.
 */
#ifndef VOLLEY_DELIVER_ROUTE_INT_H
#define VOLLEY_DELIVER_ROUTE_INT_H

#include "route.h"

#define ROUTE_DOM_BUCKETS  16384u
#define ROUTE_HOST_BUCKETS  4096u

/* route_domain.c */
/** The domain @p name (@p len bytes, lowercased), found or made.
 *  @return NULL at the cap or without memory. */
struct domain *route_domain_get(struct route *r, const char *name, size_t len);
/** Send @p t on its way according to its domain's state. */
void route_dispatch(struct route *r, struct attempt *t);

/* route_host.c */
/** The host for address @p a (found or made). @return NULL at the cap or without memory. */
struct host *route_host_get(struct route *r, const union vl_sockaddr *a);
/** @p d's fair-share flow key for the shaper (vl_shaper_msg_take_flow). */
uint64_t route_domain_flow(const struct domain *d);
/** The attempt to run next on a session from egress @p egress: the first
 *  waiting on @p h whose policy gives a message token now - looking past the
 *  head for another domain when the head's domain must leave the token to a
 *  domain behind it (fair share, vl_shaper_msg_take_flow) - taken off the
 *  queue. NULL: none may start; *@p wait_ms: when to ask again. */
struct attempt *route_host_take(struct route *r, struct host *h, int egress, uint64_t *wait_ms);
/** Take the first attempt waiting on @p h (there is one). */
struct attempt *route_host_pop(struct host *h);
/** Record @p why as @p h's last failure; @return true if @p h was marked
 *  failing now (its queue must move on: route_host_pump()). */
bool route_host_mark_failed(struct route *r, struct host *h, const struct smtp_fate *why);
/** The shaping policy of what waits first on @p h (the host's, if nothing waits). */
int route_host_policy(const struct host *h);
/** @p h has work its policy holds back for @p wait_ms: pump it again then. */
void route_host_throttle(struct route *r, struct host *h, uint64_t wait_ms);
/** Move @p h's queue on: to idle sessions, new ones, or the next MX. */
void route_host_pump(struct route *r, struct host *h);
/** Session slots may be free again: pump the starved hosts. */
void route_hosts_unstarve(struct route *r);
/** Queue @p t on the first usable host of its domain at or after t->host_next
 *  (deferred when none is left). */
void route_attempt_to_host(struct route *r, struct attempt *t);
/** Every recipient of @p t gets the same local fate; @p t is done. */
void route_attempt_fail(struct route *r, struct attempt *t, bool bounce, uint16_t code,
                        const char *status, const char *text);
/** @p t leaves the route (done, failed, abandoned): its shaping backlog with it. */
void route_shaped_uncount(struct route *r, struct attempt *t);

#endif
