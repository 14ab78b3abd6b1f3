/*
 * smtp_server_transcript_test.c - the golden transcripts of PROTOCOL.md section 3
 * (tests/transcripts/server_*.smtp) replayed through the server whole, byte by
 * byte and in 7-byte chunks, checking the reply codes section 1.2 specifies,
 * the enhanced-code rule, the message content and the EHLO capabilities; then
 * random sessions whose outcome must not depend on the input's chunking.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_server_drive.h"

/* ---- golden transcripts ------------------------------------------------------------- */

struct transcript {
    char input[16384];
    size_t input_len;
    uint16_t want[128];
    unsigned nwant;
    char content[8192];      /* the DATA content, unstuffed */
    size_t content_len;
    unsigned messages;
    struct smtp_server_conf conf;   /* from the reference server's EHLO reply */
    bool has_ehlo;
};

/* The boolean capabilities of struct smtp_server_conf, by EHLO keyword. */
static const struct { const char *kw; size_t off; } cap_fields[] = {
    { "PIPELINING", offsetof(struct smtp_server_conf, pipelining) },
    { "8BITMIME", offsetof(struct smtp_server_conf, eightbitmime) },
    { "ENHANCEDSTATUSCODES", offsetof(struct smtp_server_conf, enhancedstatuscodes) },
    { "SMTPUTF8", offsetof(struct smtp_server_conf, smtputf8) },
    { "DSN", offsetof(struct smtp_server_conf, dsn) },
    { "STARTTLS", offsetof(struct smtp_server_conf, starttls) },
};
#define CAP_FIELDS (sizeof cap_fields / sizeof cap_fields[0])

static bool *cap_flag(struct smtp_server_conf *c, size_t i)
{
    return (bool *)((char *)c + cap_fields[i].off);
}

/* One S: line of the reference server's EHLO reply: note what it offers. */
static void transcript_cap(struct transcript *t, const char *s)
{
    if (strncmp(s, "250-", 4) != 0 && strncmp(s, "250 ", 4) != 0)
        return;
    const char *kw = s + 4;
    size_t n = strcspn(kw, " ");
    t->has_ehlo = true;
    if (n == 4 && strncmp(kw, "SIZE", 4) == 0)
        t->conf.size_max = strtoull(kw + 4, NULL, 10);
    for (size_t i = 0; i < CAP_FIELDS; i++)
        if (strlen(cap_fields[i].kw) == n && strncmp(kw, cap_fields[i].kw, n) == 0)
            *cap_flag(&t->conf, i) = true;
}

static void transcript_load(const char *path, struct transcript *t)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    memset(t, 0, sizeof *t);
    t->conf.hostname = "sink.test";
    char line[1200];
    bool data = false;
    bool in_ehlo = false;       /* the S: lines answer an EHLO */
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "E: ", 3) == 0) {
            assert_true(t->nwant < 128);
            t->want[t->nwant++] = (uint16_t)atoi(line + 3);
        } else if (strncmp(line, "C:", 2) == 0) {
            const char *c = line[2] == ' ' ? line + 3 : line + 2;
            size_t cl = strlen(c);
            bool stuff = data && c[0] == '.' && cl > 0 && strcmp(c, ".") != 0;
            assert_true(t->input_len + cl + 3 < sizeof t->input);
            if (stuff)
                t->input[t->input_len++] = '.';
            memcpy(t->input + t->input_len, c, cl);
            t->input_len += cl;
            memcpy(t->input + t->input_len, "\r\n", 2);
            t->input_len += 2;
            if (data && strcmp(c, ".") == 0) {
                data = false;
                t->messages++;
            } else if (data) {
                memcpy(t->content + t->content_len, c, cl);
                memcpy(t->content + t->content_len + cl, "\r\n", 2);
                t->content_len += cl + 2;
            } else if (strcasecmp(c, "DATA") == 0) {
                data = true;
            }
            in_ehlo = !data && strncasecmp(c, "EHLO ", 5) == 0;
        } else if (strncmp(line, "S: ", 3) == 0 && in_ehlo) {
            transcript_cap(t, line + 3);
        }
    }
    fclose(f);
    assert_true(t->nwant > 1);
}

static void transcript_replay(const char *name, const struct transcript *t, size_t chunk,
                              bool esc)
{
    static struct drive d;
    struct smtp_server_conf conf = t->conf;
    conf.enhancedstatuscodes = esc;
    drive_run(&d, &conf, t->input, t->input_len, chunk);
    if (d.n != t->nwant)
        fail_msg("%s (chunk %zu): %u replies, want %u", name, chunk, d.n, t->nwant);
    for (unsigned i = 0; i < d.n; i++)
        if (d.code[i] != t->want[i])
            fail_msg("%s (chunk %zu): reply %u is %u, want %u", name, chunk, i, d.code[i],
                     t->want[i]);
    drive_check_esc(&d, esc);
    assert_int_equal(d.dots, t->messages);
    if (t->messages) {
        assert_int_equal(d.dot[0].bytes, t->content_len);
        assert_false(d.dot[0].bad);
        assert_int_equal(d.dot[0].body_len, t->content_len);
    }
    if (t->has_ehlo) {
        /* We advertise exactly the known capabilities the reference server did. */
        char k1[32], k2[32];
        for (size_t i = 0; i < CAP_FIELDS; i++) {
            snprintf(k1, sizeof k1, "250-%s\r\n", cap_fields[i].kw);
            snprintf(k2, sizeof k2, "250 %s\r\n", cap_fields[i].kw);
            bool found = memmem(d.out, d.out_len, k1, strlen(k1)) != NULL
                         || memmem(d.out, d.out_len, k2, strlen(k2)) != NULL;
            if (found != *cap_flag(&conf, i))
                fail_msg("%s: capability %s wrong", name, cap_fields[i].kw);
        }
        assert_non_null(memmem(d.out, d.out_len, conf.size_max ? "SIZE 14680064\r\n" : "SIZE\r\n",
                               conf.size_max ? 15 : 6));
    }
}

static void test_transcripts(void **state)
{
    (void)state;
    const char *src = getenv("VOLLEY_SRC");
    char dir[1024];
    if (src) {
        snprintf(dir, sizeof dir, "%s/tests/transcripts", src);
    } else {                                    /* run by hand: from this file's path */
        const char *f = __FILE__, *cut = strstr(f, "tests/unit/");
        snprintf(dir, sizeof dir, "%.*stests/transcripts", cut ? (int)(cut - f) : 0, f);
    }
    DIR *dp = opendir(dir);
    if (!dp)
        fail_msg("cannot open %s (set VOLLEY_SRC)", dir);
    static struct transcript t;
    unsigned files = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (strncmp(de->d_name, "server_", 7) != 0 || nl < 6
            || strcmp(de->d_name + nl - 5, ".smtp") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        transcript_load(path, &t);
        for (size_t chunk = 0; chunk <= 1; chunk++)          /* whole, byte by byte */
            for (int esc = 0; esc <= 1; esc++)
                transcript_replay(de->d_name, &t, chunk, esc);
        transcript_replay(de->d_name, &t, 7, true);
        files++;
    }
    closedir(dp);
    assert_true(files >= 8);
}

/* ---- chunking invariance on random sessions ------------------------------------------ */

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Random sessions made of protocol fragments and stray CR/LF/dots: the replies,
 * messages and body bytes must not depend on how the input is chunked. STARTTLS
 * is left out (it discards the rest of its chunk by design). */
static void test_random_chunking(void **state)
{
    (void)state;
    static const char *const frag[] = {
        "EHLO c\r\n", "MAIL FROM:<a@b.org>\r\n", "RCPT TO:<c@d.org>\r\n", "DATA\r\n",
        "\r\n", "\n", "\r", ".", "..", ".\r\n", "\r\n.\r\n", "\n.\r\n", "x", "RSET\r\n",
        "NOOP\r\n", "MAIL FROM:<a@b.org> SIZE=50\r\n", "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
        "\0", "VRFY a\r\n", "BDAT 1\r\n",
    };
    static struct drive whole, part;
    static char in[2048];
    const char *env = getenv("VOLLEY_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : 0x5eedf00dULL;
    uint64_t x = seed ? seed : 1;
    struct smtp_server_conf conf;
    conf_make(CONF_SIZE100, &conf);
    for (unsigned iter = 0; iter < 400; iter++) {
        size_t len = 0;
        unsigned nfrag = 1 + (unsigned)(rng_next(&x) % 60);
        for (unsigned f = 0; f < nfrag; f++) {
            if (rng_next(&x) % 8 == 0 && len < sizeof in) {
                in[len++] = (char)(rng_next(&x) & 0xff);   /* any octet at all */
                continue;
            }
            const char *p = frag[rng_next(&x) % (sizeof frag / sizeof frag[0])];
            size_t pl = p[0] ? strlen(p) : 1;
            if (len + pl > sizeof in)
                break;
            memcpy(in + len, p, pl);
            len += pl;
        }
        drive_run(&whole, &conf, in, len, 0);
        for (unsigned r = 0; r < 3; r++) {
            size_t chunk = 1 + (size_t)(rng_next(&x) % 17);
            drive_run(&part, &conf, in, len, chunk);
            if (part.n != whole.n || part.dots != whole.dots
                || memcmp(part.code, whole.code, whole.n * sizeof whole.code[0]) != 0
                || part.out_len != whole.out_len)
                fail_msg("VOLLEY_SEED=%llu iter %u chunk %zu: replies differ",
                         (unsigned long long)seed, iter, chunk);
            for (unsigned m = 0; m < whole.dots; m++) {
                assert_int_equal(part.dot[m].bytes, whole.dot[m].bytes);
                assert_int_equal(part.dot[m].bad, whole.dot[m].bad);
                if (whole.dot[m].bytes <= conf.size_max)   /* past it: prefix only */
                    assert_string_equal(part.dot_body[m], whole.dot_body[m]);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcripts),
        cmocka_unit_test(test_random_chunking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
