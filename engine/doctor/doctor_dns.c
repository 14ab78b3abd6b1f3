/*
 * doctor_dns.c - blocking DNS for `volley doctor` over c-ares: one query at a
 * time, select() on c-ares's sockets until the answer or the deadline.
 * Invariant: every call returns within the channel's timeout x tries.
 */
#include "doctor.h"

#include "volley/error.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

struct doctor_dns {
    ares_channel ch;
};

struct dns_wait {
    bool done;
    int status;
    unsigned char *abuf;
    int alen;
};

static void dns_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct dns_wait *w = arg;
    w->done = true;
    w->status = status;
    if (status == ARES_SUCCESS && abuf && alen > 0 && (w->abuf = malloc((size_t)alen))) {
        memcpy(w->abuf, abuf, (size_t)alen);
        w->alen = alen;
    }
}

int doctor_dns_create(const char *servers, unsigned timeout_ms, struct doctor_dns **out)
{
    static bool lib_init;
    if (!lib_init && ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
        return -ENOMEM;
    lib_init = true;
    struct doctor_dns *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    struct ares_options ao = { .timeout = (int)timeout_ms, .tries = 2 };
    if (ares_init_options(&d->ch, &ao, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS) {
        free(d);
        return VL_E_DNS;
    }
    if (servers && ares_set_servers_ports_csv(d->ch, servers) != ARES_SUCCESS) {
        ares_destroy(d->ch);
        free(d);
        return VL_E_INVALID;
    }
    *out = d;
    return 0;
}

void doctor_dns_destroy(struct doctor_dns *d)
{
    if (!d)
        return;
    ares_destroy(d->ch);
    free(d);
}

/* @return 0 with w->abuf (caller frees), 1 for NXDOMAIN/NODATA, VL_E_DNS. */
static int dns_query(struct doctor_dns *d, const char *name, int type, struct dns_wait *w)
{
    memset(w, 0, sizeof *w);
    ares_query(d->ch, name, ns_c_in, type, dns_cb, w);
    for (unsigned spins = 0; !w->done && spins < 100000; spins++) {
        fd_set r, wr;
        FD_ZERO(&r);
        FD_ZERO(&wr);
        int nfds = ares_fds(d->ch, &r, &wr);
        if (nfds == 0)
            break;
        struct timeval tv, *tvp = ares_timeout(d->ch, NULL, &tv);
        select(nfds, &r, &wr, NULL, tvp);
        ares_process(d->ch, &r, &wr);
    }
    if (!w->done)
        return VL_E_DNS;
    if (w->status == ARES_ENOTFOUND || w->status == ARES_ENODATA)
        return 1;
    return w->status == ARES_SUCCESS && w->abuf ? 0 : VL_E_DNS;
}

int doctor_dns_txt(struct doctor_dns *d, const char *name,
                   char out[][DOCTOR_DNS_TXT_BYTES], unsigned max)
{
    struct dns_wait w;
    int rc = dns_query(d, name, ns_t_txt, &w);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    struct ares_txt_ext *txt = NULL;
    int n = -1;
    if (ares_parse_txt_reply_ext(w.abuf, w.alen, &txt) == ARES_SUCCESS) {
        size_t len = 0;
        for (struct ares_txt_ext *t = txt; t; t = t->next) {
            if (t->record_start) {
                if (n + 1 >= (int)max)
                    break;
                n++;
                len = 0;
                out[n][0] = '\0';
            }
            if (n < 0)
                continue;
            size_t l = t->length < DOCTOR_DNS_TXT_BYTES - 1 - len ? t->length
                       : DOCTOR_DNS_TXT_BYTES - 1 - len;
            memcpy(out[n] + len, t->txt, l);
            len += l;
            out[n][len] = '\0';
        }
        ares_free_data(txt);
    }
    free(w.abuf);
    return n + 1;
}

int doctor_dns_mx(struct doctor_dns *d, const char *name, char out[][256], unsigned prefs[],
                  unsigned max)
{
    struct dns_wait w;
    int rc = dns_query(d, name, ns_t_mx, &w);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    struct ares_mx_reply *mx = NULL;
    unsigned n = 0;
    if (ares_parse_mx_reply(w.abuf, w.alen, &mx) == ARES_SUCCESS) {
        for (struct ares_mx_reply *m = mx; m && n < max; m = m->next, n++) {
            snprintf(out[n], 256, "%s", m->host);
            prefs[n] = m->priority;
        }
        ares_free_data(mx);
    }
    free(w.abuf);
    return (int)n;
}

static int dns_addrs_of(struct doctor_dns *d, const char *name, int type, char out[][64],
                        unsigned max)
{
    struct dns_wait w;
    int rc = dns_query(d, name, type, &w);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    int n = 0;
    if (type == ns_t_a) {
        struct ares_addrttl a[DOCTOR_DNS_ANSWERS_MAX];
        int na = DOCTOR_DNS_ANSWERS_MAX;
        if (ares_parse_a_reply(w.abuf, w.alen, NULL, a, &na) == ARES_SUCCESS)
            for (int i = 0; i < na && n < (int)max; i++)
                inet_ntop(AF_INET, &a[i].ipaddr, out[n++], 64);
    } else {
        struct ares_addr6ttl a[DOCTOR_DNS_ANSWERS_MAX];
        int na = DOCTOR_DNS_ANSWERS_MAX;
        if (ares_parse_aaaa_reply(w.abuf, w.alen, NULL, a, &na) == ARES_SUCCESS)
            for (int i = 0; i < na && n < (int)max; i++)
                inet_ntop(AF_INET6, &a[i].ip6addr, out[n++], 64);
    }
    free(w.abuf);
    return n;
}

int doctor_dns_addrs(struct doctor_dns *d, const char *name, char out[][64], unsigned max)
{
    int n4 = dns_addrs_of(d, name, ns_t_a, out, max);
    if (n4 < 0)
        return n4;
    int n6 = dns_addrs_of(d, name, ns_t_aaaa, out + n4, max - (unsigned)n4);
    return n6 < 0 ? n6 : n4 + n6;
}

int doctor_dns_ptr(struct doctor_dns *d, const char *ip, char out[][256], unsigned max)
{
    unsigned char a[16];
    char name[128];
    size_t k = 0;
    bool v4 = inet_pton(AF_INET, ip, a) == 1;
    if (v4) {
        snprintf(name, sizeof name, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
    } else if (inet_pton(AF_INET6, ip, a) == 1) {
        for (int i = 15; i >= 0; i--)
            k += (size_t)snprintf(name + k, sizeof name - k, "%x.%x.", a[i] & 15, a[i] >> 4);
        snprintf(name + k, sizeof name - k, "ip6.arpa");
    } else {
        return VL_E_INVALID;
    }
    struct dns_wait w;
    int rc = dns_query(d, name, ns_t_ptr, &w);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    struct hostent *he = NULL;
    int n = 0;
    if (ares_parse_ptr_reply(w.abuf, w.alen, a, v4 ? 4 : 16, v4 ? AF_INET : AF_INET6, &he)
        == ARES_SUCCESS) {
        if (he->h_name && n < (int)max)
            snprintf(out[n++], 256, "%s", he->h_name);
        for (char **al = he->h_aliases; al && *al && n < (int)max; al++)
            snprintf(out[n++], 256, "%s", *al);
        ares_free_hostent(he);
    }
    free(w.abuf);
    return n;
}
