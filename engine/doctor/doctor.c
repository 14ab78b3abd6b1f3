/*
 * doctor.c - the checks of `volley doctor` (doctor.h), one row each; a row
 * that fails says what was found and what to publish or change.
 * Diagnostics: never logs; everything goes into the report.
 */
#include "doctor.h"

#include "dkim.h"
#include "volley/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct doctor_row *row_add(struct doctor_report *r, const char *check,
                                  enum doctor_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static struct doctor_row *row_add(struct doctor_report *r, const char *check,
                                  enum doctor_status st, const char *fmt, ...)
{
    static struct doctor_row spare;               /* past DOCTOR_ROWS_MAX: dropped */
    struct doctor_row *w = r->rows < DOCTOR_ROWS_MAX ? &r->row[r->rows++] : &spare;
    memset(w, 0, sizeof *w);
    w->check = check;
    w->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->detail, sizeof w->detail, fmt, ap);
    va_end(ap);
    if (st == DOCTOR_FAIL)
        r->all_pass = false;
    return w;
}

/* A TXT record in zone-file form, split into strings of at most 255 octets. */
static void publish_txt(struct doctor_row *w, const char *name, const char *txt)
{
    size_t n = (size_t)snprintf(w->publish, sizeof w->publish, "%s. IN TXT", name);
    for (size_t at = 0, len = strlen(txt); at < len && n < sizeof w->publish; at += 255)
        n += (size_t)snprintf(w->publish + n, sizeof w->publish - n, " \"%.*s\"",
                              (int)(len - at < 255 ? len - at : 255), txt + at);
}

static void check_mx(struct doctor_dns *d, const struct doctor_opts *o, struct doctor_report *r)
{
    char hosts[DOCTOR_DNS_ANSWERS_MAX][256];
    unsigned prefs[DOCTOR_DNS_ANSWERS_MAX];
    int n = doctor_dns_mx(d, o->domain, hosts, prefs, DOCTOR_DNS_ANSWERS_MAX);
    if (n < 0) {
        row_add(r, "mx", DOCTOR_FAIL, "no answer for %s MX (resolver unreachable or SERVFAIL)",
                o->domain);
        return;
    }
    if (n == 0 || (n == 1 && (!hosts[0][0] || !strcmp(hosts[0], ".")))) {
        struct doctor_row *w = row_add(r, "mx", DOCTOR_FAIL, "%s has %s: bounces, DMARC "
                                       "reports and replies to the From: address cannot "
                                       "arrive, and some receivers refuse such senders",
                                       o->domain, n ? "a null MX (RFC 7505)" : "no MX record");
        snprintf(w->publish, sizeof w->publish, "%s. IN MX 10 mx.%s.", o->domain, o->domain);
        return;
    }
    char list[DOCTOR_TEXT_BYTES] = "";
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof list; i++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%u %s", i ? ", " : "", prefs[i],
                              hosts[i]);
    row_add(r, "mx", DOCTOR_PASS, "%s", list);
}

static void check_spf(struct doctor_dns *d, const struct doctor_opts *o, struct doctor_report *r)
{
    char txt[8][DOCTOR_DNS_TXT_BYTES];
    int n = doctor_dns_txt(d, o->domain, txt, 8), found = -1;
    for (int i = 0; i < n; i++)
        if (!strncasecmp(txt[i], "v=spf1", 6) && (txt[i][6] == ' ' || !txt[i][6]))
            found = i;
    char want[DOCTOR_TEXT_BYTES] = "v=spf1";
    size_t k = 6;
    for (unsigned i = 0; i < o->source_count && k < sizeof want; i++)
        k += (size_t)snprintf(want + k, sizeof want - k, " %s:%s",
                              strchr(o->sources[i], ':') ? "ip6" : "ip4", o->sources[i]);
    snprintf(want + k, sizeof want - k, " -all");
    if (n < 0 || found < 0) {
        struct doctor_row *w = row_add(r, "spf", DOCTOR_FAIL, n < 0 ? "no answer for %s TXT"
                                       : "%s publishes no SPF record (TXT \"v=spf1 ...\")",
                                       o->domain);
        publish_txt(w, o->domain, want);
        return;
    }
    if (!o->source_count) {
        struct spf_eval e;
        spf_check(d, o->domain, "192.0.2.1", &e);           /* TEST-NET-1: only the count */
        if (e.result == SPF_PERMERROR)
            row_add(r, "spf", DOCTOR_FAIL, "\"%.300s\": %s", txt[found], e.why);
        else
            row_add(r, "spf", DOCTOR_INFO, "\"%.300s\" (%u DNS lookups of %u); give --source "
                    "ADDR to check that volley's addresses pass", txt[found], e.lookups,
                    DOCTOR_SPF_LOOKUPS_MAX);
        return;
    }
    for (unsigned i = 0; i < o->source_count; i++) {
        struct spf_eval e;
        spf_check(d, o->domain, o->sources[i], &e);
        if (e.result == SPF_PASS) {
            row_add(r, "spf", DOCTOR_PASS, "%s passes (%s; %u DNS lookups of %u)",
                    o->sources[i], e.why, e.lookups, DOCTOR_SPF_LOOKUPS_MAX);
            continue;
        }
        struct doctor_row *w = row_add(r, "spf", DOCTOR_FAIL, "%s: %s%s%s (record \"%.300s\")",
                                       o->sources[i], spf_result_name(e.result),
                                       e.why[0] ? ": " : "", e.why, txt[found]);
        if (e.result == SPF_PERMERROR && e.lookups > DOCTOR_SPF_LOOKUPS_MAX)
            snprintf(w->publish, sizeof w->publish, "flatten the include: chain of %s (fewer "
                     "than %u lookups), e.g. %s. IN TXT \"%s\"", o->domain,
                     DOCTOR_SPF_LOOKUPS_MAX + 1, o->domain, want);
        else
            snprintf(w->publish, sizeof w->publish, "add ip%c:%s to %s's SPF record, e.g. "
                     "%s. IN TXT \"%s\"", strchr(o->sources[i], ':') ? '6' : '4',
                     o->sources[i], o->domain, o->domain, want);
    }
}

/* The value of tag @p tag in a "t=v; t=v" record, into @p out ("" when absent). */
static bool tag_value(const char *rec, const char *tag, char *out, size_t cap)
{
    size_t tl = strlen(tag);
    for (const char *p = rec; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (eq) {
            size_t kl = (size_t)(eq - p);
            while (kl && (p[kl - 1] == ' ' || p[kl - 1] == '\t'))
                kl--;
            if (kl == tl && !strncasecmp(p, tag, tl)) {
                size_t o = 0;
                for (const char *v = eq + 1; v < p + n && o + 1 < cap; v++)
                    if (!isspace((unsigned char)*v))
                        out[o++] = *v;
                out[o] = '\0';
                return true;
            }
        }
        p = end ? end + 1 : NULL;
    }
    out[0] = '\0';
    return false;
}

static void check_dkim(struct doctor_dns *d, const struct doctor_opts *o, struct doctor_report *r,
                       char *dkim_domain, size_t cap)
{
    unsigned idx[VL_DKIM_KEYS_MAX];
    unsigned nk = dkim_signer_keys_for(o->dkim, o->domain, idx);
    dkim_domain[0] = '\0';
    if (!nk) {
        row_add(r, "dkim", DOCTOR_FAIL, "no --dkim key configured for %s or a parent domain: "
                "mail From: %s goes out unsigned (give --dkim %s:SELECTOR:KEYFILE; make a key "
                "with: openssl genpkey -algorithm ed25519 -out KEYFILE, or RSA 2048)",
                o->domain, o->domain, o->domain);
        return;
    }
    for (unsigned i = 0; i < nk; i++) {
        const struct dkim_key *k = dkim_signer_key(o->dkim, idx[i]);
        char name[512], want[DOCTOR_PUBLISH_BYTES], txt[4][DOCTOR_DNS_TXT_BYTES];
        char p[DOCTOR_DNS_TXT_BYTES], wp[DOCTOR_DNS_TXT_BYTES], kt[32];
        snprintf(dkim_domain, cap, "%s", dkim_key_domain(k));
        snprintf(name, sizeof name, "%s._domainkey.%s", dkim_key_selector(k), dkim_key_domain(k));
        if (dkim_key_dns_txt(k, want, sizeof want) < 0) {
            row_add(r, "dkim", DOCTOR_FAIL, "%s: cannot derive the public key", name);
            continue;
        }
        const char *alg = dkim_key_alg(k) == DKIM_ALG_ED25519_SHA256 ? "ed25519" : "rsa";
        int n = doctor_dns_txt(d, name, txt, 4);
        int hit = -1;
        for (int j = 0; j < n && hit < 0; j++)
            if (tag_value(txt[j], "p", p, sizeof p))
                hit = j;
        tag_value(want, "p", wp, sizeof wp);
        const char *why = NULL;
        if (n < 0)
            why = "no answer (resolver unreachable or SERVFAIL)";
        else if (hit < 0)
            why = "no DKIM key record (TXT with p=)";
        else if (!p[0])
            why = "the key is revoked (empty p=)";
        else if (tag_value(txt[hit], "k", kt, sizeof kt) ? strcasecmp(kt, alg) != 0
                                                         : strcmp(alg, "rsa") != 0)
            why = "k= names another algorithm than the configured key's";
        else if (strcmp(p, wp))
            why = "p= is another public key than the configured private key's";
        if (!why) {
            row_add(r, "dkim", DOCTOR_PASS, "%s matches the %s key (%u bits)", name,
                    dkim_key_alg(k) == DKIM_ALG_ED25519_SHA256 ? "Ed25519" : "RSA",
                    dkim_key_bits(k));
            continue;
        }
        struct doctor_row *w = row_add(r, "dkim", DOCTOR_FAIL, "%s: %s", name, why);
        publish_txt(w, name, want);
    }
}

/* Organizational domain, approximated as the last two labels (no public suffix list). */
static const char *org_domain(const char *d)
{
    const char *last = strrchr(d, '.');
    if (!last)
        return d;
    const char *p = last;
    while (p > d && p[-1] != '.')
        p--;
    return p;
}

static void check_dmarc(struct doctor_dns *d, const struct doctor_opts *o,
                        struct doctor_report *r, const char *dkim_domain)
{
    char name[300], txt[4][DOCTOR_DNS_TXT_BYTES], pol[32], adkim[8];
    const char *at = o->domain;
    int hit = -1, n = 0;
    for (int tries = 0; tries < 2 && hit < 0; tries++) {   /* the domain, then its org domain */
        snprintf(name, sizeof name, "_dmarc.%s", at);
        n = doctor_dns_txt(d, name, txt, 4);
        for (int j = 0; j < n && hit < 0; j++)
            if (!strncasecmp(txt[j], "v=DMARC1", 8))
                hit = j;
        if (hit < 0 && !strcmp(at, org_domain(o->domain)))
            break;
        if (hit < 0)
            at = org_domain(o->domain);
    }
    if (hit < 0) {
        struct doctor_row *w = row_add(r, "dmarc", DOCTOR_FAIL, "no DMARC record at _dmarc.%s "
                                       "(nor at its organizational domain): bulk senders need "
                                       "one (Gmail, Yahoo, Microsoft since 2024)", o->domain);
        char rec[300];
        snprintf(rec, sizeof rec, "v=DMARC1; p=none; rua=mailto:dmarc@%s", o->domain);
        snprintf(name, sizeof name, "_dmarc.%s", o->domain);
        publish_txt(w, name, rec);
        return;
    }
    if (!tag_value(txt[hit], "p", pol, sizeof pol) || (strcasecmp(pol, "none")
        && strcasecmp(pol, "quarantine") && strcasecmp(pol, "reject"))) {
        struct doctor_row *w = row_add(r, "dmarc", DOCTOR_FAIL, "%s: \"%.300s\": no valid p= "
                                       "(none, quarantine or reject)", name, txt[hit]);
        char rec[300];
        snprintf(rec, sizeof rec, "v=DMARC1; p=none; rua=mailto:dmarc@%s", o->domain);
        publish_txt(w, name, rec);
        return;
    }
    bool strict = tag_value(txt[hit], "adkim", adkim, sizeof adkim) && !strcasecmp(adkim, "s");
    if (!dkim_domain[0]) {
        row_add(r, "dmarc", DOCTOR_FAIL, "%s: p=%s, but no DKIM key for %s: DMARC needs an "
                "aligned DKIM signature (or SPF on the envelope domain)", name, pol, o->domain);
        return;
    }
    bool aligned = strict ? !strcasecmp(dkim_domain, o->domain)
                          : !strcasecmp(org_domain(dkim_domain), org_domain(o->domain));
    if (!aligned) {
        row_add(r, "dmarc", DOCTOR_FAIL, "%s: p=%s; From: %s is not aligned with DKIM d=%s "
                "(%s alignment): sign with a key of %s", name, pol, o->domain, dkim_domain,
                strict ? "strict" : "relaxed", strict ? o->domain : org_domain(o->domain));
        return;
    }
    row_add(r, "dmarc", DOCTOR_PASS, "%s: p=%s%s; From: %s aligned with DKIM d=%s (%s)", name,
            pol, strcasecmp(pol, "none") ? "" : " (monitoring only: nothing is rejected)",
            o->domain, dkim_domain, strict ? "strict" : "relaxed");
}

static void check_fcrdns(struct doctor_dns *d, const struct doctor_opts *o,
                         struct doctor_report *r)
{
    if (!o->source_count) {
        row_add(r, "fcrdns", DOCTOR_INFO, "no --source ADDR given: reverse DNS not checked");
        return;
    }
    for (unsigned i = 0; i < o->source_count; i++) {
        const char *ip = o->sources[i];
        char names[DOCTOR_DNS_ANSWERS_MAX][256], addrs[DOCTOR_DNS_ANSWERS_MAX][64];
        int n = doctor_dns_ptr(d, ip, names, DOCTOR_DNS_ANSWERS_MAX);
        const char *confirmed = NULL;          /* a confirmed name; the EHLO name if it is one */
        for (int j = 0; j < n; j++) {
            int na = doctor_dns_addrs(d, names[j], addrs, DOCTOR_DNS_ANSWERS_MAX);
            bool ok = false;
            for (int k = 0; k < na && !ok; k++)
                ok = !strcmp(addrs[k], ip);
            if (ok && (!confirmed || !strcasecmp(names[j], o->ehlo)))
                confirmed = names[j];
        }
        if (confirmed && !strcasecmp(confirmed, o->ehlo)) {
            row_add(r, "fcrdns", DOCTOR_PASS, "%s -> %s -> %s, the EHLO name", ip, confirmed, ip);
            continue;
        }
        struct doctor_row *w;
        if (n <= 0)
            w = row_add(r, "fcrdns", DOCTOR_FAIL, "%s has no PTR record%s", ip,
                        n < 0 ? " (no answer)" : "");
        else if (!confirmed)
            w = row_add(r, "fcrdns", DOCTOR_FAIL, "%s -> %s, whose addresses do not include "
                        "%s (not forward-confirmed)", ip, names[0], ip);
        else
            w = row_add(r, "fcrdns", DOCTOR_FAIL, "%s -> %s (confirmed), but volley says EHLO "
                        "%s: give --ehlo %s or change the PTR", ip, confirmed, o->ehlo,
                        confirmed);
        snprintf(w->publish, sizeof w->publish, "PTR of %s -> %s. (ask the address's owner), "
                 "and %s. IN %s %s", ip, o->ehlo, o->ehlo, strchr(ip, ':') ? "AAAA" : "A", ip);
    }
}

static void check_mta_sts(struct doctor_dns *d, const struct doctor_opts *o,
                          struct doctor_report *r)
{
    char name[300], txt[4][DOCTOR_DNS_TXT_BYTES], id[80], addrs[4][64];
    snprintf(name, sizeof name, "_mta-sts.%s", o->domain);
    int n = doctor_dns_txt(d, name, txt, 4), hit = -1;
    for (int j = 0; j < n && hit < 0; j++)
        if (!strncasecmp(txt[j], "v=STSv1", 7))
            hit = j;
    if (hit < 0) {
        row_add(r, "mta-sts", DOCTOR_INFO, "not published (optional, RFC 8461)");
        return;
    }
    bool id_ok = tag_value(txt[hit], "id", id, sizeof id) && id[0] && strlen(id) <= 32;
    for (const char *p = id; id_ok && *p; p++)
        id_ok = isalnum((unsigned char)*p);
    char host[300];
    snprintf(host, sizeof host, "mta-sts.%s", o->domain);
    int na = doctor_dns_addrs(d, host, addrs, 4);
    if (!id_ok) {
        struct doctor_row *w = row_add(r, "mta-sts", DOCTOR_FAIL, "%s: \"%.200s\": id= must be "
                                       "1-32 letters or digits (RFC 8461 3.1)", name, txt[hit]);
        publish_txt(w, name, "v=STSv1; id=20260101T000000");
        return;
    }
    if (na <= 0) {
        struct doctor_row *w = row_add(r, "mta-sts", DOCTOR_FAIL, "%s published, but %s has "
                                       "no address: the policy cannot be fetched", name, host);
        snprintf(w->publish, sizeof w->publish, "%s. IN A <the web server that serves "
                 "https://%s/.well-known/mta-sts.txt>", host, host);
        return;
    }
    row_add(r, "mta-sts", DOCTOR_PASS, "%s id=%s; %s -> %s (policy file not fetched)", name, id,
            host, addrs[0]);
}

int doctor_run(const struct doctor_opts *o, struct doctor_report *r)
{
    struct doctor_dns *d;
    memset(r, 0, sizeof *r);
    r->all_pass = true;
    int rc = doctor_dns_create(o->dns, o->timeout_ms ? o->timeout_ms : 3000, &d);
    if (rc < 0)
        return rc;
    char dkim_domain[256];
    check_mx(d, o, r);
    check_spf(d, o, r);
    check_dkim(d, o, r, dkim_domain, sizeof dkim_domain);
    check_dmarc(d, o, r, dkim_domain);
    check_fcrdns(d, o, r);
    check_mta_sts(d, o, r);
    doctor_dns_destroy(d);
    return 0;
}
