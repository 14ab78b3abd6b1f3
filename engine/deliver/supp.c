/*
 * supp.c - the engine's shared suppression-list handle (see supp.h).
 * Diagnostics: evt=suppress_open_failed (WARN) once.
 */
#include "supp.h"

#include "log.h"
#include "suppress.h"
#include "volley/error.h"

void deliver_sup_init(struct deliver_sup *d, const char *data_dir)
{
    struct sup *s = NULL;
    d->data_dir = data_dir;
    d->create_failed = false;
    pthread_mutex_init(&d->mu, NULL);
    int rc = sup_open(data_dir, false, &s);
    if (rc < 0 && rc != VL_E_NOTFOUND)
        vl_log(VL_LOG_WARN, "evt=suppress_open_failed dir=%s err=\"%s\"", data_dir,
               vl_strerror(rc));
    atomic_store(&d->sup, rc == 0 ? s : NULL);
}

void deliver_sup_fini(struct deliver_sup *d)
{
    sup_close(atomic_exchange(&d->sup, NULL));
    pthread_mutex_destroy(&d->mu);
}

struct sup *deliver_sup_get(struct deliver_sup *d, bool create)
{
    struct sup *s = atomic_load(&d->sup);
    if (s || !create)
        return s;
    pthread_mutex_lock(&d->mu);
    s = atomic_load(&d->sup);
    if (!s && !d->create_failed) {
        int rc = sup_open(d->data_dir, true, &s);
        if (rc < 0) {
            d->create_failed = true;
            s = NULL;
            vl_log(VL_LOG_WARN, "evt=suppress_open_failed dir=%s err=\"%s\"", d->data_dir,
                   vl_strerror(rc));
        }
        atomic_store(&d->sup, s);
    }
    pthread_mutex_unlock(&d->mu);
    return s;
}
