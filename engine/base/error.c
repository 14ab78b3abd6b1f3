/*
 * error.c - vl_strerror, vl_panic, vl_fatal (see include/volley/error.h).
 */
#include "volley/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *vl_strerror(int err)
{
    switch (err) {
    case VL_E_PROTO:      return "protocol violation by peer";
    case VL_E_QUEUE_FULL: return "queue storage full (disk full or map cannot grow)";
    case VL_E_CORRUPT:    return "corrupt record";
    case VL_E_VERSION:    return "unknown record or environment version";
    case VL_E_NOTFOUND:   return "not found";
    case VL_E_SHARDS:     return "data directory was created with another shard count";
    case VL_E_INVALID:    return "invalid input";
    case VL_E_TOOBIG:     return "over a size limit";
    case VL_E_DNS:        return "DNS resolver failure";
    case VL_E_TLS:        return "TLS failure";
    case VL_E_TIMEOUT:    return "timed out";
    case VL_E_STORAGE:    return "storage engine error";
    case VL_E_LOCKED:     return "data directory in use by another volley process";
    case VL_E_DLOG:       return "the delivery log could not be written (lines lost)";
    default: break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);   /* glibc: static table for known errno values */
    if (err >= 0)
        return "success";
    return "unknown error";
}

void vl_panic_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "volley: panic at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void vl_fatal(int status, const char *fmt, ...)
{
    va_list ap;
    fputs("volley: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}
