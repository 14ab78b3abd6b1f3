/*
 * inject_auth.h - SMTP AUTH credentials for the intake (--auth-file): a
 * file of "user:HASH" lines, HASH in crypt(3) form (e.g. `openssl passwd -6`:
 * $6$salt$...; yescrypt $y$ too), '#' comments and blank lines ignored. Loaded
 * once at start; checked with crypt_r (an unknown user costs a hash too, so
 * timing does not tell users apart). Plus the base64 decoder SASL needs.
 * Thread: the table is read-only after inj_auth_load(); any thread may check.
 */
#ifndef VOLLEY_INJECT_AUTH_H
#define VOLLEY_INJECT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INJ_AUTH_USERS_MAX   4096u
#define INJ_AUTH_FIELD_MAX    255u    /* user or password octets */

struct inj_auth;

/** Load @p path. @return 0 and *@p out, or -1 with what is wrong in @p err. */
int inj_auth_load(const char *path, struct inj_auth **out, char *err, size_t err_cap);

void inj_auth_free(struct inj_auth *a);

/** Do @p user (@p ulen octets) and @p pass match a line? */
bool inj_auth_check(const struct inj_auth *a, const char *user, size_t ulen, const char *pass,
                    size_t plen);

/** Decode base64 @p in (@p n chars, padding required for a partial group, no
 *  blanks) into @p out (capacity @p cap). @return octets, or -1 if invalid or
 *  too long. Pure. */
int inj_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#endif
