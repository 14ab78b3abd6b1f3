/*
 * fbl_intake.c - the intake hook for feedback reports (see fbl.h). Runs in
 * the intake's commit workers (any of them, concurrently): the complaint
 * record is appended and fsync'd under a mutex, the event goes through the
 * queue's group commit; the 250 is given only after both are durable.
 */
#include "fbl.h"

#include "log.h"
#include "suppress.h"
#include "volley/addr.h"
#include "volley/error.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define FBL_COMPLAINTS_FILE "complaints"

struct fbl {
    struct vl_queue *q;
    bool events_on;
    char addr[VL_SMTP_PATH_BYTES_MAX + 1];
    int fd;                        /* DATA/complaints, O_APPEND */
    struct sup *sup;               /* the suppression list (DATA/suppress) */
    pthread_mutex_t mu;
    _Atomic uint64_t taken;
};

int fbl_create(struct vl_queue *q, const char *data_dir, const char *addr, bool events_on,
               struct fbl **out)
{
    struct fbl *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", data_dir, FBL_COMPLAINTS_FILE);
    f->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int rc = -errno;
        free(f);
        return rc;
    }
    int rc = sup_open(data_dir, true, &f->sup);
    if (rc < 0) {
        close(f->fd);
        free(f);
        return rc;
    }
    f->q = q;
    f->events_on = events_on;
    snprintf(f->addr, sizeof f->addr, "%s", addr);
    pthread_mutex_init(&f->mu, NULL);
    *out = f;
    return 0;
}

void fbl_destroy(struct fbl *f)
{
    if (!f)
        return;
    close(f->fd);
    sup_close(f->sup);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

uint64_t fbl_taken(const struct fbl *f)
{
    return atomic_load(&f->taken);
}

static void fbl_iso(uint64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03uZ", (unsigned)(ms % 1000));
}

/* One JSON line for DATA/complaints and for the event (same object). */
static char *fbl_json(const struct fbl_report *r, const char *from, const char *domain,
                      uint64_t now_ms)
{
    char ts[40];
    fbl_iso(now_ms, ts, sizeof ts);
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "event", json_string("complaint"));
    json_object_set_new(o, "rcpt", json_string(r->rcpt));
    json_object_set_new(o, "domain", json_string(domain));
    json_object_set_new(o, "feedback_type", json_string(r->feedback_type));
    json_object_set_new(o, "rcpt_from", json_string(r->rcpt_source));
    json_object_set_new(o, "reporter", json_string(from));
    if (r->user_agent[0])
        json_object_set_new(o, "user_agent", json_string(r->user_agent));
    if (r->source_ip[0])
        json_object_set_new(o, "source_ip", json_string(r->source_ip));
    if (r->arrival_date[0])
        json_object_set_new(o, "arrival_date", json_string(r->arrival_date));
    if (r->mail_from[0])
        json_object_set_new(o, "original_mail_from", json_string(r->mail_from));
    if (r->message_id[0])
        json_object_set_new(o, "original_message_id", json_string(r->message_id));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    return s;                      /* NULL if a field was not UTF-8 (json_string refused) */
}

int fbl_intake(void *arg, struct vl_intake_msg *im, char *reply, size_t reply_cap)
{
    struct fbl *f = arg;
    const char *from = im->from, *msg = im->msg;
    const char *const *rcpts = im->rcpts;
    size_t rcpt_n = im->rcpt_n, len = im->len;
    uint64_t now_ms = im->now_ms;
    if (rcpt_n == 0)
        return 0;
    for (size_t i = 0; i < rcpt_n; i++)        /* only a message to the FBL address alone */
        if (strcasecmp(rcpts[i], f->addr))
            return 0;
    struct fbl_report r;
    const char *why = NULL;
    if (fbl_arf_parse(msg, len, &r, &why) < 0) {
        snprintf(reply, reply_cap, "5.6.0 Not a feedback report (RFC 5965): %s", why);
        vl_log(VL_LOG_INFO, "evt=fbl_refused from=%s why=\"%s\"", from, why);
        return VL_E_INVALID;
    }
    struct vl_addr a;
    if (vl_addr_parse(r.rcpt, strlen(r.rcpt), &a, NULL) < 0) {
        snprintf(reply, reply_cap, "5.6.0 Feedback report: bad recipient address");
        return VL_E_INVALID;
    }
    char domain[VL_SMTP_DOMAIN_BYTES_MAX + 1];
    size_t dn = sup_addr_domain(r.rcpt, domain);     /* > 0: a parsed address has one */
    char *js = fbl_json(&r, from, domain, now_ms);
    if (!js) {
        snprintf(reply, reply_cap, "5.6.0 Feedback report: fields are not UTF-8");
        return VL_E_INVALID;
    }
    size_t jn = strlen(js);
    /* Suppressed first (global scope: a complainer gets no more mail from any of
     * our senders), then the record and the event: a crash in between leaves the
     * address suppressed, and the report, unanswered, is sent again. */
    int rc = sup_add(f->sup, "", r.rcpt, SUP_COMPLAINT, now_ms);
    if (rc < 0) {
        free(js);
        vl_log(VL_LOG_WARN, "evt=fbl_store_failed rcpt=%s err=\"%s\"", r.rcpt, vl_strerror(rc));
        snprintf(reply, reply_cap, "4.3.0 Cannot record the report now, try again later");
        return rc == VL_E_INVALID ? -EIO : rc;
    }
    pthread_mutex_lock(&f->mu);
    js[jn] = '\n';
    ssize_t w = write(f->fd, js, jn + 1);
    rc = w == (ssize_t)(jn + 1) && fdatasync(f->fd) == 0 ? 0 : -errno;
    js[jn] = '\0';
    pthread_mutex_unlock(&f->mu);
    if (rc == 0 && f->events_on) {
        unsigned k = vl_queue_shard_of(f->q, domain, dn);
        const char *ev[] = { js };
        rc = vl_queue_events_add(vl_queue_shard(f->q, k), ev, &jn, 1);
    }
    free(js);
    if (rc < 0) {
        vl_log(VL_LOG_WARN, "evt=fbl_store_failed rcpt=%s err=\"%s\"", r.rcpt, vl_strerror(rc));
        snprintf(reply, reply_cap, "4.3.0 Cannot record the report now, try again later");
        return rc == VL_E_INVALID ? -EIO : rc;
    }
    atomic_fetch_add(&f->taken, 1);
    vl_log(VL_LOG_INFO, "evt=complaint rcpt=%s type=%s reporter=%s", r.rcpt, r.feedback_type,
           from);
    snprintf(reply, reply_cap, "2.0.0 Ok: feedback report for %s recorded", r.rcpt);
    return 1;
}
