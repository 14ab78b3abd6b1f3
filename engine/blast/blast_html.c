/*
 * blast_html.c - the --report page (placeholder until the charts land).
 */
#include "blast.h"

#include <errno.h>

int blast_report_html(const char *path, const struct blast_conf *cf, const struct blast_result *r)
{
    (void)path; (void)cf; (void)r;
    return -ENOSYS;
}
