/*
 * dkim_opts.c - the DKIM signing options (config.h): --dkim, --dkim-canon,
 * --dkim-headers (--dkim-expire is a DURATION: vl_parse_duration_ms). Shared
 * by `volley enqueue`, `send`, `run`, `bench` and `doctor`.
 * Only syntax is checked here; engine/dkim loads and checks the keys.
 * Diagnostics: one "volley CMD: --opt 'value': reason" line per bad option.
 */
#include "volley/addr.h"
#include "volley/config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

const char vl_dkim_usage[] =
    "  --dkim DOMAIN:SELECTOR:KEYFILE  DKIM-sign mail whose From: domain is DOMAIN (or a\n"
    "                          subdomain) with the PEM key (RSA >= 2048 bits or Ed25519);\n"
    "                          repeatable: give DOMAIN twice (RSA and Ed25519) to dual-sign\n"
    "  --dkim-canon HDR/BODY   canonicalisation: relaxed or simple each (default\n"
    "                          relaxed/relaxed)\n"
    "  --dkim-expire DURATION  add x= (signature expiry) this long after signing\n"
    "  --dkim-headers A:B:...  header fields to sign instead of the default list (From\n"
    "                          is always signed, and over-signed)\n";

static int dkim_opt_key(struct vl_dkim_opts *o, const char *cmd, const char *v, FILE *err)
{
    const char *c1 = strchr(v, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    const char *why = NULL;
    if (!c1 || !c2 || c1 == v || c2 == c1 + 1 || !c2[1]) {
        fprintf(err, "volley %s: --dkim '%s': expected DOMAIN:SELECTOR:KEYFILE\n", cmd, v);
        return -1;
    }
    if (o->key_count == VL_DKIM_KEYS_MAX) {
        fprintf(err, "volley %s: --dkim: more than %u keys\n", cmd, VL_DKIM_KEYS_MAX);
        return -1;
    }
    struct vl_dkim_key_opt *k = &o->keys[o->key_count];
    size_t dlen = (size_t)(c1 - v), slen = (size_t)(c2 - c1 - 1);
    if (vl_domain_check(v, dlen, &why) != 0 || dlen >= sizeof k->domain) {
        fprintf(err, "volley %s: --dkim '%s': bad domain: %s\n", cmd, v,
                why ? why : "too long");
        return -1;
    }
    /* A selector is a dot-atom of DNS labels (RFC 6376 3.1): letters, digits, '-', '.'. */
    for (size_t i = 0; i < slen; i++) {
        unsigned char ch = (unsigned char)c1[1 + i];
        if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_') {
            fprintf(err, "volley %s: --dkim '%s': bad selector: letters, digits, '-' and "
                    "'.' only\n", cmd, v);
            return -1;
        }
    }
    if (slen >= sizeof k->selector || c1[1] == '.' || c1[slen] == '.') {
        fprintf(err, "volley %s: --dkim '%s': bad selector\n", cmd, v);
        return -1;
    }
    for (size_t i = 0; i < dlen; i++)
        k->domain[i] = (char)tolower((unsigned char)v[i]);
    k->domain[dlen] = '\0';
    memcpy(k->selector, c1 + 1, slen);
    k->selector[slen] = '\0';
    for (unsigned i = 0; i < o->key_count; i++)
        if (!strcmp(o->keys[i].domain, k->domain) && !strcmp(o->keys[i].selector, k->selector)) {
            fprintf(err, "volley %s: --dkim '%s': selector %s of %s given twice\n", cmd, v,
                    k->selector, k->domain);
            return -1;
        }
    k->key_path = c2 + 1;
    o->key_count++;
    return 0;
}

static int dkim_opt_canon(struct vl_dkim_opts *o, const char *cmd, const char *v, FILE *err)
{
    static const char *const names[] = { "relaxed", "simple" };
    const char *slash = strchr(v, '/');
    size_t hlen = slash ? (size_t)(slash - v) : strlen(v);
    const char *body = slash ? slash + 1 : "simple";   /* RFC 6376 3.5: body defaults simple */
    int h = -1, b = -1;
    for (int i = 0; i < 2; i++) {
        if (strlen(names[i]) == hlen && !strncmp(v, names[i], hlen))
            h = i;
        if (!strcmp(body, names[i]))
            b = i;
    }
    if (h < 0 || b < 0) {
        fprintf(err, "volley %s: --dkim-canon '%s': expected HDR/BODY, each relaxed or "
                "simple\n", cmd, v);
        return -1;
    }
    o->canon_hdr_simple = h == 1;
    o->canon_body_simple = b == 1;
    return 0;
}

/* A colon list of RFC 5322 field names (printable US-ASCII but ':'). */
static int dkim_opt_headers(struct vl_dkim_opts *o, const char *cmd, const char *v, FILE *err)
{
    unsigned n = 1;
    bool empty = true;
    for (const char *p = v; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == ':') {
            if (empty)
                break;
            n++;
            empty = true;
        } else if (ch <= 32 || ch >= 127) {
            fprintf(err, "volley %s: --dkim-headers '%s': a field name has '%c'\n", cmd, v,
                    ch < 32 || ch >= 127 ? '?' : ch);
            return -1;
        } else {
            empty = false;
        }
    }
    if (empty || n > VL_DKIM_HEADERS_MAX) {
        fprintf(err, "volley %s: --dkim-headers '%s': expected NAME:NAME:... (1..%u names, "
                "none empty)\n", cmd, v, VL_DKIM_HEADERS_MAX);
        return -1;
    }
    o->headers = v;
    return 0;
}

int vl_dkim_opt_parse(struct vl_dkim_opts *o, const char *cmd, const char *name, const char *v,
                      FILE *err)
{
    if (!strcmp(name, "--dkim"))
        return dkim_opt_key(o, cmd, v, err) < 0 ? -1 : 1;
    if (!strcmp(name, "--dkim-canon"))
        return dkim_opt_canon(o, cmd, v, err) < 0 ? -1 : 1;
    if (!strcmp(name, "--dkim-headers"))
        return dkim_opt_headers(o, cmd, v, err) < 0 ? -1 : 1;
    return 0;
}
