/*
 * bounce.c - bounce classification rules: parse, compile, match (see
 * bounce.h). A rule is a category, a status pattern of three components
 * (each a number or '*', missing trailing components = '*') and an optional
 * compiled regular expression (REG_EXTENDED | REG_ICASE | REG_NOSUB).
 * Invariants: a rule set only grows; a failed load leaves it as it was.
 * Diagnostics: never logs; errors name ORIGIN:LINE.
 */
#include "bounce.h"

#include "volley/error.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOUNCE_ANY (-1)

struct bounce_rule {
    enum bounce_cat cat;
    int st[3];                     /* class, subject, detail; BOUNCE_ANY = '*' */
    bool has_re;
    regex_t re;
};

struct bounce_rules {
    size_t count, cap;
    struct bounce_rule *rule;
};

static const char *const bounce_names[BOUNCE_CAT_COUNT] = {
#define X(id, name) [BOUNCE_##id] = name,
    BOUNCE_CATS(X)
#undef X
};

const char *bounce_cat_name(enum bounce_cat c)
{
    return (unsigned)c < BOUNCE_CAT_COUNT ? bounce_names[c] : "other";
}

int bounce_cat_parse(const char *s, size_t n)
{
    for (int c = 0; c < BOUNCE_CAT_COUNT; c++)
        if (strlen(bounce_names[c]) == n && !memcmp(bounce_names[c], s, n))
            return c;
    return -1;
}

int bounce_rules_create(struct bounce_rules **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

static void bounce_rules_truncate(struct bounce_rules *r, size_t count)
{
    while (r->count > count) {
        struct bounce_rule *ru = &r->rule[--r->count];
        if (ru->has_re)
            regfree(&ru->re);
    }
}

void bounce_rules_destroy(struct bounce_rules *r)
{
    if (!r)
        return;
    bounce_rules_truncate(r, 0);
    free(r->rule);
    free(r);
}

size_t bounce_rules_count(const struct bounce_rules *r)
{
    return r->count;
}

/* "5.7.*", "4.*", "*", "5.1.1" -> st[3]. @return 0 or -1. */
static int bounce_status_pattern(const char *s, size_t n, int st[3])
{
    size_t i = 0;
    for (int k = 0; k < 3; k++)
        st[k] = BOUNCE_ANY;
    for (int k = 0; k < 3; k++) {
        if (i >= n)
            return k == 0 ? -1 : 0;          /* "5.7" = "5.7.*" */
        if (s[i] == '*') {
            i++;
        } else {
            int v = 0, digits = 0;
            while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 3) {
                v = v * 10 + (s[i++] - '0');
                digits++;
            }
            if (!digits)
                return -1;
            st[k] = v;
        }
        if (i == n)
            return 0;
        if (s[i] != '.' || k == 2)
            return -1;
        i++;
    }
    return -1;
}

static int bounce_err(char *err, size_t cap, const char *origin, unsigned line, const char *what,
                      const char *arg, size_t arg_n)
{
    if (err && cap)
        snprintf(err, cap, "%s:%u: %s%s%.*s%s", origin, line, what, arg ? " '" : "",
                 (int)(arg ? arg_n > 80 ? 80 : arg_n : 0), arg ? arg : "", arg ? "'" : "");
    return VL_E_INVALID;
}

static bool bounce_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Parse one line (without its '\n') into a new rule of @p r. @return 1 rule
 * added, 0 nothing on the line, or an error. */
static int bounce_rule_line(struct bounce_rules *r, const char *p, size_t n, const char *origin,
                            unsigned line, char *err, size_t cap)
{
    size_t i = 0;
    while (i < n && bounce_blank(p[i]))
        i++;
    if (i == n || p[i] == '#')
        return 0;
    if (n > BOUNCE_RULE_LINE_MAX)
        return bounce_err(err, cap, origin, line, "line longer than 1024 bytes", NULL, 0);
    size_t c0 = i;
    while (i < n && !bounce_blank(p[i]))
        i++;
    int cat = bounce_cat_parse(p + c0, i - c0);
    if (cat <= BOUNCE_NONE)
        return bounce_err(err, cap, origin, line, "unknown category", p + c0, i - c0);
    while (i < n && bounce_blank(p[i]))
        i++;
    size_t s0 = i;
    while (i < n && !bounce_blank(p[i]))
        i++;
    struct bounce_rule ru = { .cat = (enum bounce_cat)cat };
    if (s0 == i)
        return bounce_err(err, cap, origin, line, "missing STATUS and PATTERN", NULL, 0);
    if (bounce_status_pattern(p + s0, i - s0, ru.st) < 0)
        return bounce_err(err, cap, origin, line, "bad STATUS (expected e.g. 5.1.1, 5.7.*, *)",
                          p + s0, i - s0);
    if (ru.st[0] != BOUNCE_ANY && ru.st[0] != 2 && ru.st[0] != 4 && ru.st[0] != 5)
        return bounce_err(err, cap, origin, line, "STATUS class must be 2, 4, 5 or *", p + s0,
                          i - s0);
    while (i < n && bounce_blank(p[i]))
        i++;
    size_t e = n;
    while (e > i && bounce_blank(p[e - 1]))
        e--;
    if (i == e)
        return bounce_err(err, cap, origin, line, "missing PATTERN ('*' for any text)", NULL, 0);
    if (!(e - i == 1 && p[i] == '*')) {
        char re[BOUNCE_RULE_LINE_MAX + 1];
        memcpy(re, p + i, e - i);
        re[e - i] = '\0';
        int rc = regcomp(&ru.re, re, REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (rc != 0) {
            char why[128], what[200];
            regerror(rc, &ru.re, why, sizeof why);
            snprintf(what, sizeof what, "bad PATTERN (%s):", why);
            return bounce_err(err, cap, origin, line, what, p + i, e - i);
        }
        ru.has_re = true;
    }
    if (r->count == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64;
        struct bounce_rule *nr = realloc(r->rule, ncap * sizeof *nr);
        if (!nr) {
            if (ru.has_re)
                regfree(&ru.re);
            return -ENOMEM;
        }
        r->rule = nr;
        r->cap = ncap;
    }
    r->rule[r->count++] = ru;
    return 1;
}

int bounce_rules_load_text(struct bounce_rules *r, const char *text, size_t len,
                           const char *origin, char *err, size_t err_cap)
{
    size_t before = r->count;
    unsigned line = 0;
    if (len > BOUNCE_RULES_FILE_MAX) {
        if (err && err_cap)
            snprintf(err, err_cap, "%s: over %u bytes", origin, BOUNCE_RULES_FILE_MAX);
        return VL_E_TOOBIG;
    }
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
        line++;
        if (memchr(text + i, '\0', n)) {
            bounce_rules_truncate(r, before);
            return bounce_err(err, err_cap, origin, line, "NUL byte", NULL, 0);
        }
        int rc = r->count - before >= BOUNCE_RULES_MAX || r->count >= BOUNCE_RULES_MAX
                     ? bounce_err(err, err_cap, origin, line, "too many rules (4096)", NULL, 0)
                     : bounce_rule_line(r, text + i, n, origin, line, err, err_cap);
        if (rc < 0) {
            bounce_rules_truncate(r, before);
            return rc;
        }
        i += n + (nl != NULL);
    }
    return (int)(r->count - before);
}

int bounce_rules_load_file(struct bounce_rules *r, const char *path, char *err, size_t err_cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        if (err && err_cap)
            snprintf(err, err_cap, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (st.st_size > (off_t)BOUNCE_RULES_FILE_MAX) {
        close(fd);
        if (err && err_cap)
            snprintf(err, err_cap, "%s: over %u bytes", path, BOUNCE_RULES_FILE_MAX);
        return VL_E_TOOBIG;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    int rc = bounce_rules_load_text(r, buf, got, path, err, err_cap);
    free(buf);
    return rc;
}

int bounce_rules_load_default(struct bounce_rules *r, char *err, size_t err_cap)
{
    return bounce_rules_load_text(r, bounce_rules_default_text, bounce_rules_default_len,
                                  "bounce_rules.conf (built in)", err, err_cap);
}

/* "5.7.26" -> {5, 7, 26}; missing or malformed parts: -2 (matches only '*'). */
static void bounce_status_parse(const char *s, int code, int st[3])
{
    st[0] = st[1] = st[2] = -2;
    if (!s || !s[0]) {
        if (code >= 200 && code < 600)
            st[0] = code / 100, st[1] = 0, st[2] = 0;
        return;
    }
    for (int k = 0; k < 3 && *s; k++) {
        int v = 0, d = 0;
        while (*s >= '0' && *s <= '9' && d < 4)
            v = v * 10 + (*s++ - '0'), d++;
        if (!d)
            return;
        st[k] = v;
        if (*s != '.')
            return;
        s++;
    }
}

enum bounce_cat bounce_classify(const struct bounce_rules *r, int code, const char *status,
                                const char *text)
{
    if (!r)
        return BOUNCE_OTHER;
    int st[3];
    bounce_status_parse(status, code, st);
    for (size_t i = 0; i < r->count; i++) {
        const struct bounce_rule *ru = &r->rule[i];
        bool ok = true;
        for (int k = 0; k < 3 && ok; k++)
            ok = ru->st[k] == BOUNCE_ANY || ru->st[k] == st[k];
        if (!ok)
            continue;
        if (ru->has_re && regexec(&ru->re, text ? text : "", 0, NULL, 0) != 0)
            continue;
        return ru->cat;
    }
    return BOUNCE_OTHER;
}
