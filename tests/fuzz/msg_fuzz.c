/*
 * msg_fuzz.c - message validation and normalisation (engine/msg/msg.h).
 *
 * Input: a message as injected. Invariants: input with a NUL or a line over
 * 998 octets is refused; a refusal has problems and no
 * data, its stored problems in line order with a reason; an accepted message
 * has only CRLF line ends, no NUL, no line over 998 octets, a header block
 * then an empty line, exactly one From: and one Date: field, no Bcc: or
 * Return-Path:; is_8bit iff an octet > 127; and normalising it again gives the
 * same bytes and adds nothing (the output is canonical).
 */
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "msg.h"
#include "volley/error.h"
#include "volley/limits.h"

#define PROBS_MAX 8u

static const struct msg_opts opts = {
    .now_ms = 1700000000123ull,
    .hostname = "fuzz.example",
    .unique = 0x0123456789abcdefull,
    .env_from = "sender@fuzz.example",
};

static bool field_is(const uint8_t *l, size_t n, const char *name)
{
    size_t k = strlen(name);
    return n > k && l[k] == ':' && strncasecmp((const char *)l, name, k) == 0;
}

static void check_output(const struct msg_result *r)
{
    const uint8_t *d = r->data;
    size_t n = r->len;
    FUZZ_CHECK(d != NULL && n >= 2);
    bool in_headers = true, high = false;
    unsigned from = 0, date = 0;
    for (size_t i = 0; i < n;) {
        const uint8_t *cr = memchr(d + i, '\r', n - i);
        FUZZ_CHECK(cr != NULL && cr + 1 < d + n && cr[1] == '\n');
        size_t ll = (size_t)(cr - (d + i));
        FUZZ_CHECK(ll <= VL_MSG_LINE_BYTES_MAX);
        FUZZ_CHECK(memchr(d + i, '\n', ll) == NULL && memchr(d + i, '\0', ll) == NULL);
        for (size_t k = 0; k < ll; k++)
            high |= d[i + k] > 127;
        if (in_headers && ll == 0)
            in_headers = false;
        else if (in_headers) {
            from += field_is(d + i, ll, "From");
            date += field_is(d + i, ll, "Date");
            FUZZ_CHECK(!field_is(d + i, ll, "Bcc") && !field_is(d + i, ll, "Return-Path"));
        }
        i += ll + 2;
    }
    FUZZ_CHECK(!in_headers);
    FUZZ_CHECK(from == 1 && date == 1);
    FUZZ_CHECK(r->is_8bit == high);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_INPUT_MAX)
        return 0;
    struct msg_result r;
    struct msg_problem probs[PROBS_MAX];
    int rc = msg_normalise(data, size, &opts, &r, probs, PROBS_MAX);
    if (rc != 0) {
        FUZZ_CHECK(rc == VL_E_INVALID && r.problems > 0 && r.data == NULL);
        unsigned stored = r.problems < PROBS_MAX ? r.problems : PROBS_MAX;
        for (unsigned i = 0; i < stored; i++) {
            FUZZ_CHECK(probs[i].why != NULL);
            if (i)
                FUZZ_CHECK(probs[i].line >= probs[i - 1].line);
        }
        return 0;
    }
    FUZZ_CHECK(r.problems == 0);
    /* Accepted input had no NUL and no line (CR, LF or CRLF ended) over 998. */
    FUZZ_CHECK(memchr(data, '\0', size) == NULL);
    for (size_t i = 0, run = 0; i < size; i++) {
        run = (data[i] == '\r' || data[i] == '\n') ? 0 : run + 1;
        FUZZ_CHECK(run <= VL_MSG_LINE_BYTES_MAX);
    }
    check_output(&r);
    struct msg_result again;
    FUZZ_CHECK(msg_normalise(r.data, r.len, &opts, &again, probs, PROBS_MAX) == 0);
    FUZZ_CHECK(again.len == r.len && memcmp(again.data, r.data, r.len) == 0);
    FUZZ_CHECK(!again.added_date && !again.added_msgid && !again.added_from);
    FUZZ_CHECK(again.is_8bit == r.is_8bit);
    msg_result_fini(&again);
    msg_result_fini(&r);
    return 0;
}
