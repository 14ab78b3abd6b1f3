/*
 * addr_fuzz.c - RFC 5321 mailbox and domain validation (include/volley/addr.h).
 *
 * Input: a candidate address (no angle brackets). Invariants of an accepted
 * address: the parts add up (local "@" domain, '@' at local_len), the RFC
 * limits hold (254/64/255), no CR, LF, NUL, other control or DEL, a space only
 * inside a quoted local part; utf8 iff the local part has an octet > 127;
 * quoted iff it starts with '"'; literal iff the domain starts with '['; the
 * domain passes vl_domain_check. A refusal always says why. vl_domain_check
 * on the whole input agrees with itself, and vl_domain_hash is ASCII
 * case-insensitive.
 */
#include <string.h>

#include "fuzz.h"
#include "volley/addr.h"
#include "volley/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char folded[FUZZ_INPUT_MAX];
    if (size > FUZZ_INPUT_MAX)
        return 0;
    const char *s = (const char *)data;
    struct vl_addr a;
    memset(&a, 0xA5, sizeof a);
    const char *why = NULL;
    int rc = vl_addr_parse(s, size, &a, &why);
    if (rc != 0) {
        FUZZ_CHECK(rc == VL_E_INVALID && why != NULL && why[0] != '\0');
    } else {
        FUZZ_CHECK(size >= 3 && size <= 254);
        FUZZ_CHECK(a.local_len >= 1 && a.local_len <= 64);
        FUZZ_CHECK(a.domain_off == a.local_len + 1u && s[a.local_len] == '@');
        FUZZ_CHECK((size_t)a.domain_off + a.domain_len == size && a.domain_len >= 1);
        FUZZ_CHECK(a.quoted == (s[0] == '"'));
        FUZZ_CHECK(a.literal == (s[a.domain_off] == '['));
        FUZZ_CHECK(vl_domain_check(s + a.domain_off, a.domain_len, NULL) == 0);
        bool high = false;
        for (size_t i = 0; i < size; i++) {
            unsigned char c = (unsigned char)s[i];
            FUZZ_CHECK(c >= 0x20 && c != 0x7f);
            FUZZ_CHECK(c != ' ' || (a.quoted && i < a.local_len));
            if (c > 127) {
                FUZZ_CHECK(i < a.local_len);       /* domains are ASCII (A-labels) */
                high = true;
            }
        }
        FUZZ_CHECK(a.utf8 == high);
        /* The same address with a NULL out and NULL why is accepted too. */
        FUZZ_CHECK(vl_addr_parse(s, size, NULL, NULL) == 0);
    }
    why = NULL;
    rc = vl_domain_check(s, size, &why);
    FUZZ_CHECK(rc == 0 || (rc == VL_E_INVALID && why != NULL));
    FUZZ_CHECK((vl_domain_check(s, size, NULL) == 0) == (rc == 0));
    if (rc == 0) {
        FUZZ_CHECK(size >= 1 && size <= 255);
        for (size_t i = 0; i < size; i++)
            FUZZ_CHECK((unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f);
    }
    for (size_t i = 0; i < size; i++) {
        char c = s[i];
        folded[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    FUZZ_CHECK(vl_domain_hash(s, size) == vl_domain_hash(folded, size));
    return 0;
}
