/*
 * http_tmpl.h - merge-field templates of the HTTP injection API (pure: no
 * I/O, no clock, no code execution).
 *
 * Syntax (a subset of the Jinja/Liquid form KumoMTA users write):
 *   {{ name }}                       the value of substitution "name"
 *   {{ name | default: "friend" }}   ... or the text in quotes when it has none
 * Names are [A-Za-z_][A-Za-z0-9_]* (at most TMPL_NAME_BYTES_MAX); spaces inside
 * the braces are optional; the default is quoted with " or ' and ends at the
 * next same quote (no escapes). Any other "{{" is an error at parse time, with
 * its offset; a lone "{" or "}}" is text.
 *
 * A template is parsed once (per request) into segments that point into its
 * source; names are interned in a table shared by all the request's
 * templates, so a recipient's values are looked up once per name and every
 * template renders from that array. Rendering escapes values (and defaults)
 * for HTML when asked (& < > " '), never the literal text, and stops at the
 * output buffer's cap (VL_E_TOOBIG): output is bounded.
 */
#ifndef VOLLEY_HTTP_TMPL_H
#define VOLLEY_HTTP_TMPL_H

#include "http_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TMPL_NAMES_MAX       256u   /* policy: distinct merge fields per request */
#define TMPL_NAME_BYTES_MAX   64u   /* policy: a merge field's name */
#define TMPL_FIELDS_MAX    65536u   /* policy: merge fields in one template */

struct tmpl_names {
    size_t n;
    char name[TMPL_NAMES_MAX][TMPL_NAME_BYTES_MAX + 1];
};

struct tmpl_seg {
    uint32_t lit_off, lit_len;   /* literal text before the field, in src */
    int32_t var;                 /* index in the names table; -1: no field (last) */
    uint32_t def_off, def_len;   /* the default's text, in src */
    bool has_def;
};

struct tmpl {
    const char *src;             /* borrowed: must outlive the template */
    size_t len;
    size_t nseg;
    struct tmpl_seg *seg;        /* malloc'd; tmpl_fini frees */
    size_t nvars;                /* fields (segments with var >= 0) */
};

/** A recipient's value for one name (set = false: none given). */
struct tmpl_val {
    const char *p;
    size_t len;
    bool set;
};

enum tmpl_esc { TMPL_RAW, TMPL_HTML };

/** Parse @p len bytes at @p src (borrowed) into @p t, interning names in
 *  @p names. @return 0, or VL_E_INVALID with *@p why (static English) and
 *  *@p off (byte offset of the bad "{{"), VL_E_TOOBIG (too many names or
 *  fields: *@p why says which), -ENOMEM. */
int tmpl_parse(struct tmpl *t, const char *src, size_t len, struct tmpl_names *names,
               const char **why, size_t *off);

void tmpl_fini(struct tmpl *t);

/** Append @p t rendered with @p vals (indexed like the names table) to
 *  @p out, escaping values for @p esc.
 *  @return 0, VL_E_NOTFOUND (a field without a value or default: *@p missing
 *  is its name index), VL_E_TOOBIG (out->max reached), -ENOMEM. */
int tmpl_render(const struct tmpl *t, const struct tmpl_val *vals, enum tmpl_esc esc,
                struct hbuf *out, int *missing);

#endif
