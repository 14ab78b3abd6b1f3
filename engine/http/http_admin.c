/*
 * http_admin.c - operator actions against the running engine (issue 15),
 * every route with the bearer token; each action is logged (evt=admin).
 *   POST /api/v1/admin/suspend?domain=D[&note=N]  hold D: nothing is sent to it
 *   POST /api/v1/admin/resume?domain=D            lift it; D's recipients ready now
 *   POST /api/v1/admin/bounce?domain=D[&note=N]   D's recipients queued now fail (DSN)
 *   POST /api/v1/admin/purge?domain=D[&note=N]    D's recipients queued now dropped
 *   POST /api/v1/admin/retry?domain=D             D's recipients ready now
 *   GET  /api/v1/admin/domains                    per destination domain: outcomes
 *                                                 and the last failure (volley top)
 *   GET  /api/v1/admin/holds                      {"holds":[{action,scope,value,since_ms,note}]}
 *   DELETE /api/v1/admin/holds?action=A&domain=D  remove a bounce or purge hold
 * Suspend, resume, bounce and purge also take campaign=ID (X-Volley-Campaign),
 * tenant=ID (X-Volley-Tenant) or sender=ADDRESS (the envelope sender) instead of domain; suspend and
 * resume also take mx=SUFFIX (an MX provider group: a shaping policy's name
 * or an MX host suffix such as google.com, applied after DNS) or egress=IP (a
 * source address new connections do not bind; a pool with none left waits).
 * The queue knows none of these, so after such an action (but egress) the
 * recipients of the HTTP_ADMIN_DOMAINS domains with the most open recipients
 * are made ready (other deferred recipients of those domains are retried early too).
 * Holds are durable (DATA/admin, engine/admin/adm.h) before the answer, so a
 * suspension survives a restart; the shards apply them at lease.
 */
#include "http_int.h"

#include "adm.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "volley/error.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_ADMIN_DOMAINS 1000u

static enum MHD_Result admin_reply(struct MHD_Connection *c, const char *action,
                                   enum adm_scope scope, const char *value, long ready)
{
    json_t *o = json_object();
    json_object_set_new(o, "action", json_string(action));
    json_object_set_new(o, adm_scope_name(scope), json_string(value));
    if (ready >= 0)
        json_object_set_new(o, "made_ready", json_integer(ready));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return http_respond(c, 200, s);
}

static enum MHD_Result admin_holds(struct MHD_Connection *c)
{
    struct adm *a = adm_get();
    json_t *o = json_object(), *arr = json_array();
    struct adm_hold *h = a ? calloc(ADM_HOLDS_MAX, sizeof *h) : NULL;
    size_t n = a && h ? adm_list(a, h, ADM_HOLDS_MAX) : 0;
    for (size_t i = 0; i < n && i < ADM_HOLDS_MAX; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "action", json_string(adm_kind_name(h[i].kind)));
        json_object_set_new(e, "scope", json_string(adm_scope_name(h[i].scope)));
        json_object_set_new(e, "value", json_string(adm_hold_value(&h[i])));
        json_object_set_new(e, "since_ms", json_integer((json_int_t)h[i].time_ms));
        json_object_set_new(e, "note", json_string(h[i].note));
        json_array_append_new(arr, e);
    }
    free(h);
    json_object_set_new(o, "holds", arr);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return http_respond(c, 200, s);
}

/* Make the recipients of the busiest domains ready (after a campaign or
 * sender action). @return recipients made ready or an error. */
static int admin_retry_top(struct http *h, uint64_t now)
{
    struct vl_queue_domain_count *top = calloc(HTTP_ADMIN_DOMAINS, sizeof *top);
    if (!top)
        return -ENOMEM;
    int n = vl_queue_top_domains(h->q, top, HTTP_ADMIN_DOMAINS), total = 0;
    for (int i = 0; i < n; i++) {
        int rc = vl_queue_retry(h->q, 0, top[i].domain, now);
        if (rc < 0) {
            total = rc;
            break;
        }
        total += rc;
    }
    free(top);
    return n < 0 ? n : total;
}

enum MHD_Result http_admin(struct http *h, struct MHD_Connection *c, const char *url,
                           const char *method)
{
    const char *act = url + strlen("/api/v1/admin/");
    const char *dv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "domain");
    const char *cv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "campaign");
    const char *sv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "sender");
    const char *mv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mx");
    const char *ev = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "egress");
    const char *tv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tenant");
    if ((dv != NULL) + (cv != NULL) + (sv != NULL) + (mv != NULL) + (ev != NULL) +
        (tv != NULL) > 1)
        return http_respond_error(c, 400, "domain", -1, "give one of domain, campaign, tenant, "
                                  "sender, mx, egress");
    enum adm_scope scope = cv ? ADM_CAMPAIGN : sv ? ADM_SENDER : mv ? ADM_MX
                         : ev ? ADM_EGRESS : tv ? ADM_TENANT : ADM_DOMAIN;
    const char *dom = cv ? cv : sv ? sv : mv ? mv : ev ? ev : tv ? tv : dv;
    const char *fld = adm_scope_name(scope);
    const char *note = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "note");
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(act, "domains"))
        return get ? http_admin_domains(c) : http_respond_error(c, 405, NULL, -1, "use GET");
    if (!strcmp(act, "holds")) {
        if (get)
            return admin_holds(c);
        if (strcmp(method, "DELETE"))
            return http_respond_error(c, 405, NULL, -1, "use GET or DELETE");
        const char *an = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "action");
        enum adm_kind k = an ? adm_kind_parse(an) : ADM_NONE;
        if (k == ADM_NONE)
            return http_respond_error(c, 400, "action", -1, "expected suspend, bounce or purge");
        if (!dom)
            return http_respond_error(c, 400, "domain", -1, "missing");
        int rc = adm_get() ? adm_clear(adm_get(), k, scope, dom) : VL_E_NOTFOUND;
        if (rc == VL_E_NOTFOUND)
            return http_respond_error(c, 404, fld, -1, "no such hold");
        if (rc < 0)
            return http_respond_error(c, rc == VL_E_INVALID ? 400 : 503,
                                      rc == VL_E_INVALID ? fld : NULL, -1, vl_strerror(rc));
        vl_log_at(VL_LOG_INFO, "evt=admin action=clear hold=%s %s=%s", an, fld, dom);
        return admin_reply(c, "clear", scope, dom, -1);
    }
    enum adm_kind k = ADM_NONE;
    bool resume = !strcmp(act, "resume"), retry = !strcmp(act, "retry");
    if (!resume && !retry && (k = adm_kind_parse(act)) == ADM_NONE)
        return http_respond_error(c, 404, NULL, -1, "no such route");
    if (strcmp(method, "POST"))
        return http_respond_error(c, 405, NULL, -1, "use POST");
    if (!dom || !*dom)
        return http_respond_error(c, 400, fld, -1, "missing");
    if (retry && scope != ADM_DOMAIN)
        return http_respond_error(c, 400, fld, -1, "retry takes a domain");
    if ((scope == ADM_MX || scope == ADM_EGRESS) && (k == ADM_BOUNCE || k == ADM_PURGE))
        return http_respond_error(c, 400, fld, -1, "an MX group or egress address takes "
                                  "suspend and resume only");
    if (note && strlen(note) > ADM_NOTE_MAX)
        return http_respond_error(c, 400, "note", -1, "over 200 bytes");
    for (const char *p = note; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
            return http_respond_error(c, 400, "note", -1, "control characters, quotes or "
                                      "backslashes");
    uint64_t now = vl_clock_wall_ms();
    int rc = 0;
    if (k != ADM_NONE) {
        rc = adm_open(h->cfg->data_dir, true);
        if (rc == 0)
            rc = adm_set(adm_get(), k, scope, dom, now, note);
    } else if (resume) {
        rc = adm_get() ? adm_clear(adm_get(), ADM_SUSPEND, scope, dom) : VL_E_NOTFOUND;
        if (rc == VL_E_NOTFOUND)
            return http_respond_error(c, 404, fld, -1, "not suspended");
    }
    if (rc < 0) {
        static const char *const bad[ADM_SCOPES] = {
            "not a domain", "expected up to 64 of A-Z a-z 0-9 . _ : -", "not an address",
            "expected an MX host suffix or a shaping policy name (A-Z a-z 0-9 . _ -)",
            "not an IPv4 or IPv6 address", "expected up to 64 of A-Z a-z 0-9 . _ : -" };
        return http_respond_error(c, rc == VL_E_INVALID ? 400 : 503,
                                  rc == VL_E_INVALID ? fld : NULL, -1,
                                  rc == VL_E_INVALID ? bad[scope] : vl_strerror(rc));
    }
    long ready = -1;
    if (k != ADM_SUSPEND && scope != ADM_EGRESS) {   /* let the shards see its recipients now
                                                       (egress: they wait in memory) */
        int n = scope == ADM_DOMAIN ? vl_queue_retry(h->q, 0, dom, now) : admin_retry_top(h, now);
        if (n < 0) {
            vl_log_at(VL_LOG_WARN, "evt=admin_retry_failed %s=%s err=\"%s\"", fld, dom,
                      vl_strerror(n));
            if (retry || resume)
                return http_respond_error(c, n == VL_E_INVALID ? 400 : 503,
                                          n == VL_E_INVALID ? "domain" : NULL, -1,
                                          vl_strerror(n));
        }
        ready = n < 0 ? 0 : n;
    }
    vl_log_at(VL_LOG_INFO, "evt=admin action=%s %s=%s note=\"%s\" made_ready=%ld", act, fld,
              dom, note ? note : "", ready);
    return admin_reply(c, act, scope, dom, ready);
}

/* GET /api/v1/admin/domains: the destination domains the shards have counted
 * (engine/metrics: up to 128 per shard), most outcomes first, with the
 * recipients in flight now and the last failure seen: {"domains":[{domain,
 * delivered, deferred, bounced, expired, suppressed, inflight, last_error,
 * last_error_ms}], "metrics": bool}. */
enum MHD_Result http_admin_domains(struct MHD_Connection *c)
{
    static const char *const on[MET_OUTCOMES] = { "delivered", "deferred", "bounced",
                                                  "expired", "suppressed" };
    const struct met *m = met_get();
    size_t max = m ? (size_t)m->nshards * MET_DOMAINS : 0;
    struct met_domain_row *rows = max ? calloc(max, sizeof *rows) : NULL;
    if (max && !rows)
        return http_respond_error(c, 503, NULL, -1, "out of memory");
    int n = rows ? met_domain_rows(m, rows, max) : 0;
    json_t *o = json_object(), *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "domain", json_string(rows[i].domain));
        for (unsigned k = 0; k < MET_OUTCOMES; k++)
            json_object_set_new(e, on[k], json_integer((json_int_t)rows[i].n[k]));
        json_object_set_new(e, "inflight", json_integer((json_int_t)rows[i].inflight));
        json_object_set_new(e, "last_error", json_string(rows[i].err));
        json_object_set_new(e, "last_error_ms", json_integer((json_int_t)rows[i].err_ms));
        json_array_append_new(arr, e);
    }
    free(rows);
    json_object_set_new(o, "domains", arr);
    json_object_set_new(o, "metrics", json_boolean(m != NULL));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return http_respond(c, 200, s);
}
