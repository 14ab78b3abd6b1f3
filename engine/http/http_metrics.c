/*
 * http_metrics.c - GET /metrics (issue 15): the metrics registry
 * (engine/metrics) and the queue's figures in the Prometheus text format
 * 0.0.4. Needs the bearer token like every API route (Prometheus:
 * `authorization: {credentials_file: FILE}` in the scrape config).
 * The queue part costs one stats read and one bounded listing (the
 * HTTP_METRICS_AGE_SCAN oldest messages) per scrape.
 */
#include "http_int.h"

#include "clock.h"
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#define HTTP_METRICS_AGE_SCAN 256u

static void http_metrics_queue(struct http *h, struct met_queue *mq)
{
    struct vl_queue_stats st;
    memset(mq, 0, sizeof *mq);
    if (vl_queue_stats(h->q, -1, &st) < 0)
        return;
    mq->ok = true;
    mq->ready = st.by_state[VL_RCPT_READY];
    mq->deferred = st.by_state[VL_RCPT_DEFERRED];
    mq->quarantined = st.quarantined;
    mq->messages = st.messages;
    mq->body_bytes = st.body_bytes;
    mq->commits = st.commits;
    mq->writes = st.requests;
    struct vl_queue_msg_info *mi = calloc(HTTP_METRICS_AGE_SCAN, sizeof *mi);
    if (!mi)
        return;
    int n = vl_queue_list(h->q, 0, mi, HTTP_METRICS_AGE_SCAN);
    uint64_t now = vl_clock_wall_ms();
    for (int i = 0; i < n; i++) {
        if (!mi[i].rcpts_open)
            continue;
        double age = now > mi[i].created_ms ? (double)(now - mi[i].created_ms) / 1000.0 : 0.0;
        if (!mq->oldest_ok || age > mq->oldest_open_age_s)
            mq->oldest_open_age_s = age;
        mq->oldest_ok = true;
        for (unsigned k = 0; k < 6; k++)
            if (age <= met_age_bounds_s[k])
                mq->age_le[k]++;
        mq->age_scanned++;
    }
    free(mi);
}

enum MHD_Result http_metrics_get(struct http *h, struct MHD_Connection *c)
{
    struct met_queue mq;
    http_metrics_queue(h, &mq);
    size_t len = 0;
    char *text = met_render(met_get(), &mq, &len);
    if (!text)
        return http_respond_error(c, 503, NULL, -1, "out of memory");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}
