/*
 * route_admin.h - operator holds applied by the route (route_admin.c): MX
 * provider groups after DNS, egress addresses at connect (engine/admin/adm.h).
 * Thread: the owning shard's only.
 */
#ifndef VOLLEY_DELIVER_ROUTE_ADMIN_H
#define VOLLEY_DELIVER_ROUTE_ADMIN_H

#include <stdbool.h>

#include "route.h"

#define ROUTE_ADMIN_EGRESS_HELD  (-2)     /* every address of the pool is suspended */
#define ROUTE_ADMIN_EGRESS_WAIT_MS 1000u  /* then the host is pumped again this often */
/* ... but a one-shot run (--until-empty: send, bench) cannot wait: deferred with this */
#define ROUTE_ADMIN_EGRESS_TEXT "every egress address of the pool is suspended by an operator"

/** @p t's domain is resolved: if an MX group hold covers it (its shaping
 *  policy or an MX host), defer its recipients with the hold's reason and
 *  end @p t. @return true if @p t was held (done; do not touch it). */
bool route_admin_mx_hold(struct route *r, struct attempt *t);

/** Is egress address @p egress (an index into the shaping table, or -1) suspended?
 *  (A pooled session bound to it is closed, not reused.) */
bool route_admin_egress_held(struct route *r, int egress);

/** The egress address to bind instead of @p egress (an index into the
 *  shaping table, or -1 none) if that one is suspended: another of its pool,
 *  or ROUTE_ADMIN_EGRESS_HELD (open nothing; wait). Else @p egress. */
int route_admin_egress(struct route *r, int egress);

#endif
