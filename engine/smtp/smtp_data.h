/*
 * smtp_data.h - DATA body encoder and measurer (RFC 5321 4.5.2, 2.3.8;
 * RFC 1870, 6152). Pure: no I/O, no allocation, never logs. Hot path.
 *
 * Encoder: a streaming transform over chunks split anywhere (between CR and
 * LF, just before a '.'). It normalises every bare CR and bare LF to CRLF,
 * doubles a '.' that starts a line (the first line too), and ends with
 * CRLF "." CRLF (adding the CRLF only if the content lacks a final one).
 * Worst case: smtp_data_enc_chunk() writes at most 2 bytes per input byte
 * (SMTP_DATA_CHUNK_OUT_MAX), smtp_data_enc_end() at most 5; so a whole body
 * of n bytes needs at most 2n + 5.
 *
 * Measurer: the SIZE= value (RFC 1870: octets after CRLF normalisation,
 * before dot-stuffing, final CRLF counted) and whether any octet is > 127.
 */
#ifndef VOLLEY_SMTP_DATA_H
#define VOLLEY_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SMTP_DATA_CHUNK_OUT_MAX(n) (2u * (size_t)(n))
#define SMTP_DATA_END_OUT_MAX 5u

struct smtp_data_enc {
    uint8_t state;          /* private: line start / mid-line / after CR */
    uint64_t bytes_out;     /* encoded bytes written so far */
};

/** Start a body. */
void smtp_data_enc_init(struct smtp_data_enc *e);

/** Encode @p len bytes of @p in into @p out, which must hold
 *  SMTP_DATA_CHUNK_OUT_MAX(len) bytes (checked). @return bytes written. */
size_t smtp_data_enc_chunk(struct smtp_data_enc *e, const char *in, size_t len,
                           char *out, size_t out_cap);

/** End the body: [CRLF] "." CRLF into @p out (>= SMTP_DATA_END_OUT_MAX).
 *  @return bytes written. The encoder must be re-initialised to reuse it. */
size_t smtp_data_enc_end(struct smtp_data_enc *e, char *out, size_t out_cap);

struct smtp_data_info {
    uint64_t size;          /* SIZE= value, final once smtp_data_measure_end() ran */
    bool is_8bit;           /* an octet > 127 occurs: needs BODY=8BITMIME */
    uint8_t state;          /* private */
};

void smtp_data_measure_init(struct smtp_data_info *m);
void smtp_data_measure_chunk(struct smtp_data_info *m, const char *in, size_t len);
void smtp_data_measure_end(struct smtp_data_info *m);

/** One-shot: measure a whole body. */
void smtp_data_measure(const char *body, size_t len, struct smtp_data_info *out);

#ifdef __cplusplus
}
#endif
#endif
