/*
 * bounce.h - bounce classification (issue 16): a failed or deferred
 * recipient's reply (code, enhanced status, text) -> one category.
 *
 * Rules come from a line-based file (etc/bounce_rules.conf is shipped and
 * compiled into the binary; `--bounce-rules FILE` adds the user's, tried
 * first). One rule per line:
 *
 *     CATEGORY  STATUS  PATTERN
 *
 * CATEGORY is a name of bounce_cat_name(); STATUS an enhanced status code
 * (RFC 3463) whose components may be '*' ("5.7.*", "4.*", "*"); PATTERN is
 * '*' (any text) or a POSIX extended regular expression matched
 * case-insensitively anywhere in the reply text (the rest of the line,
 * blanks around it trimmed). '#' starts a comment line; blank lines are
 * skipped. The first rule that matches wins; no match is "other".
 *
 * Pure: no I/O except bounce_rules_load_file(), no clock, never logs.
 * Thread: a loaded rule set is read-only; bounce_classify() may run in any
 * number of threads at once (regexec on a shared regex_t is thread-safe).
 */
#ifndef VOLLEY_BOUNCE_H
#define VOLLEY_BOUNCE_H

#include <stddef.h>
#include <stdint.h>

#define BOUNCE_CATS(X)                                                       \
    X(NONE,             "none")             /* not a failure (delivered) */  \
    X(BAD_MAILBOX,      "bad_mailbox")      /* no such user / address */     \
    X(INACTIVE_MAILBOX, "inactive_mailbox") /* disabled, suspended */        \
    X(MAILBOX_FULL,     "mailbox_full")     /* over quota */                 \
    X(POLICY,           "policy")           /* spam, blocklist, reputation */\
    X(CONTENT,          "content")          /* virus, size, format */        \
    X(ROUTING,          "routing")          /* relay denied, loop, unreachable */ \
    X(DNS,              "dns")              /* no such domain, PTR, lookup */\
    X(TLS,              "tls")              /* STARTTLS required or failed */\
    X(AUTH,             "auth")             /* SPF, DKIM, DMARC, SMTP AUTH */\
    X(THROTTLED,        "throttled")        /* rate limits, greylisting */   \
    X(OTHER,            "other")

enum bounce_cat {
#define X(id, name) BOUNCE_##id,
    BOUNCE_CATS(X)
#undef X
    BOUNCE_CAT_COUNT
};

#define BOUNCE_RULES_MAX        4096u   /* policy: rules in one set (shipped + user) */
#define BOUNCE_RULE_LINE_MAX    1024u   /* policy: bytes of one rule line */
#define BOUNCE_RULES_FILE_MAX   (1u << 20)  /* policy: bytes of one rules file */

struct bounce_rules;

/** The category's name ("bad_mailbox"...); never NULL. */
const char *bounce_cat_name(enum bounce_cat c);
/** The category named @p s (exact), or -1. */
int bounce_cat_parse(const char *s, size_t n);

/** An empty rule set. @return 0 or -ENOMEM. Free with bounce_rules_destroy(). */
int bounce_rules_create(struct bounce_rules **out);
void bounce_rules_destroy(struct bounce_rules *r);

/** Append the rules of @p text (@p len bytes, the file format above).
 *  @p origin names the source in errors. On a bad line, nothing of @p text
 *  is kept and @p err (capacity @p err_cap) says "ORIGIN:LINE: what".
 *  @return rules added (>= 0), VL_E_INVALID, VL_E_TOOBIG or -ENOMEM. */
int bounce_rules_load_text(struct bounce_rules *r, const char *text, size_t len,
                           const char *origin, char *err, size_t err_cap);
/** As bounce_rules_load_text() for the file @p path (-errno when unreadable). */
int bounce_rules_load_file(struct bounce_rules *r, const char *path, char *err, size_t err_cap);
/** Append the shipped rules (etc/bounce_rules.conf, compiled in). */
int bounce_rules_load_default(struct bounce_rules *r, char *err, size_t err_cap);
/** Rules in the set. */
size_t bounce_rules_count(const struct bounce_rules *r);

/** Classify a reply: @p code (0 = none), @p status "x.y.z" (NULL or "" =
 *  none: then "C.0.0" with C the first digit of @p code), @p text
 *  NUL-terminated (NULL = ""). @p r NULL: BOUNCE_OTHER. Never BOUNCE_NONE. */
enum bounce_cat bounce_classify(const struct bounce_rules *r, int code, const char *status,
                                const char *text);

/** The shipped rules file's text (NUL-terminated) and length. */
extern const char bounce_rules_default_text[];
extern const size_t bounce_rules_default_len;

#endif
