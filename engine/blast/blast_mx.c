/*
 * blast_mx.c - MX targets for a domain (see blast_mx.h), with libresolv:
 * res_nquery() for MX, then A and AAAA of the chosen hosts, from the same
 * resolver (so --dns serves the whole lookup).
 */
#include "blast_mx.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <netdb.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volley/error.h"

#define MX_HOSTS_MAX 16u
#define MX_ANSWER_BYTES 4096

struct mx_host { uint16_t pref; char name[NS_MAXDNAME]; };

/* Query @p name for @p type. @return answer bytes, 0 for NODATA/NXDOMAIN, -1 on failure. */
static int mx_query(res_state st, const char *name, ns_type type, unsigned char *ans, int cap,
                    int *herr)
{
    int n = res_nquery(st, name, ns_c_in, type, ans, cap);
    *herr = n < 0 ? st->res_h_errno : 0;
    if (n < 0)
        return *herr == HOST_NOT_FOUND || *herr == NO_DATA ? 0 : -1;
    return n;
}

static int mx_hosts(res_state st, const char *domain, struct mx_host *h, uint32_t *count,
                    int *herr)
{
    unsigned char ans[MX_ANSWER_BYTES];
    int n = mx_query(st, domain, ns_t_mx, ans, sizeof ans, herr);
    *count = 0;
    if (n <= 0)
        return n;
    ns_msg msg;
    if (ns_initparse(ans, n, &msg) < 0)
        return -1;
    for (int i = 0; i < ns_msg_count(msg, ns_s_an) && *count < MX_HOSTS_MAX; i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0 || ns_rr_type(rr) != ns_t_mx ||
            ns_rr_rdlen(rr) < 3)
            continue;
        struct mx_host *m = &h[*count];
        m->pref = ns_get16(ns_rr_rdata(rr));
        if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr) + 2, m->name,
                      sizeof m->name) < 0)
            continue;
        (*count)++;
    }
    return 1;
}

/* Add @p host's addresses (A, then AAAA) as targets. @return targets added. */
static int mx_addrs(res_state st, struct blast_conf *c, const char *host, uint16_t port)
{
    static const ns_type types[] = { ns_t_a, ns_t_aaaa };
    int added = 0;
    for (size_t t = 0; t < 2; t++) {
        unsigned char ans[MX_ANSWER_BYTES];
        int herr, n = mx_query(st, host, types[t], ans, sizeof ans, &herr);
        ns_msg msg;
        if (n <= 0 || ns_initparse(ans, n, &msg) < 0)
            continue;
        for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
            ns_rr rr;
            if (c->target_count == BLAST_TARGETS_MAX)
                return added;
            if (ns_parserr(&msg, ns_s_an, i, &rr) < 0 || ns_rr_type(rr) != types[t])
                continue;
            union vl_sockaddr *a = &c->target[c->target_count];
            memset(a, 0, sizeof *a);
            char ip[INET6_ADDRSTRLEN];
            if (types[t] == ns_t_a && ns_rr_rdlen(rr) == 4) {
                a->in4.sin_family = AF_INET;
                a->in4.sin_port = htons(port);
                memcpy(&a->in4.sin_addr, ns_rr_rdata(rr), 4);
                c->target_len[c->target_count] = sizeof a->in4;
                inet_ntop(AF_INET, &a->in4.sin_addr, ip, sizeof ip);
            } else if (types[t] == ns_t_aaaa && ns_rr_rdlen(rr) == 16) {
                a->in6.sin6_family = AF_INET6;
                a->in6.sin6_port = htons(port);
                memcpy(&a->in6.sin6_addr, ns_rr_rdata(rr), 16);
                c->target_len[c->target_count] = sizeof a->in6;
                inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof ip);
            } else {
                continue;
            }
            snprintf(c->target_name[c->target_count], sizeof c->target_name[0],
                     strchr(ip, ':') ? "%.24s[%s]:%u" : "%.24s(%s):%u", host, ip, port);
            c->target_count++;
            added++;
        }
    }
    return added;
}

static int mx_resolver(res_state st, const char *dns, char *msg, size_t cap)
{
    memset(st, 0, sizeof *st);
    if (res_ninit(st) != 0) {
        snprintf(msg, cap, "cannot initialise the resolver (/etc/resolv.conf)");
        return VL_E_DNS;
    }
    if (!dns)
        return 0;
    struct vl_hostport hp;
    const char *why = NULL;
    if (vl_hostport_parse(dns, 53, false, &hp, &why) < 0 || hp.addr.sa.sa_family != AF_INET) {
        snprintf(msg, cap, "--dns '%s': %s", dns, why ? why : "an IPv4 ADDR:PORT is needed");
        res_nclose(st);
        return VL_E_INVALID;
    }
    st->nsaddr_list[0] = hp.addr.in4;
    st->nscount = 1;
    return 0;
}

static int cmp_pref(const void *a, const void *b)
{
    const struct mx_host *x = a, *y = b;
    return (int)x->pref - (int)y->pref;
}

int blast_mx_targets(struct blast_conf *c, const char *domain, uint16_t port, const char *dns,
                     char *msg, size_t cap)
{
    struct __res_state st;
    int rc = mx_resolver(&st, dns, msg, cap);
    if (rc < 0)
        return rc;
    struct mx_host h[MX_HOSTS_MAX];
    uint32_t n = 0;
    int herr;
    rc = mx_hosts(&st, domain, h, &n, &herr);
    if (rc < 0) {
        snprintf(msg, cap, "MX lookup of %s failed: %s", domain, hstrerror(herr));
        res_nclose(&st);
        return VL_E_DNS;
    }
    qsort(h, n, sizeof h[0], cmp_pref);
    if (n == 1 && (h[0].name[0] == '\0' || !strcmp(h[0].name, "."))) {
        snprintf(msg, cap, "%s has a null MX (RFC 7505): it accepts no mail", domain);
        res_nclose(&st);
        return VL_E_DNS;
    }
    int added = 0;
    if (n == 0) {                  /* RFC 5321 5.1: the implicit MX */
        added = mx_addrs(&st, c, domain, port);
        snprintf(msg, cap, "%s: no MX, its own address%s (implicit MX)", domain,
                 added == 1 ? "" : "es");
    } else {
        for (uint32_t i = 0; i < n && h[i].pref == h[0].pref; i++)
            added += mx_addrs(&st, c, h[i].name, port);
        snprintf(msg, cap, "%s: MX preference %u, %d address%s", domain, h[0].pref, added,
                 added == 1 ? "" : "es");
    }
    res_nclose(&st);
    if (added == 0) {
        snprintf(msg, cap, "%s: no address for %s", domain,
                 n ? "its most preferred MX hosts" : "it (no MX, no A/AAAA)");
        return VL_E_DNS;
    }
    return added;
}
