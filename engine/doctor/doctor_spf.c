/*
 * doctor_spf.c - SPF (RFC 7208) as `volley doctor` needs it: does a source
 * address pass, and how many DNS-querying terms does the record tree hold
 * (include:, a, mx, ptr, exists, redirect=: at most 10, RFC 7208 4.6.4).
 * The whole tree is walked (not only up to the first match), so the count is
 * the record's, whatever the address. Recursion follows include:/redirect=
 * and is capped at SPF_DEPTH_MAX levels (a loop counts past the limit, then stops).
 * Not done: macro expansion (a term with '%' never matches), the void-lookup
 * limit, exp= texts.
 */
#include "doctor.h"

#include "volley/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SPF_DEPTH_MAX (DOCTOR_SPF_LOOKUPS_MAX + 2u)
#define SPF_MX_HOSTS_MAX 10u           /* RFC 7208 4.6.4: more MX names is a permerror */

struct spf_walk {
    struct doctor_dns *d;
    union { struct sockaddr sa; struct sockaddr_in in4; struct sockaddr_in6 in6; } ip;
    unsigned lookups;
    bool temp;                         /* a lookup got no answer */
    char why[256];
};

const char *spf_result_name(enum spf_result r)
{
    static const char *const n[] = { "none", "neutral", "pass", "fail", "softfail", "permerror",
                                      "temperror" };
    return n[r];
}

static bool spf_in(const struct spf_walk *w, const char *addr, int cidr4, int cidr6)
{
    char buf[80];
    struct vl_net net;
    const char *why;
    int cidr = strchr(addr, ':') ? cidr6 : cidr4;
    snprintf(buf, sizeof buf, cidr >= 0 ? "%s/%d" : "%s", addr, cidr);
    return vl_net_parse(buf, &net, &why) == 0 && vl_net_match(&net, &w->ip.sa);
}

/* "a:dom/24//64" -> domain part into @p dom ("" = none), the CIDR lengths. */
static void spf_target(const char *v, char *dom, size_t cap, int *c4, int *c6)
{
    *c4 = *c6 = -1;
    const char *sl = strchr(v, '/');
    size_t n = sl ? (size_t)(sl - v) : strlen(v);
    snprintf(dom, cap, "%.*s", (int)(n < cap ? n : cap - 1), v);
    if (sl && sl[1] != '/')
        *c4 = atoi(sl + 1);
    const char *d6 = sl ? strstr(sl, "//") : NULL;
    if (d6)
        *c6 = atoi(d6 + 2);
}

static enum spf_result spf_record(struct spf_walk *w, const char *domain, unsigned depth);

static bool spf_match_a(struct spf_walk *w, const char *host, int c4, int c6)
{
    char addrs[DOCTOR_DNS_ANSWERS_MAX][64];
    int n = doctor_dns_addrs(w->d, host, addrs, DOCTOR_DNS_ANSWERS_MAX);
    if (n < 0)
        w->temp = true;
    for (int i = 0; i < n; i++)
        if (spf_in(w, addrs[i], c4, c6))
            return true;
    return false;
}

static bool spf_match_mx(struct spf_walk *w, const char *dom, int c4, int c6)
{
    char hosts[DOCTOR_DNS_ANSWERS_MAX][256];
    unsigned prefs[DOCTOR_DNS_ANSWERS_MAX];
    int n = doctor_dns_mx(w->d, dom, hosts, prefs, DOCTOR_DNS_ANSWERS_MAX);
    if (n < 0)
        w->temp = true;
    for (int i = 0; i < n && i < (int)SPF_MX_HOSTS_MAX; i++)
        if (spf_match_a(w, hosts[i], c4, c6))
            return true;
    return false;
}

/* One term: @return 1 matched, 0 not, -1 permerror (w->why set). */
static int spf_term(struct spf_walk *w, const char *domain, const char *t, unsigned depth,
                    char *redirect, size_t rcap)
{
    char name[32], dom[256];
    int c4, c6;
    size_t nl = strcspn(t, ":/=");
    snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), t);
    const char *v = t[nl] == ':' || t[nl] == '=' ? t + nl + 1 : t + nl;
    bool macro = strchr(t, '%') != NULL;
    if (t[nl] == '=') {                                 /* modifier */
        if (!strcasecmp(name, "redirect"))
            snprintf(redirect, rcap, "%s", v);
        return 0;
    }
    if (!strcasecmp(name, "all"))
        return 1;
    if (!strcasecmp(name, "ip4") || !strcasecmp(name, "ip6")) {
        struct vl_net net;
        const char *why;
        if (vl_net_parse(v, &net, &why) != 0) {
            snprintf(w->why, sizeof w->why, "bad term '%s': %s", t, why);
            return -1;
        }
        return vl_net_match(&net, &w->ip.sa);
    }
    if (!strcasecmp(name, "a") || !strcasecmp(name, "mx")) {
        w->lookups++;
        spf_target(*v == '/' ? v : v, dom, sizeof dom, &c4, &c6);
        if (*v == '/' || !dom[0])
            snprintf(dom, sizeof dom, "%s", domain);
        if (macro)
            return 0;
        return name[0] == 'a' || name[0] == 'A' ? spf_match_a(w, dom, c4, c6)
                                                : spf_match_mx(w, dom, c4, c6);
    }
    if (!strcasecmp(name, "include")) {
        w->lookups++;
        if (macro || !*v)
            return 0;
        enum spf_result r = spf_record(w, v, depth + 1);
        if (r == SPF_NONE) {
            snprintf(w->why, sizeof w->why, "include:%s has no SPF record", v);
            return -1;
        }
        return r == SPF_PERMERROR ? -1 : r == SPF_PASS;
    }
    if (!strcasecmp(name, "exists") || !strcasecmp(name, "ptr")) {
        w->lookups++;
        return 0;
    }
    snprintf(w->why, sizeof w->why, "unknown term '%s'", t);
    return -1;
}

static enum spf_result spf_record(struct spf_walk *w, const char *domain, unsigned depth)
{
    if (depth > SPF_DEPTH_MAX)
        return SPF_NEUTRAL;                            /* a loop: the count says it all */
    char txt[4][DOCTOR_DNS_TXT_BYTES], *rec = NULL;
    int n = doctor_dns_txt(w->d, domain, txt, 4), found = 0;
    if (n < 0) {
        w->temp = true;
        return SPF_TEMPERROR;
    }
    for (int i = 0; i < n; i++)
        if (!strncasecmp(txt[i], "v=spf1", 6) && (txt[i][6] == ' ' || !txt[i][6])) {
            rec = txt[i];
            found++;
        }
    if (!found)
        return SPF_NONE;
    if (found > 1) {
        snprintf(w->why, sizeof w->why, "%s has %d SPF records (RFC 7208 4.5: one)", domain,
                 found);
        return SPF_PERMERROR;
    }
    enum spf_result res = SPF_NEUTRAL;
    bool matched = false, perm = false;
    char redirect[256] = "";
    for (char *save = NULL, *t = strtok_r(rec + 6, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char q = *t;
        if (q == '+' || q == '-' || q == '~' || q == '?')
            t++;
        else
            q = '+';
        int m = spf_term(w, domain, t, depth, redirect, sizeof redirect);
        if (m < 0) {
            perm = true;
            break;
        }
        if (m == 1 && !matched) {
            matched = true;
            res = q == '+' ? SPF_PASS : q == '-' ? SPF_FAIL : q == '~' ? SPF_SOFTFAIL : SPF_NEUTRAL;
            if (depth == 0)
                snprintf(w->why, sizeof w->why, "matched '%c%s'", q, t);
        }
    }
    if (perm)
        return SPF_PERMERROR;
    if (redirect[0]) {
        w->lookups++;
        enum spf_result r = spf_record(w, redirect, depth + 1);
        if (!matched)
            res = r == SPF_NONE ? SPF_PERMERROR : r;
    }
    return res;
}

void spf_check(struct doctor_dns *d, const char *domain, const char *ip, struct spf_eval *out)
{
    struct spf_walk w;
    memset(&w, 0, sizeof w);
    w.d = d;
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, ip, &w.ip.in4.sin_addr) == 1) {
        w.ip.in4.sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, ip, &w.ip.in6.sin6_addr) == 1) {
        w.ip.in6.sin6_family = AF_INET6;
    } else {
        out->result = SPF_PERMERROR;
        snprintf(out->why, sizeof out->why, "'%s' is not an IP address", ip);
        return;
    }
    out->result = spf_record(&w, domain, 0);
    out->lookups = w.lookups;
    if (out->result != SPF_PERMERROR && w.lookups > DOCTOR_SPF_LOOKUPS_MAX) {
        out->result = SPF_PERMERROR;
        snprintf(w.why, sizeof w.why, "%u DNS-querying terms: over the limit of %u "
                 "(RFC 7208 4.6.4); receivers treat the record as an error", w.lookups,
                 DOCTOR_SPF_LOOKUPS_MAX);
    } else if (w.temp && out->result != SPF_PASS) {
        out->result = SPF_TEMPERROR;
        snprintf(w.why, sizeof w.why, "a lookup got no answer");
    }
    snprintf(out->why, sizeof out->why, "%s", w.why);
}
