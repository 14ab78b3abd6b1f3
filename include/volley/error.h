/*
 * error.h - volley's error codes and programmer-error checks.
 *
 * Operating errors are returned as int: >= 0 is success, failure is -errno
 * (as in an io_uring cqe->res) or a VL_E_* code below the errno range.
 * vl_strerror() names either kind and never returns NULL.
 *
 * Programmer errors go to vl_assert/vl_panic: file:line, abort, core dump.
 * vl_assert stays on in release builds. vl_fatal is for start-up and config
 * only: message on stderr, exit(status).
 */
#ifndef VOLLEY_ERROR_H
#define VOLLEY_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define VL_E_BASE          (-5000)  /* below -4095 (MAX_ERRNO): never a -errno */
#define VL_E_PROTO         (-5001)  /* peer violated the protocol */
#define VL_E_QUEUE_FULL    (-5002)  /* queue storage full and cannot grow (disk full) */
#define VL_E_CORRUPT       (-5003)  /* a record failed validation */
#define VL_E_VERSION       (-5004)  /* a record or environment of an unknown version */
#define VL_E_NOTFOUND      (-5005)  /* no such message / recipient */
#define VL_E_SHARDS        (-5006)  /* data directory created with another shard count */
#define VL_E_INVALID       (-5007)  /* invalid argument or input (address, message, option) */
#define VL_E_TOOBIG        (-5008)  /* over a size limit */
#define VL_E_DNS           (-5009)  /* resolver failure (not an answer) */
#define VL_E_TLS           (-5010)  /* TLS handshake or I/O failure */
#define VL_E_TIMEOUT       (-5011)  /* an operation's deadline passed */
#define VL_E_STORAGE       (-5012)  /* the storage engine failed (LMDB error) */
#define VL_E_LOCKED        (-5013)  /* data directory locked by another volley process */
#define VL_E_DLOG          (-5014)  /* the delivery log could not be written */
#define VL_E_LAST          (-5015)

/** Name an error: -errno or VL_E_*. Never NULL; the string is static. */
const char *vl_strerror(int err);

/** Print "volley: panic at file:line: msg" and abort. Never returns. */
void vl_panic_at(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/** Start-up/config only: print "volley: msg" on stderr and exit(status). */
void vl_fatal(int status, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

#define vl_panic(...) vl_panic_at(__FILE__, __LINE__, __VA_ARGS__)
#define vl_assert(cond) \
    do { if (__builtin_expect(!(cond), 0)) vl_panic("assertion failed: %s", #cond); } while (0)
#ifndef NDEBUG
#define vl_assert_debug(cond) vl_assert(cond)
#define VL_NEVER(x) ((x) ? (vl_panic("VL_NEVER: %s", #x), 1) : 0)
#define VL_ALWAYS(x) ((x) ? 1 : (vl_panic("VL_ALWAYS: %s", #x), 0))
#else
#define vl_assert_debug(cond) ((void)0)
#define VL_NEVER(x) (x)
#define VL_ALWAYS(x) (x)
#endif

#ifdef __cplusplus
}
#endif
#endif
