/*
 * sg.h - types shared by every module of libsmtpguard
 *
 * libsmtpguard is the policy library behind the smtpguard milter. It never
 * includes libmilter, never calls syslog() or time() directly: the daemon
 * hands it an environment (clock, log sink, database path) and feeds it the
 * facts of each SMTP session. Failures are negative sg_status values;
 * outcomes (a verdict, "over the limit") are values, not errors.
 */
#ifndef SG_H
#define SG_H

#include <stddef.h>
#include <stdint.h>

/* Failures. Negative so they never collide with counts. */
enum sg_status {
    SG_OK = 0,
    SG_ERETRY = -1,     /* try again later: database busy or locked */
    SG_ENOMEM = -2,     /* allocation failed */
    SG_EDB = -3,        /* database error other than busy */
    SG_EINVAL = -4,     /* invalid input: bad setting, malformed address */
    SG_ENOENT = -5,     /* no such object */
};

/* Caller-supplied room for the text of a failure. */
struct sg_err {
    char msg[256];
};

void sg_err_set(struct sg_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Seconds since the epoch, as the library sees them: injected for tests. */
typedef int64_t sg_time_t;
typedef sg_time_t (*sg_now_fn)(void *arg);

/*
 * Allocation. Every allocation of per-session state goes through these, so
 * tests can make the N-th allocation fail (SQLite's OOM-test idea).
 */
void *sg_calloc(size_t n, size_t size);
void *sg_malloc(size_t size);
char *sg_strdup(const char *s);
void sg_free(void *p);

/* For tests only: fail the allocation after `n` more succeed (-1: never). */
void sg_alloc_fail_after(long n);

/* Bounded copy; returns 0 or -1 if `src` was truncated. */
int sg_strlcpy(char *dst, const char *src, size_t size);

#endif /* SG_H */
