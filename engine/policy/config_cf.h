/*
 * config_cf.h - what the config-file readers share (engine/policy, private):
 * the load in progress (struct cf), what a loaded file owns, errors at a
 * setting's line, "did you mean", and typed values. config_cf.c is below
 * config_shaping.c (the shaping and egress blocks), which is below
 * config_file.c (the file, the other blocks, the command line over it).
 */
#ifndef VOLLEY_POLICY_CONFIG_CF_H
#define VOLLEY_POLICY_CONFIG_CF_H

#include "volley/config.h"
#include "volley/shaping.h"

#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* What a loaded file owns: copies of its strings (the config points at them)
 * and the shaping table. */
struct config_str {
    struct config_str *next;
    char s[];
};
struct vl_config_owned {
    struct config_str *strs;
    struct vl_shaping *shaping;
};

/* One load in progress. */
struct cf {
    struct vl_config *c;
    const char *path;
    FILE *err;
    unsigned errors;
    config_t lc;
};

/** One "PATH:LINE: ..." error at @p s (NULL: the file), counted. */
__attribute__((format(printf, 3, 4)))
void cf_err(struct cf *f, const config_setting_t *s, const char *fmt, ...);
/** A copy of @p s owned by the config ("" and an error without memory). */
const char *cf_strdup(struct cf *f, const char *s);
/** "unknown key 'K' in WHERE (did you mean 'N'?)" among @p names. */
void cf_unknown(struct cf *f, const config_setting_t *s, const char *where,
                const char *const *names, size_t n);
/** A scalar as text (the form the command line would give). NULL: not a scalar. */
const char *cf_scalar(const config_setting_t *s, char *buf, size_t cap);
/** "a group { }", "a list ( )", "an array [ ]" or "a value", for errors. */
const char *cf_type_name(const config_setting_t *s);
/* Typed values: false (and an error naming @p what) when @p e is not one. */
bool cf_get_uint(struct cf *f, const config_setting_t *e, const char *what,
                 unsigned long lo, unsigned long hi, unsigned *out);
bool cf_get_rate(struct cf *f, const config_setting_t *e, const char *what,
                 double hi, double *out);
bool cf_get_dur(struct cf *f, const config_setting_t *e, const char *what, uint64_t *out);
bool cf_get_str(struct cf *f, const config_setting_t *e, const char *what,
                char *out, size_t cap);

/* config_shaping.c */
/** The `egress` block into @p sh (before the shaping block: policies name its pools). */
void cf_egress(struct cf *f, const config_setting_t *g, struct vl_shaping *sh);
/** The `shaping` block into @p sh. */
void cf_shaping(struct cf *f, const config_setting_t *g, struct vl_shaping *sh);
/** Rules across both blocks (@p shaping for errors, may be NULL). */
void cf_shaping_check(struct cf *f, const config_setting_t *shaping,
                      const struct vl_shaping *sh);

#endif
