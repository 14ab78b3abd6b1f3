/*
 * events_webhook.c - the webhook sink: each batch is one HTTP POST (libcurl,
 * one easy handle kept alive between batches) of
 *
 *     {"events":[{"event_id":"...", ...delivery log fields...}, ...]}
 *
 * with Content-Type: application/json, X-Volley-Timestamp: T (Unix seconds)
 * and X-Volley-Signature: sha256=HEX, HEX = HMAC-SHA256(secret, T "." body)
 * in lower-case hex, so a receiver can check both the body and its freshness.
 * Only a 2xx answer takes the batch; anything else (other status, refused,
 * timeout) is a failure and the batch is sent again.
 */
#include "events_webhook.h"

#include "volley/error.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct webhook {
    CURL *curl;
    char *url;
    unsigned char *secret;
    size_t secret_len;
    long timeout_ms;
    char *body;
    size_t body_cap;
};

void events_webhook_sign(const unsigned char *secret, size_t secret_len, long long ts,
                         const char *body, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char prefix[32];
    int pn = snprintf(prefix, sizeof prefix, "%lld.", ts);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t got = 0;
    if (c && EVP_MAC_init(c, secret, secret_len, params) == 1
        && EVP_MAC_update(c, (const unsigned char *)prefix, (size_t)pn) == 1
        && EVP_MAC_update(c, (const unsigned char *)body, len) == 1
        && EVP_MAC_final(c, md, &got, sizeof md) == 1)
        md_len = (unsigned int)got;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(mac);
    vl_assert(md_len == 32);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static size_t webhook_discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static int webhook_send(void *ctx, const struct events_batch *b, char *err, size_t err_cap)
{
    struct webhook *w = ctx;
    size_t need = 16;
    for (size_t i = 0; i < b->count; i++)
        need += b->items[i].len + 1;
    if (need > w->body_cap) {
        char *nb = realloc(w->body, need);
        if (!nb) {
            snprintf(err, err_cap, "out of memory");
            return -ENOMEM;
        }
        w->body = nb;
        w->body_cap = need;
    }
    size_t n = 0;
    memcpy(w->body, "{\"events\":[", 11);
    n = 11;
    for (size_t i = 0; i < b->count; i++) {
        if (i)
            w->body[n++] = ',';
        memcpy(w->body + n, b->items[i].json, b->items[i].len);
        n += b->items[i].len;
    }
    memcpy(w->body + n, "]}", 2);
    n += 2;
    long long ts = (long long)time(NULL);
    char sig[65], h_sig[96], h_ts[64];
    events_webhook_sign(w->secret, w->secret_len, ts, w->body, n, sig);
    snprintf(h_sig, sizeof h_sig, "X-Volley-Signature: sha256=%s", sig);
    snprintf(h_ts, sizeof h_ts, "X-Volley-Timestamp: %lld", ts);
    struct curl_slist *hdr = NULL, *h;
    h = curl_slist_append(hdr, "Content-Type: application/json");
    if (h) hdr = h;
    h = curl_slist_append(hdr, h_sig);
    if (h) hdr = h;
    h = curl_slist_append(hdr, h_ts);
    if (h) hdr = h;
    h = curl_slist_append(hdr, "Expect:");   /* no 100-continue round trip */
    if (h) hdr = h;
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, w->body);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    CURLcode cc = curl_easy_perform(w->curl);
    long status = 0;
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdr);
    if (cc != CURLE_OK) {
        snprintf(err, err_cap, "%s", curl_easy_strerror(cc));
        return VL_E_PROTO;
    }
    if (status < 200 || status > 299) {
        snprintf(err, err_cap, "HTTP %ld", status);
        return VL_E_PROTO;
    }
    return 0;
}

static void webhook_destroy(void *ctx)
{
    struct webhook *w = ctx;
    if (!w)
        return;
    if (w->curl)
        curl_easy_cleanup(w->curl);
    if (w->secret)
        memset(w->secret, 0, w->secret_len);
    free(w->secret);
    free(w->url);
    free(w->body);
    free(w);
}

int events_webhook_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : VL_E_INVALID;
}

int events_webhook_create(const char *url, const unsigned char *secret, size_t secret_len,
                          long timeout_ms, struct events_sink *out, char *err, size_t err_cap)
{
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        snprintf(err, err_cap, "'%s': expected an http:// or https:// URL", url);
        return VL_E_INVALID;
    }
    struct webhook *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->url = strdup(url);
    w->secret = malloc(secret_len ? secret_len : 1);
    w->curl = curl_easy_init();
    if (!w->url || !w->secret || !w->curl) {
        webhook_destroy(w);
        snprintf(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    memcpy(w->secret, secret, secret_len);
    w->secret_len = secret_len;
    w->timeout_ms = timeout_ms;
    CURL *c = w->curl;
    curl_easy_setopt(c, CURLOPT_URL, w->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, webhook_discard);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "volley-events/1");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    *out = (struct events_sink){ .name = "webhook", .ctx = w, .send = webhook_send,
                                 .destroy = webhook_destroy };
    return 0;
}
