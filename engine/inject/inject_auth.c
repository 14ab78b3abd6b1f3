/*
 * inject_auth.c - the intake's AUTH credentials and base64 (see inject_auth.h).
 * Diagnostics: load errors in the caller's buffer; never logs.
 */
#include "inject_auth.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct inj_auth_user {
    char name[INJ_AUTH_FIELD_MAX + 1];
    char *hash;
};

struct inj_auth {
    size_t n;
    struct inj_auth_user u[];
};

/* A hash for unknown users: the check costs the same. */
static const char dummy_hash[] = "$6$volleydummysalt$QU9ACvLvxl1A2rONHd8JM1CTicG/NZTZgHnslFSK"
                                 "Q.BSYtfoMZ/Hq.Xy.ZZ6QEvahZeXzsHFLk65cvfMhbKZB1";

int inj_auth_load(const char *path, struct inj_auth **out, char *err, size_t err_cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_cap, "--auth-file %s: %s", path, strerror(errno));
        return -1;
    }
    struct inj_auth *a = calloc(1, sizeof *a + INJ_AUTH_USERS_MAX * sizeof a->u[0]);
    char line[1024];
    unsigned ln = 0;
    int rc = a ? 0 : -1;
    if (!a)
        snprintf(err, err_cap, "--auth-file %s: out of memory", path);
    while (rc == 0 && fgets(line, sizeof line, f)) {
        ln++;
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        if (len == 0 || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (!colon || colon == line || (size_t)(colon - line) > INJ_AUTH_FIELD_MAX
            || colon[1] != '$' || a->n == INJ_AUTH_USERS_MAX) {
            snprintf(err, err_cap, "--auth-file %s line %u: expected user:$id$salt$hash "
                     "(crypt(3), e.g. openssl passwd -6), at most %u users", path, ln,
                     INJ_AUTH_USERS_MAX);
            rc = -1;
            break;
        }
        struct inj_auth_user *u = &a->u[a->n];
        memcpy(u->name, line, (size_t)(colon - line));
        u->name[colon - line] = 0;
        u->hash = strdup(colon + 1);
        if (!u->hash) {
            snprintf(err, err_cap, "--auth-file %s: out of memory", path);
            rc = -1;
            break;
        }
        a->n++;
    }
    fclose(f);
    if (rc == 0 && a->n == 0) {
        snprintf(err, err_cap, "--auth-file %s: no user in it", path);
        rc = -1;
    }
    if (rc < 0) {
        inj_auth_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void inj_auth_free(struct inj_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->u[i].hash);
    free(a);
}

bool inj_auth_check(const struct inj_auth *a, const char *user, size_t ulen, const char *pass,
                    size_t plen)
{
    char p[INJ_AUTH_FIELD_MAX + 1];
    if (plen > INJ_AUTH_FIELD_MAX || memchr(pass, 0, plen))
        return false;
    memcpy(p, pass, plen);
    p[plen] = 0;
    const char *hash = dummy_hash;
    bool known = false;
    for (size_t i = 0; i < a->n; i++)
        if (strlen(a->u[i].name) == ulen && !memcmp(a->u[i].name, user, ulen)) {
            hash = a->u[i].hash;
            known = true;
            break;
        }
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return false;
    const char *h = crypt_r(p, hash, cd);
    bool ok = false;
    if (h && h[0] != '*') {
        size_t n = strlen(hash);
        unsigned diff = strlen(h) != n;
        for (size_t i = 0; i < n && h[i]; i++)
            diff |= (unsigned)(h[i] ^ hash[i]);   /* no early exit */
        ok = known && diff == 0;
    }
    memset(p, 0, sizeof p);
    free(cd);
    return ok;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int inj_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + (size_t)k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_val(c)) < 0) {
                return -1;                    /* '=' only at the end, then only '=' */
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6
                     | (uint32_t)v[3];
        size_t k = 3u - (size_t)pad;
        if (o + k > cap)
            return -1;
        out[o++] = (uint8_t)(w >> 16);
        if (k > 1)
            out[o++] = (uint8_t)(w >> 8);
        if (k > 2)
            out[o++] = (uint8_t)w;
    }
    return (int)o;
}
