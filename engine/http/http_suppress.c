/*
 * http_suppress.c - the suppression list over HTTP (issue 12), beside
 * `volley suppress`; every route needs the bearer token.
 *   GET    /api/v1/suppress[?limit=N]   {"entries":[{address, scope, reason, time}],
 *                                        "truncated": bool} (N <= 100000, default 1000)
 *   POST   /api/v1/suppress             {"entries":[{address, scope?, reason?}]}: all
 *          validated first (400 naming entries[i].field: nothing added), then added
 *          (scope "" or absent = global; reason default manual) -> {"added": N}
 *   DELETE /api/v1/suppress?address=A[&scope=D]  -> {"removed": 1}, or 404
 * Writes are durable on return (the list's own LMDB environment).
 */
#include "http_int.h"

#include "clock.h"
#include "suppress.h"
#include "volley/addr.h"
#include "volley/error.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sup_list {
    json_t *arr;
    size_t n, limit;
    bool truncated;
};

static int add_entry(const struct sup_entry *e, void *arg)
{
    struct sup_list *l = arg;
    if (l->n == l->limit) {
        l->truncated = true;
        return 1;
    }
    char t[32];
    time_t s = (time_t)(e->time_ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *o = json_object();
    json_object_set_new(o, "address", json_string(e->addr));
    json_object_set_new(o, "scope", json_string(e->scope));
    json_object_set_new(o, "reason", json_string(sup_reason_name(e->reason)));
    json_object_set_new(o, "time", json_string(t));
    json_array_append_new(l->arr, o);
    l->n++;
    return 0;
}

enum MHD_Result http_suppress_get(struct http *h, struct MHD_Connection *c)
{
    const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    char *end = NULL;
    unsigned long limit = lim ? strtoul(lim, &end, 10) : 1000;
    if (lim && (!*lim || *end || limit == 0 || limit > HTTP_SUPPRESS_ENTRIES_MAX))
        return http_respond_error(c, 400, "limit", -1, "expected a number from 1 to 100000");
    struct sup_list l = { json_array(), 0, limit, false };
    int rc = sup_foreach(h->sup, add_entry, &l);
    if (rc < 0) {
        json_decref(l.arr);
        return http_respond_error(c, 503, NULL, -1, vl_strerror(rc));
    }
    json_t *o = json_object();
    json_object_set_new(o, "entries", l.arr);
    json_object_set_new(o, "truncated", json_boolean(l.truncated));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return http_respond(c, 200, s);
}

static enum MHD_Result bad_entry(struct MHD_Connection *c, size_t i, const char *field, const char *why)
{
    char f[64];
    snprintf(f, sizeof f, "entries[%zu]%s%s", i, *field ? "." : "", field);
    return http_respond_error(c, 400, f, -1, why);
}

enum MHD_Result http_suppress_post(struct http *h, struct MHD_Connection *c, const char *body,
                                   size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    json_t *arr = root && json_is_object(root) ? json_object_get(root, "entries") : NULL;
    enum MHD_Result r;
    if (!root || !json_is_object(root) || json_object_size(root) != 1 || !json_is_array(arr)) {
        char why[300];
        snprintf(why, sizeof why, "%s%s", root ? "expected {\"entries\": [...]}" : "bad JSON: ",
                 root ? "" : je.text);
        r = http_respond_error(c, 400, root ? "entries" : "", -1, why);
        goto out;
    }
    size_t n = json_array_size(arr);
    if (n > HTTP_SUPPRESS_ENTRIES_MAX) {
        r = http_respond_error(c, 400, "entries", -1, "more than 100000 entries");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {                    /* validate all: nothing half-added */
        json_t *e = json_array_get(arr, i);
        const char *k;
        json_t *v;
        if (!json_is_object(e)) {
            r = bad_entry(c, i, "", "expected an object");
            goto out;
        }
        json_object_foreach(e, k, v) {
            if (strcmp(k, "address") && strcmp(k, "scope") && strcmp(k, "reason")) {
                r = bad_entry(c, i, k, "unknown field");
                goto out;
            }
            if (!json_is_string(v)) {
                r = bad_entry(c, i, k, "expected a string");
                goto out;
            }
        }
        const char *a = json_string_value(json_object_get(e, "address"));
        const char *sc = json_string_value(json_object_get(e, "scope"));
        const char *rs = json_string_value(json_object_get(e, "reason"));
        struct vl_addr pa;
        if (!a || vl_addr_parse(a, strlen(a), &pa, NULL) < 0) {
            r = bad_entry(c, i, "address", a ? "invalid address" : "missing");
            goto out;
        }
        if (sc && *sc && vl_domain_check(sc, strlen(sc), NULL) < 0) {
            r = bad_entry(c, i, "scope", "not a domain");
            goto out;
        }
        if (rs && sup_reason_parse(rs) == SUP_NONE) {
            r = bad_entry(c, i, "reason", "expected hard_bounce, unsubscribe, complaint or manual");
            goto out;
        }
    }
    uint64_t now = vl_clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        const char *rs = json_string_value(json_object_get(e, "reason"));
        int rc = sup_add(h->sup, json_string_value(json_object_get(e, "scope")),
                         json_string_value(json_object_get(e, "address")),
                         rs ? sup_reason_parse(rs) : SUP_MANUAL, now);
        if (rc < 0) {
            char why[200];
            snprintf(why, sizeof why, "%s (the %zu entries before it were added)",
                     vl_strerror(rc), i);
            r = http_respond_error(c, 503, NULL, -1, why);
            goto out;
        }
    }
    char *s = NULL;
    if (asprintf(&s, "{\"added\":%zu}", n) < 0)
        s = NULL;
    r = http_respond(c, 200, s);
out:
    json_decref(root);
    return r;
}

enum MHD_Result http_suppress_delete(struct http *h, struct MHD_Connection *c)
{
    const char *a = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "address");
    const char *sc = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "scope");
    if (!a)
        return http_respond_error(c, 400, "address", -1, "missing");
    int rc = sup_rm(h->sup, sc ? sc : "", a);
    if (rc == VL_E_NOTFOUND)
        return http_respond_error(c, 404, "address", -1, "not in the list");
    if (rc == VL_E_INVALID)
        return http_respond_error(c, 400, "address", -1, "invalid address or scope");
    if (rc < 0)
        return http_respond_error(c, 503, NULL, -1, vl_strerror(rc));
    return http_respond(c, 200, strdup("{\"removed\":1}"));
}
