/*
 * blast_conf.c - parsing of blast's value grammars: message sizes and
 * distributions, the ramp. Pure but for reading a --size file.
 */
#include "blast.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volley/error.h"
#include "volley/limits.h"

/* "N", "Nk", "NK", "Nm", "NM" -> octets in 1 .. VL_MSG_BYTES_MAX. */
static int size_octets(const char *s, size_t len, uint64_t *out)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (end == buf || errno || buf[0] == '-')
        return -1;
    if (*end == 'k' || *end == 'K')
        v *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1024 * 1024, end++;
    if (*end || v == 0 || v > VL_MSG_BYTES_MAX)
        return -1;
    *out = v;
    return 0;
}

static int positive(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v > 0) || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int size_file(const char *path, struct blast_size *out, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, cap, "--size file:%s: %s", path, strerror(errno));
        return VL_E_INVALID;
    }
    char line[64];
    uint32_t n = 0, lineno = 0, alloc = 0;
    uint32_t *list = NULL;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strcspn(line, "\r\n");
        if (len == 0 || line[0] == '#')
            continue;
        uint64_t v;
        if (size_octets(line, len, &v) < 0 || n == BLAST_SIZES_MAX) {
            if (n == BLAST_SIZES_MAX)
                snprintf(err, cap, "--size file:%s: more than %u sizes", path, BLAST_SIZES_MAX);
            else
                snprintf(err, cap, "--size file:%s: line %u is not a size in octets (1 .. 64M)",
                         path, lineno);
            free(list);
            fclose(f);
            return VL_E_INVALID;
        }
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 256;
            uint32_t *nl = realloc(list, alloc * sizeof *list);
            if (!nl) {
                free(list);
                fclose(f);
                snprintf(err, cap, "out of memory");
                return -ENOMEM;
            }
            list = nl;
        }
        list[n++] = (uint32_t)v;
    }
    fclose(f);
    if (n == 0) {
        snprintf(err, cap, "--size file:%s: no sizes in it", path);
        free(list);
        return VL_E_INVALID;
    }
    *out = (struct blast_size){ .kind = BLAST_SIZE_LIST, .list = list, .list_count = n };
    return 0;
}

int blast_size_parse(const char *spec, struct blast_size *out, char *err, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (!strncmp(spec, "file:", 5))
        return size_file(spec + 5, out, err, cap);
    if (!strncmp(spec, "uniform:", 8)) {
        const char *a = spec + 8, *dash = strchr(a, '-');
        uint64_t lo, hi;
        if (!dash || size_octets(a, (size_t)(dash - a), &lo) < 0 ||
            size_octets(dash + 1, strlen(dash + 1), &hi) < 0 || hi < lo) {
            snprintf(err, cap, "--size '%s': uniform:A-B needs sizes A <= B (octets, k/M)", spec);
            return VL_E_INVALID;
        }
        *out = (struct blast_size){ .kind = BLAST_SIZE_UNIFORM, .lo = lo, .hi = hi };
        return 0;
    }
    if (!strncmp(spec, "lognormal:", 10)) {
        const char *a = spec + 10, *colon = strchr(a, ':');
        uint64_t med;
        double sigma;
        if (!colon || size_octets(a, (size_t)(colon - a), &med) < 0 || positive(colon + 1, &sigma) < 0
            || sigma > 5) {
            snprintf(err, cap, "--size '%s': lognormal:MEDIAN:SIGMA needs a size and 0 < SIGMA "
                     "<= 5", spec);
            return VL_E_INVALID;
        }
        *out = (struct blast_size){ .kind = BLAST_SIZE_LOGNORMAL, .median = (double)med,
                                    .sigma = sigma };
        return 0;
    }
    uint64_t v;
    if (size_octets(spec, strlen(spec), &v) < 0) {
        snprintf(err, cap, "--size '%s': expected N (octets, k/M suffix), uniform:A-B, "
                 "lognormal:MEDIAN:SIGMA or file:PATH", spec);
        return VL_E_INVALID;
    }
    *out = (struct blast_size){ .kind = BLAST_SIZE_FIXED, .lo = v, .hi = v };
    return 0;
}

void blast_size_fini(struct blast_size *s)
{
    free(s->list);
    s->list = NULL;
    s->list_count = 0;
}

int blast_ramp_parse(const char *spec, double *start, double *end, uint32_t *steps)
{
    char buf[96];
    if (strlen(spec) >= sizeof buf)
        return VL_E_INVALID;
    strcpy(buf, spec);
    char *a = buf, *b = strchr(a, ':'), *c = b ? strchr(b + 1, ':') : NULL;
    if (!b || !c)
        return VL_E_INVALID;
    *b++ = '\0';
    *c++ = '\0';
    char *e;
    errno = 0;
    unsigned long n = strtoul(c, &e, 10);
    if (positive(a, start) < 0 || positive(b, end) < 0 || *e || e == c || errno || n < 2 ||
        n > BLAST_RAMP_STEPS_MAX)
        return VL_E_INVALID;
    *steps = (uint32_t)n;
    return 0;
}
