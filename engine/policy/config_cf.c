/*
 * config_cf.c - what the config-file readers share (config_cf.h): errors at a
 * setting's line, copies the config owns, "did you mean" (edit distance), and
 * typed values.
 */
#include "config_cf.h"

#include "volley/config.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cf_err(struct cf *f, const config_setting_t *s, const char *fmt, ...)
{
    const char *file = s ? config_setting_source_file(s) : NULL;
    unsigned line = s ? config_setting_source_line(s) : 0;
    if (line)
        fprintf(f->err, "%s:%u: ", file ? file : f->path, line);
    else
        fprintf(f->err, "%s: ", f->path);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f->err, fmt, ap);
    va_end(ap);
    fputc('\n', f->err);
    f->errors++;
}

const char *cf_strdup(struct cf *f, const char *s)
{
    size_t n = strlen(s);
    struct config_str *cs = malloc(sizeof *cs + n + 1);
    if (!cs) {
        cf_err(f, NULL, "out of memory");
        return "";
    }
    memcpy(cs->s, s, n + 1);
    cs->next = f->c->owned->strs;
    f->c->owned->strs = cs;
    return cs->s;
}

/* ---- "did you mean" ------------------------------------------------------ */

static unsigned cf_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    unsigned row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned sub = diag + (tolower((unsigned char)a[i - 1]) !=
                                   tolower((unsigned char)b[j - 1]));
            unsigned best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest of @p names (NULL-terminated) to @p key, or NULL if none is close. */
static const char *cf_closest(const char *key, const char *const *names, size_t n)
{
    const char *best = NULL;
    unsigned best_d = 99;
    for (size_t i = 0; i < n; i++) {
        unsigned d = cf_distance(key, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    size_t len = strlen(key);
    unsigned max = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    return best_d <= max ? best : NULL;
}

void cf_unknown(struct cf *f, const config_setting_t *s, const char *where,
                const char *const *names, size_t n)
{
    const char *key = config_setting_name(s) ? config_setting_name(s) : "?";
    const char *near = cf_closest(key, names, n);
    if (near)
        cf_err(f, s, "unknown key '%s'%s%s (did you mean '%s'?)", key, where[0] ? " in " : "",
               where, near);
    else
        cf_err(f, s, "unknown key '%s'%s%s", key, where[0] ? " in " : "", where);
}

/* ---- values ---------------------------------------------------------------- */

/* A scalar as text (the form the command line would give). NULL: not a scalar. */
const char *cf_scalar(const config_setting_t *s, char *buf, size_t cap)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_STRING: return config_setting_get_string(s);
    case CONFIG_TYPE_INT:    snprintf(buf, cap, "%d", config_setting_get_int(s)); return buf;
    case CONFIG_TYPE_INT64:
        snprintf(buf, cap, "%lld", config_setting_get_int64(s));
        return buf;
    case CONFIG_TYPE_FLOAT:  snprintf(buf, cap, "%.17g", config_setting_get_float(s)); return buf;
    case CONFIG_TYPE_BOOL:   return config_setting_get_bool(s) ? "true" : "false";
    default:                 return NULL;
    }
}

const char *cf_type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP: return "a group { }";
    case CONFIG_TYPE_LIST:  return "a list ( )";
    case CONFIG_TYPE_ARRAY: return "an array [ ]";
    default:                return "a value";
    }
}

bool cf_get_uint(struct cf *f, const config_setting_t *e, const char *what,
                 unsigned long lo, unsigned long hi, unsigned *out)
{
    int t = config_setting_type(e);
    long long v = t == CONFIG_TYPE_INT ? config_setting_get_int(e)
                : t == CONFIG_TYPE_INT64 ? config_setting_get_int64(e) : -1;
    if ((t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) || v < (long long)lo ||
        v > (long long)hi) {
        cf_err(f, e, "%s: expected a whole number from %lu to %lu", what, lo, hi);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

bool cf_get_rate(struct cf *f, const config_setting_t *e, const char *what,
                 double hi, double *out)
{
    int t = config_setting_type(e);
    double v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(e)
             : t == CONFIG_TYPE_INT ? config_setting_get_int(e)
             : t == CONFIG_TYPE_INT64 ? (double)config_setting_get_int64(e) : -1.0;
    if (!(v > 0.0 && v <= hi)) {
        cf_err(f, e, "%s: expected a number > 0 and <= %g", what, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cf_get_dur(struct cf *f, const config_setting_t *e, const char *what,
                uint64_t *out)
{
    char num[64];
    const char *t = config_setting_type(e) == CONFIG_TYPE_BOOL ? NULL
                  : cf_scalar(e, num, sizeof num);
    if (!t || vl_parse_duration_ms(t, out) != 0) {
        cf_err(f, e, "%s: expected a duration like \"30s\", \"5m\", \"1h\"", what);
        return false;
    }
    return true;
}

bool cf_get_str(struct cf *f, const config_setting_t *e, const char *what,
                char *out, size_t cap)
{
    const char *s = config_setting_get_string(e);
    if (!s) {
        cf_err(f, e, "%s: expected a string", what);
        return false;
    }
    if (strlen(s) >= cap || !s[0]) {
        cf_err(f, e, "%s: expected 1 to %zu characters", what, cap - 1);
        return false;
    }
    snprintf(out, cap, "%s", s);
    return true;
}
