/*
 * route_dnsfd.c - the resolver's sockets on the shard's reactor: c-ares says
 * which fds it wants polled (route_dns_sock, its sock_state_cb), one-shot
 * polls are armed through rx and re-armed after dns_process_fd() while the
 * interest stands, and cancelled (rx_detach) before c-ares closes the fd.
 * Part of route.c's domain (route.h): it owns route.dns_fds.
 * Diagnostics: evt=dns_fd_table_full.
 */
#include "route.h"

#include "log.h"

#include <poll.h>

static void route_dns_poll_cb(struct rx *rx, const struct rx_event *ev);

static void route_dns_poll_arm(struct route *r, struct route_dns_fd *e)
{
    if (e->polling || !e->h || (!e->r && !e->w))
        return;
    unsigned mask = (e->r ? POLLIN : 0u) | (e->w ? POLLOUT : 0u);
    if (rx_poll(r->rx, e->h, mask) == 0)
        e->polling = true;
}

void route_dns_sock(void *ctx, int fd, bool readable, bool writable)
{
    struct route *r = ctx;
    struct route_dns_fd *e = NULL, *free_e = NULL;
    for (size_t i = 0; i < sizeof r->dns_fds / sizeof r->dns_fds[0]; i++) {
        if (r->dns_fds[i].h && r->dns_fds[i].fd == fd)
            e = &r->dns_fds[i];
        else if (!r->dns_fds[i].h && !free_e)
            free_e = &r->dns_fds[i];
    }
    if (!readable && !writable) {
        if (e) {
            rx_detach(r->rx, e->h);   /* cancels the poll; c-ares closes the fd */
            e->h = 0;
        }
        return;
    }
    if (!e) {
        if (!free_e) {
            vl_log(VL_LOG_ERROR, "evt=dns_fd_table_full shard=%u fd=%d", r->shard_idx, fd);
            return;
        }
        e = free_e;
        *e = (struct route_dns_fd){ .fd = fd };
        if (rx_open(r->rx, fd, route_dns_poll_cb, r, &e->h) != 0) {
            e->h = 0;
            return;
        }
    }
    bool changed = e->r != readable || e->w != writable;
    e->r = readable;
    e->w = writable;
    if (e->polling && changed)
        rx_cancel(r->rx, e->h, RX_OP_POLL);   /* re-armed with the new mask */
    else
        route_dns_poll_arm(r, e);
}

static void route_dns_poll_cb(struct rx *rx, const struct rx_event *ev)
{
    (void)rx;
    struct route *r = ev->user;
    struct route_dns_fd *e = NULL;
    for (size_t i = 0; i < sizeof r->dns_fds / sizeof r->dns_fds[0]; i++)
        if (r->dns_fds[i].h == ev->h)
            e = &r->dns_fds[i];
    if (!e || ev->op != RX_OP_POLL)
        return;                    /* detached meanwhile, or its CLOSE event */
    e->polling = false;
    if (ev->res > 0)
        dns_process_fd(r->dns, e->fd, (ev->res & (POLLIN | POLLERR | POLLHUP)) != 0,
                       (ev->res & POLLOUT) != 0);
    if (e->h == ev->h)             /* still wanted after c-ares ran */
        route_dns_poll_arm(r, e);
}

