/*
 * http_tmpl.c - merge-field templates: parse once, render per recipient (see
 * http_tmpl.h). Pure. Invariant: segments cover the source in order; a
 * rendered template never holds more than out->max bytes.
 */
#include "http_tmpl.h"

#include "volley/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static size_t skip_ws(const char *s, size_t i, size_t len)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

static int intern(struct tmpl_names *names, const char *s, size_t n)
{
    for (size_t i = 0; i < names->n; i++)
        if (strlen(names->name[i]) == n && !memcmp(names->name[i], s, n))
            return (int)i;
    if (names->n >= TMPL_NAMES_MAX)
        return VL_E_TOOBIG;
    memcpy(names->name[names->n], s, n);
    names->name[names->n][n] = '\0';
    return (int)names->n++;
}

/* One "{{ ... }}" at s[i] (i at the first '{'): fills @p seg's field part and
 * returns the offset just past "}}", or a negative error. */
static long parse_field(const char *s, size_t len, size_t i, struct tmpl_names *names,
                        struct tmpl_seg *seg, const char **why)
{
    i = skip_ws(s, i + 2, len);
    size_t n0 = i;
    if (i >= len || !is_name_start(s[i])) {
        *why = "expected a merge field name after '{{'";
        return VL_E_INVALID;
    }
    while (i < len && is_name_char(s[i]))
        i++;
    if (i - n0 > TMPL_NAME_BYTES_MAX) {
        *why = "merge field name longer than 64 bytes";
        return VL_E_INVALID;
    }
    int var = intern(names, s + n0, i - n0);
    if (var < 0) {
        *why = "more than 256 distinct merge fields";
        return var;
    }
    seg->var = var;
    i = skip_ws(s, i, len);
    if (i < len && s[i] == '|') {
        i = skip_ws(s, i + 1, len);
        if (len - i < 7 || memcmp(s + i, "default", 7)) {
            *why = "unknown filter (only '| default: \"text\"' is supported)";
            return VL_E_INVALID;
        }
        i = skip_ws(s, i + 7, len);
        if (i >= len || s[i] != ':') {
            *why = "expected ':' after 'default'";
            return VL_E_INVALID;
        }
        i = skip_ws(s, i + 1, len);
        if (i >= len || (s[i] != '"' && s[i] != '\'')) {
            *why = "expected a quoted default";
            return VL_E_INVALID;
        }
        const char *q = memchr(s + i + 1, s[i], len - i - 1);
        if (!q) {
            *why = "unterminated default string";
            return VL_E_INVALID;
        }
        seg->has_def = true;
        seg->def_off = (uint32_t)(i + 1);
        seg->def_len = (uint32_t)((size_t)(q - s) - i - 1);
        i = skip_ws(s, (size_t)(q - s) + 1, len);
    }
    if (len - i < 2 || s[i] != '}' || s[i + 1] != '}') {
        *why = "expected '}}'";
        return VL_E_INVALID;
    }
    return (long)(i + 2);
}

int tmpl_parse(struct tmpl *t, const char *src, size_t len, struct tmpl_names *names,
               const char **why, size_t *off)
{
    memset(t, 0, sizeof *t);
    t->src = src;
    t->len = len;
    if (len > UINT32_MAX) {
        *why = "template over 4 GiB";
        return VL_E_TOOBIG;
    }
    size_t cap = 4;
    t->seg = malloc(cap * sizeof *t->seg);
    if (!t->seg)
        return -ENOMEM;
    size_t lit = 0, i = 0;
    for (;;) {
        const char *b = i < len ? memmem(src + i, len - i, "{{", 2) : NULL;
        size_t at = b ? (size_t)(b - src) : len;
        if (t->nseg == cap) {
            if (t->nseg > TMPL_FIELDS_MAX) {
                *why = "more than 65536 merge fields in one template";
                *off = at;
                tmpl_fini(t);
                return VL_E_TOOBIG;
            }
            struct tmpl_seg *ns = realloc(t->seg, 2 * cap * sizeof *ns);
            if (!ns) {
                tmpl_fini(t);
                return -ENOMEM;
            }
            t->seg = ns;
            cap *= 2;
        }
        struct tmpl_seg *sg = &t->seg[t->nseg];
        memset(sg, 0, sizeof *sg);
        sg->lit_off = (uint32_t)lit;
        sg->lit_len = (uint32_t)(at - lit);
        sg->var = -1;
        t->nseg++;
        if (!b)
            return 0;
        long next = parse_field(src, len, at, names, sg, why);
        if (next < 0) {
            *off = at;
            tmpl_fini(t);
            return (int)next;
        }
        t->nvars++;
        lit = i = (size_t)next;
    }
}

void tmpl_fini(struct tmpl *t)
{
    free(t->seg);
    t->seg = NULL;
    t->nseg = 0;
}

static int add_escaped(struct hbuf *out, const char *p, size_t n, enum tmpl_esc esc)
{
    if (esc == TMPL_RAW)
        return hbuf_add(out, p, n);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep;
        switch (p[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        int rc = hbuf_add(out, p + run, i - run);
        if (rc == 0)
            rc = hbuf_adds(out, rep);
        if (rc < 0)
            return rc;
        run = i + 1;
    }
    return hbuf_add(out, p + run, n - run);
}

int tmpl_render(const struct tmpl *t, const struct tmpl_val *vals, enum tmpl_esc esc,
                struct hbuf *out, int *missing)
{
    for (size_t k = 0; k < t->nseg; k++) {
        const struct tmpl_seg *sg = &t->seg[k];
        int rc = hbuf_add(out, t->src + sg->lit_off, sg->lit_len);
        if (rc < 0)
            return rc;
        if (sg->var < 0)
            continue;
        const struct tmpl_val *v = &vals[sg->var];
        if (v->set)
            rc = add_escaped(out, v->p, v->len, esc);
        else if (sg->has_def)
            rc = add_escaped(out, t->src + sg->def_off, sg->def_len, esc);
        else {
            *missing = sg->var;
            return VL_E_NOTFOUND;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}
