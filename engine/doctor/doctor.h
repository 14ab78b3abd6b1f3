/*
 * doctor.h - `volley doctor DOMAIN`: check a sending domain's DNS for
 * authentication and deliverability, against the local configuration: MX,
 * SPF (syntax, the 10-lookup limit of RFC 7208 4.6.4 through include: and
 * redirect=, and whether each source address passes), each configured DKIM
 * selector's TXT key against the private key, DMARC (policy, and alignment of
 * the From: domain with the DKIM d=, RFC 7489 3.1), forward-confirmed reverse
 * DNS of each source address against the EHLO name, and MTA-STS (RFC 8461)
 * when published.
 *
 * DNS goes through c-ares, blocking (one query at a time, each with a
 * deadline): the doctor is a command, not the engine.
 * Each check yields one row: a status, what was found, and, on failure, the
 * record to publish (or what to change).
 */
#ifndef VOLLEY_DOCTOR_H
#define VOLLEY_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volley/config.h"

#define DOCTOR_SOURCES_MAX     16u   /* policy: --source addresses checked */
#define DOCTOR_ROWS_MAX        64u   /* policy: rows of one report */
#define DOCTOR_TEXT_BYTES     1024u  /* one row's detail */
#define DOCTOR_PUBLISH_BYTES  1536u  /* one row's record to publish (an RSA-4096 TXT fits) */
#define DOCTOR_SPF_LOOKUPS_MAX  10u  /* RFC 7208 4.6.4 */

enum doctor_status { DOCTOR_PASS, DOCTOR_FAIL, DOCTOR_INFO };

struct doctor_row {
    const char *check;                    /* "mx", "spf", "dkim", "dmarc", "fcrdns", "mta-sts" */
    enum doctor_status status;
    char detail[DOCTOR_TEXT_BYTES];
    char publish[DOCTOR_PUBLISH_BYTES];   /* "" = nothing to publish */
};

struct doctor_opts {
    const char *domain;                   /* the From: domain checked (lower case) */
    const char *dns;                      /* "IP:PORT[,...]" or NULL: /etc/resolv.conf */
    const char *ehlo;                     /* the EHLO name volley sends */
    const struct dkim_signer *dkim;       /* configured keys, or NULL */
    unsigned source_count;                /* --source: addresses volley sends from */
    const char *sources[DOCTOR_SOURCES_MAX];
    unsigned timeout_ms;                  /* per DNS query */
};

struct doctor_report {
    unsigned rows;
    struct doctor_row row[DOCTOR_ROWS_MAX];
    bool all_pass;
};

/** Run every check. @return 0 (see r->all_pass), or < 0 when the resolver
 *  cannot start (-ENOMEM, VL_E_DNS) with nothing checked. */
int doctor_run(const struct doctor_opts *o, struct doctor_report *r);

/* ---- SPF (doctor_spf.c) ------------------------------------------------------------ */

struct doctor_dns;

enum spf_result { SPF_NONE, SPF_NEUTRAL, SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_PERMERROR,
                  SPF_TEMPERROR };
const char *spf_result_name(enum spf_result r);

struct spf_eval {
    enum spf_result result;               /* for the address asked about */
    unsigned lookups;                     /* DNS-querying terms of the whole record tree */
    char why[256];                        /* a permerror's reason, or the matching term */
};

/** Evaluate @p domain's SPF for the address @p ip (text), walking the whole
 *  record tree so that lookups counts every include:, a, mx, ptr, exists and
 *  redirect= (the limit applies to the record, not to one address). Macros are
 *  not expanded (a term with '%' never matches). */
void spf_check(struct doctor_dns *d, const char *domain, const char *ip, struct spf_eval *out);

/* ---- blocking DNS (doctor_dns.c) ----------------------------------------------------- */

#define DOCTOR_DNS_ANSWERS_MAX 16u
#define DOCTOR_DNS_TXT_BYTES 4096u

int doctor_dns_create(const char *servers, unsigned timeout_ms, struct doctor_dns **out);
void doctor_dns_destroy(struct doctor_dns *d);
/** @return records found (>= 0; 0: NXDOMAIN or no data), or VL_E_DNS (no
 *  answer: timeout, SERVFAIL). TXT: each record's strings joined. */
int doctor_dns_txt(struct doctor_dns *d, const char *name,
                   char out[][DOCTOR_DNS_TXT_BYTES], unsigned max);
int doctor_dns_mx(struct doctor_dns *d, const char *name, char out[][256], unsigned prefs[],
                  unsigned max);
/** A and AAAA addresses of @p name, as text. */
int doctor_dns_addrs(struct doctor_dns *d, const char *name, char out[][64], unsigned max);
int doctor_dns_ptr(struct doctor_dns *d, const char *ip, char out[][256], unsigned max);

#endif
